#!/usr/bin/env bash
# cluster.sh - a local Ringtail cluster on loopback, one process per role instance.
#
#   scripts/cluster.sh up              build if needed, start 3 zones x 2 ingesters, 2 distributors
#                                      and 2 queriers; ends with the line
#                                      distributor=http://127.0.0.1:PORT querier=http://127.0.0.1:PORT
#   scripts/cluster.sh down            stop every process (SIGTERM, then SIGKILL after 10 s)
#   scripts/cluster.sh status          one line per process: role zone pid address ring-state
#   scripts/cluster.sh stop-zone Z     SIGKILL every process of zone Z (a, b or c)
#   scripts/cluster.sh start-zone Z    start zone Z's processes again on their old data
#   scripts/cluster.sh freeze-zone Z   SIGSTOP zone Z's processes (a partition, as others see it)
#   scripts/cluster.sh thaw-zone Z     SIGCONT them
#   scripts/cluster.sh stop NAME | start NAME   one process (ing-a1, dist-1, qry-2, ...);
#                                      ing-a3, ing-b3, ing-c3 are spare ingesters that `up` does
#                                      not start: `start ing-a3` adds a third ingester to zone a
#   scripts/cluster.sh clean           down, then remove the cluster directory
#
# Environment: RT_CLUSTER_DIR (data, logs, pids; default ./.cluster), RT_CLUSTER_PORT (first
# port, default 27300), RT_BUILD_DIR (default ./build), RT_HEARTBEAT_TIMEOUT (10s),
# RT_CLUSTER_ARGS (extra flags for every process).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${RT_BUILD_DIR:-$ROOT/build}
DIR=${RT_CLUSTER_DIR:-$ROOT/.cluster}
BASE=${RT_CLUSTER_PORT:-27300}
HB_TIMEOUT=${RT_HEARTBEAT_TIMEOUT:-10s}
EXTRA=${RT_CLUSTER_ARGS:-}
BIN=$BUILD/ringtail
ZONES=(a b c)
INGESTERS=(ing-a1 ing-a2 ing-b1 ing-b2 ing-c1 ing-c2)
OTHERS=(dist-1 dist-2 qry-1 qry-2)
EXTRA_INGESTERS=(ing-a3 ing-b3 ing-c3) # not started by up: `start ing-a3` grows zone a

die() { echo "cluster.sh: $*" >&2; exit 1; }

# Ports of process NAME: http rpc gossip.
ports() {
  local name=$1 i
  case $name in
    ing-a1) i=0 ;; ing-a2) i=1 ;; ing-b1) i=2 ;; ing-b2) i=3 ;; ing-c1) i=4 ;; ing-c2) i=5 ;;
    dist-1) i=6 ;; dist-2) i=7 ;; qry-1) i=8 ;; qry-2) i=9 ;;
    ing-a3) i=10 ;; ing-b3) i=11 ;; ing-c3) i=12 ;;
    *) die "unknown process $name" ;;
  esac
  echo $((BASE + i)) $((BASE + 20 + i)) $((BASE + 40 + i))
}

role_of() { case $1 in ing-*) echo ingester ;; dist-*) echo distributor ;; qry-*) echo querier ;; esac; }
zone_of() { case $1 in ing-?[0-9]) echo "${1:4:1}" ;; *) echo - ;; esac; }
join_list() {
  local out="" n
  for n in ing-a1 ing-b1 ing-c1; do
    read -r _ _ g < <(ports $n)
    out+="${out:+,}tcp://127.0.0.1:$g"
  done
  echo "$out"
}

pid_of() { [ -f "$DIR/$1.pid" ] && cat "$DIR/$1.pid"; }
alive() { local p; p=$(pid_of "$1") && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

build_if_needed() {
  if [ ! -x "$BIN" ]; then
    echo "building Ringtail in $BUILD" >&2
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null || die "cmake failed"
    cmake --build "$BUILD" -j2 --target ringtail >/dev/null || die "build failed"
  fi
}

start_one() {
  local name=$1 http rpc gossip
  alive "$name" && return 0
  read -r http rpc gossip < <(ports "$name")
  local role port; role=$(role_of "$name")
  for port in $http $rpc $gossip; do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
      die "port $port (for $name) is taken by another process; set RT_CLUSTER_PORT"
  done
  mkdir -p "$DIR/$name"
  local target=$role
  [ "$role" = ingester ] && target=ingester,compactor # the data lifecycle runs with each ingester
  local args=(-target="$target" -server.http-listen-address=127.0.0.1 -server.http-listen-port="$http"
    -ring.join="$(join_list)" -ring.gossip-listen-address="tcp://127.0.0.1:$gossip"
    -ring.heartbeat-period=1s -ring.heartbeat-timeout="$HB_TIMEOUT" -ring.gossip-interval=500ms
    -ingester.data-dir="$DIR/$name/data")
  if [ "$role" = distributor ]; then
    args+=(-ring.instance-id="$name")
  fi
  if [ "$role" = ingester ]; then
    args+=(-ring.instance-id="$name" -ring.zone="$(zone_of "$name")"
      -server.rpc-listen-address="tcp://127.0.0.1:$rpc" -ingester.wal-sync=none)
  fi
  # shellcheck disable=SC2086
  setsid "$BIN" "${args[@]}" $EXTRA >>"$DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$DIR/$name.pid"
}

# Waits until NAME answers /ready (deadline 30 s).
wait_ready() {
  local name=$1 http end=$((SECONDS + 30))
  read -r http _ _ < <(ports "$name")
  while [ $SECONDS -lt $end ]; do
    alive "$name" || die "$name exited; see $DIR/$name.log"
    curl -sf -o /dev/null "http://127.0.0.1:$http/ready" && return 0
    sleep 0.1
  done
  die "$name is not ready after 30 s; see $DIR/$name.log"
}

# The ring as JSON from the first process that answers.
ring_json() {
  local n http
  for n in "${OTHERS[@]}" "${INGESTERS[@]}" "${EXTRA_INGESTERS[@]}"; do
    alive "$n" || continue
    read -r http _ _ < <(ports "$n")
    curl -sf --max-time 2 "http://127.0.0.1:$http/ring?format=json" && return 0
  done
  return 1
}

# Waits until the given ingesters are ACTIVE and healthy in the ring as a querier sees it.
wait_active() {
  local end=$((SECONDS + 30)) want="$*" js
  while [ $SECONDS -lt $end ]; do
    js=$(ring_json) && python3 - "$want" "$js" <<'EOF' && return 0
import json, sys
want = sys.argv[1].split()
r = json.loads(sys.argv[2])
st = {i["id"]: (i["state"], i["healthy"]) for i in r["instances"]}
sys.exit(0 if all(st.get(w) == ("ACTIVE", True) for w in want) else 1)
EOF
    sleep 0.2
  done
  die "ingesters $want are not ACTIVE after 30 s"
}

cmd_up() {
  build_if_needed
  mkdir -p "$DIR"
  local n
  for n in "${INGESTERS[@]}"; do start_one "$n"; done
  for n in "${INGESTERS[@]}"; do wait_ready "$n"; done
  for n in "${OTHERS[@]}"; do start_one "$n"; done
  for n in "${OTHERS[@]}"; do wait_ready "$n"; done
  wait_active "${INGESTERS[@]}"
  local d q
  read -r d _ _ < <(ports dist-1)
  read -r q _ _ < <(ports qry-1)
  echo "distributor=http://127.0.0.1:$d querier=http://127.0.0.1:$q"
}

stop_one() {
  local name=$1 sig=${2:-TERM} p
  p=$(pid_of "$name") || return 0
  [ -n "$p" ] && kill -"$sig" "$p" 2>/dev/null
  return 0
}

cmd_down() {
  local n end
  for n in "${OTHERS[@]}" "${INGESTERS[@]}" "${EXTRA_INGESTERS[@]}"; do
    alive "$n" && kill -CONT "$(pid_of "$n")" 2>/dev/null
    stop_one "$n" TERM
  done
  end=$((SECONDS + 10))
  for n in "${OTHERS[@]}" "${INGESTERS[@]}" "${EXTRA_INGESTERS[@]}"; do
    while alive "$n" && [ $SECONDS -lt $end ]; do sleep 0.1; done
    alive "$n" && stop_one "$n" KILL
    rm -f "$DIR/$n.pid"
  done
  return 0
}

cmd_status() {
  local js n http p state
  js=$(ring_json || echo '{"instances":[]}')
  local extra=()
  for n in "${EXTRA_INGESTERS[@]}"; do [ -f "$DIR/$n.pid" ] && extra+=("$n"); done
  for n in "${INGESTERS[@]}" "${extra[@]+"${extra[@]}"}" "${OTHERS[@]}"; do
    read -r http _ _ < <(ports "$n")
    p=$(pid_of "$n" || true)
    if alive "$n"; then
      if [ "$(ps -o stat= -p "$p" | cut -c1)" = T ]; then state=stopped; else state=running; fi
    else
      state=down p=-
    fi
    if [ "$(role_of "$n")" = ingester ]; then
      state=$(python3 -c '
import json, sys
r = json.loads(sys.argv[1])
for i in r["instances"]:
    if i["id"] == sys.argv[2]:
        print(i["state"] + ("" if i["healthy"] else ",unhealthy")); break
else:
    print("absent")' "$js" "$n")/$state
    fi
    printf '%-12s %-5s %-8s %-24s %s\n' "$(role_of "$n")" "$(zone_of "$n")" "${p:--}" \
      "127.0.0.1:$http" "$state"
  done
}

zone_members() {
  local z=$1 n
  case $z in a|b|c) ;; *) die "zone must be a, b or c" ;; esac
  for n in "${INGESTERS[@]}"; do [ "$(zone_of "$n")" = "$z" ] && echo "$n"; done
  for n in "${EXTRA_INGESTERS[@]}"; do
    [ "$(zone_of "$n")" = "$z" ] && [ -f "$DIR/$n.pid" ] && echo "$n"
  done
}

cmd_stop_zone() {
  local n
  for n in $(zone_members "$1"); do
    stop_one "$n" KILL
  done
  for n in $(zone_members "$1"); do
    local end=$((SECONDS + 10))
    while alive "$n" && [ $SECONDS -lt $end ]; do sleep 0.05; done
  done
}

cmd_start_zone() {
  build_if_needed
  local n members
  members=$(zone_members "$1")
  for n in $members; do start_one "$n"; done
  for n in $members; do wait_ready "$n"; done
  # shellcheck disable=SC2086
  wait_active $members
}

cmd_signal_zone() {
  local n
  for n in $(zone_members "$1"); do
    alive "$n" && kill -"$2" "$(pid_of "$n")"
  done
  return 0
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  stop-zone) [ $# -eq 2 ] || die "usage: stop-zone a|b|c"; cmd_stop_zone "$2" ;;
  start-zone) [ $# -eq 2 ] || die "usage: start-zone a|b|c"; cmd_start_zone "$2" ;;
  freeze-zone) [ $# -eq 2 ] || die "usage: freeze-zone a|b|c"; cmd_signal_zone "$2" STOP ;;
  thaw-zone) [ $# -eq 2 ] || die "usage: thaw-zone a|b|c"; cmd_signal_zone "$2" CONT ;;
  stop) [ $# -eq 2 ] || die "usage: stop NAME"; stop_one "$2" KILL ;;
  start)
    [ $# -eq 2 ] || die "usage: start NAME"; build_if_needed; start_one "$2"; wait_ready "$2"
    [ "$(role_of "$2")" = ingester ] && wait_active "$2"
    ;;
  clean) cmd_down; rm -rf "$DIR" ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
