#!/usr/bin/env bash
# query.sh - query benchmark: Ringtail against Prometheus 3 and VictoriaMetrics on the same data.
#
# Prints figures; it is not a test. On fresh temporary data directories and free loopback ports it
# starts `ringtail -target=all` (the Release build), Prometheus 3 (--web.enable-remote-write-receiver,
# an out-of-order window so no sample is refused for its age) and VictoriaMetrics
# (-search.disableCache), the peers found or built by scripts/peers.sh, and writes the same data
# into each with ringtail-loadgen (Ringtail /api/v1/push, the peers /api/v1/write):
#   - the main set: --series series (10,000) at 15 s over 7 h ending at T0, i.e. 6 h of queried
#     range plus 1 h before it, so that the windows of the first steps are full; with it, a
#     classic histogram set (lghist_bucket, --histograms histograms of 12 buckets each);
#   - the 7-day set: --week-series series (2,000) named lgweek_* at 60 s over 7 days + 1 h,
#     ending at T2 = T0 - 1 d - 4 h, older than anything the main set's queries read.
# Then bench/query.py waits until every server is idle (no compaction left), runs the query set
# (13 shapes as instant and 1 h / 6 h ranges at 60 s; two queries over every series, 3 h at 15 s;
# two 7-day ranges at 5 m over the second set), and prints one table: medians of --runs runs after
# a warm-up, the ratios Ringtail/Prometheus 3 and Ringtail/VictoriaMetrics, a check that every
# server returned the same number of points, and each server's RSS before, at its peak during,
# and after the query set.
#
# Usage: bench/query.sh [--quick] [--series N] [--histograms H] [--week-series N] [--runs R]
#                       [--heavy-runs R] [--only TEXT] [--peers LIST] [--build DIR]
#   --quick          200 series, 2 histograms, 100 week series, 1 run each: about a minute
#   --only TEXT      only the queries whose shape or expression holds TEXT
#   --peers LIST     comma-separated subset of prometheus3,victoria-metrics, or "none"
#   --build DIR      where ringtail and ringtail-loadgen are (build/)
# Peers are cached in $RINGTAIL_PEERS_DIR (~/.cache/ringtail-peers/bin); without Go, a peer that is
# not cached is left out with a message and the table has the servers that remain.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
series=10000
histograms=100
week_series=2000
runs=5
heavy_runs=3
only=
peers=prometheus3,victoria-metrics
build=$ROOT/build
while [ $# -gt 0 ]; do
  case $1 in
    --quick) series=200; histograms=2; week_series=100; runs=1; heavy_runs=1 ;;
    --series) series=$2; shift ;;
    --histograms) histograms=$2; shift ;;
    --week-series) week_series=$2; shift ;;
    --runs) runs=$2; shift ;;
    --heavy-runs) heavy_runs=$2; shift ;;
    --only) only=$2; shift ;;
    --peers) peers=$2; shift ;;
    --build) build=$2; shift ;;
    -h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ "$peers" = none ] && peers=
export RINGTAIL_BIN=$build/ringtail LOADGEN_BIN=$build/ringtail-loadgen
# lib.bash: temporary directory, free ports, polling waits, and the EXIT trap that stops every
# tracked process and removes the temporary directory.
# shellcheck source=../tests/integration/lib.bash
source "$ROOT/tests/integration/lib.bash"

for b in "$RINGTAIL_BIN" "$LOADGEN_BIN"; do
  [ -x "$b" ] || { echo "missing $b: build with cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2"; exit 2; }
done
grep -q 'CMAKE_BUILD_TYPE:STRING=Release' "$build/CMakeCache.txt" 2>/dev/null ||
  echo "warning: $build is not a Release build; Ringtail's figures will not mean much"

declare -A BIN
for p in ${peers//,/ }; do
  case $p in prometheus3 | victoria-metrics) ;; *) echo "unknown peer $p" >&2; exit 2 ;; esac
  if path=$("$ROOT/scripts/peers.sh" "$p"); then
    BIN[$p]=$path
  else
    echo "leaving $p out of the comparison (scripts/peers.sh $p failed, see above)"
  fi
done

# Ports handed out in this run, so that two servers never get the same one.
USED_PORTS=" "
new_port() {
  local p
  while :; do
    p=$(free_port)
    case $USED_PORTS in *" $p "*) continue ;; esac
    USED_PORTS+="$p "
    echo "$p"
    return 0
  done
}

# wait_ready NAME PID URL LOG: polls URL (deadline 60 s) while the process lives.
wait_ready() {
  local name=$1 pid=$2 url=$3 log=$4 end=$((SECONDS + 60))
  while ! http_ok "$url"; do
    if ! kill -0 "$pid" 2>/dev/null || [ "$SECONDS" -ge "$end" ]; then
      echo "$name did not become ready; last lines of its log:"
      tail -n 20 "$log"
      exit 1
    fi
    sleep 0.1
  done
}

result_field() { sed -n "s/.*RESULT.* $1=\([^ ]*\).*/\1/p" "$2" | tail -n1; }

now=$(date +%s)
T0=$(( (now - 120) / 300 * 300 ))
T2=$(( T0 - 86400 - 4 * 3600 ))
main_samples=$(( 7 * 3600 / 15 ))           # 1680 samples, the last one at T0
week_samples=$(( (7 * 86400 + 3600) / 60 )) # 10140 samples, the last one at T2

echo "query benchmark on $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "ringtail: $("$RINGTAIL_BIN" -version 2>&1 | head -n1) ($build)"
for n in prometheus3 victoria-metrics; do
  [ -n "${BIN[$n]:-}" ] || continue
  # the module version recorded in the binary, else what it says of itself
  v=$(go version -m "${BIN[$n]}" 2>/dev/null | awk '$1 == "mod" {print $2 "@" $3; exit}')
  echo "$n: ${v:-$("${BIN[$n]}" --version 2>&1 | head -n1)} (${BIN[$n]})"
done
echo "main set: $series series + $histograms histograms x 12 buckets, $main_samples samples at 15 s ending at $T0 ($(date -u -d "@$T0" +%FT%TZ))"
echo "7-day set: $week_series series, $week_samples samples at 60 s ending at $T2 ($(date -u -d "@$T2" +%FT%TZ))"
echo

# ---------------------------------------------------------------------------------------------
# servers
SERVERS=()
RT_PORT=$(new_port)
rt_start "$IT_TMP/ringtail" -validation.reject-old-samples.max-age=30d >/dev/null || exit 1
SERVERS+=("ringtail,$RT_URL,$RT_PID")
declare -A WRITE_URL=([ringtail]=$RT_URL/api/v1/push)

if [ -n "${BIN[prometheus3]:-}" ]; then
  port=$(new_port)
  # The out-of-order window lets Prometheus take a sample older than its head's newest minus 1 h,
  # which the load generator's connections may send as they run at their own pace.
  cat >"$IT_TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1h
storage:
  tsdb:
    out_of_order_time_window: 30d
EOF
  "${BIN[prometheus3]}" --config.file="$IT_TMP/prometheus.yml" --storage.tsdb.path="$IT_TMP/prometheus" \
    --storage.tsdb.retention.time=1y --web.listen-address=127.0.0.1:"$port" \
    --web.enable-remote-write-receiver --log.level=warn >"$IT_TMP/prometheus.log" 2>&1 </dev/null &
  pid=$!
  track "$pid"
  wait_ready prometheus3 "$pid" "http://127.0.0.1:$port/-/ready" "$IT_TMP/prometheus.log"
  SERVERS+=("prometheus3,http://127.0.0.1:$port,$pid")
  WRITE_URL[prometheus3]=http://127.0.0.1:$port/api/v1/write
fi

if [ -n "${BIN[victoria-metrics]:-}" ]; then
  port=$(new_port)
  "${BIN[victoria-metrics]}" -storageDataPath="$IT_TMP/victoria-metrics" -retentionPeriod=1y \
    -httpListenAddr=127.0.0.1:"$port" -search.disableCache -loggerLevel=WARN \
    >"$IT_TMP/victoria-metrics.log" 2>&1 </dev/null &
  pid=$!
  track "$pid"
  wait_ready victoria-metrics "$pid" "http://127.0.0.1:$port/health" "$IT_TMP/victoria-metrics.log"
  SERVERS+=("victoria-metrics,http://127.0.0.1:$port,$pid")
  WRITE_URL[victoria-metrics]=http://127.0.0.1:$port/api/v1/write
fi

# ---------------------------------------------------------------------------------------------
# data: the 7-day set first, then the main set, so every series receives its samples in time order
# and each server's newest data only moves forward.
load() { # load SERVER NAME LOADGEN-ARGS...: one loadgen run; fails when a sample was not accepted
  local srv=$1 what=$2
  shift 2
  local out=$IT_TMP/load-$srv-$what.out
  "$LOADGEN_BIN" --url "${WRITE_URL[$srv]}" --concurrency 2 --duration 0 --max-retries 3 "$@" >"$out" 2>&1
  local ok failed rejected
  ok=$(result_field samples_ok "$out")
  failed=$(result_field requests_failed "$out")
  rejected=$(result_field requests_rejected "$out")
  printf '  %-17s %-6s %10s samples accepted in %ss (%s samples/s)\n' "$srv" "$what" "${ok:-?}" \
    "$(result_field elapsed_s "$out")" "$(result_field samples_per_sec "$out")"
  if [ "${failed:-1}" != 0 ] || [ "${rejected:-1}" != 0 ]; then
    echo "  $srv refused part of the $what set ($failed failed, $rejected rejected requests):"
    grep -i 'error' "$out" | head -n 5 | sed 's/^/    /'
    return 1
  fi
}
echo "== loading"
for srv in ringtail prometheus3 victoria-metrics; do
  [ -n "${WRITE_URL[$srv]:-}" ] || continue
  load "$srv" week --series "$week_series" --metric-prefix lgweek --rounds "$week_samples" \
    --start-ts $(( (T2 - (week_samples - 1) * 60) * 1000 )) --step 60000 \
    --samples-per-series 60 --samples-per-request 6000 || exit 1
  load "$srv" main --series "$series" --metric-prefix loadgen --rounds "$main_samples" \
    --start-ts $(( (T0 - (main_samples - 1) * 15) * 1000 )) --step 15000 \
    --samples-per-series 10 --samples-per-request 5000 || exit 1
  load "$srv" hist --series $((histograms * 12)) --histogram-buckets 12 --metric-prefix lghist \
    --rounds "$main_samples" --start-ts $(( (T0 - (main_samples - 1) * 15) * 1000 )) --step 15000 \
    --samples-per-series 10 --samples-per-request 5000 || exit 1
done
if [ -n "${WRITE_URL[victoria-metrics]:-}" ]; then
  # VictoriaMetrics makes recent rows searchable after a flush interval; ask for it now
  curl -sf -o /dev/null "${WRITE_URL[victoria-metrics]%/api/v1/write}/internal/force_flush" ||
    echo "  warning: VictoriaMetrics /internal/force_flush failed"
fi
echo

# ---------------------------------------------------------------------------------------------
echo "== queries"
args=(--t0 "$T0" --t2 "$T2" --runs "$runs" --heavy-runs "$heavy_runs" --json "$IT_TMP/query.json")
[ -n "$only" ] && args+=(--only "$only")
for s in "${SERVERS[@]}"; do args+=(--server "$s"); done
python3 "$ROOT/bench/query.py" "${args[@]}"
