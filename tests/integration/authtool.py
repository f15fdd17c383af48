"""authtool.py - small HTTP clients for auth.sh and isolation.sh (stdlib only).

  bodies DIR NAME...               writes DIR/NAME.bin: a snappy remote-write body with
                                   NAME{job="auth"} = 1 now and NAME's metadata (for curl; a
                                   Python start costs seconds on a loaded machine)
  isobody DIR TENANT:VALUE...      DIR/TENANT.bin, isolation.sh's body for each tenant: iso_metric{job="iso",
                                   instance="i1"} = VALUE over the last 2 minutes with an
                                   exemplar trace_id=TENANT, only_TENANT{owner=TENANT}, and
                                   metadata whose help names the tenant
  loop PORT HEADER STOPFILE        GET /api/v1/labels and POST /api/v1/query with HEADER until
                                   STOPFILE exists; prints "started" after the first success,
                                   at the end "N requests, F failed"
"""
import http.client
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwtool  # noqa: E402


def headers(args):
    h = {}
    for a in args:
        k, _, v = a.partition(":")
        h[k.strip()] = v.strip()
    return h


def body(name):
    now = int(time.time() * 1000)
    return rwtool.snappy(rwtool.write_request(
        [([("__name__", name), ("job", "auth")], [(now, 1.0)])],
        [rwtool.metadata(1, name, "a metric of the auth test")]))


def isobody(tenant, value):
    now = int(time.time() * 1000)
    samples = [(now - 120000 + i * 15000, value) for i in range(9)]
    iso = rwtool.timeseries([("__name__", "iso_metric"), ("instance", "i1"), ("job", "iso")],
                            samples)
    ex = (rwtool.field_bytes(1, rwtool.label("trace_id", tenant)) +
          rwtool.field_double(2, value) + rwtool.field_varint(3, now))
    iso += rwtool.field_bytes(3, ex)
    only = rwtool.timeseries([("__name__", "only_" + tenant), ("job", "iso"), ("owner", tenant)],
                             samples)
    meta = [rwtool.metadata(1, "iso_metric", "help of " + tenant, "seconds"),
            rwtool.metadata(2, "only_" + tenant, "only in " + tenant)]
    parts = [rwtool.field_bytes(1, iso), rwtool.field_bytes(1, only)]
    parts += [rwtool.field_bytes(3, m) for m in meta]
    return rwtool.snappy(b"".join(parts))


def loop(port, hdr, stop):
    h = headers([hdr])
    n = failed = 0
    c = None
    while not os.path.exists(stop):
        try:
            if c is None:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            if n % 2:
                c.request("GET", "/api/v1/labels", headers=h)
            else:
                hh = dict(h)
                hh["Content-Type"] = "application/x-www-form-urlencoded"
                c.request("POST", "/api/v1/query", body="query=up", headers=hh)
            r = c.getresponse()
            r.read()
            if r.status != 200:
                failed += 1
                print("status %d" % r.status, flush=True)
            elif n == 0:
                print("started", flush=True)
            if r.getheader("Connection", "").lower() == "close":
                c.close()
                c = None
        except (OSError, http.client.HTTPException) as e:
            failed += 1
            print("error %s" % e, flush=True)
            c = None
        n += 1
    print("%d requests, %d failed" % (n, failed), flush=True)


def main():
    cmd = sys.argv[1]
    if cmd == "bodies":
        for name in sys.argv[3:]:
            with open(os.path.join(sys.argv[2], name + ".bin"), "wb") as f:
                f.write(body(name))
    elif cmd == "isobody":
        for tv in sys.argv[3:]:
            t, _, v = tv.partition(":")
            with open(os.path.join(sys.argv[2], t + ".bin"), "wb") as f:
                f.write(isobody(t, float(v)))
    elif cmd == "loop":
        loop(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
