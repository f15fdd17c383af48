/* labels.h - label pairs, label sets, series hashing and label matchers. */
#ifndef RT_LABELS_H
#define RT_LABELS_H

#include "common/rt.h"

/* A label pair. The strings are borrowed unless a function says otherwise. */
typedef struct rt_label {
  const char *name;
  const char *value;
} rt_label;

/* Series identity hash: xxHash3-64 over tenant, 0xff, then name, 0xff, value, 0xff for each
 * label in the given (sorted) order. The ring token of a series is the upper 32 bits. */
uint64_t rt_series_hash(const char *tenant, const rt_label *labels, size_t n);
static inline uint32_t rt_series_token(uint64_t hash) { return (uint32_t)(hash >> 32); }

/* Compares label sets as Prometheus does (pairwise by name then value; shorter first). */
int rt_labels_cmp(const rt_label *a, size_t an, const rt_label *b, size_t bn);
/* Sorts by name (stable for equal names). */
void rt_labels_sort(rt_label *labels, size_t n);
/* Value of `name` or NULL. Labels must be sorted. */
const char *rt_labels_get(const rt_label *labels, size_t n, const char *name);

/* True when `s` is a legacy Prometheus label name: [a-zA-Z_][a-zA-Z0-9_]* */
bool rt_label_name_is_legacy(const char *s, size_t n);
/* True when the bytes are valid UTF-8 (no overlongs, no surrogates). */
bool rt_utf8_valid(const char *s, size_t n);
/* Decodes the UTF-8 sequence at the start of s[0..n): returns its length (1..4) and sets *cp,
 * or returns 0 (and leaves *cp alone) when no valid sequence starts there: a stray continuation
 * byte, C0/C1/F5..FF, an overlong form, a surrogate, a code point above U+10FFFF, a sequence cut
 * short by n or by a byte that is not a continuation, or n == 0. */
size_t rt_utf8_decode(const char *s, size_t n, uint32_t *cp);

/* Label matchers (=, !=, =~, !~). Regexes are fully anchored and use PCRE2 with RE2-like
 * options: `.` matches newline, UTF-8 mode. */
typedef enum rt_match_type { RT_MATCH_EQ = 0, RT_MATCH_NEQ = 1, RT_MATCH_RE = 2, RT_MATCH_NRE = 3 } rt_match_type;

typedef struct rt_matcher {
  rt_match_type type;
  char *name;     /* owned */
  char *value;    /* owned */
  void *re;       /* pcre2_code *, owned; NULL for EQ/NEQ */
  /* Fast paths: regex was a plain literal (no metacharacters) or `.*` / `.+`. */
  uint8_t re_kind; /* 0 = general, 1 = literal, 2 = match-all (.*), 3 = non-empty (.+) */
} rt_matcher;

/* Initializes m. On RT_EINVAL (bad regex) writes a message to errbuf. Copies name and value. */
rt_err rt_matcher_init(rt_matcher *m, rt_match_type type, const char *name, const char *value,
                       char *errbuf, size_t errlen);
void rt_matcher_fini(rt_matcher *m);
/* Does the label value match? An absent label has value "". Thread-safe. */
bool rt_matcher_matches(const rt_matcher *m, const char *value);
/* True when the matcher matches the empty string (so it also selects series without the label). */
bool rt_matcher_matches_empty(const rt_matcher *m);

#endif
