"""series_limits.py - checks of the ingester series limits and the per-tenant statistics APIs
against running Ringtail processes (driven by series_limits.sh).

  series_limits.py single  WRITE_URL READ_URL OVERRIDES_FILE
  series_limits.py cluster WRITE_URL READ_URL OVERRIDES_FILE INGESTER_URL...

Prints one line per check ("  ok   ..." / "  FAIL ...") and exits 1 when a check failed.
"""
import json
import os
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwtool as rw  # noqa: E402

FAILS = 0


def check(desc, cond, detail=""):
    global FAILS
    if cond:
        print("  ok   " + desc)
    else:
        FAILS += 1
        print("  FAIL " + desc + (": " + detail if detail else ""))
    sys.stdout.flush()


def hostport(url):
    u = urllib.parse.urlparse(url)
    return u.hostname, u.port


def push(url, tenant, series, ts=None):
    """series: list of label dicts; one sample each. Returns (status, body)."""
    ts = ts or int(time.time() * 1000)
    body = rw.snappy(rw.write_request(
        [(sorted(s.items()), [(ts, 1.0)]) for s in series]))
    h, p = hostport(url)
    return rw.post(h, p, "/api/v1/push", body, {"X-Scope-OrgID": tenant})


def get_json(url, path, tenant, params=None):
    q = "?" + urllib.parse.urlencode(params, doseq=True) if params else ""
    req = urllib.request.Request(url + path + q, headers={"X-Scope-OrgID": tenant})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read().decode())
    except urllib.error.HTTPError as e:
        body = e.read().decode("utf-8", "replace")
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, body


def metric_series(prefix, n, metric="m", **extra):
    out = []
    for i in range(n):
        s = {"__name__": metric, "i": "%s%d" % (prefix, i)}
        s.update(extra)
        out.append(s)
    return out


def wait_until(fn, timeout=30.0):
    end = time.time() + timeout
    while time.time() < end:
        if fn():
            return True
        time.sleep(0.2)
    return False


def write_overrides(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def per_user(write, read, overrides, limit):
    """Tenant "lim-user" may hold `limit` series; "other" is unaffected."""
    st, body = push(write, "lim-user", metric_series("a", limit))
    check("%d series within max_global_series_per_user=%d are accepted" % (limit, limit),
          st == 200, "%d %s" % (st, body))
    st, body = push(write, "lim-user", metric_series("b", 1) + metric_series("a", limit))
    check("one series more gets 400", st == 400, "%d %s" % (st, body))
    for want in ("max_global_series_per_user=%d" % limit, "lim-user",
                 "err-ringtail-max-series-per-user", 'i="b0"'):
        check("the message names %s" % want, want in body, body)
    check("the existing series' samples of that request are stored",
          "rejected 1 of %d samples" % (limit + 1) in body, body)
    st, data = get_json(read, "/api/v1/user_stats", "lim-user")
    check("user_stats counts the tenant's series once: numSeries=%d" % limit,
          st == 200 and data.get("numSeries") == limit, "%s %s" % (st, data))
    st, body = push(write, "other", metric_series("a", limit + 5))
    check("another tenant is unaffected", st == 200, "%d %s" % (st, body))

    # raise the limit in the runtime config: applies without a restart once reloaded
    write_overrides(overrides, "overrides:\n  lim-user:\n    max_global_series_per_user: %d\n"
                    "  lim-metric:\n    max_global_series_per_metric: %d\n" % (limit * 2, limit))
    ok = wait_until(lambda: push(write, "lim-user", metric_series("b", 1))[0] == 200)
    check("a raised limit in the overrides file applies without a restart", ok)
    st, body = push(write, "lim-user", metric_series("c", limit))
    check("the new limit holds too", st == 400 and "max_global_series_per_user=%d" % (limit * 2) in body,
          "%d %s" % (st, body))


def per_metric(write, limit):
    st, body = push(write, "lim-metric", metric_series("a", limit, metric="hot"))
    check("%d series of one metric within max_global_series_per_metric are accepted" % limit,
          st == 200, "%d %s" % (st, body))
    st, body = push(write, "lim-metric", metric_series("x", 1, metric="hot"))
    check("one more series of that metric gets 400", st == 400, "%d %s" % (st, body))
    for want in ("max_global_series_per_metric=%d" % limit, '"hot"', "lim-metric",
                 "err-ringtail-max-series-per-metric"):
        check("the message names %s" % want, want in body, body)
    st, body = push(write, "lim-metric", metric_series("a", 3, metric="cold"))
    check("series of another metric are still accepted", st == 200, "%d %s" % (st, body))


def cardinality(write, read, t1="card-1", t2="card-2"):
    # tenants t1 and t2 write series with identical labels; t1 has more
    s1 = [{"__name__": "up", "job": "api", "inst": str(i)} for i in range(6)] + \
         [{"__name__": "up", "job": "db", "inst": str(i)} for i in range(2)] + \
         [{"__name__": "rpc", "job": "api"}]
    s2 = [{"__name__": "up", "job": "api", "inst": "0"}, {"__name__": "t2only", "zone": "z"}]
    check("%s and %s write" % (t1, t2), push(write, t1, s1)[0] == 200 and push(write, t2, s2)[0] == 200)

    st, d = get_json(read, "/api/v1/user_stats", t1)
    check("user_stats numSeries of %s is 9" % t1, st == 200 and d.get("numSeries") == 9, "%s %s" % (st, d))
    check("user_stats has Mimir's keys", isinstance(d, dict) and
          all(k in d for k in ("numSeries", "ingestionRate", "APIIngestionRate", "ruleIngestionRate")), str(d))
    st, d = get_json(read, "/api/v1/user_stats", t2)
    check("user_stats numSeries of %s is 2" % t2, st == 200 and d.get("numSeries") == 2, "%s %s" % (st, d))

    st, d = get_json(read, "/api/v1/cardinality/label_names", t1)
    want = {"inst": 6, "job": 2, "__name__": 2}
    got = {c["label_name"]: c["label_values_count"] for c in d.get("cardinality", [])} if st == 200 else d
    check("label_names: values per name of card-1 only", got == want, "%s %s" % (st, d))
    check("label_names: totals", st == 200 and d["label_names_count"] == 3 and
          d["label_values_count_total"] == 10, str(d))
    check("label_names: sorted by values count", st == 200 and
          [c["label_name"] for c in d["cardinality"]] == ["inst", "__name__", "job"], str(d))
    st, d = get_json(read, "/api/v1/cardinality/label_names", t1, {"limit": "1"})
    check("label_names: limit", st == 200 and len(d["cardinality"]) == 1 and d["label_names_count"] == 3, str(d))
    st, d = get_json(read, "/api/v1/cardinality/label_names", t1, {"selector": '{job="db"}'})
    got = {c["label_name"]: c["label_values_count"] for c in d.get("cardinality", [])} if st == 200 else d
    check("label_names: selector", got == {"inst": 2, "job": 1, "__name__": 1}, "%s %s" % (st, d))

    st, d = get_json(read, "/api/v1/cardinality/label_values", t1,
                     {"label_names[]": ["job", "__name__", "nope"]})
    ok = st == 200 and d["series_count_total"] == 9 and len(d["labels"]) == 3
    check("label_values: series_count_total and one entry per name", ok, "%s %s" % (st, d))
    if ok:
        job, name, nope = d["labels"]
        check("label_values: job", job == {"label_name": "job", "label_values_count": 2, "series_count": 9,
                                           "cardinality": [{"label_value": "api", "series_count": 7},
                                                           {"label_value": "db", "series_count": 2}]}, str(job))
        check("label_values: __name__", name["cardinality"] == [{"label_value": "up", "series_count": 8},
                                                                 {"label_value": "rpc", "series_count": 1}], str(name))
        check("label_values: unknown name has zero counts", nope["series_count"] == 0 and
              nope["cardinality"] == [], str(nope))
    st, d = get_json(read, "/api/v1/cardinality/label_values", t1,
                     {"label_names[]": "inst", "selector": 'up{job="api"}', "limit": "2"})
    check("label_values: selector and limit", st == 200 and d["series_count_total"] == 6 and
          d["labels"][0]["label_values_count"] == 6 and len(d["labels"][0]["cardinality"]) == 2,
          "%s %s" % (st, d))
    st, d = get_json(read, "/api/v1/cardinality/label_values", t2, {"label_names[]": "zone"})
    check("label_values: %s sees its own labels only" % t2, st == 200 and d["series_count_total"] == 2 and
          d["labels"][0]["cardinality"] == [{"label_value": "z", "series_count": 1}], "%s %s" % (st, d))
    st, d = get_json(read, "/api/v1/cardinality/label_names", "nobody")
    check("a tenant without data sees nothing", st == 200 and d["label_names_count"] == 0, "%s %s" % (st, d))
    st, d = get_json(read, "/api/v1/cardinality/label_values", t1)
    check("label_values without label_names[] is 400", st == 400, "%s %s" % (st, d))
    st, d = get_json(read, "/api/v1/cardinality/label_names", t1, {"limit": "501"})
    check("limit above 500 is 400", st == 400, "%s %s" % (st, d))
    st, d = get_json(read, "/api/v1/cardinality/label_names", t1, {"selector": "{job="})
    check("a bad selector is 400", st == 400, "%s %s" % (st, d))


def active_series_metric(ingesters, tenant, want):
    def total():
        n = 0
        for u in ingesters:
            with urllib.request.urlopen(u + "/metrics", timeout=5) as r:
                for line in r.read().decode().splitlines():
                    if line.startswith('ringtail_ingester_active_series{user="%s"}' % tenant):
                        n += float(line.split()[-1])
        return n
    t = total()
    check("ringtail_ingester_active_series{user=\"%s\"} sums to %d" % (tenant, want), t == want, str(t))


def main():
    mode, write, read, overrides = sys.argv[1:5]
    ingesters = sys.argv[5:] or [write]
    limit = 10
    if mode == "grown":
        # two ingesters in one zone: the answers of a zone add up; the querier reads other
        # zones each time, so ask a few times
        for rnd in range(3):
            cardinality(write, read, "grown-%d" % rnd, "grown-other-%d" % rnd)
            active_series_metric(ingesters, "grown-%d" % rnd, 9 * 3)
        sys.exit(1 if FAILS else 0)
    per_user(write, read, overrides, limit)
    per_metric(write, limit)
    cardinality(write, read)
    copies = 3 if mode == "cluster" else 1
    active_series_metric(ingesters, "card-1", 9 * copies)
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
