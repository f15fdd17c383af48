/* selector_test.c - the match[] series-selector parser: accepted forms, matcher semantics and
 * Prometheus-worded errors. */
#include <criterion/criterion.h>
#include <string.h>

#include "querier/querier.h"

static qry_selector parse_ok(const char *s) {
  qry_selector sel;
  char err[512];
  rt_err e = qry_selector_parse(s, strlen(s), 0, &sel, err, sizeof err);
  cr_assert_eq(e, RT_OK, "parse of %s failed: %s", s, err);
  return sel;
}

static void parse_err(const char *s, unsigned flags, const char *want) {
  qry_selector sel;
  char err[512];
  rt_err e = qry_selector_parse(s, strlen(s), flags, &sel, err, sizeof err);
  cr_assert_eq(e, RT_EINVAL, "parse of %s should fail", s);
  cr_assert_str_eq(err, want, "input %s", s);
  cr_assert_null(sel.m);
  cr_assert_eq(sel.n, 0);
}

static const rt_matcher *find(const qry_selector *sel, const char *name) {
  for (size_t i = 0; i < sel->n; i++) {
    if (strcmp(sel->m[i].name, name) == 0) {
      return &sel->m[i];
    }
  }
  return NULL;
}

Test(selector, bare_metric_name) {
  qry_selector s = parse_ok("up");
  cr_assert_eq(s.n, 1);
  cr_assert_str_eq(s.m[0].name, "__name__");
  cr_assert_str_eq(s.m[0].value, "up");
  cr_assert_eq(s.m[0].type, RT_MATCH_EQ);
  cr_assert(qry_selector_has_nonempty(&s));
  qry_selector_fini(&s);

  s = parse_ok("  node_cpu:rate5m \n");
  cr_assert_str_eq(s.m[0].value, "node_cpu:rate5m");
  qry_selector_fini(&s);
}

Test(selector, braces_only_and_all_four_kinds) {
  qry_selector s = parse_ok("{job=\"x\"}");
  cr_assert_eq(s.n, 1);
  cr_assert_str_eq(s.m[0].name, "job");
  qry_selector_fini(&s);

  s = parse_ok("up{job=~\"a|b\",x!=\"y\", z!~'q.*' , w=`v`}");
  cr_assert_eq(s.n, 5);
  cr_assert_eq(find(&s, "job")->type, RT_MATCH_RE);
  cr_assert_eq(find(&s, "x")->type, RT_MATCH_NEQ);
  cr_assert_eq(find(&s, "z")->type, RT_MATCH_NRE);
  cr_assert_eq(find(&s, "w")->type, RT_MATCH_EQ);
  cr_assert_str_eq(find(&s, "w")->value, "v");
  /* the metric name given before the braces comes last, as in Prometheus */
  cr_assert_str_eq(s.m[4].name, "__name__");
  cr_assert(rt_matcher_matches(find(&s, "job"), "a"));
  cr_assert(rt_matcher_matches(find(&s, "job"), "b"));
  cr_assert_not(rt_matcher_matches(find(&s, "job"), "ab"));
  cr_assert_not(rt_matcher_matches(find(&s, "x"), "y"));
  cr_assert(rt_matcher_matches(find(&s, "x"), ""));
  cr_assert_not(rt_matcher_matches(find(&s, "z"), "qqq"));
  cr_assert(rt_matcher_matches(find(&s, "z"), "xq"));
  qry_selector_fini(&s);
}

Test(selector, regex_is_fully_anchored) {
  qry_selector s = parse_ok("{a=~\"a\", b=~\"b+\", c!~\"c\"}");
  cr_assert(rt_matcher_matches(find(&s, "a"), "a"));
  cr_assert_not(rt_matcher_matches(find(&s, "a"), "ab"));
  cr_assert_not(rt_matcher_matches(find(&s, "a"), "ba"));
  cr_assert(rt_matcher_matches(find(&s, "b"), "bbb"));
  cr_assert_not(rt_matcher_matches(find(&s, "b"), "bbbx"));
  cr_assert_not(rt_matcher_matches(find(&s, "b"), "xbbb"));
  cr_assert(rt_matcher_matches(find(&s, "c"), "cc"));
  cr_assert_not(rt_matcher_matches(find(&s, "c"), "c"));
  qry_selector_fini(&s);
}

Test(selector, trailing_comma_and_empty_braces) {
  qry_selector s = parse_ok("up{job=\"x\",}");
  cr_assert_eq(s.n, 2);
  qry_selector_fini(&s);
  s = parse_ok("up{}");
  cr_assert_eq(s.n, 1);
  qry_selector_fini(&s);
  s = parse_ok("{}");
  cr_assert_eq(s.n, 0);
  cr_assert_not(qry_selector_has_nonempty(&s));
  qry_selector_fini(&s);
}

Test(selector, quoted_metric_names) {
  qry_selector s = parse_ok("{\"my.metric\"}");
  cr_assert_eq(s.n, 1);
  cr_assert_str_eq(s.m[0].name, "__name__");
  cr_assert_str_eq(s.m[0].value, "my.metric");
  qry_selector_fini(&s);

  s = parse_ok("{\"my.metric\", \"the.label\"=\"v\", job='x'}");
  cr_assert_eq(s.n, 3);
  cr_assert_str_eq(find(&s, "the.label")->value, "v");
  cr_assert_str_eq(find(&s, "__name__")->value, "my.metric");
  qry_selector_fini(&s);
}

Test(selector, string_escapes_in_three_quote_styles) {
  qry_selector s = parse_ok("{a=\"x\\\"y\\n\\t\\\\\", b='it\\'s', c=`raw\\n\"'`, d=\"\\x41\\101\\u00e9\\U0001F600\"}");
  cr_assert_str_eq(find(&s, "a")->value, "x\"y\n\t\\");
  cr_assert_str_eq(find(&s, "b")->value, "it's");
  cr_assert_str_eq(find(&s, "c")->value, "raw\\n\"'");
  cr_assert_str_eq(find(&s, "d")->value, "AA\xc3\xa9\xf0\x9f\x98\x80");
  qry_selector_fini(&s);
  /* UTF-8 passes through; raw strings may span lines */
  s = parse_ok("{a=\"h\xc3\xa9\", b=`x\ny`}");
  cr_assert_str_eq(find(&s, "a")->value, "h\xc3\xa9");
  cr_assert_str_eq(find(&s, "b")->value, "x\ny");
  qry_selector_fini(&s);
}

Test(selector, comments_and_keywords_as_names) {
  qry_selector s = parse_ok("sum{by=\"x\"} # a comment");
  cr_assert_eq(s.n, 2);
  cr_assert_str_eq(find(&s, "__name__")->value, "sum");
  cr_assert_str_eq(find(&s, "by")->value, "x");
  qry_selector_fini(&s);
}

Test(selector, parse_errors_read_like_prometheus) {
  parse_err("", 0, "1:1: parse error: unexpected end of input");
  parse_err("up{", 0, "1:4: parse error: unexpected end of input inside braces");
  parse_err("up{job=}", 0, "1:8: parse error: unexpected \"}\" in label matching, expected string");
  parse_err("up{job}", 0,
            "1:7: parse error: unexpected \"}\" in label matching, expected label matching operator");
  parse_err("{=\"x\"}", 0,
            "1:2: parse error: unexpected \"=\" in label matching, expected identifier or \"}\"");
  parse_err("up{a=\"b\" c=\"d\"}", 0,
            "1:10: parse error: unexpected identifier \"c\" in label matching, expected \",\" or \"}\"");
  parse_err("up{a=1}", 0, "1:6: parse error: unexpected character inside braces: '1'");
  parse_err("up{a=\"b}", 0, "1:6: parse error: unterminated quoted string");
  parse_err("up{a=`b}", 0, "1:6: parse error: unterminated raw string");
  parse_err("up{a=\"b\\q\"}", 0, "1:6: parse error: unknown escape sequence U+0071 'q'");
  parse_err("up x", 0, "1:4: parse error: unexpected identifier \"x\"");
  parse_err("up}", 0, "1:3: parse error: unexpected character: '}'");
  parse_err("bool", 0, "1:1: parse error: unexpected <bool>");
  parse_err("ON", 0, "1:1: parse error: unexpected <ON>");
  parse_err("nan", 0, "1:1: parse error: unexpected number \"nan\"");
  parse_err("\"up\"", 0, "1:1: parse error: unexpected string \"\\\"up\\\"\"");
  parse_err("up,", 0, "1:3: parse error: unexpected \",\"");
  parse_err("up{a=\"b\"}{c=\"d\"}", 0, "1:10: parse error: unexpected \"{\"");
  parse_err("up{,}", 0, "1:4: parse error: unexpected \",\" in label matching, expected identifier or \"}\"");
  parse_err("up{a=\"b\",,}", 0,
            "1:10: parse error: unexpected \",\" in label matching, expected identifier or \"}\"");
  parse_err("up{a='\\u12'}", 0, "1:6: parse error: illegal character U+0027 ''' in escape sequence");
  parse_err("up{a=\"\\uD800\"}", 0, "1:6: parse error: escape sequence is an invalid Unicode code point");
  parse_err("up{a=\"x\" # c", 0, "1:13: parse error: unexpected end of input inside braces");
  parse_err("up{a!}", 0, "1:5: parse error: unexpected character after '!' inside braces: '}'");
  parse_err("1", 0, "1:1: parse error: unexpected number \"1\"");
  parse_err("up{a!x}", 0, "1:5: parse error: unexpected character after '!' inside braces: 'x'");
  parse_err("up{{", 0, "1:4: parse error: unexpected left brace '{'");
  parse_err("rate(up[5m])", 0, "1:5: parse error: unexpected \"(\"");
  parse_err("up\n{a=}", 0, "2:4: parse error: unexpected \"}\" in label matching, expected string");
}

Test(selector, bad_regex_names_the_matcher_position) {
  qry_selector sel;
  char err[512];
  cr_assert_eq(qry_selector_parse("up{a=~\"(\"}", 10, 0, &sel, err, sizeof err), RT_EINVAL);
  cr_assert(strncmp(err, "1:4: parse error: error parsing regexp: ", 40) == 0, "%s", err);
}

Test(selector, check_flag_applies_expression_rules) {
  parse_err("{}", QRY_SEL_CHECK,
            "1:1: parse error: vector selector must contain at least one non-empty matcher");
  parse_err("{a=~\".*\", b=\"\"}", QRY_SEL_CHECK,
            "1:1: parse error: vector selector must contain at least one non-empty matcher");
  parse_err("foo{__name__=\"bar\"}", QRY_SEL_CHECK,
            "1:1: parse error: metric name must not be set twice: \"foo\" or \"bar\"");
  /* without the flag, as ParseMetricSelector: accepted */
  qry_selector s = parse_ok("{a=~\".*\"}");
  cr_assert_not(qry_selector_has_nonempty(&s));
  qry_selector_fini(&s);
  s = parse_ok("foo{__name__=\"bar\"}");
  cr_assert_eq(s.n, 2);
  qry_selector_fini(&s);
}

Test(selector, nul_bytes_are_refused) {
  parse_err("{a=\"x\\x00\"}", 0, "1:4: parse error: label values must not contain NUL bytes");
}
