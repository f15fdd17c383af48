/* http_client.h - a tiny blocking HTTP/1.1 client over raw sockets, for tests.
 *
 * tc_request() sends bytes exactly as given (so tests can send broken or partial requests) and
 * reads the answer until the peer closes or Content-Length bytes of body arrived, with a
 * deadline. Header-only: static functions. */
#ifndef RT_TEST_HTTP_CLIENT_H
#define RT_TEST_HTTP_CLIENT_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct tc_resp {
  int status;          /* 0 when no status line arrived */
  char *head;          /* status line and headers, NUL-terminated (malloc) */
  char *body;          /* NUL-terminated (malloc) */
  size_t body_len;
  bool closed;         /* the server closed the connection */
} tc_resp;

static inline long tc_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static inline int tc_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    return -1;
  }
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static inline bool tc_send(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) {
      continue;
    }
    if (w <= 0) {
      return false;
    }
    c += w;
    n -= (size_t)w;
  }
  return true;
}

static inline void tc_free(tc_resp *r) {
  free(r->head);
  free(r->body);
  memset(r, 0, sizeof *r);
}

/* Value of a response header (case-insensitive name) copied into buf, or NULL. */
static inline const char *tc_header(const tc_resp *r, const char *name, char *buf, size_t len) {
  if (!r->head) {
    return NULL;
  }
  size_t nl = strlen(name);
  for (const char *p = strstr(r->head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
    const char *line = p + 2;
    if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
      const char *v = line + nl + 1;
      while (*v == ' ') {
        v++;
      }
      const char *e = strstr(v, "\r\n");
      size_t vl = e ? (size_t)(e - v) : strlen(v);
      snprintf(buf, len, "%.*s", (int)vl, v);
      return buf;
    }
  }
  return NULL;
}

/* Reads one response from fd within timeout_ms. Returns false on timeout. */
static inline bool tc_read(int fd, tc_resp *r, int timeout_ms) {
  memset(r, 0, sizeof *r);
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  long deadline = tc_now_ms() + timeout_ms;
  long content_length = -1;
  size_t head_len = 0;
  bool ok = false;
  for (;;) {
    if (head_len && content_length >= 0 && len - head_len >= (size_t)content_length) {
      ok = true;
      break;
    }
    long left = deadline - tc_now_ms();
    if (left <= 0) {
      break;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int pr = poll(&pfd, 1, (int)left);
    if (pr <= 0) {
      if (pr < 0 && errno == EINTR) {
        continue;
      }
      break;
    }
    if (len + 4096 > cap) {
      cap *= 2;
      buf = realloc(buf, cap);
    }
    ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      r->closed = true;
      ok = true;
      break;
    }
    len += (size_t)n;
    buf[len] = 0;
    if (!head_len) {
      char *e = strstr(buf, "\r\n\r\n");
      if (e) {
        head_len = (size_t)(e - buf) + 4;
        r->head = strndup(buf, head_len);
        char tmp[32];
        if (tc_header(r, "Content-Length", tmp, sizeof tmp)) {
          content_length = atol(tmp);
        }
      }
    }
  }
  buf[len] = 0;
  if (!r->head && len > 0) {
    r->head = strndup(buf, len);
    head_len = len;
  }
  if (r->head) {
    sscanf(r->head, "HTTP/1.%*d %d", &r->status);
  }
  size_t bl = len >= head_len ? len - head_len : 0;
  r->body = malloc(bl + 1);
  memcpy(r->body, buf + head_len, bl);
  r->body[bl] = 0;
  r->body_len = bl;
  free(buf);
  return ok;
}

/* One request on a new connection; the connection is closed afterwards. */
static inline bool tc_request(int port, const char *raw, size_t raw_len, tc_resp *r,
                              int timeout_ms) {
  memset(r, 0, sizeof *r);
  int fd = tc_connect(port);
  if (fd < 0) {
    return false;
  }
  bool ok = tc_send(fd, raw, raw_len) && tc_read(fd, r, timeout_ms);
  close(fd);
  return ok;
}

/* GET path with "Connection: close". */
static inline bool tc_get(int port, const char *path, tc_resp *r) {
  char req[4096];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                   path);
  return tc_request(port, req, (size_t)n, r, 5000);
}

/* POST with a body and content type. */
static inline bool tc_post(int port, const char *path, const char *ctype, const char *body,
                           size_t body_len, tc_resp *r) {
  size_t cap = body_len + 1024;
  char *req = malloc(cap);
  int n = snprintf(req, cap,
                   "POST %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: "
                   "%s\r\nContent-Length: %zu\r\n\r\n",
                   path, ctype, body_len);
  memcpy(req + n, body, body_len);
  bool ok = tc_request(port, req, (size_t)n + body_len, r, 5000);
  free(req);
  return ok;
}

#endif
