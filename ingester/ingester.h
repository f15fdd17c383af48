/* ingester.h - the ingester's public face: push, select, labels, metadata, its RPC service.
 *
 * An ingester keeps per-tenant series in an in-memory head (Gorilla chunks + inverted index)
 * and persists them in one RocksDB database (column families series, postings, chunks, wal,
 * meta). See ingester/DESIGN.md. The request/response types are the protobuf-c messages of
 * proto/rpc.proto so that the RPC handlers and in-process callers share one path. */
#ifndef RT_INGESTER_H
#define RT_INGESTER_H

#include <stdio.h>

#include "common/arena.h"
#include "common/rt.h"
#include "rpc.pb-c.h"

typedef struct ing_config {
  const char *data_dir;       /* borrowed */
  int64_t ooo_window_ms;      /* out-of-order window; 0 = in-order only */
  bool wal_sync;              /* fsync each push (group commit) before acknowledging */
  int chunk_max_samples;      /* close a head chunk after this many samples (120) */
  int64_t chunk_max_age_ms;   /* ... or when it spans this long (2h) */
  int64_t series_idle_timeout_ms; /* at open, a series idle this long before the stop (data
                                     time) stays on disk; 0 = every series loads. Set from the
                                     compactor's rules (compactor/compactor.h), which also
                                     remove idle series while running (ing_remove_idle) */
  struct rt_metrics *metrics; /* where ringtail_ingester_active_series{user} goes; NULL = none */
  bool ha_no_startup_wait;    /* the HA arbiter elects from its first question on; only when no
                                 distributor outside this process asks it (ingester/ing_ha.h) */
} ing_config;

typedef struct ing_ingester ing_ingester;

/* Opens (or creates) the database under cfg->data_dir and rebuilds the head from it.
 * On success *out is a new ingester; destroy with ing_destroy(). */
rt_err ing_create(const ing_config *cfg, ing_ingester **out);
/* Stops serving RPCs and the background thread, deletes the WAL records that closed chunks
 * already cover, syncs RocksDB's WAL and closes the database. It does not close the open head
 * chunks: their samples stay in the WAL and the next ing_create() replays them (call ing_flush()
 * first for a shutdown that leaves no WAL to replay). Takes ing; NULL is a no-op. */
void ing_destroy(ing_ingester *ing);

/* Appends the request's samples and metadata. Returns RT_OK when the batch was processed and
 * durably logged (per-series rejections are reported in resp->errors, allocated from arena);
 * an error return means nothing of the batch may be assumed stored (the sender should retry). */
rt_err ing_push(ing_ingester *ing, const Ringtail__PushRequest *req, Ringtail__PushResponse *resp,
                rt_arena *arena);
/* Series matching req->matchers with chunks overlapping [mint, maxt] (head chunk included, cut
 * to what is appended so far), sorted by labels; series that left the head as idle are read
 * from RocksDB. Results, label strings included, are allocated from arena. mint == maxt == 0
 * means no time bound. Chunks of a series are sorted by mint and may overlap (out-of-order
 * samples): readers merge by timestamp. Every chunk has encoding RT_CHUNK_ENC_XOR. */
rt_err ing_select(ing_ingester *ing, const Ringtail__SelectRequest *req,
                  Ringtail__SelectResponse *resp, rt_arena *arena);
/* Label names (req->name empty) or values of req->name among series matching req->matchers. */
rt_err ing_label_names(ing_ingester *ing, const Ringtail__LabelsRequest *req,
                       Ringtail__LabelsResponse *resp, rt_arena *arena);
rt_err ing_label_values(ing_ingester *ing, const Ringtail__LabelsRequest *req,
                        Ringtail__LabelsResponse *resp, rt_arena *arena);
rt_err ing_metadata(ing_ingester *ing, const Ringtail__MetadataRequest *req,
                    Ringtail__MetadataResponse *resp, rt_arena *arena);

/* Deletes (hides with persistent tombstones) the samples in [req->mint, req->maxt] of
 * req->tenant's series matching every matcher (at least one), up to each series' newest sample
 * at the time of the call; resp->series counts them. Applied by ing_select from then on, also
 * after a restart. RT_EINVAL for no matchers or mint > maxt. (ing_delete.c) */
rt_err ing_delete_series(ing_ingester *ing, const Ringtail__DeleteSeriesRequest *req,
                         Ringtail__DeleteSeriesResponse *resp, rt_arena *arena);

/* Series counts of one tenant (the head): num_series and the ingestion rate; and its newest
 * sample (has_samples, newest_sample_ms: the tenant's data-time clock, head or disk), which the
 * querier uses to clamp reads to the retention. */
rt_err ing_user_stats(ing_ingester *ing, const Ringtail__UserStatsRequest *req,
                      Ringtail__UserStatsResponse *resp, rt_arena *arena);
/* Series counts per label name and value among the series matching req->matchers. */
rt_err ing_cardinality(ing_ingester *ing, const Ringtail__CardinalityRequest *req,
                       Ringtail__CardinalityResponse *resp, rt_arena *arena);

/* ------------------------------------------------------------------ series limits */

/* What an ingester knows of the ring to take its share of a global series limit. */
typedef struct ing_ring_view {
  int rf;                  /* replication factor; <= 0: no ring (a single process) */
  size_t zones;            /* zones with an instance */
  size_t healthy_in_zone;  /* healthy ACTIVE ingesters in this ingester's zone */
  size_t healthy;          /* healthy ACTIVE ingesters in the ring */
} ing_ring_view;

/* The local limit for a global one (0 = unlimited stays 0). Every zone holds one copy of every
 * series when zones <= rf: local = global / healthy_in_zone. With more zones than copies:
 * local = global * rf / healthy. No ring: the global limit. Never below 1 for a set limit. */
int64_t ing_local_limit(int64_t global, const ing_ring_view *v);

struct ring;
struct ring_snapshot;
/* The view of instance `id` in a ring snapshot (rf <= 0 when id is not in it). */
void ing_ring_view_of(const struct ring_snapshot *s, const char *id, ing_ring_view *out);
/* Gives the ingester the ring it is a member of as `id` (borrowed; must outlive the ingester
 * or be unset with NULL first). Without it the global limits apply as they are. */
void ing_set_ring(ing_ingester *ing, struct ring *r, const char *id);

/* Serves the methods "ingester.Push", "ingester.Select", "ingester.LabelNames",
 * "ingester.LabelValues", "ingester.Metadata", "ingester.UserStats", "ingester.Cardinality",
 * "ingester.DeleteSeries" and "ingester.HaElect" (the HA-pair arbiter, ingester/ing_ha.h; its
 * records start empty here) on `endpoint` (inproc:// or tcp://). */
rt_err ing_serve(ing_ingester *ing, const char *endpoint, int workers);

/* Closes every open head chunk into the chunks column family, deletes the WAL records they
 * cover and compacts the database (for a clean archive and for measuring bytes per sample).
 * Blocks pushes of each tenant while it runs. */
rt_err ing_flush(ing_ingester *ing);

/* Head cleanup, applied by the compactor's worker (compactor/compactor.h): removes from the
 * head every series idle for idle_ms of data time (its newest sample older than the tenant's
 * newest minus max(idle_ms, the tenant's out-of-order window)), and every series of a tenant
 * without an appended sample since now_ns - idle_ms (wall clock, rt_mono_ns). Their open chunks
 * are written first; they stay readable from RocksDB. *removed counts them. Blocks pushes of a
 * tenant for 4096 series at a time; one cleanup or maintenance round runs at a time. */
rt_err ing_remove_idle(ing_ingester *ing, int64_t idle_ms, uint64_t now_ns, uint64_t *removed);

/* Retention, applied by the compactor's worker: the time before which the data of `tenant`
 * (whose newest sample is newest_ms, INT64_MIN when none) is deleted, or INT64_MIN to keep it
 * all. Called without ingester locks held. */
typedef int64_t (*ing_retention_fn)(void *ctx, const char *tenant, int64_t newest_ms);

/* What one retention round deleted. */
typedef struct ing_retention_stats {
  uint64_t series;     /* series deleted whole: record, postings, chunks, tombstones */
  uint64_t chunks;     /* closed chunks ending before the cutoff, of series that stay */
  uint64_t tombstones; /* deletion tombstones hiding nothing that is still stored */
} ing_retention_stats;

/* Deletes, for every tenant, what lies wholly before before(ctx, tenant, newest): closed chunks
 * ending before it; series whose newest sample is before it (first out of the head, then their
 * series record, postings, chunks and tombstones, with RocksDB range deletes over runs of
 * consecutive refs, and a compaction of those ranges so that the disk space comes back); and
 * the tombstones that then hide nothing. A tenant is worked on only when its cutoff moved past
 * the last one applied. Chunks that straddle the cutoff stay whole: readers clamp (the
 * querier does). *st (may be NULL) counts what was deleted. One cleanup or maintenance round
 * runs at a time; blocks pushes of a tenant for 4096 head series at a time. (ing_retention.c) */
rt_err ing_apply_retention(ing_ingester *ing, ing_retention_fn before, void *ctx,
                           ing_retention_stats *st);

typedef struct ing_stats {
  uint64_t active_series;           /* series in the head */
  uint64_t series_removed;          /* series that left the head as idle since start */
  uint64_t samples_appended;
  uint64_t samples_rejected[5];     /* by Ringtail__SampleError */
  uint64_t wal_bytes;               /* WAL column family size */
  uint64_t db_bytes;                /* total live SST + memtable size */
  uint64_t memtable_bytes;          /* RocksDB memtables (memory, bounded by the write buffers) */
  uint64_t live_bytes;              /* RocksDB's estimate of its live data (deleted data that
                                       compactions have not dropped yet is not counted) */
  uint64_t chunks_closed;
  uint64_t retention_series;        /* series deleted by retention since start */
  uint64_t retention_chunks;        /* chunks of remaining series deleted by retention */
  uint64_t ha_records;              /* (tenant, cluster) records of the HA arbiter */
  uint64_t ha_elections;            /* replicas it elected (first elections and changes) */
} ing_stats;
void ing_get_stats(ing_ingester *ing, ing_stats *out);

/* Reads a data directory offline (read-only; works while an ingester has it open) and writes
 * every series of `tenant` (NULL or "" = all tenants) with all its samples to out, one line per
 * sample: `<tenant> {labels} <ts_ms> <value>`, tenants by name, series by labels, samples by
 * time. Labels as Prometheus prints them (`{__name__="up", job="x"}`); values as Go's shortest
 * %g (rt_float_format 'g': the fewest digits that read back as the same double), `NaN`, `+Inf`,
 * `-Inf`, or `StaleNaN` for the stale marker. For `ringtail dump`. */
rt_err ing_dump(const char *data_dir, const char *tenant, FILE *out);

#endif
