#!/usr/bin/env bash
# cluster-up.sh - builds the images and starts the three-zone compose cluster; returns when
# every container is healthy and all six ingesters are ACTIVE in the ring.
#
#   scripts/cluster-up.sh              base image (scripts/docker-base.sh when there is no
#                                      BASE and this is a Debian machine), the four images,
#                                      then `docker compose up -d`
#   scripts/cluster-up.sh --grafana    the same, plus Grafana (pulled from a registry)
#   scripts/cluster-up.sh --no-build   start with the images as they are
#
# Environment: BASE (base image), COMPOSE_PROJECT_NAME, RT_WRITE_PORT / RT_READ_PORT /
# RT_PROMETHEUS_PORT / RT_ALERTMANAGER_PORT / RT_GRAFANA_PORT (host ports; empty = any free
# one), RT_PUBLISH_ADDR (127.0.0.1). Stop with `docker compose down` (-v also drops the data).
set -euo pipefail
. "$(dirname "$0")/docker-lib.bash"

build=1 profile=()
for a in "$@"; do
  case $a in
    --grafana) profile=(--profile grafana) ;;
    --no-build) build=0 ;;
    *) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
[ ${#DC[@]} -gt 0 ] || { echo "cluster-up: neither 'docker compose' nor docker-compose found" >&2; exit 1; }

t0=$SECONDS
if [ $build = 1 ]; then
  choose_base
  echo "cluster-up: base image $BASE" >&2
  build_images
fi
t1=$SECONDS
dc "${profile[@]}" up -d --no-build
# shellcheck disable=SC2046
wait_healthy 180 $(default_services)
entry_urls
wait_ring_active 60 "${INGESTERS[@]}"
echo "cluster-up: healthy in $((SECONDS - t1))s (total $((SECONDS - t0))s)" >&2
p=$(dc port prometheus 9090 | tail -1); a=$(dc port alertmanager 9093 | tail -1)
cat <<MSG
remote-write (distributors): $WRITE_URL/api/v1/push
Grafana data source (queriers): $READ_URL/prometheus
Prometheus (meta-monitoring):   http://${p/0.0.0.0/127.0.0.1}
Alertmanager:                   http://${a/0.0.0.0/127.0.0.1}
MSG
if [ ${#profile[@]} -gt 0 ]; then
  g=$(dc port grafana 3000 | tail -1)
  echo "Grafana:                        http://${g/0.0.0.0/127.0.0.1}"
fi
