#!/usr/bin/env bash
# smoke.sh - the binary as a newcomer meets it: -help, a YAML config file, logs, operational
# endpoints, one write and its read-back over every read API, with and without /prometheus.
source "$(dirname "$0")/lib.bash"

[ -x "$RINGTAIL_BIN" ] || { it_log "no ringtail binary at $RINGTAIL_BIN"; exit 1; }

"$RINGTAIL_BIN" -help >"$IT_TMP/help.txt" 2>&1
check "-help exits 0" [ $? = 0 ]
for k in server.http-listen-port ingester.data-dir validation.reject-old-samples \
         distributor.max-recv-msg-size config.file target; do
  check "-help lists -$k" grep -q -- "$k" "$IT_TMP/help.txt"
done
"$RINGTAIL_BIN" -no.such-flag=1 >"$IT_TMP/badflag.txt" 2>&1
rc=$?
check "an unknown flag is an error (exit $rc) that names it" \
  bash -c "[ $rc != 0 ] && grep -q 'no.such-flag' '$IT_TMP/badflag.txt'"

# configuration from a YAML file; a flag overrides the file
port=$(free_port)
cat >"$IT_TMP/ringtail.yaml" <<EOF
target: all
server:
  http_listen_address: 127.0.0.1
  http_listen_port: 1
ingester:
  data_dir: $IT_TMP/data
EOF
RT_PORT=$port
RT_URL=http://127.0.0.1:$port
RT_LOG=$IT_TMP/ringtail.log
"$RINGTAIL_BIN" -config.file="$IT_TMP/ringtail.yaml" -server.http-listen-port="$port" >"$RT_LOG" 2>&1 &
RT_PID=$!
track "$RT_PID"
check "starts from a YAML file (port from the flag)" wait_for 60 "ready" http_ok "$RT_URL/ready"
check "the data directory from the YAML file is used" test -d "$IT_TMP/data"
check "logs are logfmt (ts=... level=... msg=...)" grep -qE '^ts=[^ ]+ level=[a-z]+ .*msg=' "$RT_LOG"
check "the start-up log says where to point remote_write" grep -q "/api/v1/push" "$RT_LOG"
check "the start-up log says where to point Grafana" grep -q "/prometheus" "$RT_LOG"

check "/metrics answers in the text format" bash -c "curl -sf '$RT_URL/metrics' | grep -q '^# TYPE '"
check "/api/v1/status/buildinfo has a version" \
  bash -c "curl -sf '$RT_URL/api/v1/status/buildinfo' | jq -e '.status == \"success\" and (.data.version | length > 0)' >/dev/null"
check "/config shows the effective configuration" bash -c "curl -sf '$RT_URL/config' | grep -q '$IT_TMP/data'"

# one write, read back everywhere
python3 - "$port" <<'EOF'
import os, sys, time
sys.path.insert(0, os.environ["IT_DIR"])
import rwtool as rw
now = int(time.time() * 1000)
body = rw.snappy(rw.write_request(
    [([("__name__", "smoke_requests_total"), ("job", "smoke"), ("path", "/a")], [(now - 1000, 1), (now, 2)]),
     ([("__name__", "smoke_requests_total"), ("job", "smoke"), ("path", "/b")], [(now, 5)]),
     ([("__name__", "smoke_temperature"), ("job", "smoke"), ("room", "hall")], [(now, 21.5)])],
    [rw.metadata(1, "smoke_requests_total", "Requests served."), rw.metadata(2, "smoke_temperature", "Degrees.")]))
st, text = rw.post("127.0.0.1", int(sys.argv[1]), "/api/v1/push", body)
print("  push -> %d %s" % (st, text.strip()[:100]))
sys.exit(0 if st in (200, 204) else 1)
EOF
check "a valid push is accepted" [ $? = 0 ]

for prefix in "" /prometheus; do
  out=$(curl -sf "$RT_URL$prefix/api/v1/series" --get --data-urlencode 'match[]={job="smoke"}' | jq -c '[.data[] | .path // .room] | sort')
  check "GET $prefix/api/v1/series finds the 3 series ($out)" [ "$out" = '["/a","/b","hall"]' ]
  out=$(curl -sf "$RT_URL$prefix/api/v1/series" --data-urlencode 'match[]=smoke_requests_total{path=~"/.*"}' | jq -c '[.data[].path] | sort')
  check "POST $prefix/api/v1/series with a regex matcher ($out)" [ "$out" = '["/a","/b"]' ]
  out=$(curl -sf "$RT_URL$prefix/api/v1/labels" --get --data-urlencode 'match[]={job="smoke"}' | jq -c '.data')
  check "$prefix/api/v1/labels ($out)" [ "$out" = '["__name__","job","path","room"]' ]
  out=$(curl -sf "$RT_URL$prefix/api/v1/label/path/values" | jq -c '.data')
  check "$prefix/api/v1/label/path/values ($out)" [ "$out" = '["/a","/b"]' ]
  out=$(curl -sf "$RT_URL$prefix/api/v1/metadata" | jq -c '.data.smoke_requests_total[0].type')
  check "$prefix/api/v1/metadata keeps the sent metadata ($out)" [ "$out" = '"counter"' ]
done
out=$(curl -s -o /dev/null -w '%{http_code}' "$RT_URL/api/v1/series")
check "/api/v1/series without match[] is a 400 ($out)" [ "$out" = 400 ]
out=$(curl -s "$RT_URL/api/v1/series" --get --data-urlencode 'match[]={job=~"("}' | jq -r '.errorType')
check "a bad regex is a bad_data error ($out)" [ "$out" = bad_data ]

check "SIGTERM stops ringtail cleanly" rt_stop
finish
