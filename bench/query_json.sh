#!/usr/bin/env bash
# query_json.sh - response time of big range queries (the JSON answer included), one build
# against another on the same data.
#
# Loads --series series x --samples samples at a 15 s step (ringtail-loadgen, ending now) into
# `ringtail -target=all` of --build, stops it cleanly, and copies the data directory once per
# build. Then every build (--build, and --baseline when given) serves its copy at the same time
# and each query is asked of each in turn: one warm-up, then --runs timed rounds (curl's
# time_total); prints per query and build the median and fastest ms, the response size, and
# whether the builds answered byte for byte the same.
#
# Usage: bench/query_json.sh [--build DIR] [--baseline DIR] [--series N] [--samples K]
#                            [--runs R] [--step S]
# Defaults: build/, no baseline, 2000 series x 1440 samples (6 h), 7 runs, step 60 (seconds).
# It prints figures; it is not a test.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
build=$ROOT/build
baseline=
series=2000
samples=1440
runs=7
step=60
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift ;;
    --baseline) baseline=$2; shift ;;
    --series) series=$2; shift ;;
    --samples) samples=$2; shift ;;
    --runs) runs=$2; shift ;;
    --step) step=$2; shift ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
case $build in /*) ;; *) build=$PWD/$build ;; esac
case $baseline in /*|'') ;; *) baseline=$PWD/$baseline ;; esac
export RINGTAIL_BIN=$build/ringtail LOADGEN_BIN=$build/ringtail-loadgen
# shellcheck source=../tests/integration/lib.bash
source "$ROOT/tests/integration/lib.bash"
trap - INT TERM

builds=("$build")
[ -n "$baseline" ] && builds=("$baseline" "$build")
for b in "${builds[@]}"; do
  [ -x "$b/ringtail" ] || { echo "missing $b/ringtail: build with cmake -S . -B DIR -DCMAKE_BUILD_TYPE=Release && cmake --build DIR -j2"; exit 2; }
done
[ -x "$LOADGEN_BIN" ] || { echo "missing $LOADGEN_BIN"; exit 2; }

echo "query_json on $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg); $series series x $samples samples at 15 s"
now_ms=$(( $(date +%s) * 1000 ))
start_ts=$(( now_ms - samples * 15000 ))
rt_start "$IT_TMP/data" || exit 1
"$LOADGEN_BIN" --url "$RT_URL/api/v1/push" --series "$series" --rounds "$samples" --duration 0 \
  --start-ts "$start_ts" --step 15000 --concurrency 2 --quiet >"$IT_TMP/loadgen.out" 2>&1 ||
  { cat "$IT_TMP/loadgen.out"; exit 1; }
cat "$IT_TMP/loadgen.out"
kill -TERM "$RT_PID"
it_wait_exit "$RT_PID" 120 || { echo "ringtail did not stop"; exit 1; }
untrack "$RT_PID"

urls=()
for i in "${!builds[@]}"; do
  cp -a "$IT_TMP/data" "$IT_TMP/data.$i"
  RINGTAIL_BIN=${builds[$i]}/ringtail
  RT_PORT=
  rt_start "$IT_TMP/data.$i" || exit 1
  urls+=("$RT_URL")
done

start_s=$(( start_ts / 1000 ))
end_s=$(( start_s + (samples - 1) * 15 ))
queries=('{__name__=~"loadgen_.+"}' 'rate({__name__=~"loadgen_.+"}[5m])' '{__name__=~"loadgen_.+"} / 3')

# ask I QUERY OUT: one query_range to build I; prints "seconds bytes"
ask() {
  curl -s -o "$3" -w '%{time_total} %{size_download}\n' --max-time 600 "${urls[$1]}/api/v1/query_range" \
    --data-urlencode "query=$2" --data-urlencode "start=$start_s" --data-urlencode "end=$end_s" \
    --data-urlencode "step=$step"
}

printf '%-44s %-34s %10s %10s %12s\n' query build median_ms min_ms bytes
for q in "${queries[@]}"; do
  declare -A times=()
  for i in "${!builds[@]}"; do
    ask "$i" "$q" "$IT_TMP/out.$i" >/dev/null
    times[$i]=
  done
  for ((r = 0; r < runs; r++)); do
    for i in "${!builds[@]}"; do
      read -r t n < <(ask "$i" "$q" "$IT_TMP/out.$i")
      times[$i]="${times[$i]} $t"
      bytes[$i]=$n
    done
  done
  for i in "${!builds[@]}"; do
    read -r med min < <(printf '%s\n' ${times[$i]} | sort -g | awk '{a[NR]=$1} END {printf "%.0f %.0f\n", a[int((NR+1)/2)]*1000, a[1]*1000}')
    printf '%-44s %-34s %10s %10s %12s\n' "$q" "${builds[$i]#"$ROOT"/}" "$med" "$min" "${bytes[$i]}"
  done
  if [ ${#builds[@]} = 2 ]; then
    if cmp -s "$IT_TMP/out.0" "$IT_TMP/out.1"; then
      echo "  the two builds answered byte for byte the same"
    else
      echo "  the answers DIFFER: $(cmp "$IT_TMP/out.0" "$IT_TMP/out.1" | head -1)"
    fi
  fi
  grep -q '"status":"success"' "$IT_TMP/out.0" || { echo "  query failed: $(head -c 300 "$IT_TMP/out.0")"; }
  unset times
done
