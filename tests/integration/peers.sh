#!/usr/bin/env bash
# peers.sh - scripts/peers.sh, the finder and builder of the peer servers, without building
# anything: bad names, --no-build, a machine without Go, a cached binary, the version list.
source "$(dirname "$0")/lib.bash"

PEERS=$IT_ROOT/scripts/peers.sh
export RINGTAIL_PEERS_DIR=$IT_TMP/peers

"$PEERS" prometheus2 >"$IT_TMP/out" 2>&1
rc=$?
check "an unknown peer: exit 2, named with the known ones" \
  bash -c "[ $rc = 2 ] && grep -q \"unknown peer 'prometheus2'\" '$IT_TMP/out' && grep -q victoria-metrics '$IT_TMP/out'"

"$PEERS" --no-build victoria-metrics >"$IT_TMP/out" 2>"$IT_TMP/err"
rc=$?
check "--no-build and nothing cached: exit 77, nothing on stdout, the reason on stderr" \
  bash -c "[ $rc = 77 ] && [ ! -s '$IT_TMP/out' ] && grep -q 'not in $RINGTAIL_PEERS_DIR' '$IT_TMP/err'"

# a PATH without Go: the tools the script needs, linked into one directory
mkdir -p "$IT_TMP/nogo"
for t in bash sed awk tail flock mkdir cat; do ln -s "$(command -v "$t")" "$IT_TMP/nogo/$t"; done
PATH=$IT_TMP/nogo "$PEERS" prometheus3 >"$IT_TMP/out" 2>"$IT_TMP/err"
rc=$?
check "no Go and nothing cached: exit 77 and a message saying Go is missing" \
  bash -c "[ $rc = 77 ] && [ ! -s '$IT_TMP/out' ] && grep -q 'skipping prometheus3: Go is not installed' '$IT_TMP/err'"

mkdir -p "$RINGTAIL_PEERS_DIR"
printf '#!/bin/sh\nexit 0\n' >"$RINGTAIL_PEERS_DIR/promtool"
chmod +x "$RINGTAIL_PEERS_DIR/promtool"
out=$(PATH=$IT_TMP/nogo "$PEERS" promtool3 2>/dev/null)
check "no Go but a cached binary: its path" [ "$out" = "$RINGTAIL_PEERS_DIR/promtool" ]
if command -v go >/dev/null; then
  "$PEERS" --no-build promtool3 >"$IT_TMP/out" 2>"$IT_TMP/err"
  rc=$?
  check "with Go, a cached binary built from another version is not used (--no-build: 77)" \
    bash -c "[ $rc = 77 ] && [ ! -s '$IT_TMP/out' ]"
fi

"$PEERS" --versions >"$IT_TMP/out"
check "--versions names the three peers with their module versions" \
  bash -c "grep -qx 'prometheus3 github.com/prometheus/prometheus/cmd/prometheus@v0.316.0' '$IT_TMP/out' &&
           grep -qx 'victoria-metrics github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics@v1.151.0' '$IT_TMP/out' &&
           [ \$(wc -l <'$IT_TMP/out') = 3 ]"

finish
