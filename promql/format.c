/* format.c - canonical printing of PromQL trees and durations (Go-compatible); numbers through
 * common/floatfmt.h. */
#include "promql/pql_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pql_format_duration(int64_t ms, rt_buf *b) {
  if (ms == 0) {
    rt_buf_puts(b, "0s");
    return;
  }
  if (ms < 0) {
    rt_buf_putc(b, '-');
    ms = -ms;
  }
  static const struct {
    int64_t mult;
    const char *u;
  } units[] = {{365LL * 86400000, "y"}, {7LL * 86400000, "w"}, {86400000, "d"}, {3600000, "h"},
               {60000, "m"},          {1000, "s"},            {1, "ms"}};
  for (size_t i = 0; i < RT_ARRAY_LEN(units); i++) {
    if (ms >= units[i].mult) {
      rt_buf_printf(b, "%lld%s", (long long)(ms / units[i].mult), units[i].u);
      ms %= units[i].mult;
    }
  }
}

void pql_quote_string(const char *s, rt_buf *b) {
  static const char hex[] = "0123456789abcdef";
  rt_buf_putc(b, '"');
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    unsigned char c = *p;
    switch (c) {
    case '"': rt_buf_puts(b, "\\\""); break;
    case '\\': rt_buf_puts(b, "\\\\"); break;
    case '\n': rt_buf_puts(b, "\\n"); break;
    case '\r': rt_buf_puts(b, "\\r"); break;
    case '\t': rt_buf_puts(b, "\\t"); break;
    case '\a': rt_buf_puts(b, "\\a"); break;
    case '\b': rt_buf_puts(b, "\\b"); break;
    case '\f': rt_buf_puts(b, "\\f"); break;
    case '\v': rt_buf_puts(b, "\\v"); break;
    default:
      if (c < 0x20 || c == 0x7f) {
        rt_buf_puts(b, "\\x");
        rt_buf_putc(b, hex[c >> 4]);
        rt_buf_putc(b, hex[c & 15]);
      } else if (c >= 0x80) {
        /* keep valid UTF-8 sequences, escape stray bytes */
        size_t len = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (len && strnlen((const char *)p, len) == len && rt_utf8_valid((const char *)p, len)) {
          rt_buf_append(b, p, len);
          p += len - 1;
        } else {
          rt_buf_puts(b, "\\x");
          rt_buf_putc(b, hex[c >> 4]);
          rt_buf_putc(b, hex[c & 15]);
        }
      } else {
        rt_buf_putc(b, (char)c);
      }
    }
  }
  rt_buf_putc(b, '"');
}

const char *pql_op_str(pql_op op) {
  switch (op) {
  case PQL_OP_ADD: return "+";
  case PQL_OP_SUB: return "-";
  case PQL_OP_MUL: return "*";
  case PQL_OP_DIV: return "/";
  case PQL_OP_MOD: return "%";
  case PQL_OP_POW: return "^";
  case PQL_OP_ATAN2: return "atan2";
  case PQL_OP_EQLC: return "==";
  case PQL_OP_NEQ: return "!=";
  case PQL_OP_GTR: return ">";
  case PQL_OP_LSS: return "<";
  case PQL_OP_GTE: return ">=";
  case PQL_OP_TRIM_UPPER: return "</";
  case PQL_OP_TRIM_LOWER: return ">/";
  case PQL_OP_LTE: return "<=";
  case PQL_OP_AND: return "and";
  case PQL_OP_OR: return "or";
  case PQL_OP_UNLESS: return "unless";
  case PQL_AGG_SUM: return "sum";
  case PQL_AGG_AVG: return "avg";
  case PQL_AGG_COUNT: return "count";
  case PQL_AGG_MIN: return "min";
  case PQL_AGG_MAX: return "max";
  case PQL_AGG_GROUP: return "group";
  case PQL_AGG_STDDEV: return "stddev";
  case PQL_AGG_STDVAR: return "stdvar";
  case PQL_AGG_TOPK: return "topk";
  case PQL_AGG_BOTTOMK: return "bottomk";
  case PQL_AGG_COUNT_VALUES: return "count_values";
  case PQL_AGG_QUANTILE: return "quantile";
  case PQL_AGG_LIMITK: return "limitk";
  case PQL_AGG_LIMIT_RATIO: return "limit_ratio";
  default: return "?";
  }
}

static bool metric_name_legacy(const char *s) {
  if (!*s) {
    return false;
  }
  for (const char *p = s; *p; p++) {
    char c = *p;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (p > s && c >= '0' && c <= '9');
    if (!ok) {
      return false;
    }
  }
  return true;
}

static void put_label_name(const char *n, rt_buf *b) {
  if (rt_label_name_is_legacy(n, strlen(n))) {
    rt_buf_puts(b, n);
  } else {
    pql_quote_string(n, b);
  }
}

static void put_label_list(char **l, size_t n, rt_buf *b) {
  rt_buf_putc(b, '(');
  for (size_t i = 0; i < n; i++) {
    if (i) {
      rt_buf_puts(b, ", ");
    }
    put_label_name(l[i], b);
  }
  rt_buf_putc(b, ')');
}

void pql_dexpr_format(const pql_dexpr *d, rt_buf *b) {
  char fb[RT_FLOAT_MAX];
  switch (d->op) {
  case 'n': rt_buf_puts(b, rt_float_str(fb, d->v, 'f')); return;
  case 'd': pql_format_duration((int64_t)llround(d->v * 1000), b); return;
  case 's': rt_buf_puts(b, "step()"); return;
  case 'r': rt_buf_puts(b, "range()"); return;
  case 'p':
    rt_buf_putc(b, '(');
    pql_dexpr_format(d->a, b);
    rt_buf_putc(b, ')');
    return;
  case 'u':
    rt_buf_putc(b, '-');
    pql_dexpr_format(d->a, b);
    return;
  case 'm':
  case 'M':
    rt_buf_puts(b, d->op == 'm' ? "min_of(" : "max_of(");
    pql_dexpr_format(d->a, b);
    rt_buf_puts(b, ", ");
    pql_dexpr_format(d->b, b);
    rt_buf_putc(b, ')');
    return;
  default:
    pql_dexpr_format(d->a, b);
    rt_buf_printf(b, " %c ", d->op);
    pql_dexpr_format(d->b, b);
    return;
  }
}

static void put_range(const pql_dexpr *d, int64_t ms, rt_buf *b) {
  if (d) {
    pql_dexpr_format(d, b);
  } else {
    pql_format_duration(ms, b);
  }
}

static void put_at_offset(const pql_expr *e, rt_buf *b) {
  if (e->ext) {
    rt_buf_puts(b, e->ext == PQL_EXT_SMOOTHED ? " smoothed" : " anchored");
  }
  switch (e->at) {
  case PQL_AT_TIME: rt_buf_printf(b, " @ %.3f", (double)e->at_ms / 1000.0); break;
  case PQL_AT_START: rt_buf_puts(b, " @ start()"); break;
  case PQL_AT_END: rt_buf_puts(b, " @ end()"); break;
  default: break;
  }
  if (e->doffset) {
    bool paren = e->doffset->op != 'p';
    rt_buf_puts(b, paren ? " offset (" : " offset ");
    pql_dexpr_format(e->doffset, b);
    if (paren) {
      rt_buf_putc(b, ')');
    }
  } else if (e->offset != 0) {
    rt_buf_puts(b, " offset ");
    pql_format_duration(e->offset, b);
  }
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void put_vs(const pql_expr *e, rt_buf *b) {
  bool name_legacy = e->name && metric_name_legacy(e->name);
  if (name_legacy) {
    rt_buf_puts(b, e->name);
  }
  /* matchers as strings, sorted (the name matcher implied by the metric name is left out) */
  char **ms = rt_calloc(e->nmatchers + 1, sizeof *ms);
  size_t n = 0;
  for (size_t i = 0; ms && i < e->nmatchers; i++) {
    const rt_matcher *m = &e->matchers[i];
    if (e->name && m->type == RT_MATCH_EQ && strcmp(m->name, "__name__") == 0 && strcmp(m->value, e->name) == 0 &&
        m->value[0]) {
      continue;
    }
    rt_buf mb = RT_BUF_INIT;
    put_label_name(m->name, &mb);
    static const char *ops[] = {"=", "!=", "=~", "!~"};
    rt_buf_puts(&mb, ops[m->type]);
    pql_quote_string(m->value, &mb);
    size_t len;
    ms[n] = rt_buf_steal(&mb, &len);
    if (ms[n]) {
      n++;
    }
  }
  if (n > 1) {
    qsort(ms, n, sizeof *ms, cmp_str);
  }
  if (n > 0 || (e->name && !name_legacy)) {
    rt_buf_putc(b, '{');
    bool first = true;
    if (e->name && !name_legacy) {
      pql_quote_string(e->name, b);
      first = false;
    }
    for (size_t i = 0; i < n; i++) {
      if (!first) {
        rt_buf_putc(b, ',');
      }
      first = false;
      rt_buf_puts(b, ms[i]);
    }
    rt_buf_putc(b, '}');
  }
  for (size_t i = 0; i < n; i++) {
    rt_free(ms[i], 0);
  }
  rt_free(ms, 0);
  put_at_offset(e, b);
}

/* A number literal: the shortest digits, in exponent form below 1e-4 and from 1e21. */
static void put_go_number(double v, rt_buf *b) {
  char fb[RT_FLOAT_SHORT + 21];
  rt_buf_append(b, fb, rt_float_format_g(fb, v, 21));
}

void pql_format(const pql_expr *e, rt_buf *b) {
  char fb[RT_FLOAT_MAX];
  switch (e->kind) {
  case PQL_N_NUM:
    if (e->num_is_dur && isfinite(e->num)) {
      pql_format_duration((int64_t)llround(e->num * 1000), b);
    } else {
      put_go_number(e->num, b);
    }
    return;
  case PQL_N_STR: pql_quote_string(e->str, b); return;
  case PQL_N_VS: put_vs(e, b); return;
  case PQL_N_MS: {
    pql_expr tmp = *e->a;
    tmp.at = PQL_AT_NONE;
    tmp.offset = 0;
    tmp.ext = 0;
    tmp.doffset = NULL;
    put_vs(&tmp, b);
    rt_buf_putc(b, '[');
    put_range(e->drange, e->range, b);
    rt_buf_putc(b, ']');
    put_at_offset(e->a, b);
    return;
  }
  case PQL_N_SUBQ:
    pql_format(e->a, b);
    rt_buf_putc(b, '[');
    put_range(e->drange, e->range, b);
    rt_buf_putc(b, ':');
    if (e->step || e->dstep) {
      put_range(e->dstep, e->step, b);
    }
    rt_buf_putc(b, ']');
    put_at_offset(e, b);
    return;
  case PQL_N_CALL:
    rt_buf_puts(b, e->func->name);
    rt_buf_putc(b, '(');
    for (size_t i = 0; i < e->nargs; i++) {
      if (i) {
        rt_buf_puts(b, ", ");
      }
      pql_format(e->args[i], b);
    }
    rt_buf_putc(b, ')');
    return;
  case PQL_N_AGG:
    rt_buf_puts(b, pql_op_str(e->op));
    if (e->without) {
      rt_buf_puts(b, " without ");
      put_label_list(e->labels, e->nlabels, b);
      rt_buf_putc(b, ' ');
    } else if (e->nlabels > 0) {
      rt_buf_puts(b, " by ");
      put_label_list(e->labels, e->nlabels, b);
      rt_buf_putc(b, ' ');
    }
    rt_buf_putc(b, '(');
    if (e->b) {
      pql_format(e->b, b);
      rt_buf_puts(b, ", ");
    }
    pql_format(e->a, b);
    rt_buf_putc(b, ')');
    return;
  case PQL_N_BIN:
    pql_format(e->a, b);
    rt_buf_printf(b, " %s", pql_op_str(e->op));
    if (e->ret_bool) {
      rt_buf_puts(b, " bool");
    }
    if (e->a->type == PQL_VECTOR && e->b->type == PQL_VECTOR && (e->nlabels > 0 || e->on)) {
      rt_buf_puts(b, e->on ? " on " : " ignoring ");
      put_label_list(e->labels, e->nlabels, b);
      if (e->card == PQL_CARD_MANY_TO_ONE || e->card == PQL_CARD_ONE_TO_MANY) {
        rt_buf_puts(b, e->card == PQL_CARD_MANY_TO_ONE ? " group_left " : " group_right ");
        put_label_list(e->include, e->ninclude, b);
      }
    }
    if (e->fill_l && e->fill_r && (e->fill_lv == e->fill_rv || (isnan(e->fill_lv) && isnan(e->fill_rv)))) {
      rt_buf_printf(b, " fill(%s)", rt_float_str(fb, e->fill_lv, 'f'));
    } else {
      if (e->fill_l) {
        rt_buf_printf(b, " fill_left(%s)", rt_float_str(fb, e->fill_lv, 'f'));
      }
      if (e->fill_r) {
        rt_buf_printf(b, " fill_right(%s)", rt_float_str(fb, e->fill_rv, 'f'));
      }
    }
    rt_buf_putc(b, ' ');
    pql_format(e->b, b);
    return;
  case PQL_N_UNARY:
    rt_buf_puts(b, pql_op_str(e->op));
    pql_format(e->a, b);
    return;
  case PQL_N_PAREN:
    rt_buf_putc(b, '(');
    pql_format(e->a, b);
    rt_buf_putc(b, ')');
    return;
  }
}

bool pql_expr_uses_query_times(const pql_expr *e) {
  if (!e) {
    return false;
  }
  if ((e->kind == PQL_N_VS || e->kind == PQL_N_SUBQ) && (e->at == PQL_AT_START || e->at == PQL_AT_END)) {
    return true;
  }
  if (e->kind == PQL_N_CALL && pql_func_is_query_time(e->func)) {
    return true;
  }
  if (e->drange || e->dstep || e->doffset) {
    return true;
  }
  if (pql_expr_uses_query_times(e->a) || pql_expr_uses_query_times(e->b)) {
    return true;
  }
  for (size_t i = 0; i < e->nargs; i++) {
    if (pql_expr_uses_query_times(e->args[i])) {
      return true;
    }
  }
  return false;
}

/* ---- JSON tree for /api/v1/parse_query ---- */

static void json_labels(char **l, size_t n, rt_buf *b) {
  rt_buf_putc(b, '[');
  for (size_t i = 0; i < n; i++) {
    if (i) {
      rt_buf_putc(b, ',');
    }
    rt_buf_json_str(b, l[i], strlen(l[i]));
  }
  rt_buf_putc(b, ']');
}

static void json_vs_fields(const pql_expr *e, rt_buf *b) {
  rt_buf_puts(b, "\"name\":");
  rt_buf_json_str(b, e->name ? e->name : "", e->name ? strlen(e->name) : 0);
  rt_buf_puts(b, ",\"matchers\":[");
  for (size_t i = 0; i < e->nmatchers; i++) {
    static const char *ops[] = {"=", "!=", "=~", "!~"};
    if (i) {
      rt_buf_putc(b, ',');
    }
    rt_buf_puts(b, "{\"name\":");
    rt_buf_json_str(b, e->matchers[i].name, strlen(e->matchers[i].name));
    rt_buf_printf(b, ",\"type\":\"%s\",\"value\":", ops[e->matchers[i].type]);
    rt_buf_json_str(b, e->matchers[i].value, strlen(e->matchers[i].value));
    rt_buf_putc(b, '}');
  }
  rt_buf_printf(b, "],\"offset\":%lld", (long long)e->offset);
}

static void json_at(const pql_expr *e, rt_buf *b) {
  if (e->at == PQL_AT_TIME) {
    rt_buf_printf(b, ",\"timestamp\":%lld,\"startOrEnd\":null", (long long)e->at_ms);
  } else if (e->at == PQL_AT_START || e->at == PQL_AT_END) {
    rt_buf_printf(b, ",\"timestamp\":null,\"startOrEnd\":\"%s\"", e->at == PQL_AT_START ? "start" : "end");
  } else {
    rt_buf_puts(b, ",\"timestamp\":null,\"startOrEnd\":null");
  }
}

void pql_expr_json(const pql_expr *e, rt_buf *b) {
  char fb[RT_FLOAT_MAX];
  switch (e->kind) {
  case PQL_N_NUM:
    rt_buf_printf(b, "{\"type\":\"numberLiteral\",\"val\":\"%s\"}", rt_float_str(fb, e->num, 'f'));
    return;
  case PQL_N_STR:
    rt_buf_puts(b, "{\"type\":\"stringLiteral\",\"val\":");
    rt_buf_json_str(b, e->str, strlen(e->str));
    rt_buf_putc(b, '}');
    return;
  case PQL_N_VS:
    rt_buf_puts(b, "{\"type\":\"vectorSelector\",");
    json_vs_fields(e, b);
    json_at(e, b);
    rt_buf_putc(b, '}');
    return;
  case PQL_N_MS:
    rt_buf_printf(b, "{\"type\":\"matrixSelector\",\"range\":%lld,\"vectorSelector\":", (long long)e->range);
    pql_expr_json(e->a, b);
    rt_buf_putc(b, '}');
    return;
  case PQL_N_SUBQ:
    rt_buf_printf(b, "{\"type\":\"subquery\",\"range\":%lld,\"step\":%lld,\"offset\":%lld", (long long)e->range,
                  (long long)e->step, (long long)e->offset);
    json_at(e, b);
    rt_buf_puts(b, ",\"expr\":");
    pql_expr_json(e->a, b);
    rt_buf_putc(b, '}');
    return;
  case PQL_N_CALL:
    rt_buf_puts(b, "{\"type\":\"call\",\"func\":{\"name\":");
    rt_buf_json_str(b, e->func->name, strlen(e->func->name));
    rt_buf_puts(b, "},\"args\":[");
    for (size_t i = 0; i < e->nargs; i++) {
      if (i) {
        rt_buf_putc(b, ',');
      }
      pql_expr_json(e->args[i], b);
    }
    rt_buf_puts(b, "]}");
    return;
  case PQL_N_AGG:
    rt_buf_printf(b, "{\"type\":\"aggregation\",\"op\":\"%s\",\"grouping\":", pql_op_str(e->op));
    json_labels(e->labels, e->nlabels, b);
    rt_buf_printf(b, ",\"without\":%s,\"param\":", e->without ? "true" : "false");
    if (e->b) {
      pql_expr_json(e->b, b);
    } else {
      rt_buf_puts(b, "null");
    }
    rt_buf_puts(b, ",\"expr\":");
    pql_expr_json(e->a, b);
    rt_buf_putc(b, '}');
    return;
  case PQL_N_BIN:
    rt_buf_printf(b, "{\"type\":\"binaryExpr\",\"op\":\"%s\",\"bool\":%s,\"matching\":", pql_op_str(e->op),
                  e->ret_bool ? "true" : "false");
    if (e->a->type == PQL_VECTOR && e->b->type == PQL_VECTOR) {
      static const char *cards[] = {"one-to-one", "many-to-one", "one-to-many", "many-to-many"};
      rt_buf_printf(b, "{\"card\":\"%s\",\"labels\":", cards[e->card]);
      json_labels(e->labels, e->nlabels, b);
      rt_buf_printf(b, ",\"on\":%s,\"include\":", e->on ? "true" : "false");
      json_labels(e->include, e->ninclude, b);
      rt_buf_putc(b, '}');
    } else {
      rt_buf_puts(b, "null");
    }
    rt_buf_puts(b, ",\"lhs\":");
    pql_expr_json(e->a, b);
    rt_buf_puts(b, ",\"rhs\":");
    pql_expr_json(e->b, b);
    rt_buf_putc(b, '}');
    return;
  case PQL_N_UNARY:
    rt_buf_printf(b, "{\"type\":\"unaryExpr\",\"op\":\"%s\",\"expr\":", pql_op_str(e->op));
    pql_expr_json(e->a, b);
    rt_buf_putc(b, '}');
    return;
  case PQL_N_PAREN:
    rt_buf_puts(b, "{\"type\":\"parenExpr\",\"expr\":");
    pql_expr_json(e->a, b);
    rt_buf_putc(b, '}');
    return;
  }
}
