#!/usr/bin/env bash
# rolling-restart.sh - restarts every ingester of the compose cluster, one zone at a time, so
# that writes never fail and no acknowledged sample is lost: with RF 3 and a write quorum of
# 2, one zone may be away at any time.
#
#   scripts/rolling-restart.sh [ZONE...]       default: a b c
#
# For each zone: `docker compose restart` of its ingesters (SIGTERM: each turns LEAVING in the
# ring, so distributors stop sending to it, flushes and exits; then it starts on its volume,
# JOINING, then ACTIVE), then waits until they are healthy and ACTIVE and healthy in the ring
# before the next zone. Use the same COMPOSE_PROJECT_NAME (and directory) as for `up`.
set -euo pipefail
. "$(dirname "$0")/docker-lib.bash"
[ ${#DC[@]} -gt 0 ] || { echo "rolling-restart: no docker compose" >&2; exit 1; }

zones=("$@")
[ ${#zones[@]} -gt 0 ] || zones=(a b c)
entry_urls
wait_ring_active 60 "${INGESTERS[@]}" ||
  { echo "rolling-restart: the ring is not all ACTIVE; not starting" >&2; exit 1; }
for z in "${zones[@]}"; do
  members=()
  for s in "${INGESTERS[@]}"; do [[ $s == ingester-$z-* ]] && members+=("$s"); done
  [ ${#members[@]} -gt 0 ] || { echo "rolling-restart: no ingesters in zone $z" >&2; exit 1; }
  t0=$SECONDS
  echo "rolling-restart: zone $z: ${members[*]}"
  dc restart -t 60 "${members[@]}" >/dev/null
  wait_healthy 120 "${members[@]}"
  wait_ring_active 60 "${members[@]}"
  echo "rolling-restart: zone $z back in $((SECONDS - t0))s"
done
