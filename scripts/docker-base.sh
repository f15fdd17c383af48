#!/usr/bin/env bash
# Build a local Debian bookworm base image without any registry: debootstrap
# (minbase) from the Debian mirror this machine already uses, then `docker
# import`. The result is equivalent to debian:bookworm for the Dockerfiles of
# this repository, which take it with --build-arg BASE=<tag>.
#
#   scripts/docker-base.sh [-f] [-t TAG] [-m MIRROR]
#
# Skips all work when TAG already exists (use -f to rebuild). Needs root (or
# sudo) for debootstrap.
set -euo pipefail

TAG=${RT_DOCKER_BASE:-ringtail-base:bookworm}
SUITE=bookworm
MIRROR=${RT_DEBIAN_MIRROR:-}
FORCE=0
while getopts "ft:m:h" o; do
    case $o in
    f) FORCE=1 ;;
    t) TAG=$OPTARG ;;
    m) MIRROR=$OPTARG ;;
    *) sed -n '2,12p' "$0"; exit 2 ;;
    esac
done

if [[ $FORCE == 0 ]] && docker image inspect "$TAG" >/dev/null 2>&1; then
    echo "docker-base: $TAG already exists (use -f to rebuild)"
    exit 0
fi

# The mirror apt uses on this machine (deb822 or one-line format).
if [[ -z $MIRROR ]]; then
    MIRROR=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
                 /etc/apt/sources.list.d/*.list 2>/dev/null |
             awk '/^URIs:/ && $2 ~ /debian\/?$/ {print $2; exit}
                  /^deb / && $0 ~ / bookworm / && $2 ~ /debian\/?$/ {print $2; exit}
                  /^deb \[/ {for (i=2;i<=NF;i++) if ($i ~ /^https?:.*debian\/?$/) {print $i; exit}}' || true)
    MIRROR=${MIRROR:-http://deb.debian.org/debian}
fi

SUDO=
[[ $(id -u) == 0 ]] || SUDO=sudo
if ! command -v debootstrap >/dev/null; then
    echo "docker-base: installing debootstrap"
    $SUDO apt-get install -y --no-install-recommends debootstrap >/dev/null
fi

t0=$(date +%s)
root=$(mktemp -d /tmp/ringtail-base.XXXXXX)
trap '$SUDO rm -rf "$root"' EXIT
echo "docker-base: debootstrap $SUITE (minbase) from $MIRROR"
$SUDO debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1 || {
    tail -30 "$root.log"; rm -f "$root.log"; exit 1; }
rm -f "$root.log"

# Same apt sources as the official image (the chosen mirror, plus security),
# and the official image's trimming: no caches, no docs needed at build time.
$SUDO tee "$root/etc/apt/sources.list" >/dev/null <<SRC
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb ${MIRROR%/debian*}/debian-security $SUITE-security main
SRC
echo 'APT::Install-Recommends "false";' | $SUDO tee "$root/etc/apt/apt.conf.d/90ringtail" >/dev/null
$SUDO rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb

$SUDO tar -C "$root" --numeric-owner -c . |
    docker import \
        -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'ENV LANG=C.UTF-8' \
        -c 'CMD ["bash"]' \
        -m "debootstrap --variant=minbase $SUITE $MIRROR" - "$TAG" >/dev/null
echo "docker-base: built $TAG in $(( $(date +%s) - t0 ))s"
