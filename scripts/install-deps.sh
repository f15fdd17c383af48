#!/usr/bin/env bash
# install-deps.sh - installs every package Ringtail needs to build, test and run (Debian 12).
#
# Idempotent: packages already present are left alone and the package lists are refreshed only
# when something is missing. Runs apt-get through sudo when not root.
#
#   scripts/install-deps.sh            # build + test + runtime dependencies
#   RT_DEPS_MINIMAL=1 scripts/install-deps.sh   # build and runtime only (no test tools)
#
# The minimal set is what scripts/run.sh installs and what the Dockerfile's build stage installs
# (it runs this script): the one list of build packages.
set -euo pipefail

build_pkgs=(
  build-essential cmake pkg-config git
  libzmq3-dev libprotobuf-c-dev protobuf-c-compiler
  librocksdb-dev libsnappy-dev libmicrohttpd-dev libyaml-dev libxxhash-dev libpcre2-dev
  libsodium-dev libcrypt-dev
)
test_pkgs=(
  libcriterion-dev clang libclang-rt-dev   # clang's sanitizer runtimes: the libFuzzer smoke run
  curl jq python3 procps psmisc
  prometheus prometheus-node-exporter prometheus-alertmanager
  debootstrap   # scripts/docker-base.sh: the local base image of tests/docker
)

pkgs=("${build_pkgs[@]}")
if [ "${RT_DEPS_MINIMAL:-0}" != 1 ]; then
  pkgs+=("${test_pkgs[@]}")
fi

missing=()
for p in "${pkgs[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  if [ "$status" != installed ]; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} packages already installed"
  exit 0
fi

SUDO=
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=sudo
  else
    echo "install-deps: not root and no sudo; install these packages: ${missing[*]}" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${missing[*]}"
# Refresh the package lists only when they are absent or when the install cannot find a package.
if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
  $SUDO apt-get update -qq
fi
if ! $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# On a machine with systemd the Debian packages start their services on the default ports
# (9090, 9093, 9100). Ringtail's tests run their own instances on other ports, so the services
# are left as they are; stop them with `systemctl disable --now prometheus` if they are unwanted.
echo "install-deps: done"
