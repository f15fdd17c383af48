/* log.c - logfmt logger. One line per call, written with a single write(2). */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static rt_log_level rt_log_min = RT_LOG_INFO;
static const char *const rt_level_names[] = {"debug", "info", "warn", "error"};

void rt_log_set_level(rt_log_level lvl) { rt_log_min = lvl; }

int rt_log_set_level_name(const char *name) {
  for (int i = 0; i < 4; i++) {
    if (strcmp(name, rt_level_names[i]) == 0) {
      rt_log_min = (rt_log_level)i;
      return 0;
    }
  }
  return -1;
}

void rt_log(rt_log_level lvl, const char *component, const char *msg, const char *kv, ...) {
  if (lvl < rt_log_min) {
    return;
  }
  char line[4096];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  int n = snprintf(line, sizeof line,
                   "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s component=%s msg=\"",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                   tm.tm_sec, ts.tv_nsec / 1000000, rt_level_names[lvl], component);
  for (const char *p = msg; *p && n < (int)sizeof line - 8; p++) {
    if (*p == '"' || *p == '\\') {
      line[n++] = '\\';
    }
    line[n++] = (*p == '\n') ? ' ' : *p;
  }
  line[n++] = '"';
  if (kv && *kv && n < (int)sizeof line - 2) {
    line[n++] = ' ';
    va_list ap;
    va_start(ap, kv);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, kv, ap);
    va_end(ap);
    if (m > 0) {
      n += (m < (int)sizeof line - n - 2 ? m : (int)sizeof line - n - 2);
    }
  }
  line[n++] = '\n';
  ssize_t w = write(2, line, (size_t)n);
  (void)w;
}
