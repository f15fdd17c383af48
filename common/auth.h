/* auth.h - who is calling: the tenant (workspace) of a request and the rights it holds.
 *
 * Three modes (-auth.mode, see docs/auth.md):
 *   none   every request belongs to the tenant "anonymous" and holds every right;
 *   header the tenant is the X-Scope-OrgID header (an authenticating gateway sets it);
 *   token  bearer tokens and basic-auth users of the workspaces file, each mapped to one
 *          workspace and a set of rights. Secrets are stored as crypt(3) hashes only.
 *
 * The workspaces file is parsed into an immutable snapshot; a reload builds a new one and swaps
 * it in under a lock. A request holds a reference to the snapshot it was checked against until
 * it is done (rt_auth_release), so a reload never pulls the tenant string from under a handler.
 *
 * Cost per request is bounded: a token carries its public credential id ("rt_<id>_<secret>"),
 * a basic-auth user its name, so at most one stored hash is ever tried; once a secret verified,
 * a keyed BLAKE2b MAC of it is kept with the credential and later requests compare MACs
 * instead of running crypt(3) again. A new snapshot starts with no MACs. */
#ifndef RT_AUTH_H
#define RT_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "common/rt.h"

typedef struct rt_auth rt_auth;

typedef enum rt_auth_mode { RT_AUTH_NONE = 0, RT_AUTH_HEADER, RT_AUTH_TOKEN } rt_auth_mode;

/* The rights, same bits as RT_HTTP_RIGHT_* of common/http.h. */
enum {
  RT_AUTH_READ = 1u << 4,
  RT_AUTH_WRITE = 1u << 5,
  RT_AUTH_RULES = 1u << 6,
  RT_AUTH_ADMIN = 1u << 7,
};
#define RT_AUTH_ALL (RT_AUTH_READ | RT_AUTH_WRITE | RT_AUTH_RULES | RT_AUTH_ADMIN)

#define RT_AUTH_REALM "ringtail"
#define RT_TENANT_MAX_LEN 150

/* Creates the authenticator. mode: "none", "header" or "token"; token mode loads
 * workspaces_file (an error in it fails the creation with a message in err). */
rt_err rt_auth_create(const char *mode, const char *workspaces_file, rt_auth **out, char *err,
                      size_t errlen);
void rt_auth_destroy(rt_auth *a);
rt_auth_mode rt_auth_get_mode(const rt_auth *a);
/* Re-reads the workspaces file (token mode; a no-op otherwise). On error the previous snapshot
 * stays in force and err says why. Signature fits rt_reload_fn with a as ctx. */
rt_err rt_auth_reload(void *a, char *err, size_t errlen);
/* Number of credentials (tokens + users) in the snapshot in force. */
size_t rt_auth_ncredentials(rt_auth *a);

/* The outcome of checking one request. */
typedef struct rt_auth_result {
  int status;              /* 0 = allowed; else 400, 401 or 403 */
  const char *tenant;      /* when allowed; valid until rt_auth_release() */
  unsigned rights;         /* RT_AUTH_* held */
  const char *challenge;   /* 401: WWW-Authenticate header lines ("Name: value\n"...), static */
  const char *reason;      /* short metric label: missing, invalid, forbidden, bad_tenant */
  char msg[320];           /* the error message when status != 0 */
  void *hold;              /* private: the snapshot referenced */
} rt_auth_result;

/* Checks a request: authorization = the Authorization header (NULL if absent), org_id = the
 * X-Scope-OrgID header (NULL if absent), need = the RT_AUTH_* rights the route needs (0 = none:
 * an unauthenticated request is then allowed with tenant NULL in header and token modes).
 * Always call rt_auth_release() afterwards. */
void rt_auth_check(rt_auth *a, const char *authorization, const char *org_id, unsigned need,
                   rt_auth_result *r);
void rt_auth_release(rt_auth_result *r);

/* Tenant ids: 1..150 characters of a-z A-Z 0-9 ! - _ . * ' ( ), not "." or "..". */
bool rt_tenant_valid(const char *t, char *err, size_t errlen);

/* "write", "read", "rules", "admin" -> the bit; "all" -> RT_AUTH_ALL; 0 if unknown. */
unsigned rt_auth_right_parse(const char *name);
/* The name of one right bit ("write", ...). */
const char *rt_auth_right_name(unsigned right);

/* crypt(3) SHA-512 ("$6$") hash of a secret, with a fresh random salt. */
rt_err rt_auth_hash_secret(const char *secret, char *out, size_t outlen);
/* Verifies a secret against a stored crypt(3) hash (constant-time comparison). */
bool rt_auth_verify_hash(const char *secret, const char *hash);
/* A new random token "rt_<12 hex id>_<40 hex secret>"; id_out gets the id. */
rt_err rt_auth_new_token(char *token, size_t tlen, char *id_out, size_t idlen);

/* Validates a workspaces file's text (as the reload would); for tests and tools. */
rt_err rt_auth_check_file_text(const char *yaml, size_t len, char *err, size_t errlen);

#endif
