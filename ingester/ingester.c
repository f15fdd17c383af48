/* ingester.c - the ingester object: tenants, ing_create / ing_destroy, stats. The work is in
 * the files ing_int.h lists. See ingester/DESIGN.md for the invariants referred to as (I1) ...
 * and ing_format.h for the record layouts. */
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

/* ------------------------------------------------------------------ tenants */

static ing_tenant *ing_tenant_find(ing_ingester *ing, const char *name) {
  for (size_t i = 0; i < ing->ntenants; i++) {
    if (strcmp(ing->tenants[i]->name, name) == 0) {
      return ing->tenants[i];
    }
  }
  return NULL;
}

ing_tenant *ing_tenant_by_id(ing_ingester *ing, uint32_t id) {
  for (size_t i = 0; i < ing->ntenants; i++) {
    if (ing->tenants[i]->id == id) {
      return ing->tenants[i];
    }
  }
  return NULL;
}

rt_err ing_tenant_register(ing_ingester *ing, const char *name, uint32_t id, ing_tenant **out) {
  if (ing->ntenants == ing->tenants_cap) {
    size_t ncap = ing->tenants_cap ? ing->tenants_cap * 2 : 8;
    ing_tenant **nt = rt_realloc(ing->tenants, ing->tenants_cap * sizeof *nt, ncap * sizeof *nt);
    if (!nt) {
      return RT_ENOMEM;
    }
    ing->tenants = nt;
    ing->tenants_cap = ncap;
  }
  rt_err err = ing_tenant_create(name, id, out);
  if (err) {
    return err;
  }
  ing->tenants[ing->ntenants++] = *out;
  ing_tenant_gauge_init(ing, *out);
  if (id >= ing->next_tenant_id) {
    ing->next_tenant_id = id + 1;
  }
  return RT_OK;
}

/* Returns the tenant, creating and persisting it if `create`. NULL with *err set otherwise. */
ing_tenant *ing_tenant_get(ing_ingester *ing, const char *name, bool create, rt_err *err) {
  *err = RT_OK;
  pthread_rwlock_rdlock(&ing->tenants_lock);
  ing_tenant *t = ing_tenant_find(ing, name);
  pthread_rwlock_unlock(&ing->tenants_lock);
  if (t || !create) {
    return t;
  }
  pthread_rwlock_wrlock(&ing->tenants_lock);
  t = ing_tenant_find(ing, name);
  if (!t) {
    uint32_t id = ing->next_tenant_id;
    size_t nl = strlen(name);
    char *key = rt_alloc(nl + 1);
    if (!key) {
      *err = RT_ENOMEM;
    } else {
      key[0] = ING_META_TENANT_PREFIX;
      memcpy(key + 1, name, nl);
      uint8_t val[4];
      ing_put_u32(val, id);
      char *dberr = NULL;
      rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
      rocksdb_writeoptions_set_sync(wo, ing->cfg.wal_sync);
      rocksdb_put_cf(ing->db, wo, ing->cf[ING_CF_META], key, nl + 1, (const char *)val, 4, &dberr);
      rocksdb_writeoptions_destroy(wo);
      rt_free(key, nl + 1);
      *err = ing_dberr(dberr, "put tenant");
      if (!*err) {
        *err = ing_tenant_register(ing, name, id, &t);
      }
    }
  }
  pthread_rwlock_unlock(&ing->tenants_lock);
  return t;
}

/* ------------------------------------------------------------------ create / destroy */

void ing_free(ing_ingester *ing) {
  ing_tomb_free(ing);
  for (size_t i = 0; i < ing->ntenants; i++) {
    ing_tenant_destroy(ing->tenants[i]);
  }
  rt_free(ing->tenants, ing->tenants_cap * sizeof *ing->tenants);
  ing_close_db(ing);
  pthread_rwlock_destroy(&ing->tenants_lock);
  pthread_mutex_destroy(&ing->sync_mu);
  pthread_cond_destroy(&ing->sync_cv);
  pthread_mutex_destroy(&ing->bg_mu);
  pthread_mutex_destroy(&ing->maint_mu);
  pthread_cond_destroy(&ing->bg_cv);
  pthread_mutex_destroy(&ing->ring_mu);
  rt_free(ing->ring_id, 0);
  rt_free(ing->data_dir, 0);
  rt_free(ing, sizeof *ing);
}

ing_ingester *ing_alloc(const ing_config *cfg) {
  ing_ingester *ing = rt_calloc(1, sizeof *ing);
  if (!ing) {
    return NULL;
  }
  ing->cfg = *cfg;
  ing->data_dir = rt_strdup(cfg->data_dir ? cfg->data_dir : "./data");
  ing->cfg.data_dir = ing->data_dir;
  if (ing->cfg.chunk_max_samples <= 0 || ing->cfg.chunk_max_samples > 65535) {
    ing->cfg.chunk_max_samples = 120;
  }
  if (ing->cfg.chunk_max_age_ms <= 0) {
    ing->cfg.chunk_max_age_ms = 2 * 3600 * 1000;
  }
  if (ing->cfg.ooo_window_ms < 0) {
    ing->cfg.ooo_window_ms = 0;
  }
  pthread_rwlock_init(&ing->tenants_lock, NULL);
  pthread_mutex_init(&ing->sync_mu, NULL);
  pthread_cond_init(&ing->sync_cv, NULL);
  pthread_mutex_init(&ing->bg_mu, NULL);
  pthread_mutex_init(&ing->maint_mu, NULL);
  pthread_cond_init(&ing->bg_cv, NULL);
  pthread_mutex_init(&ing->ring_mu, NULL);
  ing->next_tenant_id = 1;
  if (!ing->data_dir) {
    ing_free(ing);
    return NULL;
  }
  return ing;
}

rt_err ing_create(const ing_config *cfg, ing_ingester **out) {
  *out = NULL;
  /* the limits table builds its defaults on first use (allocating): do it now, not in a push */
  rt_limits warm;
  rt_limits_get("", &warm);
  ing_ingester *ing = ing_alloc(cfg);
  if (!ing) {
    return RT_ENOMEM;
  }
  uint64_t t0 = rt_mono_ns();
  rt_err err = ing_open_db(ing, ing->data_dir, false);
  uint64_t max_flushed = 0, last_seq = 0;
  if (!err) {
    err = ing_load_meta(ing);
  }
  if (!err) {
    err = ing_load_series(ing, &max_flushed);
  }
  if (!err) {
    err = ing_replay(ing, &last_seq);
  }
  if (!err) {
    err = ing_tomb_load(ing);
  }
  if (err) {
    ing_free(ing);
    return err;
  }
  atomic_store(&ing->next_seq, RT_MAX(last_seq, max_flushed) + 1);
  if (pthread_create(&ing->bg, NULL, ing_bg_main, ing) == 0) {
    ing->bg_running = true;
  }
  rt_info(ING_LOG, "ingester opened", "data_dir=\"%s\" series=%llu took_ms=%llu", ing->data_dir,
          (unsigned long long)atomic_load(&ing->st_series),
          (unsigned long long)((rt_mono_ns() - t0) / 1000000));
  *out = ing;
  return RT_OK;
}

void ing_serve_stop(ing_ingester *ing);

void ing_destroy(ing_ingester *ing) {
  if (!ing) {
    return;
  }
  ing_serve_stop(ing);
  ing_ha_destroy(ing->ha);
  ing->ha = NULL;
  if (ing->bg_running) {
    pthread_mutex_lock(&ing->bg_mu);
    ing->bg_stop = true;
    pthread_cond_broadcast(&ing->bg_cv);
    pthread_mutex_unlock(&ing->bg_mu);
    pthread_join(ing->bg, NULL);
  }
  if (ing->db && !atomic_load(&ing->broken)) {
    pthread_mutex_lock(&ing->maint_mu);
    ing_truncate_wal(ing);
    pthread_mutex_unlock(&ing->maint_mu);
    char *dberr = NULL;
    rocksdb_flush_wal(ing->db, 1, &dberr);
    ing_dberr(dberr, "sync wal");
  }
  ing_free(ing);
}

/* ------------------------------------------------------------------ stats */

static uint64_t ing_prop(ing_ingester *ing, int cf, const char *name) {
  uint64_t v = 0;
  if (rocksdb_property_int_cf(ing->db, ing->cf[cf], name, &v) != 0) {
    return 0;
  }
  return v;
}

void ing_get_stats(ing_ingester *ing, ing_stats *out) {
  memset(out, 0, sizeof *out);
  out->active_series = atomic_load(&ing->st_series);
  out->samples_appended = atomic_load(&ing->st_samples);
  for (int i = 0; i < 5; i++) {
    out->samples_rejected[i] = atomic_load(&ing->st_rejected[i]);
  }
  out->chunks_closed = atomic_load(&ing->st_chunks);
  out->series_removed = atomic_load(&ing->st_evicted);
  out->retention_series = atomic_load(&ing->st_ret_series);
  out->retention_chunks = atomic_load(&ing->st_ret_chunks);
  if (ing->ha) {
    out->ha_records = ing_ha_records(ing->ha);
    out->ha_elections = ing_ha_elections(ing->ha);
  }
  out->wal_bytes = ing_prop(ing, ING_CF_WAL, "rocksdb.total-sst-files-size") +
                   ing_prop(ing, ING_CF_WAL, "rocksdb.cur-size-all-mem-tables");
  for (int i = 0; i < 6; i++) {
    uint64_t mem = ing_prop(ing, i, "rocksdb.cur-size-all-mem-tables");
    out->db_bytes += ing_prop(ing, i, "rocksdb.total-sst-files-size") + mem;
    out->memtable_bytes += mem;
    out->live_bytes += ing_prop(ing, i, "rocksdb.estimate-live-data-size");
  }
}
