"""limits_write.py - per-tenant write limits against a running ringtail (driven by
limits_write.sh): validation limits (400 with the documented message), the ingestion rate under
concurrent writer processes (429, nothing of a refused request stored, recovery), one tenant's
limits not touching another's, and a runtime-config change applied without a restart.

usage: limits_write.py HOST PORT OVERRIDES_FILE
Prints one "ok"/"FAIL" line per check; exits 1 when any check failed."""
import json
import multiprocessing
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwtool  # noqa: E402

HOST, PORT, OVERRIDES = sys.argv[1], int(sys.argv[2]), sys.argv[3]


check = rwtool.check


def now_ms():
    return int(time.time() * 1000)


def push(tenant, series, meta=()):
    body = rwtool.snappy(rwtool.write_request(series, meta))
    return rwtool.post(HOST, PORT, "/api/v1/push", body, {"X-Scope-OrgID": tenant})


def query(tenant, q):
    path = "/api/v1/query?" + urllib.parse.urlencode({"query": q})
    import http.client
    c = http.client.HTTPConnection(HOST, PORT, timeout=10)
    try:
        c.request("GET", path, headers={"X-Scope-OrgID": tenant})
        r = c.getresponse()
        return json.loads(r.read())
    finally:
        c.close()


def scalar(tenant, q):
    res = query(tenant, q)["data"]["result"]
    return float(res[0]["value"][1]) if res else 0.0


def write_overrides(text):
    tmp = OVERRIDES + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, OVERRIDES)


def poll(desc, fn, timeout_s=20):
    end = time.time() + timeout_s
    last = None
    while time.time() < end:
        last = fn()
        if last is True:
            return True
        time.sleep(0.1)
    check(desc, False, "last: %r" % (last,))
    return False


# ------------------------------------------------------------ validation limits
def validation():
    t = now_ms()
    cases = [
        ("max_label_names_per_series", [("__name__", "lw_names"), ("a", "1"), ("b", "2"), ("c", "3")], t,
         "max_label_names_per_series: 3", "err-ringtail-max-label-names-per-series"),
        ("max_label_name_length", [("__name__", "lw_lname"), ("abcdefghijk", "1")], t,
         "max_label_name_length: 10", "err-ringtail-label-name-too-long"),
        ("max_label_value_length", [("__name__", "lw_lvalue"), ("a", "x" * 21)], t,
         "max_label_value_length: 20", "err-ringtail-label-value-too-long"),
        ("creation_grace_period", [("__name__", "lw_future")], t + 5 * 60000,
         "creation_grace_period 1m0s", "err-ringtail-sample-too-far-in-future"),
        ("reject_old_samples_max_age", [("__name__", "lw_old")], t - 2 * 3600000,
         "reject_old_samples_max_age 1h0m0s", "err-ringtail-sample-too-old"),
    ]
    for limit, labels, ts, want, eid in cases:
        st, msg = push("strict", [(labels, [(ts, 1.0)])])
        check("%s: tenant strict gets 400 (%d)" % (limit, st), st == 400, msg)
        check("%s: message names the limit and value" % limit, want in msg, msg)
        check("%s: message names the tenant" % limit, 'tenant: "strict"' in msg, msg)
        check("%s: message names the series" % limit, labels[0][1] in msg, msg)
        check("%s: message points to docs/errors.md#%s" % (limit, eid), "docs/errors.md#" + eid in msg, msg)
        st, msg = push("lax", [(labels, [(ts, 1.0)])])
        check("%s: tenant lax (defaults) gets 200 for the same series" % limit, st == 200, msg)
    # metadata
    long_help = rwtool.metadata(1, "lw_meta", "h" * 40)
    st, msg = push("strict", [], [long_help])
    check("max_metadata_length: 400 with the limit and id",
          st == 400 and "max_metadata_length: 32" in msg and "err-ringtail-metadata-too-long" in msg, msg)
    two = [rwtool.metadata(1, "lw_meta2", "one"), rwtool.metadata(1, "lw_meta2", "two")]
    st, msg = push("strict", [], two)
    check("max_metadata_per_metric: 400 with the limit and id",
          st == 400 and "max_global_metadata_per_metric: 1" in msg and "err-ringtail-max-metadata-per-metric" in msg, msg)
    st, msg = push("lax", [], two)
    check("max_metadata_per_metric: tenant lax gets 200", st == 200, msg)
    # out-of-order window per tenant (ingester)
    base = now_ms()
    for tenant in ("ooo", "lax"):
        st, msg = push(tenant, [([("__name__", "lw_ooo")], [(base, 1.0)])])
        check("out_of_order_time_window: in-order sample of %s accepted" % tenant, st == 200, msg)
    st, msg = push("ooo", [([("__name__", "lw_ooo")], [(base - 600000, 2.0)])])
    check("out_of_order_time_window: tenant ooo (1h) accepts a sample 10m back", st == 200, msg)
    st, msg = push("lax", [([("__name__", "lw_ooo")], [(base - 600000, 2.0)])])
    check("out_of_order_time_window: tenant lax (0) refuses it with 400", st == 400, msg)


# ------------------------------------------------------------ ingestion rate
def writer(idx, seconds, q):
    """Pushes 50-sample requests of its own series for `seconds`; reports accepted samples."""
    ok = limited = other = 0
    first_429 = ""
    end = time.time() + seconds
    k = 0
    base = now_ms() - 100000
    while time.time() < end:
        samples = [(base + k * 50 + i, float(i)) for i in range(50)]
        st, msg = push("slow", [([("__name__", "lw_rate"), ("w", str(idx))], samples)])
        if st == 200:
            ok += 50
            k += 1
        elif st == 429:
            limited += 1
            first_429 = first_429 or msg
            time.sleep(0.005)
        else:
            other += 1
    q.put((ok, limited, other, first_429))


def other_tenant(seconds, q):
    ok = bad = 0
    end = time.time() + seconds
    k = 0
    base = now_ms() - 100000
    while time.time() < end:
        samples = [(base + k * 100 + i, 1.0) for i in range(100)]
        st, _ = push("lax", [([("__name__", "lw_fast")], samples)])
        ok, bad = (ok + 1, bad) if st == 200 else (ok, bad + 1)
        k += 1
    q.put((ok, bad))


def rate():
    q = multiprocessing.Queue()
    q2 = multiprocessing.Queue()
    seconds = 3.0
    start = time.time()
    procs = [multiprocessing.Process(target=writer, args=(i, seconds, q)) for i in range(4)]
    fast = multiprocessing.Process(target=other_tenant, args=(seconds, q2))
    for p in procs + [fast]:
        p.start()
    res = [q.get(timeout=60) for _ in procs]
    fres = q2.get(timeout=60)
    for p in procs + [fast]:
        p.join()
    elapsed = time.time() - start
    ok = sum(r[0] for r in res)
    limited = sum(r[1] for r in res)
    other = sum(r[2] for r in res)
    msg = next((r[3] for r in res if r[3]), "")
    # rate 500/s, burst 500: at most burst + rate * elapsed get through
    bound = 500 + 500 * elapsed
    print("  .... 4 writers: %d samples accepted, %d requests refused (429) in %.1fs; bound %.0f"
          % (ok, limited, elapsed, bound))
    check("concurrent writers over the rate get 429", limited > 0)
    check("no other status than 200/429 for the writers", other == 0, "%d" % other)
    check("accepted samples stay under burst + rate x time (%d <= %.0f)" % (ok, bound), ok <= bound)
    check("accepted samples are near the rate (%d >= %.0f)" % (ok, 0.5 * 500 * seconds), ok >= 0.5 * 500 * seconds)
    check("429 message names the limit, the tenant and the id",
          "ingestion_rate 500 samples/s" in msg and 'tenant "slow"' in msg
          and "docs/errors.md#err-ringtail-ingestion-rate-limited" in msg, msg)
    check("another tenant's writer is never limited (%d ok, %d not)" % fres, fres[1] == 0 and fres[0] > 0)
    # nothing of a refused request is stored: the stored samples are exactly the accepted ones
    stored = [None]

    def stored_eq():
        stored[0] = scalar("slow", "sum(count_over_time(lw_rate[10m]))")
        return stored[0] == ok or stored[0]
    poll("stored samples of tenant slow equal the accepted ones", stored_eq, 10)
    check("stored samples of tenant slow = accepted (%s = %d)" % (stored[0], ok), stored[0] == ok)
    # recovery: once the writers stop, the bucket refills
    t0 = time.time()
    ok2 = poll("recovery after the rate drops",
               lambda: push("slow", [([("__name__", "lw_rate"), ("w", "after")], [(now_ms(), 1.0)] * 1)])[0] == 200,
               5)
    if ok2:
        check("a request passes again after the rate drops (%.2fs)" % (time.time() - t0), True)
    # slow writes at half the rate pass in full
    ok3 = 0
    end = time.time() + 1.5
    k = 0
    while time.time() < end:
        st, _ = push("slow", [([("__name__", "lw_rate"), ("w", "calm")], [(now_ms() - 1000 + k, 1.0)] * 1)])
        ok3 += st == 200
        k += 1
        time.sleep(0.02)
    check("writes under the rate all pass after recovery (%d of %d)" % (ok3, k), ok3 == k)


# ------------------------------------------------------------ runtime config
def reload():
    labels = [("__name__", "lw_reload"), ("a", "1"), ("b", "2"), ("c", "3")]
    st, msg = push("strict", [(labels, [(now_ms(), 1.0)])])
    check("before the change: 4 labels refused for strict", st == 400, msg)
    st, msg = push("lax", [(labels, [(now_ms(), 1.0)])])
    check("before the change: lax accepts 4 labels", st == 200, msg)
    with open(OVERRIDES) as f:
        text = f.read()
    text = text.replace("max_label_names_per_series: 3", "max_label_names_per_series: 10")
    text += "  lax:\n    max_label_value_length: 4\n"
    write_overrides(text)
    t0 = time.time()
    if poll("strict's raised limit in force without a restart",
            lambda: push("strict", [(labels, [(now_ms(), 1.0)])])[0] == 200):
        check("strict's raised limit in force without a restart (%.1fs)" % (time.time() - t0), True)
    if poll("lax's new limit in force without a restart",
            lambda: push("lax", [([("__name__", "lw_reload2"), ("a", "12345")], [(now_ms(), 1.0)])])[0] == 400):
        st, msg = push("lax", [([("__name__", "lw_reload2"), ("a", "12345")], [(now_ms(), 1.0)])])
        check("lax's new limit message names it", "max_label_value_length: 4" in msg and 'tenant: "lax"' in msg, msg)
    st, msg = push("strict", [([("__name__", "lw_reload2"), ("a", "12345")], [(now_ms(), 1.0)])])
    check("lax's new limit does not touch strict", st == 200, msg)


def metrics():
    st, body = rwtool.get(HOST, PORT, "/metrics")
    lines = body.splitlines()

    def val(prefix):
        for ln in lines:
            if ln.startswith(prefix + " "):
                return float(ln.split()[-1])
        return None
    rl = val('ringtail_distributor_rate_limited_requests_total{user="slow"}')
    check("rate-limit hits counted per tenant (%s)" % rl, rl is not None and rl > 0)
    d = val('ringtail_discarded_samples_total{user="slow",reason="rate_limited"}')
    check("rate-limited samples discarded per tenant (%s)" % d, d is not None and d > 0)
    d = val('ringtail_discarded_samples_total{user="strict",reason="label_name_too_long"}')
    check("validation discards counted per tenant and reason (%s)" % d, d == 1)
    r = val('ringtail_distributor_received_samples_total{user="lax"}')
    a = val('ringtail_distributor_accepted_samples_total{user="lax"}')
    check("received and accepted samples per tenant (%s, %s)" % (r, a), r and a and a <= r)
    check("no rate-limit hit for lax", val('ringtail_distributor_rate_limited_requests_total{user="lax"}') in (None, 0))


validation()
rate()
reload()
metrics()
sys.exit(1 if rwtool.failures() else 0)
