#!/usr/bin/env bash
# retention.sh - retention in a real ringtail (-compactor.retention-period, per tenant
# compactor_retention_period in the runtime-config file, changed while it runs): data older than
# the tenant's newest sample minus its period disappears from query, series and label values at
# once, the compactor deletes it from disk (the SST files shrink; `ringtail dump` no longer has
# it), data inside the period and other tenants' data stay whole, across a restart too.
source "$(dirname "$0")/lib.bash"

OV=$IT_TMP/overrides.yaml
echo "overrides:" >"$OV"
FLAGS=(-auth.mode=header -runtime-config.file="$OV" -runtime-config.reload-period=1s)
rt_start "$IT_TMP/data" "${FLAGS[@]}" || exit 1

NOW=$(date +%s)
NEWEST=$(((NOW - 60) * 1000)) # the tenant's newest sample: its data-time clock
D=$((24 * 3600 * 1000))
push() { # TENANT MODE: old (100 series, 10h four days ago) | small (10 such) | recent
  python3 - "$RT_PORT" "$1" "$2" "$NEWEST" <<'EOF'
import os, random, sys
sys.path.insert(0, os.environ["IT_DIR"])
import rwtool as rw
port, tenant, mode, newest = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
rnd = random.Random(7)
t0 = newest - 4 * 86400000
if mode in ("old", "small"):
    n = 100 if mode == "old" else 10
    series = [([("__name__", "old"), ("i", str(i))],
               [(t0 + k * 60000, rnd.random()) for k in range(600)]) for i in range(n)]
else:  # mixed: every 10 minutes for four days up to the newest; live: the last 10 minutes
    series = [([("__name__", "mixed")], [(newest - k * 600000, float(k)) for k in range(575, -1, -1)]),
              ([("__name__", "live")], [(newest - k * 60000, float(k)) for k in range(10, -1, -1)])]
for i in range(0, len(series), 10):
    st, text = rw.post("127.0.0.1", port, "/api/v1/push",
                       rw.snappy(rw.write_request(series[i:i + 10])), {"X-Scope-OrgID": tenant})
    if st not in (200, 204):
        print(st, text)
        sys.exit(1)
EOF
}
metric() { rt_get /metrics | awk -v m="$1" '$1 == m { print $2 }'; }
metric_is() { [ "$(metric "$1")" = "$2" ]; }
series() { # TENANT SELECTOR
  curl -s -G -H "X-Scope-OrgID: $1" --data-urlencode "match[]=$2" \
    --data-urlencode "start=$((NOW - 5 * 86400))" --data-urlencode "end=$((NOW + 60))" \
    "$RT_URL/api/v1/series" | jq -r '.data | length'
}
values() { # TENANT NAME
  curl -s -G -H "X-Scope-OrgID: $1" "$RT_URL/api/v1/label/$2/values" | jq -r '.data | length'
}
query() { # TENANT EXPR TIME -> the sum of the result's values ("" when empty)
  curl -s -G -H "X-Scope-OrgID: $1" --data-urlencode "query=$2" --data-urlencode "time=$3" \
    "$RT_URL/api/v1/query" | jq -r '[.data.result[] | (.value[1] | tonumber)] | add // empty'
}
sst_bytes() { find "$IT_TMP/data" -name '*.sst' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }
expect() { # DESCRIPTION WANT COMMAND...
  local what=$1 want=$2
  shift 2
  local got
  got=$("$@")
  if [ "$got" = "$want" ]; then ok "$what ($got)"; else notok "$what: want $want, got $got"; fi
}
retention() { # TENANT PERIOD: the runtime-config file, then wait for it to be loaded
  printf 'overrides:\n  %s:\n    compactor_retention_period: %s\n' "$1" "$2" >"$OV"
  kill -HUP "$RT_PID"
}

check "push tenant t: 100 series of four days ago" push t old
check "push tenant t: mixed (four days) and live" push t recent
check "push tenant u: 10 series of four days ago" push u small
expect "without retention every old series is there" 100 series t old
expect "mixed has four days" 576 query t 'count_over_time(mixed[5d])' "$NOW"
check "SIGTERM (the data goes into SST files)" rt_stop
BEFORE=$(sst_bytes)
rt_start "$IT_TMP/data" "${FLAGS[@]}" || exit 1

check "tenant t: retention 2d, changed at runtime" retention t 2d
# the querier clamps at once: the start is the newest sample minus 2d
check "old series gone from /api/v1/series" wait_for 10 "no old series" \
  test "$(series t old)" = 0
expect "mixed keeps two days (newest - 2d .. newest)" 289 query t 'count_over_time(mixed[5d])' "$NOW"
expect "live is whole" 11 query t 'count_over_time(live[15m])' "$NOW"
expect "a query at the old data's time finds nothing" "" query t 'count(old)' "$((NOW - 4 * 86400 + 3600))"
expect "label values of i: none" 0 values t i
expect "label values of __name__: mixed, live" 2 values t __name__
expect "tenant u keeps its old data" 10 series u old
# the compactor's worker (every 10 s) deletes what lies a step (1h) before that
check "the compactor deleted the old series" wait_for 40 "retention round" \
  metric_is ringtail_compactor_retention_deleted_series_total 100
AFTER=$(sst_bytes)
if [ "$AFTER" -lt $((BEFORE / 3)) ]; then
  ok "SST files shrank: $BEFORE -> $AFTER bytes"
else
  notok "SST files did not shrink enough: $BEFORE -> $AFTER bytes"
fi
expect "mixed still keeps two days" 289 query t 'count_over_time(mixed[5d])' "$NOW"

CHUNKS=$(metric ringtail_compactor_retention_deleted_chunks_total)
check "tenant t: retention 1d" retention t 1d
check "mixed keeps one day" wait_for 10 "one day" \
  test "$(query t 'count_over_time(mixed[5d])' "$NOW")" = 145
chunks_grew() { [ "$(metric ringtail_compactor_retention_deleted_chunks_total)" -gt "$CHUNKS" ]; }
check "the compactor deleted mixed's chunks of the second day" wait_for 40 "retention round" chunks_grew
expect "tenant u still keeps its data" 10 series u old

check "SIGTERM" rt_stop
"$RINGTAIL_BIN" dump -ingester.data-dir="$IT_TMP/data" -tenant=t >"$IT_TMP/dump.txt"
expect "dump: no old series of t on disk" 0 grep -c '^t {__name__="old"' "$IT_TMP/dump.txt"
# mixed: its chunks (2h each) ending a step (1h) or more before the 1d start are gone
M=$(grep -c '^t {__name__="mixed"' "$IT_TMP/dump.txt")
if [ "$M" -ge 145 ] && [ "$M" -le $((145 + 4 * 6)) ]; then
  ok "dump: mixed's old chunks are gone ($M samples on disk, 145 visible)"
else
  notok "dump: mixed has $M samples on disk, want 145 to 169"
fi
"$RINGTAIL_BIN" dump -ingester.data-dir="$IT_TMP/data" -tenant=u >"$IT_TMP/dump-u.txt"
expect "dump: u whole" 6000 wc -l <"$IT_TMP/dump-u.txt"
rt_start "$IT_TMP/data" "${FLAGS[@]}" || exit 1
expect "after a restart: no old series" 0 series t old
expect "after a restart: mixed keeps one day" 145 query t 'count_over_time(mixed[5d])' "$NOW"
expect "after a restart: live is whole" 11 query t 'count_over_time(live[15m])' "$NOW"
finish
