#!/usr/bin/env bash
# delete_series.sh - POST /api/v1/admin/tsdb/delete_series against a real ringtail: a partial
# time range and whole series are hidden from every read, the same series of other tenants are
# untouched, the deletion survives a restart (SIGTERM and kill -9), samples written after it
# stay visible, bad requests answer 400 and delete nothing.
source "$(dirname "$0")/lib.bash"

rt_start "$IT_TMP/data" -auth.mode=header -ingester.chunk-max-samples=20 || exit 1

NOW=$(date +%s)
T0=$(((NOW - 600) * 1000))
# per tenant: d{i="0".."2"} with 61 samples, one every 10 s, from T0 (chunks of 20 samples, so
# that closed chunks in RocksDB and the open head chunk are both read through the tombstones)
push() {
  python3 - "$RT_PORT" "$1" "$T0" "$2" <<'EOF'
import os, sys
sys.path.insert(0, os.environ["IT_DIR"])
import rwtool as rw
t0 = int(sys.argv[3])
extra = sys.argv[4] == "extra"
if extra:  # one newer sample per series, after the deletion
    series = [([("__name__", "d"), ("i", str(i))], [(t0 + 610000, 100.0)]) for i in range(3)]
else:
    series = [([("__name__", "d"), ("i", str(i))], [(t0 + k * 10000, float(k)) for k in range(61)])
              for i in range(3)]
st, text = rw.post("127.0.0.1", int(sys.argv[1]), "/api/v1/push", rw.snappy(rw.write_request(series)),
                   {"X-Scope-OrgID": sys.argv[2]})
sys.exit(0 if st in (200, 204) else 1)
EOF
}
for t in alpha beta; do
  check "push 3 series for $t" push "$t" base
done

# count TENANT SELECTOR: samples of the selector over the whole written range
count() {
  curl -s -G -H "X-Scope-OrgID: $1" --data-urlencode "query=count_over_time($2[15m])" \
    --data-urlencode "time=$((NOW + 60))" "$RT_URL/api/v1/query" |
    jq -r '[.data.result[] | (.value[1] | tonumber)] | add // 0'
}
nseries() {
  curl -s -G -H "X-Scope-OrgID: $1" --data-urlencode "match[]=$2" "$RT_URL/api/v1/series" |
    jq -r '.data | length'
}
del() { # TENANT ARGS... -> prints the HTTP status
  local t=$1
  shift
  curl -s -o "$IT_TMP/del.body" -w '%{http_code}' -X POST -H "X-Scope-OrgID: $t" "$@" \
    "$RT_URL/api/v1/admin/tsdb/delete_series"
}
expect() { # DESCRIPTION WANT COMMAND...
  local what=$1 want=$2
  shift 2
  local got
  got=$("$@")
  if [ "$got" = "$want" ]; then ok "$what ($got)"; else notok "$what: want $want, got $got"; fi
}

expect "alpha d{i=\"0\"} has 61 samples" 61 count alpha 'd{i="0"}'

# bad requests: 400, nothing deleted
expect "no match[] -> 400" 400 del alpha
check "  with errorType bad_data" bash -c "jq -e '.errorType == \"bad_data\"' '$IT_TMP/del.body' >/dev/null"
expect "unparsable match[] -> 400" 400 del alpha --data-urlencode 'match[]=d{i="0"'
check "  with a parse error" bash -c "jq -e '.errorType == \"bad_data\" and (.error | test(\"parse error\"))' \
  '$IT_TMP/del.body' >/dev/null"
expect "match[] matching everything -> 400" 400 del alpha --data-urlencode 'match[]={i=~".*"}'
expect "bad start -> 400" 400 del alpha --data-urlencode 'match[]=d' --data-urlencode 'start=yesterday'
expect "end before start -> 400" 400 del alpha --data-urlencode 'match[]=d' \
  --data-urlencode "start=$NOW" --data-urlencode "end=$((NOW - 60))"
expect "GET is not a deletion" 405 curl -s -o /dev/null -w '%{http_code}' -H "X-Scope-OrgID: alpha" \
  "$RT_URL/api/v1/admin/tsdb/delete_series?match[]=d"
expect "after the bad requests alpha still has 183 samples" 183 count alpha d

# partial range: samples 10..19 of d{i="0"} (10 samples)
expect "delete d{i=\"0\"} over [T0+100s, T0+190s] -> 204" 204 del alpha \
  --data-urlencode 'match[]=d{i="0"}' --data-urlencode "start=$((T0 / 1000 + 100))" \
  --data-urlencode "end=$((T0 / 1000 + 190))"
check "  with no body" test ! -s "$IT_TMP/del.body"
expect "alpha d{i=\"0\"} has 51 samples" 51 count alpha 'd{i="0"}'
expect "the deleted range reads empty" "" bash -c "curl -s -G -H 'X-Scope-OrgID: alpha' \
  --data-urlencode 'query=d{i=\"0\"}[1m]' --data-urlencode 'time=$((T0 / 1000 + 150))' \
  '$RT_URL/api/v1/query' | jq -r 'if .status == \"success\" then .data.result[].values[] else \"error\" end'"
expect "alpha d{i=\"1\"} is untouched" 61 count alpha 'd{i="1"}'
# whole series, all time (no start, no end), under /prometheus
expect "delete d{i=\"1\"} (all time, /prometheus prefix, PUT) -> 204" 204 bash -c \
  "curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'X-Scope-OrgID: alpha' \
   '$RT_URL/prometheus/api/v1/admin/tsdb/delete_series?match%5B%5D=d%7Bi%3D%221%22%7D'"
expect "alpha d{i=\"1\"} has no samples" 0 count alpha 'd{i="1"}'
expect "the series API no longer lists it (2 left)" 2 nseries alpha d
expect "beta's identical series are untouched" 183 count beta d
expect "beta's series API lists all 3" 3 nseries beta d

# restart (clean, then kill -9): the deletion holds
rt_stop
rt_start "$IT_TMP/data" -auth.mode=header -ingester.chunk-max-samples=20 || exit 1
expect "after a restart alpha d{i=\"0\"} still has 51 samples" 51 count alpha 'd{i="0"}'
expect "after a restart alpha d{i=\"1\"} still has none" 0 count alpha 'd{i="1"}'
expect "after a restart beta still has 183" 183 count beta d
rt_kill9
rt_start "$IT_TMP/data" -auth.mode=header -ingester.chunk-max-samples=20 || exit 1
expect "after kill -9 alpha d{i=\"0\"} still has 51 samples" 51 count alpha 'd{i="0"}'
expect "after kill -9 alpha d{i=\"1\"} still has none" 0 count alpha 'd{i="1"}'

# samples written after the deletion, newer than the series' newest then, are visible
check "push one newer sample per series" push alpha extra
expect "d{i=\"1\"} shows only the new sample" 1 count alpha 'd{i="1"}'
expect "d{i=\"0\"} shows 52" 52 count alpha 'd{i="0"}'
expect "a tenant with no data: 204" 204 del gamma --data-urlencode 'match[]=d'
rt_stop
finish
