#!/usr/bin/env python3
"""query.py - the timing side of bench/query.sh: runs one query set against servers that already
hold the same data, and prints one table.

Each server is given as NAME,URL,PID (the PID of its single process, for CPU and memory). For each
query and mode: one warm-up request per server, then --runs rounds in which every server answers
once (so a change in the machine's load falls on all of them alike); the median is reported. The
number of points each server returned (instant vector: one per series; matrix: one per sample) is
compared across servers, and a row where they differ, or where a server answered an error, says
so in its last column.

Memory: each server's RSS before the query set, its peak during it (VmHWM after a reset of the
peak through /proc/PID/clear_refs, and at least the highest VmRSS seen by a sampler every 20 ms)
and its RSS after it.

Standard library only. Not a test: nothing checks the figures.
"""
import argparse
import http.client
import json
import os
import statistics
import sys
import threading
import time
import urllib.parse

MIN = 60
HOUR = 3600
DAY = 86400

# The queries: (shape, expression, data set, modes). Data set "main" is the 10k-series set ending
# at --t0; "week" is the second set ending at --t2. A mode is instant, or a range (span, step).
INSTANT = ("instant", 0, 0)
R1H = ("range 1h", HOUR, MIN)
R6H = ("range 6h", 6 * HOUR, MIN)
HEAVY = ("range 3h @15s", 3 * HOUR, 15)
WEEK = ("range 7d @5m", 7 * DAY, 5 * MIN)
STD = (INSTANT, R1H, R6H)

QUERIES = [
    ("plain selector", "loadgen_0", "main", STD),
    ("rate", "rate(loadgen_0[5m])", "main", STD),
    ("sum by rate", "sum by (instance) (rate(loadgen_0[5m]))", "main", STD),
    ("aggregation over every main series", 'sum by (instance) (rate({job="loadgen"}[5m]))', "main", STD),
    ("sum by rate, name regex over every main series",
     'sum by (job) (rate({__name__=~"loadgen_.+"}[5m]))', "main", STD),
    ("topk", "topk(5, loadgen_1)", "main", STD),
    ("*_over_time", "max_over_time(loadgen_2[1h])", "main", STD),
    ("subquery", "max_over_time(rate(loadgen_0[5m])[1h:1m])", "main", STD),
    ("binary operation between aggregations",
     "sum by (instance) (rate(loadgen_0[5m])) / sum by (instance) (rate(loadgen_4[5m]))", "main", STD),
    ("quantile", "quantile by (instance) (0.9, loadgen_1)", "main", STD),
    ("count by", 'count by (instance) ({job="loadgen"})', "main", STD),
    ("histogram_quantile", "histogram_quantile(0.9, sum by (le) (rate(lghist_bucket[5m])))", "main", STD),
    ("regex matchers", 'sum by (instance) (rate({__name__=~"loadgen_1.*", instance=~"host-[0-4]"}[5m]))',
     "main", STD),
    ("heavy: count_over_time of every series", 'count_over_time({__name__=~".+"}[1d])', "main", (HEAVY,)),
    ("heavy: sum of rate of every series", 'sum(rate({__name__=~".+"}[5m]))', "main", (HEAVY,)),
    ("7 days: sum by rate", 'sum by (instance) (rate({__name__=~"lgweek_.+"}[1h]))', "week", (WEEK,)),
    ("7 days: *_over_time", "max_over_time(lgweek_1[1h])", "week", (WEEK,)),
]

LABELS = {"ringtail": "Ringtail", "prometheus3": "Prometheus 3", "victoria-metrics": "VictoriaMetrics"}


class Server:
    def __init__(self, spec):
        parts = spec.split(",")
        if len(parts) != 3:
            raise SystemExit("query.py: --server wants NAME,URL,PID, got %r" % spec)
        self.name, url, pid = parts
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.prefix = u.hostname, u.port or 80, u.path.rstrip("/")
        self.pid = int(pid)
        self.conn = None
        self.rss_max_kib = 0

    def label(self):
        return LABELS.get(self.name, self.name)

    def get(self, path, params, timeout):
        """One GET; returns (seconds until the whole body was read, HTTP status, body bytes)."""
        target = self.prefix + path + "?" + urllib.parse.urlencode(params)
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
            try:
                t = time.perf_counter()
                self.conn.request("GET", target)
                resp = self.conn.getresponse()
                body = resp.read()
                return time.perf_counter() - t, resp.status, body
            except (http.client.HTTPException, OSError):
                # a keep-alive connection the server closed: retry once on a new one
                self.conn.close()
                self.conn = None
                if attempt:
                    raise

    def status(self, field):
        try:
            with open("/proc/%d/status" % self.pid) as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def cpu_seconds(self):
        try:
            with open("/proc/%d/stat" % self.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            raise SystemExit("query.py: %s (pid %d) is gone" % (self.name, self.pid))
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def count_points(body):
    """Points in a successful answer, or raises ValueError with the error it holds."""
    doc = json.loads(body)
    if doc.get("status") != "success":
        raise ValueError("%s: %s" % (doc.get("errorType"), doc.get("error")))
    data = doc["data"]
    rt, res = data["resultType"], data["result"]
    if rt == "matrix":
        return sum(len(s.get("values", [])) + len(s.get("histograms", [])) for s in res)
    if rt == "vector":
        return len(res)
    return 1


def wait_idle(servers, limit_s, cpu_pct=5.0, window_s=2.0):
    """Polls until every server used less than cpu_pct of one core over window_s (background
    compaction, merges and flushes after the load are over), or until limit_s passed."""
    end = time.monotonic() + limit_s
    while True:
        before = [s.cpu_seconds() for s in servers]
        time.sleep(window_s)  # the measuring window of the CPU rate
        busy = [(s.name, 100 * (s.cpu_seconds() - b) / window_s) for s, b in zip(servers, before)]
        busy = [(n, p) for n, p in busy if p >= cpu_pct]
        if not busy:
            return True
        if time.monotonic() >= end:
            print("  still busy after %d s: %s; measuring anyway" % (limit_s, ", ".join(
                "%s %.0f%% CPU" % (n, p) for n, p in busy)))
            return False


def sampler(servers, stop):
    while not stop.wait(0.02):
        for s in servers:
            s.rss_max_kib = max(s.rss_max_kib, s.status("VmRSS"))


def request_params(expr, mode, end):
    name, span, step = mode
    if span == 0:
        return "/api/v1/query", {"query": expr, "time": str(end)}
    return "/api/v1/query_range", {"query": expr, "start": str(end - span), "end": str(end), "step": str(step)}


def run_cell(servers, expr, mode, end, runs, timeout):
    """Warm-up and runs of one query in one mode. Returns per server {points|error, times}."""
    path, params = request_params(expr, mode, end)
    out = {}
    for s in servers:
        r = out[s.name] = {"times": [], "points": None, "error": None}
        try:
            _, status, body = s.get(path, params, timeout)
            r["points"] = count_points(body)
        except ValueError as e:
            r["error"] = "HTTP %d %s" % (status, str(e)[:80])
        except (OSError, http.client.HTTPException) as e:
            r["error"] = "request failed: %s" % e
    for run in range(runs):
        for s in servers:
            r = out[s.name]
            if r["error"]:
                continue
            try:
                secs, status, body = s.get(path, params, timeout)
            except (OSError, http.client.HTTPException) as e:
                r["error"] = "request failed: %s" % e
                continue
            if status != 200:
                try:
                    count_points(body)
                    why = ""
                except ValueError as e:
                    why = " " + str(e)[:80]
                r["error"] = "HTTP %d%s on timed run %d of %d, after %.0f ms (the warm-up answered)" % (
                    status, why, run + 1, runs, secs * 1000)
                continue
            r["times"].append(secs * 1000)
    return out


def fmt_ms(v):
    if v is None:
        return "-"
    return "%.1f" % v if v < 100 else "%.0f" % v


def fmt_ratio(a, b):
    return "%.2fx" % (a / b) if a is not None and b else "-"


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", action="append", required=True, help="NAME,URL,PID")
    ap.add_argument("--t0", type=int, required=True, help="end of the main data set (Unix s)")
    ap.add_argument("--t2", type=int, required=True, help="end of the 7-day data set (Unix s)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--heavy-runs", type=int, default=3)
    ap.add_argument("--only", default="", help="run only queries whose shape or text holds this")
    ap.add_argument("--timeout", type=float, default=150, help="client timeout per request, s")
    ap.add_argument("--idle-wait", type=float, default=600, help="longest wait for idle servers, s")
    ap.add_argument("--json", help="also write the measurements to this file")
    a = ap.parse_args()
    servers = [Server(x) for x in a.server]
    names = [s.name for s in servers]

    print("waiting for every server to be idle (background compaction after the load)...")
    wait_idle(servers, a.idle_wait)
    print("query set starts; load average %s" % loadavg())
    for s in servers:
        s.rss_before = s.status("VmRSS")
        try:
            with open("/proc/%d/clear_refs" % s.pid, "w") as f:
                f.write("5")  # resets VmHWM to the current RSS
            s.hwm_reset = True
        except OSError:
            s.hwm_reset = False
        s.rss_max_kib = s.rss_before
    stop = threading.Event()
    th = threading.Thread(target=sampler, args=(servers, stop), daemon=True)
    th.start()

    rows = []
    started = time.monotonic()
    for shape, expr, dataset, modes in QUERIES:
        if a.only and a.only not in shape and a.only not in expr:
            continue
        end = a.t0 if dataset == "main" else a.t2
        for mode in modes:
            runs = a.heavy_runs if mode in (HEAVY,) else a.runs
            cell = run_cell(servers, expr, mode, end, runs, a.timeout)
            row = {"shape": shape, "query": expr, "mode": mode[0], "runs": runs, "servers": cell}
            for n in names:
                t = cell[n]["times"]
                cell[n]["median_ms"] = statistics.median(t) if t and not cell[n]["error"] else None
            rows.append(row)
            print("  %-40s %-14s %s" % (expr[:40], mode[0], "  ".join(
                "%s %s" % (n, fmt_ms(cell[n]["median_ms"]) if not cell[n]["error"] else "error")
                for n in names)), flush=True)
    stop.set()
    th.join()
    elapsed = time.monotonic() - started
    load_end = loadavg()
    for s in servers:
        s.rss_after = s.status("VmRSS")
        hwm = s.status("VmHWM") if s.hwm_reset else 0
        s.rss_peak = max(hwm, s.rss_max_kib, s.rss_after)

    # the table
    print()
    print("query set done in %.0f s; load average %s" % (elapsed, load_end))
    print()
    has = {n: n in names for n in LABELS}
    head = ["query", "mode", "points"] + [servers[i].label() + " ms" for i in range(len(servers))]
    if has["ringtail"] and has["prometheus3"]:
        head.append("Ringtail / Prometheus 3")
    if has["ringtail"] and has["victoria-metrics"]:
        head.append("Ringtail / VictoriaMetrics")
    head.append("check")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---:" if h.endswith("ms") or "/" in h or h == "points" else "---" for h in head) + "|")
    for r in rows:
        cell = r["servers"]
        pts = [cell[n]["points"] for n in names if cell[n]["error"] is None]
        notes = ["%s: %s" % (LABELS.get(n, n), cell[n]["error"]) for n in names if cell[n]["error"]]
        if len(set(pts)) > 1:
            notes.append("POINTS DIFFER: " + ", ".join(
                "%s %d" % (LABELS.get(n, n), cell[n]["points"]) for n in names if cell[n]["error"] is None))
        med = {n: cell[n]["median_ms"] for n in names}
        line = ["`%s`" % r["query"].replace("|", "\\|"), r["mode"], str(pts[0]) if pts else "-"]
        line += [fmt_ms(med[n]) for n in names]
        if has["ringtail"] and has["prometheus3"]:
            line.append(fmt_ratio(med["ringtail"], med["prometheus3"]))
        if has["ringtail"] and has["victoria-metrics"]:
            line.append(fmt_ratio(med["ringtail"], med["victoria-metrics"]))
        line.append("; ".join(notes) if notes else "same points")
        print("| " + " | ".join(line) + " |")
    print()
    print("| server | RSS before MiB | peak RSS during the query set MiB | RSS after MiB | after / before |")
    print("|---|---:|---:|---:|---:|")
    for s in servers:
        print("| %s | %.0f | %.0f | %.0f | %.2f |" % (s.label(), s.rss_before / 1024, s.rss_peak / 1024,
                                                    s.rss_after / 1024, s.rss_after / max(s.rss_before, 1)))
    for key, label in (("prometheus3", "Prometheus 3"), ("victoria-metrics", "VictoriaMetrics")):
        if not (has["ringtail"] and has[key]):
            continue
        ratios = [r["servers"]["ringtail"]["median_ms"] / r["servers"][key]["median_ms"] for r in rows
                  if r["servers"]["ringtail"]["median_ms"] and r["servers"][key]["median_ms"]]
        if ratios:
            print()
            print("Ringtail / %s over %d rows: median %.2fx, best %.2fx, worst %.2fx; Ringtail faster on %d"
                  % (label, len(ratios), statistics.median(ratios), min(ratios), max(ratios),
                     sum(1 for x in ratios if x < 1)))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rows": rows, "load_end": load_end, "elapsed_s": elapsed,
                       "rss_kib": {s.name: [s.rss_before, s.rss_peak, s.rss_after] for s in servers}}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
