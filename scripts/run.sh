#!/usr/bin/env bash
# run.sh - installs what Ringtail needs, builds it (Release, build/) and starts
# `ringtail -target=all` in the foreground: data in ./data, HTTP on :9009.
# Extra arguments go to ringtail, e.g. scripts/run.sh -server.http-listen-port=9010
set -euo pipefail
cd "$(dirname "$0")/.."
RT_DEPS_MINIMAL=1 scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target ringtail
exec ./build/ringtail -target=all "$@"
