#!/usr/bin/env bash
# peers.sh - finds or builds the peer servers that benchmarks and comparison tests run beside
# Ringtail, and prints the path of one.
#
# Usage: scripts/peers.sh [--no-build] prometheus3|promtool3|victoria-metrics
#        scripts/peers.sh [--no-build] all        (builds every peer, prints one path a line)
#        scripts/peers.sh --versions             (prints "name module@version" a line)
#
# Peers (built from the Go module proxy with `go install`, never vendored or committed):
#   prometheus3       github.com/prometheus/prometheus/cmd/prometheus@v0.316.0   (Prometheus 3)
#   promtool3         github.com/prometheus/prometheus/cmd/promtool@v0.316.0
#   victoria-metrics  github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics@v1.151.0
#
# Binaries are cached in $RINGTAIL_PEERS_DIR (default ~/.cache/ringtail-peers/bin); a cached
# binary is used when the module version recorded in it (`go version -m`) is the one above,
# otherwise it is rebuilt. Concurrent callers build once: the build holds a lock file in that
# directory, and the others wait for it. Build output goes to $RINGTAIL_PEERS_DIR/NAME.log.
#
# Exit status: 0 with the path on stdout; 77 when the peer is not cached and cannot be built
# here (no Go toolchain, or --no-build), with the reason on stderr (tests use 77 to skip);
# 1 when a build failed (the end of its log on stderr); 2 for a bad argument.
set -uo pipefail

PEERS_DIR=${RINGTAIL_PEERS_DIR:-$HOME/.cache/ringtail-peers/bin}
PROM_MOD=github.com/prometheus/prometheus
PROM_VERSION=v0.316.0
VM_MOD=github.com/VictoriaMetrics/VictoriaMetrics
VM_VERSION=v1.151.0

# peer_spec NAME: sets BIN (file name in PEERS_DIR), MOD (module), VER and PKGS (what to install
# together; prometheus and promtool come from one module, so one build serves both).
peer_spec() {
  case $1 in
    prometheus3 | promtool3)
      MOD=$PROM_MOD VER=$PROM_VERSION
      PKGS=("$PROM_MOD/cmd/prometheus@$VER" "$PROM_MOD/cmd/promtool@$VER")
      BIN=${1%3}
      ;;
    victoria-metrics)
      MOD=$VM_MOD VER=$VM_VERSION BIN=victoria-metrics
      PKGS=("$VM_MOD/app/victoria-metrics@$VER")
      ;;
    *) return 1 ;;
  esac
}

# cached_ok PATH MOD VER: PATH is an executable built from MOD at VER.
cached_ok() {
  [ -x "$1" ] || return 1
  command -v go >/dev/null 2>&1 || return 0 # cannot read build info: trust the cache
  go version -m "$1" 2>/dev/null | awk -v m="$2" -v v="$3" '$1 == "mod" && $2 == m && $3 == v {f = 1} END {exit !f}'
}

# find_or_build NAME NOBUILD: prints the path of NAME's binary, building it when needed.
find_or_build() {
  local name=$1 nobuild=$2 MOD VER BIN PKGS
  peer_spec "$name" || { echo "peers.sh: unknown peer '$name' (prometheus3, promtool3, victoria-metrics)" >&2; return 2; }
  local path=$PEERS_DIR/$BIN
  if cached_ok "$path" "$MOD" "$VER"; then
    echo "$path"
    return 0
  fi
  if [ "$nobuild" = 1 ]; then
    echo "peers.sh: $name ($MOD@$VER) is not in $PEERS_DIR and --no-build was given" >&2
    return 77
  fi
  if ! command -v go >/dev/null 2>&1; then
    echo "peers.sh: skipping $name: Go is not installed, so $MOD@$VER cannot be built (install Go 1.24+ or put the binary at $path)" >&2
    return 77
  fi
  mkdir -p "$PEERS_DIR" || return 1
  local log=$PEERS_DIR/$BIN.log lockname=${MOD##*/}
  (
    flock 9
    # another caller may have built it while this one waited for the lock
    cached_ok "$path" "$MOD" "$VER" && exit 0
    echo "peers.sh: building $name from $MOD@$VER (a few minutes; log $log)" >&2
    GOBIN=$PEERS_DIR GOFLAGS="${GOFLAGS:-} -buildvcs=false" go install -p 2 "${PKGS[@]}" >"$log" 2>&1
  ) 9>"$PEERS_DIR/.lock-$lockname"
  local rc=$?
  if [ "$rc" != 0 ] || ! cached_ok "$path" "$MOD" "$VER"; then
    echo "peers.sh: building $name failed (exit $rc); end of $log:" >&2
    tail -n 15 "$log" >&2
    return 1
  fi
  echo "$path"
}

nobuild=0
case ${1:-} in
  --no-build) nobuild=1; shift ;;
  --versions)
    echo "prometheus3 $PROM_MOD/cmd/prometheus@$PROM_VERSION"
    echo "promtool3 $PROM_MOD/cmd/promtool@$PROM_VERSION"
    echo "victoria-metrics $VM_MOD/app/victoria-metrics@$VM_VERSION"
    exit 0
    ;;
  -h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
[ $# = 1 ] || { echo "usage: scripts/peers.sh [--no-build] prometheus3|promtool3|victoria-metrics|all" >&2; exit 2; }
if [ "$1" = all ]; then
  status=0
  for p in prometheus3 promtool3 victoria-metrics; do
    find_or_build "$p" "$nobuild" || status=$?
  done
  exit "$status"
fi
find_or_build "$1" "$nobuild"
