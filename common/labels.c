/* labels.c - label sets, hashing, matchers. */
#include "common/labels.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

uint64_t rt_series_hash(const char *tenant, const rt_label *labels, size_t n) {
  XXH3_state_t st;
  static const unsigned char sep = 0xff;
  XXH3_64bits_reset(&st);
  XXH3_64bits_update(&st, tenant, strlen(tenant));
  XXH3_64bits_update(&st, &sep, 1);
  for (size_t i = 0; i < n; i++) {
    XXH3_64bits_update(&st, labels[i].name, strlen(labels[i].name));
    XXH3_64bits_update(&st, &sep, 1);
    XXH3_64bits_update(&st, labels[i].value, strlen(labels[i].value));
    XXH3_64bits_update(&st, &sep, 1);
  }
  return XXH3_64bits_digest(&st);
}

int rt_labels_cmp(const rt_label *a, size_t an, const rt_label *b, size_t bn) {
  size_t n = an < bn ? an : bn;
  for (size_t i = 0; i < n; i++) {
    int c = strcmp(a[i].name, b[i].name);
    if (c) {
      return c;
    }
    c = strcmp(a[i].value, b[i].value);
    if (c) {
      return c;
    }
  }
  return (an > bn) - (an < bn);
}

static void rt_labels_isort(rt_label *l, size_t n) {
  for (size_t i = 1; i < n; i++) {
    rt_label x = l[i];
    size_t j = i;
    while (j > 0 && strcmp(l[j - 1].name, x.name) > 0) {
      l[j] = l[j - 1];
      j--;
    }
    l[j] = x;
  }
}

static int rt_label_name_cmp(const void *a, const void *b) {
  return strcmp(((const rt_label *)a)->name, ((const rt_label *)b)->name);
}

void rt_labels_sort(rt_label *labels, size_t n) {
  if (n <= 32) {
    rt_labels_isort(labels, n);
  } else {
    qsort(labels, n, sizeof *labels, rt_label_name_cmp);
  }
}

const char *rt_labels_get(const rt_label *labels, size_t n, const char *name) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp(labels[mid].name, name);
    if (c == 0) {
      return labels[mid].value;
    }
    if (c < 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return NULL;
}

bool rt_label_name_is_legacy(const char *s, size_t n) {
  if (n == 0) {
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) {
      return false;
    }
  }
  return true;
}

size_t rt_utf8_decode(const char *str, size_t n, uint32_t *cp) {
  const unsigned char *s = (const unsigned char *)str;
  if (n == 0) {
    return 0;
  }
  if (s[0] < 0x80) {
    *cp = s[0];
    return 1;
  }
  size_t len;
  uint32_t c;
  if ((s[0] & 0xe0) == 0xc0) {
    len = 2;
    c = s[0] & 0x1f;
  } else if ((s[0] & 0xf0) == 0xe0) {
    len = 3;
    c = s[0] & 0x0f;
  } else if ((s[0] & 0xf8) == 0xf0) {
    len = 4;
    c = s[0] & 0x07;
  } else {
    return 0;
  }
  if (len > n) {
    return 0;
  }
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80) {
      return 0;
    }
    c = (c << 6) | (s[i] & 0x3f);
  }
  if ((len == 2 && c < 0x80) || (len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
      c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
    return 0;
  }
  *cp = c;
  return len;
}

bool rt_utf8_valid(const char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    if ((unsigned char)s[i] < 0x80) {
      i++;
      continue;
    }
    uint32_t cp;
    size_t len = rt_utf8_decode(s + i, n - i, &cp);
    if (len == 0) {
      return false;
    }
    i += len;
  }
  return true;
}

static bool rt_re_is_literal(const char *v) {
  for (const char *p = v; *p; p++) {
    if (strchr("\\^$.|?*+()[]{}", *p)) {
      return false;
    }
  }
  return true;
}

rt_err rt_matcher_init(rt_matcher *m, rt_match_type type, const char *name, const char *value,
                       char *errbuf, size_t errlen) {
  memset(m, 0, sizeof *m);
  m->type = type;
  m->name = rt_strdup(name);
  m->value = rt_strdup(value);
  if (!m->name || !m->value) {
    rt_matcher_fini(m);
    return RT_ENOMEM;
  }
  if (type == RT_MATCH_RE || type == RT_MATCH_NRE) {
    if (rt_re_is_literal(value)) {
      m->re_kind = 1;
      return RT_OK;
    }
    if (strcmp(value, ".*") == 0) {
      m->re_kind = 2;
      return RT_OK;
    }
    if (strcmp(value, ".+") == 0) {
      m->re_kind = 3;
      return RT_OK;
    }
    int errcode;
    PCRE2_SIZE erroff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)value, PCRE2_ZERO_TERMINATED,
                                   PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_DOTALL | PCRE2_UTF |
                                       PCRE2_DOLLAR_ENDONLY,
                                   &errcode, &erroff, NULL);
    if (!re) {
      if (errbuf && errlen) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(errcode, msg, sizeof msg);
        snprintf(errbuf, errlen, "error parsing regexp: %s at position %zu: `%s`", (char *)msg,
                 (size_t)erroff, value);
      }
      rt_matcher_fini(m);
      return RT_EINVAL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    m->re = re;
  }
  return RT_OK;
}

void rt_matcher_fini(rt_matcher *m) {
  rt_free(m->name, 0);
  rt_free(m->value, 0);
  if (m->re) {
    pcre2_code_free(m->re);
  }
  memset(m, 0, sizeof *m);
}

/* One match-data block per thread, freed by the key's destructor when the thread exits (the
 * main thread's stays reachable through the thread-local pointer until the process ends). */
static pthread_key_t rt_md_key;
static pthread_once_t rt_md_once = PTHREAD_ONCE_INIT;
static __thread pcre2_match_data *rt_md;

static void rt_md_free(void *p) { pcre2_match_data_free(p); }
static void rt_md_init(void) { pthread_key_create(&rt_md_key, rt_md_free); }

static pcre2_match_data *rt_match_data(void) {
  if (!rt_md) {
    pthread_once(&rt_md_once, rt_md_init);
    rt_md = pcre2_match_data_create(1, NULL);
    if (rt_md) {
      pthread_setspecific(rt_md_key, rt_md);
    }
  }
  return rt_md;
}

static bool rt_re_match(const rt_matcher *m, const char *v) {
  switch (m->re_kind) {
  case 1: return strcmp(m->value, v) == 0;
  case 2: return true;
  case 3: return v[0] != 0;
  default: break;
  }
  pcre2_match_data *md = rt_match_data();
  if (!md) {
    return false;
  }
  int rc = pcre2_match(m->re, (PCRE2_SPTR)v, strlen(v), 0, 0, md, NULL);
  return rc >= 0;
}

bool rt_matcher_matches(const rt_matcher *m, const char *value) {
  if (!value) {
    value = "";
  }
  switch (m->type) {
  case RT_MATCH_EQ: return strcmp(m->value, value) == 0;
  case RT_MATCH_NEQ: return strcmp(m->value, value) != 0;
  case RT_MATCH_RE: return rt_re_match(m, value);
  case RT_MATCH_NRE: return !rt_re_match(m, value);
  }
  return false;
}

bool rt_matcher_matches_empty(const rt_matcher *m) { return rt_matcher_matches(m, ""); }
