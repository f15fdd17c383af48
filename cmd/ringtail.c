/* ringtail.c - the Ringtail binary (placeholder until the roles are wired in). */
#include <stdio.h>

int main(void) {
  fprintf(stderr, "ringtail: not wired yet\n");
  return 1;
}
