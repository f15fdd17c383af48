#!/usr/bin/env bash
# prometheus_remote_write.sh - a real Prometheus (Debian's 2.42) remote-writes to ringtail.
#
# Prometheus scrapes itself and a prometheus-node-exporter every second, on their own ports, and
# remote-writes everything to `ringtail -target=all` with a short batch deadline and one shard (so
# samples arrive in order and "sent up to time T" is one number). After at least 30 s of scrapes,
# at a cutoff T, once Prometheus reports having sent past T, the test compares:
#   - Prometheus' /api/v1/series with Ringtail's (set equality);
#   - per series, the raw samples Prometheus holds up to T with those in `ringtail dump`.
# Knob: RT_PROM_SECONDS (default 30): how many scrapes of each target to wait for.
source "$(dirname "$0")/lib.bash"

command -v prometheus >/dev/null || skip "prometheus is not installed (scripts/install-deps.sh)"
command -v prometheus-node-exporter >/dev/null || skip "prometheus-node-exporter is not installed"
secs=${RT_PROM_SECONDS:-30}
data=$IT_TMP/data

it_log "starting ringtail"
rt_start "$data" || exit 1

nport=$(free_port)
prometheus-node-exporter --web.listen-address=127.0.0.1:"$nport" >"$IT_TMP/node.log" 2>&1 &
node_pid=$!
track "$node_pid"
wait_for 30 "node exporter" http_ok "http://127.0.0.1:$nport/metrics" || { notok "node exporter starts"; finish; }

pport=$(free_port)
PROM=http://127.0.0.1:$pport
cat >"$IT_TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['127.0.0.1:$pport']
  - job_name: node
    static_configs:
      - targets: ['127.0.0.1:$nport']
remote_write:
  - url: $RT_URL/api/v1/push
    remote_timeout: 10s
    queue_config:
      batch_send_deadline: 500ms
      max_samples_per_send: 2000
      capacity: 10000
      min_shards: 1
      max_shards: 1
      min_backoff: 50ms
      max_backoff: 1s
    metadata_config:
      send: true
      send_interval: 5s
EOF
prometheus --config.file="$IT_TMP/prometheus.yml" --storage.tsdb.path="$IT_TMP/prom" \
  --web.listen-address=127.0.0.1:"$pport" --log.level=warn >"$IT_TMP/prometheus.log" 2>&1 &
prom_pid=$!
track "$prom_pid"
wait_for 60 "prometheus ready" http_ok "$PROM/-/ready" || { notok "prometheus starts"; tail "$IT_TMP/prometheus.log"; finish; }
it_log "prometheus on :$pport scraping itself and node exporter :$nport, writing to ringtail :$RT_PORT"

pq() { curl -sf --max-time 10 "$PROM/api/v1/query" --data-urlencode "query=$1" ${2:+--data-urlencode "time=$2"}; }
scalar() { pq "$1" | jq -r '.data.result[0].value[1] // "0"'; }
both_scraped_enough() {
  [ "$(scalar "min(count_over_time(up[10m]))")" -ge "$secs" ] 2>/dev/null &&
    [ "$(scalar "count(up == 1)")" = 2 ]
}
wait_for $((secs + 60)) "$secs scrapes of both targets" both_scraped_enough
check "Prometheus scraped both targets at least $secs times" both_scraped_enough

cutoff_ms=$(( $(date +%s%3N) - 1000 ))
cutoff_s=$(python3 -c "print('%.3f' % ($cutoff_ms / 1000))")
sent_past_cutoff() {
  local v
  v=$(curl -sf --max-time 5 "$PROM/metrics" |
      awk '/^prometheus_remote_storage_queue_highest_sent_timestamp_seconds/ {print $2}' | head -n1)
  [ -n "$v" ] && python3 -c "import sys; sys.exit(0 if float('$v') * 1000 >= $cutoff_ms + 2000 else 1)"
}
check "Prometheus reports samples sent past the cutoff" wait_for 60 "remote-write past the cutoff" sent_past_cutoff

metric() { curl -sf --max-time 5 "$PROM/metrics" | awk -v m="$1" '$1 ~ "^"m"({|$)" {s += $2} END {print s + 0}'; }
failed=$(metric prometheus_remote_storage_samples_failed_total)
retried=$(metric prometheus_remote_storage_samples_retried_total)
sent=$(metric prometheus_remote_storage_samples_total)
it_log "Prometheus remote-write: $sent samples queued, $failed failed (4xx), $retried retried (5xx)"
check "no remote-write batch was rejected by ringtail (samples_failed_total = $failed)" [ "$failed" = 0 ]

window=$(( (cutoff_ms / 1000) - $(date -r "$IT_TMP/prometheus.yml" +%s) + 120 ))
curl -sf --max-time 30 "$PROM/api/v1/series" --data-urlencode 'match[]={__name__=~".+"}' \
  --data-urlencode "end=$cutoff_s" >"$IT_TMP/prom_series_cut.json"
pq "{__name__=~\".+\"}[${window}s]" "$cutoff_s" >"$IT_TMP/prom_samples.json"
check "Prometheus answered the series and sample queries" \
  bash -c "jq -e '.status == \"success\"' '$IT_TMP/prom_series_cut.json' >/dev/null && jq -e '.status == \"success\"' '$IT_TMP/prom_samples.json' >/dev/null"
rt_get /api/v1/series --get --data-urlencode 'match[]={__name__=~".+"}' >"$IT_TMP/rt_series.json"
check "Ringtail answered /api/v1/series" bash -c "jq -e '.status == \"success\"' '$IT_TMP/rt_series.json' >/dev/null"
curl -sf --max-time 30 "$PROM/api/v1/series" --data-urlencode 'match[]={__name__=~".+"}' >"$IT_TMP/prom_series_all.json"
n=$(rt_get /api/v1/metadata | jq '.data | length')
check "Ringtail kept the metadata Prometheus sent (/api/v1/metadata: ${n:-0} metrics)" [ "${n:-0}" -gt 10 ]

# stop the sender first, then ringtail, and read ringtail's data directory offline
kill -TERM "$prom_pid"; it_wait_exit "$prom_pid" 30; untrack "$prom_pid"
check "ringtail stops cleanly" rt_stop
"$RINGTAIL_BIN" dump -ingester.data-dir="$data" >"$IT_TMP/dump.txt" 2>"$IT_TMP/dump.err"
check "ringtail dump reads the data directory" [ $? = 0 ]
python3 "$(dirname "$0")/compare_prom.py" "$IT_TMP" "$cutoff_ms"
check "Ringtail's series and samples equal Prometheus' up to the cutoff" [ $? = 0 ]
finish
