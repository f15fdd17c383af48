/* ringnode_prog.c - one ring member in its own process, for multi-process tests and manual
 * experiments:
 *
 *   ringnode_prog ID ZONE GOSSIP_BIND JOIN DATA_DIR [HEARTBEAT_TIMEOUT_MS] [HTTP_PORT]
 *
 * Joins (JOIN may be "-" for none), turns ACTIVE and runs until SIGTERM/SIGINT (then sets
 * LEAVING and stops) or SIGKILL. With HTTP_PORT > 0 it serves /ring on 127.0.0.1. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/http.h"
#include "ring/ring.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr,
            "usage: %s ID ZONE GOSSIP_BIND JOIN DATA_DIR [HEARTBEAT_TIMEOUT_MS] [HTTP_PORT]\n",
            argv[0]);
    return 2;
  }
  ring_config c;
  ring_config_defaults(&c);
  c.instance_id = argv[1];
  c.zone = argv[2];
  c.gossip_bind = argv[3];
  c.join = strcmp(argv[4], "-") == 0 ? NULL : argv[4];
  c.data_dir = argv[5];
  c.num_tokens = 32;
  c.gossip_interval_ms = 50;
  c.gossip_timeout_ms = 200;
  c.heartbeat_period_ms = 50;
  c.heartbeat_timeout_ms = argc > 6 ? atoll(argv[6]) : 1000;
  int http_port = argc > 7 ? atoi(argv[7]) : 0;
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  char err[256];
  ring *r;
  if (ring_create(&c, &r, err, sizeof err) != RT_OK) {
    fprintf(stderr, "ringnode: %s\n", err);
    return 1;
  }
  ring_set_state(r, RING_ACTIVE);
  rt_http_server *srv = NULL;
  if (http_port > 0) {
    rt_http_config hc = {.listen_addr = "127.0.0.1", .port = http_port, .max_body_bytes = 65536,
                         .conn_timeout_s = 5, .max_conns = 16};
    if (rt_http_server_create(&hc, &srv) != RT_OK || ring_http_register(r, srv) != RT_OK ||
        rt_http_server_start(srv) != RT_OK) {
      fprintf(stderr, "ringnode: cannot serve HTTP on port %d\n", http_port);
      return 1;
    }
  }
  while (!stop) {
    pause();
  }
  ring_set_state(r, RING_LEAVING);
  ring_flush(r);
  rt_http_server_destroy(srv);
  ring_destroy(r);
  return 0;
}
