#!/usr/bin/env bash
# json_utf8.sh - every JSON answer is valid UTF-8 and valid JSON, whatever bytes came in.
#
# Starts ringtail with header authentication (so tenant refusals are reached) and a fetched-series
# limit of 5 (so a limit error quotes a query), then runs json_utf8.py: invalid UTF-8 of every class
# in queries, matchers, parameters, paths, tenant headers and remote-write bodies; valid text that
# needs escaping written and read back. Each answer must parse as strict UTF-8 JSON.
source "$(dirname "$0")/lib.bash"

it_log "starting ringtail"
rt_start "$IT_TMP/data" -auth.mode=header -querier.max-fetched-series-per-query=5 || exit 1

python3 "$(dirname "$0")/json_utf8.py" 127.0.0.1 "$RT_PORT"
check "every answer was valid UTF-8 JSON (or UTF-8 text for remote-write refusals)" [ $? = 0 ]
check "ringtail process is alive" rt_alive
check "ringtail stops cleanly" rt_stop
finish
