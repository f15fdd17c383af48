/* buf_test.c - the growable buffer and the JSON string writer (common/buf.c). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "tests/lib/json_check.h"

Test(buf, append_printf) {
  rt_buf b = RT_BUF_INIT;
  rt_buf_puts(&b, "x=");
  rt_buf_printf(&b, "%d", 42);
  cr_assert_str_eq(b.data, "x=42");
  rt_buf_reset(&b);
  char big[1000];
  memset(big, 'q', sizeof big - 1);
  big[sizeof big - 1] = 0;
  rt_buf_printf(&b, "%s", big);
  cr_assert_eq(b.len, 999);
  rt_buf_free(&b);
}

Test(buf, oom_is_sticky) {
  rt_buf b = RT_BUF_INIT;
  rt_alloc_fail_after(0);
  rt_buf_puts(&b, "abc");
  rt_alloc_fail_after(-1);
  cr_assert(b.oom);
  rt_buf_puts(&b, "def");
  cr_assert(b.oom);
  cr_assert_eq(b.len, 0);
  rt_buf_free(&b);
}

/* Checks one writer output: valid JSON as a whole, and its decoding is the input with every
 * byte that starts no well-formed UTF-8 sequence replaced by U+FFFD. */
static void check_roundtrip(const char *in, size_t n, const rt_buf *b) {
  const unsigned char *out = (const unsigned char *)b->data;
  cr_assert(jc_json_valid(out, b->len), "not valid JSON for input of %zu bytes: %s", n, b->data);
  unsigned char *dec = malloc(b->len + 1);
  unsigned char *want = malloc(3 * n + 1);
  size_t pos = 0, dn = 0;
  cr_assert(jc_json_string(out, b->len, &pos, dec, &dn));
  cr_assert_eq(pos, b->len);
  size_t wn = jc_utf8_replace((const unsigned char *)in, n, want);
  cr_assert_eq(dn, wn, "decoded %zu bytes, want %zu", dn, wn);
  cr_assert(memcmp(dec, want, wn) == 0);
  free(dec);
  free(want);
}

/* Expected outputs are what Go 1.26's encoding/json (Encoder with SetEscapeHTML(true)) wrote
 * for each input, byte for byte. */
static const struct {
  const char *what;
  const char *in;
  size_t n;
  const char *want;
} go_cases[] = {
    {"plain", "plain", 5, "\"plain\""},
    {"empty", "", 0, "\"\""},
    {"quote and backslash", "a\"b\\c/d", 7, "\"a\\\"b\\\\c/d\""},
    {"NUL", "a\000b", 3, "\"a\\u0000b\""},
    {"controls", "\001\007\010\011\012\013\014\015\033\037", 10, "\"\\u0001\\u0007\\b\\t\\n\\u000b\\f\\r\\u001b\\u001f\""},
    {"DEL is kept", "\177", 1, "\"\177\""},
    {"HTML", "<a href='x'>&amp;</a>", 21, "\"\\u003ca href='x'\\u003e\\u0026amp;\\u003c/a\\u003e\""},
    {"U+2028 U+2029", "a\342\200\250b\342\200\251c", 9, "\"a\\u2028b\\u2029c\""},
    {"U+2027 U+202A are kept", "\342\200\247\342\200\252", 6, "\"\342\200\247\342\200\252\""},
    {"2-byte", "h\303\251", 3, "\"h\303\251\""},
    {"3-byte", "\342\202\254\357\277\277", 6, "\"\342\202\254\357\277\277\""},
    {"4-byte", "\360\237\230\200\360\220\200\200", 8, "\"\360\237\230\200\360\220\200\200\""},
    {"U+FFFD itself", "\357\277\275", 3, "\"\357\277\275\""},
    {"highest scalars", "\355\237\277\356\200\200\364\217\277\277", 10, "\"\355\237\277\356\200\200\364\217\277\277\""},
    {"lone continuation", "\200", 1, "\"\\ufffd\""},
    {"lone continuations", "a\200\277b", 4, "\"a\\ufffd\\ufffdb\""},
    {"continuation after a full sequence", "\303\251\251", 3, "\"\303\251\\ufffd\""},
    {"overlong 2", "\300\200", 2, "\"\\ufffd\\ufffd\""},
    {"overlong 2 (C1)", "\301\277", 2, "\"\\ufffd\\ufffd\""},
    {"overlong 3", "\340\200\200", 3, "\"\\ufffd\\ufffd\\ufffd\""},
    {"overlong 3 (max)", "\340\237\277", 3, "\"\\ufffd\\ufffd\\ufffd\""},
    {"overlong 4", "\360\200\200\200", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},
    {"overlong 4 (max)", "\360\217\277\277", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},
    {"surrogate high", "\355\240\200", 3, "\"\\ufffd\\ufffd\\ufffd\""},
    {"surrogate low", "\355\277\277", 3, "\"\\ufffd\\ufffd\\ufffd\""},
    {"surrogate pair in CESU-8", "\355\240\275\355\270\200", 6, "\"\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\""},
    {"above U+10FFFF (F4 90)", "\364\220\200\200", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},
    {"F5", "\365\200\200\200", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},
    {"F7 BF BF BF", "\367\277\277\277", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},
    {"5-byte form", "\370\210\200\200\200", 5, "\"\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\""},
    {"FE FF", "\376\377", 2, "\"\\ufffd\\ufffd\""},
    {"truncated 2 at end", "ab\303", 3, "\"ab\\ufffd\""},
    {"truncated 3 at end", "ab\342\202", 4, "\"ab\\ufffd\\ufffd\""},
    {"truncated 4 at end", "ab\360\237\230", 5, "\"ab\\ufffd\\ufffd\\ufffd\""},
    {"truncated 2 in the middle", "x\303y", 3, "\"x\\ufffdy\""},
    {"truncated 3 in the middle", "x\342\202y", 4, "\"x\\ufffd\\ufffdy\""},
    {"truncated 4 in the middle", "x\360\237\230y", 5, "\"x\\ufffd\\ufffd\\ufffdy\""},
    {"truncated then valid", "\342\202\342\202\254", 5, "\"\\ufffd\\ufffd\342\202\254\""},
    {"truncated before a quote", "\342\"<", 3, "\"\\ufffd\\\"\\u003c\""},
    {"invalid then control", "\377\012\376\001", 4, "\"\\ufffd\\n\\ufffd\\u0001\""},
    {"the label_replace name", "\377", 1, "\"\\ufffd\""},
};

Test(json_str, byte_for_byte_as_go) {
  for (size_t i = 0; i < sizeof go_cases / sizeof go_cases[0]; i++) {
    rt_buf b = RT_BUF_INIT;
    rt_buf_puts(&b, "x"); /* appends: what was there stays */
    rt_buf_json_str(&b, go_cases[i].in, go_cases[i].n);
    cr_assert_eq(b.data[0], 'x');
    cr_assert_str_eq(b.data + 1, go_cases[i].want, "%s", go_cases[i].what);
    cr_assert_eq(b.len, 1 + strlen(go_cases[i].want), "%s", go_cases[i].what);
    rt_buf b2 = RT_BUF_INIT;
    rt_buf_json_str(&b2, go_cases[i].in, go_cases[i].n);
    check_roundtrip(go_cases[i].in, go_cases[i].n, &b2);
    rt_buf_free(&b2);
    rt_buf_free(&b);
  }
}

/* Every input of one and two bytes, and every three-byte input whose bytes come from the
 * boundaries of the UTF-8 ranges: valid JSON that decodes back as specified. */
Test(json_str, every_short_input_is_valid_json) {
  rt_buf b = RT_BUF_INIT;
  for (unsigned x = 0; x < 0x10000; x++) {
    char in[2] = {(char)(x >> 8), (char)x};
    for (size_t n = 1; n <= 2; n++) {
      if (n == 1 && (x >> 8) != 0) {
        continue;
      }
      rt_buf_reset(&b);
      rt_buf_json_str(&b, n == 1 ? in + 1 : in, n);
      check_roundtrip(n == 1 ? in + 1 : in, n, &b);
    }
  }
  static const unsigned char edge[] = {0x00, 0x1f, 0x22, 0x26, 0x3c, 0x5c, 0x7f, 0x80, 0x8f, 0x90,
                                       0x9f, 0xa0, 0xa8, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe2,
                                       0xec, 0xed, 0xee, 0xef, 0xf0, 0xf3, 0xf4, 0xf5, 0xff};
  size_t ne = sizeof edge;
  for (size_t i = 0; i < ne; i++) {
    for (size_t j = 0; j < ne; j++) {
      for (size_t k = 0; k < ne; k++) {
        for (size_t l = 0; l < ne; l++) {
          char in[4] = {(char)edge[i], (char)edge[j], (char)edge[k], (char)edge[l]};
          rt_buf_reset(&b);
          rt_buf_json_str(&b, in, 4);
          check_roundtrip(in, 4, &b);
        }
      }
    }
  }
  rt_buf_free(&b);
}

#define JV(lit) jc_json_valid(lit, sizeof(lit) - 1)

/* The checker that judges the writer turns down what the writer must never produce, so the
 * checks above can fail. */
Test(json_str, checker_rejects_what_the_writer_must_not_write) {
  cr_assert(JV("{\"a\":[1,-0.5e+3,true,null,\"\\ud83d\\ude00\"]}"));
  cr_assert_not(JV("\"\xff\""));           /* invalid UTF-8 */
  cr_assert_not(JV("\"\xed\xa0\x80\""));   /* surrogate */
  cr_assert_not(JV("\"\xc0\x80\""));       /* overlong */
  cr_assert_not(JV("\"a\nb\""));            /* raw control */
  cr_assert_not(JV("\"\\ud800\""));        /* lone surrogate escape */
  cr_assert_not(JV("\"\\x41\""));          /* not a JSON escape */
  cr_assert_not(JV("\"ab"));                 /* unterminated */
  cr_assert_not(JV("[1,]"));
  cr_assert_not(JV("01"));
  cr_assert_not(JV("NaN"));
  cr_assert_not(JV("{} {}"));
}

Test(json_str, out_of_memory_leaves_the_buffer_flagged) {
  rt_buf b = RT_BUF_INIT;
  rt_alloc_fail_after(0);
  rt_buf_json_str(&b, "a\xff" "b", 3);
  rt_alloc_fail_after(-1);
  cr_assert(b.oom);
  cr_assert_eq(b.len, 0);
  rt_buf_free(&b);
}
