/* ring.h - the consistent-hash ring: tokens, zones, instance states, heartbeats, gossip.
 *
 * Three layers, each usable on its own:
 *   ring_desc      a mutable set of instance descriptors with the merge rule
 *                  (newest heartbeat wins per instance; tombstones spread a forget);
 *   ring_snapshot  an immutable, refcounted view built from a descriptor: sorted tokens,
 *                  precomputed replication sets, health as of its build time. Lookups on a
 *                  snapshot take no lock;
 *   ring           a running member: owns a descriptor, heartbeats its own instance (when it
 *                  owns tokens), gossips with peers over ZeroMQ and publishes snapshots.
 * See ring/DESIGN.md. */
#ifndef RT_RING_H
#define RT_RING_H

#include "common/buf.h"
#include "common/rt.h"

/* Largest replication factor and largest replication set a lookup can return. */
#define RING_MAX_RF 8
/* Largest number of instances in a ring (indexes in a snapshot fit in 16 bits). */
#define RING_MAX_INSTANCES 65535
/* Largest number of tokens one instance may own. */
#define RING_MAX_TOKENS_PER_INSTANCE 65536

typedef enum ring_state {
  RING_JOINING = 0, /* owns tokens, takes no writes; reads skip it */
  RING_ACTIVE = 1,  /* takes writes and reads */
  RING_LEAVING = 2, /* takes no writes (its zone's next instance does), still serves reads */
  RING_LEFT = 3,    /* tombstone: forgotten; never in a snapshot */
} ring_state;

const char *ring_state_name(ring_state s); /* "JOINING", ...; static string */
/* Parses "JOINING"/"ACTIVE"/"LEAVING" (case-insensitive). */
bool ring_state_parse(const char *s, ring_state *out);

/* Roles of ring entries. An ingester (role "" from older members, or "ingester") owns tokens;
 * any other role (a distributor) owns none and is invisible to everything about ingesters:
 * token ownership, replication sets, zones, zone readers, ring_snapshot_count(). */
#define RING_ROLE_INGESTER "ingester"
#define RING_ROLE_DISTRIBUTOR "distributor"
/* True for NULL, "" and "ingester". */
bool ring_role_is_ingester(const char *role);

/* One instance. As input (ring_desc_set) the strings and tokens are borrowed and copied; the
 * fields after `tokens` are ignored. As output (ring_snapshot_instance) everything is owned by
 * the snapshot and valid while the caller holds its reference. */
typedef struct ring_instance {
  const char *id;          /* unique, non-empty */
  const char *zone;        /* "" allowed: then it is a zone of its own name "" */
  const char *http_addr;   /* "host:port" of its HTTP server, may be "" */
  const char *rpc_addr;    /* "tcp://host:port" of its RPC server, may be "" */
  const char *gossip_addr; /* its ring.Gossip endpoint, may be "" */
  ring_state state;
  int64_t heartbeat_ms;  /* wall clock of the last heartbeat */
  int64_t registered_ms; /* first registration */
  const uint32_t *tokens; /* sorted ascending, unique; dropped for a non-ingester role */
  uint32_t ntokens;
  const char *role;       /* NULL or "" = ingester (see RING_ROLE_*); never NULL as output */
  /* computed by the snapshot */
  uint32_t zone_index;     /* index into ring_snapshot_zone() */
  bool healthy;            /* heartbeat age <= timeout at the snapshot's build time */
  double owned_share;      /* share of the token space whose first token is this instance's */
  double replicated_share; /* share of the key space whose replication set (ignoring state and
                              health) includes this instance; sums to min(RF, zones) */
} ring_instance;

/* ------------------------------------------------------------------ descriptor */

typedef struct ring_desc ring_desc;

/* Creates an empty descriptor. Caller destroys with ring_desc_destroy(). */
rt_err ring_desc_create(ring_desc **out);
void ring_desc_destroy(ring_desc *d);
/* Number of entries, tombstones included. */
size_t ring_desc_count(const ring_desc *d);
/* Inserts or replaces the entry for inst->id unconditionally (the owner's own write). Copies
 * everything (borrows inst). RT_EINVAL for an empty id, unsorted/duplicate tokens or too many
 * tokens. */
rt_err ring_desc_set(ring_desc *d, const ring_instance *inst);
/* Merges one incoming entry by the rule: absent → taken; newer heartbeat → taken; same
 * heartbeat → the higher state wins (LEFT > LEAVING > ACTIVE > JOINING), so merges commute;
 * older → ignored. *changed (may be NULL) tells whether d changed. Copies inst. */
rt_err ring_desc_merge_one(ring_desc *d, const ring_instance *inst, bool *changed);
/* Merges every entry of src into dst (src is borrowed). *changed counts the entries taken. */
rt_err ring_desc_merge(ring_desc *dst, const ring_desc *src, size_t *changed);
/* Replaces the entry of `id` by a tombstone (state LEFT, no tokens) whose heartbeat is
 * max(now_ms, old heartbeat + 1), so it wins the merge everywhere. RT_ENOTFOUND when absent. */
rt_err ring_desc_forget(ring_desc *d, const char *id, int64_t now_ms);
/* Drops tombstones whose heartbeat is older than cutoff_ms. Returns how many went. */
size_t ring_desc_gc(ring_desc *d, int64_t cutoff_ms);
/* Looks up an entry; the returned view borrows d and is valid until d changes. */
bool ring_desc_get(const ring_desc *d, const char *id, ring_instance *out);
/* Tokens of every live entry except `except_id` (may be NULL), sorted; caller frees with
 * rt_free(). */
rt_err ring_desc_taken_tokens(const ring_desc *d, const char *except_id, uint32_t **out,
                              size_t *n);

/* Wire form (proto/ring.proto RingState). Encode appends to `out` (the caller owns it).
 * Decode validates every entry (RT_EPROTO with a message in errbuf) and merges it into `d`
 * with ring_desc_merge_one, skipping the entry of `self_id` (may be NULL) which it reports
 * through *self_seen (may be NULL) as the newest heartbeat seen for it, or -1. */
rt_err ring_desc_encode(const ring_desc *d, const char *sender_addr, rt_buf *out);
rt_err ring_desc_decode_merge(ring_desc *d, const uint8_t *data, size_t len, const char *self_id,
                              int64_t *self_seen, size_t *changed, char **sender_addr,
                              char *errbuf, size_t errlen);

/* ------------------------------------------------------------------ snapshot */

typedef struct ring_snapshot ring_snapshot;

typedef struct ring_snapshot_opts {
  int replication_factor;       /* 3; 1..RING_MAX_RF */
  int64_t heartbeat_timeout_ms; /* 60000; <= 0 = never unhealthy */
  int64_t now_ms;               /* health is judged at this time; 0 = rt_now_ms() */
  bool every_replica;           /* a static ring (ring_create_static): a write needs every
                                   replica of its set and a read every zone */
} ring_snapshot_opts;

/* Builds a snapshot of d (borrowed). Returns a new reference; release with
 * ring_snapshot_release(). */
rt_err ring_snapshot_build(const ring_desc *d, const ring_snapshot_opts *opts,
                           ring_snapshot **out);
/* Returns a new reference to s (never NULL in, never fails). */
ring_snapshot *ring_snapshot_dup(ring_snapshot *s);
/* Drops a reference; the last one frees. NULL is fine. Any thread. */
void ring_snapshot_release(ring_snapshot *s);

uint64_t ring_snapshot_version(const ring_snapshot *s); /* grows with each published change */
int64_t ring_snapshot_built_ms(const ring_snapshot *s);
int ring_snapshot_rf(const ring_snapshot *s);            /* configured replication factor */
size_t ring_snapshot_count(const ring_snapshot *s);      /* ingesters (no tombstones), by id */
size_t ring_snapshot_tokens(const ring_snapshot *s);     /* tokens in the ring */
/* Instance i (< count), owned by the snapshot. */
const ring_instance *ring_snapshot_instance(const ring_snapshot *s, size_t i);
/* Index of `id` or -1. Binary search. */
long ring_snapshot_find(const ring_snapshot *s, const char *id);
/* Entries of other roles than ingester (distributors), by id, no tombstones: they own no
 * tokens and take no part in lookups. Instance i (< ring_snapshot_other_count) is owned by the
 * snapshot; its owned and replicated shares are 0 and its zone_index is 0 (meaningless). */
size_t ring_snapshot_other_count(const ring_snapshot *s);
const ring_instance *ring_snapshot_other(const ring_snapshot *s, size_t i);
/* How many instances of `role` (NULL/""/"ingester" = ingesters) are healthy at now_ms (heartbeat
 * age <= the timeout; 0 = the snapshot's own verdicts) and JOINING or ACTIVE (a LEAVING one is
 * going away). For distributors sharing a tenant's ingestion rate. */
size_t ring_snapshot_healthy_role(const ring_snapshot *s, const char *role, int64_t now_ms);
size_t ring_snapshot_zone_count(const ring_snapshot *s);
const char *ring_snapshot_zone(const ring_snapshot *s, size_t z); /* sorted by name */
/* Successes a write needs per series (the quorum of every replication set):
 * min(RF, zones)/2 + 1; min(RF, zones), every replica, in a static ring. */
int ring_snapshot_quorum(const ring_snapshot *s);
/* A majority of min(RF, zones): how many arbiters of a replication set must agree (HA
 * elections). The write quorum, except in a static ring. */
int ring_snapshot_majority(const ring_snapshot *s);
/* Zones a reader must hear from completely to see every series a quorum write stored:
 * min(RF, zones) - quorum + 1 (2 with RF 3 and three zones, 1 with one zone); every zone in a
 * static ring, whose readers do not know which lists the writers used. 0 for an empty ring. */
size_t ring_snapshot_read_zones(const ring_snapshot *s);

/* Instances of zone z that serve reads (ACTIVE or LEAVING; a JOINING instance holds no data
 * yet), as indexes in id order. Stores up to cap in out and returns how many there are.
 * *healthy (may be NULL) counts the healthy ones among them. For fan-out readers that query
 * whole zones. */
size_t ring_snapshot_zone_readers(const ring_snapshot *s, size_t z, uint32_t *out, size_t cap,
                                  size_t *healthy);

typedef enum ring_op {
  RING_OP_WRITE = 0, /* healthy ACTIVE instances; JOINING/LEAVING are replaced in their zone */
  RING_OP_READ = 1,  /* healthy ACTIVE or LEAVING instances; JOINING is replaced in its zone */
} ring_op;

/* The instances a key goes to. inst[] are indexes for ring_snapshot_instance(), in ring order
 * from the key. quorum = min(RF, zones)/2 + 1 successes are needed; max_errors = n - quorum
 * failures are allowed (negative when n < quorum). */
typedef struct ring_replication_set {
  uint32_t n;
  int32_t quorum;
  int32_t max_errors;
  uint32_t inst[RING_MAX_RF];
} ring_replication_set;

/* Replication set of `token` for `op`. Walks clockwise from the first ring token > token,
 * taking instances of distinct zones until min(RF, zones) zones are claimed; an instance whose
 * state the op skips does not claim its zone, so the next instance of that zone takes its
 * place; then keeps the instances healthy for op. Returns RT_OK when n >= quorum, RT_EUNAVAIL
 * when fewer live replicas exist (out still filled), RT_EUNAVAIL with n = 0 on an empty ring.
 * No lock, no allocation: O(log tokens). */
rt_err ring_snapshot_get(const ring_snapshot *s, uint32_t token, ring_op op,
                         ring_replication_set *out);

/* Appends the /ring JSON (instances, zones, states, token shares, heartbeat ages relative to
 * now_ms, 0 = now) to out; entries of other roles go to a separate key "others". */
void ring_snapshot_json(const ring_snapshot *s, int64_t now_ms, rt_buf *out);
/* Appends a self-contained HTML page with a "forget" button per instance that POSTs
 * forget=<id> to `action` (e.g. "/ring"). */
void ring_snapshot_html(const ring_snapshot *s, int64_t now_ms, const char *action, rt_buf *out);

/* ------------------------------------------------------------------ tokens */

/* A small PRNG (splitmix64) so that tests can generate reproducible tokens. */
uint64_t ring_rand_next(uint64_t *state);
/* Seeds from the OS (getrandom). */
uint64_t ring_rand_seed(void);

/* Fills out[0..n) with distinct random tokens none of which is in taken[0..ntaken) (sorted),
 * then sorts them. RT_ELIMIT when the token space is too full. */
rt_err ring_tokens_generate(uint64_t *rng, const uint32_t *taken, size_t ntaken, uint32_t *out,
                            size_t n);
/* Token file (format in ring/ring_format.h) at `path`. Save writes a temporary file, fsyncs it
 * and renames it over path. Load returns RT_ENOTFOUND when the file does not exist, RT_EPROTO
 * with a message in errbuf when it is malformed, RT_EIO on read errors; on success *out (caller
 * frees with rt_free()) holds *n sorted tokens. */
rt_err ring_tokens_save(const char *path, const uint32_t *tokens, size_t n);
rt_err ring_tokens_load(const char *path, uint32_t **out, size_t *n, char *errbuf, size_t errlen);

/* ------------------------------------------------------------------ member */

typedef struct ring ring;

typedef struct ring_config {
  /* identity; instance_id NULL or "" makes a watcher: no tokens, no entry of its own */
  const char *instance_id;
  const char *role;        /* NULL or "" = ingester (owns num_tokens tokens); another role
                              (RING_ROLE_DISTRIBUTOR) registers an entry without tokens and
                              ignores num_tokens and data_dir */
  const char *zone;
  const char *http_addr;
  const char *rpc_addr;
  const char *data_dir;    /* tokens file <data_dir>/ring.tokens; NULL = not persisted */
  int num_tokens;          /* 128 */
  /* gossip */
  const char *gossip_bind;      /* endpoint to bind ring.Gossip on; NULL = no server */
  const char *gossip_advertise; /* endpoint peers use; NULL = gossip_bind */
  const char *join;             /* comma-separated gossip endpoints of any members */
  int64_t gossip_interval_ms;   /* 1000 */
  int gossip_fanout;            /* peers per round, 3 */
  int64_t gossip_timeout_ms;    /* per exchange; default the interval, at least 100 */
  /* health and lookups */
  int replication_factor;       /* 3 */
  int64_t heartbeat_period_ms;  /* 5000 */
  int64_t heartbeat_timeout_ms; /* 60000 */
  int64_t tombstone_ttl_ms;     /* how long a forget is remembered, 10 minutes */
  int64_t auto_forget_ms;       /* entries of non-ingester roles unhealthy for longer are
                                   forgotten; 0 = 10 heartbeat timeouts, < 0 = never */
  uint64_t seed;                /* token PRNG seed; 0 = from the OS */
  struct rt_metrics *metrics;   /* where ringtail_ring_* metrics go; NULL = the default registry */
} ring_config;

void ring_config_defaults(ring_config *cfg);

/* Starts a member: loads or generates its tokens (saving them), registers its own instance in
 * state JOINING (when it has an id), binds the gossip server, pulls once from the join list
 * (best effort, so that new tokens avoid those already taken) and starts the gossip thread.
 * Borrows cfg for the call only (copies the strings). Caller destroys with ring_destroy(). */
rt_err ring_create(const ring_config *cfg, ring **out, char *errbuf, size_t errlen);
/* Stops the gossip thread and the server and frees everything. It does not announce anything:
 * to leave, set LEAVING first or forget the instance. */
void ring_destroy(ring *r);
/* Adds comma-separated gossip endpoints to the join list and exchanges state with each at once.
 * RT_OK when at least one answered, RT_EUNAVAIL (message in errbuf) when none did. Blocks up to
 * the gossip timeout per endpoint. */
rt_err ring_join(ring *r, const char *endpoints, char *errbuf, size_t errlen);
/* Refreshes the own heartbeat now (the gossip thread also does it every heartbeat period) and
 * publishes a snapshot. RT_EINVAL for a watcher. */
rt_err ring_heartbeat(ring *r);
/* Moves the own instance to `state` (JOINING/ACTIVE/LEAVING), with a new heartbeat, publishes a
 * snapshot and wakes the gossip thread. RT_EINVAL for a watcher or RING_LEFT. */
rt_err ring_set_state(ring *r, ring_state state);
/* Runs one gossip round now on the calling thread (e.g. after ring_set_state(LEAVING) and
 * before ring_destroy(), so that the change is out before the process stops). RT_OK when a
 * peer answered or there is none; RT_EUNAVAIL when every picked peer failed. Blocks up to the
 * gossip timeout per peer. */
rt_err ring_flush(ring *r);
/* Forgets instance `id` (a dead one): replaces it by a tombstone that spreads by gossip. An
 * instance that is still alive re-registers itself when it hears of it. Forgetting the own
 * instance stops its heartbeat and re-registration. RT_ENOTFOUND when unknown. */
rt_err ring_forget(ring *r, const char *id);
/* The latest snapshot: returns a new reference (never NULL); release with
 * ring_snapshot_release(). Takes a mutex for a few instructions; lookups on the snapshot take
 * none. Any thread. */
ring_snapshot *ring_snapshot_acquire(ring *r);
/* The own instance's tokens (borrowed, fixed for the life of r); NULL for a watcher. */
const uint32_t *ring_tokens(const ring *r, size_t *n);
/* The endpoint other members gossip to ("" when none). */
const char *ring_gossip_addr(const ring *r);

/* The most ingesters a static ring may list. */
#define RING_MAX_STATIC 64

/* A fixed ring built from configuration instead of gossip: `endpoints` is a comma-separated
 * list of ingester RPC endpoints (blanks around each ignored). Each becomes one ACTIVE ingester
 * that is always healthy, whose id, zone and rpc_addr are the endpoint and whose 128 tokens
 * are drawn from a hash of the endpoint (so every process listing it places series alike).
 * RF = min(n, RING_MAX_RF) and the snapshot has `every_replica` set: with up to 8 endpoints
 * every series goes to every listed ingester and a write needs all of them; a read needs every
 * listed ingester. No gossip server, no thread: ring_snapshot_acquire() always gives the same
 * snapshot, and ring_join/ring_flush have nobody to talk to. RT_EINVAL (message in errbuf) for
 * an empty list, an endpoint listed twice or one over 1 KiB; RT_ELIMIT for more than
 * RING_MAX_STATIC; RT_ENOMEM. Caller destroys with ring_destroy(). */
rt_err ring_create_static(const char *endpoints, ring **out, char *errbuf, size_t errlen);

/* The ring.Gossip handler (proto RingState in, RingState out), for a process that prefers to
 * serve it on an existing rt_rpc_server: register {RING_GOSSIP_METHOD, ring_handle_gossip} with
 * ctx = the ring. */
#define RING_GOSSIP_METHOD "ring.Gossip"
rt_err ring_handle_gossip(void *ctx, const uint8_t *req, size_t req_len, rt_buf *reply,
                          char *errbuf, size_t errlen);

/* /ring over HTTP: GET answers HTML, or JSON for ?format=json or Accept: application/json;
 * POST with forget=<id> forgets the instance. Borrows r, which must outlive the server. */
struct rt_http_server;
rt_err ring_http_register(ring *r, struct rt_http_server *srv);

#endif
