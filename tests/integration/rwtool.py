"""rwtool.py - crafts remote-write bodies by hand (protobuf and snappy), stdlib only.

Used by the integration tests to send valid and deliberately broken requests. The encoders write
exactly the bytes they are told to, so they can produce what a protobuf library never would:
wrong wire types, unsorted labels, invalid UTF-8, truncated snappy.
"""
import http.client
import socket
import struct
import sys
import time

STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


def varint(n):
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def tag(field, wire):
    return varint((field << 3) | wire)


def field_bytes(field, data):
    if isinstance(data, str):
        data = data.encode()
    return tag(field, 2) + varint(len(data)) + data


def field_double(field, v):
    return tag(field, 1) + struct.pack("<d", v)


def field_varint(field, v):
    return tag(field, 0) + varint(v)


def label(name, value):
    return field_bytes(1, name) + field_bytes(2, value)


def sample(ts, value):
    return field_double(1, value) + field_varint(2, ts)


def timeseries(labels, samples):
    """labels: list of (name, value) written in the given order (bytes or str);
    samples: list of (ts_ms, value)."""
    parts = [field_bytes(1, label(n, v)) for n, v in labels]
    parts += [field_bytes(2, sample(ts, v)) for ts, v in samples]
    return b"".join(parts)


def metadata(typ, family, help_text, unit=""):
    out = field_varint(1, typ) + field_bytes(2, family) + field_bytes(4, help_text)
    if unit:
        out += field_bytes(5, unit)
    return out


def write_request(series, meta=()):
    """series: list of (labels, samples); meta: list of metadata() bytes."""
    parts = [field_bytes(1, timeseries(labels, samples)) for labels, samples in series]
    parts += [field_bytes(3, m) for m in meta]
    return b"".join(parts)


def snappy(data):
    """Snappy block format using literals only: valid for every decoder."""
    out = bytearray(varint(len(data)))
    i = 0
    while i < len(data):
        n = min(65536, len(data) - i)
        if n <= 60:
            out.append((n - 1) << 2)
        else:
            out.append(61 << 2)
            out += struct.pack("<H", n - 1)
        out += data[i:i + n]  # bytearray: amortized append
        i += n
    return bytes(out)


RW_HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
    "User-Agent": "ringtail-rwtool/0.1",
}


def post(host, port, path, body, headers=None, timeout=30, method="POST"):
    """Sends one request; returns (status, body text)."""
    h = dict(RW_HEADERS)
    if headers:
        h.update(headers)
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        c.close()


def get(host, port, path, timeout=10):
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        c.close()


def raw_headers(path, host, port, length, extra=""):
    """length None: Transfer-Encoding: chunked."""
    size = "Transfer-Encoding: chunked" if length is None else "Content-Length: %d" % length
    return ("POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/x-protobuf\r\n"
            "Content-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\n"
            "%s\r\n%s\r\n" % (path, host, port, size, extra)).encode()


def read_status(sock, deadline):
    """Reads until a full status line arrives or the peer closes; returns (status or None,
    closed, bytes read)."""
    buf = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            d = sock.recv(65536)
        except socket.timeout:
            break
        except (ConnectionResetError, BrokenPipeError):
            return (_status(buf), True, buf)
        if not d:
            return (_status(buf), True, buf)
        buf += d
        if b"\r\n\r\n" in buf:
            return (_status(buf), False, buf)
    return (_status(buf), False, buf)


def _status(buf):
    if buf.startswith(b"HTTP/1."):
        try:
            return int(buf.split(b" ", 2)[1])
        except (IndexError, ValueError):
            return None
    return None


def send_huge(host, port, path, total, deadline_s=60, chunked=False):
    """Announces a body of `total` bytes (or sends it with chunked transfer encoding) and streams
    it until the server answers or closes. Returns (status or None, bytes of body sent before the
    answer, seconds)."""
    t0 = time.monotonic()
    s = socket.create_connection((host, port), timeout=10)
    sent = 0
    status = None
    try:
        s.sendall(raw_headers(path, host, port, None if chunked else total))
        chunk = b"\0" * (1 << 20)
        if chunked:
            chunk = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
        s.setblocking(False)
        import select
        while sent < total and time.monotonic() - t0 < deadline_s:
            r, w, _ = select.select([s], [s], [], 1.0)
            if r:
                break
            if w:
                try:
                    sent += s.send(chunk[:min(len(chunk), total - sent)])
                except (BlockingIOError, InterruptedError):
                    pass
                except (ConnectionResetError, BrokenPipeError):
                    break
        s.setblocking(True)
        status, _, _ = read_status(s, time.monotonic() + 10)
    finally:
        s.close()
    return status, sent, time.monotonic() - t0


def slow_client(host, port, path, announced, send, wait_s):
    """Sends headers announcing `announced` body bytes, then only `send` bytes, and waits up to
    wait_s for the server to answer or close. Returns (status or None, closed, seconds)."""
    t0 = time.monotonic()
    s = socket.create_connection((host, port), timeout=10)
    try:
        s.sendall(raw_headers(path, host, port, announced) + b"\0" * send)
        status, closed, buf = read_status(s, t0 + wait_s)
        if status is not None and not closed:
            # answered; the server should then close (the body was never completed)
            st2, closed, _ = read_status(s, t0 + wait_s)
        return status, closed, time.monotonic() - t0
    finally:
        s.close()


_FAILS = [0]


def check(desc, cond, detail=""):
    """Prints one ok/FAIL line for a check and counts the failures (see failures())."""
    if cond:
        print("  ok   " + desc)
    else:
        _FAILS[0] += 1
        print("  FAIL " + desc + (": " + detail[:600] if detail else ""))
    sys.stdout.flush()


def failures():
    return _FAILS[0]
