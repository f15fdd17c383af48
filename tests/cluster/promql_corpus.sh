#!/usr/bin/env bash
# promql_corpus.sh - the whole upstream PromQL corpus through a local cluster (scripts/cluster.sh:
# 3 zones x 2 ingesters, 2 distributors, 2 queriers, RF 3) whose queriers split every range query
# into 1m parts and shard aggregations into 4 series shards: load blocks are remote-written to a
# distributor, evals asked of a querier. Every file must pass, fail and skip exactly the evals
# it does through a single plain ringtail process.
source "$(dirname "$0")/../integration/lib.bash"

[ -x "$RINGTAIL_BIN" ] || skip "no $RINGTAIL_BIN"
PROG=$(dirname "$RINGTAIL_BIN")/promqltest_prog
[ -x "$PROG" ] || skip "no $PROG"
CORPUS=$IT_ROOT/../shared/promqltest
[ -d "$CORPUS" ] || CORPUS=$IT_ROOT/../../shared/promqltest
[ -d "$CORPUS" ] || skip "upstream PromQL test files not found next to the repository"

CLUSTER=$IT_ROOT/scripts/cluster.sh
export RT_CLUSTER_DIR=$IT_TMP/cluster
export RT_BUILD_DIR=$(dirname "$RINGTAIL_BIN")
export RT_CLUSTER_ARGS="-auth.mode=header -validation.reject-old-samples=false -querier.split-queries-by-interval=1m -querier.total-shards=4"
trap 'rc=$?; "$CLUSTER" down >/dev/null 2>&1; (exit $rc); it_cleanup' EXIT

# the reference: one plain process (one tenant per corpus file, by X-Scope-OrgID)
rt_start "$IT_TMP/plain" -auth.mode=header -validation.reject-old-samples=false -querier.split-queries-by-interval=0 ||
  { notok "a plain ringtail starts"; finish; }
"$PROG" --port "$RT_PORT" "$CORPUS" >"$IT_TMP/plain.out" 2>"$IT_TMP/plain.err"
check "the corpus runs through the plain ringtail" [ $? = 0 ]
rt_stop

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
DIST=$(sed -n 's/.*distributor=http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' <<<"$up")
QRY=$(sed -n 's/.*querier=http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' <<<"$up")

t0=$SECONDS
"$PROG" --port "$QRY" --write-port "$DIST" "$CORPUS" >"$IT_TMP/cluster.out" 2>"$IT_TMP/cluster.err"
check "the corpus runs through the cluster ($((SECONDS - t0))s)" [ $? = 0 ]

counts() { grep -E ' (passed|skipped) ' "$1"; }
echo "  plain:   $(tail -n 1 "$IT_TMP/plain.out")"
echo "  cluster: $(tail -n 1 "$IT_TMP/cluster.out")"
check "the corpus ran (at least 20 files)" [ "$(grep -c ' passed ' "$IT_TMP/plain.out")" -ge 20 ]
if diff <(counts "$IT_TMP/plain.out") <(counts "$IT_TMP/cluster.out") >"$IT_TMP/diff.txt"; then
  ok "every file passes, fails and skips the same evals through the splitting, sharding cluster"
else
  cat "$IT_TMP/diff.txt"
  notok "every file passes, fails and skips the same evals through the splitting, sharding cluster"
fi
finish
