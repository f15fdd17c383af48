"""hatool.py - plays two Prometheus replicas of one HA pair against Ringtail (stdlib only).

  push URL TENANT CLUSTER REPLICA TS_MS VALUE     one series, one sample; prints the status
  run D1,D2 TENANT CLUSTER START_MS ROUNDS PAUSE_AT PAUSE_S LOG
        first a pushes through D1 (timestamps before START_MS) until it is accepted and prints
        "<status> <seconds waited>"; then the rounds:
        the two replicas "a" and "b" push the same series (ha_test{job="ha"} plus the cluster and
        replica labels) at the same timestamps START_MS + i*1000, round i through D[i%2] for a
        and D[(i+1)%2] for b, so each replica alternates between the distributors. a's value is
        1000+i, b's 2000+i. From round PAUSE_AT, a stops for PAUSE_S seconds (a failover), then
        sends again. Writes one JSON line per push to LOG: {"i","replica","url","status","ts"}.
  failover URL TENANT CLUSTER START_MS SECONDS
        a pushes every 100 ms for SECONDS (b, every 5th round, is answered 202), then stops; b
        pushes every 50 ms until elected; then a once more; prints the outcome as JSON
  until URL TENANT CLUSTER REPLICA VALUE START_MS TIMEOUT_S
        pushes REPLICA every 100 ms until one is answered 200; prints "<status> <seconds>
        waited> <timestamp of the accepted sample>"
  raw QUERIER TENANT METRIC AT_S RANGE   prints {"labels": [...], "samples": [[ts_ms, value]...]}
        of METRIC[RANGE] at AT_S (raw samples of every series)
"""
import json
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, __import__("os").path.dirname(__file__))
import rwtool  # noqa: E402


def push(url, tenant, cluster, replica, ts, value, extra=()):
    u = urllib.parse.urlparse(url)
    labels = [("__name__", "ha_test"), ("cluster", cluster), ("job", "ha")]
    labels += list(extra)
    if replica:
        labels.append(("__replica__", replica))
    labels.sort()
    body = rwtool.snappy(rwtool.write_request([(labels, [(ts, value)])]))
    headers = {"X-Scope-OrgID": tenant or "anonymous"}   # ha.sh runs -auth.mode=header
    try:
        st, text = rwtool.post(u.hostname, u.port, "/api/v1/push", body, headers, timeout=10)
    except OSError as e:
        return 0, str(e)
    return st, text


def cmd_push(a):
    st, text = push(a[0], a[1], a[2], a[3], int(a[4]), float(a[5]))
    print(st)
    if text.strip():
        print(text.strip(), file=sys.stderr)


def cmd_run(a):
    dists = a[0].split(",")
    tenant, cluster = a[1], a[2]
    start, rounds, pause_at, pause_s, log = int(a[3]), int(a[4]), int(a[5]), float(a[6]), a[7]
    paused_until = None
    # warm-up: a pushes (older timestamps) until it is elected, then the rounds start at once
    t0 = time.monotonic()
    st, w = 0, start - 30000
    while time.monotonic() - t0 < 30 and w < start:
        st, _ = push(dists[0], tenant, cluster, "a", w, 0)
        if st == 200:
            break
        w += 10
        time.sleep(0.05)
    print("%d %.3f" % (st, time.monotonic() - t0))
    if st != 200:
        return
    with open(log, "w") as f:
        for i in range(rounds):
            ts = start + i * 1000
            if i == pause_at:
                paused_until = time.monotonic() + pause_s
            a_sends = paused_until is None or time.monotonic() >= paused_until
            order = [("a", dists[i % 2], 1000 + i), ("b", dists[(i + 1) % 2], 2000 + i)]
            if i % 3 == 0:
                order.reverse()
            for rep, url, val in order:
                if rep == "a" and not a_sends:
                    continue
                st, text = push(url, tenant, cluster, rep, ts, val)
                f.write(json.dumps({"i": i, "replica": rep, "url": url, "status": st,
                                    "ts": ts, "msg": text.strip()[:200]}) + "\n")
                f.flush()
            time.sleep(0.05)


def cmd_failover(a):
    """Replica a sends every 100 ms for SECONDS while b is refused, then stops; b pushes every
    50 ms until it is elected; then a once more. Prints one JSON object."""
    url, tenant, cluster, ts, secs = a[0], a[1], a[2], int(a[3]), float(a[4])
    res = {"a": {}, "b_before": {}}
    t0 = time.monotonic()
    last_a = t0
    k = 0
    while time.monotonic() - t0 < secs:
        st, _ = push(url, tenant, cluster, "a", ts, 1)
        last_a = time.monotonic()
        res["a"][st] = res["a"].get(st, 0) + 1
        ts += 100
        k += 1
        if k % 5 == 0:
            st, _ = push(url, tenant, cluster, "b", ts - 50, 2)
            res["b_before"][st] = res["b_before"].get(st, 0) + 1
        time.sleep(0.1)
    res["a_last_ts"] = ts - 100
    st = 0
    while time.monotonic() - last_a < 30:
        st, _ = push(url, tenant, cluster, "b", ts, 2)
        if st == 200:
            break
        ts += 100
        time.sleep(0.05)
    res["b_status"] = st
    res["b_after_s"] = round(time.monotonic() - last_a, 3)
    res["b_ts"] = ts
    st, _ = push(url, tenant, cluster, "a", ts + 100, 1)
    res["a_after"] = st
    print(json.dumps(res))


def cmd_until(a):
    url, tenant, cluster, rep, val, ts, tmo = (a[0], a[1], a[2], a[3], float(a[4]), int(a[5]),
                                               float(a[6]))
    t0 = time.monotonic()
    st = 0
    while time.monotonic() - t0 < tmo:
        st, _ = push(url, tenant, cluster, rep, ts, val)
        if st == 200:
            break
        ts += 100
        time.sleep(0.1)
    print("%d %.3f %d" % (st, time.monotonic() - t0, ts))


def cmd_raw(a):
    q = urllib.parse.urlencode({"query": "%s[%s]" % (a[2], a[4]), "time": a[3]})
    req = urllib.request.Request(a[0] + "/api/v1/query?" + q)
    req.add_header("X-Scope-OrgID", a[1] or "anonymous")
    with urllib.request.urlopen(req, timeout=30) as r:
        js = json.load(r)
    out = []
    for s in js["data"]["result"]:
        out.append({"labels": s["metric"],
                    "samples": [[int(round(float(t) * 1000)), float(v)] for t, v in s["values"]]})
    print(json.dumps(out))


if __name__ == "__main__":
    {"push": cmd_push, "run": cmd_run, "until": cmd_until,
     "failover": cmd_failover, "raw": cmd_raw}[sys.argv[1]](sys.argv[2:])
