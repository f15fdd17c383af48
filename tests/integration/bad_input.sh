#!/usr/bin/env bash
# bad_input.sh - bad remote-write requests end to end against the real binary.
#
# Writes a baseline of valid data (ringtail-loadgen --verify-log), then sends garbage, broken
# snappy and protobuf, invalid labels, extreme timestamps, a 100 MiB body and a client that never
# finishes its body (bad_input.py). After each request ringtail must still be ready. At the end the
# baseline must be intact: every baseline series is listed by /api/v1/series, and after a clean
# stop `ringtail dump` holds every baseline sample (ringtail-loadgen --check).
source "$(dirname "$0")/lib.bash"

conn_timeout=3
data=$IT_TMP/data
vlog=$IT_TMP/verify.log
: >"$vlog"

it_log "starting ringtail"
rt_start "$data" -server.http-conn-timeout=${conn_timeout}s || exit 1

it_log "baseline: 200 series x 20 samples"
"$LOADGEN_BIN" --url "$RT_URL/api/v1/push" --series 200 --samples-per-request 400 \
  --samples-per-series 2 --concurrency 2 --rounds 20 --duration 0 --step 15000 \
  --start-ts $(( $(date +%s) * 1000 - 3600 * 1000 )) --metric-prefix baseline \
  --verify-log "$vlog" >"$IT_TMP/loadgen.out" 2>&1
check "baseline accepted in full ($(grep -c '^A' "$vlog") requests)" \
  bash -c "! grep -q '^[UR]' '$vlog' && grep -q '^A' '$vlog'"

python3 "$(dirname "$0")/bad_input.py" 127.0.0.1 "$RT_PORT" "$conn_timeout"
check "every bad request got its answer and ringtail kept running" [ $? = 0 ]
check "ringtail process is alive" rt_alive

n=$(rt_get /api/v1/series --get --data-urlencode 'match[]={job="loadgen"}' | jq '.data | length')
check "baseline series still listed by /api/v1/series ($n of 200)" [ "${n:-0}" = 200 ]

check "ringtail stops cleanly after the bad input" rt_stop
"$RINGTAIL_BIN" dump -ingester.data-dir="$data" >"$IT_TMP/dump.txt" 2>"$IT_TMP/dump.err"
check "ringtail dump reads the data directory" [ $? = 0 ]
"$LOADGEN_BIN" --check "$vlog" --dump "$IT_TMP/dump.txt" --metric-prefix baseline >"$IT_TMP/check.out" 2>&1
rc=$?
sed 's/^/  /' "$IT_TMP/check.out" | head -n 20
check "every baseline sample is intact in the dump" [ $rc = 0 ]
finish
