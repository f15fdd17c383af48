/* buf.c - growable byte buffer. */
#include "common/buf.h"
#include "common/labels.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void rt_buf_reserve(rt_buf *b, size_t extra) {
  if (b->oom) {
    return;
  }
  size_t need = b->len + extra + 1;
  if (need <= b->cap) {
    return;
  }
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need) {
    cap *= 2;
  }
  char *p = rt_realloc(b->data, b->cap, cap);
  if (!p) {
    b->oom = true;
    return;
  }
  b->data = p;
  b->cap = cap;
}

void rt_buf_append(rt_buf *b, const void *p, size_t n) {
  rt_buf_reserve(b, n);
  if (b->oom) {
    return;
  }
  if (n) {
    memcpy(b->data + b->len, p, n);
  }
  b->len += n;
  b->data[b->len] = 0;
}

void rt_buf_puts(rt_buf *b, const char *s) { rt_buf_append(b, s, strlen(s)); }

void rt_buf_putc(rt_buf *b, char c) { rt_buf_append(b, &c, 1); }

void rt_buf_printf(rt_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char tmp[256];
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) {
    return;
  }
  if ((size_t)n < sizeof tmp) {
    rt_buf_append(b, tmp, (size_t)n);
    return;
  }
  rt_buf_reserve(b, (size_t)n);
  if (b->oom) {
    return;
  }
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void rt_buf_json_str(rt_buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  rt_buf_reserve(b, n + 2);
  rt_buf_putc(b, '"');
  size_t start = 0; /* s[start .. i) is still to be copied as it is */
  for (size_t i = 0; i < n;) {
    unsigned char c = (unsigned char)s[i];
    const char *esc = NULL;
    char u[7];
    size_t len = 1;
    if (c < 0x80) {
      switch (c) {
      case '"': esc = "\\\""; break;
      case '\\': esc = "\\\\"; break;
      case '\b': esc = "\\b"; break;
      case '\f': esc = "\\f"; break;
      case '\n': esc = "\\n"; break;
      case '\r': esc = "\\r"; break;
      case '\t': esc = "\\t"; break;
      default:
        if (c < 0x20 || c == '<' || c == '>' || c == '&') {
          u[0] = '\\'; u[1] = 'u'; u[2] = '0'; u[3] = '0';
          u[4] = hex[c >> 4]; u[5] = hex[c & 15]; u[6] = 0;
          esc = u;
        }
      }
    } else {
      uint32_t cp = 0;
      len = rt_utf8_decode(s + i, n - i, &cp);
      if (len == 0) {
        esc = "\\ufffd"; /* one per byte, as Go's utf8.DecodeRuneInString steps */
        len = 1;
      } else if (cp == 0x2028) {
        esc = "\\u2028";
      } else if (cp == 0x2029) {
        esc = "\\u2029";
      }
    }
    if (esc) {
      rt_buf_append(b, s + start, i - start);
      rt_buf_puts(b, esc);
      start = i + len;
    }
    i += len;
  }
  rt_buf_append(b, s + start, n - start);
  rt_buf_putc(b, '"');
}

void rt_buf_reset(rt_buf *b) {
  b->len = 0;
  if (b->data) {
    b->data[0] = 0;
  }
}

void rt_buf_free(rt_buf *b) {
  rt_free(b->data, b->cap);
  *b = (rt_buf)RT_BUF_INIT;
}

char *rt_buf_steal(rt_buf *b, size_t *len) {
  char *p = b->data;
  if (len) {
    *len = b->len;
  }
  *b = (rt_buf)RT_BUF_INIT;
  return p;
}
