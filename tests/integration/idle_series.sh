#!/usr/bin/env bash
# idle_series.sh - idle series leave the head of a real ringtail (-ingester.series-idle-timeout,
# data time): the head and active-series gauges drop to the active series, the idle ones stay
# readable through query, series and label values, a restart loads only the active series, a
# new sample brings one back as one series, and `ringtail dump` prints every sample once.
source "$(dirname "$0")/lib.bash"

FLAGS=(-auth.mode=header -ingester.series-idle-timeout=1h)
rt_start "$IT_TMP/data" "${FLAGS[@]}" || exit 1

NOW=$(date +%s)
T0=$(((NOW - 4 * 3600) * 1000)) # the idle series: 11 samples from four hours ago
TL=$(((NOW - 300) * 1000))      # the live series: 6 samples over the last five minutes
push() { # MODE: old | live | back
  python3 - "$RT_PORT" "$1" "$T0" "$TL" <<'EOF'
import os, sys
sys.path.insert(0, os.environ["IT_DIR"])
import rwtool as rw
port, mode, t0, tl = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if mode == "old":
    series = [([("__name__", "old"), ("i", str(i))], [(t0 + k * 60000, float(k)) for k in range(11)])
              for i in range(50)]
elif mode == "live":
    series = [([("__name__", "live")], [(tl + k * 60000, float(k)) for k in range(6)])]
else:  # one new sample for old{i="0"}, now
    series = [([("__name__", "old"), ("i", "0")], [(tl + 300000, 99.0)])]
st, text = rw.post("127.0.0.1", port, "/api/v1/push", rw.snappy(rw.write_request(series)),
                   {"X-Scope-OrgID": "t"})
sys.exit(0 if st in (200, 204) else 1)
EOF
}
metric() { # NAME{LABELS} -> value
  rt_get /metrics | awk -v m="$1" '$1 == m { print $2 }'
}
metric_is() { [ "$(metric "$1")" = "$2" ]; }
series() {
  curl -s -G -H "X-Scope-OrgID: t" --data-urlencode "match[]=$1" \
    --data-urlencode "start=$((NOW - 5 * 3600))" --data-urlencode "end=$((NOW + 60))" \
    "$RT_URL/api/v1/series" | jq -r '.data | length'
}
values() {
  curl -s -G -H "X-Scope-OrgID: t" --data-urlencode "start=$((NOW - 5 * 3600))" \
    --data-urlencode "end=$((NOW + 60))" "$RT_URL/api/v1/label/$1/values" | jq -r '.data | length'
}
samples() { # SELECTOR TIME RANGE -> samples summed over series
  curl -s -G -H "X-Scope-OrgID: t" --data-urlencode "query=count_over_time($1[$3])" \
    --data-urlencode "time=$2" "$RT_URL/api/v1/query" |
    jq -r '[.data.result[] | (.value[1] | tonumber)] | add // 0'
}
expect() { # DESCRIPTION WANT COMMAND...
  local what=$1 want=$2
  shift 2
  local got
  got=$("$@")
  if [ "$got" = "$want" ]; then ok "$what ($got)"; else notok "$what: want $want, got $got"; fi
}

check "push 50 series of four hours ago" push old
check "push one live series" push live
# data time is the tenant's newest sample: the old series are idle for ~4h > 1h; the next
# maintenance round (every 10 s) takes them out of the head
check "the head holds only the live series" wait_for 30 "memory series 1" \
  metric_is ringtail_ingester_memory_series 1
expect "active series of the tenant" 1 metric 'ringtail_ingester_active_series{user="t"}'
expect "series removed" 50 metric ringtail_ingester_series_removed_total
expect "the idle series are still found by /api/v1/series" 50 series old
expect "their label values" 50 values i
expect "and their samples" 550 samples old "$(((T0 + 600000) / 1000))" 15m
expect "the live series" 6 samples live "$NOW" 10m

check "SIGTERM" rt_stop
rt_start "$IT_TMP/data" "${FLAGS[@]}" || exit 1
expect "after a restart the head holds only the live series" 1 metric ringtail_ingester_memory_series
expect "the idle series are still there" 50 series old
expect "their samples" 550 samples old "$(((T0 + 600000) / 1000))" 15m

check "a new sample for old{i=\"0\"}" push back
expect "it is in the head again" 2 metric ringtail_ingester_memory_series
expect "one series for old{i=\"0\"}" 1 series 'old{i="0"}'
expect "with its old and its new samples" 12 samples 'old{i="0"}' "$((NOW + 30))" 5h

check "kill -9" rt_kill9
rt_start "$IT_TMP/data" "${FLAGS[@]}" || exit 1
expect "after kill -9: the live and the returned series" 2 metric ringtail_ingester_memory_series
check "SIGTERM" rt_stop
"$RINGTAIL_BIN" dump -ingester.data-dir="$IT_TMP/data" -tenant=t >"$IT_TMP/dump.txt"
expect "dump: every sample once" 557 wc -l <"$IT_TMP/dump.txt"
expect "dump: old{i=\"0\"} as one series" 12 grep -c '^t {__name__="old", i="0"} ' "$IT_TMP/dump.txt"
finish
