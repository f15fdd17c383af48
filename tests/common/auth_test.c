/* auth_test.c - tenants, the workspaces file, hashing, rights, the verification cache and its
 * invalidation on reload; then the HTTP server answering 400 / 401 / 403 itself. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/auth.h"
#include "common/buf.h"
#include "common/http.h"
#include "common/metrics.h"
#include "tests/common/http_client.h"

static char path[64];

static void write_file(const char *text) {
  char tmp[80];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  cr_assert(f);
  fputs(text, f);
  fclose(f);
  cr_assert_eq(rename(tmp, path), 0);   /* atomic, as an operator's editor or a deploy does */
}

static void make_path(void) {
  snprintf(path, sizeof path, "/tmp/rt-auth-test-%d-XXXXXX", (int)getpid());
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  close(fd);
}

static void drop_path(void) { unlink(path); }

static void hash_of(const char *secret, char *out, size_t len) {
  cr_assert_eq(rt_auth_hash_secret(secret, out, len), RT_OK);
}

/* Tokens of the fixture: tw writes to team-a, tr reads team-b, ta holds everything in team-c;
 * user "graf" (password "pw-1") reads team-b. */
static char tw[128], tr[128], ta[128];
static char idw[32], idr[32], ida[32];

static void fixture_text(rt_buf *b, const char *tw_tok, const char *tw_id) {
  char hw[200], hr[200], ha[200], hu[200];
  hash_of(tw_tok, hw, sizeof hw);
  hash_of(tr, hr, sizeof hr);
  hash_of(ta, ha, sizeof ha);
  hash_of("pw-1", hu, sizeof hu);
  rt_buf_printf(b,
                "workspaces:\n"
                "  team-a:\n"
                "    tokens:\n"
                "      - id: %s\n"
                "        hash: \"%s\"\n"
                "        rights: [write]\n"
                "        description: prometheus eu-1\n"
                "  team-b:\n"
                "    tokens:\n"
                "      - {id: %s, hash: \"%s\", rights: [read]}\n"
                "    users:\n"
                "      - name: graf\n"
                "        hash: '%s'\n"
                "        rights: [read, rules]\n"
                "  team-c:\n"
                "    tokens:\n"
                "      - id: %s\n"
                "        hash: \"%s\"\n"
                "        rights: all\n"
                "  empty-ws:\n",
                tw_id, hw, idr, hr, hu, ida, ha);
}

static void setup_tokens(void) {
  cr_assert_eq(rt_auth_new_token(tw, sizeof tw, idw, sizeof idw), RT_OK);
  cr_assert_eq(rt_auth_new_token(tr, sizeof tr, idr, sizeof idr), RT_OK);
  cr_assert_eq(rt_auth_new_token(ta, sizeof ta, ida, sizeof ida), RT_OK);
}

static rt_auth *token_auth(void) {
  make_path();
  setup_tokens();
  rt_buf b = RT_BUF_INIT;
  fixture_text(&b, tw, idw);
  write_file(b.data);
  rt_buf_free(&b);
  rt_auth *a = NULL;
  char err[512] = "";
  cr_assert_eq(rt_auth_create("token", path, &a, err, sizeof err), RT_OK, "%s", err);
  return a;
}

static char authz_buf[400];
static const char *bearer(const char *t) {
  snprintf(authz_buf, sizeof authz_buf, "Bearer %s", t);
  return authz_buf;
}

static const char *basic(const char *user_pass) {
  char b64[300];
  /* a tiny base64 encoder (the test should not share the code under test) */
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t n = strlen(user_pass), k = 0;
  const unsigned char *s = (const unsigned char *)user_pass;
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) |
                 (i + 2 < n ? s[i + 2] : 0);
    b64[k++] = tab[v >> 18 & 63];
    b64[k++] = tab[v >> 12 & 63];
    b64[k++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
    b64[k++] = i + 2 < n ? tab[v & 63] : '=';
  }
  b64[k] = 0;
  snprintf(authz_buf, sizeof authz_buf, "Basic %s", b64);
  return authz_buf;
}

/* ---------- tenant ids, rights, hashes, tokens ---------- */

Test(auth, tenant_ids) {
  char err[256];
  cr_assert(rt_tenant_valid("anonymous", err, sizeof err));
  cr_assert(rt_tenant_valid("team-a_1.prod*(x)'!", err, sizeof err));
  cr_assert_not(rt_tenant_valid("", err, sizeof err));
  cr_assert_not(rt_tenant_valid(".", err, sizeof err));
  cr_assert_not(rt_tenant_valid("..", err, sizeof err));
  cr_assert_not(rt_tenant_valid("a/b", err, sizeof err));
  cr_assert(strstr(err, "'/'"), "%s", err);
  cr_assert_not(rt_tenant_valid("a|b", err, sizeof err));
  cr_assert_not(rt_tenant_valid("a b", err, sizeof err));
  cr_assert_not(rt_tenant_valid("a\nb", err, sizeof err));
  cr_assert(strstr(err, "\\x0a"), "control characters are shown escaped: %s", err);
  char long_id[RT_TENANT_MAX_LEN + 2];
  memset(long_id, 'x', sizeof long_id - 1);
  long_id[sizeof long_id - 1] = 0;
  cr_assert_not(rt_tenant_valid(long_id, err, sizeof err));
  cr_assert(strstr(err, "too long"), "%s", err);
  long_id[RT_TENANT_MAX_LEN] = 0;
  cr_assert(rt_tenant_valid(long_id, err, sizeof err));
}

Test(auth, rights_names) {
  cr_assert_eq(rt_auth_right_parse("read"), RT_AUTH_READ);
  cr_assert_eq(rt_auth_right_parse("write"), RT_AUTH_WRITE);
  cr_assert_eq(rt_auth_right_parse("rules"), RT_AUTH_RULES);
  cr_assert_eq(rt_auth_right_parse("admin"), RT_AUTH_ADMIN);
  cr_assert_eq(rt_auth_right_parse("all"), RT_AUTH_ALL);
  cr_assert_eq(rt_auth_right_parse("Read"), 0);
  cr_assert_eq(rt_auth_right_parse(""), 0);
  cr_assert_str_eq(rt_auth_right_name(RT_AUTH_RULES), "rules");
  /* the bits are the HTTP route flags */
  cr_assert_eq(RT_AUTH_READ, RT_HTTP_RIGHT_READ);
  cr_assert_eq(RT_AUTH_WRITE, RT_HTTP_RIGHT_WRITE);
  cr_assert_eq(RT_AUTH_RULES, RT_HTTP_RIGHT_RULES);
  cr_assert_eq(RT_AUTH_ADMIN, RT_HTTP_RIGHT_ADMIN);
}

Test(auth, hash_and_verify) {
  char h1[200], h2[200];
  hash_of("s3cret", h1, sizeof h1);
  hash_of("s3cret", h2, sizeof h2);
  cr_assert(strncmp(h1, "$6$", 3) == 0, "%s", h1);
  cr_assert_str_neq(h1, h2, "every hash has its own salt");
  cr_assert_null(strstr(h1, "s3cret"));
  cr_assert(rt_auth_verify_hash("s3cret", h1));
  cr_assert(rt_auth_verify_hash("s3cret", h2));
  cr_assert_not(rt_auth_verify_hash("s3creT", h1));
  cr_assert_not(rt_auth_verify_hash("", h1));
  cr_assert_not(rt_auth_verify_hash("s3cret", "plain"));
  cr_assert_not(rt_auth_verify_hash("s3cret", ""));
  char small[10];
  cr_assert_neq(rt_auth_hash_secret("x", small, sizeof small), RT_OK);
}

Test(auth, new_tokens_are_random_and_carry_their_id) {
  char t1[128], t2[128], i1[32], i2[32];
  cr_assert_eq(rt_auth_new_token(t1, sizeof t1, i1, sizeof i1), RT_OK);
  cr_assert_eq(rt_auth_new_token(t2, sizeof t2, i2, sizeof i2), RT_OK);
  cr_assert_str_neq(t1, t2);
  cr_assert_str_neq(i1, i2);
  cr_assert(strncmp(t1, "rt_", 3) == 0);
  cr_assert(strncmp(t1 + 3, i1, strlen(i1)) == 0 && t1[3 + strlen(i1)] == '_', "%s %s", t1, i1);
  cr_assert_eq(strlen(t1), 3 + 12 + 1 + 40);
}

/* ---------- the workspaces file ---------- */

static void bad_file(const char *text, const char *want) {
  char err[512] = "";
  cr_assert_neq(rt_auth_check_file_text(text, strlen(text), err, sizeof err), RT_OK,
                "accepted: %s", text);
  cr_assert(strstr(err, want), "error \"%s\" lacks \"%s\"", err, want);
}

Test(auth, file_errors_are_clear) {
  char h[200];
  hash_of("x", h, sizeof h);
  char t[1024];
  bad_file("workspaces: [", "line");
  bad_file("- a\n", "mapping");
  bad_file("tenants: {}\n", "unknown top-level key \"tenants\"");
  bad_file("workspaces: [a, b]\n", "mapping of workspace name");
  bad_file("workspaces:\n  a/b: {}\n", "unsupported character '/'");
  bad_file("workspaces:\n  a:\n    tokenz: []\n", "unknown key \"tokenz\"");
  bad_file("workspaces:\n  a:\n    tokens: {id: x}\n", "must be a list");
  snprintf(t, sizeof t, "workspaces:\n  a:\n    tokens:\n      - {id: abcd1234, hash: \"%s\"}\n", h);
  bad_file(t, "missing rights");
  snprintf(t, sizeof t,
           "workspaces:\n  a:\n    tokens:\n      - {id: abcd1234, hash: \"%s\", rights: [wrte]}\n", h);
  bad_file(t, "unknown right \"wrte\"");
  snprintf(t, sizeof t,
           "workspaces:\n  a:\n    tokens:\n      - {id: abcd1234, hash: \"%s\", rights: []}\n", h);
  bad_file(t, "rights is empty");
  bad_file("workspaces:\n  a:\n    tokens:\n      - {id: abcd1234, hash: hunter2, rights: [read]}\n",
           "not a crypt(3) hash");
  bad_file("workspaces:\n  a:\n    tokens:\n      - {id: abcd1234, rights: [read]}\n",
           "missing hash");
  snprintf(t, sizeof t, "workspaces:\n  a:\n    tokens:\n      - {hash: \"%s\", rights: [read]}\n", h);
  bad_file(t, "missing id");
  snprintf(t, sizeof t,
           "workspaces:\n  a:\n    tokens:\n      - {id: ABC_1, hash: \"%s\", rights: [read]}\n", h);
  bad_file(t, "token id must be");
  snprintf(t, sizeof t,
           "workspaces:\n  a:\n    users:\n      - {name: \"a:b\", hash: \"%s\", rights: [read]}\n", h);
  bad_file(t, "user name must be");
  snprintf(t, sizeof t,
           "workspaces:\n  a:\n    users:\n      - {name: u, hash: \"%s\", rights: [read], pw: x}\n",
           h);
  bad_file(t, "unknown key \"pw\"");
  snprintf(t, sizeof t,
           "workspaces:\n  a:\n    tokens:\n      - {id: abcd1234, hash: \"%s\", rights: [read]}\n"
           "  b:\n    tokens:\n      - {id: abcd1234, hash: \"%s\", rights: [write]}\n",
           h, h);
  bad_file(t, "token id \"abcd1234\" appears more than once");
  snprintf(t, sizeof t,
           "workspaces:\n  a:\n    users:\n      - {name: u, hash: \"%s\", rights: [read]}\n"
           "  b:\n    users:\n      - {name: u, hash: \"%s\", rights: [write]}\n",
           h, h);
  bad_file(t, "user \"u\" appears more than once");
  bad_file("workspaces:\n  a: {}\n  a: {}\n", "listed twice");
  /* a token id and a user name may coincide: they are looked up by kind */
  snprintf(t, sizeof t,
           "workspaces:\n  a:\n    tokens:\n      - {id: abcd1234, hash: \"%s\", rights: [read]}\n"
           "    users:\n      - {name: abcd1234, hash: \"%s\", rights: [read]}\n",
           h, h);
  char err[256];
  cr_assert_eq(rt_auth_check_file_text(t, strlen(t), err, sizeof err), RT_OK, "%s", err);
  cr_assert_eq(rt_auth_check_file_text("", 0, err, sizeof err), RT_OK, "an empty file: no one");
}

Test(auth, create_errors) {
  rt_auth *a = NULL;
  char err[512];
  cr_assert_neq(rt_auth_create("tokens", "", &a, err, sizeof err), RT_OK);
  cr_assert(strstr(err, "-auth.mode"), "%s", err);
  cr_assert_neq(rt_auth_create("token", "", &a, err, sizeof err), RT_OK);
  cr_assert(strstr(err, "-auth.workspaces-file"), "%s", err);
  cr_assert_neq(rt_auth_create("token", "/nonexistent/ws.yaml", &a, err, sizeof err), RT_OK);
  cr_assert(strstr(err, "/nonexistent/ws.yaml"), "%s", err);
  cr_assert_null(a);
}

/* ---------- checking requests ---------- */

static void expect(rt_auth *a, const char *authz, const char *org, unsigned need, int status,
                   const char *tenant, const char *msg_part) {
  rt_auth_result r;
  rt_auth_check(a, authz, org, need, &r);
  cr_assert_eq(r.status, status, "authz=%s need=%u: status %d (%s)", authz ? authz : "-", need,
               r.status, r.msg);
  if (tenant) {
    cr_assert_str_eq(r.tenant, tenant);
  } else if (status == 0) {
    cr_assert_null(r.tenant);
  }
  if (msg_part) {
    cr_assert(strstr(r.msg, msg_part), "\"%s\" lacks \"%s\"", r.msg, msg_part);
  }
  if (status == 401) {
    cr_assert(r.challenge && strstr(r.challenge, "WWW-Authenticate: "));
  }
  if (status) {
    /* never a word about workspaces that exist */
    cr_assert_null(strstr(r.msg, "team-"), "%s", r.msg);
  }
  rt_auth_release(&r);
}

Test(auth, mode_none_is_anonymous_whatever_the_header) {
  rt_auth *a;
  char err[256];
  cr_assert_eq(rt_auth_create("none", "", &a, err, sizeof err), RT_OK);
  cr_assert_eq(rt_auth_get_mode(a), RT_AUTH_NONE);
  expect(a, NULL, NULL, RT_AUTH_WRITE, 0, "anonymous", NULL);
  expect(a, NULL, "team-a", RT_AUTH_READ, 0, "anonymous", NULL);
  expect(a, "Bearer junk", "a/b", RT_AUTH_ADMIN, 0, "anonymous", NULL);
  rt_auth_destroy(a);
}

Test(auth, mode_header) {
  rt_auth *a;
  char err[256];
  cr_assert_eq(rt_auth_create("header", "", &a, err, sizeof err), RT_OK);
  expect(a, NULL, "team-a", RT_AUTH_WRITE, 0, "team-a", NULL);
  expect(a, NULL, NULL, RT_AUTH_READ, 401, NULL, "X-Scope-OrgID");
  expect(a, NULL, "", RT_AUTH_READ, 401, NULL, "X-Scope-OrgID");
  expect(a, NULL, "../etc", RT_AUTH_READ, 400, NULL, "unsupported character '/'");
  expect(a, NULL, "a|b", RT_AUTH_READ, 400, NULL, "'|'");
  expect(a, NULL, NULL, 0, 0, NULL, NULL);   /* an open route */
  rt_auth_result r;
  rt_auth_check(a, NULL, NULL, RT_AUTH_READ, &r);
  cr_assert(strstr(r.challenge, "X-Scope-OrgID realm=\"ringtail\""), "%s", r.challenge);
  rt_auth_release(&r);
  rt_auth_destroy(a);
}

Test(auth, mode_token_rights_and_statuses, .fini = drop_path) {
  rt_auth *a = token_auth();
  cr_assert_eq(rt_auth_ncredentials(a), 4);
  expect(a, bearer(tw), NULL, RT_AUTH_WRITE, 0, "team-a", NULL);
  expect(a, bearer(tw), NULL, RT_AUTH_READ, 403, NULL, "\"read\" right");
  expect(a, bearer(tr), NULL, RT_AUTH_READ, 0, "team-b", NULL);
  expect(a, bearer(tr), NULL, RT_AUTH_WRITE, 403, NULL, "\"write\" right");
  expect(a, bearer(tr), NULL, RT_AUTH_RULES, 403, NULL, "\"rules\" right");
  expect(a, bearer(tr), NULL, RT_AUTH_ADMIN, 403, NULL, "\"admin\" right");
  expect(a, bearer(ta), NULL, RT_AUTH_ADMIN, 0, "team-c", NULL);
  expect(a, bearer(ta), NULL, RT_AUTH_RULES, 0, "team-c", NULL);
  /* the header cannot choose another workspace */
  expect(a, bearer(tr), "team-c", RT_AUTH_READ, 0, "team-b", NULL);
  expect(a, basic("graf:pw-1"), NULL, RT_AUTH_READ, 0, "team-b", NULL);
  expect(a, basic("graf:pw-1"), NULL, RT_AUTH_RULES, 0, "team-b", NULL);
  expect(a, basic("graf:pw-1"), NULL, RT_AUTH_WRITE, 403, NULL, "\"write\"");
  /* 401s */
  expect(a, NULL, NULL, RT_AUTH_READ, 401, NULL, "authentication required");
  expect(a, "  ", NULL, RT_AUTH_READ, 401, NULL, "authentication required");
  expect(a, NULL, "team-b", RT_AUTH_READ, 401, NULL, "authentication required");
  expect(a, basic("graf:pw-2"), NULL, RT_AUTH_READ, 401, NULL, "invalid credentials");
  expect(a, basic("nobody:pw-1"), NULL, RT_AUTH_READ, 401, NULL, "invalid credentials");
  expect(a, basic("graf"), NULL, RT_AUTH_READ, 401, NULL, "user:password");
  expect(a, "Basic !!!", NULL, RT_AUTH_READ, 401, NULL, "base64");
  expect(a, "Digest x", NULL, RT_AUTH_READ, 401, NULL, "unsupported Authorization scheme");
  expect(a, "Bearer", NULL, RT_AUTH_READ, 401, NULL, NULL);
  expect(a, "Bearer rt", NULL, RT_AUTH_READ, 401, NULL, "not a Ringtail token");
  expect(a, "Bearer rt_", NULL, RT_AUTH_READ, 401, NULL, "not a Ringtail token");
  expect(a, "Bearer xyz", NULL, RT_AUTH_READ, 401, NULL, "not a Ringtail token");
  char wrong[160];
  snprintf(wrong, sizeof wrong, "%s", tr);
  wrong[strlen(wrong) - 1] ^= 1;   /* right id, wrong secret */
  expect(a, bearer(wrong), NULL, RT_AUTH_READ, 401, NULL, "invalid credentials");
  char unknown[160];
  snprintf(unknown, sizeof unknown, "rt_000000000000_%s", tr + 16);
  expect(a, bearer(unknown), NULL, RT_AUTH_READ, 401, NULL, "invalid credentials");
  char huge[3000];
  memset(huge, 'a', sizeof huge - 1);
  huge[sizeof huge - 1] = 0;
  memcpy(huge, "Bearer rt_abcd_", 15);
  expect(a, huge, NULL, RT_AUTH_READ, 401, NULL, NULL);
  memcpy(huge, "Basic ", 6);
  expect(a, huge, NULL, RT_AUTH_READ, 401, NULL, NULL);
  /* a scheme name is case-insensitive */
  char lower[200];
  snprintf(lower, sizeof lower, "bearer %s", tr);
  expect(a, lower, NULL, RT_AUTH_READ, 0, "team-b", NULL);
  rt_auth_destroy(a);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

Test(auth, verified_secrets_are_cached, .fini = drop_path) {
  rt_auth *a = token_auth();
  double t0 = now_s();
  expect(a, bearer(tr), NULL, RT_AUTH_READ, 0, "team-b", NULL);   /* runs crypt(3) */
  double cold = now_s() - t0;
  t0 = now_s();
  for (int i = 0; i < 200; i++) {
    expect(a, bearer(tr), NULL, RT_AUTH_READ, 0, "team-b", NULL);
  }
  double warm = now_s() - t0;
  cr_assert_lt(warm, cold * 20, "200 cached checks took %.4fs, one cold check %.4fs", warm, cold);
  /* a wrong secret for a cached credential still fails */
  char wrong[160];
  snprintf(wrong, sizeof wrong, "%s", tr);
  wrong[strlen(wrong) - 1] ^= 1;
  expect(a, bearer(wrong), NULL, RT_AUTH_READ, 401, NULL, NULL);
  expect(a, bearer(tr), NULL, RT_AUTH_READ, 0, "team-b", NULL);
  rt_auth_destroy(a);
}

Test(auth, reload_rotates_and_invalidates_the_cache, .fini = drop_path) {
  rt_auth *a = token_auth();
  expect(a, bearer(tw), NULL, RT_AUTH_WRITE, 0, "team-a", NULL);   /* cached now */
  /* rotate team-a's token: same id, new secret */
  char tw2[128], id2[32];
  cr_assert_eq(rt_auth_new_token(tw2, sizeof tw2, id2, sizeof id2), RT_OK);
  char rotated[128];
  snprintf(rotated, sizeof rotated, "rt_%s_%s", idw, tw2 + 16);
  rt_buf b = RT_BUF_INIT;
  fixture_text(&b, rotated, idw);
  write_file(b.data);
  rt_buf_free(&b);
  char err[512] = "";
  cr_assert_eq(rt_auth_reload(a, err, sizeof err), RT_OK, "%s", err);
  expect(a, bearer(tw), NULL, RT_AUTH_WRITE, 401, NULL, "invalid credentials");
  expect(a, bearer(rotated), NULL, RT_AUTH_WRITE, 0, "team-a", NULL);
  expect(a, bearer(tr), NULL, RT_AUTH_READ, 0, "team-b", NULL);
  rt_auth_destroy(a);
}

Test(auth, bad_reload_keeps_the_previous_file, .fini = drop_path) {
  rt_auth *a = token_auth();
  write_file("workspaces:\n  team-a:\n    tokens: [ {id: zz\n");
  char err[512] = "";
  cr_assert_neq(rt_auth_reload(a, err, sizeof err), RT_OK);
  cr_assert(strstr(err, path), "the error names the file: %s", err);
  expect(a, bearer(tr), NULL, RT_AUTH_READ, 0, "team-b", NULL);
  unlink(path);
  cr_assert_neq(rt_auth_reload(a, err, sizeof err), RT_OK);
  expect(a, bearer(tw), NULL, RT_AUTH_WRITE, 0, "team-a", NULL);
  cr_assert_eq(rt_auth_ncredentials(a), 4);
  rt_auth_destroy(a);
}

Test(auth, a_request_keeps_its_snapshot_across_a_reload, .fini = drop_path) {
  rt_auth *a = token_auth();
  rt_auth_result r;
  rt_auth_check(a, bearer(tr), NULL, RT_AUTH_READ, &r);
  cr_assert_eq(r.status, 0);
  /* revoke everything; the request in flight keeps its tenant */
  write_file("workspaces:\n  other: {}\n");
  char err[512] = "";
  cr_assert_eq(rt_auth_reload(a, err, sizeof err), RT_OK, "%s", err);
  cr_assert_eq(rt_auth_ncredentials(a), 0);
  cr_assert_str_eq(r.tenant, "team-b");   /* still valid memory (ASan checks it) */
  rt_auth_release(&r);
  expect(a, bearer(tr), NULL, RT_AUTH_READ, 401, NULL, NULL);
  rt_auth_destroy(a);
}

/* ---------- through the HTTP server ---------- */

static void who(void *ctx, const rt_http_req *req, rt_http_resp *resp) {
  (void)ctx;
  const char *t = rt_http_tenant(req);
  rt_buf_printf(&resp->body, "tenant=%s rights=%u", t ? t : "(none)", req->rights);
  resp->content_type = "text/plain";
}

static rt_http_server *start_server(rt_auth *a, rt_metrics *reg) {
  rt_http_server *s;
  rt_http_config cfg = {.listen_addr = "127.0.0.1", .port = 0, .max_body_bytes = 4096,
                        .conn_timeout_s = 5, .max_conns = 16, .metrics = reg, .auth = a};
  cr_assert_eq(rt_http_server_create(&cfg, &s), RT_OK);
  cr_assert_eq(rt_http_route(s, "GET", "/api/v1/query", RT_HTTP_PROM_API | RT_HTTP_RIGHT_READ, 0,
                             who, NULL),
               RT_OK);
  cr_assert_eq(rt_http_route(s, "POST", "/api/v1/push", RT_HTTP_PROM_API | RT_HTTP_RIGHT_WRITE,
                             0, who, NULL),
               RT_OK);
  cr_assert_eq(rt_http_route(s, "GET", "/ready", 0, 0, who, NULL), RT_OK);
  cr_assert_eq(rt_http_server_start(s), RT_OK);
  return s;
}

static int get(int port, const char *path, const char *hdrs, tc_resp *r) {
  char req[1200];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n",
                   path, hdrs);
  cr_assert(tc_request(port, req, (size_t)n, r, 5000));
  return r->status;
}

Test(auth_http, token_mode_statuses_and_challenge, .fini = drop_path) {
  rt_metrics *reg;
  cr_assert_eq(rt_metrics_create(&reg), RT_OK);
  rt_auth *a = token_auth();
  rt_http_server *s = start_server(a, reg);
  int port = rt_http_server_port(s);
  tc_resp r;
  char h[300], hb[400];
  cr_assert_eq(get(port, "/api/v1/query", "", &r), 401, "%s", r.head);
  cr_assert(strstr(r.head, "WWW-Authenticate: Bearer realm=\"ringtail\""), "%s", r.head);
  cr_assert(strstr(r.head, "WWW-Authenticate: Basic realm=\"ringtail\""), "%s", r.head);
  cr_assert(strstr(r.body, "\"errorType\":\"unauthorized\""), "%s", r.body);
  tc_free(&r);
  snprintf(hb, sizeof hb, "Authorization: Bearer %s\r\n", tr);
  cr_assert_eq(get(port, "/prometheus/api/v1/query?query=up", hb, &r), 200, "%s", r.body);
  snprintf(h, sizeof h, "tenant=team-b rights=%u", RT_AUTH_READ);
  cr_assert_str_eq(r.body, h);
  tc_free(&r);
  snprintf(hb, sizeof hb, "Authorization: Bearer %s\r\nX-Scope-OrgID: team-a\r\n", tw);
  cr_assert_eq(get(port, "/api/v1/query", hb, &r), 403, "%s", r.body);
  cr_assert(strstr(r.body, "\\\"read\\\" right") && strstr(r.body, "GET /api/v1/query"), "%s", r.body);
  cr_assert_null(tc_header(&r, "WWW-Authenticate", h, sizeof h));
  tc_free(&r);
  /* a refused write is answered before its body is read */
  char req[600];
  int n = snprintf(req, sizeof req,
                   "POST /api/v1/push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   "Content-Length: 5\r\n\r\nhello", tr);
  cr_assert(tc_request(port, req, (size_t)n, &r, 5000));
  cr_assert_eq(r.status, 403, "%s", r.head);
  tc_free(&r);
  /* open routes need nothing and carry no tenant */
  cr_assert_eq(get(port, "/ready", "X-Scope-OrgID: team-b\r\n", &r), 200);
  cr_assert_str_eq(r.body, "tenant=(none) rights=0");
  tc_free(&r);
  rt_http_server_destroy(s);
  rt_auth_destroy(a);
  rt_metrics_destroy(reg);
}

Test(auth_http, header_and_none_modes) {
  rt_metrics *reg;
  cr_assert_eq(rt_metrics_create(&reg), RT_OK);
  char err[256];
  rt_auth *a;
  cr_assert_eq(rt_auth_create("header", "", &a, err, sizeof err), RT_OK);
  rt_http_server *s = start_server(a, reg);
  int port = rt_http_server_port(s);
  tc_resp r;
  char h[200];
  cr_assert_eq(get(port, "/api/v1/query", "X-Scope-OrgID: t1\r\n", &r), 200);
  cr_assert(strncmp(r.body, "tenant=t1 ", 10) == 0, "%s", r.body);
  tc_free(&r);
  cr_assert_eq(get(port, "/api/v1/query", "", &r), 401);
  cr_assert_str_eq(tc_header(&r, "WWW-Authenticate", h, sizeof h),
                   "X-Scope-OrgID realm=\"ringtail\"");
  tc_free(&r);
  cr_assert_eq(get(port, "/api/v1/query", "X-Scope-OrgID: ..\r\n", &r), 400);
  cr_assert(strstr(r.body, "invalid X-Scope-OrgID"), "%s", r.body);
  tc_free(&r);
  cr_assert_eq(get(port, "/ready", "", &r), 200);
  tc_free(&r);
  rt_http_server_destroy(s);
  rt_auth_destroy(a);

  cr_assert_eq(rt_auth_create("none", "", &a, err, sizeof err), RT_OK);
  s = start_server(a, reg);
  port = rt_http_server_port(s);
  cr_assert_eq(get(port, "/api/v1/query", "X-Scope-OrgID: t1\r\n", &r), 200);
  cr_assert(strncmp(r.body, "tenant=anonymous ", 17) == 0, "%s", r.body);
  tc_free(&r);
  rt_http_server_destroy(s);
  rt_auth_destroy(a);
  rt_metrics_destroy(reg);
}
