/* format.c - times as Prometheus writes and reads them in its HTTP API (floats are written by
 * common/floatfmt.h).
 * Times: Unix seconds with decimals (rounded to ms as Prometheus' parseTime does) or RFC 3339. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "querier/querier.h"
#include "querier/querier_int.h"

size_t qry_format_ts(char *buf, int64_t ms) {
  char *o = buf;
  uint64_t u;
  if (ms < 0) {
    *o++ = '-';
    u = (uint64_t)0 - (uint64_t)ms;
  } else {
    u = (uint64_t)ms;
  }
  char rev[24];
  int n = 0;
  uint64_t secs = u / 1000;
  do {
    rev[n++] = (char)('0' + secs % 10);
    secs /= 10;
  } while (secs);
  while (n) {
    *o++ = rev[--n];
  }
  unsigned frac = (unsigned)(u % 1000);
  if (frac) {
    *o++ = '.';
    *o++ = (char)('0' + frac / 100);
    *o++ = (char)('0' + frac / 10 % 10);
    *o++ = (char)('0' + frac % 10);
  }
  *o = 0;
  return (size_t)(o - buf);
}

/* ------------------------------------------------------------ times */

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static bool leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static bool digits_at(const char *s, size_t n, int *out) {
  int v = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isdigit((unsigned char)s[i])) {
      return false;
    }
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

/* RFC 3339 with optional fraction, as Go's time.Parse(time.RFC3339Nano, s). */
static bool parse_rfc3339(const char *s, int64_t *ms) {
  size_t n = strlen(s);
  int y, mo, d, h, mi, se;
  if (n < 20 || !digits_at(s, 4, &y) || s[4] != '-' || !digits_at(s + 5, 2, &mo) || s[7] != '-' ||
      !digits_at(s + 8, 2, &d) || s[10] != 'T' || !digits_at(s + 11, 2, &h) || s[13] != ':' ||
      !digits_at(s + 14, 2, &mi) || s[16] != ':' || !digits_at(s + 17, 2, &se)) {
    return false;
  }
  static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap(y)) || h > 23 ||
      mi > 59 || se > 59) {
    return false;
  }
  size_t i = 19;
  int64_t nanos = 0;
  if (s[i] == '.' || s[i] == ',') { /* Go accepts a comma as the decimal separator */
    i++;
    size_t fs = i;
    int64_t scale = 100000000;
    while (i < n && isdigit((unsigned char)s[i])) {
      if (scale > 0) {
        nanos += (s[i] - '0') * scale;
        scale /= 10;
      }
      i++;
    }
    if (i == fs || i - fs > 9) {
      return false;
    }
  }
  int64_t off = 0;
  if (s[i] == 'Z' && i + 1 == n) {
    off = 0;
  } else if ((s[i] == '+' || s[i] == '-') && i + 6 == n && s[i + 3] == ':') {
    int oh, om;
    if (!digits_at(s + i + 1, 2, &oh) || !digits_at(s + i + 4, 2, &om) || oh > 24 || om > 60) {
      return false;
    }
    off = (oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
  } else {
    return false;
  }
  int64_t sec = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se - off;
  *ms = sec * 1000 + nanos / 1000000;
  return true;
}

/* A float as Go's strconv.ParseFloat accepts it: decimal or hexadecimal (with a 'p' exponent)
 * mantissa, '_' only between digits (or after the 0x prefix), "inf", "infinity", "nan". */
static bool parse_go_float(const char *s, double *out) {
  const char *p = s;
  if (*p == '+' || *p == '-') {
    p++;
  }
  if (strcasecmp(p, "inf") == 0 || strcasecmp(p, "infinity") == 0 || strcasecmp(p, "nan") == 0) {
    *out = strtod(s, NULL);
    return true;
  }
  char clean[128];
  size_t o = 0;
  if (s != p) {
    clean[o++] = *s;
  }
  bool hex = p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
  if (hex) {
    clean[o++] = '0';
    clean[o++] = 'x';
    p += 2;
  }
  bool dig = false, prev_digit = hex, underscores = false;
  for (;; p++) {
    char c = *p;
    bool isd = hex ? isxdigit((unsigned char)c) : isdigit((unsigned char)c);
    if (isd) {
      dig = true;
      prev_digit = true;
    } else if (c == '_') {
      if (!prev_digit || !(hex ? isxdigit((unsigned char)p[1]) : isdigit((unsigned char)p[1]))) {
        return false;
      }
      underscores = true;
      continue;
    } else if (c == '.') {
      prev_digit = false;
    } else {
      break;
    }
    if (o + 1 >= sizeof clean) {
      return false;
    }
    clean[o++] = c;
  }
  (void)underscores;
  if (!dig) {
    return false;
  }
  if ((hex && (*p == 'p' || *p == 'P')) || (!hex && (*p == 'e' || *p == 'E'))) {
    if (o + 1 >= sizeof clean) {
      return false;
    }
    clean[o++] = *p++;
    if (*p == '+' || *p == '-') {
      clean[o++] = *p++;
    }
    if (!isdigit((unsigned char)*p)) {
      return false;
    }
    while (isdigit((unsigned char)*p) || (*p == '_' && isdigit((unsigned char)p[1]))) {
      if (*p != '_') {
        if (o + 1 >= sizeof clean) {
          return false;
        }
        clean[o++] = *p;
      }
      p++;
    }
  } else if (hex) {
    return false; /* Go: hexadecimal mantissa requires a 'p' exponent */
  }
  if (*p) {
    return false;
  }
  clean[o] = 0;
  errno = 0;
  double v = strtod(clean, NULL);
  if (errno == ERANGE && isinf(v)) {
    return false;
  }
  *out = v;
  return true;
}

static int64_t sat_ms(double sec_f) {
  if (sec_f >= 9223372036854775.0) {
    return INT64_MAX / 1000;
  }
  if (sec_f <= -9223372036854775.0) {
    return INT64_MIN / 1000;
  }
  return (int64_t)sec_f;
}

bool qry_parse_time(const char *s, int64_t *ms, char *errbuf, size_t errlen) {
  double f;
  if (parse_go_float(s, &f) && (isnan(f) || isinf(f))) {
    /* Prometheus accepts these and ends up with an undefined time; pick the open ends. */
    *ms = f > 0 ? QRY_MAX_TIME_MS : QRY_MIN_TIME_MS;
    return true;
  }
  if (parse_go_float(s, &f)) {
    double ip;
    double frac = modf(f, &ip);
    double ns = round(frac * 1000) / 1000;
    int64_t sec = sat_ms(ip);
    int64_t nsec = (int64_t)(ns * 1e9);
    if (nsec < 0) {
      sec--;
      nsec += 1000000000;
    }
    *ms = sec * 1000 + nsec / 1000000;
    return true;
  }
  if (parse_rfc3339(s, ms)) {
    return true;
  }
  if (strcmp(s, "-292273086-05-16T16:47:06Z") == 0) {
    *ms = QRY_MIN_TIME_MS;
    return true;
  }
  if (strcmp(s, "292277025-08-18T07:12:54.999999999Z") == 0) {
    *ms = QRY_MAX_TIME_MS;
    return true;
  }
  if (errbuf && errlen) {
    rt_buf b = RT_BUF_INIT;
    rt_buf_puts(&b, "cannot parse ");
    qry_go_quote(&b, s, strlen(s), 0);
    rt_buf_puts(&b, " to a valid timestamp");
    snprintf(errbuf, errlen, "%s", b.data ? b.data : "cannot parse time");
    rt_buf_free(&b);
  }
  return false;
}

/* ------------------------------------------------------------ label names */

char *qry_unescape_name(const char *name) {
  size_t n = strlen(name);
  if (strncmp(name, "U__", 3) != 0) {
    return rt_strndup(name, n);
  }
  char *out = rt_alloc(n + 1);
  if (!out) {
    return NULL;
  }
  size_t o = 0;
  const char *e = name + 3;
  size_t en = n - 3;
  for (size_t i = 0; i < en; i++) {
    if (e[i] != '_') {
      out[o++] = e[i];
      continue;
    }
    i++;
    if (i >= en) {
      goto invalid;
    }
    if (e[i] == '_') {
      out[o++] = '_';
      continue;
    }
    uint32_t cp = 0;
    for (int j = 0;; j++) {
      if (i >= en || j >= 6) {
        goto invalid;
      }
      char c = e[i];
      if (c == '_') {
        break;
      }
      if (c >= 'A' && c <= 'Z') {
        c = (char)(c - 'A' + 'a');
      }
      if (c >= '0' && c <= '9') {
        cp = cp * 16 + (uint32_t)(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        cp = cp * 16 + (uint32_t)(c - 'a' + 10);
      } else {
        goto invalid;
      }
      i++;
    }
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      goto invalid;
    }
    /* encode (an escape of >= 3 bytes "_x_" never yields more bytes than it took, except
     * 4-byte code points, which need >= 5 hex digits plus 2 underscores) */
    if (cp < 0x80) {
      out[o++] = (char)cp;
    } else if (cp < 0x800) {
      out[o++] = (char)(0xc0 | (cp >> 6));
      out[o++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out[o++] = (char)(0xe0 | (cp >> 12));
      out[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
      out[o++] = (char)(0x80 | (cp & 0x3f));
    } else {
      out[o++] = (char)(0xf0 | (cp >> 18));
      out[o++] = (char)(0x80 | ((cp >> 12) & 0x3f));
      out[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
      out[o++] = (char)(0x80 | (cp & 0x3f));
    }
  }
  out[o] = 0;
  return out;
invalid:
  rt_free(out, n + 1);
  return rt_strndup(name, n);
}
