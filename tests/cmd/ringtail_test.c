/* ringtail_test.c - smoke test of the real binary: start it on an ephemeral port, check the
 * shared endpoints, stop it with SIGTERM; -help and bad command lines. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/common/http_client.h"

#define BIN RT_BINARY_DIR "/ringtail"

typedef struct proc {
  pid_t pid;
  int err_fd;          /* read end of the child's stderr */
  char log[65536];     /* what it logged so far */
  size_t log_len;
} proc;

/* Children still running when a test ends (a failed assertion skips its own cleanup) are
 * killed by the suite's fini. */
static pid_t children[8];
static size_t nchildren;

static void kill_children(void) {
  for (size_t i = 0; i < nchildren; i++) {
    if (children[i] > 0 && waitpid(children[i], NULL, WNOHANG) == 0) {
      kill(children[i], SIGKILL);
      waitpid(children[i], NULL, 0);
    }
  }
  nchildren = 0;
}

TestSuite(ringtail, .fini = kill_children);

/* Starts ringtail with args (NULL-terminated, without argv[0]). */
static void start(proc *p, const char *const *args) {
  memset(p, 0, sizeof *p);
  int fds[2];
  cr_assert_eq(pipe(fds), 0);
  p->pid = fork();
  cr_assert_geq(p->pid, 0);
  if (p->pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    const char *argv[32] = {BIN};
    int n = 1;
    for (; args[n - 1] && n < 31; n++) {
      argv[n] = args[n - 1];
    }
    argv[n] = NULL;
    execv(BIN, (char **)argv);
    _exit(127);
  }
  close(fds[1]);
  if (nchildren < sizeof children / sizeof children[0]) {
    children[nchildren++] = p->pid;
  }
  p->err_fd = fds[0];
  fcntl(p->err_fd, F_SETFL, O_NONBLOCK);
}

/* Reads the child's log until `needle` appears or the deadline passes. */
static const char *wait_log(proc *p, const char *needle, int timeout_ms) {
  long deadline = tc_now_ms() + timeout_ms;
  for (;;) {
    const char *hit = strstr(p->log, needle);
    if (hit) {
      return hit;
    }
    long left = deadline - tc_now_ms();
    if (left <= 0) {
      return NULL;
    }
    struct pollfd pfd = {.fd = p->err_fd, .events = POLLIN};
    if (poll(&pfd, 1, (int)left) > 0) {
      ssize_t n = read(p->err_fd, p->log + p->log_len, sizeof p->log - p->log_len - 1);
      if (n > 0) {
        p->log_len += (size_t)n;
        p->log[p->log_len] = 0;
      } else if (n == 0) {
        return strstr(p->log, needle);
      }
    }
  }
}

/* Waits for the child to exit; returns its exit status or -1 on timeout. */
static int wait_exit(proc *p, int timeout_ms) {
  long deadline = tc_now_ms() + timeout_ms;
  for (;;) {
    int st;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == p->pid) {
      wait_log(p, "\x01", 0);
      close(p->err_fd);
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    if (tc_now_ms() > deadline) {
      return -1;
    }
    wait_log(p, "\x01", 20);   /* drain the log while waiting */
  }
}

static int port_of(proc *p) {
  const char *l = wait_log(p, "msg=\"HTTP server listening\"", 10000);
  cr_assert_not_null(l, "no listening line in the log:\n%s", p->log);
  const char *pp = strstr(l, "port=");
  cr_assert_not_null(pp);
  return atoi(pp + 5);
}

/* Polls GET path until it answers `status`, with a deadline. */
static bool wait_status(int port, const char *path, int status, int timeout_ms) {
  long deadline = tc_now_ms() + timeout_ms;
  while (tc_now_ms() < deadline) {
    tc_resp r;
    bool ok = tc_get(port, path, &r) && r.status == status;
    tc_free(&r);
    if (ok) {
      return true;
    }
    usleep(20000);
  }
  return false;
}

Test(ringtail, serves_shared_endpoints_and_stops_on_sigterm, .timeout = 60) {
  char dir[] = "/tmp/rt_smoke_XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  char data_flag[128];
  snprintf(data_flag, sizeof data_flag, "-ingester.data-dir=%s/data", dir);
  const char *args[] = {"-target=all", "-server.http-listen-address=127.0.0.1",
                        "-server.http-listen-port=0", data_flag, NULL};
  proc p;
  start(&p, args);
  int port = port_of(&p);
  cr_assert(wait_status(port, "/ready", 200, 10000), "never ready:\n%s", p.log);

  tc_resp r;
  cr_assert(tc_get(port, "/ready", &r));
  cr_assert_str_eq(r.body, "ready\n");
  tc_free(&r);

  cr_assert(tc_get(port, "/metrics", &r));
  cr_assert_eq(r.status, 200);
  char h[128];
  cr_assert_str_eq(tc_header(&r, "Content-Type", h, sizeof h),
                   "text/plain; version=0.0.4; charset=utf-8");
  cr_assert(strstr(r.body, "\nprocess_resident_memory_bytes "), "%s", r.body);
  cr_assert(strstr(r.body, "\nprocess_start_time_seconds "), "%s", r.body);
  cr_assert(strstr(r.body, "\nprocess_open_fds "), "%s", r.body);
  cr_assert(strstr(r.body, "ringtail_build_info{version=\""), "%s", r.body);
  cr_assert(strstr(r.body, "\nringtail_ingester_memory_series 0\n"), "%s", r.body);
  cr_assert(strstr(r.body, "\nringtail_ingester_wal_bytes "), "%s", r.body);
  cr_assert(strstr(r.body, "\nringtail_ingester_db_bytes "), "%s", r.body);
  cr_assert(strstr(r.body, "ringtail_ingester_samples_rejected_total{reason=\"out_of_order\"} 0\n"),
            "%s", r.body);
  cr_assert(strstr(r.body, "ringtail_request_duration_seconds_count{method=\"GET\",route=\"ready\","
                           "status_code=\"200\"}"),
            "%s", r.body);
  tc_free(&r);

  cr_assert(tc_get(port, "/prometheus/api/v1/status/buildinfo", &r));
  cr_assert_eq(r.status, 200);
  cr_assert(strstr(r.body, "{\"status\":\"success\",\"data\":{"), "%s", r.body);
  cr_assert(strstr(r.body, "\"version\":\"" RT_VERSION "\""), "%s", r.body);
  tc_free(&r);

  cr_assert(tc_get(port, "/api/v1/status/flags", &r));
  cr_assert_eq(r.status, 200);
  cr_assert(strstr(r.body, "\"target\":\"all\""), "%s", r.body);
  tc_free(&r);

  cr_assert(tc_get(port, "/config", &r));
  cr_assert_eq(r.status, 200);
  cr_assert(strstr(r.body, "target: \"all\"\n"), "%s", r.body);
  tc_free(&r);

  cr_assert(tc_get(port, "/prometheus/api/v1/status/config", &r));
  cr_assert_eq(r.status, 200);
  cr_assert(strstr(r.body, "{\"status\":\"success\",\"data\":{\"yaml\":\"target: \\\"all\\\"\\n"),
            "%s", r.body);
  tc_free(&r);

  cr_assert(tc_get(port, "/api/v1/status/runtimeinfo", &r));
  cr_assert_eq(r.status, 200);
  cr_assert(strstr(r.body, "\"startTime\":\""), "%s", r.body);
  tc_free(&r);

  cr_assert(tc_get(port, "/", &r));
  cr_assert_eq(r.status, 200);
  cr_assert(strstr(r.body, "<title>Ringtail</title>"), "%s", r.body);
  tc_free(&r);

  cr_assert(tc_get(port, "/prometheus/api/v1/labels", &r));
  cr_assert_eq(r.status, 200, "%s", r.body);
  cr_assert_str_eq(r.body, "{\"status\":\"success\",\"data\":[]}");
  tc_free(&r);

  cr_assert(tc_get(port, "/does/not/exist", &r));
  cr_assert_eq(r.status, 404);
  tc_free(&r);

  cr_assert(strstr(p.log, "level=info"), "logfmt lines expected:\n%s", p.log);
  cr_assert(wait_log(&p, "url=http://", 5000), "no hint where to point Grafana:\n%s", p.log);

  kill(p.pid, SIGTERM);
  cr_assert_eq(wait_exit(&p, 20000), 0, "%s", p.log);
  cr_assert(strstr(p.log, "msg=\"shutting down\" signal=SIGTERM"), "%s", p.log);
  cr_assert(strstr(p.log, "msg=\"flushing the ingester\""), "%s", p.log);

  /* the data directory reads back offline */
  char cmd[256];
  snprintf(cmd, sizeof cmd, "%s dump -ingester.data-dir=%s/data >/dev/null", BIN, dir);
  cr_assert_eq(system(cmd), 0);
  snprintf(cmd, sizeof cmd, "%s dump -data-dir=%s/data -tenant=nobody >/dev/null", BIN, dir);
  cr_assert_eq(system(cmd), 0);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  cr_assert_eq(system(cmd), 0);
}

/* Runs the binary to completion; returns the exit status and its stdout+stderr in out. */
static int run(const char *args, char *out, size_t len) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "timeout -s KILL 20 %s %s 2>&1", BIN, args);
  FILE *f = popen(cmd, "r");
  cr_assert_not_null(f);
  size_t n = fread(out, 1, len - 1, f);
  out[n] = 0;
  int st = pclose(f);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(ringtail, help_lists_flags, .timeout = 30) {
  static char out[65536];
  cr_assert_eq(run("-help", out, sizeof out), 0);
  cr_assert(strstr(out, "-target string"), "%s", out);
  cr_assert(strstr(out, "-ingester.data-dir string"), "%s", out);
  cr_assert(strstr(out, "(default 9009)"), "%s", out);
  cr_assert(strstr(out, "-config.file"), "%s", out);
}

Test(ringtail, version, .timeout = 30) {
  static char out[4096];
  cr_assert_eq(run("-version", out, sizeof out), 0);
  cr_assert(strstr(out, "ringtail, version " RT_VERSION), "%s", out);
}

Test(ringtail, bad_command_lines_fail_with_a_message, .timeout = 30) {
  static char out[65536];
  cr_assert_eq(run("-target=distributor,frobnicator", out, sizeof out), 2);
  cr_assert(strstr(out, "unknown role \"frobnicator\""), "%s", out);
  cr_assert_eq(run("-target=distributor", out, sizeof out), 2);
  cr_assert(strstr(out, "-distributor.ingester-addresses is required"), "%s", out);
  cr_assert_eq(run("-target=querier", out, sizeof out), 2);
  cr_assert(strstr(out, "-querier.ingester-addresses is required"), "%s", out);
  /* the compactor works inside an ingester's process */
  cr_assert_eq(run("-target=compactor", out, sizeof out), 2);
  cr_assert(strstr(out, "run it with the ingester, -target=ingester,compactor"), "%s", out);
  cr_assert_eq(run("-target=distributor,compactor", out, sizeof out), 2);
  cr_assert(strstr(out, "-target=ingester,compactor"), "%s", out);
  cr_assert_eq(run("-target=ruler", out, sizeof out), 2);
  cr_assert(strstr(out, "role ruler is not available"), "%s", out);
  /* a static ring's list: an address twice is refused before anything starts */
  cr_assert_eq(run("-target=distributor -server.http-listen-address=127.0.0.1 "
                   "-server.http-listen-port=0 "
                   "-distributor.ingester-addresses=tcp://127.0.0.1:1,tcp://127.0.0.1:1",
                   out, sizeof out),
               1);
  cr_assert(strstr(out, "ingester address tcp://127.0.0.1:1 is listed twice"), "%s", out);
  cr_assert_eq(run("-target=querier -server.http-listen-address=127.0.0.1 "
                   "-server.http-listen-port=0 -querier.ingester-addresses=,",
                   out, sizeof out),
               1);
  cr_assert(strstr(out, "no ingester address given"), "%s", out);
  cr_assert_eq(run("-no-such-flag", out, sizeof out), 2);
  cr_assert(strstr(out, "unknown flag -no-such-flag"), "%s", out);
  cr_assert_eq(run("serve", out, sizeof out), 2);
  cr_assert(strstr(out, "unexpected argument"), "%s", out);
  cr_assert_eq(run("-config.file=/nonexistent.yaml", out, sizeof out), 2);
  cr_assert(strstr(out, "/nonexistent.yaml"), "%s", out);
}

Test(ringtail, dump_of_a_missing_directory_fails, .timeout = 30) {
  static char out[65536];
  cr_assert_eq(run("dump -ingester.data-dir=/nonexistent/ringtail-data", out, sizeof out), 1);
  cr_assert(strstr(out, "/nonexistent/ringtail-data"), "%s", out);
  cr_assert_eq(run("dump -tenant", out, sizeof out), 2);
  cr_assert(strstr(out, "needs a value"), "%s", out);
}

Test(ringtail, port_in_use_fails_cleanly, .timeout = 30) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  cr_assert_eq(listen(fd, 1), 0);
  socklen_t sl = sizeof sa;
  getsockname(fd, (struct sockaddr *)&sa, &sl);
  char args[256];
  snprintf(args, sizeof args, "-target=querier -querier.ingester-addresses=tcp://127.0.0.1:1 "
           "-server.http-listen-address=127.0.0.1 -server.http-listen-port=%d", ntohs(sa.sin_port));
  static char out[65536];
  cr_assert_eq(run(args, out, sizeof out), 1);
  cr_assert(strstr(out, "Address already in use"), "%s", out);
  close(fd);
}

/* Counts occurrences of needle in s. */
static int count(const char *s, const char *needle) {
  int n = 0;
  for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) {
    n++;
  }
  return n;
}

/* Starts -target=all on dir's data directory and waits until ready; returns the port. */
static int start_all(proc *p, const char *dir) {
  static char data_flag[160];
  snprintf(data_flag, sizeof data_flag, "-ingester.data-dir=%s/data", dir);
  const char *args[] = {"-target=all", "-server.http-listen-address=127.0.0.1",
                        "-server.http-listen-port=0", data_flag, NULL};
  start(p, args);
  int port = port_of(p);
  cr_assert(wait_status(port, "/ready", 200, 20000), "never ready:\n%s", p->log);
  return port;
}

Test(ringtail, remote_write_is_served_kept_across_restart_and_dumped, .timeout = 120) {
  char dir[] = "/tmp/rt_smoke_XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  proc p;
  int port = start_all(&p, dir);
  cr_assert(wait_log(&p, "url=http://", 5000), "%s", p.log);
  cr_assert(strstr(p.log, "/api/v1/push") && strstr(p.log, "/prometheus"),
            "start-up must say where to point Prometheus and Grafana:\n%s", p.log);

  /* 50 series x 10 samples through the real remote-write path */
  char cmd[512];
  snprintf(cmd, sizeof cmd,
           RT_BINARY_DIR "/ringtail-loadgen --url http://127.0.0.1:%d/api/v1/push --series 50 "
                         "--rounds 10 --duration 0 --concurrency 1 --quiet",
           port);
  static char out[65536];
  FILE *f = popen(cmd, "r");
  cr_assert_not_null(f);
  size_t n = fread(out, 1, sizeof out - 1, f);
  out[n] = 0;
  cr_assert_eq(pclose(f), 0, "%s", out);
  cr_assert(strstr(out, "samples_ok=500 "), "%s", out);

  tc_resp r;
  cr_assert(tc_get(port, "/prometheus/api/v1/series?match[]=%7Bjob%3D%22loadgen%22%7D", &r));
  cr_assert_eq(r.status, 200, "%s", r.body);
  cr_assert_eq(count(r.body, "\"__name__\""), 50, "%s", r.body);
  tc_free(&r);

  /* samples from 1970 are rejected, and counted by reason */
  snprintf(cmd, sizeof cmd,
           RT_BINARY_DIR "/ringtail-loadgen --url http://127.0.0.1:%d/api/v1/push --series 5 "
                         "--rounds 1 --duration 0 --concurrency 1 --start-ts 1000 "
                         "--metric-prefix ancient --quiet",
           port);
  f = popen(cmd, "r");
  cr_assert_not_null(f);
  n = fread(out, 1, sizeof out - 1, f);
  out[n] = 0;
  pclose(f);
  cr_assert(strstr(out, "requests_rejected=1 "), "%s", out);

  /* PromQL on the same port, as Grafana asks */
  cr_assert(tc_get(port, "/prometheus/api/v1/query?query=count%28count_over_time%28%7Bjob%3D%22loadgen%22%7D%5B2h%5D%29%29", &r));
  cr_assert_eq(r.status, 200, "%s", r.body);
  cr_assert(strstr(r.body, "\"resultType\":\"vector\""), "%s", r.body);
  cr_assert(strstr(r.body, "\"50\"]"), "%s", r.body);
  tc_free(&r);

  cr_assert(tc_get(port, "/metrics", &r));
  cr_assert(strstr(r.body, "\nringtail_distributor_received_samples_total{user=\"anonymous\"} 505\n"), "%s", r.body);
  cr_assert(strstr(r.body, "\nringtail_ingester_samples_appended_total 500\n"), "%s", r.body);
  cr_assert(strstr(r.body, "\nringtail_ingester_memory_series 50\n"), "%s", r.body);
  cr_assert(strstr(r.body, "ringtail_distributor_requests_total{status_code=\"200\"} 10\n"), "%s",
            r.body);
  cr_assert(strstr(r.body, "ringtail_distributor_requests_total{status_code=\"400\"} 1\n"), "%s",
            r.body);
  cr_assert(strstr(r.body, "ringtail_discarded_samples_total{user=\"anonymous\",reason=\"sample_too_old\"} 5\n"),
            "%s", r.body);
  cr_assert(strstr(r.body, "ringtail_request_duration_seconds_count{method=\"POST\",route=\"api_"
                           "v1_push\",status_code=\"200\"} 10\n"),
            "%s", r.body);
  tc_free(&r);

  kill(p.pid, SIGTERM);
  cr_assert_eq(wait_exit(&p, 30000), 0, "%s", p.log);

  /* offline: every sample in the dump */
  snprintf(cmd, sizeof cmd, RT_BINARY_DIR "/ringtail dump -ingester.data-dir=%s/data", dir);
  f = popen(cmd, "r");
  cr_assert_not_null(f);
  int lines = 0;
  char line[1024];
  while (fgets(line, sizeof line, f)) {
    lines += strstr(line, "job=\"loadgen\"") != NULL;
  }
  cr_assert_eq(pclose(f), 0);
  cr_assert_eq(lines, 500);

  /* and after a restart, served again */
  port = start_all(&p, dir);
  cr_assert(tc_get(port, "/api/v1/series?match[]=%7Bjob%3D%22loadgen%22%7D", &r));
  cr_assert_eq(r.status, 200, "%s", r.body);
  cr_assert_eq(count(r.body, "\"__name__\""), 50, "%s", r.body);
  tc_free(&r);
  kill(p.pid, SIGINT);
  cr_assert_eq(wait_exit(&p, 30000), 0, "%s", p.log);
  cr_assert(strstr(p.log, "signal=SIGINT"), "%s", p.log);

  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  cr_assert_eq(system(cmd), 0);
}

/* A free TCP port on loopback (bound and released; good enough for a test). */
static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  socklen_t sl = sizeof sa;
  getsockname(fd, (struct sockaddr *)&sa, &sl);
  close(fd);
  return ntohs(sa.sin_port);
}

Test(ringtail, roles_in_separate_processes_talk_over_tcp, .timeout = 120) {
  char dir[] = "/tmp/rt_smoke_XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  int rpc = free_port();
  char data_flag[160], rpc_flag[96], dist_flag[96], qry_flag[96];
  snprintf(data_flag, sizeof data_flag, "-ingester.data-dir=%s/data", dir);
  snprintf(rpc_flag, sizeof rpc_flag, "-server.rpc-listen-address=tcp://127.0.0.1:%d", rpc);
  snprintf(dist_flag, sizeof dist_flag, "-distributor.ingester-addresses=tcp://127.0.0.1:%d", rpc);
  snprintf(qry_flag, sizeof qry_flag, "-querier.ingester-addresses=tcp://127.0.0.1:%d", rpc);
  const char *ing_args[] = {"-target=ingester", "-server.http-listen-address=127.0.0.1",
                            "-server.http-listen-port=0", data_flag, rpc_flag, NULL};
  const char *front_args[] = {"-target=distributor,querier",
                              "-server.http-listen-address=127.0.0.1",
                              "-server.http-listen-port=0", dist_flag, qry_flag, NULL};
  proc ing, front;
  start(&ing, ing_args);
  int ing_port = port_of(&ing);
  cr_assert(wait_status(ing_port, "/ready", 200, 20000), "%s", ing.log);
  cr_assert(wait_log(&ing, "rpc_endpoint=tcp://127.0.0.1:", 5000), "%s", ing.log);
  start(&front, front_args);
  int port = port_of(&front);
  cr_assert(wait_status(port, "/ready", 200, 20000), "%s", front.log);

  char cmd[512];
  snprintf(cmd, sizeof cmd,
           RT_BINARY_DIR "/ringtail-loadgen --url http://127.0.0.1:%d/api/v1/push --series 20 "
                         "--rounds 5 --duration 0 --concurrency 1 --quiet >/dev/null",
           port);
  cr_assert_eq(system(cmd), 0);
  tc_resp r;
  cr_assert(tc_get(port, "/api/v1/series?match[]=%7Bjob%3D%22loadgen%22%7D", &r));
  cr_assert_eq(r.status, 200, "%s", r.body);
  cr_assert_eq(count(r.body, "\"__name__\""), 20, "%s", r.body);
  tc_free(&r);
  cr_assert(tc_get(ing_port, "/metrics", &r));
  cr_assert(strstr(r.body, "\nringtail_ingester_memory_series 20\n"), "%s", r.body);
  cr_assert_null(strstr(r.body, "ringtail_distributor_"), "the ingester runs no distributor");
  tc_free(&r);
  cr_assert(tc_get(port, "/metrics", &r));
  cr_assert(strstr(r.body, "\nringtail_distributor_received_samples_total{user=\"anonymous\"} 100\n"), "%s", r.body);
  cr_assert_null(strstr(r.body, "ringtail_ingester_"), "the front runs no ingester");
  tc_free(&r);

  kill(front.pid, SIGTERM);
  kill(ing.pid, SIGTERM);
  cr_assert_eq(wait_exit(&front, 30000), 0, "%s", front.log);
  cr_assert_eq(wait_exit(&ing, 30000), 0, "%s", ing.log);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  cr_assert_eq(system(cmd), 0);
}
