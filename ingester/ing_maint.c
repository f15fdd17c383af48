/* ing_maint.c - background maintenance: closing idle head chunks, truncating the WAL (I2),
 * ing_flush. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/buf.h"
#include "common/limits.h"
#include "common/log.h"
#include "ingester/ing_format.h"
#include "ingester/ing_ha.h"
#include "ingester/ing_int.h"

/* ------------------------------------------------------------------ maintenance */

/* Deletes WAL records that every series has flushed past (I2). Caller holds maint_mu. */
rt_err ing_truncate_wal(ing_ingester *ing) {
  /* Safe across lock holds: a push that took its sequence before `bound` was read holds its
   * tenant lock until its samples are applied, so every later lock hold sees them (I2); a
   * series added since has unflushed_seq >= bound. A rebuilt ref table may have moved series
   * behind the scan: then this round deletes nothing. */
  uint64_t bound = atomic_load(&ing->next_seq);
  bool complete = true;
  pthread_rwlock_rdlock(&ing->tenants_lock);
  for (size_t i = 0; i < ing->ntenants && complete; i++) {
    ing_tenant *t = ing->tenants[i];
    pthread_rwlock_rdlock(&t->lock);
    uint64_t gen = t->refs_gen;
    pthread_rwlock_unlock(&t->lock);
    for (size_t r0 = 0; complete; r0 += ING_SCAN_STEP) {
      pthread_rwlock_rdlock(&t->lock);
      size_t end = t->refs_cap;
      complete = t->refs_gen == gen;
      for (size_t r = r0; complete && r < end && r < r0 + ING_SCAN_STEP; r++) {
        const ing_series *s = t->refs[r];
        if (s && s->unflushed_seq && s->unflushed_seq < bound) {
          bound = s->unflushed_seq;
        }
      }
      pthread_rwlock_unlock(&t->lock);
      if (r0 + ING_SCAN_STEP >= end) {
        break;
      }
    }
  }
  pthread_rwlock_unlock(&ing->tenants_lock);
  if (!complete || bound <= 1 || bound <= atomic_load(&ing->wal_truncated)) {
    return RT_OK;
  }
  uint8_t from[8], to[8];
  ing_put_u64(from, 0);
  ing_put_u64(to, bound);
  char *dberr = NULL;
  rocksdb_delete_range_cf(ing->db, ing->wopts, ing->cf[ING_CF_WAL], (const char *)from, 8,
                          (const char *)to, 8, &dberr);
  rt_err err = ing_dberr(dberr, "truncate wal");
  if (!err) {
    atomic_store(&ing->wal_truncated, bound);
  }
  return err;
}

rt_err ing_write_maint(ing_ingester *ing, rocksdb_writebatch_t *wb, const char *what) {
  rt_err err = RT_OK;
  if (rocksdb_writebatch_count(wb) > 0) {
    char *dberr = NULL;
    rocksdb_write(ing->db, ing->wopts, wb, &dberr);
    err = ing_dberr(dberr, what);
    rocksdb_writebatch_clear(wb);
  }
  if (err) {
    atomic_store(&ing->broken, (int)err);
  }
  return err;
}

/* Closes the head chunks of series that have not received samples for chunk_max_age (by the
 * tenant's newest sample time), so that idle series do not pin the WAL. Caller holds
 * maint_mu. */
static rt_err ing_close_idle(ing_ingester *ing) {
  rt_err err = RT_OK;
  rt_buf tmp = RT_BUF_INIT;
  rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
  pthread_rwlock_rdlock(&ing->tenants_lock);
  for (size_t i = 0; i < ing->ntenants && !err; i++) {
    ing_tenant *t = ing->tenants[i];
    for (size_t r0 = 0; !err; r0 += ING_SCAN_STEP) {
      pthread_rwlock_wrlock(&t->lock);
      size_t end = t->refs_cap;
      for (size_t r = r0; r < end && r < r0 + ING_SCAN_STEP && !err; r++) {
        ing_series *s = t->refs[r];
        if (!s || (s->head.count == 0 && s->nooo == 0)) {
          continue;
        }
        int64_t newest = s->head.count ? s->head.maxt : s->ooo[s->nooo - 1].t;
        if ((uint64_t)t->max_t - (uint64_t)newest > (uint64_t)ing->cfg.chunk_max_age_ms) {
          err = ing_close_series(ing, t, s, wb, &tmp);
        }
      }
      if (!err) {
        err = ing_write_maint(ing, wb, "write idle chunks");
      } else {
        atomic_store(&ing->broken, (int)err);
      }
      pthread_rwlock_unlock(&t->lock);
      if (r0 + ING_SCAN_STEP >= end) {
        break;
      }
    }
  }
  pthread_rwlock_unlock(&ing->tenants_lock);
  rocksdb_writebatch_destroy(wb);
  rt_buf_free(&tmp);
  return err;
}

/* ------------------------------------------------------------------ idle series (I11) */

int64_t ing_idle_before(ing_ingester *ing, const ing_tenant *t, int64_t idle_ms) {
  if (idle_ms <= 0 || t->max_t == INT64_MIN) {
    return INT64_MIN;
  }
  int64_t window = ing->cfg.ooo_window_ms;
  if (rt_limits_active()) {
    rt_limits tl;
    rt_limits_get(t->name, &tl);
    window = tl.out_of_order_time_window_ms;
  }
  int64_t d = RT_MAX(idle_ms, window);
  return t->max_t < INT64_MIN + d ? INT64_MIN : t->max_t - d;
}

rt_err ing_evict(ing_ingester *ing, ing_tenant *t, int64_t before, uint64_t quiet_ns,
                 size_t *evicted) {
  *evicted = 0;
  rt_err err = RT_OK;
  rt_buf tmp = RT_BUF_INIT;
  rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
  ing_series **gone = rt_alloc(ING_SCAN_STEP * sizeof *gone);
  if (!gone) {
    rocksdb_writebatch_destroy(wb);
    return RT_ENOMEM;
  }
  for (size_t r0 = 0; !err; r0 += ING_SCAN_STEP) {
    pthread_rwlock_wrlock(&t->lock);
    size_t end = t->refs_cap, ngone = 0;
    /* quiet: a push since quiet_ns makes the tenant active again */
    bool skip = quiet_ns && t->last_write_ns > quiet_ns;
    for (size_t r = r0; !skip && r < end && r < r0 + ING_SCAN_STEP && !err; r++) {
      ing_series *s = t->refs[r];
      if (!s || (!quiet_ns && s->last_t >= before)) {
        continue;
      }
      if (s->head.count > 0 || s->nooo > 0) {
        err = ing_close_series(ing, t, s, wb, &tmp); /* its last chunk goes to disk first */
      }
      gone[ngone++] = s;
    }
    if (!err) {
      err = ing_write_maint(ing, wb, "write chunks of series leaving the head");
    } else {
      atomic_store(&ing->broken, (int)err);
    }
    /* only once its last chunk is safely in RocksDB does a series leave the head */
    for (size_t k = 0; !err && k < ngone; k++) {
      ing_series *s = gone[k];
      if (s->first_t <= s->last_t) {
        t->disk_min_t = RT_MIN(t->disk_min_t, s->first_t);
        t->disk_max_t = RT_MAX(t->disk_max_t, s->last_t);
      }
      ing_series_remove(t, s);
    }
    if (!err && ngone) {
      *evicted += ngone;
      ing_tenant_gauge_update(t);
    }
    pthread_rwlock_unlock(&t->lock);
    /* removals move entries of the table back: the next step may miss a few, found next
     * round */
    if (r0 + ING_SCAN_STEP >= end) {
      break;
    }
  }
  if (*evicted) {
    atomic_fetch_sub(&ing->st_series, *evicted);
    atomic_fetch_add(&ing->st_evicted, *evicted);
  }
  rocksdb_writebatch_destroy(wb);
  rt_buf_free(&tmp);
  rt_free(gone, ING_SCAN_STEP * sizeof *gone);
  return err;
}

/* The work of ing_remove_idle; caller holds maint_mu. */
static rt_err ing_evict_idle(ing_ingester *ing, int64_t idle_ms, uint64_t now_ns, uint64_t *removed) {
  *removed = 0;
  if (idle_ms <= 0) {
    return RT_OK;
  }
  rt_err err = RT_OK;
  uint64_t idle_ns = (uint64_t)idle_ms * 1000000u;
  pthread_rwlock_rdlock(&ing->tenants_lock);
  for (size_t i = 0; i < ing->ntenants && !err; i++) {
    ing_tenant *t = ing->tenants[i];
    pthread_rwlock_rdlock(&t->lock);
    /* data time: idle before this; wall clock: a tenant that stopped writing lets all go */
    int64_t before = ing_idle_before(ing, t, idle_ms);
    bool quiet = t->nseries > 0 && now_ns > t->last_write_ns && now_ns - t->last_write_ns >= idle_ns;
    pthread_rwlock_unlock(&t->lock);
    if (before == INT64_MIN && !quiet) {
      continue;
    }
    size_t evicted = 0;
    uint64_t t0 = rt_mono_ns();
    err = ing_evict(ing, t, before, quiet ? RT_MAX(now_ns - idle_ns, 1) : 0, &evicted);
    if (evicted) {
      *removed += evicted;
      rt_info(ING_LOG, "idle series left the head", "tenant=\"%s\" series=%zu clock=%s took_ms=%llu",
              t->name, evicted, quiet ? "wall" : "data",
              (unsigned long long)((rt_mono_ns() - t0) / 1000000));
    }
  }
  pthread_rwlock_unlock(&ing->tenants_lock);
  return err;
}

rt_err ing_remove_idle(ing_ingester *ing, int64_t idle_ms, uint64_t now_ns, uint64_t *removed) {
  *removed = 0;
  pthread_mutex_lock(&ing->maint_mu);
  rt_err err = (rt_err)atomic_load(&ing->broken);
  if (!err) {
    err = ing_evict_idle(ing, idle_ms, now_ns, removed);
  }
  pthread_mutex_unlock(&ing->maint_mu);
  return err;
}

/* One maintenance round. */
static rt_err ing_maint_round(ing_ingester *ing) {
  pthread_mutex_lock(&ing->maint_mu);
  rt_err err = (rt_err)atomic_load(&ing->broken);
  if (!err) {
    err = ing_close_idle(ing);
  }
  if (!err) {
    err = ing_truncate_wal(ing);
  }
  pthread_mutex_unlock(&ing->maint_mu);
  return err;
}

void *ing_bg_main(void *arg) {
  ing_ingester *ing = arg;
  pthread_mutex_lock(&ing->bg_mu);
  while (!ing->bg_stop) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 10;
    pthread_cond_timedwait(&ing->bg_cv, &ing->bg_mu, &ts);
    if (ing->bg_stop) {
      break;
    }
    pthread_mutex_unlock(&ing->bg_mu);
    ing_update_rates(ing);
    ing_maint_round(ing);
    pthread_mutex_lock(&ing->bg_mu);
  }
  pthread_mutex_unlock(&ing->bg_mu);
  return NULL;
}

rt_err ing_wal_count(ing_ingester *ing, uint64_t *n) {
  *n = 0;
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(ing->db, ing->ropts, ing->cf[ING_CF_WAL]);
  for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    (*n)++;
  }
  char *dberr = NULL;
  rocksdb_iter_get_error(it, &dberr);
  rocksdb_iter_destroy(it);
  return ing_dberr(dberr, "count wal");
}

rt_err ing_maintain(ing_ingester *ing) { return ing_maint_round(ing); }

/* Closes every open head chunk, truncates the WAL and compacts it away. */
rt_err ing_flush(ing_ingester *ing) {
  rt_err err = (rt_err)atomic_load(&ing->broken);
  if (err) {
    return err;
  }
  pthread_mutex_lock(&ing->maint_mu);
  pthread_rwlock_rdlock(&ing->tenants_lock);
  for (size_t i = 0; i < ing->ntenants && !err; i++) {
    ing_tenant *t = ing->tenants[i];
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    rt_buf tmp = RT_BUF_INIT;
    pthread_rwlock_wrlock(&t->lock);
    for (size_t r = 0; r < t->refs_cap && !err; r++) {
      ing_series *s = t->refs[r];
      if (s && (s->head.count > 0 || s->nooo > 0)) {
        err = ing_close_series(ing, t, s, wb, &tmp);
        if (!err && rocksdb_writebatch_count(wb) >= 4096) {
          char *dberr = NULL;
          rocksdb_write(ing->db, ing->wopts, wb, &dberr);
          err = ing_dberr(dberr, "write flushed chunks");
          rocksdb_writebatch_clear(wb);
        }
      }
    }
    if (!err && rocksdb_writebatch_count(wb) > 0) {
      char *dberr = NULL;
      rocksdb_write(ing->db, ing->wopts, wb, &dberr);
      err = ing_dberr(dberr, "write flushed chunks");
    }
    if (err) {
      atomic_store(&ing->broken, (int)err);
    }
    pthread_rwlock_unlock(&t->lock);
    rocksdb_writebatch_destroy(wb);
    rt_buf_free(&tmp);
  }
  pthread_rwlock_unlock(&ing->tenants_lock);
  if (!err) {
    err = ing_truncate_wal(ing);
  }
  pthread_mutex_unlock(&ing->maint_mu);
  rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
  rocksdb_flushoptions_set_wait(fo, 1);
  for (int i = 1; i < 6 && !err; i++) {
    char *dberr = NULL;
    rocksdb_flush_cf(ing->db, fo, ing->cf[i], &dberr);
    err = ing_dberr(dberr, "flush");
  }
  rocksdb_flushoptions_destroy(fo);
  for (int i = 1; i < 6 && !err; i++) {
    rocksdb_compact_range_cf(ing->db, ing->cf[i], NULL, 0, NULL, 0);
  }
  return err;
}
