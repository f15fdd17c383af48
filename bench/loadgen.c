/* loadgen.c - remote-write load generator (placeholder). */
#include <stdio.h>

int main(void) {
  fprintf(stderr, "ringtail-loadgen: not written yet\n");
  return 1;
}
