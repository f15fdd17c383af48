#!/usr/bin/env bash
# loadgen_histogram.sh - ringtail-loadgen --histogram-buckets writes classic histograms that
# histogram_quantile() reads as a real distribution (bench/query.sh relies on it), and its bad
# arguments are clear errors.
#
# 2 histograms x 12 buckets: bucket b of histogram h grows by (b+1)(b+2)/2 * (1 + h%4) every
# 15 s, so the cumulative counts of one step are 1, 3, 6, ..., 66, 78 times a factor per
# histogram; summed by le the shape stays the same, and the median (rank 39 of 78) falls in the
# bucket (1, 2.5] holding counts 36..45: 1 + 1.5 * 3/9 = 1.5.
source "$(dirname "$0")/lib.bash"

[ -x "$LOADGEN_BIN" ] || { it_log "no ringtail-loadgen at $LOADGEN_BIN"; exit 1; }
rt_start "$IT_TMP/data" || exit 1

# bad arguments
"$LOADGEN_BIN" --url "$RT_URL/api/v1/push" --series 13 --histogram-buckets 12 --rounds 1 \
  >"$IT_TMP/bad1.out" 2>&1
rc=$?
check "--series not a multiple of the buckets: exit 2 with a message" \
  bash -c "[ $rc = 2 ] && grep -q 'multiples of --histogram-buckets' '$IT_TMP/bad1.out'"
"$LOADGEN_BIN" --histogram-buckets 13 --rounds 1 >"$IT_TMP/bad2.out" 2>&1
rc=$?
check "13 buckets: exit 2 with a message" bash -c "[ $rc = 2 ] && grep -q 'must be 2..12' '$IT_TMP/bad2.out'"
"$LOADGEN_BIN" --histogram-buckets 4 --check /dev/null --dump /dev/null >"$IT_TMP/bad3.out" 2>&1
rc=$?
check "--check refuses histogram data: exit 2" \
  bash -c "[ $rc = 2 ] && grep -q 'does not read --histogram-buckets' '$IT_TMP/bad3.out'"

# the data: 40 samples at 15 s, the last one 60 s ago
end_s=$(( $(date +%s) - 60 ))
"$LOADGEN_BIN" --url "$RT_URL/api/v1/push" --series 24 --histogram-buckets 12 --metric-prefix hq \
  --rounds 40 --step 15000 --start-ts $(( (end_s - 39 * 15) * 1000 )) --duration 0 \
  --concurrency 2 >"$IT_TMP/load.out" 2>&1
check "loadgen exits 0 in histogram mode" [ $? = 0 ]
check "all 960 samples accepted" grep -q 'samples_ok=960 ' "$IT_TMP/load.out"

rt_get /api/v1/series --get --data-urlencode 'match[]=hq_bucket' >"$IT_TMP/series.json"
check "24 series hq_bucket, job=loadgen-histogram, 12 le values ending with +Inf, series 0 and 1" \
  python3 - "$IT_TMP/series.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))["data"]
les = sorted({s["le"] for s in d}, key=float)
ok = (len(d) == 24 and {s["job"] for s in d} == {"loadgen-histogram"}
      and les == ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
      and {s["series"] for s in d} == {"0", "1"} and {s["instance"] for s in d} == {"host-0"})
sys.exit(0 if ok else print(d[:3], les) or 1)
EOF

rt_get /api/v1/query --get --data-urlencode 'query=hq_bucket{series="1"}' \
  --data-urlencode "time=$end_s" >"$IT_TMP/buckets.json"
check "histogram 1's buckets are cumulative: 2 x (1, 3, 6, ..., 78) x the step count" \
  python3 - "$IT_TMP/buckets.json" "$end_s" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["data"]["result"]
got = [float(s["value"][1]) for s in sorted(r, key=lambda s: float(s["metric"]["le"]))]
steps = int(sys.argv[2]) * 1000 // 15000
want = [float(steps * (b + 1) * (b + 2) // 2 * 2) for b in range(12)]
sys.exit(0 if got == want else print(got, want) or 1)
EOF

rt_get /api/v1/query --get --data-urlencode 'query=histogram_quantile(0.5, sum by (le) (rate(hq_bucket[5m])))' \
  --data-urlencode "time=$end_s" >"$IT_TMP/q.json"
check "histogram_quantile(0.5, sum by (le) (rate(...))) is 1.5" \
  python3 -c 'import json, sys; r = json.load(open(sys.argv[1]))["data"]["result"]; sys.exit(0 if len(r) == 1 and abs(float(r[0]["value"][1]) - 1.5) < 1e-9 else print(r) or 1)' "$IT_TMP/q.json"

finish
