/* e2e_test.c - the conformance evals of a few core files end to end: a real ringtail process
 * (-target=all) gets the load blocks by remote-write and answers the evals over HTTP. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/common/http_client.h"

static bool have_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static pid_t start_ringtail(int port, const char *dir) {
  pid_t pid = fork();
  if (pid == 0) {
    char portarg[64], dirarg[512];
    snprintf(portarg, sizeof portarg, "-server.http-listen-port=%d", port);
    snprintf(dirarg, sizeof dirarg, "-ingester.data-dir=%s/data", dir);
    char logp[512];
    snprintf(logp, sizeof logp, "%s/ringtail.log", dir);
    FILE *lf = freopen(logp, "w", stdout);
    (void)lf;
    dup2(1, 2);
    /* one tenant per test file, by X-Scope-OrgID */
    execl(RT_BINARY_DIR "/ringtail", "ringtail", "-target=all", portarg, dirarg,
          "-validation.reject-old-samples=false", "-auth.mode=header", (char *)NULL);
    _exit(127);
  }
  return pid;
}

static bool wait_ready(int port, pid_t pid, int timeout_ms) {
  long deadline = tc_now_ms() + timeout_ms;
  while (tc_now_ms() < deadline) {
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) {
      return false; /* exited */
    }
    tc_resp r;
    memset(&r, 0, sizeof r);
    if (tc_get(port, "/ready", &r) && r.status == 200) {
      tc_free(&r);
      return true;
    }
    tc_free(&r);
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
  }
  return false;
}

Test(e2e, core_files_through_http, .timeout = 280) {
  const char *qdir = RT_SOURCE_DIR "/../shared/promqltest";
  if (!have_dir(qdir)) {
    qdir = RT_SOURCE_DIR "/../../shared/promqltest";
  }
  if (!have_dir(qdir)) {
    cr_skip_test("upstream test files not found next to the repository");
  }
  char dir[] = "/tmp/rt-pqle2e-XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  pid_t pid = -1;
  int port = 0;
  srand((unsigned)(getpid() ^ time(NULL)));
  for (int attempt = 0; attempt < 5; attempt++) {
    port = 20000 + rand() % 20000;
    pid = start_ringtail(port, dir);
    cr_assert_gt(pid, 0);
    if (wait_ready(port, pid, 20000)) {
      break;
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    pid = -1;
  }
  cr_assert_gt(pid, 0, "ringtail did not become ready (see %s/ringtail.log)", dir);
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "%s/promqltest_prog --require-core --port %d --only literals,staleness,selectors,collision,subquery,"
           "name_label_dropping %s",
           RT_BINARY_DIR, port, qdir);
  FILE *f = popen(cmd, "r");
  cr_assert_not_null(f);
  char line[512];
  int files = 0;
  while (fgets(line, sizeof line, f)) {
    if (strstr(line, " core passed ")) {
      files++;
    }
    if (strstr(line, "failed") && !strstr(line, "failed    0") && !strstr(line, "failed 0")) {
      cr_log_error("%s", line);
    }
  }
  int rc = pclose(f);
  /* Ringtail's own files (histogram evals are skipped: remote-write carries no histograms yet) */
  snprintf(cmd, sizeof cmd, "%s/promqltest_prog --require-all --port %d %s/tests/promql/testdata", RT_BINARY_DIR, port,
           RT_SOURCE_DIR);
  f = popen(cmd, "r");
  cr_assert_not_null(f);
  int own_passed = 0, own_failed = -1;
  while (fgets(line, sizeof line, f)) {
    if (!strncmp(line, "files ", 6)) {
      int n;
      cr_expect_eq(sscanf(line, "files %d: passed %d, failed %d", &n, &own_passed, &own_failed), 3);
    } else if (strstr(line, "failed") && !strstr(line, "failed    0")) {
      cr_log_error("%s", line);
    }
  }
  int own_rc = pclose(f);
  kill(pid, SIGTERM);
  int st = 0;
  waitpid(pid, &st, 0);
  char rm[600];
  snprintf(rm, sizeof rm, "rm -rf %s", dir);
  if (system(rm) != 0) {
    cr_log_warn("could not remove %s", dir);
  }
  cr_expect_eq(files, 6, "expected 6 core files to run, ran %d", files);
  cr_expect_eq(rc, 0, "end-to-end conformance failed (exit status %d)", rc);
  cr_expect_eq(own_rc, 0, "own test files end to end failed (exit status %d)", own_rc);
  cr_expect_eq(own_failed, 0, "%d evals of the own test files failed end to end", own_failed);
  cr_expect_gt(own_passed, 40, "only %d evals of the own test files passed end to end", own_passed);
}
