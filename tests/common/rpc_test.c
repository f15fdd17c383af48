/* rpc_test.c - ZeroMQ request/reply over inproc and tcp. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/rpc.h"

static rt_err echo(void *ctx, const uint8_t *req, size_t len, rt_buf *reply, char *errbuf, size_t errlen) {
  (*(int *)ctx)++;
  if (len == 4 && memcmp(req, "fail", 4) == 0) {
    snprintf(errbuf, errlen, "asked to fail");
    return RT_EINVAL;
  }
  rt_buf_append(reply, req, len);
  rt_buf_append(reply, "!", 1);
  return RT_OK;
}

static rt_err slow(void *ctx, const uint8_t *req, size_t len, rt_buf *reply, char *errbuf, size_t errlen) {
  struct timespec ts = {0, 300 * 1000000};
  nanosleep(&ts, NULL);
  return RT_OK;
}

static const rt_rpc_method methods[] = {{"t.Echo", echo}, {"t.Slow", slow}};

static void roundtrip(const char *ep) {
  int calls = 0;
  rt_rpc_server *srv;
  cr_assert_eq(rt_rpc_server_create(ep, methods, 2, &calls, 2, &srv), RT_OK);
  rt_rpc_client *cli;
  cr_assert_eq(rt_rpc_client_create(ep, &cli), RT_OK);
  rt_buf rep = RT_BUF_INIT;
  char err[256];
  cr_assert_eq(rt_rpc_call(cli, "t.Echo", "hi", 2, 2000, &rep, err, sizeof err), RT_OK, "%s", err);
  cr_assert_eq(rep.len, 3);
  cr_assert(memcmp(rep.data, "hi!", 3) == 0);
  cr_assert_eq(rt_rpc_call(cli, "t.Echo", "fail", 4, 2000, &rep, err, sizeof err), RT_EINVAL);
  cr_assert_str_eq(err, "asked to fail");
  cr_assert_eq(rt_rpc_call(cli, "t.Nope", "", 0, 2000, &rep, err, sizeof err), RT_ENOTFOUND);
  cr_assert(strstr(err, "unknown rpc method") != NULL);
  cr_assert_eq(rt_rpc_call(cli, "t.Slow", "", 0, 50, &rep, err, sizeof err), RT_ETIMEDOUT);
  /* the client stays usable after a timeout */
  cr_assert_eq(rt_rpc_call(cli, "t.Echo", "x", 1, 2000, &rep, err, sizeof err), RT_OK, "%s", err);
  cr_assert_eq(calls, 3);
  rt_buf_free(&rep);
  rt_rpc_client_destroy(cli);
  rt_rpc_server_destroy(srv);
}

Test(rpc, inproc_roundtrip) { roundtrip("inproc://rpc-test"); }

Test(rpc, tcp_roundtrip) { roundtrip("tcp://127.0.0.1:39517"); }

Test(rpc, unreachable_peer) {
  rt_rpc_client *cli;
  cr_assert_eq(rt_rpc_client_create("tcp://127.0.0.1:1", &cli), RT_OK);
  rt_buf rep = RT_BUF_INIT;
  char err[256];
  rt_err e = rt_rpc_call(cli, "t.Echo", "hi", 2, 200, &rep, err, sizeof err);
  cr_assert(e == RT_EUNAVAIL || e == RT_ETIMEDOUT, "got %s", rt_strerror(e));
  rt_buf_free(&rep);
  rt_rpc_client_destroy(cli);
}

struct conc {
  rt_rpc_client *cli;
  int ok;
};

static void *hammer(void *arg) {
  struct conc *c = arg;
  rt_buf rep = RT_BUF_INIT;
  char err[256], msg[32];
  for (int i = 0; i < 200; i++) {
    int n = snprintf(msg, sizeof msg, "m%d", i);
    if (rt_rpc_call(c->cli, "t.Echo", msg, (size_t)n, 5000, &rep, err, sizeof err) == RT_OK &&
        rep.len == (size_t)n + 1 && memcmp(rep.data, msg, (size_t)n) == 0) {
      c->ok++;
    }
  }
  rt_buf_free(&rep);
  return NULL;
}

Test(rpc, concurrent_callers) {
  int calls = 0;
  rt_rpc_server *srv;
  cr_assert_eq(rt_rpc_server_create("inproc://rpc-conc", methods, 2, &calls, 4, &srv), RT_OK);
  rt_rpc_client *cli;
  cr_assert_eq(rt_rpc_client_create("inproc://rpc-conc", &cli), RT_OK);
  pthread_t th[8];
  struct conc cs[8];
  for (int i = 0; i < 8; i++) {
    cs[i] = (struct conc){cli, 0};
    pthread_create(&th[i], NULL, hammer, &cs[i]);
  }
  for (int i = 0; i < 8; i++) {
    pthread_join(th[i], NULL);
    cr_assert_eq(cs[i].ok, 200);
  }
  rt_rpc_client_destroy(cli);
  rt_rpc_server_destroy(srv);
}
