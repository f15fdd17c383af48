/* selector.c - the series-selector parser behind match[] (`up{job=~"a|b"}`, `{"my.metric"}`).
 *
 * A small hand-written lexer and parser that accept what Prometheus' ParseMetricSelector
 * accepts and word their errors the way Prometheus does ("1:5: parse error: unexpected ...",
 * line:column of the offending token, column in bytes from 1). It is meant to be replaced by
 * the PromQL module's parser once that exists; keep it self-contained. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "querier/querier.h"
#include "querier/querier_int.h"

typedef enum tok_type {
  T_EOF,
  T_ERROR,   /* lexer error; msg holds the text */
  T_IDENT,
  T_METRIC_IDENT,
  T_STRING,
  T_LBRACE,
  T_RBRACE,
  T_COMMA,
  T_EQL,
  T_NEQ,
  T_EQL_RE,
  T_NEQ_RE,
  T_OTHER,   /* any other token outside braces; desc holds how Prometheus names it */
} tok_type;

typedef struct tok {
  tok_type type;
  size_t pos;    /* byte offset of the first byte */
  size_t len;
  char msg[160]; /* T_ERROR: the message; T_OTHER: the description */
} tok;

typedef struct parser {
  const char *s;
  size_t len;
  size_t pos;
  bool in_braces;
  char *err;
  size_t errlen;
  bool failed;
} parser;

/* ------------------------------------------------------------ Go-style quoting */

static size_t utf8_encode(uint32_t cp, char *out) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xc0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xe0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  out[0] = (char)(0xf0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
  out[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* Appends the escape of one code point inside a Go %q literal whose quote is `q`. */
static void quote_cp(rt_buf *b, uint32_t cp, char q) {
  switch (cp) {
  case '\a': rt_buf_puts(b, "\\a"); return;
  case '\b': rt_buf_puts(b, "\\b"); return;
  case '\f': rt_buf_puts(b, "\\f"); return;
  case '\n': rt_buf_puts(b, "\\n"); return;
  case '\r': rt_buf_puts(b, "\\r"); return;
  case '\t': rt_buf_puts(b, "\\t"); return;
  case '\v': rt_buf_puts(b, "\\v"); return;
  case '\\': rt_buf_puts(b, "\\\\"); return;
  default: break;
  }
  if (cp == (uint32_t)q) {
    rt_buf_putc(b, '\\');
    rt_buf_putc(b, q);
    return;
  }
  if (cp < 0x20 || cp == 0x7f) {
    rt_buf_printf(b, "\\x%02x", cp);
    return;
  }
  char u[4];
  rt_buf_append(b, u, utf8_encode(cp, u));
}

/* Go's %q of a string (max_runes > 0: %.Nq, the first N runes only). */
void qry_go_quote(rt_buf *b, const char *s, size_t n, size_t max_runes) {
  rt_buf_putc(b, '"');
  size_t runes = 0;
  for (size_t i = 0; i < n;) {
    if (max_runes && runes == max_runes) {
      break;
    }
    uint32_t cp;
    size_t l = rt_utf8_decode(s + i, n - i, &cp);
    if (l == 0) {
      rt_buf_printf(b, "\\x%02x", (unsigned char)s[i]);
      i++;
    } else {
      quote_cp(b, cp, '"');
      i += l;
    }
    runes++;
  }
  rt_buf_putc(b, '"');
}

/* Go's %q of a rune: 'x'. */
static void go_quote_rune(char *out, size_t outlen, uint32_t cp) {
  rt_buf b = RT_BUF_INIT;
  rt_buf_putc(&b, '\'');
  quote_cp(&b, cp, '\'');
  rt_buf_putc(&b, '\'');
  snprintf(out, outlen, "%s", b.data ? b.data : "''");
  rt_buf_free(&b);
}

/* Go's %#U of a rune: "U+0078 'x'", or just "U+000A" when it is not printable. */
static void go_sharp_u(char *out, size_t outlen, uint32_t cp) {
  if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0)) {
    snprintf(out, outlen, "U+%04X", cp);
    return;
  }
  char u[5] = {0};
  utf8_encode(cp, u);
  snprintf(out, outlen, "U+%04X '%s'", cp, u);
}

/* ------------------------------------------------------------ errors */

static void perr(parser *p, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void perr(parser *p, size_t pos, const char *fmt, ...) {
  if (p->failed) {
    return;
  }
  p->failed = true;
  if (!p->err || !p->errlen) {
    return;
  }
  size_t line = 1;
  size_t last_nl = (size_t)-1;
  for (size_t i = 0; i < pos && i < p->len; i++) {
    if (p->s[i] == '\n') {
      line++;
      last_nl = i;
    }
  }
  size_t col = pos - last_nl; /* wraps correctly when last_nl == -1 */
  int k = snprintf(p->err, p->errlen, "%zu:%zu: parse error: ", line, col);
  if (k < 0 || (size_t)k >= p->errlen) {
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->err + k, p->errlen - (size_t)k, fmt, ap);
  va_end(ap);
}

/* How Prometheus names a token in "unexpected ..." (Item.desc()). */
static void tok_desc(const parser *p, const tok *t, char *out, size_t outlen) {
  rt_buf b = RT_BUF_INIT;
  switch (t->type) {
  case T_EOF: rt_buf_puts(&b, "end of input"); break;
  case T_IDENT:
  case T_METRIC_IDENT:
    rt_buf_puts(&b, t->type == T_IDENT ? "identifier " : "metric identifier ");
    qry_go_quote(&b, p->s + t->pos, t->len, 0);
    break;
  case T_STRING:
    rt_buf_puts(&b, "string ");
    if (t->len > 10) {
      qry_go_quote(&b, p->s + t->pos, t->len, 10);
      rt_buf_puts(&b, "...");
    } else {
      qry_go_quote(&b, p->s + t->pos, t->len, 0);
    }
    break;
  case T_LBRACE: rt_buf_puts(&b, "\"{\""); break;
  case T_RBRACE: rt_buf_puts(&b, "\"}\""); break;
  case T_COMMA: rt_buf_puts(&b, "\",\""); break;
  case T_EQL: rt_buf_puts(&b, "\"=\""); break;
  case T_NEQ: rt_buf_puts(&b, "<op:!=>"); break;
  case T_EQL_RE: rt_buf_puts(&b, "<op:=~>"); break;
  case T_NEQ_RE: rt_buf_puts(&b, "<op:!~>"); break;
  case T_OTHER:
  case T_ERROR: rt_buf_puts(&b, t->msg); break;
  }
  snprintf(out, outlen, "%s", b.data ? b.data : "");
  rt_buf_free(&b);
}

/* "unexpected X[ in context][, expected Y]" at the token; lexer errors are reported as they are. */
static void unexpected(parser *p, const tok *t, const char *context, const char *expected) {
  if (t->type == T_ERROR) {
    perr(p, t->pos, "%s", t->msg);
    return;
  }
  char d[200];
  tok_desc(p, t, d, sizeof d);
  perr(p, t->pos, "unexpected %s%s%s%s%s", d, context ? " in " : "", context ? context : "",
       expected ? ", expected " : "", expected ? expected : "");
}

/* ------------------------------------------------------------ lexer */

static bool is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static void lex_error(tok *t, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void lex_error(tok *t, size_t pos, const char *fmt, ...) {
  t->type = T_ERROR;
  t->pos = pos;
  t->len = 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t->msg, sizeof t->msg, fmt, ap);
  va_end(ap);
}

/* Scans a quoted string starting at p->pos (the opening quote); checks escapes like
 * Prometheus' lexer. The value is decoded later by unquote(). */
static void lex_string(parser *p, tok *t) {
  size_t start = p->pos;
  char q = p->s[p->pos++];
  for (;;) {
    if (p->pos >= p->len) {
      lex_error(t, start, q == '`' ? "unterminated raw string" : "unterminated quoted string");
      return;
    }
    unsigned char c = (unsigned char)p->s[p->pos];
    if (c >= 0x80) {
      uint32_t cp;
      size_t l = rt_utf8_decode(p->s + p->pos, p->len - p->pos, &cp);
      if (l == 0) {
        lex_error(t, start, "invalid UTF-8 rune");
        return;
      }
      p->pos += l;
      continue;
    }
    p->pos++;
    if (c == (unsigned char)q) {
      break;
    }
    if (q == '`') {
      continue;
    }
    if (c == '\n') {
      lex_error(t, start, "unterminated quoted string");
      return;
    }
    if (c != '\\') {
      continue;
    }
    if (p->pos >= p->len) {
      lex_error(t, start, "escape sequence not terminated");
      return;
    }
    char e = p->s[p->pos++];
    int n = 0, base = 0;
    uint32_t max = 0;
    switch (e) {
    case 'a': case 'b': case 'f': case 'n': case 'r': case 't': case 'v': case '\\':
      continue;
    case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7':
      n = 3; base = 8; max = 255; p->pos--; break;
    case 'x': n = 2; base = 16; max = 255; break;
    case 'u': n = 4; base = 16; max = 0x10ffff; break;
    case 'U': n = 8; base = 16; max = 0x10ffff; break;
    default:
      if (e == q) {
        continue;
      }
      {
        uint32_t cp = (unsigned char)e;
        if (cp >= 0x80) {
          rt_utf8_decode(p->s + p->pos - 1, p->len - p->pos + 1, &cp);
        }
        char r[24];
        go_sharp_u(r, sizeof r, cp);
        lex_error(t, start, "unknown escape sequence %s", r);
      }
      return;
    }
    uint32_t x = 0;
    for (; n > 0; n--) {
      if (p->pos >= p->len) {
        lex_error(t, start, "escape sequence not terminated");
        return;
      }
      int ch = (unsigned char)p->s[p->pos];
      int d = is_digit(ch) ? ch - '0' : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10
                                       : (ch >= 'A' && ch <= 'F') ? ch - 'A' + 10 : 99;
      if (d >= base) {
        char r[24];
        go_sharp_u(r, sizeof r, (uint32_t)ch);
        lex_error(t, start, "illegal character %s in escape sequence", r);
        return;
      }
      x = x * (uint32_t)base + (uint32_t)d;
      p->pos++;
    }
    if (x > max || (x >= 0xd800 && x < 0xe000)) {
      lex_error(t, start, "escape sequence is an invalid Unicode code point");
      return;
    }
  }
  t->type = T_STRING;
  t->pos = start;
  t->len = p->pos - start;
}

static void lex_skip(parser *p) {
  while (p->pos < p->len) {
    char c = p->s[p->pos];
    if (is_space(c)) {
      p->pos++;
    } else if (c == '#') { /* comment to end of line */
      while (p->pos < p->len && p->s[p->pos] != '\n') {
        p->pos++;
      }
    } else {
      break;
    }
  }
}

static void lex_next(parser *p, tok *t) {
  memset(t, 0, sizeof *t);
  lex_skip(p);
  t->pos = p->pos;
  if (p->pos >= p->len) {
    if (p->in_braces) {
      lex_error(t, p->pos, "unexpected end of input inside braces");
    } else {
      t->type = T_EOF;
    }
    return;
  }
  unsigned char c = (unsigned char)p->s[p->pos];
  if (c == '"' || c == '\'' || c == '`') {
    lex_string(p, t);
    return;
  }
  if (p->in_braces) {
    if (is_alpha(c)) {
      size_t s = p->pos;
      while (p->pos < p->len && (is_alpha(p->s[p->pos]) || is_digit(p->s[p->pos]))) {
        p->pos++;
      }
      t->type = T_IDENT;
      t->pos = s;
      t->len = p->pos - s;
      return;
    }
    p->pos++;
    t->len = 1;
    switch (c) {
    case ',': t->type = T_COMMA; return;
    case '}': t->type = T_RBRACE; p->in_braces = false; return;
    case '=':
      if (p->pos < p->len && p->s[p->pos] == '~') {
        p->pos++;
        t->type = T_EQL_RE;
        t->len = 2;
      } else {
        t->type = T_EQL;
      }
      return;
    case '!':
      if (p->pos < p->len && (p->s[p->pos] == '~' || p->s[p->pos] == '=')) {
        t->type = p->s[p->pos] == '~' ? T_NEQ_RE : T_NEQ;
        t->len = 2;
        p->pos++;
        return;
      } else {
        char r[16];
        uint32_t cp = 0xfffd;
        if (p->pos < p->len) {
          if (!rt_utf8_decode(p->s + p->pos, p->len - p->pos, &cp)) {
            cp = 0xfffd;
          }
          go_quote_rune(r, sizeof r, cp);
        } else {
          snprintf(r, sizeof r, "%s", "'\\uffff'"); /* Go's eof rune (-1) prints so */
        }
        lex_error(t, t->pos, "unexpected character after '!' inside braces: %s", r);
        return;
      }
    case '{': lex_error(t, t->pos, "unexpected left brace '{'"); return;
    default: {
      uint32_t cp = c;
      if (c >= 0x80 && !rt_utf8_decode(p->s + t->pos, p->len - t->pos, &cp)) {
        lex_error(t, t->pos, "invalid UTF-8 rune");
        return;
      }
      char r[16];
      go_quote_rune(r, sizeof r, cp);
      lex_error(t, t->pos, "unexpected character inside braces: %s", r);
      return;
    }
    }
  }
  /* outside braces */
  if (is_alpha(c) || c == ':') {
    size_t s = p->pos;
    bool colon = false;
    while (p->pos < p->len &&
           (is_alpha(p->s[p->pos]) || is_digit(p->s[p->pos]) || p->s[p->pos] == ':')) {
      colon |= p->s[p->pos] == ':';
      p->pos++;
    }
    t->type = colon ? T_METRIC_IDENT : T_IDENT;
    t->pos = s;
    t->len = p->pos - s;
    /* Keywords that cannot name a metric (the grammar's metric_identifier leaves them out). */
    static const char *const reserved[] = {"bool", "on", "ignoring", "group_left", "group_right"};
    for (size_t k = 0; !colon && k < RT_ARRAY_LEN(reserved); k++) {
      if (t->len == strlen(reserved[k]) && strncasecmp(p->s + s, reserved[k], t->len) == 0) {
        t->type = T_OTHER;
        snprintf(t->msg, sizeof t->msg, "<%.*s>", (int)t->len, p->s + s);
        return;
      }
    }
    if (!colon && t->len == 5 && strncasecmp(p->s + s, "atan2", 5) == 0) {
      t->type = T_OTHER;
      snprintf(t->msg, sizeof t->msg, "<op:%.*s>", (int)t->len, p->s + s);
      return;
    }
    /* Inf and NaN are number literals in PromQL. */
    if (!colon && ((t->len == 3 && strncasecmp(p->s + s, "inf", 3) == 0) ||
                   (t->len == 3 && strncasecmp(p->s + s, "nan", 3) == 0))) {
      rt_buf b = RT_BUF_INIT;
      rt_buf_puts(&b, "number ");
      qry_go_quote(&b, p->s + s, t->len, 0);
      t->type = T_OTHER;
      snprintf(t->msg, sizeof t->msg, "%s", b.data);
      rt_buf_free(&b);
    }
    return;
  }
  if (c == '{') {
    p->pos++;
    t->type = T_LBRACE;
    t->len = 1;
    p->in_braces = true;
    return;
  }
  if (is_digit(c) || (c == '.' && p->pos + 1 < p->len && is_digit(p->s[p->pos + 1]))) {
    size_t s = p->pos;
    while (p->pos < p->len && (is_alpha(p->s[p->pos]) || is_digit(p->s[p->pos]) ||
                               p->s[p->pos] == '.')) {
      p->pos++;
    }
    rt_buf b = RT_BUF_INIT;
    rt_buf_puts(&b, "number ");
    qry_go_quote(&b, p->s + s, p->pos - s, 0);
    t->type = T_OTHER;
    t->pos = s;
    t->len = p->pos - s;
    snprintf(t->msg, sizeof t->msg, "%s", b.data);
    rt_buf_free(&b);
    return;
  }
  static const char *const ops[] = {"==", "!=", "<=", ">=", "=~", "!~", "+", "-", "*", "/",
                                    "%",  "^",  "<",  ">",  "@"};
  for (size_t i = 0; i < RT_ARRAY_LEN(ops); i++) {
    size_t l = strlen(ops[i]);
    if (p->len - p->pos >= l && memcmp(p->s + p->pos, ops[i], l) == 0) {
      t->type = T_OTHER;
      t->len = l;
      p->pos += l;
      snprintf(t->msg, sizeof t->msg, "<op:%s>", ops[i]);
      return;
    }
  }
  if (strchr("()[],=", c)) {
    t->type = c == ',' ? T_COMMA : c == '=' ? T_EQL : T_OTHER;
    t->len = 1;
    p->pos++;
    snprintf(t->msg, sizeof t->msg, "\"%c\"", c);
    return;
  }
  uint32_t cp = c;
  if (c >= 0x80 && !rt_utf8_decode(p->s + p->pos, p->len - p->pos, &cp)) {
    lex_error(t, p->pos, "invalid UTF-8 rune");
    return;
  }
  char r[16];
  go_quote_rune(r, sizeof r, cp);
  lex_error(t, p->pos, "unexpected character: %s", r);
}

/* ------------------------------------------------------------ string values */

/* Decodes a T_STRING token (already checked by the lexer) into a new NUL-terminated string.
 * Sets *has_nul when the value holds a NUL byte (which label values cannot carry). */
static char *unquote(const parser *p, const tok *t, bool *has_nul) {
  const char *s = p->s + t->pos;
  size_t n = t->len;
  char q = s[0];
  char *out = rt_alloc(n + 1);
  if (!out) {
    return NULL;
  }
  size_t o = 0;
  *has_nul = false;
  for (size_t i = 1; i + 1 < n;) {
    char c = s[i];
    if (q == '`' || c != '\\') {
      out[o++] = c;
      i++;
      continue;
    }
    char e = s[i + 1];
    i += 2;
    uint32_t x = 0;
    int digits = 0, base = 16;
    switch (e) {
    case 'a': out[o++] = '\a'; continue;
    case 'b': out[o++] = '\b'; continue;
    case 'f': out[o++] = '\f'; continue;
    case 'n': out[o++] = '\n'; continue;
    case 'r': out[o++] = '\r'; continue;
    case 't': out[o++] = '\t'; continue;
    case 'v': out[o++] = '\v'; continue;
    case '\\': out[o++] = '\\'; continue;
    case 'x': digits = 2; break;
    case 'u': digits = 4; break;
    case 'U': digits = 8; break;
    default:
      if (e >= '0' && e <= '7') {
        digits = 3;
        base = 8;
        i--;
        break;
      }
      out[o++] = e; /* the quote character */
      continue;
    }
    for (int k = 0; k < digits; k++, i++) {
      int ch = (unsigned char)s[i];
      int d = is_digit(ch) ? ch - '0' : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10 : ch - 'A' + 10;
      x = x * (uint32_t)base + (uint32_t)d;
    }
    if (e == 'x' || base == 8) { /* a raw byte, as Go's strconv.Unquote */
      if (x == 0) {
        *has_nul = true;
      }
      out[o++] = (char)x;
    } else {
      if (x == 0) {
        *has_nul = true;
      }
      o += utf8_encode(x, out + o); /* an escape is never shorter than its encoding */
    }
  }
  out[o] = 0;
  return out;
}

/* ------------------------------------------------------------ parser */

typedef struct mlist {
  rt_matcher *m;
  size_t n, cap;
} mlist;

static bool mlist_push(mlist *l, parser *p, size_t pos, rt_match_type type, const char *name,
                       const char *value) {
  if (l->n == l->cap) {
    size_t nc = l->cap ? l->cap * 2 : 4;
    rt_matcher *nm = rt_realloc(l->m, l->cap * sizeof *nm, nc * sizeof *nm);
    if (!nm) {
      perr(p, pos, "out of memory");
      return false;
    }
    l->m = nm;
    l->cap = nc;
  }
  char emsg[256] = "";
  rt_err err = rt_matcher_init(&l->m[l->n], type, name, value, emsg, sizeof emsg);
  if (err == RT_ENOMEM) {
    perr(p, pos, "out of memory");
    return false;
  }
  if (err != RT_OK) {
    perr(p, pos, "%s", emsg[0] ? emsg : "invalid matcher");
    return false;
  }
  l->n++;
  return true;
}

static void mlist_free(mlist *l) {
  for (size_t i = 0; i < l->n; i++) {
    rt_matcher_fini(&l->m[i]);
  }
  rt_free(l->m, l->cap * sizeof *l->m);
  memset(l, 0, sizeof *l);
}

static bool is_match_op(tok_type t) {
  return t == T_EQL || t == T_NEQ || t == T_EQL_RE || t == T_NEQ_RE;
}

static rt_match_type match_type(tok_type t) {
  switch (t) {
  case T_NEQ: return RT_MATCH_NEQ;
  case T_EQL_RE: return RT_MATCH_RE;
  case T_NEQ_RE: return RT_MATCH_NRE;
  default: return RT_MATCH_EQ;
  }
}

/* Parses `{ ... }` after its '{'. On success the next token (after '}') is in *t. */
static bool parse_braces(parser *p, mlist *l, tok *t, size_t *nnames, size_t *name_pos) {
  lex_next(p, t);
  if (t->type == T_RBRACE) {
    lex_next(p, t);
    return true;
  }
  for (;;) {
    tok name = *t;
    if (name.type != T_IDENT && name.type != T_STRING) {
      unexpected(p, &name, "label matching", "identifier or \"}\"");
      return false;
    }
    char *lname;
    bool nul = false;
    if (name.type == T_IDENT) {
      lname = rt_strndup(p->s + name.pos, name.len);
    } else {
      lname = unquote(p, &name, &nul);
    }
    if (!lname) {
      perr(p, name.pos, "out of memory");
      return false;
    }
    if (nul) {
      perr(p, name.pos, "label names must not contain NUL bytes");
      rt_free(lname, 0);
      return false;
    }
    tok op;
    lex_next(p, &op);
    if (!is_match_op(op.type)) {
      if (name.type == T_STRING && (op.type == T_COMMA || op.type == T_RBRACE)) {
        /* {"my.metric"}: a quoted metric name */
        bool ok = mlist_push(l, p, name.pos, RT_MATCH_EQ, "__name__", lname);
        rt_free(lname, 0);
        if (!ok) {
          return false;
        }
        if ((*nnames)++ == 0) {
          *name_pos = l->n - 1;
        }
        *t = op;
        goto after_matcher;
      }
      rt_free(lname, 0);
      unexpected(p, &op, "label matching", name.type == T_STRING ? "\",\" or \"}\"" : "label matching operator");
      return false;
    }
    tok val;
    lex_next(p, &val);
    if (val.type != T_STRING) {
      rt_free(lname, 0);
      unexpected(p, &val, "label matching", "string");
      return false;
    }
    char *lval = unquote(p, &val, &nul);
    if (!lval) {
      rt_free(lname, 0);
      perr(p, val.pos, "out of memory");
      return false;
    }
    if (nul) {
      rt_free(lname, 0);
      rt_free(lval, 0);
      perr(p, val.pos, "label values must not contain NUL bytes");
      return false;
    }
    bool ok = mlist_push(l, p, name.pos, match_type(op.type), lname, lval);
    rt_free(lname, 0);
    rt_free(lval, 0);
    if (!ok) {
      return false;
    }
    lex_next(p, t);
  after_matcher:
    if (t->type == T_RBRACE) {
      lex_next(p, t);
      return true;
    }
    if (t->type != T_COMMA) {
      unexpected(p, t, "label matching", "\",\" or \"}\"");
      return false;
    }
    lex_next(p, t);
    if (t->type == T_RBRACE) {
      lex_next(p, t);
      return true;
    }
  }
}

bool qry_selector_has_nonempty(const qry_selector *sel) {
  for (size_t i = 0; i < sel->n; i++) {
    if (!rt_matcher_matches_empty(&sel->m[i])) {
      return true;
    }
  }
  return false;
}

rt_err qry_selector_parse(const char *s, size_t len, unsigned flags, qry_selector *out,
                          char *errbuf, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (errbuf && errlen) {
    errbuf[0] = 0;
  }
  parser p = {.s = s, .len = len, .err = errbuf, .errlen = errlen};
  mlist l = {0};
  tok t;
  size_t nnames = 0, name_idx = 0;
  char *metric = NULL;
  size_t metric_pos = 0;
  lex_next(&p, &t);
  size_t sel_pos = t.pos;
  if (t.type == T_IDENT || t.type == T_METRIC_IDENT) {
    metric = rt_strndup(s + t.pos, t.len);
    if (!metric) {
      return RT_ENOMEM;
    }
    metric_pos = t.pos;
    lex_next(&p, &t);
    if (t.type == T_LBRACE && !parse_braces(&p, &l, &t, &nnames, &name_idx)) {
      goto fail;
    }
  } else if (t.type == T_LBRACE) {
    if (!parse_braces(&p, &l, &t, &nnames, &name_idx)) {
      goto fail;
    }
  } else {
    unexpected(&p, &t, NULL, NULL);
    goto fail;
  }
  if (t.type != T_EOF) {
    unexpected(&p, &t, NULL, NULL);
    goto fail;
  }
  if (flags & QRY_SEL_CHECK) {
    const char *first = NULL;
    for (size_t i = 0; i < l.n; i++) {
      if (strcmp(l.m[i].name, "__name__") == 0) {
        if (metric) {
          perr(&p, sel_pos, "metric name must not be set twice: \"%s\" or \"%s\"", metric,
               l.m[i].value);
          goto fail;
        }
        if (first && nnames > 1 && l.m[i].type == RT_MATCH_EQ) {
          perr(&p, sel_pos, "metric name must not be set twice: \"%s\" or \"%s\"", first,
               l.m[i].value);
          goto fail;
        }
        if (l.m[i].type == RT_MATCH_EQ) {
          first = l.m[i].value;
        }
      }
    }
  }
  (void)name_idx;
  if (metric) {
    if (!mlist_push(&l, &p, metric_pos, RT_MATCH_EQ, "__name__", metric)) {
      goto fail;
    }
    rt_free(metric, 0);
    metric = NULL;
  }
  out->m = l.m;
  out->n = l.n;
  if ((flags & QRY_SEL_CHECK) && !qry_selector_has_nonempty(out)) {
    perr(&p, sel_pos, "vector selector must contain at least one non-empty matcher");
    memset(out, 0, sizeof *out);
    goto fail;
  }
  return RT_OK;
fail:
  rt_free(metric, 0);
  mlist_free(&l);
  return RT_EINVAL;
}

void qry_selector_fini(qry_selector *sel) {
  for (size_t i = 0; i < sel->n; i++) {
    rt_matcher_fini(&sel->m[i]);
  }
  rt_free(sel->m, 0);
  memset(sel, 0, sizeof *sel);
}
