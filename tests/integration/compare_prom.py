#!/usr/bin/env python3
"""compare_prom.py DIR CUTOFF_MS - compares what Prometheus stored with what it sent to Ringtail.

DIR holds:
  prom_series_cut.json  Prometheus /api/v1/series up to the cutoff
  prom_series_all.json  Prometheus /api/v1/series over all time (taken later)
  prom_samples.json     Prometheus instant query `{__name__=~".+"}[W]` at the cutoff (raw samples)
  rt_series.json        Ringtail /api/v1/series
  dump.txt              `ringtail dump` of Ringtail's data directory
Checks, printing each:
  1. every series Prometheus has up to the cutoff is in Ringtail, and every series Ringtail has is
     one Prometheus has (set equality, allowing for series first seen after the cutoff);
  2. per series, Ringtail holds exactly Prometheus' samples at or before the cutoff (timestamps
     and values), except stale markers, which Prometheus' query API does not return.
Exit status 1 on any mismatch.
"""
import json
import math
import os
import struct
import sys

d, cutoff = sys.argv[1], int(sys.argv[2])
fails = 0
checks = 0


def result(ok, desc):
    global fails, checks
    checks += 1
    fails += 0 if ok else 1
    print("  %s %s" % ("ok  " if ok else "FAIL", desc), flush=True)


def key(labels):
    return tuple(sorted(labels.items()))


def fmt(k):
    return "{" + ", ".join('%s="%s"' % kv for kv in k) + "}"


def load(name):
    with open(os.path.join(d, name)) as f:
        return json.load(f)


def parse_labels(s, i):
    """Parses `{a="b", c="d"}` starting at s[i] == '{'; returns (dict, index after '}')."""
    labels = {}
    i += 1
    n = len(s)
    while i < n:
        while i < n and s[i] in " ,":
            i += 1
        if s[i] == "}":
            return labels, i + 1
        j = s.index("=", i)
        name = s[i:j].strip()
        i = j + 1
        if s[i] != '"':
            raise ValueError("expected a quote at %d" % i)
        i += 1
        val = []
        while s[i] != '"':
            if s[i] == "\\":
                nxt = s[i + 1]
                val.append({"n": "\n", "\\": "\\", '"': '"', "t": "\t"}.get(nxt, nxt))
                i += 2
            else:
                val.append(s[i])
                i += 1
        labels[name] = "".join(val)
        i += 1
    raise ValueError("unterminated label set")


def parse_value(s):
    s = s.strip()
    low = s.lower()
    if low in ("nan", "+nan", "-nan", "stalenan"):
        return math.nan
    if low in ("+inf", "inf"):
        return math.inf
    if low == "-inf":
        return -math.inf
    if low.startswith("0x"):  # raw bits
        return struct.unpack("<d", struct.pack("<Q", int(low, 16)))[0]
    return float(s)


prom_cut = {key(s) for s in load("prom_series_cut.json")["data"]}
prom_all = {key(s) for s in load("prom_series_all.json")["data"]}
rt = {key(s) for s in load("rt_series.json")["data"]}

missing = prom_cut - rt
extra = rt - prom_all
print("  Prometheus: %d series up to the cutoff, %d in all; Ringtail: %d series"
      % (len(prom_cut), len(prom_all), len(rt)))
for k in sorted(missing)[:5]:
    print("    missing in Ringtail: " + fmt(k))
for k in sorted(extra)[:5]:
    print("    only in Ringtail:    " + fmt(k))
result(not missing, "every Prometheus series is in Ringtail's /api/v1/series (%d missing)" % len(missing))
result(not extra, "Ringtail has no series Prometheus lacks (%d extra)" % len(extra))

# Prometheus samples at or before the cutoff
prom = {}
res = load("prom_samples.json")["data"]["result"]
for r in res:
    prom[key(r["metric"])] = {int(round(float(t) * 1000)): parse_value(v) for t, v in r["values"]}

# Ringtail samples from the dump
rts = {}
bad_lines = 0
with open(os.path.join(d, "dump.txt")) as f:
    for line in f:
        b = line.find("{")
        if b < 0:
            continue
        try:
            labels, e = parse_labels(line, b)
            # a dump line is `<tenant> {labels} <ts> <value>`; a bare `name{...}` form is
            # accepted too
            name = line[:b].strip().split(" ")[-1]
            if name and "__name__" not in labels and line[b - 1] != " ":
                labels["__name__"] = name
            parts = line[e:].split()
            ts, v = int(parts[0]), parse_value(parts[1])
        except (ValueError, IndexError):
            bad_lines += 1
            continue
        if ts <= cutoff:
            rts.setdefault(key(labels), {})[ts] = v
result(bad_lines == 0, "every dump line parses (%d did not)" % bad_lines)


def same(a, b):
    return a == b or (math.isnan(a) and math.isnan(b))


n_prom = sum(len(v) for v in prom.values())
n_rt = sum(len(v) for v in rts.values())
missing_samples = 0
wrong_values = 0
extra_non_nan = 0
stale = 0
series_bad = 0
shown = 0
for k in set(prom) | set(rts):
    p = prom.get(k, {})
    r = rts.get(k, {})
    miss = [t for t in p if t not in r]
    wrong = [t for t in p if t in r and not same(p[t], r[t])]
    ext = [t for t in r if t not in p]
    ext_bad = [t for t in ext if not math.isnan(r[t])]
    stale += len(ext) - len(ext_bad)
    missing_samples += len(miss)
    wrong_values += len(wrong)
    extra_non_nan += len(ext_bad)
    if miss or wrong or ext_bad:
        series_bad += 1
        if shown < 8:
            shown += 1
            print("    %s: Prometheus %d samples, Ringtail %d; missing %s wrong %s extra %s"
                  % (fmt(k), len(p), len(r), miss[:3], [(t, p[t], r[t]) for t in wrong[:2]],
                     ext_bad[:3]))
print("  samples up to the cutoff: Prometheus %d, Ringtail %d (%d of them stale markers)"
      % (n_prom, n_rt, stale))
result(n_prom > 0, "Prometheus returned samples to compare (%d series)" % len(prom))
result(missing_samples == 0, "Ringtail holds every sample Prometheus has (%d missing)" % missing_samples)
result(wrong_values == 0, "the values are identical (%d differ)" % wrong_values)
result(extra_non_nan == 0, "Ringtail holds no sample Prometheus lacks, stale markers aside (%d extra)"
       % extra_non_nan)
print("  per-series sample counts: %d of %d series differ" % (series_bad, len(set(prom) | set(rts))))
print("compare: %d passed, %d failed" % (checks - fails, fails))
sys.exit(1 if fails else 0)
