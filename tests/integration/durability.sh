#!/usr/bin/env bash
# durability.sh - acknowledged samples survive kill -9; unacknowledged batches are all-or-nothing.
#
# Starts `ringtail -target=all` on a temporary data directory, runs ringtail-loadgen against it
# with --verify-log (one line per request: acknowledged or not, and which series and timestamps
# it carried), and kills ringtail with SIGKILL at random moments while the load runs, restarting it
# each time. At the end, after one last SIGKILL:
#   - `ringtail dump` on the data directory must hold every acknowledged sample with its value,
#     every unacknowledged request completely or not at all, and nothing that was never sent
#     (ringtail-loadgen --check);
#   - after a restart, /api/v1/series and /api/v1/label/series/values must list every series that
#     has an acknowledged sample, and count_over_time over /api/v1/query must count, per series,
#     exactly the samples of the dump.
# Knobs: RT_DURABILITY_KILLS (default 22), RT_DURABILITY_SERIES (default 400).
source "$(dirname "$0")/lib.bash"

kills=${RT_DURABILITY_KILLS:-22}
nseries=${RT_DURABILITY_SERIES:-400}
data=$IT_TMP/data
vlog=$IT_TMP/verify.log

[ -x "$LOADGEN_BIN" ] || { it_log "no loadgen at $LOADGEN_BIN"; exit 1; }

it_log "starting ringtail (data in $data)"
rt_start "$data" || exit 1

# Timestamps start a day back with 1s steps: the test spans many chunk cuts (120 samples) and,
# at the rate a test reaches, stays in the past. A request of the sender that never retries
# carries 2 consecutive samples of 50 series, so "all or nothing" covers several series and
# samples.
start_ts=$(( $(date +%s) * 1000 - 24 * 3600 * 1000 ))
# Two senders: one never retries (a request cut by the kill stays unacknowledged, and the check
# sees whether it is all or nothing), one retries (a request may be stored, unacknowledged, and
# then sent again: the duplicate must be accepted).
half=$((nseries / 2))
lg_pids=()
: >"$IT_TMP/verify.noretry.log"
: >"$IT_TMP/verify.retry.log"
for mode in noretry retry; do
  # The retrying sender puts one sample per series in a request: a retry of a request that was
  # stored but not acknowledged then repeats each series' newest sample, a duplicate that must be
  # accepted. (Repeating an older sample of a series is "out of order", as in Prometheus.)
  if [ $mode = noretry ]; then off=0; retries=0; k=2; else off=$half; retries=5; k=1; fi
  "$LOADGEN_BIN" --url "$RT_URL/api/v1/push" --series "$half" --series-offset "$off" \
    --samples-per-request 100 --samples-per-series $k --concurrency 2 --duration 600 \
    --start-ts "$start_ts" --step 1000 --max-retries "$retries" --timeout 5000 \
    --verify-log "$IT_TMP/verify.$mode.log" >"$IT_TMP/loadgen.$mode.out" 2>&1 &
  lg_pids+=($!)
  track "$!"
done

acked() { cat "$IT_TMP"/verify.*.log | grep -c '^A'; }
acked_more_than() { [ "$(acked)" -gt "$1" ]; }

restarts_ok=0
for i in $(seq 1 "$kills"); do
  before=$(acked)
  # let some writes be acknowledged by this incarnation, then kill at a random moment
  if ! wait_for 30 "acknowledged writes after restart $i" acked_more_than "$before"; then
    notok "ringtail acknowledges writes after restart $((i - 1))"
    break
  fi
  delay_ms=$(( (RANDOM % 900) + 50 ))
  sleep "$(printf '0.%03d' "$delay_ms")"
  if ! rt_alive; then
    notok "ringtail still running before kill $i"
    break
  fi
  rt_kill9
  if ! rt_start "$data"; then
    notok "ringtail restarts after kill -9 number $i"
    break
  fi
  restarts_ok=$((restarts_ok + 1))
done
check "ringtail restarted after each of $kills kill -9s (got $restarts_ok)" [ "$restarts_ok" = "$kills" ]

# a final stretch of writes, then stop the load
before=$(acked)
wait_for 30 "writes after the last restart" acked_more_than "$before"
for p in "${lg_pids[@]}"; do
  kill -TERM "$p"
  it_wait_exit "$p" 30
  untrack "$p"
done
sed 's/^/  loadgen: /' "$IT_TMP"/loadgen.*.out
cat "$IT_TMP/verify.noretry.log" "$IT_TMP/verify.retry.log" >"$vlog"
n_a=$(grep -c '^A' "$vlog")
n_u=$(grep -c '^U' "$vlog")
n_r=$(grep -c '^R' "$vlog")
it_log "verify log: $n_a acknowledged, $n_u unacknowledged, $n_r rejected requests"
check "loadgen had acknowledged requests" [ "$n_a" -gt 0 ]
check "no request was rejected with a 4xx (they are all valid)" [ "$n_r" = 0 ]
if [ "$n_r" != 0 ]; then
  grep -h -m3 'last error' "$IT_TMP"/loadgen.*.out
fi

# one more crash right after the last acknowledged write, then read the directory offline
rt_kill9
it_log "dumping $data offline"
if "$RINGTAIL_BIN" dump -ingester.data-dir="$data" >"$IT_TMP/dump.txt" 2>"$IT_TMP/dump.err"; then
  ok "ringtail dump reads the data directory after kill -9 ($(wc -l <"$IT_TMP/dump.txt") lines)"
else
  notok "ringtail dump reads the data directory after kill -9"
  tail -n 5 "$IT_TMP/dump.err"
fi
"$LOADGEN_BIN" --check "$vlog" --dump "$IT_TMP/dump.txt" >"$IT_TMP/check.out" 2>&1
rc=$?
sed 's/^/  /' "$IT_TMP/check.out" | head -n 30
check "every acknowledged sample is in the dump with its value; unacknowledged batches are all-or-nothing" [ "$rc" = 0 ]

# the series and label APIs after a restart
rt_start "$data" || { notok "ringtail restarts for the API checks"; finish; }
grep '^A' "$vlog" | awk '{for (i = $2; i < $3; i++) print i}' | sort -n -u >"$IT_TMP/acked_series"
if rt_get /api/v1/series --get --data-urlencode 'match[]={job="loadgen"}' >"$IT_TMP/series.json"; then
  jq -r '.data[].series' "$IT_TMP/series.json" | sort -n -u >"$IT_TMP/api_series"
  missing=$(comm -23 "$IT_TMP/acked_series" "$IT_TMP/api_series" | wc -l)
  check "/api/v1/series lists all $(wc -l <"$IT_TMP/acked_series") series with acknowledged samples ($missing missing)" [ "$missing" = 0 ]
else
  notok "/api/v1/series answers"
fi
if rt_get /api/v1/label/series/values >"$IT_TMP/values.json"; then
  jq -r '.data[]' "$IT_TMP/values.json" | sort -n -u >"$IT_TMP/api_values"
  missing=$(comm -23 "$IT_TMP/acked_series" "$IT_TMP/api_values" | wc -l)
  check "/api/v1/label/series/values lists every acknowledged series ($missing missing)" [ "$missing" = 0 ]
else
  notok "/api/v1/label/series/values answers"
fi
# sample level through the query API: per series, as many samples as the dump holds
awk '/job="loadgen"/ {match($0, /series="[0-9]+"/); print substr($0, RSTART + 8, RLENGTH - 9)}' \
  "$IT_TMP/dump.txt" | sort -n | uniq -c | awk '{print $2, $1}' >"$IT_TMP/dump_counts"
if rt_get /api/v1/query --data-urlencode 'query=count_over_time({job="loadgen"}[3d])' \
     --data-urlencode "time=$(date +%s)" >"$IT_TMP/query.json"; then
  jq -r '.data.result[] | "\(.metric.series) \(.value[1])"' "$IT_TMP/query.json" | sort -n >"$IT_TMP/query_counts"
  differ=$(diff "$IT_TMP/dump_counts" "$IT_TMP/query_counts" | grep -c '^[<>]')
  check "count_over_time per series over /api/v1/query equals the dump ($(wc -l <"$IT_TMP/query_counts") series, $differ lines differ)" [ "$differ" = 0 ]
else
  notok "/api/v1/query answers count_over_time"
fi
check "ringtail stops cleanly" rt_stop
finish
