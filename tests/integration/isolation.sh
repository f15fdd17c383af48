#!/usr/bin/env bash
# isolation.sh - tenants never see, count or touch each other's data.
#
# `ringtail -target=all -auth.mode=header`; three tenants (ta, tb, tc) write series with the very
# same labels (iso_metric{job="iso",instance="i1"}, a different value per tenant), the same
# metric's metadata with a help text naming the tenant, an exemplar naming the tenant, and one
# series only they have (only_<tenant>{owner=<tenant>}). Then, for every tenant and every read
# endpoint — query, query_range, series, labels, label values, metadata, exemplars, and the
# per-tenant statistics and deletion endpoints where this build has them — the answer holds that
# tenant's data only, counted once. Parameter tricks (other tenants' names in matchers,
# parameters or headers, case, several tenants in one header, the /prometheus prefix) reveal
# nothing more.
source "$(dirname "$0")/lib.bash"

command -v jq >/dev/null || skip "jq is not installed"
TENANTS=(ta tb tc)
declare -A VAL=([ta]=1 [tb]=2 [tc]=3)

rt_start "$IT_TMP/data" -auth.mode=header || { notok "ringtail starts"; finish; }
is2xx() { [[ $1 == 20? ]]; }
mkdir -p "$IT_TMP/b"
python3 "$IT_DIR/authtool.py" isobody "$IT_TMP/b" ta:1 tb:2 tc:3 || { notok "bodies"; finish; }
for t in "${TENANTS[@]}"; do
  st=$(curl -s -o "$IT_TMP/push.out" -w '%{http_code}' --max-time 10 -H "X-Scope-OrgID: $t" \
    -H 'Content-Type: application/x-protobuf' -H 'Content-Encoding: snappy' \
    --data-binary @"$IT_TMP/b/$t.bin" "$RT_URL/api/v1/push")
  check "tenant $t writes its series ($st)" is2xx "$st"
done

# q TENANT PATH [CURL ARGS...]: GET with the tenant's header; JSON to stdout
q() { local t=$1 p=$2; shift 2; curl -s --max-time 10 -H "X-Scope-OrgID: $t" "$@" "$RT_URL$p"; }
# jqcheck DESCRIPTION JSON JQ-EXPR
jqcheck() {
  if jq -e "$3" >/dev/null 2>&1 <<<"$2"; then ok "$1"; else notok "$1"; echo "    got: ${2:0:400}"; fi
}
now=$(date +%s)

for t in "${TENANTS[@]}"; do
  v=${VAL[$t]}
  others=$(printf '%s\n' "${TENANTS[@]}" | grep -vx "$t" | jq -R . | jq -sc .)
  it_log "tenant $t"
  j=$(q "$t" /api/v1/query --get --data-urlencode 'query=iso_metric')
  jqcheck "$t query: one iso_metric series, its own value $v" "$j" \
    ".status == \"success\" and (.data.result | length == 1) and (.data.result[0].value[1] == \"$v\")"
  j=$(q "$t" /api/v1/query --get --data-urlencode 'query=count({__name__=~".+"})')
  jqcheck "$t query: counts 2 series in all" "$j" '.data.result[0].value[1] == "2"'
  j=$(q "$t" /api/v1/query --get --data-urlencode 'query=sum(iso_metric)')
  jqcheck "$t query: sum over identical labels is its own value" "$j" ".data.result[0].value[1] == \"$v\""
  j=$(q "$t" /api/v1/query --get --data-urlencode 'query=count_over_time(iso_metric[10m])')
  jqcheck "$t query: count_over_time sees its 9 samples only" "$j" '.data.result[0].value[1] == "9"'
  j=$(q "$t" /api/v1/query_range --get --data-urlencode 'query=sum(iso_metric)' \
      --data-urlencode "start=$((now - 100))" --data-urlencode "end=$now" --data-urlencode step=10)
  jqcheck "$t query_range: every point is its own value" "$j" \
    "(.data.result | length == 1) and ([.data.result[0].values[][1]] | unique == [\"$v\"])"
  j=$(q "$t" /api/v1/series --get --data-urlencode 'match[]={__name__=~".+"}')
  jqcheck "$t series: exactly its two series" "$j" \
    "[.data[].__name__] | sort == [\"iso_metric\", \"only_$t\"]"
  j=$(q "$t" /api/v1/series --get --data-urlencode 'match[]={job="iso"}' --data-urlencode "start=$((now - 3600))" --data-urlencode "end=$now")
  jqcheck "$t series with a time range: the same two" "$j" '.data | length == 2'
  j=$(q "$t" /api/v1/labels)
  jqcheck "$t labels: its own label names" "$j" '.data | sort == ["__name__", "instance", "job", "owner"]'
  j=$(q "$t" /api/v1/label/__name__/values)
  jqcheck "$t label values of __name__: its metrics only" "$j" ".data == [\"iso_metric\", \"only_$t\"]"
  j=$(q "$t" /api/v1/label/owner/values)
  jqcheck "$t label values of owner: itself only" "$j" ".data == [\"$t\"]"
  j=$(q "$t" /api/v1/label/owner/values --get --data-urlencode 'match[]={owner=~".+"}')
  jqcheck "$t label values with a match[]: itself only" "$j" ".data == [\"$t\"]"
  j=$(q "$t" /api/v1/metadata)
  jqcheck "$t metadata: its own help text for the shared metric" "$j" \
    ".data.iso_metric | length == 1 and .[0].help == \"help of $t\""
  jqcheck "$t metadata: no other tenant's metric" "$j" "(.data | keys | sort) == [\"iso_metric\", \"only_$t\"]"
  j=$(q "$t" /api/v1/metadata --get --data-urlencode 'metric=iso_metric')
  jqcheck "$t metadata?metric=: one entry, its own" "$j" ".data.iso_metric == [{\"type\":\"counter\",\"help\":\"help of $t\",\"unit\":\"seconds\"}] or (.data.iso_metric | length == 1 and .[0].help == \"help of $t\")"
  j=$(q "$t" /api/v1/query_exemplars --get --data-urlencode 'query=iso_metric' \
      --data-urlencode "start=$((now - 3600))" --data-urlencode "end=$((now + 60))")
  jqcheck "$t exemplars: none of another tenant" "$j" \
    ".status == \"success\" and ([.data[]?.exemplars[]?.labels.trace_id] - [\"$t\"] | length == 0)"
  # tricks: another tenant's names in matchers and parameters
  for o in $(jq -r '.[]' <<<"$others"); do
    j=$(q "$t" /api/v1/query --get --data-urlencode "query=only_$o")
    jqcheck "$t cannot query only_$o" "$j" '.status == "success" and (.data.result | length == 0)'
    j=$(q "$t" /api/v1/query --get --data-urlencode "query={owner=\"$o\"}")
    jqcheck "$t cannot match owner=$o" "$j" '.data.result | length == 0'
    j=$(q "$t" /api/v1/series --get --data-urlencode "match[]={__name__=\"only_$o\"}")
    jqcheck "$t series of only_$o: none" "$j" '.data | length == 0'
    j=$(q "$t" "/api/v1/query?X-Scope-OrgID=$o&orgId=$o&tenant=$o" --get --data-urlencode 'query=iso_metric')
    jqcheck "$t with ?X-Scope-OrgID=$o in the URL still gets its own value" "$j" ".data.result[0].value[1] == \"$v\""
    j=$(q "$t" /api/v1/query -d "query=iso_metric" -d "X-Scope-OrgID=$o")
    jqcheck "$t with X-Scope-OrgID=$o in a form body still gets its own value" "$j" ".data.result[0].value[1] == \"$v\""
    j=$(q "$t" /api/v1/query --get --data-urlencode "query=iso_metric{__tenant__=\"$o\"}")
    jqcheck "$t with a __tenant__ matcher gets nothing" "$j" '.data.result | length == 0'
  done
  j=$(q "$t" /prometheus/api/v1/label/__name__/values)
  jqcheck "$t under /prometheus: the same" "$j" ".data == [\"iso_metric\", \"only_$t\"]"
  T=$(tr a-z A-Z <<<"$t")
  j=$(q "$T" /api/v1/label/__name__/values)
  jqcheck "$T (another case) is another tenant: empty" "$j" '.status == "success" and .data == []'
done

# several tenants in one request
j=$(curl -s --max-time 10 -H 'X-Scope-OrgID: ta|tb' "$RT_URL/api/v1/query?query=iso_metric")
st=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'X-Scope-OrgID: ta|tb' "$RT_URL/api/v1/query?query=iso_metric")
check "a multi-tenant header 'ta|tb' is refused (400)" [ "$st" = 400 ]
j=$(curl -s --max-time 10 -H 'X-Scope-OrgID: ta' -H 'X-Scope-OrgID: tb' "$RT_URL/api/v1/query" --get --data-urlencode 'query=count(iso_metric)')
jqcheck "two X-Scope-OrgID headers never union two tenants" "$j" '.data.result[0].value[1] == "1"'
j=$(q tnone /api/v1/series --get --data-urlencode 'match[]={__name__=~".+"}')
jqcheck "a tenant that never wrote sees no series" "$j" '.status == "success" and .data == []'
j=$(q tnone /api/v1/metadata)
jqcheck "a tenant that never wrote sees no metadata" "$j" '.status == "success" and .data == {}'

# per-tenant statistics and deletion, where this build has them
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'X-Scope-OrgID: ta' "$@"; }
if [ "$(code "$RT_URL/api/v1/user_stats")" != 404 ]; then
  for t in "${TENANTS[@]}"; do
    j=$(q "$t" /api/v1/user_stats)
    jqcheck "$t user_stats: counts its own 2 series" "$j" '(.numSeries // .data.numSeries // .num_series) == 2'
  done
else
  it_log "no /api/v1/user_stats on this build"
fi
if [ "$(code "$RT_URL/api/v1/cardinality/label_names")" != 404 ]; then
  for t in "${TENANTS[@]}"; do
    j=$(q "$t" /api/v1/cardinality/label_names)
    jqcheck "$t cardinality/label_names: its own 2 metric names, 5 label values" "$j" \
      '.label_values_count_total == 5 and ([.cardinality[] | select(.label_name == "__name__") | .label_values_count] == [2])'
    jqcheck "$t cardinality/label_names: no other owner" "$j" '[.. | strings] | map(select(test("^only_t[a-z]$"))) | unique | length <= 1'
    j=$(q "$t" /api/v1/cardinality/label_values --get --data-urlencode 'label_names[]=owner')
    jqcheck "$t cardinality/label_values of owner: itself only" "$j" \
      "[.. | objects | select(has(\"label_value\")) | .label_value] | unique == [\"$t\"]"
  done
else
  it_log "no /api/v1/cardinality on this build"
fi
DEL=
for p in /api/v1/admin/tsdb/delete_series /api/v1/delete_series; do
  if [ "$(code -X POST "$RT_URL$p?match[]=nothing_here")" != 404 ]; then DEL=$p; break; fi
done
if [ -n "$DEL" ]; then
  st=$(curl -s -o "$IT_TMP/del.out" -w '%{http_code}' --max-time 30 -X POST -H 'X-Scope-OrgID: tc' \
    "$RT_URL$DEL" --data-urlencode 'match[]={job="iso"}')
  check "tc deletes all its series with $DEL ($st)" is2xx "$st"
  check "tc's data is gone" wait_for 30 "deletion" bash -c \
    "curl -s -H 'X-Scope-OrgID: tc' '$RT_URL/api/v1/query?query=count(iso_metric)' | jq -e '.data.result | length == 0' >/dev/null"
  for t in ta tb; do
    j=$(q "$t" /api/v1/query --get --data-urlencode 'query=count_over_time(iso_metric[10m])')
    jqcheck "$t's identical series survive tc's deletion" "$j" '.data.result[0].value[1] == "9"'
  done
else
  it_log "no delete_series endpoint on this build"
fi

# the data on disk: one copy per tenant, not merged
check "ringtail stops cleanly" rt_stop
"$RINGTAIL_BIN" dump -ingester.data-dir="$IT_TMP/data" >"$IT_TMP/dump.txt" 2>"$IT_TMP/dump.err"
for t in ta tb; do
  n=$(grep -c "^$t iso_metric" "$IT_TMP/dump.txt" || true)
  [ "$n" = 0 ] && n=$(grep -c "^$t .*iso_metric" "$IT_TMP/dump.txt" || true)
  check "ringtail dump holds $t's 9 iso_metric samples under $t ($n)" [ "$n" = 9 ]
done
finish
