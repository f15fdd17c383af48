"""hatool.py - plays two Prometheus replicas of one HA pair against Ringtail (stdlib only).

  push URL TENANT CLUSTER REPLICA TS_MS VALUE     one series, one sample; prints the status
  run D1,D2 TENANT CLUSTER START_MS ROUNDS PAUSE_AT PAUSE_S LOG
        two replicas "a" and "b" push the same series (ha_test{job="ha"} plus the cluster and
        replica labels) at the same timestamps START_MS + i*1000, round i through D[i%2] for a
        and D[(i+1)%2] for b, so each replica alternates between the distributors. a's value is
        1000+i, b's 2000+i. From round PAUSE_AT, a stops for PAUSE_S seconds (a failover), then
        sends again. Writes one JSON line per push to LOG: {"i","replica","url","status","ts"}.
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
    headers = {"X-Scope-OrgID": tenant} if tenant else {}
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


def cmd_raw(a):
    q = urllib.parse.urlencode({"query": "%s[%s]" % (a[2], a[4]), "time": a[3]})
    req = urllib.request.Request(a[0] + "/api/v1/query?" + q)
    if a[1]:
        req.add_header("X-Scope-OrgID", a[1])
    with urllib.request.urlopen(req, timeout=30) as r:
        js = json.load(r)
    out = []
    for s in js["data"]["result"]:
        out.append({"labels": s["metric"],
                    "samples": [[int(round(float(t) * 1000)), float(v)] for t, v in s["values"]]})
    print(json.dumps(out))


if __name__ == "__main__":
    {"push": cmd_push, "run": cmd_run, "raw": cmd_raw}[sys.argv[1]](sys.argv[2:])
