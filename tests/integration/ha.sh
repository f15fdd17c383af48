#!/usr/bin/env bash
# ha.sh - HA pairs against real ringtail processes: two "Prometheus replicas" (hatool.py) write
# the same series with external labels cluster / __replica__ and sample values that differ per
# replica (a: 1, b: 2 in part 1; a: 1000+i, b: 2000+i in part 2).
#
#   Part 1, one process (-target=all, failover timeout 2s): only the elected replica's samples
#   are stored, without the replica label; the other gets 202; after the elected one has been
#   silent for longer than the timeout the other is elected and stored; metrics and the
#   /distributor/ha_tracker page; a tenant with accept_ha_samples: false in the runtime config
#   keeps both replicas.
#   Part 2, a cluster (scripts/cluster.sh: 3 zones x 2 ingesters, 2 distributors, RF 3): the two
#   replicas write through the two distributors alternately, with a failover in the middle; no
#   timestamp is ever accepted from both, and the stored data never mixes replicas at one
#   timestamp.
source "$(dirname "$0")/lib.bash"

command -v python3 >/dev/null || skip "no python3"
command -v jq >/dev/null || skip "no jq"
HT="python3 $IT_DIR/hatool.py"
jqe() { jq -e "$@" >/dev/null; }

# ---------------------------------------------------------------- part 1: one process
cat >"$IT_TMP/overrides.yaml" <<'EOF'
overrides:
  noha:
    accept_ha_samples: false
EOF
rt_start "$IT_TMP/data" -auth.mode=header -distributor.ha-tracker.failover-timeout=2s \
  -runtime-config.file="$IT_TMP/overrides.yaml" || { notok "ringtail starts"; finish; }
ok "ringtail -target=all starts with a 2s failover timeout"

now=$(( $(date +%s) * 1000 - 120000 ))
# replica a sends every 100 ms for 4s (b, tried now and then, is refused), then stops; b is
# elected once a has been silent long enough
fo=$($HT failover "$RT_URL" "" c1 "$now" 4)
it_log "failover: $fo"
check "replica a's pushes are accepted (200)" jqe '.a | keys == ["200"]' <<<"$fo"
check "replica b's pushes are answered 202 while a is elected" jqe '.b_before | keys == ["202"]' <<<"$fo"
check "replica b is elected after a stopped" jqe '.b_status == 200' <<<"$fo"
# a's pushes refresh the election at most every timeout/3 (the distributor's cache), so the
# failover comes between 2/3 of the timeout and the timeout after a's last push
check "not before 2/3 of the failover timeout, not much after it" \
  jqe '.b_after_s >= 1.2 and .b_after_s < 4' <<<"$fo"
check "now replica a gets 202" jqe '.a_after == 202' <<<"$fo"

at=$(( now / 1000 + 60 ))
raw=$($HT raw "$RT_URL" "" 'ha_test{cluster="c1"}' "$at" 10m)
check "one series stored, without the replica label" \
  jqe 'length == 1 and (.[0].labels | has("__replica__") | not) and .[0].labels.cluster == "c1"' <<<"$raw"
a_last=$(jq .a_last_ts <<<"$fo")
b_ts=$(jq .b_ts <<<"$fo")
check "samples up to a's last push are a's (1), b's sample after it (2), nothing else" \
  jqe "(.[0].samples | map(select(.[0] <= $a_last)) | all(.[1] == 1) and length > 0) and
       (.[0].samples | map(select(.[0] > $a_last)) == [[$b_ts, 2]])" <<<"$raw"
n=$(rt_get /api/v1/series -H 'X-Scope-OrgID: anonymous' --get --data-urlencode 'match[]={__replica__=~".+"}' | jq '.data | length')
check "no stored series carries __replica__ ($n)" [ "$n" = 0 ]

metrics=$(rt_get /metrics)
dedup=$(grep '^ringtail_distributor_deduped_samples_total{' <<<"$metrics" | grep 'user="anonymous"' | grep 'cluster="c1"' | awk '{print $2}')
check "deduplicated samples counted per tenant and cluster (${dedup:-none})" [ "${dedup:-0}" -ge 3 ]
disc=$(grep '^ringtail_discarded_samples_total{' <<<"$metrics" | grep 'reason="ha_duplicate"' | grep 'user="anonymous"' | awk '{print $2}')
check "and as discarded samples with reason ha_duplicate (${disc:-none})" [ "${disc:-0}" -ge 3 ]
chg=$(grep '^ringtail_ha_tracker_elected_replica_changes_total{' <<<"$metrics" | grep 'cluster="c1"' | awk '{print $2}')
check "the change of elected replica is counted (${chg:-none})" [ "${chg:-0}" -ge 1 ]
page=$(rt_get /distributor/ha_tracker -H 'X-Scope-OrgID: anonymous')
check "/distributor/ha_tracker lists b as elected for c1" \
  jqe '.data | map(select(.cluster == "c1" and .elected == "b")) | length == 1' <<<"$page"
page=$(rt_get /distributor/ha_tracker -H 'X-Scope-OrgID: other')
check "and nothing for another tenant" jqe '.data == []' <<<"$page"

# a tenant with HA deduplication off keeps both replicas and their labels
sa=$($HT push "$RT_URL" noha c1 a "$now" 1)
sb=$($HT push "$RT_URL" noha c1 b "$now" 2)
check "accept_ha_samples: false: both replicas accepted ($sa $sb)" [ "$sa,$sb" = 200,200 ]
raw=$(python3 "$IT_DIR/hatool.py" raw "$RT_URL" noha 'ha_test' "$at" 10m)
check "and stored as two series with their replica label" \
  jqe 'length == 2 and ([.[].labels.__replica__] | sort == ["a","b"])' <<<"$raw"
check "ringtail stops cleanly" rt_stop

# ---------------------------------------------------------------- part 2: a cluster
[ -x "$(dirname "$RINGTAIL_BIN")/ringtail" ] || { finish; }
CLUSTER=$IT_ROOT/scripts/cluster.sh
export RT_CLUSTER_DIR=$IT_TMP/cluster
export RT_BUILD_DIR=$(dirname "$RINGTAIL_BIN")
export RT_HEARTBEAT_TIMEOUT=10s
export RT_CLUSTER_ARGS="-auth.mode=header -distributor.ha-tracker.failover-timeout=2s"
trap 'rc=$?; "$CLUSTER" down >/dev/null 2>&1; (exit $rc); it_cleanup' EXIT
up=
for try in 1 2 3 4 5; do
  export RT_CLUSTER_PORT=$((20000 + (RANDOM % 120) * 100))
  if up=$("$CLUSTER" up 2>"$IT_TMP/up.err"); then
    break
  fi
  cat "$IT_TMP/up.err"
  "$CLUSTER" down >/dev/null 2>&1
  rm -rf "$RT_CLUSTER_DIR"
  up=
done
[ -n "$up" ] || { notok "the cluster starts"; finish; }
ok "the cluster starts: $up"
D1=http://127.0.0.1:$((RT_CLUSTER_PORT + 6))
D2=http://127.0.0.1:$((RT_CLUSTER_PORT + 7))
QRY=$(sed -n 's/.*querier=\([^ ]*\).*/\1/p' <<<"$up")

# fresh arbiters abstain for the failover timeout (503, retried), then elect; then the rounds
start=$(( $(date +%s) * 1000 - 300000 ))
log=$IT_TMP/run.log
out=$($HT run "$D1,$D2" t2 c2 "$start" 80 25 3 "$log")
read -r st waited <<<"$out"
check "once the arbiters' start-up wait is over, replica a is elected ($st after ${waited}s)" \
  [ "$st" = 200 ]
check "the replicas pushed through both distributors" \
  bash -c "[ \$(jq -r .url '$log' | sort -u | wc -l) = 2 ]"
verdict=$(python3 - "$log" <<'EOF'
import collections, json, sys
acc = collections.defaultdict(list)
bad = []
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["status"] == 200:
        acc[r["ts"]].append(r["replica"])
    elif r["status"] not in (202, 503):
        bad.append(r)
both = [t for t, v in acc.items() if len(v) > 1]
reps = collections.Counter(v[0] for v in acc.values())
print(json.dumps({"both": len(both), "bad": len(bad), "a": reps["a"], "b": reps["b"],
                  "first_bad": bad[:1]}))
EOF
)
it_log "pushes accepted per replica and problems: $verdict"
check "no timestamp was accepted from both replicas" jqe '.both == 0' <<<"$verdict"
check "every push was answered 200, 202 or 503" jqe '.bad == 0' <<<"$verdict"
check "a was accepted before its pause and b after the failover" jqe '.a > 0 and .b > 0' <<<"$verdict"

at=$(( start / 1000 + 200 ))
raw=$($HT raw "$QRY" t2 'ha_test{cluster="c2"}' "$at" 10m)
check "the querier reads one series without the replica label" \
  jqe 'length == 1 and (.[0].labels | has("__replica__") | not)' <<<"$raw"
mixed=$(python3 - "$log" "$raw" "$start" <<'EOF'
import json, sys
want = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["status"] == 200:
        want[r["ts"]] = (1000 if r["replica"] == "a" else 2000) + r["i"]
got = {t: v for t, v in json.loads(sys.argv[2])[0]["samples"] if t >= int(sys.argv[3])}
wrong = [t for t in got if want.get(t) != got[t]]
missing = [t for t in want if t not in got]
print(json.dumps({"stored": len(got), "accepted": len(want), "wrong": len(wrong),
                  "missing": len(missing)}))
EOF
)
it_log "stored samples against accepted pushes: $mixed"
check "every stored sample is the accepted replica's value, none from the other" jqe '.wrong == 0' <<<"$mixed"
check "every accepted sample is stored" jqe '.missing == 0 and .stored > 0' <<<"$mixed"
changes=0
for d in "$D1" "$D2"; do
  c=$(curl -sf "$d/metrics" | grep '^ringtail_ha_tracker_elected_replica_changes_total{' | grep 'cluster="c2"' | awk '{print $2}')
  changes=$((changes + ${c:-0}))
done
check "the distributors saw the elected replica change ($changes)" [ "$changes" -ge 1 ]
finish
