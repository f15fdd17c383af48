#!/usr/bin/env bash
# limits_read.sh - the per-tenant read limits against a real ringtail: every limit answers 422
# with errorType execution and the documented message (limit, value, tenant, query, docs id); a
# tenant under its limits is unaffected; split and sharded queries count their sub-queries
# together; an overrides change is applied without a restart; promtool shows the error.
source "$(dirname "$0")/lib.bash"

OVR=$IT_TMP/overrides.yaml
write_overrides() {
  cat >"$OVR.tmp" <<EOF
overrides:
  t-series:
    max_fetched_series_per_query: 3
  t-bytes:
    max_fetched_chunk_bytes_per_query: 100
  t-samples:
    max_samples_per_query: 100
  t-lookback:
    max_query_lookback: 1h
  t-length:
    max_query_length: 1h
  t-timeout:
    query_timeout: 1ms
$1
EOF
  mv "$OVR.tmp" "$OVR"
}
write_overrides ""

rt_start "$IT_TMP/data" -auth.mode=header -runtime-config.file="$OVR" \
  -runtime-config.reload-period=200ms -querier.split-queries-by-interval=1m \
  -querier.total-shards=4 || exit 1

NOW=$(date +%s)
# five series m{i="0".."4"} with a sample every 10 s over the last 10 minutes, per tenant
push() {
  python3 - "$RT_PORT" "$1" <<'EOF'
import os, sys, time
sys.path.insert(0, os.environ["IT_DIR"])
import rwtool as rw
now = int(time.time() * 1000)
series = [([("__name__", "m"), ("i", str(i))], [(now - 600000 + k * 10000, float(k)) for k in range(61)])
          for i in range(5)]
hdr = {"X-Scope-OrgID": sys.argv[2]} if sys.argv[2] else {}
st, text = rw.post("127.0.0.1", int(sys.argv[1]), "/api/v1/push", rw.snappy(rw.write_request(series)), hdr)
sys.exit(0 if st in (200, 204) else 1)
EOF
}
for t in t-series t-bytes t-samples t-lookback t-length t-timeout t-free t-reload; do
  check "push 5 series for $t" push "$t"
done

# q TENANT PATH [CURL ARGS]: prints "<status> <body>"
q() {
  local t=$1 path=$2
  shift 2
  curl -s --max-time 30 -o "$IT_TMP/body" -w '%{http_code}' -H "X-Scope-OrgID: $t" "$@" "$RT_URL$path"
  printf ' '
  cat "$IT_TMP/body"
}
# expect_limit DESCRIPTION TENANT LIMIT=VALUE DOCS_ID PATH [CURL ARGS]
expect_limit() {
  local what=$1 t=$2 lim=$3 id=$4 path=$5
  shift 5
  local out
  out=$(q "$t" "$path" "$@")
  local st=${out%% *} body=${out#* }
  if [ "$st" = 422 ] &&
    jq -e --arg l "$lim" --arg t "$t" --arg id "$id" \
      '.status == "error" and .errorType == "execution" and (.error | contains("limit " + $l)) and
       (.error | contains("tenant \"" + $t + "\"")) and (.error | contains("query ")) and
       (.error | contains("docs/errors.md#" + $id))' <<<"$body" >/dev/null &&
    grep -q "^### $id\$" "$IT_DIR/../../docs/errors.md"; then
    ok "$what -> 422 execution naming $lim, tenant $t, $id"
  else
    notok "$what -> got $out"
  fi
}
expect_ok() {
  local what=$1 t=$2 path=$3
  shift 3
  local out
  out=$(q "$t" "$path" "$@")
  if [ "${out%% *}" = 200 ] && jq -e '.status == "success"' <<<"${out#* }" >/dev/null; then
    ok "$what -> 200"
  else
    notok "$what -> got $out"
  fi
}
G=(-G --data-urlencode)

# max_fetched_series_per_query
expect_limit "query m (5 series > 3)" t-series max_fetched_series_per_query=3 \
  err-ringtail-max-series-per-query /api/v1/query "${G[@]}" "query=m" --data-urlencode "time=$NOW"
expect_limit "sharded sum(m): 4 shards of at most 3 series count together" t-series \
  max_fetched_series_per_query=3 err-ringtail-max-series-per-query /api/v1/query "${G[@]}" \
  "query=sum(m)" --data-urlencode "time=$NOW"
expect_limit "/api/v1/series match[]=m" t-series max_fetched_series_per_query=3 \
  err-ringtail-max-series-per-query /api/v1/series "${G[@]}" "match[]=m"
expect_ok "query m{i=~\"0|1|2\"} (3 series) for t-series" t-series /api/v1/query "${G[@]}" \
  'query=m{i=~"0|1|2"}' --data-urlencode "time=$NOW"
expect_ok "/api/v1/series m{i=\"1\"} for t-series" t-series /api/v1/series "${G[@]}" 'match[]=m{i="1"}'

# max_fetched_chunk_bytes_per_query
expect_limit "query m over 100 bytes of chunks" t-bytes max_fetched_chunk_bytes_per_query=100 \
  err-ringtail-max-chunks-bytes-per-query /api/v1/query "${G[@]}" "query=m" --data-urlencode "time=$NOW"

# max_samples_per_query
expect_limit "sum_over_time(m[10m]) loads 305 samples > 100" t-samples max_samples_per_query=100 \
  err-ringtail-max-samples-per-query /api/v1/query "${G[@]}" "query=sum_over_time(m[10m])" \
  --data-urlencode "time=$NOW"
expect_limit "range query of m{i=\"0\"} split by 1m: the parts' samples add up" t-samples \
  max_samples_per_query=100 err-ringtail-max-samples-per-query /api/v1/query_range "${G[@]}" \
  'query=m{i="0"}' --data-urlencode "start=$((NOW - 540))" --data-urlencode "end=$NOW" \
  --data-urlencode "step=10"
expect_ok "query m{i=\"0\"} (31 samples) for t-samples" t-samples /api/v1/query "${G[@]}" \
  'query=m{i="0"}' --data-urlencode "time=$NOW"

# max_query_lookback
expect_limit "query at now-2h" t-lookback max_query_lookback=1h err-ringtail-max-query-lookback \
  /api/v1/query "${G[@]}" "query=m" --data-urlencode "time=$((NOW - 7200))"
expect_ok "query at now for t-lookback" t-lookback /api/v1/query "${G[@]}" "query=m" \
  --data-urlencode "time=$NOW"
out=$(q t-lookback /api/v1/series "${G[@]}" "match[]=m")
check "/api/v1/series without start answers within the lookback (5 series)" \
  jq -e '.status == "success" and (.data | length) == 5' <<<"${out#* }" >/dev/null

# max_query_length
expect_limit "range query over 2h" t-length max_query_length=1h err-ringtail-max-query-length \
  /api/v1/query_range "${G[@]}" "query=m" --data-urlencode "start=$((NOW - 7200))" \
  --data-urlencode "end=$NOW" --data-urlencode "step=60"
expect_limit "/api/v1/labels over 2h" t-length max_query_length=1h err-ringtail-max-query-length \
  /api/v1/labels "${G[@]}" "start=$((NOW - 7200))" --data-urlencode "end=$NOW"
expect_limit "/api/v1/label/i/values over 2h" t-length max_query_length=1h \
  err-ringtail-max-query-length /api/v1/label/i/values "${G[@]}" "start=$((NOW - 7200))" \
  --data-urlencode "end=$NOW"
expect_ok "range query over 30m for t-length" t-length /api/v1/query_range "${G[@]}" "query=m" \
  --data-urlencode "start=$((NOW - 1800))" --data-urlencode "end=$NOW" --data-urlencode "step=60"

# query_timeout: 422 execution, as every read limit
expect_limit "a heavy subquery with a 1ms timeout" t-timeout query_timeout=1ms \
  err-ringtail-query-timeout /api/v1/query "${G[@]}" "query=count_over_time(m[10m:1ms])" \
  --data-urlencode "time=$NOW"

# a tenant without overrides is unaffected by all of it
expect_ok "t-free: query m" t-free /api/v1/query "${G[@]}" "query=m" --data-urlencode "time=$NOW"
expect_ok "t-free: sum_over_time(m[10m])" t-free /api/v1/query "${G[@]}" \
  "query=sum_over_time(m[10m])" --data-urlencode "time=$NOW"
expect_ok "t-free: range query over 2h" t-free /api/v1/query_range "${G[@]}" "query=m" \
  --data-urlencode "start=$((NOW - 7200))" --data-urlencode "end=$NOW" --data-urlencode "step=60"
expect_ok "t-free: /api/v1/series" t-free /api/v1/series "${G[@]}" "match[]=m"

# an overrides change is applied without a restart
expect_ok "t-reload: query m before the override" t-reload /api/v1/query "${G[@]}" "query=m" \
  --data-urlencode "time=$NOW"
write_overrides "  t-reload:
    max_fetched_series_per_query: 2"
limited() {
  local out
  out=$(q t-reload /api/v1/query "${G[@]}" "query=m" --data-urlencode "time=$NOW")
  [ "${out%% *}" = 422 ]
}
check "t-reload: the new override is in force without a restart" wait_for 30 "override" limited
expect_limit "t-reload: query m after the override" t-reload max_fetched_series_per_query=2 \
  err-ringtail-max-series-per-query /api/v1/query "${G[@]}" "query=m" --data-urlencode "time=$NOW"
check "same process throughout" rt_alive
write_overrides ""
unlimited() { ! limited; }
check "t-reload: removing the override lifts the limit" wait_for 30 "override gone" unlimited
rt_stop

# promtool, as a client sees the error (single tenant "anonymous", no header)
cat >"$OVR" <<EOF
overrides:
  anonymous:
    max_fetched_series_per_query: 2
EOF
RT_PORT=
rt_start "$IT_TMP/data2" -auth.mode=none -runtime-config.file="$OVR" || exit 1
check "push 5 series as the single tenant" push ""
promtool query instant "$RT_URL" m >"$IT_TMP/promtool.out" 2>&1
rc=$?
check "promtool query instant fails (exit $rc)" [ "$rc" != 0 ]
check "promtool shows the execution error with the limit and its docs id" \
  bash -c "grep -q 'execution' '$IT_TMP/promtool.out' && grep -q 'max_fetched_series_per_query=2' '$IT_TMP/promtool.out' && grep -q 'err-ringtail-max-series-per-query' '$IT_TMP/promtool.out'"
sed 's/^/    promtool: /' "$IT_TMP/promtool.out" | head -3
check "promtool query instant of one series succeeds" promtool query instant "$RT_URL" 'm{i="1"}'
rt_stop
finish
