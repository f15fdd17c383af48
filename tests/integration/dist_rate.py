"""dist_rate.py - a tenant's ingestion rate shared by distributors (driven by distributor_ring.sh).

usage:
  dist_rate.py message PORT TENANT COUNT SHARE
      a request larger than the burst gets 429 saying "across COUNT distributor(s) (SHARE
      samples/s each)"
  dist_rate.py rate PORT TENANT MIN MAX SECONDS
      drains the tenant's bucket on this distributor, then pushes 50-sample requests for SECONDS
      and checks that the accepted samples per second lie in [MIN, MAX] (MAX allows one request
      beyond the rate)
Prints one "ok"/"FAIL" line per check; exits 1 when a check failed."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwtool  # noqa: E402

SERIAL = [0]


check = rwtool.check


def push(port, tenant, n):
    """Pushes one sample to each of n series (timestamps strictly increasing); returns
    (status, body)."""
    SERIAL[0] = max(int(time.time() * 1000), SERIAL[0] + 1)
    series = [([("__name__", "dist_rate_test"), ("i", str(i))], [(SERIAL[0], float(i))])
              for i in range(n)]
    body = rwtool.snappy(rwtool.write_request(series))
    return rwtool.post("127.0.0.1", port, "/api/v1/push", body, {"X-Scope-OrgID": tenant})


def message(port, tenant, count, share):
    st, body = push(port, tenant, 5000)
    want = "across %s distributor%s (%s samples/s each)" % (count, "" if count == "1" else "s",
                                                             share)
    check("a request beyond the burst gets 429 naming %s distributor(s) and the share %s/s"
          % (count, share), st == 429 and want in body and "err-ringtail-ingestion-rate-limited"
          in body, "status %d: %s" % (st, body))


def rate(port, tenant, lo, hi, seconds):
    # drain the bucket: push until the first 429
    end = time.time() + 20
    while time.time() < end:
        st, body = push(port, tenant, 50)
        if st == 429:
            break
        if st != 200:
            check("pushes are answered 200 or 429", False, "status %d: %s" % (st, body))
            return
    start = time.time()
    ok = 0
    refused = 0
    while time.time() - start < seconds:
        st, body = push(port, tenant, 50)
        if st == 200:
            ok += 50
        elif st == 429:
            refused += 1
            time.sleep(0.005)
        else:
            check("pushes are answered 200 or 429", False, "status %d: %s" % (st, body))
            return
    secs = time.time() - start
    got = ok / secs
    check("accepted %.0f samples/s over %.1fs, within [%s, %s] (%d refused requests)"
          % (got, secs, lo, hi, refused), float(lo) <= got <= float(hi) + 50 / secs and refused > 0)


def main():
    cmd = sys.argv[1]
    if cmd == "message":
        message(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
    elif cmd == "rate":
        rate(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], float(sys.argv[6]))
    else:
        print(__doc__)
        sys.exit(2)
    sys.exit(1 if rwtool.failures() else 0)


main()
