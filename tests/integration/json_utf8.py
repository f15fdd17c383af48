#!/usr/bin/env python3
"""json_utf8.py HOST PORT - every JSON answer is valid UTF-8 and valid JSON, whatever bytes came in.

Runs against a ringtail started by json_utf8.sh (-auth.mode=header, a fetched-series limit of 5).
It writes series whose label values and metadata hold characters the writer must escape, then
sends requests carrying invalid UTF-8 (lone continuation bytes, overlong forms, surrogates, code
points above U+10FFFF, truncated sequences) in PromQL strings, matchers, parameters, paths and
headers. Each answer must decode as strict UTF-8 and parse as strict JSON (no NaN, no lone
surrogate escapes); where the answer echoes the bytes, each invalid byte must come back as
U+FFFD. Remote-write refusals are text: they must be valid UTF-8. Exit status 1 on any failure.
"""
import http.client
import json
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwtool as rw  # noqa: E402

host, port = sys.argv[1], int(sys.argv[2])
TENANT = b"t1"
now = int(time.time() * 1000)
check = rw.check

# Invalid UTF-8 of every class, with what Go's encoding/json makes of it (one U+FFFD per byte
# that starts no valid sequence).
BAD = [
    (b"\xff", "\ufffd"),
    (b"\x80\xbf", "\ufffd\ufffd"),                      # lone continuation bytes
    (b"\xc0\x80", "\ufffd\ufffd"),                      # overlong NUL
    (b"\xe0\x80\x80", "\ufffd" * 3),                    # overlong, 3 bytes
    (b"\xf0\x80\x80\x80", "\ufffd" * 4),                # overlong, 4 bytes
    (b"\xed\xa0\x80", "\ufffd" * 3),                    # surrogate U+D800
    (b"\xf4\x90\x80\x80", "\ufffd" * 4),                # above U+10FFFF
    (b"\xf5\xfe", "\ufffd\ufffd"),
    (b"a\xe2\x82", "a\ufffd\ufffd"),                    # truncated at the end
    (b"\xf0\x9f\x98b", "\ufffd\ufffd\ufffdb"),          # truncated in the middle
]
SPECIAL = "<&>\u2028\u2029\b\f\x01\t\"\\ é€😀"          # valid, but escaped or multibyte


def strict_json(raw):
    """Decodes raw bytes as strict UTF-8 and parses strict JSON; returns (obj, error)."""
    try:
        text = raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError as e:
        return None, "not UTF-8: %s" % e

    def no_constant(c):
        raise ValueError("non-standard constant %s" % c)

    try:
        obj = json.loads(text, parse_constant=no_constant, strict=True)
    except ValueError as e:
        return None, "not JSON: %s" % e
    try:  # a lone surrogate escape parses, but is no Unicode text
        json.dumps(obj, ensure_ascii=False).encode("utf-8", errors="strict")
    except UnicodeEncodeError as e:
        return None, "lone surrogate: %s" % e
    return obj, None


def request(method, path, body=None, headers=None, tenant=TENANT):
    """path: bytes (sent as they are); returns (status, content type, raw body)."""
    c = http.client.HTTPConnection(host, port, timeout=30)
    try:
        c.putrequest(method, path.decode("latin-1"), skip_accept_encoding=True)
        if tenant is not None:
            c.putheader("X-Scope-OrgID", tenant)
        for k, v in (headers or {}).items():
            c.putheader(k, v)
        c.putheader("Content-Length", str(len(body or b"")))
        c.endheaders()
        if body:
            c.send(body)
        r = c.getresponse()
        return r.status, r.getheader("Content-Type") or "", r.read()
    finally:
        c.close()


def q(params):
    """URL-encodes parameters whose values are bytes."""
    return urllib.parse.urlencode([(k, v) for k, v in params], quote_via=urllib.parse.quote).encode()


def api(desc, path, want_status, must_contain=None, tenant=TENANT, headers=None):
    """One API call: the answer must be strict JSON; returns the parsed object."""
    st, ctype, raw = request("GET", path, tenant=tenant, headers=headers)
    obj, err = strict_json(raw)
    check("%s -> %s is valid UTF-8 JSON" % (desc, st), err is None, "%s: %r" % (err, raw[:300]))
    want_set = want_status if isinstance(want_status, tuple) else (want_status,)
    check("%s -> status %s (want %s)" % (desc, st, "/".join(map(str, want_set))), st in want_set,
          repr(raw[:300]))
    check("%s -> Content-Type application/json" % desc, ctype.startswith("application/json"), ctype)
    if must_contain is not None and obj is not None:
        found = [t for t in strings(obj) if must_contain in t]
        check("%s -> answer holds %r" % (desc, must_contain), found, repr(raw[:300]))
    return obj


def strings(obj):
    """Every string in a parsed JSON value, keys included."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from strings(v)


def push(desc, series, meta=(), want=(200, 204), tenant=TENANT):
    body = rw.snappy(rw.write_request(series, meta))
    st, ctype, raw = request("POST", b"/api/v1/push", body=body, headers=rw.RW_HEADERS, tenant=tenant)
    try:
        text = raw.decode("utf-8", errors="strict")
        ok = True
    except UnicodeDecodeError as e:
        text, ok = repr(raw[:200]), False
    check("%s -> %s (want %s)" % (desc, st, want), st in want, text[:200])
    check("%s -> body is valid UTF-8" % desc, ok, text[:200])
    return st, text


print("json_utf8: %s:%d" % (host, port))

# --- data: valid UTF-8 that needs escaping, and enough series to hit the series limit ---
push("series with characters the writer escapes",
     [([(b"__name__", b"testmetric"), (b"job", b"json"), (b"src", SPECIAL.encode())], [(now, 1.0)]),
      ([(b"__name__", b"testmetric"), (b"job", b"json"), (b"src", b"a")], [(now, 2.0)])],
     meta=[rw.metadata(1, b"testmetric", ("help " + SPECIAL).encode(), unit="bytes<&>")])
push("ten series for the limit",
     [([(b"__name__", b"many"), (b"i", str(i).encode())], [(now, 1.0)]) for i in range(10)])

# --- remote-write with invalid UTF-8: refused with 400, the message itself valid UTF-8 ---
for bad, _ in BAD:
    push("label value %r" % bad, [([(b"__name__", b"testmetric"), (b"src", bad)], [(now, 1.0)])], want=(400,))
push("label name with invalid UTF-8", [([(b"__name__", b"testmetric"), (b"s\xffrc", b"x")], [(now, 1.0)])],
     want=(400,))
push("metric name with invalid UTF-8", [([(b"__name__", b"test\xc0\x80metric")], [(now, 1.0)])], want=(400,))
push("metadata help with invalid UTF-8",
     [([(b"__name__", b"testmetric"), (b"job", b"json"), (b"src", b"a")], [(now, 1.0)])],
     meta=[rw.metadata(1, b"testmetric", b"help \xed\xa0\x80 \xff")], want=(400,))

# --- the case found from outside: an error string that echoes an invalid byte ---
obj = api("label_replace with destination \"\\xff\"",
          b"/api/v1/query?" + q([("query", b'label_replace(testmetric, "\\xff", "", "src", "(.*)")')]), 422)
if obj:
    check("the error names the label as U+FFFD", obj.get("error", "").endswith(": \ufffd"), obj.get("error"))

for bad, want in BAD:
    # a PromQL string with the bytes as escapes: the result holds them
    obj = api("string literal %r" % bad,
              b"/api/v1/query?" + q([("query", b'"' + b"".join(b"\\x%02x" % c for c in bad) + b'"')]), 200)
    if obj:
        check("string literal %r comes back as %r" % (bad, want), obj["data"]["result"][1] == want,
              repr(obj["data"]["result"]))
    # label_replace puts them into a label value of the result
    obj = api("label_replace value %r" % bad,
              b"/api/v1/query?" + q([("query", b'label_replace(testmetric{src="a"}, "dst", "'
                                      + b"".join(b"\\x%02x" % c for c in bad) + b'$1", "src", "(.*)")')]), 200)
    if obj:
        got = [r["metric"].get("dst") for r in obj["data"]["result"]]
        check("label value %r comes back as %r" % (bad, want + "a"), got == [want + "a"], repr(got))
    # the raw bytes in the query: a parse error that quotes them
    api("raw bytes %r in the query" % bad, b"/api/v1/query?" + q([("query", b"testmetric" + bad)]), 400)
    # raw bytes inside a string: Prometheus' lexer refuses them ("invalid UTF-8 rune"), as the
    # series API does; the PromQL parser lets them through to match nothing (either way the
    # answer must be valid JSON)
    api("raw bytes %r in a matcher value" % bad,
        b"/api/v1/query?" + q([("query", b'testmetric{src="' + bad + b'"}')]), (200, 400))
    api("raw bytes %r in /api/v1/series" % bad,
        b"/api/v1/series?" + q([("match[]", b'{src=~"' + bad + b'"}')]), 400)
    api("raw bytes %r in a parameter" % bad,
        b"/api/v1/query_range?" + q([("query", b"testmetric"), ("start", bad), ("end", b"1"), ("step", b"1")]),
        400)
    api("raw bytes %r as a label name" % bad, b"/api/v1/label/" + urllib.parse.quote(bad).encode() + b"/values",
        400)
    api("raw bytes %r in parse_query" % bad,
        b"/api/v1/parse_query?" + q([("query", b'"' + b"".join(b"\\x%02x" % c for c in bad) + b'"')]), 200,
        must_contain=want)
    api("raw bytes %r in an unknown path" % bad, b"/" + urllib.parse.quote(bad).encode(), 404,
        must_contain="\ufffd")

api("a regex that does not compile, with invalid bytes",
    b"/api/v1/query?" + q([("query", b'testmetric{src=~"(\xff"}')]), 400)
api("a warning that names an invalid metric name",
    b"/api/v1/query?" + q([("query", b'histogram_quantile(0.5, label_replace(testmetric, "__name__", '
                                     b'"bad\\xff", "", ""))')]), 200, must_contain="bad\ufffd")
api("a fetched-series limit error for a query with escaped invalid bytes and multibyte text",
    b"/api/v1/query?" + q([("query", b'many{i!="\\xff\\xc0' + "é€😀".encode() * 40 + b'"}')]), 422,
    must_contain="limit")

# --- valid text that needs escaping comes back exactly ---
obj = api("a series whose label value needs escaping", b"/api/v1/query?" + q([("query", b'testmetric{src!="a"}')]),
          200)
if obj:
    got = [r["metric"].get("src") for r in obj["data"]["result"]]
    check("the label value decodes to what was written", got == [SPECIAL], repr(got))
st, _, raw = request("GET", b"/api/v1/query?" + q([("query", b'testmetric{src!="a"}')]))
for esc in (b"\\u003c\\u0026\\u003e", b"\\u2028\\u2029", b"\\b\\f\\u0001\\t\\\"\\\\"):
    check("the raw answer escapes as Go does: %s" % esc.decode(), esc in raw, repr(raw[:300]))
obj = api("label values", b"/api/v1/label/src/values", 200)
if obj:
    check("label values decode to what was written", SPECIAL in obj["data"], repr(obj["data"]))
obj = api("metadata", b"/api/v1/metadata", 200)
if obj:
    m = obj["data"].get("testmetric", [{}])[0]
    check("metadata help and unit decode to what was written",
          m.get("help") == "help " + SPECIAL and m.get("unit") == "bytes<&>", repr(m))
api("cardinality of label values", b"/api/v1/cardinality/label_values?" + q([("label_names[]", b"src")]), 200,
    must_contain=SPECIAL)
api("cardinality of label values, invalid label name",
    b"/api/v1/cardinality/label_values?" + q([("label_names[]", b"\xff")]), (200, 400))
api("labels with an invalid matcher", b"/api/v1/labels?" + q([("match[]", b"\xff")]), 400)
for path in (b"/api/v1/status/buildinfo", b"/api/v1/status/flags", b"/api/v1/status/config",
             b"/api/v1/status/runtimeinfo", b"/api/v1/user_stats", b"/distributor/ha_tracker"):
    api(path.decode(), path, 200)
api("the ring as JSON", b"/ring", 200, headers={"Accept": "application/json"})
st, _, raw = request("POST", b"/ring", body=b"forget=%FF%C0%80", headers={
    "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
obj, err = strict_json(raw)
check("forgetting a ring member named with invalid bytes -> %s, valid UTF-8 JSON" % st,
      st == 404 and err is None, "%s %r" % (err, raw[:200]))

# --- tenant header with invalid bytes: the refusal quotes it ---
for bad, _ in BAD[:4]:
    api("tenant %r" % bad, b"/api/v1/query?query=1", 400, tenant=b"t" + bad)
push("push with tenant \\xff", [([(b"__name__", b"x")], [(now, 1.0)])], want=(400,), tenant=b"t\xff")

st, _, _ = request("GET", b"/ready", tenant=None)
check("ringtail still ready", st == 200, str(st))
sys.exit(1 if rw.failures() else 0)
