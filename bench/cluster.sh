#!/usr/bin/env bash
# cluster.sh - ingestion benchmark of a replicated Ringtail cluster on one machine.
#
# Prints figures; it is not a test. In one run, on fresh temporary data directories and free
# loopback ports, the same ringtail-loadgen workload (requests built before the clock starts)
# is sent to:
#   1. an RF=3 cluster: 3 ingesters, one per zone (a, b, c), and 1 distributor, each its own
#      process (loadgen -> distributor /api/v1/push -> 3 ingesters over ZeroMQ);
#   2. a single `ringtail -target=all` process (/api/v1/push);
#   3. Prometheus with --web.enable-remote-write-receiver (/api/v1/write).
# For each: samples/s, p50/p99 latency and CPU-seconds per million samples of every server
# process (utime+stime from /proc/PID/stat before and after the run); then the ratios
# cluster/Prometheus and cluster/single. The cluster stores every sample three times.
#
# Usage: bench/cluster.sh [--series N] [--rounds R] [--samples-per-request S]
#                         [--concurrency C] [--duration S] [--build DIR]
#   defaults: 20000 series x 1000 samples (20M samples), 2000 samples/request, 4 connections,
#   at most 90 s per server; a run takes about 2-3 minutes.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
series=20000
rounds=1000
spr=2000
concurrency=4
duration=90
build=$ROOT/build
while [ $# -gt 0 ]; do
  case $1 in
    --series) series=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --samples-per-request) spr=$2; shift ;;
    --concurrency) concurrency=$2; shift ;;
    --duration) duration=$2; shift ;;
    --build) build=$2; shift ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
export RINGTAIL_BIN=$build/ringtail LOADGEN_BIN=$build/ringtail-loadgen
# lib.bash: temporary directory, free ports, polling waits, and the EXIT trap that stops every
# tracked process and removes the temporary directory.
# shellcheck source=../tests/integration/lib.bash
source "$ROOT/tests/integration/lib.bash"

for b in "$RINGTAIL_BIN" "$LOADGEN_BIN"; do
  [ -x "$b" ] || { echo "missing $b: build with cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2"; exit 2; }
done
command -v prometheus >/dev/null || { echo "prometheus is not installed (scripts/install-deps.sh)"; exit 2; }

HZ=$(getconf CLK_TCK)
# cpu_ticks PID: utime+stime of a process in clock ticks (fields 14 and 15 of /proc/PID/stat;
# the command name in field 2 may hold spaces, so count from its closing parenthesis).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
result_field() { sed -n "s/.*RESULT.* $1=\([^ ]*\).*/\1/p" "$2" | tail -n1; }

# Ports handed out in this run, so that two processes never get the same one.
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

# start_bg NAME CMD...: starts a server in the background with its log in $IT_TMP/NAME.log;
# sets BG_PID.
start_bg() {
  local name=$1
  shift
  "$@" >"$IT_TMP/$name.log" 2>&1 </dev/null &
  BG_PID=$!
  track "$BG_PID"
}

# wait_ready NAME PID URL: polls URL (deadline 60 s) while the process lives.
wait_ready() {
  local name=$1 pid=$2 url=$3 end=$((SECONDS + 60))
  while ! http_ok "$url"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$name exited during start-up; last lines of its log:"
      tail -n 20 "$IT_TMP/$name.log"
      exit 1
    fi
    if [ "$SECONDS" -ge "$end" ]; then
      echo "$name not ready after 60 s; last lines of its log:"
      tail -n 20 "$IT_TMP/$name.log"
      exit 1
    fi
    sleep 0.1
  done
}

# ring_active URL N: the ring as URL serves it has N ACTIVE and healthy ingesters.
ring_active() {
  local js
  js=$(curl -sf --max-time 2 "$1/ring?format=json") || return 1
  python3 - "$2" "$js" <<'EOF'
import json, sys
r = json.loads(sys.argv[2])
n = sum(1 for i in r["instances"] if i["state"] == "ACTIVE" and i["healthy"])
sys.exit(0 if n >= int(sys.argv[1]) else 1)
EOF
}

# stop_pid PID: SIGTERM, wait up to 30 s, then SIGKILL.
stop_pid() {
  kill -TERM "$1" 2>/dev/null
  it_wait_exit "$1" 30 || { kill -KILL "$1" 2>/dev/null; it_wait_exit "$1" 5; }
  untrack "$1"
}

start_ts=$(( ($(date +%s) - 60) * 1000 - rounds * 15000 ))
lg_args=(--series "$series" --rounds "$rounds" --pregen --samples-per-request "$spr"
         --concurrency "$concurrency" --duration "$duration" --start-ts "$start_ts" --step 15000
         --max-retries 0)

# run_load NAME URL PID...: the loadgen run against URL, with the CPU time of each PID
# measured around it. Writes $IT_TMP/lg-NAME.out and $IT_TMP/cpu-NAME (one "pid seconds" line
# per process).
run_load() {
  local name=$1 url=$2
  shift 2
  local pids=("$@") before=() i
  for i in "${!pids[@]}"; do before[i]=$(cpu_ticks "${pids[i]}"); done
  "$LOADGEN_BIN" --url "$url" "${lg_args[@]}" >"$IT_TMP/lg-$name.out" 2>&1
  : >"$IT_TMP/cpu-$name"
  for i in "${!pids[@]}"; do
    echo "${pids[i]} $(awk -v a="${before[i]}" -v b="$(cpu_ticks "${pids[i]}")" -v hz="$HZ" \
      'BEGIN {printf "%.2f", (b - a) / hz}')" >>"$IT_TMP/cpu-$name"
  done
  sed 's/^/    /' "$IT_TMP/lg-$name.out"
}

echo "cluster ingest benchmark on $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, load average $(cut -d' ' -f1-3 /proc/loadavg); $(prometheus --version 2>&1 | head -n1)"
echo "workload: $series series x $rounds samples, $spr samples/request, $concurrency connections, at most ${duration}s per server (ringtail-loadgen --pregen, no retries)"
echo

# ---------------------------------------------------------------------------------------------
# 1. RF=3 cluster: 3 ingesters (zones a, b, c) + 1 distributor
echo "== 1. cluster: 3 ingesters (zones a, b, c), 1 distributor, replication factor 3"
declare -A GOSSIP RPC HTTP
join=""
for z in a b c; do
  HTTP[$z]=$(new_port); RPC[$z]=$(new_port); GOSSIP[$z]=$(new_port)
  join+="${join:+,}tcp://127.0.0.1:${GOSSIP[$z]}"
done
ring_flags=(-ring.join="$join" -ring.replication-factor=3 -ring.heartbeat-period=1s
            -ring.gossip-interval=500ms)
ING_PIDS=()
for z in a b c; do
  start_bg "ing-$z" "$RINGTAIL_BIN" -target=ingester,compactor -server.http-listen-address=127.0.0.1 \
    -server.http-listen-port="${HTTP[$z]}" -server.rpc-listen-address="tcp://127.0.0.1:${RPC[$z]}" \
    -ring.gossip-listen-address="tcp://127.0.0.1:${GOSSIP[$z]}" -ring.instance-id="ing-$z" \
    -ring.zone="$z" -ingester.data-dir="$IT_TMP/ing-$z" "${ring_flags[@]}"
  ING_PIDS+=("$BG_PID")
done
dist_http=$(new_port)
dist_gossip=$(new_port)
start_bg dist "$RINGTAIL_BIN" -target=distributor -server.http-listen-address=127.0.0.1 \
  -server.http-listen-port="$dist_http" -ring.gossip-listen-address="tcp://127.0.0.1:$dist_gossip" \
  -ingester.data-dir="$IT_TMP/dist" "${ring_flags[@]}"
DIST_PID=$BG_PID
i=0
for z in a b c; do
  wait_ready "ing-$z" "${ING_PIDS[i]}" "http://127.0.0.1:${HTTP[$z]}/ready"
  i=$((i + 1))
done
wait_ready dist "$DIST_PID" "http://127.0.0.1:$dist_http/ready"
wait_for 60 "3 ACTIVE ingesters in the distributor's ring" \
  ring_active "http://127.0.0.1:$dist_http" 3 || exit 1
run_load cluster "http://127.0.0.1:$dist_http/api/v1/push" "$DIST_PID" "${ING_PIDS[@]}"
stop_pid "$DIST_PID"
for p in "${ING_PIDS[@]}"; do stop_pid "$p"; done
echo

# ---------------------------------------------------------------------------------------------
# 2. single process
echo "== 2. single process: ringtail -target=all"
RT_PORT=$(new_port)
rt_start "$IT_TMP/single" >/dev/null || exit 1
run_load single "$RT_URL/api/v1/push" "$RT_PID"
rt_stop >/dev/null
echo

# ---------------------------------------------------------------------------------------------
# 3. Prometheus' remote-write receiver
echo "== 3. prometheus --web.enable-remote-write-receiver"
pport=$(new_port)
printf 'global:\n  scrape_interval: 1h\n' >"$IT_TMP/prom.yml"
start_bg prom prometheus --config.file="$IT_TMP/prom.yml" --storage.tsdb.path="$IT_TMP/prom-data" \
  --web.listen-address=127.0.0.1:"$pport" --web.enable-remote-write-receiver --log.level=warn
PROM_PID=$BG_PID
wait_ready prom "$PROM_PID" "http://127.0.0.1:$pport/-/ready"
run_load prom "http://127.0.0.1:$pport/api/v1/write" "$PROM_PID"
stop_pid "$PROM_PID"
echo

# ---------------------------------------------------------------------------------------------
echo "== results"
for n in cluster single prom; do
  echo "$n $(result_field samples_per_sec "$IT_TMP/lg-$n.out") $(result_field samples_ok "$IT_TMP/lg-$n.out")" \
    "$(result_field p50_ms "$IT_TMP/lg-$n.out") $(result_field p99_ms "$IT_TMP/lg-$n.out")" \
    "$(result_field requests_failed "$IT_TMP/lg-$n.out") $(result_field requests_rejected "$IT_TMP/lg-$n.out")" \
    "$(awk '{printf "%s,", $2}' "$IT_TMP/cpu-$n")"
done | python3 -c '
import sys
rows = {}
for line in sys.stdin:
    f = line.split()
    if len(f) < 8:
        print("  incomplete results for", f[0] if f else "?"); continue
    rows[f[0]] = dict(sps=float(f[1] or 0), ok=int(f[2] or 0), p50=f[3], p99=f[4], failed=f[5],
                      rejected=f[6], cpu=[float(x) for x in f[7].split(",") if x])
def per_m(cpu, ok):
    return "%.2f" % (cpu / ok * 1e6) if ok else "n/a"
names = {"cluster": "cluster RF=3", "single": "single", "prom": "prometheus"}
print("  %-13s %12s %11s %8s %8s %7s %16s" % ("server", "samples/s", "samples", "p50_ms", "p99_ms",
                                             "failed", "CPU-s per 1M"))
for n in ("cluster", "single", "prom"):
    r = rows.get(n)
    if not r:
        continue
    print("  %-13s %12.0f %11d %8.2f %8.2f %7s %16s" % (names[n], r["sps"], r["ok"], float(r["p50"] or 0),
          float(r["p99"] or 0), int(r["failed"] or 0) + int(r["rejected"] or 0),
          per_m(sum(r["cpu"]), r["ok"])))
c = rows.get("cluster")
if c and len(c["cpu"]) == 4:
    print()
    print("  cluster CPU (CPU-seconds during the run; per 1M samples accepted):")
    for label, cpu in zip(("distributor", "ingester a", "ingester b", "ingester c"), c["cpu"]):
        print("    %-12s %8.2f s  %8s s/1M" % (label, cpu, per_m(cpu, c["ok"])))
print()
def ratio(a, b):
    ra, rb = rows.get(a), rows.get(b)
    return "%.2fx" % (ra["sps"] / rb["sps"]) if ra and rb and rb["sps"] > 0 else "n/a"
print("  ratio cluster/prometheus: %s" % ratio("cluster", "prom"))
print("  ratio cluster/single:     %s" % ratio("cluster", "single"))
print("  (the cluster stores each sample 3 times; single and prometheus once)")
'
