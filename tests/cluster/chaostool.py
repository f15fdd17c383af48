#!/usr/bin/env python3
"""chaostool.py - helpers of tests/cluster/chaos.sh.

  chaostool.py monitor VERIFY_LOG QUERIER_URL SERIES OUT
      every 0.1 s appends "W t acked_samples unacked_samples rejected_samples" to OUT (from the
      log); a second thread queries count(count_over_time({job="loadgen"}[2h])) back to back
      (at most 4 a second) and appends "Q t_start ok ms", ok = 1 for a 200 with exactly SERIES
      series (a complete answer). Runs until killed.
  chaostool.py window OUT T0 T1
      prints the figures of [T0, T1): samples sent, acknowledged, failed writes and for how
      long, failed queries and for how long.
  chaostool.py dump VERIFY_LOG QUERIER_URL DUMP_OUT
      reads every loadgen sample back through the querier's PromQL API and writes them in
      `ringtail dump` form, keeping per series only timestamps up to the newest one the log
      names (later ones belong to requests still in flight); writes a copy of the log with every
      unacknowledged request split per series (a request that lost its quorum for some series
      is stored for the others: all-or-nothing holds per series, not per request) to
      VERIFY_LOG.split. Prints "queried N samples".
"""
import json
import sys
import time
import urllib.parse
import urllib.request


def parse_log(path):
    lines = []
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) != 6:
                continue
            kind, lo, hi, ts0, k, step = p[0], int(p[1]), int(p[2]), int(p[3]), int(p[4]), int(p[5])
            lines.append((kind, lo, hi, ts0, k, step))
    return lines


def monitor(log, url, series, out):
    import threading
    lock = threading.Lock()
    o = open(out, "a", buffering=1)

    def emit(line):
        with lock:
            o.write(line)

    def querier_loop():
        q = urllib.parse.urlencode({"query": 'count(count_over_time({job="loadgen"}[2h]))'})
        while True:
            t0 = time.time()
            ok = 0
            try:
                with urllib.request.urlopen(url + "/prometheus/api/v1/query?" + q, timeout=10) as r:
                    res = json.loads(r.read())["data"]["result"]
                    ok = int(len(res) == 1 and int(float(res[0]["value"][1])) == series)
            except Exception:
                ok = 0
            t1 = time.time()
            # a query is stamped with its start; it failed or succeeded for its whole duration
            emit("Q %.3f %d %.1f\n" % (t0, ok, (t1 - t0) * 1000))
            time.sleep(max(0.0, 0.25 - (t1 - t0)))

    threading.Thread(target=querier_loop, daemon=True).start()
    pos = 0
    counts = {"A": 0, "U": 0, "R": 0}
    while True:
        t = time.time()
        try:
            with open(log) as f:
                f.seek(pos)
                data = f.read()
                cut = data.rfind("\n") + 1
                pos += cut
                for line in data[:cut].splitlines():
                    p = line.split()
                    if len(p) == 6 and p[0] in counts:
                        counts[p[0]] += (int(p[2]) - int(p[1])) * int(p[4])
        except FileNotFoundError:
            pass
        emit("W %.3f %d %d %d\n" % (t, counts["A"], counts["U"], counts["R"]))
        time.sleep(max(0.0, 0.1 - (time.time() - t)))


def window(out, t0, t1):
    w, qs = [], []
    with open(out) as f:
        for line in f:
            p = line.split()
            if len(p) == 5 and p[0] == "W":
                w.append((float(p[1]), int(p[2]), int(p[3]), int(p[4])))
            elif len(p) == 4 and p[0] == "Q":
                qs.append((float(p[1]), int(p[2]), float(p[3])))
    before = [r for r in w if r[0] < t0]
    inside = [r for r in w if t0 <= r[0] < t1]
    if not inside:
        print("no monitor data")
        return
    base = before[-1] if before else (t0, 0, 0, 0)
    last = inside[-1]
    acked = last[1] - base[1]
    unacked = last[2] - base[2]
    rejected = last[3] - base[3]
    # write failures: from the first to the last 0.1 s tick at which the unacknowledged count grew
    fail_t = []
    prev = base
    for r in inside:
        if r[2] > prev[2]:
            fail_t.append(r[0])
        prev = r
    wdur = (fail_t[-1] - fail_t[0] + 0.1) if fail_t else 0.0
    qin = [q for q in qs if t0 <= q[0] < t1]
    qfail = [q for q in qin if q[1] == 0]
    qdur = (qfail[-1][0] + qfail[-1][2] / 1000 - qfail[0][0]) if qfail else 0.0
    qmax = max([q[2] for q in qin] or [0])
    print("sent=%d acknowledged=%d failed_write_samples=%d rejected=%d writes_failing_for=%.1fs "
          "queries=%d failed_queries=%d queries_failing_for=%.1fs slowest_query=%.0fms" %
          (acked + unacked + rejected, acked, unacked, rejected, wdur, len(qin), len(qfail),
           qdur, qmax))


def dump(log, url, out):
    lines = parse_log(log)
    newest = {}
    names = set()
    mint, maxt = None, None
    with open(log + ".split", "w") as sp:
        for kind, lo, hi, ts0, k, step in lines:
            last = ts0 + (k - 1) * step
            mint = ts0 if mint is None else min(mint, ts0)
            maxt = last if maxt is None else max(maxt, last)
            for i in range(lo, hi):
                if newest.get(i, -1) < last:
                    newest[i] = last
            if kind == "U":
                for i in range(lo, hi):
                    sp.write("U %d %d %d %d %d\n" % (i, i + 1, ts0, k, step))
            else:
                sp.write("%s %d %d %d %d %d\n" % (kind, lo, hi, ts0, k, step))
    n = 0
    with open(out, "w") as o:
        if mint is None:
            print("queried 0 samples")
            return
        # one query per metric name: every raw sample in [mint, maxt + 1 min]
        at = (maxt + 60000) / 1000.0
        rng = int((maxt + 60000 - mint) / 1000) + 2
        for name in ["loadgen_%d" % j for j in range(20)]:
            q = urllib.parse.urlencode({"query": '%s{job="loadgen"}[%ds]' % (name, rng),
                                        "time": "%.3f" % at})
            with urllib.request.urlopen(url + "/prometheus/api/v1/query?" + q, timeout=60) as r:
                body = json.loads(r.read())
            if body.get("status") != "success":
                raise SystemExit("query failed: %s" % body)
            for s in body["data"]["result"]:
                m = s["metric"]
                idx = int(m.get("series", "-1"))
                lim = newest.get(idx, None)
                lab = ", ".join('%s="%s"' % (k2, v2) for k2, v2 in sorted(m.items()))
                for ts, v in s["values"]:
                    tms = int(round(float(ts) * 1000))
                    if lim is not None and tms > lim:
                        continue
                    o.write("{%s} %d %s\n" % (lab, tms, v))
                    n += 1
    print("queried %d samples" % n)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "monitor":
        monitor(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    elif cmd == "window":
        window(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))
    elif cmd == "dump":
        dump(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        raise SystemExit(__doc__)
