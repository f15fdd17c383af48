#!/usr/bin/env bash
# sigterm_flush.sh - a clean stop flushes: on SIGTERM the ingester writes its open head chunks
# out and deletes the WAL they cover, exits 0, and the next start replays no WAL record and
# still answers every sample.
source "$(dirname "$0")/lib.bash"
trap it_cleanup EXIT

data=$IT_TMP/data
rt_start "$data" || { notok "ringtail starts"; finish; }
now=$(( $(date +%s) * 1000 ))
python3 - "$RT_PORT" "$now" <<'PY' || notok "300 series x 5 samples acknowledged"
import os, sys
sys.path.insert(0, os.environ["IT_DIR"])
import rwtool
port, now = int(sys.argv[1]), int(sys.argv[2])
body = rwtool.snappy(rwtool.write_request(
    [([("__name__", "flush_test"), ("i", str(i))], [(now - 4000 + 1000 * k, float(k)) for k in range(5)])
     for i in range(300)]))
st, msg = rwtool.post("127.0.0.1", port, "/api/v1/push", body)
sys.exit(0 if st == 200 else f"push: {st} {msg}")
PY
rt_stop
rc=$?
check "SIGTERM: exit status 0 (got $rc)" [ $rc = 0 ]
check "SIGTERM: the ingester flushed before exiting" grep -q 'msg="ingester flushed"' "$RT_LOG"
check "SIGTERM: the log ends with stopped" bash -c "tail -1 '$RT_LOG' | grep -q 'msg=\"stopped\"'"

rt_start "$data" || { notok "ringtail restarts"; finish; }
check "restart after a flush replays no WAL record" grep -q 'msg="wal replayed" records=0 ' "$RT_LOG"
n=$(rt_get "/api/v1/query" --data-urlencode 'query=count(count_over_time(flush_test[1m]))' \
     --data-urlencode "time=$((now / 1000 + 1))" | python3 -c '
import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if r else 0)')
check "every series is read back after the flushed restart (got $n of 300)" [ "$n" = 300 ]
s=$(rt_get "/api/v1/query" --data-urlencode 'query=sum(sum_over_time(flush_test[1m]))' \
     --data-urlencode "time=$((now / 1000 + 1))" | python3 -c '
import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if r else 0)')
check "every sample is read back with its value (sum $s, want 3000)" [ "$s" = 3000 ]
rt_stop
check "a second clean stop exits 0" [ $? = 0 ]
finish
