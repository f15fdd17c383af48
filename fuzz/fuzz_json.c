/* fuzz_json.c - libFuzzer target for the JSON string writer (rt_buf_json_str).
 *
 * Byte 0 picks what is fed the rest of the input: 0, the writer itself; 1, a whole API error
 * body (rt_http_api_error, the message being the input up to its first NUL). Whatever the bytes,
 * the output must be one strict JSON value (tests/lib/json_check.h: strict UTF-8, no raw control
 * byte, scalar \u escapes), and the string must decode to the input with every byte that starts
 * no well-formed UTF-8 sequence replaced by U+FFFD. The writer's escapes must be the ones Go's
 * encoding/json writes and no others: \" \\ \b \f \n \r \t, \u00XX for the other control bytes
 * and < > &, \u2028 \u2029 \ufffd; and no raw < > & U+2028 U+2029 may remain. */
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/http.h"
#include "fuzz_seeds.h"
#include "tests/lib/json_check.h"

enum { MODE_STRING = 0, MODE_API_ERROR = 1 };

static void check(bool ok) {
  if (!ok) {
    abort();
  }
}

static void write_seeds(const char *dir) {
  static const struct {
    const char *name;
    const char *s;
    size_t n;
  } seeds[] = {
#define S(name, lit) {name, lit, sizeof(lit) - 1}
      S("plain", "plain"),
      S("escapes", "\"\\/\b\f\n\r\t\x01\x1f\x7f"),
      S("nul", "a\0b"),
      S("html", "<a>&amp;</a>"),
      S("separators", "\xe2\x80\xa8\xe2\x80\xa9"),
      S("valid", "h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbd \xf4\x8f\xbf\xbf"),
      S("continuation", "\x80\xbf"),
      S("overlong", "\xc0\x80\xe0\x80\x80\xf0\x80\x80\x80"),
      S("surrogates", "\xed\xa0\x80\xed\xbf\xbf"),
      S("above-max", "\xf4\x90\x80\x80\xf5\x80\xff\xfe"),
      S("truncated", "x\xc3y\xe2\x82z\xf0\x9f\x98"),
      S("label-replace", "invalid destination label name in label_replace(): \xff"),
#undef S
  };
  for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
    fuzz_write_seed(dir, seeds[i].name, MODE_STRING, seeds[i].s, seeds[i].n);
    fuzz_write_seed(dir, seeds[i].name, MODE_API_ERROR, seeds[i].s, seeds[i].n);
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  const char *dir = getenv("RT_FUZZ_WRITE_SEEDS");
  if (dir && *dir) {
    write_seeds(dir);
    exit(0);
  }
  return 0;
}

/* The string literal at out[0..n) uses only the escapes Go writes, each for what Go writes it. */
static void check_escapes(const unsigned char *out, size_t n) {
  check(n >= 2 && out[0] == '"' && out[n - 1] == '"');
  for (size_t i = 1; i + 1 < n; i++) {
    unsigned char c = out[i];
    check(c != '<' && c != '>' && c != '&');
    if (c == 0xe2 && i + 2 < n && out[i + 1] == 0x80) {
      check(out[i + 2] != 0xa8 && out[i + 2] != 0xa9);
    }
    if (c != '\\') {
      continue;
    }
    unsigned char e = out[++i];
    if (e && strchr("\"\\bfnrt", e)) {
      continue;
    }
    check(e == 'u' && i + 4 < n);
    unsigned v = 0;
    for (size_t k = 1; k <= 4; k++) {
      check(jc_hex(out[i + k]) >= 0 && !(out[i + k] >= 'A' && out[i + k] <= 'F')); /* Go: lower case */
      v = v << 4 | (unsigned)jc_hex(out[i + k]);
    }
    bool ok = v == 0x2028 || v == 0x2029 || v == 0xfffd || v == '<' || v == '>' || v == '&' ||
              (v < 0x20 && v != '\b' && v != '\f' && v != '\n' && v != '\r' && v != '\t');
    check(ok);
    i += 4;
  }
}

/* Decodes the string literal at out[*pos] and compares it with the specified mapping of in. */
static void check_decodes_to(const unsigned char *out, size_t n, size_t *pos, const unsigned char *in,
                             size_t in_len) {
  unsigned char *dec = malloc(n + 1);
  unsigned char *want = malloc(3 * in_len + 1);
  check(dec && want);
  size_t start = *pos, dn = 0;
  check(jc_json_string(out, n, pos, dec, &dn));
  check_escapes(out + start, *pos - start);
  size_t wn = jc_utf8_replace(in, in_len, want);
  check(dn == wn && memcmp(dec, want, wn) == 0);
  free(dec);
  free(want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) {
    return 0;
  }
  int mode = data[0] & 1;
  const char *s = (const char *)data + 1;
  size_t n = size - 1;
  if (mode == MODE_STRING) {
    rt_buf b = RT_BUF_INIT;
    rt_buf_json_str(&b, s, n);
    check(!b.oom);
    const unsigned char *out = (const unsigned char *)b.data;
    check(jc_json_valid(out, b.len));
    size_t pos = 0;
    check_decodes_to(out, b.len, &pos, (const unsigned char *)s, n);
    check(pos == b.len);
    rt_buf_free(&b);
    return 0;
  }
  char *msg = malloc(n + 1);
  check(msg != NULL);
  memcpy(msg, s, n);
  msg[n] = 0;
  rt_http_resp resp = {0};
  rt_http_api_error(&resp, 422, "execution", msg);
  const unsigned char *out = (const unsigned char *)resp.body.data;
  check(jc_json_valid(out, resp.body.len));
  static const char head[] = "{\"status\":\"error\",\"errorType\":\"execution\",\"error\":";
  check(resp.body.len > sizeof head && memcmp(out, head, sizeof head - 1) == 0);
  size_t pos = sizeof head - 1;
  check_decodes_to(out, resp.body.len, &pos, (const unsigned char *)msg, strlen(msg));
  check(pos + 1 == resp.body.len && out[pos] == '}');
  rt_buf_free(&resp.body);
  rt_buf_free(&resp.headers);
  free(msg);
  return 0;
}
