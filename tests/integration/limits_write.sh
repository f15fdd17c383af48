#!/usr/bin/env bash
# limits_write.sh - per-tenant write limits end to end against the real binary: validation
# limits (400 with the documented message), the ingestion rate under concurrent writer processes
# (429 and recovery; nothing of a refused request stored), tenants not affecting each other, and
# a change of the runtime-config file applied without a restart (limits_write.py).
source "$(dirname "$0")/lib.bash"

overrides=$IT_TMP/overrides.yaml
cat >"$overrides" <<'YAML'
overrides:
  slow:
    ingestion_rate: 500
    ingestion_burst_size: 500
  strict:
    max_label_names_per_series: 3
    max_label_name_length: 10
    max_label_value_length: 20
    max_metadata_length: 32
    max_global_metadata_per_metric: 1
    creation_grace_period: 1m
    reject_old_samples_max_age: 1h
  ooo:
    out_of_order_time_window: 1h
YAML

it_log "starting ringtail with a runtime-config file"
rt_start "$IT_TMP/data" -auth.mode=header -runtime-config.file="$overrides" \
  -runtime-config.reload-period=200ms || exit 1

python3 "$(dirname "$0")/limits_write.py" 127.0.0.1 "$RT_PORT" "$overrides"
check "every limit check passed" [ $? = 0 ]
check "ringtail process is alive" rt_alive
check "ringtail stops cleanly" rt_stop
finish
