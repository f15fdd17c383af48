/* buf.h - a growable byte buffer (always NUL-terminated for convenience). */
#ifndef RT_BUF_H
#define RT_BUF_H

#include "common/rt.h"

typedef struct rt_buf {
  char *data;   /* owned; NULL while empty and never grown */
  size_t len;
  size_t cap;
  bool oom;     /* set when a growth failed; later appends are ignored */
} rt_buf;

#define RT_BUF_INIT {0}

void rt_buf_reserve(rt_buf *b, size_t extra);
void rt_buf_append(rt_buf *b, const void *p, size_t n);
void rt_buf_puts(rt_buf *b, const char *s);
void rt_buf_putc(rt_buf *b, char c);
void rt_buf_printf(rt_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends the n bytes at s as a JSON string literal, quotes included. This is the one JSON
 * string writer: its output is what Go's encoding/json writes for the same bytes with HTML
 * escaping on (as Prometheus' API), and is valid UTF-8 and valid JSON whatever s holds:
 * " and \ escaped; \b \f \n \r \t; other bytes below 0x20 (NUL too) and < > & as \u00XX;
 * U+2028 and U+2029 as \u2028 and \u2029; every byte that does not start a valid UTF-8 sequence
 * (see rt_utf8_decode) as one \ufffd; everything else (DEL included) as it is. Borrows s. */
void rt_buf_json_str(rt_buf *b, const char *s, size_t n);
void rt_buf_reset(rt_buf *b);   /* len = 0, keeps memory */
void rt_buf_free(rt_buf *b);    /* releases memory */
/* Hands the bytes to the caller (caller frees with rt_free(p, cap)); the buffer is empty after. */
char *rt_buf_steal(rt_buf *b, size_t *len);

#endif
