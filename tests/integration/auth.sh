#!/usr/bin/env bash
# auth.sh - authentication, workspaces and rights over real HTTP against `ringtail -target=all`.
#
#   1. header mode: 401 + WWW-Authenticate without X-Scope-OrgID, 400 for unsafe tenant ids,
#      open endpoints stay open; none mode: every request is "anonymous" whatever the header.
#   2. token mode: every right (a token holding one right gets 403 on the others' endpoints),
#      401 + WWW-Authenticate for missing, unknown, malformed credentials and wrong secrets,
#      basic-auth users, workspaces isolated from each other.
#   3. reloads: a new token, a revoked one and a broken file, by SIGHUP (no watcher) and by the
#      file watcher, while a loop of authenticated requests keeps succeeding, same process.
#   4. a real Prometheus remote-writes with `authorization: credentials:` and with basic_auth
#      into two workspaces; promtool reads back with credentials.
source "$(dirname "$0")/lib.bash"

command -v jq >/dev/null || skip "jq is not installed"
RW="python3 $IT_DIR/authtool.py"

# ---------- credentials ----------
newtok() {   # newtok NAME RIGHTS: token in $IT_TMP/NAME.tok, file entry in NAME.entry
  "$RINGTAIL_BIN" auth new-token "$2" >"$IT_TMP/$1.out" || return 1
  sed -n 2p "$IT_TMP/$1.out" | cut -c3- >"$IT_TMP/$1.tok"
  tail -n 3 "$IT_TMP/$1.out" | sed 's/^/      /' >"$IT_TMP/$1.entry"
}
tok() { cat "$IT_TMP/$1.tok"; }
userentry() {   # userentry NAME PASSWORD RIGHTS
  local h
  h=$(printf '%s' "$2" | "$RINGTAIL_BIN" auth hash) || return 1
  printf '      - name: %s\n        hash: "%s"\n        rights: [%s]\n' "$1" "$h" "$3"
}
for t in w:write r:read ru:rules ad:admin all:all b:all new:read; do
  newtok "${t%%:*}" "${t#*:}" || { notok "ringtail auth new-token"; finish; }
done
check "new tokens look like rt_<id>_<secret>" grep -qE '^rt_[0-9a-f]{12}_[0-9a-f]{40}$' "$IT_TMP/w.tok"
check "the hash line holds no secret" bash -c "! grep -q \"$(tok w | cut -d_ -f3)\" <(tail -n 3 '$IT_TMP/w.out')"
UPROM=$(userentry prom-b 'pw for prom' write) && UGRAF=$(userentry graf 'graf pw' read) ||
  { notok "ringtail auth hash"; finish; }
echo "" | "$RINGTAIL_BIN" auth hash >/dev/null 2>&1
check "ringtail auth hash refuses an empty secret" [ $? = 2 ]

WS=$IT_TMP/workspaces.yaml
write_ws() {   # write_ws EXTRA_TEAM_A_TOKEN_ENTRIES... : the file, replaced atomically
  {
    echo "workspaces:"
    echo "  team-a:"
    echo "    tokens:"
    cat "$IT_TMP/w.entry" "$IT_TMP/r.entry" "$IT_TMP/ru.entry" "$IT_TMP/ad.entry" "$IT_TMP/all.entry"
    for e in "$@"; do cat "$IT_TMP/$e.entry"; done
    echo "    users:"
    echo "$UGRAF"
    echo "  team-b:"
    echo "    tokens:"
    cat "$IT_TMP/b.entry"
    echo "    users:"
    echo "$UPROM"
  } >"$WS.tmp" && mv "$WS.tmp" "$WS"
}
write_ws
check "ringtail auth check accepts the file" "$RINGTAIL_BIN" auth check "$WS"

# status URL [CURL ARGS...]: prints the HTTP status of a GET
status() { local u=$1; shift; curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" "$RT_URL$u"; }
bearer() { echo "Authorization: Bearer $(tok "$1")"; }
# push NAME [HEADER...]: remote-writes NAME (a body made by authtool.py); prints the status
push() {
  local n=$1 a=() h
  shift
  for h in "$@"; do a+=(-H "$h"); done
  curl -s -o "$IT_TMP/push.out" -w '%{http_code}' --max-time 10 "${a[@]+"${a[@]}"}" \
    -H 'Content-Type: application/x-protobuf' -H 'Content-Encoding: snappy' \
    --data-binary @"$IT_TMP/bodies/$n.bin" "$RT_URL/api/v1/push"
}
push2xx() { [[ $(push "$@") == 20? ]]; }
mkdir -p "$IT_TMP/bodies"
$RW bodies "$IT_TMP/bodies" m_a m_n m_x m_team_a m_team_a2 m_team_b || { notok "authtool.py bodies"; finish; }
# loop_start NAME HEADER: a background loop of authenticated reads, running once it printed
loop_start() {
  rm -f "$IT_TMP/$1.stop" "$IT_TMP/$1.out"
  $RW loop "$RT_PORT" "$2" "$IT_TMP/$1.stop" >"$IT_TMP/$1.out" 2>&1 &
  loop_pid=$!
  track "$loop_pid"
  wait_for 60 "the request loop runs" grep -q started "$IT_TMP/$1.out"
}
loop_stop() {   # loop_stop NAME: stops the loop and checks it never failed
  touch "$IT_TMP/$1.stop"
  it_wait_exit "$loop_pid" 30
  untrack "$loop_pid"
  local last
  last=$(tail -n 1 "$IT_TMP/$1.out")
  check "the request loop never failed during the reloads ($last)" \
    bash -c "grep -qE '^[0-9]+ requests, 0 failed' <<<'$last' && [ ${last%% *} -ge 20 ]"
}
READS=(/api/v1/query?query=up "/api/v1/query_range?query=up&start=1&end=2&step=1"
       "/api/v1/series?match[]=up" /api/v1/labels /api/v1/label/job/values /api/v1/metadata
       "/api/v1/query_exemplars?query=up" /prometheus/api/v1/labels)
OPEN=(/ready /metrics /config /ring /api/v1/status/buildinfo /api/v1/status/flags)

# ---------- 1. header and none modes ----------
it_log "header mode"
rt_start "$IT_TMP/d-header" -auth.mode=header || { notok "ringtail starts in header mode"; finish; }
hdrs=$(curl -s -D - -o "$IT_TMP/body" --max-time 10 "$RT_URL/api/v1/labels")
check "header mode: no X-Scope-OrgID -> 401" grep -q '^HTTP/1.1 401' <<<"$hdrs"
check "header mode: 401 carries WWW-Authenticate" grep -qi '^WWW-Authenticate: X-Scope-OrgID realm="ringtail"' <<<"$hdrs"
check "header mode: the 401 says what is missing" grep -q 'X-Scope-OrgID header' "$IT_TMP/body"
check "header mode: a push without tenant -> 401" [ "$(push m_a)" = 401 ]
check "header mode: a push with a tenant -> 2xx" push2xx m_a 'X-Scope-OrgID: t1'
long=$(printf 'x%.0s' $(seq 151))
for hv in 'a/b' '..' '.' "$long" 'a|b' 'a b' 'été' 'x:y'; do
  check "header mode: tenant id '${hv:0:20}' -> 400 on read" [ "$(status /api/v1/labels -H "X-Scope-OrgID: $hv")" = 400 ]
  check "header mode: tenant id '${hv:0:20}' -> 400 on write" [ "$(push m_a "X-Scope-OrgID: $hv")" = 400 ]
done
curl -s --max-time 10 -H 'X-Scope-OrgID: a/b' "$RT_URL/api/v1/labels" >"$IT_TMP/body"
check "header mode: the 400 names the bad character" grep -q "unsupported character '/'" "$IT_TMP/body"
for u in "${OPEN[@]}"; do
  check "header mode: $u stays open" [ "$(status "$u")" = 200 ]
done
check "header mode: t1 sees its series" bash -c "curl -s -H 'X-Scope-OrgID: t1' '$RT_URL/api/v1/label/__name__/values' | jq -e '.data == [\"m_a\"]' >/dev/null"
check "header mode: t2 does not" bash -c "curl -s -H 'X-Scope-OrgID: t2' '$RT_URL/api/v1/label/__name__/values' | jq -e '.data == []' >/dev/null"
rt_stop; RT_PORT=

it_log "none mode"
rt_start "$IT_TMP/d-none" || { notok "ringtail starts in none mode"; finish; }
check "none mode: a push with any header is accepted" push2xx m_n 'X-Scope-OrgID: a/b'
check "none mode: read with another header sees it (one tenant: anonymous)" bash -c "curl -s -H 'X-Scope-OrgID: zz' '$RT_URL/api/v1/label/__name__/values' | jq -e '.data == [\"m_n\"]' >/dev/null"
check "none mode: read without header sees it" bash -c "curl -s '$RT_URL/api/v1/label/__name__/values' | jq -e '.data == [\"m_n\"]' >/dev/null"
rt_stop; RT_PORT=

# ---------- 2. token mode: rights and 401s ----------
it_log "token mode"
rt_start "$IT_TMP/d-token" -auth.mode=token -auth.workspaces-file="$WS" \
  -runtime-config.reload-period=0 || { notok "ringtail starts in token mode"; finish; }
pid0=$RT_PID
hdrs=$(curl -s -D - -o "$IT_TMP/body" --max-time 10 "$RT_URL/api/v1/query?query=up")
check "token mode: no credentials -> 401" grep -q '^HTTP/1.1 401' <<<"$hdrs"
check "token mode: WWW-Authenticate Bearer" grep -qi '^WWW-Authenticate: Bearer realm="ringtail"' <<<"$hdrs"
check "token mode: WWW-Authenticate Basic" grep -qi '^WWW-Authenticate: Basic realm="ringtail"' <<<"$hdrs"
check "token mode: the 401 says how to authenticate" grep -q 'bearer token' "$IT_TMP/body"
check "token mode: X-Scope-OrgID alone is not enough" [ "$(status /api/v1/labels -H 'X-Scope-OrgID: team-a')" = 401 ]
wrong=$(tok r | sed 's/.$/0/'); [ "$wrong" = "$(tok r)" ] && wrong=$(tok r | sed 's/.$/1/')
unknown="rt_000000000000_$(tok r | cut -d_ -f3)"
for cred in "Bearer $wrong" "Bearer $unknown" "Bearer nonsense" "Bearer " "Basic Z3JhZjpub3Bl" "Basic ###" "Digest abc" "Bearer rt_$(printf 'a%.0s' $(seq 3000))"; do
  check "token mode: '${cred:0:24}...' -> 401 with WWW-Authenticate" \
    bash -c "curl -s -D - -o /dev/null --max-time 10 -H 'Authorization: $cred' '$RT_URL/api/v1/labels' | grep -qi '^WWW-Authenticate: Bearer' && [ \"\$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: $cred' '$RT_URL/api/v1/labels')\" = 401 ]"
done
curl -s --max-time 10 -H "Authorization: Bearer $wrong" "$RT_URL/api/v1/labels" >"$IT_TMP/b1"
curl -s --max-time 10 -H "Authorization: Bearer $unknown" "$RT_URL/api/v1/labels" >"$IT_TMP/b2"
check "token mode: a wrong secret and an unknown token get the same answer" cmp -s "$IT_TMP/b1" "$IT_TMP/b2"
check "token mode: no workspace named in a refusal" bash -c "! grep -q team- '$IT_TMP/b1'"

# rights: write
check "write token: push -> 2xx" push2xx m_team_a "$(bearer w)"
check "all token: push -> 2xx" push2xx m_team_a2 "$(bearer all)"
for t in r ru ad; do
  check "token with only ${t} right: push -> 403" [ "$(push m_x "$(bearer $t)")" = 403 ]
done
push m_x "$(bearer r)" >/dev/null
check "403 names the missing right and the endpoint" grep -q 'write.*right.*POST /api/v1/push' "$IT_TMP/push.out"
check "basic-auth write user: push -> 2xx (team-b)" push2xx m_team_b "Authorization: Basic $(printf 'prom-b:pw for prom' | base64 -w0)"
check "basic-auth write user with a wrong password -> 401" [ "$(push m_team_b "Authorization: Basic $(printf 'prom-b:pw for pro' | base64 -w0)")" = 401 ]
check "basic-auth read user: push -> 403" [ "$(push m_x "Authorization: Basic $(printf 'graf:graf pw' | base64 -w0)")" = 403 ]
# rights: read, on every read endpoint
for u in "${READS[@]}"; do
  check "read token: GET $u -> 200" [ "$(status "$u" -H "$(bearer r)")" = 200 ]
  for t in w ru ad; do
    check "token with only ${t} right: GET $u -> 403" [ "$(status "$u" -H "$(bearer $t)")" = 403 ]
  done
done
check "read token: POST form query -> 200" [ "$(curl -s -o /dev/null -w '%{http_code}' -H "$(bearer r)" --data-urlencode query=up "$RT_URL/api/v1/query")" = 200 ]
check "basic-auth read user: GET labels -> 200" [ "$(status /api/v1/labels -u 'graf:graf pw')" = 200 ]
check "basic-auth read user with a wrong password -> 401" [ "$(status /api/v1/labels -u 'graf:graf')" = 401 ]
check "basic auth with a token id as user name -> 401" [ "$(status /api/v1/labels -u "$(tok r | cut -d_ -f2):x")" = 401 ]
for u in "${OPEN[@]}"; do
  check "token mode: $u stays open" [ "$(status "$u")" = 200 ]
done
# the admin right: series deletion
del() { curl -s -o /dev/null -w '%{http_code}' --max-time 30 -X POST "$@" "$RT_URL/api/v1/admin/tsdb/delete_series" --data-urlencode 'match[]={__name__="m_none"}'; }
if [ "$(del -H "$(bearer ad)")" != 404 ]; then
  for t in w r ru; do
    check "token with only ${t} right: delete_series -> 403" [ "$(del -H "$(bearer $t)")" = 403 ]
  done
  check "admin token: delete_series -> 2xx" bash -c "[[ \$(curl -s -o /dev/null -w '%{http_code}' -X POST -H '$(bearer ad)' '$RT_URL/api/v1/admin/tsdb/delete_series' --data-urlencode 'match[]={__name__=\"m_none\"}') == 20? ]]"
fi
# isolation between workspaces
names() { curl -s --max-time 10 "$@" "$RT_URL/api/v1/label/__name__/values" | jq -c '.data'; }
check "team-a read token sees team-a's metrics only" [ "$(names -H "$(bearer r)")" = '["m_team_a","m_team_a2"]' ]
check "team-b token sees team-b's metrics only" [ "$(names -H "$(bearer b)")" = '["m_team_b"]' ]
check "team-a token with X-Scope-OrgID: team-b still reads team-a" [ "$(names -H "$(bearer r)" -H 'X-Scope-OrgID: team-b')" = '["m_team_a","m_team_a2"]' ]
check "auth failures are counted on /metrics" bash -c "curl -s '$RT_URL/metrics' | grep -q 'ringtail_auth_failures_total{reason=\"forbidden\"}'"

# ---------- 3. reloads without restart, under load ----------
it_log "reloads"
loop_start loop1 "$(bearer r)"
check "before SIGHUP: a new token is unknown" [ "$(status /api/v1/labels -H "$(bearer new)")" = 401 ]
write_ws new
check "without SIGHUP and without a watcher the change is not applied" [ "$(status /api/v1/labels -H "$(bearer new)")" = 401 ]
kill -HUP "$RT_PID"
check "SIGHUP: the new token works" wait_for 20 "new token" bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -H '$(bearer new)' '$RT_URL/api/v1/labels')\" = 200 ]"
echo "workspaces: [ {{ broken" >"$WS.tmp" && mv "$WS.tmp" "$WS"
kill -HUP "$RT_PID"
check "SIGHUP with a broken file: the failure is reported" wait_for 20 "reload failure" bash -c "curl -s '$RT_URL/metrics' | grep -q 'ringtail_config_last_reload_successful{config=\"workspaces\"} 0'"
check "SIGHUP with a broken file: the previous credentials stay" [ "$(status /api/v1/labels -H "$(bearer new)")" = 200 ]
check "the broken file is logged" grep -q 'reload failed' "$RT_LOG"
check "same process throughout" [ "$RT_PID" = "$pid0" ]
loop_stop loop1
rt_stop; RT_PORT=

write_ws new
rt_start "$IT_TMP/d-token" -auth.mode=token -auth.workspaces-file="$WS" \
  -runtime-config.reload-period=200ms || { notok "ringtail restarts in token mode"; finish; }
pid0=$RT_PID
loop_start loop2 "$(bearer r)"
check "watcher: the token is valid before" [ "$(status /api/v1/labels -H "$(bearer new)")" = 200 ]
write_ws   # revokes "new"
check "watcher: a revoked token gets 401 without SIGHUP" wait_for 20 "revocation" bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -H '$(bearer new)' '$RT_URL/api/v1/labels')\" = 401 ]"
write_ws new
check "watcher: a new token works without SIGHUP" wait_for 20 "new token" bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -H '$(bearer new)' '$RT_URL/api/v1/labels')\" = 200 ]"
loop_stop loop2
check "same process throughout" bash -c "[ '$RT_PID' = '$pid0' ] && kill -0 $RT_PID"

# ---------- 4. a real Prometheus and promtool ----------
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  it_log "prometheus/promtool not installed: skipping the Prometheus part"
  finish
fi
it_log "Prometheus remote-writes with credentials"
pport=$(free_port)
PROM=http://127.0.0.1:$pport
cat >"$IT_TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['127.0.0.1:$pport']
remote_write:
  - url: $RT_URL/api/v1/push
    authorization:
      credentials: $(tok w)
    queue_config: {batch_send_deadline: 500ms, min_backoff: 50ms, max_backoff: 1s}
  - url: $RT_URL/api/v1/push
    basic_auth:
      username: prom-b
      password: pw for prom
    queue_config: {batch_send_deadline: 500ms, min_backoff: 50ms, max_backoff: 1s}
EOF
prometheus --config.file="$IT_TMP/prometheus.yml" --storage.tsdb.path="$IT_TMP/prom" \
  --web.listen-address=127.0.0.1:"$pport" --log.level=warn >"$IT_TMP/prometheus.log" 2>&1 &
prom_pid=$!
track "$prom_pid"
wait_for 60 "prometheus ready" http_ok "$PROM/-/ready" || { notok "prometheus starts"; tail "$IT_TMP/prometheus.log"; finish; }
has_up() { curl -s --max-time 5 "$@" "$RT_URL/api/v1/query" --data-urlencode 'query=up{job="prometheus"}' | jq -e '.data.result | length == 1' >/dev/null; }
check "Prometheus' samples arrive in team-a (bearer token)" wait_for 60 "up in team-a" has_up -H "$(bearer r)"
check "Prometheus' samples arrive in team-b (basic auth)" wait_for 60 "up in team-b" has_up -H "$(bearer b)"
failed=$(curl -s "$PROM/metrics" | awk '/^prometheus_remote_storage_samples_failed_total/ {s += $2} END {print s + 0}')
check "no remote-write batch was refused ($failed failed)" [ "$failed" = 0 ]
hostport=${RT_URL#http://}
out=$(promtool query instant "http://graf:graf%20pw@$hostport" 'up{job="prometheus"}' 2>&1)
check "promtool with basic-auth credentials reads team-a" grep -q 'up{instance=' <<<"$out"
out=$(promtool query instant "http://$hostport" 'up' 2>&1)
check "promtool without credentials is refused" grep -qi '401\|unauthorized\|authentication required' <<<"$out"
out=$(promtool query series --match='up' "http://graf:graf%20pw@$hostport" 2>&1)
check "promtool series with credentials" grep -q 'job="prometheus"' <<<"$out"
kill -TERM "$prom_pid"; it_wait_exit "$prom_pid" 30; untrack "$prom_pid"
check "ringtail stops cleanly" rt_stop
finish
