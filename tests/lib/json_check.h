/* json_check.h - a strict JSON checker for tests and fuzz targets (header only, no Ringtail
 * code, so it judges the writer without sharing its logic).
 *
 * jc_utf8_len() is the table of well-formed UTF-8 byte sequences of RFC 3629 section 4, written
 * out range by range (Ringtail's own decoder works with bit masks instead).
 * jc_json_valid() accepts exactly one RFC 8259 value with optional whitespace around it, with
 * raw text in strings that is well-formed UTF-8 and has no byte below 0x20, and with \u escapes
 * that name a scalar value (a surrogate escape must be a high one followed by a low one).
 * jc_json_string() decodes one JSON string literal into UTF-8 bytes.
 * jc_utf8_replace() is the specification of the writer's input mapping: every well-formed
 * sequence kept, every other byte replaced by U+FFFD (EF BF BD). */
#ifndef RT_TEST_JSON_CHECK_H
#define RT_TEST_JSON_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the well-formed UTF-8 sequence at s[0..n), or 0 when none starts there. */
static inline size_t jc_utf8_len(const unsigned char *s, size_t n) {
  if (n == 0) {
    return 0;
  }
  unsigned char c = s[0];
  unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
  size_t len;
  if (c <= 0x7f) {
    return 1;
  } else if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
  } else if (c == 0xe0) {
    len = 3;
    lo = 0xa0;
  } else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) {
    len = 3;
  } else if (c == 0xed) {
    len = 3;
    hi = 0x9f;
  } else if (c == 0xf0) {
    len = 4;
    lo = 0x90;
  } else if (c >= 0xf1 && c <= 0xf3) {
    len = 4;
  } else if (c == 0xf4) {
    len = 4;
    hi = 0x8f;
  } else {
    return 0; /* 80..C1, F5..FF */
  }
  if (n < len || s[1] < lo || s[1] > hi) {
    return 0;
  }
  for (size_t i = 2; i < len; i++) {
    if (s[i] < 0x80 || s[i] > 0xbf) {
      return 0;
    }
  }
  return len;
}

/* Writes the UTF-8 encoding of a scalar value; returns its length. */
static inline size_t jc_utf8_put(uint32_t cp, unsigned char *out) {
  if (cp < 0x80) {
    out[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (unsigned char)(0xc0 | (cp >> 6));
    out[1] = (unsigned char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (unsigned char)(0xe0 | (cp >> 12));
    out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    out[2] = (unsigned char)(0x80 | (cp & 0x3f));
    return 3;
  }
  out[0] = (unsigned char)(0xf0 | (cp >> 18));
  out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
  out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
  out[3] = (unsigned char)(0x80 | (cp & 0x3f));
  return 4;
}

/* The input with every byte that starts no well-formed sequence replaced by EF BF BD.
 * out needs room for 3 * n bytes; returns the length written. */
static inline size_t jc_utf8_replace(const unsigned char *s, size_t n, unsigned char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    size_t l = jc_utf8_len(s + i, n - i);
    if (l == 0) {
      out[o++] = 0xef;
      out[o++] = 0xbf;
      out[o++] = 0xbd;
      i++;
    } else {
      for (size_t k = 0; k < l; k++) {
        out[o++] = s[i + k];
      }
      i += l;
    }
  }
  return o;
}

static inline int jc_hex(unsigned char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

static inline bool jc_u4(const unsigned char *s, size_t n, size_t *pos, uint32_t *v) {
  if (*pos + 6 > n || s[*pos] != '\\' || s[*pos + 1] != 'u') {
    return false;
  }
  uint32_t x = 0;
  for (size_t i = 2; i < 6; i++) {
    int h = jc_hex(s[*pos + i]);
    if (h < 0) {
      return false;
    }
    x = (x << 4) | (uint32_t)h;
  }
  *pos += 6;
  *v = x;
  return true;
}

/* Decodes the JSON string literal at s[*pos] (which must be '"'); on success *pos is past the
 * closing quote. out (may be NULL) gets the decoded bytes, *outlen their count; a string never
 * decodes to more bytes than it has, so room for n - *pos bytes is enough. */
static inline bool jc_json_string(const unsigned char *s, size_t n, size_t *pos, unsigned char *out,
                                  size_t *outlen) {
  size_t i = *pos, o = 0;
  if (i >= n || s[i] != '"') {
    return false;
  }
  i++;
  for (;;) {
    if (i >= n) {
      return false;
    }
    unsigned char c = s[i];
    if (c == '"') {
      break;
    }
    if (c < 0x20) {
      return false;
    }
    if (c != '\\') {
      size_t l = jc_utf8_len(s + i, n - i);
      if (l == 0) {
        return false;
      }
      for (size_t k = 0; k < l; k++) {
        if (out) {
          out[o] = s[i + k];
        }
        o++;
      }
      i += l;
      continue;
    }
    if (i + 1 >= n) {
      return false;
    }
    unsigned char e = s[i + 1], d;
    switch (e) {
    case '"': d = '"'; break;
    case '\\': d = '\\'; break;
    case '/': d = '/'; break;
    case 'b': d = '\b'; break;
    case 'f': d = '\f'; break;
    case 'n': d = '\n'; break;
    case 'r': d = '\r'; break;
    case 't': d = '\t'; break;
    case 'u': {
      uint32_t cp;
      if (!jc_u4(s, n, &i, &cp)) {
        return false;
      }
      if (cp >= 0xdc00 && cp <= 0xdfff) {
        return false; /* a low surrogate alone */
      }
      if (cp >= 0xd800 && cp <= 0xdbff) {
        uint32_t lo;
        if (!jc_u4(s, n, &i, &lo) || lo < 0xdc00 || lo > 0xdfff) {
          return false;
        }
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
      }
      unsigned char u[4];
      size_t l = jc_utf8_put(cp, u);
      for (size_t k = 0; k < l; k++) {
        if (out) {
          out[o] = u[k];
        }
        o++;
      }
      continue;
    }
    default: return false;
    }
    if (out) {
      out[o] = d;
    }
    o++;
    i += 2;
  }
  *pos = i + 1;
  if (outlen) {
    *outlen = o;
  }
  return true;
}

static inline void jc_ws(const unsigned char *s, size_t n, size_t *pos) {
  while (*pos < n && (s[*pos] == ' ' || s[*pos] == '\t' || s[*pos] == '\n' || s[*pos] == '\r')) {
    (*pos)++;
  }
}

static inline bool jc_digits(const unsigned char *s, size_t n, size_t *pos) {
  size_t start = *pos;
  while (*pos < n && s[*pos] >= '0' && s[*pos] <= '9') {
    (*pos)++;
  }
  return *pos > start;
}

static inline bool jc_number(const unsigned char *s, size_t n, size_t *pos) {
  if (*pos < n && s[*pos] == '-') {
    (*pos)++;
  }
  if (*pos < n && s[*pos] == '0') {
    (*pos)++;
  } else if (!(*pos < n && s[*pos] >= '1' && s[*pos] <= '9') || !jc_digits(s, n, pos)) {
    return false;
  }
  if (*pos < n && s[*pos] == '.') {
    (*pos)++;
    if (!jc_digits(s, n, pos)) {
      return false;
    }
  }
  if (*pos < n && (s[*pos] == 'e' || s[*pos] == 'E')) {
    (*pos)++;
    if (*pos < n && (s[*pos] == '+' || s[*pos] == '-')) {
      (*pos)++;
    }
    if (!jc_digits(s, n, pos)) {
      return false;
    }
  }
  return true;
}

static inline bool jc_word(const unsigned char *s, size_t n, size_t *pos, const char *w) {
  for (; *w; w++, (*pos)++) {
    if (*pos >= n || s[*pos] != (unsigned char)*w) {
      return false;
    }
  }
  return true;
}

static inline bool jc_value(const unsigned char *s, size_t n, size_t *pos, int depth) {
  if (depth > 512) {
    return false;
  }
  jc_ws(s, n, pos);
  if (*pos >= n) {
    return false;
  }
  switch (s[*pos]) {
  case '"': return jc_json_string(s, n, pos, NULL, NULL);
  case 't': return jc_word(s, n, pos, "true");
  case 'f': return jc_word(s, n, pos, "false");
  case 'n': return jc_word(s, n, pos, "null");
  case '[':
  case '{': {
    bool obj = s[*pos] == '{';
    unsigned char close = obj ? '}' : ']';
    (*pos)++;
    jc_ws(s, n, pos);
    if (*pos < n && s[*pos] == close) {
      (*pos)++;
      return true;
    }
    for (;;) {
      if (obj) {
        jc_ws(s, n, pos);
        if (!jc_json_string(s, n, pos, NULL, NULL)) {
          return false;
        }
        jc_ws(s, n, pos);
        if (*pos >= n || s[*pos] != ':') {
          return false;
        }
        (*pos)++;
      }
      if (!jc_value(s, n, pos, depth + 1)) {
        return false;
      }
      jc_ws(s, n, pos);
      if (*pos >= n) {
        return false;
      }
      if (s[*pos] == close) {
        (*pos)++;
        return true;
      }
      if (s[*pos] != ',') {
        return false;
      }
      (*pos)++;
    }
  }
  default: return jc_number(s, n, pos);
  }
}

/* True when s[0..n) is exactly one strict JSON value, whitespace around it allowed. */
static inline bool jc_json_valid(const void *p, size_t n) {
  const unsigned char *s = p;
  size_t pos = 0;
  if (!jc_value(s, n, &pos, 0)) {
    return false;
  }
  jc_ws(s, n, &pos);
  return pos == n;
}

#endif
