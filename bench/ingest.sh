#!/usr/bin/env bash
# ingest.sh - ingestion benchmark: Ringtail against Prometheus 2.42's remote-write receiver.
#
# Prints figures; it is not a test. Three parts, each on fresh temporary data directories:
#   1. throughput: ringtail-loadgen as fast as each server accepts, same data and settings for
#      both (`ringtail -target=all` on /api/v1/push, `prometheus --web.enable-remote-write-receiver`
#      on /api/v1/write); samples/s, p50/p99 request latency, and the ratio.
#   2. bytes per sample on disk: a real Prometheus scrapes itself and a node exporter every second
#      and remote-writes to ringtail for --disk-seconds; after a clean stop, every chunk closed and
#      the database compacted (flush_prog), the data directory's size divided by the samples
#      stored.
#   3. resident memory per active series: ringtail's RSS growth when --mem-series series (1M by
#      default) each receive --mem-samples samples, divided by the series count.
#
# Usage: bench/ingest.sh [--quick] [--series N] [--rounds R] [--duration S] [--concurrency C]
#                        [--samples-per-request S] [--mem-series N] [--mem-samples K]
#                        [--disk-seconds S] [--skip throughput,disk,memory] [--build DIR]
#   --quick: 20k series x 100 samples, 100k series for memory, 130 s of scrapes.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
series=100000
rounds=60
duration=120
concurrency=4
spr=2000
mem_series=1000000
mem_samples=2
disk_seconds=240
skip=
build=$ROOT/build
while [ $# -gt 0 ]; do
  case $1 in
    --quick) series=20000; rounds=100; mem_series=100000; disk_seconds=130 ;;
    --series) series=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --duration) duration=$2; shift ;;
    --concurrency) concurrency=$2; shift ;;
    --samples-per-request) spr=$2; shift ;;
    --mem-series) mem_series=$2; shift ;;
    --mem-samples) mem_samples=$2; shift ;;
    --disk-seconds) disk_seconds=$2; shift ;;
    --skip) skip=$2; shift ;;
    --build) build=$2; shift ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
export RINGTAIL_BIN=$build/ringtail LOADGEN_BIN=$build/ringtail-loadgen
# shellcheck source=../tests/integration/lib.bash
source "$ROOT/tests/integration/lib.bash"
trap - INT TERM
skipped() { case ",$skip," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

for b in "$RINGTAIL_BIN" "$LOADGEN_BIN"; do
  [ -x "$b" ] || { echo "missing $b: build with cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2"; exit 2; }
done
command -v prometheus >/dev/null || { echo "prometheus is not installed (scripts/install-deps.sh)"; exit 2; }

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
dir_bytes() { du -sb "$1" | awk '{print $1}'; }
result_field() { sed -n "s/.*RESULT.* $1=\([^ ]*\).*/\1/p" "$2" | tail -n1; }

echo "ingest benchmark on $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM; $(prometheus --version 2>&1 | head -n1)"
echo

# ---------------------------------------------------------------------------------------------
# 1. throughput
if ! skipped throughput; then
  echo "== 1. throughput: $series series x $rounds samples, $spr samples/request, $concurrency connections (requests built before the clock starts; at most ${duration}s)"
  start_ts=$(( $(date +%s) * 1000 - 5 * 24 * 3600 * 1000 ))
  lg_args=(--series "$series" --rounds "$rounds" --pregen --samples-per-request "$spr"
           --concurrency "$concurrency" --duration "$duration" --start-ts "$start_ts" --step 15000
           --max-retries 0)

  rt_start "$IT_TMP/rt-throughput" >/dev/null || exit 1
  "$LOADGEN_BIN" --url "$RT_URL/api/v1/push" "${lg_args[@]}" | tee "$IT_TMP/lg-rt.out" | sed 's/^/  ringtail   /'
  rt_rss=$(rss_kib "$RT_PID")
  rt_stop >/dev/null
  RT_PORT=

  pport=$(free_port)
  printf 'global:\n  scrape_interval: 1h\n' >"$IT_TMP/prom-recv.yml"
  prometheus --config.file="$IT_TMP/prom-recv.yml" --storage.tsdb.path="$IT_TMP/prom-throughput" \
    --web.listen-address=127.0.0.1:"$pport" --web.enable-remote-write-receiver --log.level=warn \
    >"$IT_TMP/prom-recv.log" 2>&1 &
  ppid_=$!
  track "$ppid_"
  wait_for 60 "prometheus ready" http_ok "http://127.0.0.1:$pport/-/ready" || exit 1
  "$LOADGEN_BIN" --url "http://127.0.0.1:$pport/api/v1/write" "${lg_args[@]}" | tee "$IT_TMP/lg-prom.out" | sed 's/^/  prometheus /'
  prom_rss=$(rss_kib "$ppid_")
  kill -TERM "$ppid_"; it_wait_exit "$ppid_" 60; untrack "$ppid_"

  rt_sps=$(result_field samples_per_sec "$IT_TMP/lg-rt.out")
  pr_sps=$(result_field samples_per_sec "$IT_TMP/lg-prom.out")
  echo
  printf '  %-11s %14s %10s %10s %12s\n' server samples/s p50_ms p99_ms rss_MiB
  printf '  %-11s %14s %10s %10s %12d\n' ringtail "$rt_sps" "$(result_field p50_ms "$IT_TMP/lg-rt.out")" \
    "$(result_field p99_ms "$IT_TMP/lg-rt.out")" $((rt_rss / 1024))
  printf '  %-11s %14s %10s %10s %12d\n' prometheus "$pr_sps" "$(result_field p50_ms "$IT_TMP/lg-prom.out")" \
    "$(result_field p99_ms "$IT_TMP/lg-prom.out")" $((prom_rss / 1024))
  python3 -c "r, p = float('${rt_sps:-0}'), float('${pr_sps:-0}'); print('  ratio ringtail/prometheus: %s' % ('%.2fx' % (r / p) if p > 0 else 'n/a'))"
  echo
fi

# ---------------------------------------------------------------------------------------------
# 2. bytes per sample, node exporter data
if ! skipped disk; then
  command -v prometheus-node-exporter >/dev/null || { echo "prometheus-node-exporter missing"; exit 2; }
  echo "== 2. disk: Prometheus scraping itself and a node exporter every 1s for ${disk_seconds}s, remote-writing to ringtail"
  RT_PORT=
  rt_start "$IT_TMP/rt-disk" >/dev/null || exit 1
  nport=$(free_port)
  prometheus-node-exporter --web.listen-address=127.0.0.1:"$nport" >"$IT_TMP/node.log" 2>&1 &
  npid=$!
  track "$npid"
  pport=$(free_port)
  cat >"$IT_TMP/prom-disk.yml" <<EOF
global: {scrape_interval: 1s, scrape_timeout: 1s}
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: ['127.0.0.1:$pport']}]
  - job_name: node
    static_configs: [{targets: ['127.0.0.1:$nport']}]
remote_write:
  - url: $RT_URL/api/v1/push
    queue_config: {batch_send_deadline: 1s, max_shards: 1}
EOF
  prometheus --config.file="$IT_TMP/prom-disk.yml" --storage.tsdb.path="$IT_TMP/prom-disk" \
    --web.listen-address=127.0.0.1:"$pport" --log.level=warn >"$IT_TMP/prom-disk.log" 2>&1 &
  ppid_=$!
  track "$ppid_"
  wait_for 60 "prometheus ready" http_ok "http://127.0.0.1:$pport/-/ready" || exit 1
  end=$((SECONDS + disk_seconds))
  while [ "$SECONDS" -lt "$end" ] && kill -0 "$ppid_" 2>/dev/null; do
    sleep 1   # the benchmark runs for a fixed time by design
  done
  kill -TERM "$ppid_"; it_wait_exit "$ppid_" 60; untrack "$ppid_"
  kill -TERM "$npid"; it_wait_exit "$npid" 10; untrack "$npid"
  rt_stop >/dev/null
  # close every head chunk and compact, so the directory holds the data as it settles
  if [ -x "$build/flush_prog" ]; then
    "$build/flush_prog" "$IT_TMP/rt-disk" | sed 's/^/  /'
  else
    echo "  ($build/flush_prog not built: measuring the directory as ringtail left it)"
  fi
  "$RINGTAIL_BIN" dump -ingester.data-dir="$IT_TMP/rt-disk" >"$IT_TMP/disk-dump.txt" 2>/dev/null
  nsamples=$(grep -c '}' "$IT_TMP/disk-dump.txt")
  nseries=$(grep '}' "$IT_TMP/disk-dump.txt" | sed 's/}.*/}/' | sort -u | wc -l)
  total=$(dir_bytes "$IT_TMP/rt-disk")
  sst=$(find "$IT_TMP/rt-disk" -name '*.sst' -printf '%s\n' | awk '{s += $1} END {print s + 0}')
  logs=$(find "$IT_TMP/rt-disk" \( -name 'LOG' -o -name 'LOG.old*' \) -printf '%s\n' | awk '{s += $1} END {print s + 0}')
  prom_blocks=$(dir_bytes "$IT_TMP/prom-disk")
  echo "  ringtail stored $nsamples samples of $nseries series ($((nsamples / (nseries > 0 ? nseries : 1))) per series)"
  python3 - "$nsamples" "$total" "$sst" "$logs" "$prom_blocks" <<'EOF'
import sys
n, total, sst, logs, prom = (int(x) for x in sys.argv[1:])
if n == 0:
    print("  no samples stored: cannot compute bytes per sample")
    sys.exit(0)
print("  data directory: %d bytes = %.3f bytes/sample (RocksDB info logs excluded: %.3f)"
      % (total, total / n, (total - logs) / n))
print("  of which SST files: %d bytes = %.3f bytes/sample" % (sst, sst / n))
print("  (Prometheus' own directory for the same scrapes, WAL included: %d bytes = %.3f bytes/sample)"
      % (prom, prom / n))
EOF
  echo
fi

# ---------------------------------------------------------------------------------------------
# 3. resident memory per active series
if ! skipped memory; then
  echo "== 3. memory: $mem_series active series, $mem_samples samples each"
  RT_PORT=
  rt_start "$IT_TMP/rt-mem" >/dev/null || exit 1
  base=$(rss_kib "$RT_PID")
  "$LOADGEN_BIN" --url "$RT_URL/api/v1/push" --series "$mem_series" --samples-per-request 5000 \
    --concurrency 4 --rounds "$mem_samples" --duration 0 --step 15000 \
    --start-ts $(( $(date +%s) * 1000 - 3600 * 1000 )) | sed 's/^/  /'
  after=$(rss_kib "$RT_PID")
  active=$(rt_get /metrics | awk '/^ringtail_ingester_active_series/ {s += $2} END {print s + 0}')
  echo "  ringtail RSS: $((base / 1024)) MiB idle, $((after / 1024)) MiB with the series; active series metric: $active"
  python3 -c "print('  resident memory per active series: %.0f bytes' % (($after - $base) * 1024.0 / $mem_series))"
  rt_stop >/dev/null
  echo
fi
