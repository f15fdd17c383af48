/* flush_prog.c - closes every head chunk of a stopped ingester's data directory and compacts it.
 *
 *   flush_prog DATA_DIR
 *
 * Opens the directory as an ingester (rebuilding the head from RocksDB), calls ing_flush() (all
 * open chunks closed into the chunks column family, the WAL records they cover deleted, every
 * column family flushed and compacted) and closes it again. Afterwards the directory holds the
 * data as it settles on disk, which is what bench/ingest.sh measures bytes per sample on. Prints
 * the ingester's statistics. Exit status 0 on success. */
#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"
#include "ingester/ingester.h"

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DATA_DIR\n", argv[0]);
    return 2;
  }
  rt_log_set_level(RT_LOG_WARN);
  ing_config cfg = {
      .data_dir = argv[1],
      .ooo_window_ms = 0,
      .wal_sync = true,
      .chunk_max_samples = 120,
      .chunk_max_age_ms = 2 * 3600 * 1000,
  };
  ing_ingester *ing = NULL;
  rt_err err = ing_create(&cfg, &ing);
  if (err) {
    fprintf(stderr, "flush_prog: cannot open %s: %s\n", argv[1], rt_strerror(err));
    return 1;
  }
  err = ing_flush(ing);
  ing_stats st;
  ing_get_stats(ing, &st);
  printf("flush_prog: series=%llu chunks_closed=%llu db_bytes=%llu wal_bytes=%llu\n",
         (unsigned long long)st.active_series, (unsigned long long)st.chunks_closed,
         (unsigned long long)st.db_bytes, (unsigned long long)st.wal_bytes);
  ing_destroy(ing);
  if (err) {
    fprintf(stderr, "flush_prog: flush failed: %s\n", rt_strerror(err));
    return 1;
  }
  return 0;
}
