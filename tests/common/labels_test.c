/* labels_test.c - label sets, hashing, UTF-8 checks and matchers. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "common/labels.h"
#include "tests/lib/json_check.h"

Test(labels, hash_depends_on_tenant_and_every_pair) {
  rt_label a[] = {{"__name__", "up"}, {"job", "x"}};
  rt_label b[] = {{"__name__", "up"}, {"job", "y"}};
  rt_label c[] = {{"__name__", "upjob"}, {"", "x"}};
  uint64_t ha = rt_series_hash("t1", a, 2);
  cr_assert_eq(ha, rt_series_hash("t1", a, 2));
  cr_assert_neq(ha, rt_series_hash("t2", a, 2));
  cr_assert_neq(ha, rt_series_hash("t1", b, 2));
  /* separators keep ("up","job") from colliding with ("upjob","") */
  cr_assert_neq(ha, rt_series_hash("t1", c, 2));
  cr_assert_eq(rt_series_token(ha), (uint32_t)(ha >> 32));
}

Test(labels, compare_and_sort) {
  rt_label l[] = {{"z", "1"}, {"a", "2"}, {"m", "3"}, {"__name__", "n"}};
  rt_labels_sort(l, 4);
  cr_assert_str_eq(l[0].name, "__name__");
  cr_assert_str_eq(l[1].name, "a");
  cr_assert_str_eq(l[3].name, "z");
  cr_assert_str_eq(rt_labels_get(l, 4, "m"), "3");
  cr_assert_null(rt_labels_get(l, 4, "q"));
  rt_label x[] = {{"a", "1"}}, y[] = {{"a", "1"}, {"b", "1"}}, z[] = {{"a", "2"}};
  cr_assert_lt(rt_labels_cmp(x, 1, y, 2), 0);
  cr_assert_gt(rt_labels_cmp(z, 1, y, 2), 0);
  cr_assert_eq(rt_labels_cmp(y, 2, y, 2), 0);
}

Test(labels, sort_many) {
  char names[100][8];
  rt_label l[100];
  for (int i = 0; i < 100; i++) {
    snprintf(names[i], sizeof names[i], "l%03d", (i * 37) % 100);
    l[i] = (rt_label){names[i], "v"};
  }
  rt_labels_sort(l, 100);
  for (int i = 1; i < 100; i++) {
    cr_assert_lt(strcmp(l[i - 1].name, l[i].name), 0);
  }
}

Test(labels, legacy_names) {
  cr_assert(rt_label_name_is_legacy("__name__", 8));
  cr_assert(rt_label_name_is_legacy("a1_B", 4));
  cr_assert_not(rt_label_name_is_legacy("1a", 2));
  cr_assert_not(rt_label_name_is_legacy("a.b", 3));
  cr_assert_not(rt_label_name_is_legacy("", 0));
}

Test(labels, utf8) {
  cr_assert(rt_utf8_valid("plain", 5));
  cr_assert(rt_utf8_valid("h\xc3\xa9llo", 6));
  cr_assert(rt_utf8_valid("\xf0\x9f\x98\x80", 4));
  cr_assert_not(rt_utf8_valid("\xff", 1));
  cr_assert_not(rt_utf8_valid("\xc3", 1));          /* truncated */
  cr_assert_not(rt_utf8_valid("\xc0\xaf", 2));      /* overlong */
  cr_assert_not(rt_utf8_valid("\xed\xa0\x80", 3));  /* surrogate */
  cr_assert_not(rt_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
}

/* rt_utf8_decode against the range table of RFC 3629 (tests/lib/json_check.h): the same length
 * for every input of up to three bytes and for every four-byte input from a lead byte F0..F7
 * followed by bytes at the edges of the continuation range; the code point where valid. */
Test(labels, utf8_decode_agrees_with_rfc3629) {
  for (uint32_t x = 0; x < (1u << 24); x++) {
    unsigned char in[3] = {(unsigned char)(x >> 16), (unsigned char)(x >> 8), (unsigned char)x};
    for (size_t n = 0; n <= 3; n++) {
      uint32_t cp = 0xffffffff;
      size_t got = rt_utf8_decode((const char *)in, n, &cp);
      size_t want = jc_utf8_len(in, n);
      if (got != want) {
        cr_assert_fail("%02x %02x %02x (n=%zu): %zu, want %zu", in[0], in[1], in[2], n, got, want);
      }
      if (got) {
        unsigned char u[4];
        if (jc_utf8_put(cp, u) != got || memcmp(u, in, got) != 0) {
          cr_assert_fail("%02x %02x %02x: code point %x does not encode back", in[0], in[1], in[2], cp);
        }
      }
    }
  }
  static const unsigned char cont[] = {0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xff};
  for (unsigned lead = 0xf0; lead <= 0xf7; lead++) {
    for (size_t i = 0; i < sizeof cont; i++) {
      for (size_t j = 0; j < sizeof cont; j++) {
        for (size_t k = 0; k < sizeof cont; k++) {
          unsigned char in[4] = {(unsigned char)lead, cont[i], cont[j], cont[k]};
          uint32_t cp;
          cr_assert_eq(rt_utf8_decode((const char *)in, 4, &cp), jc_utf8_len(in, 4), "%02x %02x %02x %02x",
                       in[0], in[1], in[2], in[3]);
        }
      }
    }
  }
  uint32_t cp;
  cr_assert_eq(rt_utf8_decode("\xf4\x8f\xbf\xbf", 4, &cp), 4);
  cr_assert_eq(cp, 0x10ffff);
  cr_assert_eq(rt_utf8_decode("\xe2\x80\xa8", 3, &cp), 3);
  cr_assert_eq(cp, 0x2028);
}

static bool m(rt_match_type t, const char *pat, const char *v) {
  rt_matcher mt;
  char err[256];
  cr_assert_eq(rt_matcher_init(&mt, t, "l", pat, err, sizeof err), RT_OK, "%s", err);
  bool r = rt_matcher_matches(&mt, v);
  rt_matcher_fini(&mt);
  return r;
}

Test(labels, matchers) {
  cr_assert(m(RT_MATCH_EQ, "a", "a"));
  cr_assert_not(m(RT_MATCH_EQ, "a", "b"));
  cr_assert(m(RT_MATCH_NEQ, "a", "b"));
  cr_assert(m(RT_MATCH_EQ, "", NULL));          /* absent label = "" */
  /* regexes are fully anchored */
  cr_assert(m(RT_MATCH_RE, "a", "a"));
  cr_assert_not(m(RT_MATCH_RE, "a", "ab"));
  cr_assert_not(m(RT_MATCH_RE, "b", "ab"));
  cr_assert(m(RT_MATCH_RE, "a|b", "b"));
  cr_assert_not(m(RT_MATCH_RE, "a|b", "ab"));
  cr_assert(m(RT_MATCH_RE, "fo+", "fooo"));
  cr_assert(m(RT_MATCH_RE, "a.c", "a\nc"));      /* . matches newline as in Prometheus 3 */
  cr_assert_not(m(RT_MATCH_RE, "abc$", "abc\n"));
  cr_assert(m(RT_MATCH_RE, ".*", ""));
  cr_assert_not(m(RT_MATCH_RE, ".+", ""));
  cr_assert(m(RT_MATCH_RE, ".+", "x"));
  cr_assert(m(RT_MATCH_NRE, "a.*", "ba"));
  cr_assert_not(m(RT_MATCH_NRE, "a.*", "abc"));
  cr_assert(m(RT_MATCH_RE, "(?i)ABC", "abc"));
  cr_assert(m(RT_MATCH_RE, "h\\x{e9}", "h\xc3\xa9"));
}

Test(labels, matcher_matches_empty) {
  rt_matcher mt;
  cr_assert_eq(rt_matcher_init(&mt, RT_MATCH_RE, "l", "x|", NULL, 0), RT_OK);
  cr_assert(rt_matcher_matches_empty(&mt));
  rt_matcher_fini(&mt);
  cr_assert_eq(rt_matcher_init(&mt, RT_MATCH_NEQ, "l", "", NULL, 0), RT_OK);
  cr_assert_not(rt_matcher_matches_empty(&mt));
  rt_matcher_fini(&mt);
}

Test(labels, bad_regex) {
  rt_matcher mt;
  char err[256] = "";
  cr_assert_eq(rt_matcher_init(&mt, RT_MATCH_RE, "l", "a(b", err, sizeof err), RT_EINVAL);
  cr_assert(strstr(err, "error parsing regexp") != NULL, "%s", err);
}

Test(labels, matcher_oom) {
  rt_matcher mt;
  rt_alloc_fail_after(0);
  rt_err e = rt_matcher_init(&mt, RT_MATCH_EQ, "l", "v", NULL, 0);
  rt_alloc_fail_after(-1);
  cr_assert_eq(e, RT_ENOMEM);
}
