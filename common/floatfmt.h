/* floatfmt.h - the one float formatter: Go's shortest round-trip forms, without printf or strtod.
 *
 * Every number Ringtail writes for a reader (/metrics exposition, JSON sample values, PromQL's
 * format_query, annotations and test output, `ringtail dump`) goes through here, so each place
 * gives what Go's strconv.FormatFloat(v, fmt, -1, 64) gives in Prometheus. See common/DESIGN.md
 * "Float formatting" for the algorithm. All functions are pure, thread-safe and never allocate. */
#ifndef RT_FLOATFMT_H
#define RT_FLOATFMT_H

#include <stddef.h>

/* Bytes that hold any output of the functions below, NUL included. The longest is 'f' of
 * -2.2250738585072014e-308 (the sign, "0.", 307 zeros, 17 digits); 'e', 'g' and the JSON form
 * never pass RT_FLOAT_SHORT. */
#define RT_FLOAT_MAX 336
#define RT_FLOAT_SHORT 32

/* The shortest decimal that reads back as the finite, non-zero |v| (the closest such one, ties
 * to an even last digit): writes its digits (no leading or trailing zeros, not NUL-ended) to
 * digits and returns how many (1..17); *exp10 is x in |v| = d.ddd... x 10^x. */
int rt_float_shortest(double v, char digits[17], int *exp10);

/* Go's strconv.FormatFloat(v, fmt, -1, 64) for fmt 'e', 'f' or 'g' ("NaN", "+Inf", "-Inf",
 * "-0" kept). Writes a NUL-ended string to buf (RT_FLOAT_MAX bytes for 'f', RT_FLOAT_SHORT for
 * 'e' and 'g') and returns its length. */
size_t rt_float_format(char *buf, double v, char fmt);
/* Go's 'g' layout of the shortest digits with the exponent form chosen when the decimal
 * exponent x is < -4 or >= eprec (rt_float_format's 'g' is eprec 6; PromQL's number literals
 * use 21). buf holds RT_FLOAT_SHORT + eprec bytes. Returns the length. */
size_t rt_float_format_g(char *buf, double v, int eprec);
/* rt_float_format that returns buf, for printf arguments. */
static inline char *rt_float_str(char *buf, double v, char fmt) {
  rt_float_format(buf, v, fmt);
  return buf;
}
/* A sample value as Prometheus' JSON writes it (util/jsonutil.MarshalFloat): 'e' when
 * 0 < |v| < 1e-6 or |v| >= 1e21, 'f' otherwise. buf holds RT_FLOAT_SHORT bytes. */
size_t rt_float_format_json(char *buf, double v);
/* Go's fmt "%.<prec>g" (prec >= 0: rounded to prec significant digits, trailing zeros dropped)
 * with Go's NaN/±Inf spellings, into buf of len bytes (32 + prec is enough). Cold path: uses
 * snprintf, whose %g rounds and lays out as Go's does. Returns buf. */
char *rt_float_format_prec(char *buf, size_t len, double v, int prec);

#endif
