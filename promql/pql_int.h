/* pql_int.h - PromQL internals shared by the parser, printer and evaluator. */
#ifndef RT_PQL_INT_H
#define RT_PQL_INT_H

#include "common/arena.h"
#include "common/floatfmt.h"
#include "promql/promql.h"

typedef enum pql_kind {
  PQL_N_NUM,
  PQL_N_STR,
  PQL_N_VS,     /* vector selector */
  PQL_N_MS,     /* matrix selector: child is a VS */
  PQL_N_SUBQ,
  PQL_N_CALL,
  PQL_N_AGG,
  PQL_N_BIN,
  PQL_N_UNARY,
  PQL_N_PAREN
} pql_kind;

/* Operators (binary, unary and aggregations share one enum). */
typedef enum pql_op {
  PQL_OP_NONE = 0,
  PQL_OP_ADD, PQL_OP_SUB, PQL_OP_MUL, PQL_OP_DIV, PQL_OP_MOD, PQL_OP_POW, PQL_OP_ATAN2,
  PQL_OP_TRIM_UPPER, PQL_OP_TRIM_LOWER, /* </ and >/ on native histograms */
  PQL_OP_EQLC, PQL_OP_NEQ, PQL_OP_GTR, PQL_OP_LSS, PQL_OP_GTE, PQL_OP_LTE,
  PQL_OP_AND, PQL_OP_OR, PQL_OP_UNLESS,
  /* aggregations */
  PQL_AGG_SUM, PQL_AGG_AVG, PQL_AGG_COUNT, PQL_AGG_MIN, PQL_AGG_MAX, PQL_AGG_GROUP,
  PQL_AGG_STDDEV, PQL_AGG_STDVAR, PQL_AGG_TOPK, PQL_AGG_BOTTOMK, PQL_AGG_COUNT_VALUES,
  PQL_AGG_QUANTILE, PQL_AGG_LIMITK, PQL_AGG_LIMIT_RATIO
} pql_op;

typedef enum pql_card { PQL_CARD_ONE_TO_ONE, PQL_CARD_MANY_TO_ONE, PQL_CARD_ONE_TO_MANY, PQL_CARD_MANY_TO_MANY } pql_card;

enum { PQL_EXT_ANCHORED = 1, PQL_EXT_SMOOTHED = 2 };

typedef enum pql_at { PQL_AT_NONE, PQL_AT_TIME, PQL_AT_START, PQL_AT_END } pql_at;

struct pql_func;

struct pql_tree;

/* A duration expression ([5m+1m], offset (step()*2)): values in seconds. Kept only when it
 * depends on the query (step(), range()); constant ones are folded at parse time. */
typedef struct pql_dexpr {
  char op;                  /* 'n' number, 'd' duration literal, + - * / % ^, 'u' negate,
                               's' step(), 'r' range(), 'm' min_of, 'M' max_of, 'p' parens */
  double v;
  struct pql_dexpr *a, *b;
} pql_dexpr;

struct pql_expr {
  pql_kind kind;
  struct pql_tree *tree;
  pql_type type;
  int pos, end;             /* byte offsets in the query */
  /* NUM */
  double num;
  bool num_is_dur;          /* written as a duration literal */
  /* STR */
  char *str;
  /* VS */
  char *name;               /* metric name given outside braces, or NULL */
  rt_matcher *matchers;
  size_t nmatchers;
  int slot;                 /* index of the selector (fetch slot) */
  /* VS, SUBQ (MS keeps them on its VS) */
  int64_t offset;
  uint8_t ext;              /* VS: 0, PQL_EXT_ANCHORED or PQL_EXT_SMOOTHED */
  pql_at at;
  int64_t at_ms;
  /* MS, SUBQ */
  int64_t range;
  int64_t step;             /* SUBQ: 0 = default */
  pql_dexpr *drange, *dstep, *doffset; /* query-dependent durations (see pql_dexpr) */
  /* children: MS/SUBQ/UNARY/PAREN: a; BIN: a, b; AGG: a = expr, b = param */
  struct pql_expr *a, *b;
  /* CALL */
  const struct pql_func *func;
  struct pql_expr **args;
  size_t nargs;
  /* AGG, BIN, UNARY */
  pql_op op;
  /* AGG: grouping; BIN: matching labels */
  char **labels;
  size_t nlabels;
  bool without;             /* AGG */
  bool by_given;            /* AGG: a by/without clause was written */
  bool grouping_after;      /* AGG: clause written after the expression (printing only) */
  /* BIN */
  bool ret_bool;
  bool matching_given;      /* on()/ignoring() written */
  bool on;
  pql_card card;
  char **include;           /* group_left/right labels */
  size_t ninclude;
  bool fill_l, fill_r;      /* fill_left()/fill_right()/fill(): value for a missing side */
  double fill_lv, fill_rv;
};

typedef struct pql_func {
  const char *name;
  pql_type args[6];
  int nargs;
  int variadic;             /* 0 = fixed; n > 0 = up to n optional; -1 = any number */
  pql_type ret;
  int id;
} pql_func;

const pql_func *pql_func_lookup(const char *name, size_t n);
bool pql_func_is_query_time(const pql_func *f);

/* Parser result wrapper: the arena owns the tree. */
typedef struct pql_tree {
  rt_arena *arena;
  rt_matcher **mlists;      /* matcher arrays to fini */
  size_t nmlists, capmlists;
  int nslots;
  int nsubqs;               /* subqueries get their own numbering in `slot` */
  char *query;
} pql_tree;

const char *pql_op_str(pql_op op);
bool pql_op_is_comparison(pql_op op);
bool pql_op_is_setop(pql_op op);
void pql_format_duration(int64_t ms, rt_buf *b);
void pql_quote_string(const char *s, rt_buf *b);
/* Line:column (1-based) of a byte offset in q. */
void pql_pos_linecol(const char *q, int off, int *line, int *col);
/* Evaluates a duration expression to milliseconds for a query with the given step and range. */
int64_t pql_dexpr_ms(const pql_dexpr *d, int64_t step_ms, int64_t range_ms);
void pql_dexpr_format(const pql_dexpr *d, rt_buf *b);

#endif
