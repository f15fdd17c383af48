/* ing_ha.h - the ingester's side of the HA-pair election: one arbiter per ingester, keyed by
 * (tenant, cluster). See distributor/DESIGN.md ("HA pairs") for the protocol and why it never
 * lets two distributors accept different replicas at once. */
#ifndef RT_ING_HA_H
#define RT_ING_HA_H

#include "common/buf.h"
#include "common/rt.h"

/* What the arbiter's rule does with one question "replica R is sending now". */
typedef enum ing_ha_action {
  ING_HA_ELECT = 1,    /* elect R (no record, or the elected one is older than the timeout) */
  ING_HA_REFRESH = 2,  /* R is the elected one: last-seen = now */
  ING_HA_KEEP = 3,     /* another replica is elected and fresh: answer it, change nothing */
} ing_ha_action;

/* The rule, pure. have: a record exists with `elected` seen last at last_seen_ms (monotonic). */
ing_ha_action ing_ha_rule(bool have, const char *elected, int64_t last_seen_ms,
                          const char *replica, int64_t now_ms, int64_t timeout_ms);

typedef struct ing_ha ing_ha;

/* Creates an arbiter that starts at start_ms (monotonic, ms). grace: for the first failover
 * timeout after start_ms it applies the rule (so it learns the replica that keeps sending) but
 * answers "" (abstains): an arbiter that lost its records must not vote before every
 * distributor's cache of an earlier election has run out. Off only when no distributor outside
 * this process can ask it. */
rt_err ing_ha_create(bool grace, int64_t start_ms, ing_ha **out);
void ing_ha_destroy(ing_ha *h);

/* Applies the rule to the record of (tenant, cluster) at now_ms (monotonic) and copies the
 * elected replica ("" = abstains, during the start-up wait) into out (reset first). *refreshed (may be NULL): R is
 * the elected replica and its last-seen time is now_ms. Records older than their timeout are
 * forgotten on the way (forgetting one changes no answer: anyone would be elected). RT_EINVAL
 * for empty arguments or timeout_ms <= 0, RT_ENOMEM. Thread-safe. */
rt_err ing_ha_elect(ing_ha *h, const char *tenant, const char *cluster, const char *replica,
                    int64_t timeout_ms, int64_t now_ms, rt_buf *out, bool *refreshed);

/* Records held, and elections made (first elections and changes). */
size_t ing_ha_records(ing_ha *h);
uint64_t ing_ha_elections(ing_ha *h);

#endif
