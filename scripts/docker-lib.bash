# docker-lib.bash - shared by scripts/cluster-up.sh, scripts/rolling-restart.sh and
# tests/docker/*.sh: the compose command, image builds, waiting for health and for the ring.
# Source it; it sets ROOT and DC (the compose command as an array).

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
RT_BASE_TAG=${RT_BASE_TAG:-ringtail-base:bookworm}

# `docker compose` (v2) when present, else docker-compose (v1).
if docker compose version >/dev/null 2>&1; then
  DC=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  DC=(docker-compose)
else
  DC=()
fi
dc() { (cd "$ROOT" && "${DC[@]}" "$@"); }

INGESTERS=(ingester-a-1 ingester-a-2 ingester-b-1 ingester-b-2 ingester-c-1 ingester-c-2)
RINGTAIL_SERVICES=("${INGESTERS[@]}" distributor-1 distributor-2 querier-1 querier-2)

# The base image: $BASE when set; else the local one (built by docker-base.sh when this is a
# Debian machine with apt); else debian:bookworm-slim from a registry.
choose_base() {
  if [ -n "${BASE:-}" ]; then
    :
  elif docker image inspect "$RT_BASE_TAG" >/dev/null 2>&1; then
    BASE=$RT_BASE_TAG
  elif command -v apt-get >/dev/null 2>&1 && [ -r /etc/debian_version ]; then
    "$ROOT/scripts/docker-base.sh" -t "$RT_BASE_TAG" >&2 || return 1
    BASE=$RT_BASE_TAG
  else
    BASE=debian:bookworm-slim
  fi
  export BASE
}

# RT_PREBUILT=BINARY: build the ringtail image from this binary (built on this host) instead
# of compiling in the image, when this host is Debian bookworm with dpkg (same libraries as
# the image) and the base is bookworm too.
prebuilt_ok() {
  [ -x "$RT_PREBUILT" ] && command -v dpkg >/dev/null 2>&1 && command -v strip >/dev/null 2>&1 &&
    grep -q '^VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null &&
    [[ $BASE == *bookworm* ]] && ! ldd "$RT_PREBUILT" | grep -q 'libasan\|not found'
}

# build_images [IMAGE...]: builds ringtail and the given images of docker/ (default: haproxy
# prometheus alertmanager) once each, with the layer cache. Prints the seconds each took.
build_images() {
  local t0 tag=${RT_IMAGE_TAG:-latest} p=${RT_IMAGE_PREFIX-} q=() others=("$@")
  [ ${#others[@]} -gt 0 ] || others=(haproxy prometheus alertmanager)
  [ "${RT_BUILD_QUIET:-1}" = 1 ] && q=(-q)
  t0=$SECONDS
  if [ -n "${RT_PREBUILT:-}" ] && prebuilt_ok; then
    # a Release binary built on this (bookworm) host: only the runtime stage is built
    local ctx; ctx=$(mktemp -d)
    strip -o "$ctx/ringtail" "$RT_PREBUILT" && cp "$ROOT/docker/healthcheck" "$ctx/" &&
      ldd "$ctx/ringtail" | awk '/=> \//{print $3}' | while read -r lib; do
        dpkg -S "*/$(basename "$lib")" | cut -d: -f1; done | sort -u >"$ctx/runtime-packages" &&
      docker build "${q[@]}" --build-arg BASE="$BASE" -t "${p}ringtail:$tag" \
        -f "$ROOT/docker/ringtail-prebuilt.Dockerfile" "$ctx" >/dev/null
    local rc=$?
    rm -rf "$ctx"
    [ $rc = 0 ] || return 1
    echo "built ${p}ringtail:$tag from $RT_PREBUILT in $((SECONDS - t0))s" >&2
  else
    docker build "${q[@]}" --build-arg BASE="$BASE" -t "${p}ringtail:$tag" "$ROOT" >/dev/null || return 1
    echo "built ${p}ringtail:$tag from source in $((SECONDS - t0))s" >&2
  fi
  local i
  for i in "${others[@]}"; do
    t0=$SECONDS
    docker build "${q[@]}" --build-arg BASE="$BASE" -t "${p}ringtail-$i:$tag" \
      -f "$ROOT/docker/$i/Dockerfile" "$ROOT/docker" >/dev/null || return 1
    echo "built ${p}ringtail-$i:$tag in $((SECONDS - t0))s" >&2
  done
}

# Container id of a service (empty when it has none).
cid() { dc ps -a -q "$1" 2>/dev/null | head -1; }

# Health of a service's container: healthy, unhealthy, starting, exited, ...
health() {
  local id; id=$(cid "$1")
  [ -n "$id" ] || { echo absent; return; }
  docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' \
    "$id" 2>/dev/null || echo absent
}

# wait_healthy DEADLINE_S SERVICE... : until every service's container is healthy.
wait_healthy() {
  local limit=$1; shift
  local end=$((SECONDS + limit)) s bad
  while :; do
    bad=
    for s in "$@"; do
      [ "$(health "$s")" = healthy ] || { bad=$s; break; }
    done
    [ -z "$bad" ] && return 0
    if [ $SECONDS -ge $end ]; then
      echo "not healthy after ${limit}s: $bad ($(health "$bad"))" >&2
      return 1
    fi
    sleep 0.5
  done
}

# Every service of the compose file that runs by default (not in a profile).
default_services() { dc config --services 2>/dev/null | grep -vx grafana; }

# The ring as the queriers see it, as JSON, through the read entry point.
ring_json() { curl -sf --max-time 3 "$READ_URL/ring?format=json"; }

# wait_ring DEADLINE_S INSTANCE... : until these ingesters are ACTIVE and healthy in the ring
# of every querier and distributor (asked inside their containers' network through lb).
wait_ring_active() {
  local limit=$1; shift
  local end=$((SECONDS + limit)) js
  while :; do
    local ok=1 n
    for n in 1 2 3 4; do   # lb round-robins: ask several times to see both queriers
      js=$(ring_json) || { ok=0; break; }
      python3 - "$*" "$js" <<'PY' || { ok=0; break; }
import json, sys
want = sys.argv[1].split()
r = json.loads(sys.argv[2])
st = {i["id"]: (i["state"], i["healthy"]) for i in r["instances"]}
sys.exit(0 if all(st.get(w) == ("ACTIVE", True) for w in want) else 1)
PY
    done
    [ $ok = 1 ] && return 0
    if [ $SECONDS -ge $end ]; then
      echo "ring: not all of $* ACTIVE after ${limit}s" >&2
      return 1
    fi
    sleep 0.5
  done
}

# Host URLs of the entry points (published ports may be random: ask Docker).
entry_urls() {
  local w r
  w=$(dc port lb 9009 | tail -1) && r=$(dc port lb 9010 | tail -1) || return 1
  WRITE_URL=http://${w/0.0.0.0/127.0.0.1}
  READ_URL=http://${r/0.0.0.0/127.0.0.1}
  export WRITE_URL READ_URL
}
