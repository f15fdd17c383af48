/* parse.c - PromQL lexer and recursive-descent parser with Prometheus' type checks. */
#include "promql/pql_int.h"

#include <ctype.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/labels.h"

#define PQL_MAX_DEPTH 1000 /* nesting limit of expressions, protects the stack */

typedef enum tok_type {
  T_EOF,
  T_IDENT,
  T_METRIC_IDENT,
  T_NUM,
  T_DUR,
  T_STR,
  T_LPAREN,
  T_RPAREN,
  T_LBRACE,
  T_RBRACE,
  T_LBRACKET,
  T_RBRACKET,
  T_COMMA,
  T_ASSIGN,
  T_COLON,
  T_AT,
  T_BINOP,     /* op field */
  T_EQL_REGEX,
  T_NEQ_REGEX,
  T_AGG,       /* op field */
  T_BY,
  T_WITHOUT,
  T_ON,
  T_IGNORING,
  T_GROUP_LEFT,
  T_GROUP_RIGHT,
  T_BOOL,
  T_OFFSET
} tok_type;

typedef struct tok {
  tok_type type;
  pql_op op;
  int pos;
  int len;
} tok;

typedef struct parser {
  const char *q;
  int qlen;
  int cur;           /* lexer position */
  bool in_braces;
  bool in_brackets;
  bool info_arg;     /* parsing the label selector argument of info() */
  int depth;         /* nesting of parse_expr calls, bounded to protect the stack */
  bool have_peek;
  tok peek;
  pql_tree *tree;
  jmp_buf jb;
  char *err;
  size_t errlen;
} parser;

static _Noreturn void perr(parser *p, int pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static _Noreturn void perr(parser *p, int pos, const char *fmt, ...) {
  int line, col;
  pql_pos_linecol(p->q, pos, &line, &col);
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (p->err && p->errlen) {
    snprintf(p->err, p->errlen, "%d:%d: parse error: %s", line, col, msg);
  }
  longjmp(p->jb, 1);
}

void pql_pos_linecol(const char *q, int off, int *line, int *col) {
  int l = 1, last = -1;
  for (int i = 0; i < off && q[i]; i++) {
    if (q[i] == '\n') {
      l++;
      last = i;
    }
  }
  *line = l;
  *col = off - last;
}

static void *palloc(parser *p, size_t n) {
  void *v = rt_arena_alloc(p->tree->arena, n);
  if (!v) {
    perr(p, 0, "out of memory");
  }
  memset(v, 0, n);
  return v;
}

static char *pstrndup(parser *p, const char *s, size_t n) {
  char *d = rt_arena_strndup(p->tree->arena, s, n);
  if (!d) {
    perr(p, 0, "out of memory");
  }
  return d;
}

/* ---------------- lexer ---------------- */

static const struct {
  const char *w;
  tok_type t;
  pql_op op;
} keywords[] = {
    {"and", T_BINOP, PQL_OP_AND},
    {"or", T_BINOP, PQL_OP_OR},
    {"unless", T_BINOP, PQL_OP_UNLESS},
    {"atan2", T_BINOP, PQL_OP_ATAN2},
    {"sum", T_AGG, PQL_AGG_SUM},
    {"avg", T_AGG, PQL_AGG_AVG},
    {"count", T_AGG, PQL_AGG_COUNT},
    {"min", T_AGG, PQL_AGG_MIN},
    {"max", T_AGG, PQL_AGG_MAX},
    {"group", T_AGG, PQL_AGG_GROUP},
    {"stddev", T_AGG, PQL_AGG_STDDEV},
    {"stdvar", T_AGG, PQL_AGG_STDVAR},
    {"topk", T_AGG, PQL_AGG_TOPK},
    {"bottomk", T_AGG, PQL_AGG_BOTTOMK},
    {"count_values", T_AGG, PQL_AGG_COUNT_VALUES},
    {"quantile", T_AGG, PQL_AGG_QUANTILE},
    {"limitk", T_AGG, PQL_AGG_LIMITK},
    {"limit_ratio", T_AGG, PQL_AGG_LIMIT_RATIO},
    {"offset", T_OFFSET, 0},
    {"by", T_BY, 0},
    {"without", T_WITHOUT, 0},
    {"on", T_ON, 0},
    {"ignoring", T_IGNORING, 0},
    {"group_left", T_GROUP_LEFT, 0},
    {"group_right", T_GROUP_RIGHT, 0},
    {"bool", T_BOOL, 0},
};

static bool is_alpha(int c) { return isalpha(c) || c == '_'; }
static bool is_alnum(int c) { return isalnum(c) || c == '_'; }

static int dur_unit_len(const char *s, int64_t *mult) {
  if (s[0] == 'm' && s[1] == 's') {
    *mult = 1;
    return 2;
  }
  switch (s[0]) {
  case 's': *mult = 1000; return 1;
  case 'm': *mult = 60000; return 1;
  case 'h': *mult = 3600000; return 1;
  case 'd': *mult = 86400000; return 1;
  case 'w': *mult = 7 * 86400000LL; return 1;
  case 'y': *mult = 365 * 86400000LL; return 1;
  default: return 0;
  }
}

rt_err pql_parse_duration(const char *s, size_t n, int64_t *ms) {
  static const char order[] = "yWdhmsM"; /* M = ms, W = w */
  if (n == 0) {
    return RT_EINVAL;
  }
  if (n == 1 && s[0] == '0') {
    *ms = 0;
    return RT_OK;
  }
  size_t i = 0;
  int64_t total = 0;
  int last = -1;
  while (i < n) {
    if (!isdigit((unsigned char)s[i])) {
      return RT_EINVAL;
    }
    int64_t v = 0;
    while (i < n && isdigit((unsigned char)s[i])) {
      if (v > INT64_MAX / 10) {
        return RT_EINVAL;
      }
      v = v * 10 + (s[i] - '0');
      i++;
    }
    if (i >= n) {
      return RT_EINVAL;
    }
    char tmp[3] = {s[i], i + 1 < n ? s[i + 1] : 0, 0};
    int64_t mult;
    int ul = dur_unit_len(tmp, &mult);
    if (!ul) {
      return RT_EINVAL;
    }
    char u = ul == 2 ? 'M' : (tmp[0] == 'w' ? 'W' : tmp[0]);
    int idx = (int)(strchr(order, u) - order);
    if (idx <= last) {
      return RT_EINVAL;
    }
    last = idx;
    i += (size_t)ul;
    if (v != 0 && mult > INT64_MAX / v) {
      return RT_EINVAL;
    }
    total += v * mult;
    if (total < 0) {
      return RT_EINVAL;
    }
  }
  *ms = total;
  return RT_OK;
}

static void skip_space(parser *p) {
  for (;;) {
    while (p->cur < p->qlen && isspace((unsigned char)p->q[p->cur])) {
      p->cur++;
    }
    if (p->cur < p->qlen && p->q[p->cur] == '#') {
      while (p->cur < p->qlen && p->q[p->cur] != '\n') {
        p->cur++;
      }
      continue;
    }
    break;
  }
}

static void lex_number(parser *p, tok *t) {
  const char *q = p->q;
  int i = p->cur;
  int start = i;
  if (q[i] == '0' && (q[i + 1] == 'x' || q[i + 1] == 'X') && isxdigit((unsigned char)q[i + 2])) {
    i += 2;
    while (isxdigit((unsigned char)q[i])) {
      i++;
    }
    if (is_alnum((unsigned char)q[i]) || q[i] == '.') {
      while (is_alnum((unsigned char)q[i]) || q[i] == '.') {
        i++;
      }
      perr(p, start, "bad number or duration syntax: \"%.*s\"", i - start, q + start);
    }
    t->type = T_NUM;
    t->len = i - start;
    p->cur = i;
    return;
  }
  while (isdigit((unsigned char)q[i])) {
    i++;
  }
  bool frac = false;
  if (q[i] == '.') {
    frac = true;
    i++;
    while (isdigit((unsigned char)q[i])) {
      i++;
    }
  }
  if ((q[i] == 'e' || q[i] == 'E') &&
      (isdigit((unsigned char)q[i + 1]) || ((q[i + 1] == '+' || q[i + 1] == '-') && isdigit((unsigned char)q[i + 2])))) {
    i += 2;
    while (isdigit((unsigned char)q[i])) {
      i++;
    }
    frac = true;
  }
  if (is_alpha((unsigned char)q[i])) {
    /* maybe a duration */
    int j = i;
    while (is_alnum((unsigned char)q[j])) {
      j++;
    }
    int64_t ms;
    if (!frac && pql_parse_duration(q + start, (size_t)(j - start), &ms) == RT_OK) {
      t->type = T_DUR;
      t->len = j - start;
      p->cur = j;
      return;
    }
    perr(p, start, "bad number or duration syntax: \"%.*s\"", j - start, q + start);
  }
  t->type = T_NUM;
  t->len = i - start;
  p->cur = i;
}

static void lex_string(parser *p, tok *t) {
  char qc = p->q[p->cur];
  int i = p->cur + 1;
  while (i < p->qlen && p->q[i] != qc) {
    if (p->q[i] == '\\' && qc != '`') {
      i++;
      if (i >= p->qlen) {
        break;
      }
      if ((unsigned char)p->q[i] >= 0x80) {
        /* an escaped non-ASCII character: skip all of it; unquote() refuses the escape */
        uint32_t cp;
        size_t n = rt_utf8_decode(p->q + i, (size_t)(p->qlen - i), &cp);
        i += n ? (int)n : 1;
        continue;
      }
    } else if (p->q[i] == '\n' && qc != '`') {
      perr(p, p->cur, "unterminated quoted string");
    } else if ((unsigned char)p->q[i] >= 0x80) {
      /* As Prometheus' lexer: a byte that starts no valid UTF-8 sequence, and U+FFFD itself
       * (what Go decodes such a byte to), make the whole string invalid. */
      uint32_t cp = 0;
      size_t n = rt_utf8_decode(p->q + i, (size_t)(p->qlen - i), &cp);
      if (n == 0 || cp == 0xFFFD) {
        perr(p, p->cur, "invalid UTF-8 rune");
      }
      i += (int)n;
      continue;
    }
    i++;
  }
  if (i >= p->qlen) {
    perr(p, p->cur, "unterminated quoted string");
  }
  t->type = T_STR;
  t->len = i + 1 - p->cur;
  p->cur = i + 1;
}

static tok lex(parser *p) {
  tok t = {0};
  skip_space(p);
  t.pos = p->cur;
  if (p->cur >= p->qlen) {
    t.type = T_EOF;
    return t;
  }
  const char *s = p->q + p->cur;
  char c = s[0];
  t.len = 1;
  if (c == '"' || c == '\'' || c == '`') {
    lex_string(p, &t);
    return t;
  }
  if (!p->in_braces && (isdigit((unsigned char)c) || (c == '.' && isdigit((unsigned char)s[1])))) {
    lex_number(p, &t);
    return t;
  }
  if (is_alpha((unsigned char)c) || (!p->in_braces && !p->in_brackets && c == ':')) {
    int i = 0;
    bool colon = false;
    while (is_alnum((unsigned char)s[i]) || (!p->in_braces && s[i] == ':')) {
      if (s[i] == ':') {
        colon = true;
      }
      i++;
    }
    t.len = i;
    p->cur += i;
    t.type = colon ? T_METRIC_IDENT : T_IDENT;
    if (!p->in_braces && !colon) {
      for (size_t k = 0; k < RT_ARRAY_LEN(keywords); k++) {
        if ((int)strlen(keywords[k].w) == i && strncasecmp(keywords[k].w, s, (size_t)i) == 0) {
          t.type = keywords[k].t;
          t.op = keywords[k].op;
          return t;
        }
      }
      if (i == 3 && (strncasecmp(s, "inf", 3) == 0 || strncasecmp(s, "nan", 3) == 0)) {
        t.type = T_NUM;
      }
    }
    return t;
  }
  p->cur++;
  switch (c) {
  case '(': t.type = T_LPAREN; return t;
  case ')': t.type = T_RPAREN; return t;
  case '{': t.type = T_LBRACE; return t;
  case '}': t.type = T_RBRACE; return t;
  case '[': t.type = T_LBRACKET; return t;
  case ']': t.type = T_RBRACKET; return t;
  case ',': t.type = T_COMMA; return t;
  case ':': t.type = T_COLON; return t;
  case '@': t.type = T_AT; return t;
  case '+': t.type = T_BINOP; t.op = PQL_OP_ADD; return t;
  case '-': t.type = T_BINOP; t.op = PQL_OP_SUB; return t;
  case '*': t.type = T_BINOP; t.op = PQL_OP_MUL; return t;
  case '/': t.type = T_BINOP; t.op = PQL_OP_DIV; return t;
  case '%': t.type = T_BINOP; t.op = PQL_OP_MOD; return t;
  case '^': t.type = T_BINOP; t.op = PQL_OP_POW; return t;
  case '=':
    if (s[1] == '=') {
      p->cur++;
      t.len = 2;
      t.type = T_BINOP;
      t.op = PQL_OP_EQLC;
      return t;
    }
    if (s[1] == '~') {
      p->cur++;
      t.len = 2;
      t.type = T_EQL_REGEX;
      return t;
    }
    t.type = T_ASSIGN;
    return t;
  case '!':
    if (s[1] == '=') {
      p->cur++;
      t.len = 2;
      t.type = T_BINOP;
      t.op = PQL_OP_NEQ;
      return t;
    }
    if (s[1] == '~') {
      p->cur++;
      t.len = 2;
      t.type = T_NEQ_REGEX;
      return t;
    }
    perr(p, t.pos, "unexpected character after '!': %s", s[1] ? (char[]){'\'', s[1], '\'', 0} : "EOF");
  case '<':
  case '>':
    t.type = T_BINOP;
    if (s[1] == '=') {
      p->cur++;
      t.len = 2;
      t.op = c == '<' ? PQL_OP_LTE : PQL_OP_GTE;
    } else if (s[1] == '/') {
      p->cur++;
      t.len = 2;
      t.op = c == '<' ? PQL_OP_TRIM_UPPER : PQL_OP_TRIM_LOWER;
    } else {
      t.op = c == '<' ? PQL_OP_LSS : PQL_OP_GTR;
    }
    return t;
  default:
    break;
  }
  if (p->in_braces) {
    perr(p, t.pos, "unexpected character inside braces: '%c'", c);
  }
  perr(p, t.pos, "unexpected character: '%c'", c);
}

static tok *peek(parser *p) {
  if (!p->have_peek) {
    p->peek = lex(p);
    p->have_peek = true;
  }
  return &p->peek;
}

static tok next(parser *p) {
  tok t = *peek(p);
  p->have_peek = false;
  return t;
}

static const char *tok_desc(parser *p, const tok *t, char *buf, size_t len) {
  switch (t->type) {
  case T_EOF: return "end of input";
  case T_IDENT:
  case T_METRIC_IDENT: snprintf(buf, len, "identifier \"%.*s\"", t->len, p->q + t->pos); return buf;
  case T_NUM: snprintf(buf, len, "number \"%.*s\"", t->len, p->q + t->pos); return buf;
  case T_DUR: snprintf(buf, len, "duration \"%.*s\"", t->len, p->q + t->pos); return buf;
  case T_STR: snprintf(buf, len, "string %.*s", t->len, p->q + t->pos); return buf;
  case T_LPAREN: return "\"(\"";
  case T_RPAREN: return "\")\"";
  case T_LBRACE: return "\"{\"";
  case T_RBRACE: return "\"}\"";
  case T_LBRACKET: return "\"[\"";
  case T_RBRACKET: return "\"]\"";
  case T_COMMA: return "\",\"";
  case T_ASSIGN: return "\"=\"";
  case T_COLON: return "\":\"";
  case T_AT: return "\"@\"";
  case T_AGG: snprintf(buf, len, "aggregation \"%.*s\"", t->len, p->q + t->pos); return buf;
  case T_BINOP:
  case T_EQL_REGEX:
  case T_NEQ_REGEX: snprintf(buf, len, "<op:%.*s>", t->len, p->q + t->pos); return buf;
  default: snprintf(buf, len, "<%.*s>", t->len, p->q + t->pos); return buf;
  }
}

static _Noreturn void unexpected(parser *p, const tok *t, const char *ctx, const char *expected) {
  char b[256];
  const char *d = tok_desc(p, t, b, sizeof b);
  if (expected) {
    perr(p, t->pos, "unexpected %s%s%s, expected %s", d, ctx ? " " : "", ctx ? ctx : "", expected);
  }
  perr(p, t->pos, "unexpected %s%s%s", d, ctx ? " " : "", ctx ? ctx : "");
}

static tok expect(parser *p, tok_type type, const char *ctx, const char *what) {
  tok t = next(p);
  if (t.type != type) {
    unexpected(p, &t, ctx, what);
  }
  return t;
}

/* Decodes a quoted string token into the arena. A decoded NUL byte (from an escape) fails the
 * parse with nulmsg: strings are C strings from here on, so it would silently cut the string. */
static char *unquote(parser *p, const tok *t, const char *nulmsg) {
  const char *s = p->q + t->pos;
  int n = t->len;
  char qc = s[0];
  char *out = palloc(p, (size_t)n + 1);
  size_t o = 0;
  if (qc == '`') {
    memcpy(out, s + 1, (size_t)n - 2);
    out[n - 2] = 0;
    return out;
  }
  for (int i = 1; i < n - 1; i++) {
    char c = s[i];
    if (c != '\\') {
      out[o++] = c;
      continue;
    }
    i++;
    c = s[i];
    uint32_t cp = 0;
    int nd = 0;
    switch (c) {
    case 'a': out[o++] = '\a'; continue;
    case 'b': out[o++] = '\b'; continue;
    case 'f': out[o++] = '\f'; continue;
    case 'n': out[o++] = '\n'; continue;
    case 'r': out[o++] = '\r'; continue;
    case 't': out[o++] = '\t'; continue;
    case 'v': out[o++] = '\v'; continue;
    case '\\': out[o++] = '\\'; continue;
    case '\'':
    case '"':
      if (c != qc) {
        perr(p, t->pos, "unknown escape sequence U+%04X '%c'", c, c);
      }
      out[o++] = c;
      continue;
    case 'x': nd = 2; break;
    case 'u': nd = 4; break;
    case 'U': nd = 8; break;
    default:
      if (c >= '0' && c <= '7') {
        int v = 0;
        for (int k = 0; k < 3; k++) {
          if (i + k >= n - 1 || s[i + k] < '0' || s[i + k] > '7') {
            perr(p, t->pos, "invalid syntax");
          }
          v = v * 8 + (s[i + k] - '0');
        }
        if (v > 255) {
          perr(p, t->pos, "octal escape value > 255: %d", v);
        }
        out[o++] = (char)v;
        i += 2;
        continue;
      }
      if ((unsigned char)c >= 0x80) {
        /* named by its code point, U+FFFD when its bytes are not valid UTF-8, as Go does */
        uint32_t ucp = 0;
        size_t un = rt_utf8_decode(s + i, (size_t)(n - 1 - i), &ucp);
        if (un == 0) {
          perr(p, t->pos, "unknown escape sequence U+FFFD '\xef\xbf\xbd'");
        }
        perr(p, t->pos, "unknown escape sequence U+%04X '%.*s'", (unsigned)ucp, (int)un, s + i);
      }
      perr(p, t->pos, "unknown escape sequence U+%04X '%c'", (unsigned char)c, c);
    }
    for (int k = 1; k <= nd; k++) {
      char h = s[i + k];
      if (i + k >= n - 1 || !isxdigit((unsigned char)h)) {
        perr(p, t->pos, "illegal character U+%04X '%c' in escape sequence", (unsigned char)h, h);
      }
      cp = cp * 16 + (uint32_t)(isdigit((unsigned char)h) ? h - '0' : (tolower((unsigned char)h) - 'a' + 10));
    }
    i += nd;
    if (c == 'x') {
      out[o++] = (char)cp;
      continue;
    }
    if (cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) {
      perr(p, t->pos, "escape sequence is invalid Unicode code point");
    }
    if (cp < 0x80) {
      out[o++] = (char)cp;
    } else if (cp < 0x800) {
      out[o++] = (char)(0xc0 | (cp >> 6));
      out[o++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out[o++] = (char)(0xe0 | (cp >> 12));
      out[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
      out[o++] = (char)(0x80 | (cp & 0x3f));
    } else {
      out[o++] = (char)(0xf0 | (cp >> 18));
      out[o++] = (char)(0x80 | ((cp >> 12) & 0x3f));
      out[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
      out[o++] = (char)(0x80 | (cp & 0x3f));
    }
  }
  out[o] = 0;
  if (memchr(out, 0, o)) {
    perr(p, t->pos, "%s", nulmsg);
  }
  return out;
}

/* ---------------- helpers ---------------- */

static pql_expr *node(parser *p, pql_kind k, int pos) {
  pql_expr *e = palloc(p, sizeof *e);
  e->kind = k;
  e->pos = pos;
  e->end = pos;
  e->tree = p->tree;
  e->slot = -1;
  return e;
}

static const char *type_name(pql_type t) {
  switch (t) {
  case PQL_SCALAR: return "scalar";
  case PQL_VECTOR: return "instant vector";
  case PQL_MATRIX: return "range vector";
  case PQL_STRING: return "string";
  default: return "none";
  }
}

static double parse_number_text(parser *p, const tok *t) {
  const char *s = p->q + t->pos;
  char buf[128];
  int n = t->len < 127 ? t->len : 127;
  memcpy(buf, s, (size_t)n);
  buf[n] = 0;
  if (strcasecmp(buf, "inf") == 0) {
    return INFINITY;
  }
  if (strcasecmp(buf, "nan") == 0) {
    return NAN;
  }
  if (n > 2 && buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X')) {
    return (double)strtoull(buf, NULL, 16);
  }
  return strtod(buf, NULL);
}

static int64_t dur_of(parser *p, const tok *t) {
  int64_t ms;
  if (pql_parse_duration(p->q + t->pos, (size_t)t->len, &ms) != RT_OK) {
    perr(p, t->pos, "bad duration syntax: \"%.*s\"", t->len, p->q + t->pos);
  }
  return ms;
}

/* ---- duration expressions ---- */

static pql_dexpr *dnode(parser *p, char op, pql_dexpr *a, pql_dexpr *b) {
  pql_dexpr *d = palloc(p, sizeof *d);
  d->op = op;
  d->a = a;
  d->b = b;
  return d;
}

static bool dexpr_dynamic(const pql_dexpr *d) {
  return d && (d->op == 's' || d->op == 'r' || dexpr_dynamic(d->a) || dexpr_dynamic(d->b));
}

static double dexpr_eval(const pql_dexpr *d, double step, double range) {
  switch (d->op) {
  case 'n':
  case 'd': return d->v;
  case 's': return step;
  case 'r': return range;
  case 'p': return dexpr_eval(d->a, step, range);
  case 'u': return -dexpr_eval(d->a, step, range);
  default: break;
  }
  double a = dexpr_eval(d->a, step, range), b = dexpr_eval(d->b, step, range);
  switch (d->op) {
  case '+': return a + b;
  case '-': return a - b;
  case '*': return a * b;
  case '/': return a / b;
  case '%': return fmod(a, b);
  case '^': return pow(a, b);
  case 'm': return isnan(a) || isnan(b) ? NAN : fmin(a, b);
  case 'M': return isnan(a) || isnan(b) ? NAN : fmax(a, b);
  default: return NAN;
  }
}

int64_t pql_dexpr_ms(const pql_dexpr *d, int64_t step_ms, int64_t range_ms) {
  double v = dexpr_eval(d, (double)step_ms / 1000.0, (double)range_ms / 1000.0) * 1000.0;
  if (isnan(v) || v > 9.2e18 || v < -9.2e18) {
    return 0;
  }
  return (int64_t)llround(v);
}

static pql_dexpr *dexpr_parse(parser *p, int min_prec);

static bool ident_is(parser *p, const tok *t, const char *w) {
  return t->type == T_IDENT && (size_t)t->len == strlen(w) && strncasecmp(p->q + t->pos, w, (size_t)t->len) == 0;
}

/* A primary: number, duration, (expr), step(), range(), min_of(a, b), max_of(a, b), with an
 * optional sign. */
static pql_dexpr *dexpr_primary(parser *p, const char *ctx, bool offset) {
  tok t = next(p);
  if (t.type == T_BINOP && (t.op == PQL_OP_SUB || t.op == PQL_OP_ADD)) {
    /* binds looser than ^; after offset only the sign and one primary belong to the duration */
    pql_dexpr *x = offset ? dexpr_primary(p, ctx, true) : dexpr_parse(p, 3);
    return t.op == PQL_OP_SUB ? dnode(p, 'u', x, NULL) : x;
  }
  if (t.type == T_NUM) {
    pql_dexpr *d = dnode(p, 'n', NULL, NULL);
    d->v = parse_number_text(p, &t);
    return d;
  }
  if (t.type == T_DUR) {
    pql_dexpr *d = dnode(p, 'd', NULL, NULL);
    d->v = (double)dur_of(p, &t) / 1000.0;
    return d;
  }
  if (t.type == T_LPAREN) {
    pql_dexpr *x = dexpr_parse(p, 0);
    expect(p, T_RPAREN, ctx, "\")\"");
    return dnode(p, 'p', x, NULL);
  }
  if (ident_is(p, &t, "step") || ident_is(p, &t, "range")) {
    expect(p, T_LPAREN, ctx, "\"(\"");
    expect(p, T_RPAREN, ctx, "\")\"");
    return dnode(p, tolower((unsigned char)p->q[t.pos]) == 's' ? 's' : 'r', NULL, NULL);
  }
  if (ident_is(p, &t, "min_of") || ident_is(p, &t, "max_of")) {
    expect(p, T_LPAREN, ctx, "\"(\"");
    pql_dexpr *a = dexpr_parse(p, 0);
    expect(p, T_COMMA, ctx, "\",\"");
    pql_dexpr *b = dexpr_parse(p, 0);
    expect(p, T_RPAREN, ctx, "\")\"");
    return dnode(p, tolower((unsigned char)p->q[t.pos + 1]) == 'i' ? 'm' : 'M', a, b);
  }
  unexpected(p, &t, ctx, "duration");
}

static pql_dexpr *dexpr_parse_inner(parser *p, int min_prec);

static pql_dexpr *dexpr_parse(parser *p, int min_prec) {
  if (++p->depth > PQL_MAX_DEPTH) {
    perr(p, peek(p)->pos, "expression nested too deeply (more than %d levels)", PQL_MAX_DEPTH);
  }
  pql_dexpr *d = dexpr_parse_inner(p, min_prec);
  p->depth--;
  return d;
}

static pql_dexpr *dexpr_parse_inner(parser *p, int min_prec) {
  pql_dexpr *l = dexpr_primary(p, "in duration expression", false);
  for (;;) {
    tok *t = peek(p);
    if (t->type != T_BINOP) {
      return l;
    }
    int prec;
    char op;
    switch (t->op) {
    case PQL_OP_ADD: prec = 1; op = '+'; break;
    case PQL_OP_SUB: prec = 1; op = '-'; break;
    case PQL_OP_MUL: prec = 2; op = '*'; break;
    case PQL_OP_DIV: prec = 2; op = '/'; break;
    case PQL_OP_MOD: prec = 2; op = '%'; break;
    case PQL_OP_POW: prec = 4; op = '^'; break;
    default: return l;
    }
    if (prec < min_prec) {
      return l;
    }
    next(p);
    pql_dexpr *r = dexpr_parse(p, op == '^' ? prec : prec + 1);
    l = dnode(p, op, l, r);
  }
}

/* Parses a duration in a bracket (full expression) or offset (one signed primary) position.
 * Constant expressions are folded into *ms; query-dependent ones are returned. */
static pql_dexpr *parse_dur_expr(parser *p, bool offset, int64_t *ms, int *pos) {
  *pos = peek(p)->pos;
  pql_dexpr *d = offset ? dexpr_primary(p, "in offset", true) : dexpr_parse(p, 0);
  if (dexpr_dynamic(d)) {
    *ms = 0;
    return d;
  }
  double v = dexpr_eval(d, 0, 0) * 1000.0;
  if (isnan(v) || isinf(v) || v > 9.2e18 || v < -9.2e18) {
    perr(p, *pos, "duration out of range");
  }
  *ms = (int64_t)llround(v);
  return NULL;
}

static void add_mlist(parser *p, rt_matcher *m) {
  pql_tree *tr = p->tree;
  if (tr->nmlists == tr->capmlists) {
    size_t nc = tr->capmlists ? tr->capmlists * 2 : 8;
    rt_matcher **n = rt_realloc(tr->mlists, tr->capmlists * sizeof *n, nc * sizeof *n);
    if (!n) {
      perr(p, 0, "out of memory");
    }
    tr->mlists = n;
    tr->capmlists = nc;
  }
  tr->mlists[tr->nmlists++] = m;
}

/* ---------------- grammar ---------------- */

static pql_expr *parse_expr(parser *p, int min_prec);
static pql_expr *parse_expr_inner(parser *p, int min_prec);

static int op_prec(pql_op op) {
  switch (op) {
  case PQL_OP_OR: return 1;
  case PQL_OP_AND:
  case PQL_OP_UNLESS: return 2;
  case PQL_OP_EQLC:
  case PQL_OP_NEQ:
  case PQL_OP_GTR:
  case PQL_OP_LSS:
  case PQL_OP_GTE:
  case PQL_OP_LTE: return 3;
  case PQL_OP_ADD:
  case PQL_OP_SUB: return 4;
  case PQL_OP_MUL:
  case PQL_OP_DIV:
  case PQL_OP_MOD:
  case PQL_OP_ATAN2:
  case PQL_OP_TRIM_UPPER:
  case PQL_OP_TRIM_LOWER: return 5;
  case PQL_OP_POW: return 6;
  default: return 0;
  }
}

bool pql_op_is_comparison(pql_op op) { return op >= PQL_OP_EQLC && op <= PQL_OP_LTE; }
bool pql_op_is_setop(pql_op op) { return op == PQL_OP_AND || op == PQL_OP_OR || op == PQL_OP_UNLESS; }

/* Label names in by/without/on/ignoring/group_x lists: identifiers, keywords or strings. */
static void parse_label_list(parser *p, char ***out, size_t *nout, const char *ctx) {
  expect(p, T_LPAREN, ctx, "\"(\"");
  char **v = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    tok t = next(p);
    if (t.type == T_RPAREN) {
      break;
    }
    char *name;
    if (t.type == T_STR) {
      name = unquote(p, &t, "label names must not contain NUL bytes");
      if (!rt_utf8_valid(name, strlen(name))) {
        perr(p, t.pos, "invalid label name \"%s\"", name);
      }
    } else if (t.type == T_IDENT || (t.type >= T_AGG && t.type <= T_OFFSET) ||
               (t.type == T_BINOP && is_alpha((unsigned char)p->q[t.pos])) ||
               (t.type == T_NUM && is_alpha((unsigned char)p->q[t.pos]))) {
      name = pstrndup(p, p->q + t.pos, (size_t)t.len);
    } else {
      unexpected(p, &t, ctx, "label");
    }
    if (n == cap) {
      size_t nc = cap ? cap * 2 : 4;
      char **nv = palloc(p, nc * sizeof *nv);
      if (n) {
        memcpy(nv, v, n * sizeof *nv);
      }
      v = nv;
      cap = nc;
    }
    v[n++] = name;
    t = next(p);
    if (t.type == T_RPAREN) {
      break;
    }
    if (t.type != T_COMMA) {
      unexpected(p, &t, ctx, "\",\" or \")\"");
    }
  }
  *out = v;
  *nout = n;
}

static void vs_add_matcher(parser *p, pql_expr *vs, rt_match_type mt, const char *name, const char *value, int pos,
                           size_t *cap) {
  if (vs->nmatchers == *cap) {
    size_t nc = *cap ? *cap * 2 : 4;
    rt_matcher *nm = rt_calloc(nc + 1, sizeof *nm); /* +1: zeroed terminator */
    if (!nm) {
      perr(p, pos, "out of memory");
    }
    if (vs->nmatchers) {
      memcpy(nm, vs->matchers, vs->nmatchers * sizeof *nm);
    }
    /* the old array is registered; replace its registration */
    for (size_t i = 0; i < p->tree->nmlists; i++) {
      if (p->tree->mlists[i] == vs->matchers) {
        rt_free(vs->matchers, 0);
        p->tree->mlists[i] = nm;
        goto done;
      }
    }
    add_mlist(p, nm);
  done:
    vs->matchers = nm;
    *cap = nc;
  }
  char eb[256];
  if (rt_matcher_init(&vs->matchers[vs->nmatchers], mt, name, value, eb, sizeof eb) != RT_OK) {
    perr(p, pos, "%s", eb);
  }
  vs->nmatchers++;
  /* keep the count visible to the cleanup code: array is calloc'ed, unused entries are zero */
}

static pql_expr *parse_selector(parser *p, int pos, const char *name, int name_len) {
  pql_expr *vs = node(p, PQL_N_VS, pos);
  vs->type = PQL_VECTOR;
  vs->slot = p->tree->nslots++;
  size_t cap = 0;
  /* allocate generously so that a realloc rarely happens */
  if (name) {
    vs->name = pstrndup(p, name, (size_t)name_len);
  }
  vs->end = p->cur;
  if (p->have_peek) {
    vs->end = p->peek.pos;
  }
  if (peek(p)->type == T_LBRACE) {
    next(p);
    p->in_braces = true;
    for (;;) {
      tok t = next(p);
      if (t.type == T_RBRACE) {
        break;
      }
      char *lname;
      if (t.type == T_STR) {
        lname = unquote(p, &t, "label names must not contain NUL bytes");
        tok *nt = peek(p);
        if (nt->type == T_COMMA || nt->type == T_RBRACE) {
          /* a quoted metric name */
          if (vs->name) {
            p->in_braces = false;
            perr(p, t.pos, "metric name must not be set twice: \"%s\" or \"%s\"", vs->name, lname);
          }
          vs->name = lname;
          goto sep;
        }
      } else if (t.type == T_IDENT) {
        lname = pstrndup(p, p->q + t.pos, (size_t)t.len);
      } else {
        p->in_braces = false;
        unexpected(p, &t, "in label matching", "label matching operator");
      }
      {
        tok opt = next(p);
        rt_match_type mt;
        switch (opt.type) {
        case T_ASSIGN: mt = RT_MATCH_EQ; break;
        case T_BINOP:
          if (opt.op == PQL_OP_NEQ) {
            mt = RT_MATCH_NEQ;
            break;
          }
          p->in_braces = false;
          unexpected(p, &opt, "in label matching", "label matching operator");
        case T_EQL_REGEX: mt = RT_MATCH_RE; break;
        case T_NEQ_REGEX: mt = RT_MATCH_NRE; break;
        default: p->in_braces = false; unexpected(p, &opt, "in label matching", "label matching operator");
        }
        tok vt = next(p);
        if (vt.type != T_STR) {
          p->in_braces = false;
          unexpected(p, &vt, "in label matching", "string");
        }
        char *val = unquote(p, &vt, "label values must not contain NUL bytes");
        if (strcmp(lname, "__name__") == 0 && mt == RT_MATCH_EQ && vs->name) {
          p->in_braces = false;
          perr(p, t.pos, "metric name must not be set twice: \"%s\" or \"%s\"", vs->name, val);
        }
        vs_add_matcher(p, vs, mt, lname, val, t.pos, &cap);
      }
    sep:
      t = next(p);
      if (t.type == T_RBRACE) {
        break;
      }
      if (t.type != T_COMMA) {
        p->in_braces = false;
        unexpected(p, &t, "in label matching", "\",\" or \"}\"");
      }
    }
    p->in_braces = false;
    vs->end = p->cur;
  }
  if (vs->name) {
    /* the name matcher goes first, as Prometheus does */
    vs_add_matcher(p, vs, RT_MATCH_EQ, "__name__", vs->name, pos, &cap);
    rt_matcher tmp = vs->matchers[vs->nmatchers - 1];
    memmove(vs->matchers + 1, vs->matchers, (vs->nmatchers - 1) * sizeof *vs->matchers);
    vs->matchers[0] = tmp;
  }
  bool nonempty = p->info_arg;
  for (size_t i = 0; i < vs->nmatchers; i++) {
    if (!rt_matcher_matches_empty(&vs->matchers[i])) {
      nonempty = true;
    }
  }
  if (!nonempty) {
    perr(p, pos, "vector selector must contain at least one non-empty matcher");
  }
  return vs;
}

static void check_type(parser *p, pql_expr *e, pql_type want, const char *ctx) {
  if (e->type != want) {
    perr(p, e->pos, "expected type %s in %s, got %s", type_name(want), ctx, type_name(e->type));
  }
}

static pql_expr *parse_call(parser *p, tok *nt) {
  const pql_func *f = pql_func_lookup(p->q + nt->pos, (size_t)nt->len);
  if (!f) {
    perr(p, nt->pos, "unknown function with name \"%.*s\"", nt->len, p->q + nt->pos);
  }
  pql_expr *c = node(p, PQL_N_CALL, nt->pos);
  c->func = f;
  c->type = f->ret;
  expect(p, T_LPAREN, NULL, NULL);
  size_t cap = 0;
  if (peek(p)->type == T_RPAREN) {
    next(p);
  } else {
    for (;;) {
      p->info_arg = strcmp(f->name, "info") == 0 && c->nargs == 1;
      pql_expr *a = parse_expr(p, 0);
      p->info_arg = false;
      if (c->nargs == cap) {
        size_t ncap = cap ? cap * 2 : 4;
        pql_expr **na = palloc(p, ncap * sizeof *na);
        if (c->nargs) {
          memcpy(na, c->args, c->nargs * sizeof *na);
        }
        c->args = na;
        cap = ncap;
      }
      c->args[c->nargs++] = a;
      tok t = next(p);
      if (t.type == T_RPAREN) {
        break;
      }
      if (t.type != T_COMMA) {
        unexpected(p, &t, "in call to function", "\",\" or \")\"");
      }
      if (peek(p)->type == T_RPAREN) {
        next(p);
        break;
      }
    }
  }
  c->end = p->have_peek ? p->peek.pos : p->cur;
  int na = f->nargs;
  int got = (int)c->nargs;
  if (f->variadic == 0) {
    if (na != got) {
      perr(p, c->pos, "expected %d argument(s) in call to \"%s\", got %d", na, f->name, got);
    }
  } else {
    if (na - 1 > got) {
      perr(p, c->pos, "expected at least %d argument(s) in call to \"%s\", got %d", na - 1, f->name, got);
    }
    if (f->variadic > 0 && na - 1 + f->variadic < got) {
      perr(p, c->pos, "expected at most %d argument(s) in call to \"%s\", got %d", na - 1 + f->variadic, f->name, got);
    }
  }
  char ctx[128];
  snprintf(ctx, sizeof ctx, "call to function \"%s\"", f->name);
  for (int i = 0; i < got; i++) {
    int k = i;
    if (k >= na) {
      if (f->variadic == 0) {
        break;
      }
      k = na - 1;
    }
    check_type(p, c->args[i], f->args[k], ctx);
  }
  if (strcmp(f->name, "info") == 0) {
    /* the info series to join: the __name__ matchers of the selector, or target_info */
    if (c->nargs > 1 && c->args[1]->kind != PQL_N_VS) {
      perr(p, c->args[1]->pos, "expected label selector as the second argument of info()");
    }
    pql_expr *hv = node(p, PQL_N_VS, c->pos);
    hv->type = PQL_VECTOR;
    hv->slot = p->tree->nslots++;
    size_t cap2 = 0;
    if (c->nargs > 1) {
      const pql_expr *sel = c->args[1];
      for (size_t i = 0; i < sel->nmatchers; i++) {
        const rt_matcher *m = &sel->matchers[i];
        if (strcmp(m->name, "__name__") == 0) {
          vs_add_matcher(p, hv, m->type, m->name, m->value, sel->pos, &cap2);
        }
      }
    }
    if (hv->nmatchers == 0) {
      vs_add_matcher(p, hv, RT_MATCH_EQ, "__name__", "target_info", c->pos, &cap2);
    } else {
      bool positive = false;
      for (size_t i = 0; i < hv->nmatchers; i++) {
        positive |= hv->matchers[i].type == RT_MATCH_EQ || hv->matchers[i].type == RT_MATCH_RE;
      }
      if (!positive) {
        /* only negative name matchers: they narrow down the info metrics (names ending in _info) */
        vs_add_matcher(p, hv, RT_MATCH_RE, "__name__", ".+_info", c->pos, &cap2);
      }
    }
    c->b = hv;
  }
  return c;
}

static bool agg_has_param(pql_op op) {
  return op == PQL_AGG_TOPK || op == PQL_AGG_BOTTOMK || op == PQL_AGG_COUNT_VALUES || op == PQL_AGG_QUANTILE ||
         op == PQL_AGG_LIMITK || op == PQL_AGG_LIMIT_RATIO;
}

static pql_expr *parse_agg(parser *p, tok *at) {
  pql_expr *e = node(p, PQL_N_AGG, at->pos);
  e->op = at->op;
  e->type = PQL_VECTOR;
  tok *t = peek(p);
  if (t->type == T_BY || t->type == T_WITHOUT) {
    e->without = t->type == T_WITHOUT;
    e->by_given = true;
    next(p);
    parse_label_list(p, &e->labels, &e->nlabels, "in grouping opts");
  }
  tok lp = next(p);
  if (lp.type != T_LPAREN) {
    unexpected(p, &lp, "in aggregation", "\"(\"");
  }
  pql_expr *args[3];
  int n = 0;
  if (peek(p)->type == T_RPAREN) {
    tok rp = next(p);
    unexpected(p, &rp, "in aggregation", NULL);
  }
  for (;;) {
    if (n == 3) {
      perr(p, e->pos, "too many arguments for aggregation");
    }
    args[n++] = parse_expr(p, 0);
    tok s = next(p);
    if (s.type == T_RPAREN) {
      break;
    }
    if (s.type != T_COMMA) {
      unexpected(p, &s, "in aggregation", "\",\" or \")\"");
    }
    if (peek(p)->type == T_RPAREN) {
      next(p);
      break;
    }
  }
  t = peek(p);
  if (t->type == T_BY || t->type == T_WITHOUT) {
    if (e->by_given) {
      perr(p, t->pos, "unexpected <by/without> in aggregation, grouping opts given twice");
    }
    e->without = t->type == T_WITHOUT;
    e->by_given = true;
    e->grouping_after = true;
    next(p);
    parse_label_list(p, &e->labels, &e->nlabels, "in grouping opts");
  }
  e->end = p->have_peek ? p->peek.pos : p->cur;
  int want = agg_has_param(e->op) ? 2 : 1;
  if (n != want) {
    perr(p, e->pos, "wrong number of arguments for aggregate expression provided, expected %d, got %d", want, n);
  }
  if (want == 2) {
    e->b = args[0];
    e->a = args[1];
    if (e->op == PQL_AGG_COUNT_VALUES) {
      check_type(p, e->b, PQL_STRING, "aggregation parameter");
    } else {
      check_type(p, e->b, PQL_SCALAR, "aggregation parameter");
    }
  } else {
    e->a = args[0];
  }
  check_type(p, e->a, PQL_VECTOR, "aggregation expression");
  return e;
}

static pql_expr *parse_primary(parser *p) {
  tok t = next(p);
  pql_expr *e;
  switch (t.type) {
  case T_NUM:
    e = node(p, PQL_N_NUM, t.pos);
    e->type = PQL_SCALAR;
    e->num = parse_number_text(p, &t);
    e->end = t.pos + t.len;
    return e;
  case T_DUR:
    e = node(p, PQL_N_NUM, t.pos);
    e->type = PQL_SCALAR;
    e->num = (double)dur_of(p, &t) / 1000.0;
    e->num_is_dur = true;
    e->end = t.pos + t.len;
    return e;
  case T_STR:
    e = node(p, PQL_N_STR, t.pos);
    e->type = PQL_STRING;
    e->str = unquote(p, &t, "strings must not contain NUL bytes");
    e->end = t.pos + t.len;
    return e;
  case T_LPAREN: {
    pql_expr *in = parse_expr(p, 0);
    tok r = next(p);
    if (r.type != T_RPAREN) {
      unexpected(p, &r, "in paren expression", "\")\"");
    }
    e = node(p, PQL_N_PAREN, t.pos);
    e->a = in;
    e->type = in->type;
    e->end = r.pos + 1;
    return e;
  }
  case T_LBRACE:
    p->have_peek = false;
    p->cur = t.pos; /* re-read the brace in selector mode */
    return parse_selector(p, t.pos, NULL, 0);
  case T_IDENT:
  case T_METRIC_IDENT: {
    if (t.type == T_IDENT) {
      int save = p->cur;
      skip_space(p);
      bool call = p->cur < p->qlen && p->q[p->cur] == '(';
      p->cur = save;
      if (call) {
        return parse_call(p, &t);
      }
    }
    return parse_selector(p, t.pos, p->q + t.pos, t.len);
  }
  case T_AGG: return parse_agg(p, &t);
  default: unexpected(p, &t, NULL, NULL);
  }
}

static bool is_selector_like(pql_expr *e) { return e->kind == PQL_N_VS || e->kind == PQL_N_MS || e->kind == PQL_N_SUBQ; }

static pql_expr *parse_postfix(parser *p, pql_expr *e) {
  for (;;) {
    tok *t = peek(p);
    if (t->type == T_LBRACKET) {
      tok lb = next(p);
      p->in_brackets = true;
      int64_t range;
      int dpos;
      pql_dexpr *drange = parse_dur_expr(p, false, &range, &dpos);
      tok c = next(p);
      if (c.type == T_RBRACKET) {
        p->in_brackets = false;
        if (e->kind != PQL_N_VS) {
          perr(p, e->pos, "ranges only allowed for vector selectors");
        }
        if (e->offset != 0) {
          perr(p, lb.pos, "no offset modifiers allowed before range");
        }
        if (e->at != PQL_AT_NONE) {
          perr(p, lb.pos, "no @ modifiers allowed before range");
        }
        if (range <= 0 && !drange) {
          perr(p, lb.pos, "duration must be greater than 0");
        }
        pql_expr *ms = node(p, PQL_N_MS, e->pos);
        ms->a = e;
        ms->range = range;
        ms->drange = drange;
        ms->type = PQL_MATRIX;
        ms->end = c.pos + 1;
        e = ms;
        continue;
      }
      if (c.type != T_COLON) {
        unexpected(p, &c, "in subquery or range selector", "\":\" or \"]\"");
      }
      int64_t step = 0;
      pql_dexpr *dstep = NULL;
      if (peek(p)->type != T_RBRACKET) {
        dstep = parse_dur_expr(p, false, &step, &dpos);
      }
      tok rb = next(p);
      if (rb.type != T_RBRACKET) {
        unexpected(p, &rb, "in subquery", "\"]\"");
      }
      p->in_brackets = false;
      if (e->type != PQL_VECTOR) {
        perr(p, e->pos, "subquery is only allowed on instant vector, got %s instead", type_name(e->type));
      }
      if (range <= 0 && !drange) {
        perr(p, lb.pos, "duration must be greater than 0");
      }
      if (!dstep && (step < 0 || (step == 0 && p->q[rb.pos - 1] != ':' && !isspace((unsigned char)p->q[rb.pos - 1])))) {
        perr(p, lb.pos, "duration must be greater than 0");
      }
      pql_expr *sq = node(p, PQL_N_SUBQ, e->pos);
      sq->drange = drange;
      sq->dstep = dstep;
      sq->slot = p->tree->nsubqs++;
      sq->a = e;
      sq->range = range;
      sq->step = step;
      sq->type = PQL_MATRIX;
      sq->end = rb.pos + 1;
      e = sq;
      continue;
    }
    if (t->type == T_OFFSET) {
      tok ot = next(p);
      int64_t off;
      int dpos;
      pql_dexpr *doff = parse_dur_expr(p, true, &off, &dpos);
      pql_expr *target = e->kind == PQL_N_MS ? e->a : e;
      if (!is_selector_like(e)) {
        perr(p, ot.pos, "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery");
      }
      if (target->offset != 0 || target->doffset) {
        perr(p, ot.pos, "offset may not be set multiple times");
      }
      target->offset = off;
      target->doffset = doff;
      e->end = p->have_peek ? p->peek.pos : p->cur;
      continue;
    }
    if (t->type == T_IDENT && ((t->len == 8 && strncmp(p->q + t->pos, "anchored", 8) == 0) ||
                               (t->len == 8 && strncmp(p->q + t->pos, "smoothed", 8) == 0))) {
      tok mt = next(p);
      pql_expr *target = e->kind == PQL_N_MS ? e->a : e;
      bool smoothed = p->q[mt.pos] == 's';
      if (target->kind != PQL_N_VS) {
        perr(p, mt.pos, "%s modifier must be preceded by an instant vector selector or range vector selector",
             smoothed ? "smoothed" : "anchored");
      }
      if (target->ext) {
        perr(p, mt.pos, "duplicate %s modifier", smoothed ? "smoothed" : "anchored");
      }
      if (!smoothed && e->kind != PQL_N_MS) {
        perr(p, mt.pos, "anchored modifier can only be used with range vector selectors");
      }
      target->ext = smoothed ? PQL_EXT_SMOOTHED : PQL_EXT_ANCHORED;
      e->end = mt.pos + mt.len;
      continue;
    }
    if (t->type == T_AT) {
      tok at = next(p);
      pql_expr *target = e->kind == PQL_N_MS ? e->a : e;
      if (!is_selector_like(e)) {
        perr(p, at.pos, "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery");
      }
      if (target->at != PQL_AT_NONE) {
        perr(p, at.pos, "@ <timestamp> may not be set multiple times");
      }
      tok v = next(p);
      if (v.type == T_IDENT && ((v.len == 5 && strncmp(p->q + v.pos, "start", 5) == 0) ||
                                (v.len == 3 && strncmp(p->q + v.pos, "end", 3) == 0))) {
        target->at = v.len == 5 ? PQL_AT_START : PQL_AT_END;
        expect(p, T_LPAREN, "in @", "\"(\"");
        expect(p, T_RPAREN, "in @", "\")\"");
      } else {
        bool neg = false;
        if (v.type == T_BINOP && (v.op == PQL_OP_SUB || v.op == PQL_OP_ADD)) {
          neg = v.op == PQL_OP_SUB;
          v = next(p);
        }
        double secs;
        if (v.type == T_NUM) {
          secs = parse_number_text(p, &v);
        } else if (v.type == T_DUR) {
          secs = (double)dur_of(p, &v) / 1000.0;
        } else {
          unexpected(p, &v, "in @", "timestamp");
        }
        if (neg) {
          secs = -secs;
        }
        if (isnan(secs) || isinf(secs) || secs * 1000 > 9.2e18 || secs * 1000 < -9.2e18) {
          perr(p, v.pos, "timestamp out of bounds for @ modifier: %f", secs);
        }
        target->at = PQL_AT_TIME;
        target->at_ms = (int64_t)llround(secs * 1000);
      }
      e->end = p->have_peek ? p->peek.pos : p->cur;
      continue;
    }
    return e;
  }
}

static pql_expr *parse_unary(parser *p) {
  tok *t = peek(p);
  if (t->type == T_BINOP && (t->op == PQL_OP_ADD || t->op == PQL_OP_SUB)) {
    tok ut = next(p);
    pql_expr *x = parse_expr(p, 6);
    if (x->type != PQL_SCALAR && x->type != PQL_VECTOR) {
      perr(p, x->pos, "unary expression only allowed on expressions of type scalar or instant vector, got \"%s\"",
           type_name(x->type));
    }
    if (x->kind == PQL_N_NUM) {
      if (ut.op == PQL_OP_SUB) {
        x->num = -x->num;
      }
      x->pos = ut.pos;
      return x;
    }
    pql_expr *u = node(p, PQL_N_UNARY, ut.pos);
    u->op = ut.op;
    u->a = x;
    u->type = x->type;
    u->end = x->end;
    return u;
  }
  return parse_postfix(p, parse_primary(p));
}

static pql_expr *parse_expr(parser *p, int min_prec) {
  if (++p->depth > PQL_MAX_DEPTH) {
    perr(p, peek(p)->pos, "expression nested too deeply (more than %d levels)", PQL_MAX_DEPTH);
  }
  pql_expr *r = parse_expr_inner(p, min_prec);
  p->depth--;
  return r;
}

static pql_expr *parse_expr_inner(parser *p, int min_prec) {
  pql_expr *lhs = parse_unary(p);
  for (;;) {
    tok *t = peek(p);
    if (t->type != T_BINOP) {
      if (t->type == T_AGG || t->type == T_BY || t->type == T_WITHOUT || t->type == T_ON ||
          t->type == T_IGNORING || t->type == T_GROUP_LEFT || t->type == T_GROUP_RIGHT || t->type == T_BOOL) {
        /* keywords that cannot follow an expression */
        tok bad = *t;
        unexpected(p, &bad, NULL, NULL);
      }
      return lhs;
    }
    int prec = op_prec(t->op);
    if (prec < min_prec) {
      return lhs;
    }
    tok ot = next(p);
    pql_expr *b = node(p, PQL_N_BIN, lhs->pos);
    b->op = ot.op;
    b->a = lhs;
    b->card = pql_op_is_setop(ot.op) ? PQL_CARD_MANY_TO_MANY : PQL_CARD_ONE_TO_ONE;
    if (peek(p)->type == T_BOOL) {
      tok bt = next(p);
      if (!pql_op_is_comparison(ot.op)) {
        perr(p, bt.pos, "bool modifier can only be used on comparison operators");
      }
      b->ret_bool = true;
    }
    tok *mt = peek(p);
    if (mt->type == T_ON || mt->type == T_IGNORING) {
      b->on = mt->type == T_ON;
      b->matching_given = true;
      next(p);
      parse_label_list(p, &b->labels, &b->nlabels, "in grouping opts");
      mt = peek(p);
      if (mt->type == T_GROUP_LEFT || mt->type == T_GROUP_RIGHT) {
        tok gt = next(p);
        if (pql_op_is_setop(ot.op)) {
          perr(p, gt.pos, "no grouping allowed for \"%s\" operation", pql_op_str(ot.op));
        }
        b->card = gt.type == T_GROUP_LEFT ? PQL_CARD_MANY_TO_ONE : PQL_CARD_ONE_TO_MANY;
        if (peek(p)->type == T_LPAREN) {
          parse_label_list(p, &b->include, &b->ninclude, "in grouping opts");
        }
      }
    } else if (mt->type == T_GROUP_LEFT || mt->type == T_GROUP_RIGHT) {
      tok bad = *mt;
      unexpected(p, &bad, NULL, NULL);
    }
    /* fill(v), fill_left(v), fill_right(v): an identifier of that name directly followed by "(" */
    for (;;) {
      tok *ft = peek(p);
      if (ft->type != T_IDENT) {
        break;
      }
      int which = 0;
      if (ft->len == 4 && strncmp(p->q + ft->pos, "fill", 4) == 0) {
        which = 3;
      } else if (ft->len == 9 && strncmp(p->q + ft->pos, "fill_left", 9) == 0) {
        which = 1;
      } else if (ft->len == 10 && strncmp(p->q + ft->pos, "fill_right", 10) == 0) {
        which = 2;
      }
      if (!which) {
        break;
      }
      int save = p->cur;
      skip_space(p);
      bool call = p->cur < p->qlen && p->q[p->cur] == '(';
      p->cur = save;
      if (!call) {
        break;
      }
      tok fname = next(p);
      if (pql_op_is_setop(ot.op)) {
        perr(p, fname.pos, "fill modifiers are not allowed for set operators");
      }
      expect(p, T_LPAREN, "in fill modifier", "\"(\"");
      tok v = next(p);
      bool neg = false;
      if (v.type == T_BINOP && (v.op == PQL_OP_SUB || v.op == PQL_OP_ADD)) {
        neg = v.op == PQL_OP_SUB;
        v = next(p);
      }
      if (v.type != T_NUM) {
        unexpected(p, &v, "in fill modifier", "number");
      }
      double fv = parse_number_text(p, &v);
      if (neg) {
        fv = -fv;
      }
      expect(p, T_RPAREN, "in fill modifier", "\")\"");
      if (which & 1) {
        b->fill_l = true;
        b->fill_lv = fv;
      }
      if (which & 2) {
        b->fill_r = true;
        b->fill_rv = fv;
      }
    }
    pql_expr *rhs = parse_expr(p, ot.op == PQL_OP_POW ? prec : prec + 1);
    b->b = rhs;
    b->end = rhs->end;
    pql_type lt = lhs->type, rt = rhs->type;
    if (b->on) {
      for (size_t i = 0; i < b->nlabels; i++) {
        for (size_t j = 0; j < b->ninclude; j++) {
          if (strcmp(b->labels[i], b->include[j]) == 0) {
            perr(p, ot.pos, "label \"%s\" must not occur in ON and GROUP clause at once", b->labels[i]);
          }
        }
      }
    }
    if (pql_op_is_comparison(ot.op) && !b->ret_bool && lt == PQL_SCALAR && rt == PQL_SCALAR) {
      perr(p, ot.pos, "comparisons between scalars must use BOOL modifier");
    }
    if (lt != PQL_SCALAR && lt != PQL_VECTOR) {
      perr(p, lhs->pos, "binary expression must contain only scalar and instant vector types");
    }
    if (rt != PQL_SCALAR && rt != PQL_VECTOR) {
      perr(p, rhs->pos, "binary expression must contain only scalar and instant vector types");
    }
    if ((lt != PQL_VECTOR || rt != PQL_VECTOR) && b->matching_given) {
      if (b->nlabels > 0 || b->card == PQL_CARD_MANY_TO_ONE || b->card == PQL_CARD_ONE_TO_MANY) {
        perr(p, b->pos, "vector matching only allowed between instant vectors");
      }
    }
    if ((lt == PQL_SCALAR || rt == PQL_SCALAR) && pql_op_is_setop(ot.op)) {
      perr(p, b->pos, "set operator \"%s\" not allowed in binary scalar expression", pql_op_str(ot.op));
    }
    b->type = (lt == PQL_SCALAR && rt == PQL_SCALAR) ? PQL_SCALAR : PQL_VECTOR;
    lhs = b;
  }
}

rt_err pql_parse(const char *query, pql_expr **out, char *errbuf, size_t errlen) {
  *out = NULL;
  pql_tree *tr = rt_calloc(1, sizeof *tr);
  if (!tr) {
    return RT_ENOMEM;
  }
  tr->arena = rt_arena_create(4096);
  if (!tr->arena) {
    rt_free(tr, sizeof *tr);
    return RT_ENOMEM;
  }
  parser p = {0};
  p.q = query;
  p.qlen = (int)strlen(query);
  p.tree = tr;
  p.err = errbuf;
  p.errlen = errlen;
  tr->query = rt_arena_strndup(tr->arena, query, strlen(query));
  if (setjmp(p.jb)) {
    pql_expr tmp = {.tree = tr};
    pql_expr_free(&tmp);
    return RT_EINVAL;
  }
  if (peek(&p)->type == T_EOF) {
    perr(&p, 0, "no expression found in input");
  }
  pql_expr *e = parse_expr(&p, 0);
  tok t = next(&p);
  if (t.type != T_EOF) {
    unexpected(&p, &t, NULL, NULL);
  }
  *out = e;
  return RT_OK;
}

void pql_expr_free(pql_expr *e) {
  if (!e) {
    return;
  }
  pql_tree *tr = e->tree;
  for (size_t i = 0; i < tr->nmlists; i++) {
    rt_matcher *m = tr->mlists[i];
    /* arrays are calloc'ed: stop at the first never-initialized entry */
    for (size_t k = 0; m[k].name; k++) {
      rt_matcher_fini(&m[k]);
    }
    rt_free(m, 0);
  }
  rt_free(tr->mlists, tr->capmlists * sizeof *tr->mlists);
  rt_arena_destroy(tr->arena);
  rt_free(tr, sizeof *tr);
}

pql_type pql_expr_type(const pql_expr *e) { return e->type; }
