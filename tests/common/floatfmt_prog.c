/* floatfmt_prog.c - the values and outputs that tests/integration/floatfmt_go.sh compares with Go.
 *
 *   floatfmt_prog gen N SEED   prints edge values, then N random bit patterns and N random
 *                              decimals, as 16 hex digits of their bits, one per line
 *   floatfmt_prog fmt          reads such lines and prints rt_float_format 'e', 'f', 'g' and
 *                              rt_float_format_json of each, space separated */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/floatfmt.h"

static uint64_t state;
static uint64_t rng(void) { /* splitmix64 */
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void put(double v) {
  uint64_t b;
  memcpy(&b, &v, sizeof b);
  printf("%016" PRIx64 "\n", b);
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "gen") == 0) {
    long n = atol(argv[2]);
    state = strtoull(argv[3], NULL, 10);
    const double edges[] = {0, -0.0, 1, -1, 0.1, 1.0 / 3, 5e-324, DBL_MIN, DBL_MAX, 1e21, 1e-6, 1e-4, 1e6,
                            NAN, INFINITY, -INFINITY, 9007199254740992.0, 9007199254740993.0};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
      put(edges[i]);
    }
    for (int e = -1074; e <= 1023; e++) {
      put(ldexp(1, e));
      put(nextafter(ldexp(1, e), 0));
      put(nextafter(ldexp(1, e), INFINITY));
    }
    for (int e = -323; e <= 308; e++) {
      char s[16];
      snprintf(s, sizeof s, "1e%d", e);
      put(strtod(s, NULL));
    }
    for (long i = 0; i < n; i++) {
      uint64_t b = rng();
      double v;
      memcpy(&v, &b, sizeof v);
      put(v);
      char s[64];
      int nd = 1 + (int)(rng() % 17);
      snprintf(s, sizeof s, "%" PRIu64 "e%d", (uint64_t)(rng() % 100000000000000000ull / (uint64_t)pow(10, 17 - nd)),
               (int)(rng() % 630) - 320);
      put(strtod(s, NULL));
    }
    return 0;
  }
  if (argc == 2 && strcmp(argv[1], "fmt") == 0) {
    char line[64], e[RT_FLOAT_MAX], f[RT_FLOAT_MAX], g[RT_FLOAT_MAX], j[RT_FLOAT_MAX];
    while (fgets(line, sizeof line, stdin)) {
      uint64_t b = strtoull(line, NULL, 16);
      double v;
      memcpy(&v, &b, sizeof v);
      rt_float_format(e, v, 'e');
      rt_float_format(f, v, 'f');
      rt_float_format(g, v, 'g');
      rt_float_format_json(j, v);
      printf("%s %s %s %s\n", e, f, g, j);
    }
    return 0;
  }
  fprintf(stderr, "usage: floatfmt_prog gen N SEED | floatfmt_prog fmt\n");
  return 2;
}
