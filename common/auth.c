/* auth.c - tenants, credentials and rights of HTTP requests. See auth.h and docs/auth.md. */
#include "common/auth.h"

#include <crypt.h>
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/metrics.h"

#define MAC_LEN 32
#define TOKEN_PREFIX "rt_"
#define TOKEN_ID_HEX 12
#define TOKEN_SECRET_HEX 40
#define CRED_KEY_MAX 128
#define SECRET_MAX 1024

typedef struct cred {
  const char *ws;          /* workspace (tenant); points into the snapshot's names */
  char *key;               /* token id or user name */
  char *hash;              /* crypt(3) hash of the whole token / the password */
  unsigned rights;
  bool is_user;
  bool verified;           /* mac holds the MAC of the secret that verified (under snap.mu) */
  unsigned char mac[MAC_LEN];
} cred;

typedef struct snap {
  atomic_int refs;
  pthread_mutex_t mu;      /* the credentials' verified/mac */
  unsigned char mac_key[crypto_generichash_KEYBYTES];
  cred *creds;             /* sorted by (is_user, key) */
  size_t ncreds;
  size_t ccap;
  char **names;            /* workspace names */
  size_t nnames;
  size_t ncap;
} snap;

struct rt_auth {
  rt_auth_mode mode;
  char *path;
  pthread_mutex_t mu;      /* cur */
  snap *cur;
};

static const char *const CHALLENGE_TOKEN =
    "WWW-Authenticate: Bearer realm=\"" RT_AUTH_REALM "\"\n"
    "WWW-Authenticate: Basic realm=\"" RT_AUTH_REALM "\", charset=\"UTF-8\"\n";
static const char *const CHALLENGE_HEADER =
    "WWW-Authenticate: X-Scope-OrgID realm=\"" RT_AUTH_REALM "\"\n";

/* ---------- tenant ids and rights ---------- */

bool rt_tenant_valid(const char *t, char *err, size_t errlen) {
  size_t n = strlen(t);
  if (n == 0) {
    snprintf(err, errlen, "tenant ID is empty");
    return false;
  }
  if (n > RT_TENANT_MAX_LEN) {
    snprintf(err, errlen, "tenant ID is too long: %zu characters, max %d", n, RT_TENANT_MAX_LEN);
    return false;
  }
  if (strcmp(t, ".") == 0 || strcmp(t, "..") == 0) {
    snprintf(err, errlen, "tenant ID is '.' or '..'");
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)t[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c && strchr("!-_.*'()", c) != NULL);
    if (!ok) {
      char shown[40];
      size_t k = 0;
      for (size_t j = 0; j < n && k + 5 < sizeof shown; j++) {
        unsigned char d = (unsigned char)t[j];
        if (d < 0x20 || d >= 0x7f || d == '"' || d == '\\') {
          k += (size_t)snprintf(shown + k, sizeof shown - k, "\\x%02x", d);
        } else {
          shown[k++] = (char)d;
        }
      }
      shown[k] = 0;
      char ch[8];
      if (c < 0x20 || c >= 0x7f) {
        snprintf(ch, sizeof ch, "\\x%02x", c);
      } else {
        snprintf(ch, sizeof ch, "%c", c);
      }
      snprintf(err, errlen,
               "tenant ID \"%s%s\" contains unsupported character '%s' (allowed: a-z A-Z 0-9 "
               "! - _ . * ' ( ))",
               shown, k < n ? "..." : "", ch);
      return false;
    }
  }
  return true;
}

unsigned rt_auth_right_parse(const char *name) {
  if (strcmp(name, "read") == 0) {
    return RT_AUTH_READ;
  }
  if (strcmp(name, "write") == 0) {
    return RT_AUTH_WRITE;
  }
  if (strcmp(name, "rules") == 0) {
    return RT_AUTH_RULES;
  }
  if (strcmp(name, "admin") == 0) {
    return RT_AUTH_ADMIN;
  }
  if (strcmp(name, "all") == 0) {
    return RT_AUTH_ALL;
  }
  return 0;
}

const char *rt_auth_right_name(unsigned right) {
  switch (right) {
  case RT_AUTH_READ:
    return "read";
  case RT_AUTH_WRITE:
    return "write";
  case RT_AUTH_RULES:
    return "rules";
  case RT_AUTH_ADMIN:
    return "admin";
  default:
    return "?";
  }
}

/* ---------- hashing ---------- */

static bool sodium_ready(void) {
  static atomic_int state;   /* 0 unknown, 1 ok, -1 failed */
  int s = atomic_load(&state);
  if (s == 0) {
    s = sodium_init() < 0 ? -1 : 1;
    atomic_store(&state, s);
  }
  return s > 0;
}

rt_err rt_auth_hash_secret(const char *secret, char *out, size_t outlen) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  if (!crypt_gensalt_rn("$6$", 0, NULL, 0, salt, sizeof salt)) {
    return RT_EINTERNAL;
  }
  struct crypt_data *cd = rt_calloc(1, sizeof *cd);
  if (!cd) {
    return RT_ENOMEM;
  }
  const char *h = crypt_r(secret, salt, cd);
  rt_err rc = RT_OK;
  if (!h || h[0] == '*') {
    rc = RT_EINTERNAL;
  } else if (strlen(h) + 1 > outlen) {
    rc = RT_ELIMIT;
  } else {
    memcpy(out, h, strlen(h) + 1);
  }
  explicit_bzero(cd, sizeof *cd);
  rt_free(cd, sizeof *cd);
  return rc;
}

bool rt_auth_verify_hash(const char *secret, const char *hash) {
  struct crypt_data *cd = rt_calloc(1, sizeof *cd);
  if (!cd) {
    return false;
  }
  const char *h = crypt_r(secret, hash, cd);
  bool ok = false;
  if (h && h[0] != '*') {
    size_t n = strlen(hash);
    ok = strlen(h) == n && sodium_memcmp(h, hash, n) == 0;
  }
  explicit_bzero(cd, sizeof *cd);
  rt_free(cd, sizeof *cd);
  return ok;
}

rt_err rt_auth_new_token(char *token, size_t tlen, char *id_out, size_t idlen) {
  if (!sodium_ready()) {
    return RT_EINTERNAL;
  }
  unsigned char raw[TOKEN_ID_HEX / 2 + TOKEN_SECRET_HEX / 2];
  randombytes_buf(raw, sizeof raw);
  char id[TOKEN_ID_HEX + 1], sec[TOKEN_SECRET_HEX + 1];
  sodium_bin2hex(id, sizeof id, raw, TOKEN_ID_HEX / 2);
  sodium_bin2hex(sec, sizeof sec, raw + TOKEN_ID_HEX / 2, TOKEN_SECRET_HEX / 2);
  sodium_memzero(raw, sizeof raw);
  int n = snprintf(token, tlen, TOKEN_PREFIX "%s_%s", id, sec);
  sodium_memzero(sec, sizeof sec);
  if (n < 0 || (size_t)n >= tlen || snprintf(id_out, idlen, "%s", id) >= (int)idlen) {
    return RT_ELIMIT;
  }
  return RT_OK;
}

/* ---------- snapshots ---------- */

static void snap_free(snap *s) {
  if (!s) {
    return;
  }
  for (size_t i = 0; i < s->ncreds; i++) {
    rt_free(s->creds[i].key, 0);
    if (s->creds[i].hash) {
      sodium_memzero(s->creds[i].hash, strlen(s->creds[i].hash));
    }
    rt_free(s->creds[i].hash, 0);
  }
  rt_free(s->creds, s->ccap * sizeof *s->creds);
  for (size_t i = 0; i < s->nnames; i++) {
    rt_free(s->names[i], 0);
  }
  rt_free(s->names, s->ncap * sizeof *s->names);
  pthread_mutex_destroy(&s->mu);
  sodium_memzero(s->mac_key, sizeof s->mac_key);
  rt_free(s, sizeof *s);
}

static void snap_unref(snap *s) {
  if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
    snap_free(s);
  }
}

static snap *snap_new(void) {
  snap *s = rt_calloc(1, sizeof *s);
  if (!s) {
    return NULL;
  }
  atomic_init(&s->refs, 1);
  pthread_mutex_init(&s->mu, NULL);
  randombytes_buf(s->mac_key, sizeof s->mac_key);
  return s;
}

static int cmp_cred(const void *a, const void *b) {
  const cred *x = a, *y = b;
  if (x->is_user != y->is_user) {
    return x->is_user ? 1 : -1;
  }
  return strcmp(x->key, y->key);
}

static const cred *snap_find(const snap *s, bool is_user, const char *key) {
  if (s->ncreds == 0) {
    return NULL;   /* bsearch() must not get a NULL array */
  }
  cred k = {.key = (char *)key, .is_user = is_user};
  return bsearch(&k, s->creds, s->ncreds, sizeof *s->creds, cmp_cred);
}

/* ---------- parsing the workspaces file ---------- */

static const char *scalar(yaml_node_t *n) {
  return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static bool token_id_valid(const char *id) {
  size_t n = strlen(id);
  if (n < 4 || n > 64) {
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    char c = id[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'))) {
      return false;
    }
  }
  return true;
}

static bool user_name_valid(const char *u) {
  size_t n = strlen(u);
  if (n == 0 || n > CRED_KEY_MAX) {
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)u[i];
    if (c < 0x20 || c == 0x7f || c == ':') {
      return false;
    }
  }
  return true;
}

static bool parse_rights(yaml_document_t *doc, yaml_node_t *n, unsigned *out, const char *where,
                         char *err, size_t errlen) {
  *out = 0;
  if (n->type == YAML_SCALAR_NODE) {
    unsigned r = rt_auth_right_parse(scalar(n));
    if (!r) {
      snprintf(err, errlen, "%s: unknown right \"%.40s\" (write, read, rules, admin or all)", where,
               scalar(n));
      return false;
    }
    *out = r;
    return true;
  }
  if (n->type != YAML_SEQUENCE_NODE) {
    snprintf(err, errlen, "%s: rights must be a list such as [write, read]", where);
    return false;
  }
  for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
       it++) {
    const char *v = scalar(yaml_document_get_node(doc, *it));
    unsigned r = v ? rt_auth_right_parse(v) : 0;
    if (!r) {
      snprintf(err, errlen, "%s: unknown right \"%.40s\" (write, read, rules, admin or all)", where,
               v ? v : "(not a string)");
      return false;
    }
    *out |= r;
  }
  if (!*out) {
    snprintf(err, errlen, "%s: rights is empty; give at least one of write, read, rules, admin",
             where);
    return false;
  }
  return true;
}

static bool add_cred(snap *s, const cred *c) {
  if (s->ncreds == s->ccap) {
    size_t nc = s->ccap ? s->ccap * 2 : 16;
    cred *n = rt_realloc(s->creds, s->ccap * sizeof *s->creds, nc * sizeof *n);
    if (!n) {
      return false;
    }
    s->creds = n;
    s->ccap = nc;
  }
  s->creds[s->ncreds++] = *c;
  return true;
}

/* One entry of a workspace's tokens or users list. */
static bool parse_cred(yaml_document_t *doc, yaml_node_t *n, snap *s, const char *ws,
                       bool is_user, size_t idx, char *err, size_t errlen) {
  char where[200];
  snprintf(where, sizeof where, "workspace \"%s\", %s entry %zu (line %zu)", ws,
           is_user ? "users" : "tokens", idx + 1, n->start_mark.line + 1);
  if (n->type != YAML_MAPPING_NODE) {
    snprintf(err, errlen, "%s: expected a mapping with %s, hash and rights", where,
             is_user ? "name" : "id");
    return false;
  }
  const char *key = NULL, *hash = NULL;
  unsigned rights = 0;
  bool have_rights = false;
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
    const char *k = scalar(yaml_document_get_node(doc, p->key));
    yaml_node_t *v = yaml_document_get_node(doc, p->value);
    if (!k) {
      snprintf(err, errlen, "%s: keys must be strings", where);
      return false;
    }
    if (strcmp(k, is_user ? "name" : "id") == 0) {
      key = scalar(v);
    } else if (strcmp(k, "hash") == 0) {
      hash = scalar(v);
    } else if (strcmp(k, "rights") == 0) {
      if (!parse_rights(doc, v, &rights, where, err, errlen)) {
        return false;
      }
      have_rights = true;
    } else if (strcmp(k, "description") == 0) {
      /* free text for operators */
    } else {
      snprintf(err, errlen, "%s: unknown key \"%.40s\" (%s, hash, rights, description)", where, k,
               is_user ? "name" : "id");
      return false;
    }
  }
  if (!key) {
    snprintf(err, errlen, "%s: missing %s", where, is_user ? "name" : "id");
    return false;
  }
  if (is_user ? !user_name_valid(key) : !token_id_valid(key)) {
    snprintf(err, errlen,
             is_user ? "%s: user name must be 1..128 characters without ':' or control characters"
                     : "%s: token id must be 4..64 characters of 0-9 a-z (the part after \"rt_\" "
                       "of a token made by `ringtail auth new-token`)",
             where);
    return false;
  }
  if (!hash) {
    snprintf(err, errlen, "%s: missing hash (make one with `ringtail auth hash`)", where);
    return false;
  }
  if (crypt_checksalt(hash) != CRYPT_SALT_OK || strlen(hash) < 20) {
    snprintf(err, errlen,
             "%s: hash is not a crypt(3) hash this system supports (expected \"$6$...\" from "
             "`ringtail auth hash`); secrets are never stored in plain text",
             where);
    return false;
  }
  if (!have_rights) {
    snprintf(err, errlen, "%s: missing rights (a list of write, read, rules, admin)", where);
    return false;
  }
  cred c = {.ws = ws, .key = rt_strdup(key), .hash = rt_strdup(hash), .rights = rights,
            .is_user = is_user};
  if (!c.key || !c.hash || !add_cred(s, &c)) {
    rt_free(c.key, 0);
    rt_free(c.hash, 0);
    snprintf(err, errlen, "out of memory");
    return false;
  }
  return true;
}

static bool parse_workspace(yaml_document_t *doc, const char *ws, yaml_node_t *n, snap *s,
                            char *err, size_t errlen) {
  if (n->type == YAML_SCALAR_NODE && !n->data.scalar.length) {
    return true;   /* "team-a:" with nothing: a workspace without credentials */
  }
  if (n->type != YAML_MAPPING_NODE) {
    snprintf(err, errlen, "workspace \"%s\" (line %zu): expected a mapping with tokens and users",
             ws, n->start_mark.line + 1);
    return false;
  }
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
    const char *k = scalar(yaml_document_get_node(doc, p->key));
    yaml_node_t *v = yaml_document_get_node(doc, p->value);
    bool is_user;
    if (k && strcmp(k, "tokens") == 0) {
      is_user = false;
    } else if (k && strcmp(k, "users") == 0) {
      is_user = true;
    } else if (k && strcmp(k, "description") == 0) {
      continue;
    } else {
      snprintf(err, errlen, "workspace \"%s\": unknown key \"%.40s\" (tokens, users, description)",
               ws, k ? k : "(not a string)");
      return false;
    }
    if (v->type == YAML_SCALAR_NODE && !v->data.scalar.length) {
      continue;
    }
    if (v->type != YAML_SEQUENCE_NODE) {
      snprintf(err, errlen, "workspace \"%s\": %s must be a list", ws, k);
      return false;
    }
    size_t idx = 0;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++, idx++) {
      if (!parse_cred(doc, yaml_document_get_node(doc, *it), s, ws, is_user, idx, err, errlen)) {
        return false;
      }
    }
  }
  return true;
}

static bool parse_doc(yaml_document_t *doc, snap *s, char *err, size_t errlen) {
  yaml_node_t *root = yaml_document_get_root_node(doc);
  if (!root) {
    return true;   /* empty file: no workspaces */
  }
  if (root->type != YAML_MAPPING_NODE) {
    snprintf(err, errlen, "the file must be a mapping with a \"workspaces\" key");
    return false;
  }
  for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
       p++) {
    const char *k = scalar(yaml_document_get_node(doc, p->key));
    yaml_node_t *v = yaml_document_get_node(doc, p->value);
    if (!k || strcmp(k, "workspaces") != 0) {
      snprintf(err, errlen, "unknown top-level key \"%.40s\" (only \"workspaces\")",
               k ? k : "(not a string)");
      return false;
    }
    if (v->type == YAML_SCALAR_NODE && !v->data.scalar.length) {
      continue;
    }
    if (v->type != YAML_MAPPING_NODE) {
      snprintf(err, errlen, "workspaces must be a mapping of workspace name to its credentials");
      return false;
    }
    for (yaml_node_pair_t *wp = v->data.mapping.pairs.start; wp < v->data.mapping.pairs.top;
         wp++) {
      const char *ws = scalar(yaml_document_get_node(doc, wp->key));
      char terr[200];
      if (!ws || !rt_tenant_valid(ws, terr, sizeof terr)) {
        snprintf(err, errlen, "workspace name: %s", ws ? terr : "not a string");
        return false;
      }
      for (size_t i = 0; i < s->nnames; i++) {
        if (strcmp(s->names[i], ws) == 0) {
          snprintf(err, errlen, "workspace \"%s\" is listed twice", ws);
          return false;
        }
      }
      if (s->nnames == s->ncap) {
        size_t nc = s->ncap ? s->ncap * 2 : 8;
        char **nn = rt_realloc(s->names, s->ncap * sizeof *nn, nc * sizeof *nn);
        if (!nn) {
          snprintf(err, errlen, "out of memory");
          return false;
        }
        s->names = nn;
        s->ncap = nc;
      }
      char *name = rt_strdup(ws);
      if (!name) {
        snprintf(err, errlen, "out of memory");
        return false;
      }
      s->names[s->nnames++] = name;
      if (!parse_workspace(doc, name, yaml_document_get_node(doc, wp->value), s, err, errlen)) {
        return false;
      }
    }
  }
  if (s->ncreds > 1) {
    qsort(s->creds, s->ncreds, sizeof *s->creds, cmp_cred);
    for (size_t i = 1; i < s->ncreds; i++) {
      if (cmp_cred(&s->creds[i - 1], &s->creds[i]) == 0) {
        snprintf(err, errlen, "%s \"%s\" appears more than once (in workspaces \"%s\" and \"%s\")",
                 s->creds[i].is_user ? "user" : "token id", s->creds[i].key, s->creds[i - 1].ws,
                 s->creds[i].ws);
        return false;
      }
    }
  }
  return true;
}

static rt_err parse_text(const char *text, size_t len, snap **out, char *err, size_t errlen) {
  *out = NULL;
  if (!sodium_ready()) {
    snprintf(err, errlen, "libsodium failed to initialise");
    return RT_EINTERNAL;
  }
  snap *s = snap_new();
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return RT_ENOMEM;
  }
  yaml_parser_t parser;
  yaml_document_t doc;
  if (!yaml_parser_initialize(&parser)) {
    snap_free(s);
    snprintf(err, errlen, "out of memory");
    return RT_ENOMEM;
  }
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  if (!yaml_parser_load(&parser, &doc)) {
    snprintf(err, errlen, "line %zu: %s", parser.problem_mark.line + 1,
             parser.problem ? parser.problem : "invalid YAML");
    yaml_parser_delete(&parser);
    snap_free(s);
    return RT_EINVAL;
  }
  bool ok = parse_doc(&doc, s, err, errlen);
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  if (!ok) {
    snap_free(s);
    return RT_EINVAL;
  }
  *out = s;
  return RT_OK;
}

rt_err rt_auth_check_file_text(const char *yaml, size_t len, char *err, size_t errlen) {
  snap *s;
  rt_err rc = parse_text(yaml, len, &s, err, errlen);
  snap_free(s);
  return rc;
}

static rt_err load_file(const char *path, snap **out, char *err, size_t errlen) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "cannot open the workspaces file %s: %s", path, strerror(errno));
    return RT_EIO;
  }
  rt_buf b = RT_BUF_INIT;
  char chunk[4096];
  size_t got;
  while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
    rt_buf_append(&b, chunk, got);
  }
  bool bad = ferror(f);
  fclose(f);
  if (bad || b.oom) {
    rt_buf_free(&b);
    snprintf(err, errlen, "cannot read the workspaces file %s", path);
    return RT_EIO;
  }
  char perr[400] = "";
  rt_err rc = parse_text(b.data ? b.data : "", b.len, out, perr, sizeof perr);
  if (b.data) {
    sodium_memzero(b.data, b.len);
  }
  rt_buf_free(&b);
  if (rc != RT_OK) {
    snprintf(err, errlen, "workspaces file %s: %s", path, perr);
  }
  return rc;
}

/* ---------- the authenticator ---------- */

rt_err rt_auth_create(const char *mode, const char *workspaces_file, rt_auth **out, char *err,
                      size_t errlen) {
  *out = NULL;
  rt_auth_mode m;
  if (!mode || !mode[0] || strcmp(mode, "none") == 0) {
    m = RT_AUTH_NONE;
  } else if (strcmp(mode, "header") == 0) {
    m = RT_AUTH_HEADER;
  } else if (strcmp(mode, "token") == 0) {
    m = RT_AUTH_TOKEN;
  } else {
    snprintf(err, errlen, "invalid -auth.mode \"%s\" (none, header or token)", mode);
    return RT_EINVAL;
  }
  if (m == RT_AUTH_TOKEN && (!workspaces_file || !workspaces_file[0])) {
    snprintf(err, errlen,
             "-auth.mode=token needs -auth.workspaces-file (a YAML file of workspaces and their "
             "hashed credentials; see docs/auth.md)");
    return RT_EINVAL;
  }
  if (!sodium_ready()) {
    snprintf(err, errlen, "libsodium failed to initialise");
    return RT_EINTERNAL;
  }
  rt_auth *a = rt_calloc(1, sizeof *a);
  if (!a) {
    snprintf(err, errlen, "out of memory");
    return RT_ENOMEM;
  }
  a->mode = m;
  pthread_mutex_init(&a->mu, NULL);
  if (m == RT_AUTH_TOKEN) {
    a->path = rt_strdup(workspaces_file);
    rt_err rc = a->path ? load_file(a->path, &a->cur, err, errlen) : RT_ENOMEM;
    if (rc != RT_OK) {
      rt_auth_destroy(a);
      return rc;
    }
  }
  *out = a;
  return RT_OK;
}

void rt_auth_destroy(rt_auth *a) {
  if (!a) {
    return;
  }
  snap_unref(a->cur);
  pthread_mutex_destroy(&a->mu);
  rt_free(a->path, 0);
  rt_free(a, sizeof *a);
}

rt_auth_mode rt_auth_get_mode(const rt_auth *a) { return a ? a->mode : RT_AUTH_NONE; }

rt_err rt_auth_reload(void *ctx, char *err, size_t errlen) {
  rt_auth *a = ctx;
  if (a->mode != RT_AUTH_TOKEN) {
    return RT_OK;
  }
  snap *s;
  rt_err rc = load_file(a->path, &s, err, errlen);
  if (rc != RT_OK) {
    return rc;
  }
  pthread_mutex_lock(&a->mu);
  snap *old = a->cur;
  a->cur = s;
  pthread_mutex_unlock(&a->mu);
  rt_info("auth", "workspaces file loaded", "file=%s workspaces=%zu credentials=%zu", a->path,
          s->nnames, s->ncreds);
  snap_unref(old);   /* requests still holding it keep it alive */
  return RT_OK;
}

static snap *acquire(rt_auth *a) {
  pthread_mutex_lock(&a->mu);
  snap *s = a->cur;
  if (s) {
    atomic_fetch_add(&s->refs, 1);
  }
  pthread_mutex_unlock(&a->mu);
  return s;
}

size_t rt_auth_ncredentials(rt_auth *a) {
  snap *s = acquire(a);
  size_t n = s ? s->ncreds : 0;
  snap_unref(s);
  return n;
}

static void count_failure(const char *reason) {
  rt_counter_inc(rt_counter_get(rt_metrics_default(), "ringtail_auth_failures_total",
                                "Requests refused by authentication, by reason (missing, invalid, "
                                "forbidden, bad_tenant).",
                                "reason", reason));
}

static void fail(rt_auth_result *r, int status, const char *reason, const char *challenge,
                 const char *fmt, const char *arg) {
  r->status = status;
  r->reason = reason;
  r->challenge = challenge;
  r->tenant = NULL;
  r->rights = 0;
  snprintf(r->msg, sizeof r->msg, fmt, arg);
  count_failure(reason);
}

/* Verifies secret for c, through the MAC cache first. */
static bool verify(snap *s, cred *c, const char *secret, size_t len) {
  unsigned char mac[MAC_LEN];
  crypto_generichash(mac, sizeof mac, (const unsigned char *)secret, len, s->mac_key,
                     sizeof s->mac_key);
  pthread_mutex_lock(&s->mu);
  bool hit = c->verified && sodium_memcmp(mac, c->mac, sizeof mac) == 0;
  pthread_mutex_unlock(&s->mu);
  if (hit) {
    return true;
  }
  if (!rt_auth_verify_hash(secret, c->hash)) {
    return false;
  }
  pthread_mutex_lock(&s->mu);
  memcpy(c->mac, mac, sizeof mac);
  c->verified = true;
  pthread_mutex_unlock(&s->mu);
  return true;
}

static const char *skip_ws(const char *p) {
  while (*p == ' ' || *p == '\t') {
    p++;
  }
  return p;
}

static void check_token(rt_auth *a, const char *authz, unsigned need, rt_auth_result *r) {
  if (!authz || !*skip_ws(authz)) {
    if (!need) {
      return;   /* an open route: no tenant */
    }
    fail(r, 401, "missing", CHALLENGE_TOKEN, "%s",
         "authentication required: send a workspace's bearer token (Authorization: Bearer ...) "
         "or its basic-auth user and password (see docs/auth.md)");
    return;
  }
  snap *s = acquire(a);
  r->hold = s;
  const char *p = skip_ws(authz);
  char user[CRED_KEY_MAX + 1];
  char secret[SECRET_MAX + 1];
  const char *key = NULL;
  bool is_user;
  size_t slen = 0;
  if (strncasecmp(p, "Bearer ", 7) == 0) {
    is_user = false;
    const char *t = skip_ws(p + 7);
    slen = strlen(t);
    while (slen > 0 && (t[slen - 1] == ' ' || t[slen - 1] == '\t')) {
      slen--;
    }
    const char *us = slen > 3 && strncmp(t, TOKEN_PREFIX, 3) == 0 ? strchr(t + 3, '_') : NULL;
    if (slen > SECRET_MAX || !us ||
        (size_t)(us - t) > slen || (size_t)(us - (t + 3)) > CRED_KEY_MAX) {
      fail(r, 401, "invalid", CHALLENGE_TOKEN, "%s",
           "invalid credentials: the bearer token is not a Ringtail token (rt_<id>_<secret>)");
      return;
    }
    memcpy(user, t + 3, (size_t)(us - (t + 3)));
    user[us - (t + 3)] = 0;
    memcpy(secret, t, slen);
    secret[slen] = 0;
    key = user;
  } else if (strncasecmp(p, "Basic ", 6) == 0) {
    is_user = true;
    const char *b64 = skip_ws(p + 6);
    unsigned char dec[CRED_KEY_MAX + SECRET_MAX + 2];
    size_t dlen = 0;
    if (sodium_base642bin(dec, sizeof dec - 1, b64, strlen(b64), " \t", &dlen, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0) {
      fail(r, 401, "invalid", CHALLENGE_TOKEN, "%s",
           "invalid credentials: the basic-auth value is not valid base64 of user:password");
      return;
    }
    dec[dlen] = 0;
    char *colon = memchr(dec, ':', dlen);
    size_t ulen = colon ? (size_t)(colon - (char *)dec) : 0;
    if (!colon || ulen == 0 || ulen > CRED_KEY_MAX || memchr(dec, 0, dlen)) {
      sodium_memzero(dec, sizeof dec);
      fail(r, 401, "invalid", CHALLENGE_TOKEN, "%s",
           "invalid credentials: basic auth needs user:password");
      return;
    }
    memcpy(user, dec, ulen);
    user[ulen] = 0;
    slen = dlen - ulen - 1;
    memcpy(secret, colon + 1, slen);
    secret[slen] = 0;
    sodium_memzero(dec, sizeof dec);
    key = user;
  } else {
    fail(r, 401, "invalid", CHALLENGE_TOKEN, "%s",
         "unsupported Authorization scheme: use Bearer (a workspace token) or Basic (a "
         "workspace user)");
    return;
  }
  cred *c = s ? (cred *)snap_find(s, is_user, key) : NULL;
  bool ok = c && verify(s, c, secret, slen);
  sodium_memzero(secret, sizeof secret);
  if (!ok) {
    fail(r, 401, "invalid", CHALLENGE_TOKEN, "%s",
         "invalid credentials: the token or user and password are not valid (unknown, revoked "
         "or mistyped)");
    return;
  }
  if ((c->rights & need) != need) {
    unsigned missing = need & ~c->rights;
    unsigned bit = missing & (~missing + 1);
    fail(r, 403, "forbidden", NULL,
         "forbidden: these credentials do not have the \"%s\" right this endpoint needs",
         rt_auth_right_name(bit));
    return;
  }
  r->tenant = c->ws;
  r->rights = c->rights;
}

void rt_auth_check(rt_auth *a, const char *authorization, const char *org_id, unsigned need,
                   rt_auth_result *r) {
  memset(r, 0, sizeof *r);
  switch (a ? a->mode : RT_AUTH_NONE) {
  case RT_AUTH_NONE:
    r->tenant = "anonymous";
    r->rights = RT_AUTH_ALL;
    return;
  case RT_AUTH_HEADER: {
    if (!org_id || !org_id[0]) {
      if (!need) {
        return;
      }
      fail(r, 401, "missing", CHALLENGE_HEADER, "%s",
           "no tenant: this server runs with -auth.mode=header and needs the X-Scope-OrgID "
           "header on this endpoint");
      return;
    }
    char terr[260];
    if (!rt_tenant_valid(org_id, terr, sizeof terr)) {
      fail(r, 400, "bad_tenant", NULL, "invalid X-Scope-OrgID: %s", terr);
      return;
    }
    r->tenant = org_id;
    r->rights = RT_AUTH_ALL;
    return;
  }
  case RT_AUTH_TOKEN:
    check_token(a, authorization, need, r);
    return;
  }
}

void rt_auth_release(rt_auth_result *r) {
  snap_unref(r->hold);
  r->hold = NULL;
  r->tenant = NULL;
}
