#!/usr/bin/env python3
"""bad_input.py HOST PORT - sends bad remote-write requests to a running ringtail.

Each case prints what it sends, the status it expects and what it got, and then checks that the
process still answers /ready. Exit status 1 if any check fails. Run by bad_input.sh, which also
verifies that the data accepted before these requests is intact.
"""
import json
import random
import math
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwtool as rw  # noqa: E402

host, port = sys.argv[1], int(sys.argv[2])
conn_timeout_s = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
checks = 0
fails = 0
now = int(time.time() * 1000)
RNG = random.Random(20261122)


def result(ok, desc):
    global checks, fails
    checks += 1
    if not ok:
        fails += 1
    print("  %s %s" % ("ok  " if ok else "FAIL", desc), flush=True)


def alive(after):
    try:
        st, _ = rw.get(host, port, "/ready", timeout=10)
    except OSError as e:
        st = "error %s" % e
    result(st == 200, "ringtail still ready after: %s (/ready -> %s)" % (after, st))


def case(desc, body, want, path="/api/v1/push", headers=None, want_text=None, method="POST"):
    try:
        st, text = rw.post(host, port, path, body, headers=headers, method=method)
    except OSError as e:
        st, text = None, "connection error: %s" % e
    want_set = want if isinstance(want, (tuple, list, set)) else (want,)
    ok = st in want_set
    short = text.strip().replace("\n", " ")[:160]
    if ok and want_text and want_text.lower() not in text.lower():
        ok = False
        short += "   [expected the message to mention %r]" % want_text
    result(ok, "%s -> %s (want %s) %s" % (desc, st, "/".join(map(str, want_set)), short))
    alive(desc)
    return st, text


def series(name, extra=(), samples=None, job="badinput"):
    labels = [("__name__", name)] + list(extra)
    labels.sort()
    labels = [(n, v) for n, v in labels]
    if job:
        labels.append(("job", job))
        labels.sort()
    return (labels, samples if samples is not None else [(now, 1.0)])


def rw_body(*ser, meta=()):
    return rw.snappy(rw.write_request(list(ser), meta))


OK = (200, 204)

print("bad_input: %s:%d" % (host, port))

# --- transport level ---
case("empty body", b"", 400)
case("garbage (not snappy)", RNG.randbytes(4096) + b"\xff" * 16, 400)
valid = rw.write_request([series("bad_input_probe")])
good = rw.snappy(valid)
case("truncated snappy (first half of a valid body)", good[: len(good) // 2], 400)
case("snappy length header claims more than the data", rw.varint(len(valid) + 100) + good[1:], 400)
case("valid snappy of garbage", rw.snappy(RNG.randbytes(2048)), 400)
case("valid snappy of a protobuf with wrong wire types",
     rw.snappy(rw.tag(1, 0) + rw.varint(5) + rw.tag(2, 5) + b"\0\0\0\0"), 400)
case("timeseries field as a fixed64", rw.snappy(rw.tag(1, 1) + b"\0" * 8), 400)
case("label name as a varint",
     rw.snappy(rw.field_bytes(1, rw.field_bytes(1, rw.tag(1, 0) + rw.varint(3)))), 400)
case("length-delimited field running past the end",
     rw.snappy(rw.tag(1, 2) + rw.varint(1000) + b"\0" * 10), 400)
case("decompressed size above the limit (snappy header says 1 GiB)",
     rw.varint(1 << 30) + b"\0" * 64, (400, 413))
case("GET on the push endpoint", None, (405,), method="GET")
case("Content-Encoding: gzip", good, 415, headers={"Content-Encoding": "gzip"})

# --- validation ---
case("series without __name__", rw_body(([("instance", "a"), ("job", "x")], [(now, 1)])), 400,
     want_text="metric name")
case("unsorted labels",
     rw_body(([("__name__", "bad_unsorted"), ("job", "x"), ("instance", "a")], [(now, 1)])), 400)
case("duplicate label names",
     rw_body(([("__name__", "bad_dup"), ("job", "x"), ("job", "y")], [(now, 1)])), 400)
case("empty label name", rw_body(([("", "v"), ("__name__", "bad_empty_name")], [(now, 1)])), 400)
case("invalid label name", rw_body(([("__name__", "bad_name"), ("a-b", "v")], [(now, 1)])), 400,
     want_text="a-b")
case("invalid UTF-8 in a label value",
     rw_body(([("__name__", "bad_utf8"), ("job", b"\xff\xfe\xc0")], [(now, 1)])), 400)
case("invalid UTF-8 in the metric name",
     rw_body(([("__name__", b"bad_\xc3\x28"), ("job", "x")], [(now, 1)])), 400)
many = [("__name__", "bad_many_labels")] + [("l%06d" % i, "v") for i in range(100000)]
case("100k labels on one series", rw_body((many, [(now, 1)])), (400, 413))
case("label value longer than the limit",
     rw_body(([("__name__", "bad_long_value"), ("job", "x" * 100000)], [(now, 1)])), 400)
case("timestamp far in the future (int64 max)",
     rw_body(series("bad_future", samples=[(2**63 - 1, 1.0)])), 400)
case("timestamp far in the past (int64 min)",
     rw_body(series("bad_past", samples=[(-(2**63), 1.0)])), 400)
case("samples of one series out of order in the request",
     rw_body(series("bad_order", samples=[(now, 1.0), (now - 1000, 2.0)])), 400)
case("same timestamp twice with different values",
     rw_body(series("bad_dup_ts", samples=[(now, 1.0), (now, 2.0)])), 400)

# --- valid edge cases that must be accepted ---
case("empty WriteRequest", rw.snappy(b""), OK)
case("NaN, +Inf, -Inf and a stale marker as values",
     rw_body(series("edge_special_values",
                    samples=[(now - 4000, math.nan), (now - 3000, math.inf), (now - 2000, -math.inf),
                             (now - 1000, rw.STALE_NAN)])), OK)
case("metadata only",
     rw.snappy(rw.write_request([], [rw.metadata(1, "edge_meta_total", "A counter for a test.")])),
     OK)
case("also served on /api/v1/write", rw_body(series("edge_write_path")), OK, path="/api/v1/write")

# --- partly bad batch: the good series is kept, the answer names the bad one ---
st, text = case("batch with one good and one bad series",
                rw_body(series("edge_partial_good"),
                        ([("__name__", "edge_partial_bad"), ("job", b"\xff")], [(now, 1)])),
                400)
q = urllib.parse.urlencode({"match[]": '{__name__="edge_partial_good"}'})
try:
    st2, body = rw.get(host, port, "/api/v1/series?" + q)
    n = len(json.loads(body).get("data", [])) if st2 == 200 else -1
except (OSError, ValueError):
    n = -1
result(n == 1, "the good series of the partly bad batch was stored (series API finds %d)" % n)

# --- size and time limits ---
st, sent, secs = rw.send_huge(host, port, "/api/v1/push", 100 << 20)
result(st == 413 and sent < (100 << 20),
       "100 MiB body -> %s after %.1f MiB sent in %.1fs (want 413 before the body is read)"
       % (st, sent / 1048576.0, secs))
alive("100 MiB body")

st, sent, secs = rw.send_huge(host, port, "/api/v1/push", 100 << 20, chunked=True)
result(st == 413 and sent < (100 << 20),
       "100 MiB chunked body (no Content-Length) -> %s after %.1f MiB sent in %.1fs (want 413)"
       % (st, sent / 1048576.0, secs))
alive("100 MiB chunked body")

wait = conn_timeout_s * 3 + 5
st, closed, secs = rw.slow_client(host, port, "/api/v1/push", 100000, 100, wait)
result(closed and secs < wait,
       "slow client that never finishes its body is cut off (closed=%s after %.1fs, status %s; "
       "timeout %.0fs)" % (closed, secs, st, conn_timeout_s))
alive("slow client")

print("bad_input: %d passed, %d failed" % (checks - fails, fails))
sys.exit(1 if fails else 0)
