/* split_test.c - the whole upstream PromQL corpus through a ringtail that splits every range
 * query into 1m parts and shards aggregations into 4 series shards, against the same corpus
 * through a ringtail that does neither: every file must pass, fail and skip the same evals. */
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

static pid_t start_ringtail(int port, const char *dir, const char *split, const char *shards) {
  pid_t pid = fork();
  if (pid == 0) {
    char portarg[64], dirarg[512], splitarg[128], shardarg[128], logp[512];
    snprintf(portarg, sizeof portarg, "-server.http-listen-port=%d", port);
    snprintf(dirarg, sizeof dirarg, "-ingester.data-dir=%s/data", dir);
    snprintf(splitarg, sizeof splitarg, "-querier.split-queries-by-interval=%s", split);
    snprintf(shardarg, sizeof shardarg, "-querier.total-shards=%s", shards);
    snprintf(logp, sizeof logp, "%s/ringtail.log", dir);
    FILE *lf = freopen(logp, "w", stdout);
    (void)lf;
    dup2(1, 2);
    execl(RT_BINARY_DIR "/ringtail", "ringtail", "-target=all", portarg, dirarg, splitarg, shardarg,
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

typedef struct run {
  char lines[128][512]; /* the per-file count lines and the total */
  int n;
  int rc;
} run;

/* Starts a ringtail with these flags in a new directory, runs the corpus through it, stops it. */
static void corpus_through(const char *qdir, const char *split, const char *shards, run *out) {
  char dir[] = "/tmp/rt-pqlsplit-XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  pid_t pid = -1;
  int port = 0;
  for (int attempt = 0; attempt < 5; attempt++) {
    port = 20000 + rand() % 20000;
    pid = start_ringtail(port, dir, split, shards);
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
  snprintf(cmd, sizeof cmd, "%s/promqltest_prog --port %d %s", RT_BINARY_DIR, port, qdir);
  FILE *f = popen(cmd, "r");
  cr_assert_not_null(f);
  char line[512];
  out->n = 0;
  while (fgets(line, sizeof line, f)) {
    if ((strstr(line, " passed ") || strstr(line, " skipped ")) && out->n < 128) {
      snprintf(out->lines[out->n++], sizeof out->lines[0], "%s", line);
    }
  }
  out->rc = pclose(f);
  kill(pid, SIGTERM);
  int st = 0;
  waitpid(pid, &st, 0);
  cr_expect(WIFEXITED(st) || WTERMSIG(st) == SIGTERM, "ringtail (split %s, shards %s) died with signal %d", split,
            shards, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  char rm[600];
  snprintf(rm, sizeof rm, "rm -rf %s", dir);
  if (system(rm) != 0) {
    cr_log_warn("could not remove %s", dir);
  }
}

Test(split, corpus_split_and_sharded_equals_plain, .timeout = 280) {
  const char *qdir = RT_SOURCE_DIR "/../shared/promqltest";
  if (!have_dir(qdir)) {
    qdir = RT_SOURCE_DIR "/../../shared/promqltest";
  }
  if (!have_dir(qdir)) {
    cr_skip_test("upstream test files not found next to the repository");
  }
  srand((unsigned)(getpid() ^ time(NULL)));
  static run plain, split;
  corpus_through(qdir, "0", "0", &plain);
  corpus_through(qdir, "1m", "4", &split);
  cr_assert_eq(plain.rc, 0, "corpus through the plain ringtail: exit status %d", plain.rc);
  cr_assert_eq(split.rc, 0, "corpus through the splitting ringtail: exit status %d", split.rc);
  cr_assert_gt(plain.n, 20, "only %d result lines from the corpus", plain.n);
  cr_assert_eq(plain.n, split.n, "%d result lines plain, %d split and sharded", plain.n, split.n);
  int differ = 0;
  for (int i = 0; i < plain.n; i++) {
    if (strcmp(plain.lines[i], split.lines[i]) != 0) {
      cr_log_error("plain:   %ssplit:   %s", plain.lines[i], split.lines[i]);
      differ++;
    }
  }
  cr_log_info("split and sharded: %s", split.lines[split.n - 1]);
  cr_expect_eq(differ, 0, "%d result lines differ between the plain and the split and sharded ringtail", differ);
}

/* Ringtail's own files through a ringtail that splits range queries into 1m parts and shards:
 * the quantile edge cases answer the same; differences.test loses exactly its range eval of the
 * monotonicity info, which comes once per part when a query is split (docs/promql.md). */
Test(split, own_files_split_and_sharded, .timeout = 120) {
  srand((unsigned)(getpid() ^ time(NULL)));
  static run split;
  corpus_through(RT_SOURCE_DIR "/tests/promql/testdata", "1m", "4", &split);
  cr_assert_eq(split.rc, 0, "own files through the splitting ringtail: exit status %d", split.rc);
  int seen = 0;
  for (int i = 0; i < split.n; i++) {
    int passed = -1, failed = -1;
    const char *p = strstr(split.lines[i], "passed");
    if (!p || sscanf(p, "passed %d failed %d", &passed, &failed) != 2) {
      continue;
    }
    if (strncmp(split.lines[i], "differences ", 12) == 0) {
      seen++;
      cr_expect_eq(failed, 1, "differences.test through the splitting ringtail: %s", split.lines[i]);
    } else if (strncmp(split.lines[i], "quantile_edges ", 15) == 0) {
      seen++;
      cr_expect_eq(failed, 0, "quantile_edges.test through the splitting ringtail: %s", split.lines[i]);
      cr_expect_gt(passed, 60, "%s", split.lines[i]);
    }
  }
  cr_expect_eq(seen, 2, "expected the lines of both own files, saw %d", seen);
}
