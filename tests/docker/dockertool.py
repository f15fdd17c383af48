"""dockertool.py - writer, query monitor and checker for the compose cluster tests.

  writer URL LOG [--series N] [--interval S]
      Writes one sample per series per request (series rt_docker_test{series="0".."N-1"},
      request k at timestamp START + k*200ms, value k) until killed, without retries. Logs one
      line per request: "A k ts_ms wall" when acknowledged (2xx), "U k ts_ms wall status" when
      not (status 0: no HTTP answer).
  monitor URL LOG
      Queries count(rt_docker_test) through the queriers every 0.25 s; logs "OK wall" or
      "F wall status".
  check URL LOG SERIES
      Reads every rt_docker_test sample back and prints "sent acked queryable missing" (in
      samples); exits 1 when an acknowledged sample is missing or has another value.
  window WRITER_LOG MONITOR_LOG T0 T1
      For the wall-clock window [T0, T1): writes sent / acknowledged / failed (with the 5xx
      count and how long writes failed: first to last failure), queries failed and for how long.
  roundtrip URL
      One remote-write of a few samples of three series rt_docker_test{series="0".."2"}, then
      an instant query and an /api/v1/series call that must return exactly those series (and
      the last value of each); exits 1 with the reason when anything differs.
  readme-commands README SECTION
      Prints the ```sh blocks under the README heading SECTION, each followed by a NUL byte;
      exits 1 when the heading or its blocks are missing.
"""
import json
import os
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import rwtool  # noqa: E402

METRIC = "rt_docker_test"
STEP_MS = 200


def hostport(url):
    u = urllib.parse.urlparse(url)
    return u.hostname, u.port


def writer(url, log, series=50, interval=0.05):
    host, port = hostport(url)
    start = (int(time.time()) - 1800) * 1000
    with open(log, "a", buffering=1) as out:
        k = 0
        while True:
            ts = start + k * STEP_MS
            body = rwtool.snappy(rwtool.write_request(
                [([("__name__", METRIC), ("series", str(i))], [(ts, float(k))])
                 for i in range(series)]))
            try:
                status, _ = rwtool.post(host, port, "/api/v1/push", body, timeout=10)
            except OSError:
                status = 0
            now = time.time()
            if 200 <= status < 300:
                out.write(f"A {k} {ts} {now:.3f}\n")
            else:
                out.write(f"U {k} {ts} {now:.3f} {status}\n")
            k += 1
            time.sleep(interval)


def monitor(url, log):
    q = urllib.parse.urlencode({"query": f"count({METRIC})"})
    with open(log, "a", buffering=1) as out:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/v1/query?{q}", timeout=10) as r:
                    status = r.status
            except urllib.error.HTTPError as e:
                status = e.code
            except OSError:
                status = 0
            now = time.time()
            out.write(f"OK {now:.3f}\n" if status == 200 else f"F {now:.3f} {status}\n")
            time.sleep(0.25)


def parse_writer(log):
    reqs = []
    with open(log) as f:
        for line in f:
            p = line.split()
            if len(p) < 4:
                continue
            reqs.append((p[0], int(p[1]), int(p[2]), float(p[3]), int(p[4]) if len(p) > 4 else 200))
    return reqs


def check(url, log, series):
    series = int(series)
    reqs = parse_writer(log)
    acked = {ts: k for kind, k, ts, _, _ in reqs if kind == "A"}
    if not reqs:
        print("0 0 0 0")
        return 1
    lo = min(r[2] for r in reqs)
    hi = max(r[2] for r in reqs)
    got = {}   # (series, ts) -> value
    # read in windows of 10 minutes of sample time, as raw samples of a range selector
    t = lo
    while t <= hi:
        end = min(t + 600_000 - 1, hi)
        rng = (end - t) // 1000 + 1
        q = urllib.parse.urlencode({"query": f"{METRIC}[{rng}s]", "time": f"{end / 1000:.3f}"})
        try:
            with urllib.request.urlopen(f"{url}/api/v1/query?{q}", timeout=30) as r:
                js = json.load(r)
        except urllib.error.HTTPError as e:
            print(f"check: query failed with {e.code}: {e.read()[:300]!r}", file=sys.stderr)
            return 2
        for s in js["data"]["result"]:
            sid = s["metric"].get("series")
            for ts, v in s["values"]:
                got[(sid, int(round(float(ts) * 1000)))] = float(v)
        t = end + 1
    missing = 0
    wrong = 0
    for ts, k in acked.items():
        for i in range(series):
            v = got.get((str(i), ts))
            if v is None:
                missing += 1
            elif v != float(k):
                wrong += 1
    sent = len(reqs) * series
    na = len(acked) * series
    print(f"{sent} {na} {na - missing - wrong} {missing + wrong}")
    if missing or wrong:
        ex = [ts for ts in sorted(acked) if any((str(i), ts) not in got for i in range(series))][:5]
        print(f"check: {missing} acknowledged samples missing, {wrong} with another value; "
              f"first timestamps missing: {ex}", file=sys.stderr)
        return 1
    return 0


def spans(times, gap=3.0):
    """Total length of the runs of failure times (runs split by gaps over `gap` seconds)."""
    if not times:
        return 0.0
    total, a, b = 0.0, times[0], times[0]
    for t in times[1:]:
        if t - b > gap:
            total += b - a
            a = t
        b = t
    return total + (b - a)


def window(wlog, mlog, t0, t1):
    t0, t1 = float(t0), float(t1)
    reqs = [r for r in parse_writer(wlog) if t0 <= r[3] < t1]
    fails = [r for r in reqs if r[0] == "U"]
    f5 = sum(1 for r in fails if 500 <= r[4] < 600)
    ft = [r[3] for r in fails]
    mq = []
    with open(mlog) as f:
        for line in f:
            p = line.split()
            if len(p) >= 2 and t0 <= float(p[1]) < t1:
                mq.append((p[0], float(p[1])))
    qf = [t for kind, t in mq if kind == "F"]
    print(f"writes={len(reqs)} acked={len(reqs) - len(fails)} failed={len(fails)} "
          f"failed_5xx={f5} write_fail_s={spans(ft):.1f} "
          f"queries={len(mq)} queries_failed={len(qf)} query_fail_s={spans(qf):.1f}")
    return 0


def roundtrip(url):
    host, port = hostport(url)
    now = int(time.time()) * 1000
    series = [str(i) for i in range(3)]
    # five samples per series, one second apart, ending now; value = series * 10 + k
    body = rwtool.snappy(rwtool.write_request(
        [([("__name__", METRIC), ("series", s)],
          [(now - (4 - k) * 1000, float(int(s) * 10 + k)) for k in range(5)]) for s in series]))
    try:
        status, resp = rwtool.post(host, port, "/api/v1/push", body, timeout=10)
    except OSError as e:
        print(f"roundtrip: remote-write to {url}: {e}", file=sys.stderr)
        return 1
    if not 200 <= status < 300:
        print(f"roundtrip: remote-write answered {status}: {resp[:300]!r}", file=sys.stderr)
        return 1

    def get(path, params):
        q = urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(f"{url}{path}?{q}", timeout=10) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            raise SystemExit(f"roundtrip: {path} answered {e.code}: {e.read()[:300]!r}")

    js = get("/api/v1/query", {"query": METRIC, "time": f"{now / 1000:.3f}"})
    got = {r["metric"].get("series"): (r["metric"], float(r["value"][1]))
           for r in js["data"]["result"]}
    want = {s: ({"__name__": METRIC, "series": s}, float(int(s) * 10 + 4)) for s in series}
    if js.get("status") != "success" or got != want:
        print(f"roundtrip: instant query {METRIC} gave {js!r}, want {want!r}", file=sys.stderr)
        return 1
    js = get("/api/v1/series", {"match[]": METRIC, "start": f"{(now - 60000) / 1000:.3f}",
                                "end": f"{now / 1000 + 1:.3f}"})
    got_sets = sorted(tuple(sorted(m.items())) for m in js.get("data", []))
    want_sets = sorted(tuple(sorted(m.items())) for m, _ in want.values())
    if js.get("status") != "success" or got_sets != want_sets:
        print(f"roundtrip: /api/v1/series gave {js!r}, want {want_sets!r}", file=sys.stderr)
        return 1
    print(f"remote-write of {len(series) * 5} samples acknowledged ({status}); the instant "
          f"query and /api/v1/series return the {len(series)} series written")
    return 0


def readme_commands(readme, section):
    blocks, cur, inside = [], None, False
    with open(readme) as f:
        for line in f:
            if line.startswith("## "):
                inside = line[3:].strip() == section
                continue
            if not inside:
                continue
            if cur is None and line.strip() == "```sh":
                cur = []
            elif cur is not None and line.strip() == "```":
                blocks.append("".join(cur).strip())
                cur = None
            elif cur is not None:
                cur.append(line)
    if not blocks:
        print(f"readme-commands: no ```sh block under '## {section}' in {readme}", file=sys.stderr)
        return 1
    for b in blocks:
        sys.stdout.write(b + "\0")
    return 0


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "writer":
        series, interval = 50, 0.05
        if "--series" in args:
            series = int(args[args.index("--series") + 1])
        if "--interval" in args:
            interval = float(args[args.index("--interval") + 1])
        writer(args[0], args[1], series, interval)
    elif cmd == "monitor":
        monitor(args[0], args[1])
    elif cmd == "check":
        sys.exit(check(*args))
    elif cmd == "window":
        sys.exit(window(*args))
    elif cmd == "roundtrip":
        sys.exit(roundtrip(*args))
    elif cmd == "readme-commands":
        sys.exit(readme_commands(*args))
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
