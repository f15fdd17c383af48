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

/* Deletes WAL records that every series has flushed past (I2). */
#define ING_SCAN_STEP 4096 /* series per lock hold in maintenance scans */

rt_err ing_truncate_wal(ing_ingester *ing) {
  /* The scan takes each tenant lock for ING_SCAN_STEP series at a time so that pushes are not
   * held up. That is safe: a push that took its sequence before `bound` was read holds its
   * tenant lock until its samples are applied, so every later lock hold sees them (I2). */
  uint64_t bound = atomic_load(&ing->next_seq);
  pthread_rwlock_rdlock(&ing->tenants_lock);
  for (size_t i = 0; i < ing->ntenants; i++) {
    ing_tenant *t = ing->tenants[i];
    for (uint32_t r0 = 1;; r0 += ING_SCAN_STEP) {
      pthread_rwlock_rdlock(&t->lock);
      uint32_t end = t->nseries;
      for (uint32_t r = r0; r <= end && r < r0 + ING_SCAN_STEP; r++) {
        const ing_series *s = t->by_ref[r];
        if (s && s->unflushed_seq && s->unflushed_seq < bound) {
          bound = s->unflushed_seq;
        }
      }
      pthread_rwlock_unlock(&t->lock);
      if (r0 + ING_SCAN_STEP > end) {
        break;
      }
    }
  }
  pthread_rwlock_unlock(&ing->tenants_lock);
  if (bound <= 1 || bound <= atomic_load(&ing->wal_truncated)) {
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

/* Closes the head chunks of series that have not received samples for chunk_max_age (by the
 * tenant's newest sample time), so that idle series do not pin the WAL. */
static rt_err ing_close_idle(ing_ingester *ing) {
  rt_err err = RT_OK;
  rt_buf tmp = RT_BUF_INIT;
  pthread_rwlock_rdlock(&ing->tenants_lock);
  for (size_t i = 0; i < ing->ntenants && !err; i++) {
    ing_tenant *t = ing->tenants[i];
    for (uint32_t r0 = 1; !err; r0 += ING_SCAN_STEP) {
      rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
      pthread_rwlock_wrlock(&t->lock);
      uint32_t end = t->nseries;
      for (uint32_t r = r0; r <= end && r < r0 + ING_SCAN_STEP && !err; r++) {
        ing_series *s = t->by_ref[r];
        if (!s || (s->head.count == 0 && s->nooo == 0)) {
          continue;
        }
        int64_t newest = s->head.count ? s->head.maxt : s->ooo[s->nooo - 1].t;
        if ((uint64_t)t->max_t - (uint64_t)newest > (uint64_t)ing->cfg.chunk_max_age_ms) {
          err = ing_close_series(ing, t, s, wb, &tmp);
        }
      }
      if (!err && rocksdb_writebatch_count(wb) > 0) {
        char *dberr = NULL;
        rocksdb_write(ing->db, ing->wopts, wb, &dberr);
        err = ing_dberr(dberr, "write idle chunks");
      }
      if (err) {
        atomic_store(&ing->broken, (int)err); /* head and chunks may be out of step (I9) */
      }
      pthread_rwlock_unlock(&t->lock);
      rocksdb_writebatch_destroy(wb);
      if (r0 + ING_SCAN_STEP > end) {
        break;
      }
    }
  }
  pthread_rwlock_unlock(&ing->tenants_lock);
  rt_buf_free(&tmp);
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
    if (!atomic_load(&ing->broken)) {
      ing_close_idle(ing);
      ing_truncate_wal(ing);
    }
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

rt_err ing_maintain(ing_ingester *ing) {
  rt_err err = ing_close_idle(ing);
  if (!err) {
    err = ing_truncate_wal(ing);
  }
  return err;
}

/* Closes every open head chunk, truncates the WAL and compacts it away. */
rt_err ing_flush(ing_ingester *ing) {
  rt_err err = (rt_err)atomic_load(&ing->broken);
  if (err) {
    return err;
  }
  pthread_rwlock_rdlock(&ing->tenants_lock);
  for (size_t i = 0; i < ing->ntenants && !err; i++) {
    ing_tenant *t = ing->tenants[i];
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    rt_buf tmp = RT_BUF_INIT;
    pthread_rwlock_wrlock(&t->lock);
    for (uint32_t r = 1; r <= t->nseries && !err; r++) {
      ing_series *s = t->by_ref[r];
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
