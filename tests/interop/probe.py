#!/usr/bin/env python3
"""probe.py: establishes what a WebSocket server REALLY does, independently of wsaudit.

A tiny RFC 6455 client on raw sockets with hand-written frames (stdlib only), so that the
expected verdicts of tests/interop/*/expected.yaml rest on observations made by code that shares
nothing with wsaudit. It starts the server itself (so that it can tell a crash from a refusal,
read the server's stderr and restart it after a crash), runs every probe, and writes Markdown.

usage:
  INTEROP_TOKEN=... python3 probe.py --server "python3 python_websockets/server.py" \
      --auth first-message --name python-websockets --out python_websockets/observed.md
  python3 probe.py --url ws://127.0.0.1:8080/ws --auth none          (no restarts possible)
  ... --deflate --only deflate --append --out python_websockets/observed.md
                                   (permessage-deflate negotiated: login, compressed payments, the
                                    deflate bomb; appended to an existing observed.md)

--auth: first-message  first message {"type":"auth","token":TOKEN} -> {"type":"auth_ok"}
        query          ?token=TOKEN in the URL -> {"type":"welcome"} after the upgrade
        header         "Authorization: Bearer TOKEN" on the upgrade request (401 without it)
        cookie-login   POST /login (--login-path) with the JSON body {"token":TOKEN}; the
                       session cookie(s) of its Set-Cookie sent as "Cookie:" on the upgrade
                       (a fresh login before every legitimate connection)
        none           no authentication at all
The token is INTEROP_TOKEN (a fixed test value when unset) and is written as <TOKEN> in the
output; session cookie values are written as <SID>. Attacks that strip the credential send none
of it (no ?token=, no Authorization, no Cookie). For cookie-login targets the probe also records
the login response's Set-Cookie attributes and runs the Cross-Site WebSocket Hijacking probe: a
foreign Origin carrying the victim's session cookie, then the valid payment.
Every connection goes to the loopback address given; nothing else is contacted.

Every message, size and protocol attack is differential, as wsaudit's suites are: the attack is
the valid payment changed in one property, sent on a connection that first carried the
unmutated valid payment and got it acknowledged. A server that dies is restarted on the same
port (PORT=<n> in its environment, as a supervisor would) so that later cases still run.
"""
import argparse
import base64
import hashlib
import http.client
import json
import os
import select
import shlex
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import zlib

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
VALID = '{"type":"payment","amount":12.5,"reference":"TX-123456","currency":"USD"}'
ALLOWED_ORIGIN = "https://app.example.com"
KIB = 1024
MIB = 1024 * 1024

INFLATE_CAP = 16 * MIB   # the most a compressed server message may inflate to here

OP_NAMES = {0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}
ENDS = ("close", "eof", "reset", "garbage")   # the events that end a connection


# ---------------------------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------------------------

def mask_bytes(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if n == 0:
        return b""
    keystream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(keystream, "big")).to_bytes(n, "big")


def frame(opcode, payload=b"", fin=True, rsv1=False, rsv2=False, rsv3=False, masked=True,
          declared=None):
    """One client frame. `declared`: the length written in the header when it differs."""
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | (0x20 if rsv2 else 0) \
        | (0x10 if rsv3 else 0) | (opcode & 0x0F)
    n = len(payload) if declared is None else declared
    m = 0x80 if masked else 0
    if n < 126:
        header = bytes([b0, m | n])
    elif n < 65536:
        header = bytes([b0, m | 126]) + struct.pack("!H", n)
    else:
        header = bytes([b0, m | 127]) + struct.pack("!Q", n)
    if masked:
        key = os.urandom(4)
        return header + key + mask_bytes(payload, key)
    return header + payload


def parse_deflate(header):
    """The permessage-deflate parameters of a Sec-WebSocket-Extensions response header:
    {name: value, or True for a parameter without one} (window bits as int), or None when it
    negotiates no permessage-deflate."""
    for ext in (header or "").split(","):
        name, *params = [p.strip() for p in ext.split(";")]
        if name.lower() != "permessage-deflate":
            continue
        out = {}
        for p in params:
            k, eq, v = p.partition("=")
            v = v.strip().strip('"')
            out[k.strip().lower()] = (int(v) if v.isdigit() else v) if eq else True
        return out
    return None


def padded(message: str, size: int) -> str:
    """The message padded with trailing JSON whitespace (spaces) to exactly `size` bytes."""
    return message + " " * (size - len(message.encode()))


def embed_first(message: str, value: str) -> str:
    """`message` (a flat JSON object) with the value of its first member replaced by the JSON
    text `value` (built by hand: the value may be nested too deep for json to hold)."""
    doc = json.loads(message)
    items = [(k, value if i == 0 else json.dumps(v, separators=(",", ":")))
             for i, (k, v) in enumerate(doc.items())]
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in items) + "}"


def corrupt_utf8(data: bytes) -> bytes:
    """`data` with the invalid UTF-8 sequence C3 28 inserted after its first double quote."""
    i = data.find(b'"') + 1
    return data[:i] + b"\xc3\x28" + data[i:]


J = json.loads
# The schema violations wsaudit derives from policy.yaml's schema and the valid payment
# (`wsaudit compile --policy policy.yaml`, case ids WS-MSG-01/MSG-SCHEMA[<id>]), copied here as
# data: (id, what changed, the message). Non-ASCII ones are written as JSON string literals.
SCHEMA_VIOLATIONS = [
    ('missing-type', 'required field `type` missing',
     '{"currency":"USD","amount":12.5,"reference":"TX-123456"}'),
    ('missing-amount', 'required field `amount` missing',
     '{"type":"payment","currency":"USD","reference":"TX-123456"}'),
    ('missing-reference', 'required field `reference` missing',
     '{"type":"payment","amount":12.5,"currency":"USD"}'),
    ('missing-currency', 'required field `currency` missing',
     '{"type":"payment","amount":12.5,"reference":"TX-123456"}'),
    ('wrong-type-type', '`type` of the wrong type',
     '{"type":{"not":"a string"},"amount":12.5,"reference":"TX-123456","currency":"USD"}'),
    ('const-type', '`type` not its constant',
     '{"type":"not-payment","amount":12.5,"reference":"TX-123456","currency":"USD"}'),
    ('wrong-type-amount', '`amount` of the wrong type',
     '{"type":"payment","amount":"not-a-number","reference":"TX-123456","currency":"USD"}'),
    ('exclusive-minimum-amount', '`amount` at its exclusive minimum (0)',
     '{"type":"payment","amount":0,"reference":"TX-123456","currency":"USD"}'),
    ('maximum-amount', '`amount` above its maximum (1000001)',
     '{"type":"payment","amount":1000001,"reference":"TX-123456","currency":"USD"}'),
    ('wrong-type-reference', '`reference` of the wrong type',
     '{"type":"payment","amount":12.5,"reference":12345,"currency":"USD"}'),
    ('pattern-reference', '`reference` not matching its pattern',
     '{"type":"payment","amount":12.5,"reference":"!does-not-match!","currency":"USD"}'),
    ('wrong-type-currency', '`currency` of the wrong type',
     '{"type":"payment","amount":12.5,"reference":"TX-123456","currency":{"not":"a string"}}'),
    ('enum-currency', '`currency` outside its enum',
     '{"type":"payment","amount":12.5,"reference":"TX-123456","currency":"NOT-IN-ENUM"}'),
    ('generated-type-1', J(r'"`type` = [\"\ufeff\ufffd\ufeff\ufeff\ufffd\ufeff\"] (generated)"'),
     J(r'"{\"type\":[\"\ufeff\ufffd\ufeff\ufeff\ufffd\ufeff\"],\"amount\":12.5,\"reference\":\"TX-123456\",\"currency\":\"USD\"}"')),
    ('generated-type-2', '`type` = [{"vng":null}] (generated)',
     '{"type":[{"vng":null}],"amount":12.5,"reference":"TX-123456","currency":"USD"}'),
    ('generated-amount-1', '`amount` = {"etl":null} (generated)',
     '{"type":"payment","amount":{"etl":null},"reference":"TX-123456","currency":"USD"}'),
    ('generated-amount-2', '`amount` = [false] (generated)',
     '{"type":"payment","amount":[false],"reference":"TX-123456","currency":"USD"}'),
    ('generated-reference-1', '`reference` = [] (generated)',
     '{"type":"payment","amount":12.5,"reference":[],"currency":"USD"}'),
    ('generated-reference-2', J(r'"`reference` = [[true,\"m\u0b01$\ud802\ude53\u2007\u00b5\ufe9auG\ufffd*\ufffd\ud881\ude4fxu\uab2b\u023a*y4=g\ud83c\udcdf\"]] (generated)"'),
     J(r'"{\"type\":\"payment\",\"amount\":12.5,\"reference\":[[true,\"m\u0b01$\ud802\ude53\u2007\u00b5\ufe9auG\ufffd*\ufffd\ud881\ude4fxu\uab2b\u023a*y4=g\ud83c\udcdf\"]],\"currency\":\"USD\"}"')),
    ('generated-currency-1', J(r'"`currency` = {\"sekxk\":\"&R\u1932\"} (generated)"'),
     J(r'"{\"type\":\"payment\",\"amount\":12.5,\"reference\":\"TX-123456\",\"currency\":{\"sekxk\":\"&R\u1932\"}}"')),
    ('generated-currency-2', '`currency` = {"uzaeya":null,"xix":false} (generated)',
     '{"type":"payment","amount":12.5,"reference":"TX-123456","currency":{"uzaeya":null,"xix":false}}'),
    ('extra-field', 'extra field `unexpected_field`',
     '{"type":"payment","amount":12.5,"reference":"TX-123456","currency":"USD","unexpected_field":true}'),
]


# ---------------------------------------------------------------------------------------------
# Connection
# ---------------------------------------------------------------------------------------------

class Conn:
    """One WebSocket connection. Events are (seconds since mark, kind, detail)."""

    def __init__(self, host, port, path, origin=None, headers=None, timeout=5.0,
                 answer_pings=True):
        self.answer_pings = answer_pings
        self.path = path          # the request path (with its query)
        self.t0 = time.monotonic()
        self.mark_t = self.t0
        self.queue = []
        self.buf = b""
        self.ended = False        # no more events will come (eof, reset, garbage)
        self.got_close = False
        self.sent_close = False
        self.fragments = None     # (opcode, bytearray) of a fragmented server message
        self.inflater = None      # permessage-deflate negotiated: the server's messages' inflater
        self.deflate = None       # its negotiated parameters (parse_deflate), when negotiated
        self.inflating = None     # [wire bytes, inflated bytes] of the compressed message being read
        self.data_log = []        # deflate negotiated: one line per server data message (RSV1 or not)
        self.status = None
        self.status_line = ""
        self.resp_headers = []
        self.body = b""
        self.error = None
        self.pings = []           # times (since t0) of server pings
        self.sock = None
        self.sending = False      # a frame is being written: control replies wait for it
        self.pending_out = []
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as e:
            self.error = f"TCP connect failed: {e}"
            self.ended = True
            return
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        if origin is not None:
            lines.append(f"Origin: {origin}")
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        try:
            self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            raw = b""
            deadline = time.monotonic() + timeout
            while b"\r\n\r\n" not in raw:
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                raw += chunk
                if len(raw) > 65536:
                    break
        except OSError as e:
            self.error = f"handshake I/O failed: {e}"
            self.ended = True
            return
        head, _, rest = raw.partition(b"\r\n\r\n")
        if not head:
            self.error = "connection closed before any HTTP response"
            self.ended = True
            return
        hlines = head.decode("latin-1").split("\r\n")
        self.status_line = hlines[0]
        try:
            self.status = int(hlines[0].split()[1])
        except (IndexError, ValueError):
            self.status = None
        for line in hlines[1:]:
            k, _, v = line.partition(":")
            self.resp_headers.append((k.strip(), v.strip()))
        if self.status != 101:
            self.body = rest
            try:  # the rest of a short error body, for evidence
                self.sock.settimeout(0.3)
                while len(self.body) < 4096:
                    chunk = self.sock.recv(4096)
                    if not chunk:
                        break
                    self.body += chunk
            except OSError:
                pass
            self.ended = True
            self.sock.close()
            return
        accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        if self.header("Sec-WebSocket-Accept") != accept:
            self.error = "101 with a wrong Sec-WebSocket-Accept"
        self.deflate = parse_deflate(self.header("Sec-WebSocket-Extensions"))
        if self.deflate is not None:
            self.inflater = zlib.decompressobj(-15)
        self.mark()
        if rest:
            self._ingest(rest)

    # -- helpers ------------------------------------------------------------------------------
    def header(self, name):
        for k, v in self.resp_headers:
            if k.lower() == name.lower():
                return v
        return None

    def headers_all(self, name):
        return [v for k, v in self.resp_headers if k.lower() == name.lower()]

    @property
    def upgraded(self):
        return self.status == 101

    @property
    def done(self):
        """The connection ended, or the server's close frame came: nothing more to send."""
        return self.ended or self.got_close

    def mark(self):
        self.mark_t = time.monotonic()

    def now(self):
        return time.monotonic() - self.mark_t

    # -- reading ------------------------------------------------------------------------------
    def _push(self, kind, detail=""):
        self.queue.append((self.now(), kind, detail))

    def _ingest(self, data):
        if not data:
            self._push("eof", "TCP connection closed by the server (FIN)")
            self.ended = True
            return
        self.buf += data
        while not self.ended and self._parse_one():
            pass

    def _parse_one(self):
        b = self.buf
        if len(b) < 2:
            return False
        b0, b1 = b[0], b[1]
        fin, rsv, opcode = b0 & 0x80, b0 & 0x70, b0 & 0x0F
        masked, n = b1 & 0x80, b1 & 0x7F
        pos = 2
        if n == 126:
            if len(b) < 4:
                return False
            n = struct.unpack("!H", b[2:4])[0]
            pos = 4
        elif n == 127:
            if len(b) < 10:
                return False
            n = struct.unpack("!Q", b[2:10])[0]
            pos = 10
        bad = None
        if rsv and not (rsv == 0x40 and self.inflater and opcode in (1, 2)):
            bad = "RSV bits set" + (" (RSV1 on a continuation frame)" if rsv == 0x40 and opcode == 0 else "")
        elif opcode not in OP_NAMES:
            bad = f"reserved opcode {opcode}"
        elif masked:
            bad = "masked server frame"
        elif n > 64 * MIB:
            bad = f"declared length {n}"
        if bad:
            self._push("garbage", f"not a valid server frame ({bad}): {bytes(b[:80])!r}")
            self.ended = True
            return False
        if len(b) < pos + n:
            return False
        payload = bytes(b[pos:pos + n])
        self.buf = b[pos + n:]
        if opcode in (1, 2) and self.fragments is None:
            if rsv == 0x40:
                # RSV1 on the first frame: a compressed message (RFC 7692 section 6).
                if self.deflate.get("server_no_context_takeover"):
                    self.inflater = zlib.decompressobj(-15)
                self.inflating = [0, 0]
            else:
                self.inflating = None
        if self.inflating is not None and opcode in (0, 1, 2):
            payload = self._inflate(payload, bool(fin))
            if payload is None:
                return False
        if opcode == 9:
            self.pings.append(time.monotonic() - self.t0)
            self._push("ping", f"{len(payload)} B payload")
            if self.answer_pings and not self.sent_close:
                self._reply(frame(10, payload))
        elif opcode == 10:
            self._push("pong", f"{len(payload)} B")
        elif opcode == 8:
            self.got_close = True
            if len(payload) >= 2:
                code = struct.unpack("!H", payload[:2])[0]
                reason = payload[2:].decode("utf-8", "replace")
                self._push("close", f"{code} {reason!r}")
            else:
                code = None
                self._push("close", "(no code)" if not payload else f"payload {payload!r}")
            if not self.sent_close:
                self.sent_close = True
                self._reply(frame(8, struct.pack("!H", code) if code and code not in (1005, 1006, 1015) else b""))
        elif opcode in (1, 2) and not fin:
            self.fragments = (opcode, bytearray(payload))
        elif opcode == 0:
            if self.fragments is None:
                self._push("garbage", "continuation frame with nothing to continue")
                self.ended = True
                return False
            self.fragments[1].extend(payload)
            if fin:
                op, data = self.fragments
                self.fragments = None
                self._message(op, bytes(data))
        else:
            self._message(opcode, payload)
        return True

    def _inflate(self, payload, fin):
        """One frame of a compressed message, inflated: at most INFLATE_CAP bytes a message
        (a hostile server's deflate bomb ends the connection, as `garbage`, instead of memory)."""
        self.inflating[0] += len(payload)
        room = INFLATE_CAP - self.inflating[1]
        out = b""
        for data in (payload, b"\x00\x00\xff\xff" if fin else b""):
            if not data:
                continue
            try:
                chunk = self.inflater.decompress(data, room + 1)
            except zlib.error as e:
                self._push("garbage", f"compressed message that does not inflate: {e}")
                self.ended = True
                return None
            out += chunk
            room -= len(chunk)
            if room < 0 or self.inflater.unconsumed_tail:
                self._push("garbage", f"compressed message inflating past the probe's cap of {INFLATE_CAP} B "
                                      f"({self.inflating[0]} B on the wire so far)")
                self.ended = True
                return None
        self.inflating[1] += len(out)
        return out

    def _reply(self, data):
        if self.sending:
            self.pending_out.append(data)
        else:
            self.send(data)

    def _message(self, opcode, data):
        if self.deflate is not None:
            kind = "text" if opcode == 1 else "binary"
            if self.inflating is not None:
                wire, size = self.inflating
                how = f"RSV1 (compressed): {wire} B on the wire, inflated to {size} B"
            else:
                how = f"no RSV1 (not compressed): {len(data)} B"
            self.data_log.append(f"+{self.now():.3f}s {kind} {how}: {clip(data.decode('utf-8', 'replace'))}")
            self.inflating = None
        if opcode == 1:
            self._push("text", data.decode("utf-8", "replace"))
        else:
            self._push("binary", f"{len(data)} B {data[:60]!r}")

    def next_event(self, deadline):
        """The next event, or ("timeout") at the deadline, or None once the connection ended."""
        while not self.queue:
            if self.ended:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return (self.now(), "timeout", "")
            try:
                self.sock.settimeout(remaining)
                data = self.sock.recv(262144)
            except socket.timeout:
                return (self.now(), "timeout", "")
            except ConnectionResetError:
                self._push("reset", "TCP reset by the server (RST)")
                self.ended = True
                continue
            except OSError as e:
                self._push("reset", f"socket error {e}")
                self.ended = True
                continue
            self._ingest(data)
        return self.queue.pop(0)

    # -- writing ------------------------------------------------------------------------------
    def send(self, data: bytes, stall=5.0):
        """Writes while reading (so a close sent while we write is seen when it comes).
        Returns (bytes written, None or the reason writing stopped)."""
        if self.sock is None or getattr(self.sock, "_closed", False):
            return 0, "socket closed"
        self.sending = True
        try:
            result = self._send(data, stall)
        finally:
            self.sending = False
        while self.pending_out and result[1] is None:
            self._send(self.pending_out.pop(0), stall)
        return result

    def _send(self, data, stall):
        view = memoryview(data)
        sent = 0
        last_progress = time.monotonic()
        while sent < len(view):
            try:
                r, w, _ = select.select([self.sock] if not self.ended else [], [self.sock], [], 0.2)
            except (OSError, ValueError) as e:
                return sent, f"select failed: {e}"
            if r:
                try:
                    self.sock.setblocking(False)
                    chunk = self.sock.recv(262144)
                    self._ingest(chunk)
                except (BlockingIOError, InterruptedError):
                    pass
                except ConnectionResetError:
                    self._push("reset", "TCP reset by the server (RST)")
                    self.ended = True
                except OSError as e:
                    self._push("reset", f"socket error {e}")
                    self.ended = True
                finally:
                    self.sock.setblocking(True)
            if w:
                try:
                    self.sock.setblocking(False)
                    k = self.sock.send(view[sent:sent + 65536])
                    sent += k
                    last_progress = time.monotonic()
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError as e:
                    return sent, f"write failed: {e.__class__.__name__} {e}"
                finally:
                    self.sock.setblocking(True)
            if time.monotonic() - last_progress > stall:
                return sent, f"write stalled {stall:.0f}s (the server stopped reading)"
        return sent, None

    def send_text(self, text):
        return self.send(frame(1, text.encode()))

    def compressed(self, text, level=9):
        """`text` as a permessage-deflate message payload: a fresh raw DEFLATE stream (no
        context taken over, so valid whatever was negotiated), within the negotiated
        client_max_window_bits (15 when the server set none), sync-flushed, its trailing
        00 00 ff ff cut (RFC 7692 section 7.2.1)."""
        bits = (self.deflate or {}).get("client_max_window_bits") or 15
        comp = zlib.compressobj(level, zlib.DEFLATED, -max(9, bits))
        body = comp.compress(text.encode()) + comp.flush(zlib.Z_SYNC_FLUSH)
        return body[:-4] if body.endswith(b"\x00\x00\xff\xff") else body

    def send_compressed(self, text, level=9, mark=False):
        """`text` compressed in one text frame with RSV1: (bytes written, stop reason, the frame).
        `mark`: times restart once it is compressed, just before the write."""
        data = frame(1, self.compressed(text, level), rsv1=True)
        if mark:
            self.mark()
        n, stop = self.send(data)
        return n, stop, data

    def close(self):
        if self.sock is None:
            return
        try:
            if not self.ended and not self.sent_close:
                self.sent_close = True
                self.sock.settimeout(0.5)
                self.sock.sendall(frame(8, struct.pack("!H", 1000)))
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


def collect(conn, window, stop_on_text=False, grace=0.3, stop=None):
    """Events for up to `window` seconds; stops after the connection ends, and `grace` seconds
    after the first event `stop(event)` accepts (with `stop_on_text`: the first data message)."""
    if stop_on_text:
        stop = is_data
    events = []
    deadline = time.monotonic() + window
    while True:
        ev = conn.next_event(deadline)
        if ev is None:
            break
        events.append(ev)
        if ev[1] == "timeout":
            break
        if ev[1] == "close":
            deadline = min(deadline, time.monotonic() + 1.0)   # wait for the TCP close
        if stop and stop(ev):
            deadline = min(deadline, time.monotonic() + grace)
    return events


def is_data(ev):
    return ev[1] in ("text", "binary")


def reply_type(ev):
    if ev[1] != "text":
        return None
    try:
        doc = json.loads(ev[2])
        return doc.get("type") if isinstance(doc, dict) else None
    except ValueError:
        return None


def fmt_events(events):
    """One line per event; a run of identical events (a flood's acks) becomes one line."""
    out = []
    i = 0
    while i < len(events):
        t, kind, detail = events[i]
        j = i
        while j + 1 < len(events) and events[j + 1][1:] == (kind, detail) and kind != "timeout":
            j += 1
        if kind == "timeout":
            out.append(f"+{t:.3f}s nothing more (window over)")
        else:
            d = clip(detail)
            if j > i:
                out.append(f"+{t:.3f}s..+{events[j][0]:.3f}s {kind} {d} x {j - i + 1}".rstrip())
            else:
                out.append(f"+{t:.3f}s {kind} {d}".rstrip())
        i = j + 1
    return out


def reply_label(ev):
    """How summarize() counts a data message: its JSON "type", else text / binary."""
    return reply_type(ev) or ev[1]


def clip(detail):
    """An event's detail as shown: whole up to 160 characters, else its start and its length."""
    return detail if len(detail) <= 160 else detail[:160] + f"... ({len(detail)} chars)"


def summarize(events, label=reply_label, crash_codes=(), whole_close=False):
    """Short, neutral summary: the replies (counted by `label(event)`; None leaves one out) and
    how the connection ended. A close code in `crash_codes` is marked as a crash code; with
    `whole_close`, a close frame without a status code is shown whole, not its first word."""
    parts = []
    counts = {}
    for e in events:
        if is_data(e):
            t = label(e)
            if t is not None:
                counts[t] = counts.get(t, 0) + 1
    if counts:
        parts.append(", ".join(f"{n} x {t}" if n > 1 else t for t, n in counts.items()))
    end = next((e for e in events if e[1] in ENDS), None)
    if end is None:
        parts.append("no close (connection still open)" if counts else "silence, still open")
    elif end[1] == "close":
        code = end[2].split(" ")[0]
        crash = " (a crash code)" if code.isdigit() and int(code) in crash_codes else ""
        if whole_close and (code.startswith("(") or code == "payload"):
            code = end[2]
        parts.append(f"close {code} at +{end[0]:.3f}s{crash}")
    elif end[1] == "eof":
        parts.append(f"TCP closed WITHOUT a close frame at +{end[0]:.3f}s")
    elif end[1] == "reset":
        parts.append(f"TCP reset WITHOUT a close frame at +{end[0]:.3f}s")
    else:
        parts.append(f"garbage from the server at +{end[0]:.3f}s")
    return "; ".join(parts)


# ---------------------------------------------------------------------------------------------
# Server process
# ---------------------------------------------------------------------------------------------

class Server:
    def __init__(self, cmd, env):
        self.cmd = cmd
        self.env = env
        self.proc = None
        self.port = None
        self.stderr_file = tempfile.NamedTemporaryFile(prefix="interop-stderr-", delete=False)
        self.restarts = []

    def start(self, port=None):
        """Starts the server; `port`: restart on that port (PORT in the environment, which a
        server may honour, as under a supervisor; one that does not picks a new port)."""
        env = dict(self.env, PORT=str(port)) if port else self.env
        self.proc = subprocess.Popen(shlex.split(self.cmd), stdout=subprocess.PIPE,
                                     stderr=self.stderr_file, env=env, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            raise SystemExit(f"server did not print PORT: {line!r}")
        self.port = int(line.split()[1])
        threading.Thread(target=self._drain, args=(self.proc,), daemon=True).start()

    @staticmethod
    def _drain(proc):
        for _ in proc.stdout:
            pass

    def alive(self):
        return self.proc.poll() is None

    def stderr_pos(self):
        self.stderr_file.flush()
        return os.path.getsize(self.stderr_file.name)

    def stderr_since(self, pos):
        with open(self.stderr_file.name, "rb") as f:
            f.seek(pos)
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc and self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def stderr_gist(text, token):
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    keep = [line for line in lines if "Error" in line or "Exception" in line or "error" in line]
    gist = (keep or lines)[-2:]
    return " / ".join(redact(line, token)[:200] for line in gist)


def redact(text, token):
    return text.replace(token, "<TOKEN>") if token else text


# ---------------------------------------------------------------------------------------------
# What the probes send (probe.py's and probe_dialect.py's)
# ---------------------------------------------------------------------------------------------

ORIGINS = [ALLOWED_ORIGIN, "https://evil.example", "null", None,
           "https://app.example.com.evil.example", "https://evilapp.example.com",
           "https://appXexample.com", "https://evil.app.example.com",
           "http://app.example.com", "https://app.example.com:8443"]
URL_PARAMS = ["token", "access_token", "ticket", "auth", "jwt"]
PROBE_ONLY = "probe only (not a wsaudit case)"


def shown(text):
    """`text` as a case shows it: whole up to 160 characters, else its start and its size."""
    return text if len(text) <= 160 else f"{text[:48]}... ({len(text.encode())} B)"


def payload_mutations(malformed, what="the valid payment", probe_only=PROBE_ONLY):
    """The message attacks of suites/messages.yaml on the valid payment, each the payment changed
    in one property: (id, title, text). `malformed`: the title of the malformed-JSON case; `what`:
    what the titles call the payment."""
    texts = [("MSG-MALFORMED-JSON", malformed, VALID[:-1])]
    texts += [(f"MSG-SCHEMA[{vid}]", f"schema violation: {desc}", text)
              for vid, desc, text in SCHEMA_VIOLATIONS]
    texts += [
        ("PROBE-TYPE-NUMBER", f'{probe_only}: "type" is the number 5', VALID.replace('"payment"', "5", 1)),
        ("MSG-HUGE-JSON", f"{what} with its first field's value replaced by a 20,000-element array",
         embed_first(VALID, "[" + ",".join(["0"] * 20000) + "]")),
        ("MSG-DEEP-JSON", f"{what} with its first field's value replaced by arrays nested 10,000 deep",
         embed_first(VALID, "[" * 10000 + "]" * 10000)),
    ]
    return texts


def send_note(conn, data, frames=None):
    """Writes `data` (`frames`: that many frames); how much was written, how fast, and why
    writing stopped (if it did)."""
    t = time.monotonic()
    n, stop = conn.send(data)
    written = f"{frames} frames ({n} B)" if frames else f"{n} of {len(data)} B"
    return f"wrote {written} in {time.monotonic() - t:.3f}s" + (f" ({stop})" if stop else "")


def fragments(message, n):
    """`message` (bytes) as a text frame and continuation frames, n in all: (the size of a
    fragment, the frames)."""
    chunk = -(-len(message) // n)
    parts = [message[i:i + chunk] for i in range(0, len(message), chunk)]
    return chunk, b"".join(frame(1 if i == 0 else 0, p, fin=(i == len(parts) - 1))
                           for i, p in enumerate(parts))


def protocol_specs(message, what, probe_only=PROBE_ONLY):
    """The RFC 6455 violations of suites/protocol.yaml (and a probe-only close code): (id, title,
    sent, make), `make()` building the frame. `message()`: the bytes of the valid message (one
    call a frame), which the titles call `what`."""
    return [
        ("PROTO-RESERVED-OPCODE-DATA", f"{what} in a frame with the reserved data opcode 0x3",
         f"frame opcode 3, {what}", lambda: frame(3, message())),
        ("PROTO-RESERVED-OPCODE-CONTROL", "a frame with the reserved control opcode 0xB",
         "frame opcode 11, payload 00", lambda: frame(11, b"\x00")),
        ("PROTO-RSV1-WITHOUT-EXTENSION", f"{what} with RSV1 set, no extension negotiated",
         f"text frame, RSV1, {what}", lambda: frame(1, message(), rsv1=True)),
        ("PROTO-RSV2-RSV3", f"{what} with RSV2 and RSV3 set",
         f"text frame, RSV2+RSV3, {what}", lambda: frame(1, message(), rsv2=True, rsv3=True)),
        ("PROTO-UNMASKED", f"{what} in an unmasked client frame",
         f"unmasked text frame, {what}", lambda: frame(1, message(), masked=False)),
        ("PROTO-FRAGMENTED-PING", "a ping without FIN", "ping FIN=0 payload 00", lambda: frame(9, b"\x00", fin=False)),
        ("PROTO-OVERSIZED-PING", "a ping with a 126-byte payload", "ping, 126 x 'a'", lambda: frame(9, b"a" * 126)),
        ("PROTO-CONTINUATION-FIRST", "a continuation frame with nothing to continue",
         "continuation frame 7b7d", lambda: frame(0, b"{}")),
        ("PROTO-CLOSE-CODE-1005", "a close frame with the reserved code 1005", "close payload 03ed",
         lambda: frame(8, struct.pack("!H", 1005))),
        ("PROTO-CLOSE-CODE-999", "a close frame with the out-of-range code 999", "close payload 03e7",
         lambda: frame(8, struct.pack("!H", 999))),
        ("PROTO-CLOSE-ONE-BYTE", "a close frame with a one-byte payload", "close payload 03", lambda: frame(8, b"\x03")),
        ("PROBE-CLOSE-5000", f"{probe_only}: a close frame with code 5000", "close payload 1388",
         lambda: frame(8, struct.pack("!H", 5000))),
    ]


def plain_get(host, port, path, origin=None):
    """The head of the response to a plain HTTP GET (no upgrade), or `ERROR ...`: raw bytes."""
    extra = f"Origin: {origin}\r\n" if origin else ""
    try:
        with socket.create_connection((host, port), timeout=3) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}Connection: close\r\n\r\n".encode())
            s.settimeout(2)
            raw = b""
            while b"\r\n\r\n" not in raw and len(raw) < 65536:
                chunk = s.recv(4096)
                if not chunk:
                    break
                raw += chunk
    except OSError as e:
        raw = f"ERROR {e}".encode()
    return raw


def concurrently(jobs):
    """Runs the callables `jobs` on threads at once; their results, in order."""
    results = [None] * len(jobs)

    def one(i, job):
        results[i] = job()
    threads = [threading.Thread(target=one, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


# ---------------------------------------------------------------------------------------------
# The probe
# ---------------------------------------------------------------------------------------------

class ProbeBase:
    """What probe.py's Probe and probe_dialect.py's DProbe share: the server (started here and
    restarted after a crash, or a running one at --url), connections, the case runner with its
    differential control and health probe, the cases that do not depend on what the messages
    are, and the Markdown. A subclass says how to connect, log in, send the valid payment and
    read the replies (connect, login, pay_valid, watch, summary, fmt, idle_summary)."""

    case_window = 2.0          # seconds a case watches the replies to its attack
    refusal_body = False       # show the body of a refused handshake in a case
    tag = "probe"              # the prefix of the progress lines on stderr

    def __init__(self, args, default_path="/"):
        self.args = args
        self.token = os.environ.get("INTEROP_TOKEN") or "interop-test-token-5d1c"
        self.server = None
        if args.server:
            self.server = Server(args.server, dict(os.environ, INTEROP_TOKEN=self.token))
            self.server.start()
            self.host, self.path = "127.0.0.1", args.path or default_path
        else:
            u = urllib.parse.urlsplit(args.url)
            self.host, self.fixed_port = u.hostname, u.port
            self.path = u.path or default_path
        self.sections = []   # (title, [case dict])
        self.cookies = []    # (where, Set-Cookie value)
        self.handshakes = 0
        self.lock = threading.Lock()

    @property
    def port(self):
        return self.server.port if self.server else self.fixed_port

    def handshake(self, path, query, headers, origin, answer_pings, make=Conn):
        """A handshake to `path` with `query` and `headers` (`make`: Conn or a subclass), counted
        and its Set-Cookie headers kept."""
        path += "?" + urllib.parse.urlencode(query) if query else ""
        conn = make(self.host, self.port, path, origin=origin, headers=headers, answer_pings=answer_pings)
        with self.lock:
            self.handshakes += 1
            for v in conn.headers_all("Set-Cookie"):
                self.cookies.append((f"handshake {redact(path, self.token)}", v))
        return conn

    def red(self, text):
        """`text` with the token written <TOKEN>."""
        return redact(text, self.token)

    def legit(self, answer_pings=True, origin=ALLOWED_ORIGIN):
        conn = self.connect(answer_pings=answer_pings, origin=origin)
        ok, how = self.login(conn)
        return conn, ok, how

    def case_summary(self, conn, evs):
        return self.summary(evs)

    def unauthenticated(self, conn):
        """A case line for a connection that does not log in (None: nothing to say)."""
        return None

    def healthy(self):
        """A fresh client logs in and gets a valid payment acknowledged; restarts a dead server."""
        for _ in range(2):
            t = time.monotonic()
            conn, ok, how = self.legit()
            if ok:
                acked, evs = self.pay_valid(conn, grace=0)
                conn.close()
                if acked:
                    return f"yes: a fresh client logged in and got an ack ({time.monotonic() - t:.3f}s)"
                how = f"no ack: {self.summary(evs)}"
            else:
                conn.close()
            if self.server is None:
                return f"NO: {how}"
            time.sleep(0.5)
            if not self.server.alive():
                rc = self.server.proc.returncode
                old = self.server.port
                self.server.start(port=old)
                self.server.restarts.append(rc)
                same = "the same port" if self.server.port == old else f"port {self.server.port} (PORT not honoured)"
                return (f"NO: the server PROCESS DIED (exit code {rc}); fresh connections failed "
                        f"({how}); restarted on {same} to go on")
        return f"NO: the process is alive but a fresh client is not served ({how})"

    # -- case runner ----------------------------------------------------------------------------
    def case(self, cid, title, sent, action, login=True, window=None, differential=True,
             health=True, conn_kwargs=None, send_valid=False, **watch):
        """Fresh connection (logged in unless login=False); with `send_valid`, the unmutated
        valid payment first, which must be acknowledged (the differential control); then
        `action(conn)` sends the attack, events for `window` s (default: case_window) read by
        `self.watch(conn, window, **watch)`; then the unmutated valid message on the same
        connection when it is still open; then a fresh client (health)."""
        time.sleep(0.2)  # let the server log the end of earlier connections first
        pos = self.server.stderr_pos() if self.server else 0
        c = {"id": cid, "title": title, "sent": sent, "lines": []}
        conn = self.connect(**(conn_kwargs or {}))
        c["upgraded"], c["status_line"] = conn.upgraded, conn.status_line or conn.error
        if not conn.upgraded:
            c["lines"].append(f"handshake: {c['status_line']} (not upgraded)")
            if self.refusal_body and conn.body:
                c["lines"].append(f"response body: {conn.body[:200]!r}")
            c["summary"] = f"handshake refused: {c['status_line']}"
        else:
            if login:
                ok, how = self.login(conn)
                c["lines"].append(f"login: {how}")
                if not ok:
                    c["summary"] = "login failed (case inconclusive)"
            else:
                note = self.unauthenticated(conn)
                if note:
                    c["lines"].append(note)
            if send_valid:
                acked, evs0 = self.pay_valid(conn, grace=0.1)
                c["lines"].append("valid payment first (differential control): " + self.summary(evs0))
                if not acked:
                    c["summary"] = "the valid payment first got no ack (case inconclusive)"
            conn.mark()
            note = action(conn)
            if note:
                c["lines"].append(note)
            evs = self.watch(conn, window or self.case_window, **watch)
            c["events"] = evs
            c["lines"] += ["reply: " + line for line in self.fmt(evs)]
            c.setdefault("summary", self.case_summary(conn, evs))
            if differential:
                if conn.done:
                    c["lines"].append("same connection, valid payment afterwards: not possible (connection ended)")
                else:
                    c["differential"] = self.summary(self.pay_valid(conn)[1])
                    c["lines"].append("same connection, valid payment afterwards: " + c["differential"])
        conn.close()
        if health:
            c["healthy"] = self.healthy()
            c["lines"].append("fresh client afterwards: " + c["healthy"])
        if self.server:
            gist = stderr_gist(self.server.stderr_since(pos), self.token)
            if gist:
                c["lines"].append("server stderr: " + gist)
        return c

    def add(self, section, cases):
        self.sections.append((section, cases))

    def steps(self):
        """The sections of a run, (name for --only, method), in order."""
        return [("long", lambda: self.long_observations(self.args.observe)), ("transport", self.transport),
                ("origin", self.origin), ("auth", self.auth_cases), ("messages", self.messages),
                ("size", self.size), ("rate", self.rate), ("protocol", self.protocol)]

    # -- cases that do not depend on the messages -----------------------------------------------
    def tls_case(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            with socket.create_connection((self.host, self.port), timeout=3) as s:
                with ctx.wrap_socket(s, server_hostname="localhost") as t:
                    res = f"TLS handshake succeeded: {t.version()}"
        except (OSError, ssl.SSLError) as e:
            res = f"TLS handshake failed: {e.__class__.__name__}: {e}"
        return {"id": "TLS-ENDPOINT", "title": "a TLS ClientHello to the same port",
                "sent": "TLS ClientHello (any version) to 127.0.0.1:PORT", "lines": [res],
                "summary": "no TLS endpoint" if "failed" in res else res}

    def origin_cases(self, sent):
        """The legitimate handshake from each of ORIGINS; `sent` says so ({path}: the request's)."""
        cases = []
        for o in ORIGINS:
            conn = self.connect(origin=o)
            label = "(no Origin header)" if o is None else o
            cases.append({"id": "ORIGIN " + label, "title": f"handshake with Origin {label}",
                          "sent": sent.format(path=conn.path),
                          "lines": [f"status: {conn.status_line or conn.error}"],
                          "summary": "upgraded (101)" if conn.upgraded else f"refused ({conn.status})"})
            conn.close()
        return cases

    def credential_reuse(self, legit=None,
                         sent="login (the legitimate way) + valid payment, three times with the one credential"):
        """Is the legitimate credential single-use and short-lived (a ticket), or reusable?
        `legit()`: a connection logged in with the one credential, (conn, ok, how)."""
        c = {"id": "AUTH-CREDENTIAL-REUSE",
             "title": "the same legitimate credential on 2 connections at once, then again 3.5 s later (beyond a 2 s TTL + 1 s slack)",
             "sent": sent, "lines": []}
        results, held = [], []
        t0 = time.monotonic()
        for label, delay in (("1st connection", 0.0), ("2nd connection, 1st still open", 0.0),
                             ("3rd connection", 3.5)):
            time.sleep(delay)
            conn, ok, how = (legit or self.legit)()
            acked = ok and self.pay_valid(conn, grace=0)[0]
            c["lines"].append(f"{label} at +{time.monotonic() - t0:.1f}s: login: {how}; valid payment: "
                              + ("ack" if acked else "no ack"))
            results.append(ok and acked)
            held.append(conn)
        for conn in held:
            conn.close()
        c["summary"] = ("the one credential authenticated all 3 connections (reusable, concurrent, still valid after 3.5 s)"
                        if all(results) else f"authenticated: {results}")
        return c

    def deflate_case(self):
        """permessage-deflate offered on the legitimate handshake: (the case, negotiated)."""
        conn = self.connect(headers={"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"})
        ext = conn.header("Sec-WebSocket-Extensions")
        negotiated = bool(ext and "permessage-deflate" in ext.lower())
        conn.close()
        return {"id": "SIZE-DEFLATE-DECLINED", "title": "permessage-deflate offered in the legitimate handshake",
                "sent": "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
                "lines": [f"status: {conn.status_line}", f"Sec-WebSocket-Extensions in the 101: {ext!r}"],
                "summary": f"permessage-deflate NEGOTIATED ({ext})" if negotiated else "not negotiated"}, negotiated

    def protocol_cases(self, message, what, ping_title, probe_only=PROBE_ONLY, **ping_watch):
        """protocol_specs(message, what), each after the valid payment was acknowledged, then a
        well-formed ping from the client (probe only; read by `self.watch(**ping_watch)`)."""
        cases = [self.case(cid, title, sent, lambda conn, m=make: conn.send(m())[1], send_valid=True,
                           window=3.0)
                 for cid, title, sent, make in protocol_specs(message, what, probe_only)]
        ping = self.case("PROBE-CLIENT-PING", ping_title, "ping payload 'probe'",
                         lambda conn: conn.send(frame(9, b"probe"))[1], window=1.0, **ping_watch)
        pongs = [e for e in ping.get("events", []) if e[1] == "pong"]
        ping["summary"] = (f"pong ({pongs[0][2]}) at +{pongs[0][0]:.3f}s; " if pongs else "NO pong; ") + ping["summary"]
        return cases + [ping]

    def idle_case(self, conn, cid, title, sent, seconds, lines, first=None, pay_after=False):
        """`conn` watched for `seconds` after `first` (a text sent first, if any); with
        `pay_after`, then the valid payment when it is still open. `lines`: the case's so far."""
        conn.mark()
        if first:
            conn.send_text(first)
            lines.append(f"sent {first} at +0.000s")
        evs = collect(conn, seconds)
        lines += ["event: " + line for line in self.fmt(evs)]
        if pay_after and not conn.done:
            lines.append(f"valid payment after {seconds:.0f}s: " + self.summary(self.pay_valid(conn)[1]))
        conn.close()
        return {"id": cid, "title": title, "sent": sent, "lines": lines,
                "summary": self.idle_summary(conn, evs, seconds)}

    def heartbeat_case(self, cid, title, sent, seconds, answer):
        """Logged in, then idle, answering the heartbeat or not (then the valid payment if so)."""
        conn, ok, how = self.legit(answer_pings=answer)
        return self.idle_case(conn, cid, title, sent, seconds, [f"login: {how}"], pay_after=answer)

    def cookies_probe(self, paths=None, origin=None, verbose=False):
        """Plain GETs of `paths` (default: / and the WebSocket path) for their Set-Cookie headers.
        `verbose`: the start of the body after the status, `(no response)` for none."""
        for path in paths or ["/", self.path]:
            raw = plain_get(self.host, self.port, path, origin)
            head, _, body = raw.partition(b"\r\n\r\n")
            head = head.decode("latin-1")
            if verbose:
                status = (head.split("\r\n")[0] if head else "(no response)") + (f" {body[:120]!r}" if body else "")
            else:
                status = head.split("\r\n")[0] if head else raw[:80].decode("latin-1")
            with self.lock:
                self.cookies.append((f"plain GET {path} -> {status}", None))
                for line in head.split("\r\n")[1:]:
                    k, _, v = line.partition(":")
                    if k.strip().lower() == "set-cookie":
                        self.cookies.append((f"plain GET {path}", v.strip()))

    # -- output ---------------------------------------------------------------------------------
    def command_line(self, argv):
        return "INTEROP_TOKEN=<TOKEN> " + self.red(" ".join(shlex.quote(a) for a in argv))

    def restarts_lines(self):
        if not self.server:
            return []
        restarts = self.server.restarts
        return [f"Server restarts after a crash: {len(restarts)}" + (f" (exit codes {restarts})" if restarts else ""),
                ""]

    def sections_markdown(self, level="##"):
        """The sections (`level` headings) and their cases (one level down)."""
        out = []
        for title, cases in self.sections:
            out += [f"{level} {title}", ""]
            for c in cases:
                out.append(f"{level}# {c['id']}: {self.red(c['title'])}")
                out.append(f"- sent: `{self.red(c['sent'])}`")
                for line in c["lines"]:
                    out.append(f"- {self.red(line)}")
                out.append(f"- **summary: {self.red(c['summary'])}**")
                out.append("")
        return out

    def append_title(self):
        """The heading of a run appended to an existing observed.md (--append)."""
        return f"Appended run: {', '.join(title for title, _ in self.sections)}"

    def append_note(self):
        """What an appended run did differently, as lines (none by default)."""
        return []

    def markdown_appended(self, argv, started):
        """The run as one `##` section to append to an existing observed.md: its command line,
        its sections one level down, no cookie summary."""
        out = ["", f"## {self.append_title()}", "",
               "Appended by tests/interop/probe.py (an independent stdlib-only client; no wsaudit). Command line:",
               "", "```", self.command_line(argv), "```", "",
               f"Run at {started} UTC; probe took {time.monotonic() - self.t_start:.0f}s. Times, the valid payment first, "
               "the valid payment afterwards and the fresh client afterwards as above."]
        out += self.append_note() + [""] + self.restarts_lines()
        out += self.sections_markdown("###")
        return "\n".join(out) + "\n"

    def markdown(self, argv, started):
        out = self.preamble(argv, started) + self.restarts_lines() + self.sections_markdown()
        out += ["## Cookies", ""]
        sets = [(w, v) for w, v in self.cookies if v]
        for w, v in self.cookies:
            if v is None:
                out.append(f"- {w}")
        out.append(f"- Set-Cookie headers seen on any of the {self.handshakes} handshake responses or the plain GETs: "
                   + ("; ".join(f"{w}: {self.red(v)}" for w, v in sets) if sets else "NONE"))
        out.append("")
        return "\n".join(out) + "\n"


def target_arguments(ap, **path):
    """--server, --url and --path (`path`: add_argument's keywords for it)."""
    ap.add_argument("--server", help="command that starts the server and prints 'PORT <n>'")
    ap.add_argument("--url", help="ws://host:port/path of an already running server")
    ap.add_argument("--path", **path)


def run_arguments(ap, observe, watched, sections):
    """--name, --out, --observe (`observe` s by default, watching for `watched`) and --only."""
    ap.add_argument("--name", default="server")
    ap.add_argument("--out", help="Markdown file to write (default: stdout)")
    ap.add_argument("--observe", type=float, default=observe,
                    help=f"seconds to watch idle connections for {watched} (default {observe:.0f})")
    ap.add_argument("--only", help=f"comma-separated sections: {sections}")
    ap.add_argument("--append", action="store_true",
                    help="append the run to --out as one `##` section (its command line at the top, no "
                         "cookie summary) instead of writing a whole file")


def run(ap, probe):
    """Parses the command line; runs `probe(args)` (which starts the server): its steps (--only
    picks some), then the plain GETs; writes the Markdown to --out or stdout."""
    args = ap.parse_args()
    if not args.server and not args.url:
        ap.error("--server or --url is required")
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    p = probe(args)
    p.t_start = time.monotonic()
    only = set(args.only.split(",")) if args.only else None
    try:
        for name, fn in p.steps():
            if only is None or name in only:
                print(f"[{p.tag}] {name}", file=sys.stderr, flush=True)
                fn()
        if args.append:
            text = p.markdown_appended(sys.argv, started)
        else:
            p.cookies_probe()
            text = p.markdown(sys.argv, started)
    finally:
        if p.server:
            p.server.stop()
    if args.out:
        with open(args.out, "a" if args.append else "w") as f:
            f.write(text)
    else:
        print(text)


class Probe(ProbeBase):
    """The plain WebSocket probe: the valid payment as a JSON text message, authenticated by
    --auth."""

    def __init__(self, args):
        super().__init__(args)
        self.auth = args.auth
        self.sids = set()    # session cookie values seen (written as <SID>)
        self.logins = []     # LoginResult of every POST to the login path (cookie-login)

    # -- connection profiles --------------------------------------------------------------------
    def connect(self, origin=ALLOWED_ORIGIN, credential=True, query=None, headers=None,
                answer_pings=True, cookie=None, path=None, subprotocols=None):
        """The legitimate handshake, varied. `credential=False` strips the credential (no
        ?token=, no Authorization, no session cookie). `cookie`: a Cookie header value sent as
        given (for cookie-login targets it replaces the fresh login's cookie); `path`: another
        request path (the query is appended to it); `subprotocols`: Sec-WebSocket-Protocol."""
        q = {}
        if self.auth == "query" and credential:
            q["token"] = self.token
        q.update(query or {})
        h = {}
        if self.auth == "header" and credential:
            h["Authorization"] = f"Bearer {self.token}"
        if self.auth == "cookie-login" and credential and cookie is None:
            cookie = self.session_login().cookie
        if cookie:
            h["Cookie"] = cookie
        if subprotocols:
            h["Sec-WebSocket-Protocol"] = ", ".join(subprotocols)
        h.update(headers or {})
        return self.handshake(path or self.path, q, h, origin, answer_pings)

    def session_login(self, token=None):
        """cookie-login: POST {"token": token (default: the valid one)} to the login path; the
        session cookie(s) its Set-Cookie headers set, as a Cookie header value."""
        token = self.token if token is None else token
        body = json.dumps({"token": token})
        res = LoginResult(token == self.token)
        try:
            hc = http.client.HTTPConnection(self.host, self.port, timeout=5)
            hc.request("POST", self.args.login_path, body=body,
                       headers={"Content-Type": "application/json", "Origin": ALLOWED_ORIGIN})
            r = hc.getresponse()
            res.status = f"HTTP/1.{1 if r.version == 11 else 0} {r.status} {r.reason}"
            res.set_cookies = r.headers.get_all("Set-Cookie") or []
            res.body = r.read(2048).decode("utf-8", "replace")
            hc.close()
        except (OSError, http.client.HTTPException) as e:
            res.status = f"ERROR {e.__class__.__name__}: {e}"
        pairs = [sc.split(";", 1)[0].strip() for sc in res.set_cookies]
        with self.lock:
            for pair in pairs:
                value = pair.partition("=")[2]
                if value:
                    self.sids.add(value)
            self.logins.append(res)
        res.cookie = "; ".join(pairs) or None
        return res

    def red(self, text):
        """`text` with the token written <TOKEN> and session cookie values <SID>."""
        text = redact(text, self.token)
        for sid in sorted(self.sids, key=len, reverse=True):
            text = text.replace(sid, "<SID>")
        return text

    def login(self, conn, timeout=2.0):
        """The legitimate authentication; returns (ok, description)."""
        if not conn.upgraded:
            return False, f"handshake not upgraded ({conn.status_line or conn.error})"
        if self.auth == "none":
            return True, "no authentication"
        if self.auth == "header":
            return True, "Authorization: Bearer <TOKEN> on the upgrade request accepted (101)"
        if self.auth == "cookie-login":
            return True, (f"the session cookie of POST {self.args.login_path} sent as Cookie on the "
                          "upgrade request accepted (101)")
        if self.auth == "first-message":
            conn.send_text(json.dumps({"type": "auth", "token": self.token}))
            want = "auth_ok"
        else:
            want = "welcome"
        evs = collect(conn, timeout, stop_on_text=True, grace=0)
        ok = any(reply_type(e) == want for e in evs)
        return ok, f"{want} received" if ok else f"no {want}: {fmt_events(evs)}"

    def pay_valid(self, conn, grace=0.3):
        """The valid payment on `conn`: (acknowledged, the events after it)."""
        conn.mark()
        conn.send_text(VALID)
        evs = collect(conn, 2.0, stop_on_text=True, grace=grace)
        return any(reply_type(e) == "ack" for e in evs), evs

    def watch(self, conn, window, stop_on_text=True):
        return collect(conn, window, stop_on_text=stop_on_text)

    def summary(self, evs):
        return summarize(evs)

    def fmt(self, evs):
        return fmt_events(evs)

    def idle_summary(self, conn, evs, seconds):
        return ping_summary(evs, seconds)

    def steps(self):
        return super().steps() + ([("login", self.login_section)] if self.auth == "cookie-login" else []) \
            + ([("deflate", self.deflate_section)] if self.args.deflate else [])

    # -- the probes -----------------------------------------------------------------------------
    def transport(self):
        conn = self.connect()
        cases = [{"id": "TLS-PLAINTEXT-UPGRADE", "title": "ws:// upgrade from the allowed origin",
                  "sent": "GET /ws over plain TCP with Upgrade: websocket",
                  "lines": [f"status: {conn.status_line or conn.error}"],
                  "summary": "plaintext upgraded (101)" if conn.upgraded else "plaintext refused"}]
        conn.close()
        cases.append(self.tls_case())
        self.add("Transport (TLS)", cases)

    def origin(self):
        cases = self.origin_cases("the legitimate handshake (its credential included: ?token=, Authorization or "
                                  "the session cookie), Origin changed")
        if self.auth == "cookie-login":
            cases.append(self.cswsh())
        self.add("Origin (CSWSH)", cases)

    def cswsh(self):
        """Cross-Site WebSocket Hijacking: the victim logs in (the legitimate way); a page on
        a foreign origin opens the WebSocket, and the browser attaches the victim's session
        cookie (its only credential); then the valid payment. Does the handshake upgrade, and
        is the payment acked?"""
        victim = self.session_login()
        c = self.case(
            "ORIGIN-FOREIGN-WITH-SESSION-COOKIE",
            "Cross-Site WebSocket Hijacking: Origin https://evil.example carrying the victim's session cookie (no other credential), then the valid payment",
            f"POST {self.args.login_path} (the victim's login) -> Cookie; handshake Origin: https://evil.example, "
            f"Cookie: <SID> (the victim's); text {VALID}",
            lambda conn: conn.send_text(VALID)[1], login=False, window=3.0, differential=False,
            conn_kwargs={"origin": "https://evil.example", "credential": False,
                         "cookie": victim.cookie or "none=none"})
        c["lines"].insert(0, f"the victim's login: {victim.status}; Set-Cookie: "
                          + (" | ".join(self.red(v) for v in victim.set_cookies) or "NONE"))
        c["lines"].insert(1, f"handshake: {c['status_line']}")
        acked = any(reply_type(e) == "ack" for e in c.get("events", []))
        if c["upgraded"]:
            c["summary"] = ("upgraded (101) with the victim's cookie from a foreign origin, and the payment was ACKED "
                            "(cross-site hijacking succeeds)" if acked else
                            f"upgraded (101) with the victim's cookie from a foreign origin; payment: {c['summary']}")
        return c

    def auth_cases(self):
        cases = []
        # No credential at all, then a business message.
        c = self.case("AUTH-NO-CREDENTIAL", "no credential at all (no URL token, no Authorization, no session cookie, no auth message), a valid payment as the first message",
                      f"text {VALID}", lambda conn: conn.send_text(VALID)[1],
                      login=False, window=3.0, conn_kwargs={"credential": False})
        cases.append(c)
        # Wrong token.
        if self.auth == "first-message":
            cases.append(self.case(
                "AUTH-WRONG-TOKEN", "first message auth with a wrong token",
                'text {"type":"auth","token":"wrong"}',
                lambda conn: conn.send_text('{"type":"auth","token":"wrong"}')[1],
                login=False, window=3.0, differential=False))
        elif self.auth == "query":
            cases.append(self.case(
                "AUTH-WRONG-TOKEN", "?token=wrong in the URL, then a valid payment",
                f"handshake ?token=wrong, text {VALID}", lambda conn: conn.send_text(VALID)[1],
                login=False, window=3.0,
                conn_kwargs={"credential": False, "query": {"token": "wrong"}}))
        elif self.auth == "header":
            cases.append(self.case(
                "AUTH-WRONG-TOKEN", "Authorization: Bearer wrong on the upgrade, then a valid payment",
                f"handshake Authorization: Bearer wrong, text {VALID}", lambda conn: conn.send_text(VALID)[1],
                login=False, window=3.0,
                conn_kwargs={"credential": False, "headers": {"Authorization": "Bearer wrong"}}))
        elif self.auth == "cookie-login":
            wrong = self.session_login(token="wrong")
            c = self.case(
                "AUTH-WRONG-TOKEN", f"POST {self.args.login_path} with a wrong token, then the handshake with whatever cookie it set, then a valid payment",
                f'POST {self.args.login_path} {{"token":"wrong"}}; handshake with its cookie (if any), text {VALID}',
                lambda conn: conn.send_text(VALID)[1], login=False, window=3.0,
                conn_kwargs={"credential": False, "cookie": wrong.cookie})
            c["lines"].insert(0, f"login with a wrong token: {wrong.status}; Set-Cookie: "
                              + (" | ".join(self.red(v) for v in wrong.set_cookies) or "NONE")
                              + f"; body {wrong.body[:120]!r}")
            cases.append(c)
            legit = self.session_login()
            name = (legit.cookie or "connect.sid=x").split(";")[0].partition("=")[0]
            forged = f"{name}=s%3A{base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip('=')}.forged"
            cases.append(self.case(
                "AUTH-FORGED-COOKIE", f"the session cookie's name with a value the server never issued ({name}=s%3A<random>.forged), then a valid payment",
                f"handshake Cookie: {name}=<random>, text {VALID}", lambda conn: conn.send_text(VALID)[1],
                login=False, window=3.0, conn_kwargs={"credential": False, "cookie": forged}))
        # Credential in the URL query.
        for param in URL_PARAMS:
            cases.append(self.case(
                f"URL-{param}", f"the valid token in ?{param}= and no other credential (no Authorization header, no session cookie, no auth message), then a valid payment",
                f"handshake ?{param}=<TOKEN>, text {VALID}", lambda conn: conn.send_text(VALID)[1],
                login=False, window=3.0,
                conn_kwargs={"credential": False, "query": {param: self.token}}))
        if self.auth == "cookie-login":
            sid = self.session_login().cookie or "none=none"
            cases.append(self.case(
                "PROBE-URL-SESSION-ID", "probe only: a valid session cookie's value in ?token= and no Cookie header, then a valid payment",
                f"handshake ?token=<SID>, text {VALID}", lambda conn: conn.send_text(VALID)[1],
                login=False, window=3.0,
                conn_kwargs={"credential": False, "query": {"token": sid.partition("=")[2]}}))
        # Credential in the path and in Sec-WebSocket-Protocol (URLTOKEN-PATH-CREDENTIAL,
        # URLTOKEN-SUBPROTOCOL-CREDENTIAL).
        cases.append(self.case(
            "PATH-CREDENTIAL", "the valid token appended to the path (/ws/<TOKEN>) and no other credential, then a valid payment",
            f"handshake GET {self.path.rstrip('/')}/<TOKEN>, text {VALID}", lambda conn: conn.send_text(VALID)[1],
            login=False, window=3.0,
            conn_kwargs={"credential": False, "path": f"{self.path.rstrip('/')}/{self.token}"}))
        cases.append(self.case(
            "SUBPROTOCOL-CREDENTIAL", "the valid token offered as a subprotocol (Sec-WebSocket-Protocol: <TOKEN>) and no other credential, then a valid payment",
            f"handshake Sec-WebSocket-Protocol: <TOKEN>, text {VALID}", lambda conn: conn.send_text(VALID)[1],
            login=False, window=3.0, conn_kwargs={"credential": False, "subprotocols": [self.token]}))
        cases.append(self.credential_reuse())
        self.add("Authentication", cases)

    def login_section(self):
        """cookie-login: the login response (status, Set-Cookie and its attributes), from every
        login this run made."""
        first = next((r for r in self.logins if r.valid), None)
        if first is None:
            first = self.session_login()
        valid = [r for r in self.logins if r.valid]
        lines = [f"request: POST {self.args.login_path} Content-Type: application/json, body {{\"token\":\"<TOKEN>\"}}",
                 f"status: {first.status}", f"body: {first.body[:200]!r}"]
        shapes = {}
        for r in valid:
            for sc in r.set_cookies:
                pair, _, attrs = sc.partition(";")
                shapes.setdefault(f"{pair.partition('=')[0]}=<SID>;{attrs}", 0)
                shapes[f"{pair.partition('=')[0]}=<SID>;{attrs}"] += 1
        for shape, n in shapes.items():
            lines.append(f"Set-Cookie ({n} of {len(valid)} valid logins): {shape}")
        summary = []
        for sc in first.set_cookies:
            name = sc.split(";", 1)[0].partition("=")[0]
            a = cookie_attributes(sc)
            summary.append(f"{name}: Secure {'yes' if 'secure' in a else 'NO'}, HttpOnly "
                           f"{'yes' if 'httponly' in a else 'NO'}, SameSite "
                           f"{a.get('samesite') if a.get('samesite') not in (None, True) else 'NOT SET'}, "
                           f"Path {a.get('path', '(none)')}, Domain {a.get('domain', '(none: host-only)')}, "
                           f"Expires/Max-Age {a.get('expires') or a.get('max-age') or '(none: a session cookie)'}")
        statuses = {}
        for r in valid:
            statuses[r.status] = statuses.get(r.status, 0) + 1
        lines.append(f"{len(valid)} logins with the valid token in this run: "
                     + ", ".join(f"{n} x {st}" for st, n in statuses.items())
                     + (" (the failed ones: while the server was down, before its restart)"
                        if any(st.startswith("ERROR") for st in statuses) else ""))
        ids = [r.cookie for r in valid if r.cookie]
        lines.append(f"session ids set: {len(set(ids))} distinct of {len(ids)}"
                     + (" (a new session id on every login)" if len(set(ids)) == len(ids) else ""))
        c = {"id": "LOGIN-SET-COOKIE", "title": f"the legitimate login (POST {self.args.login_path}) and the cookie it sets",
             "sent": f'POST {self.args.login_path} {{"token":"<TOKEN>"}}', "lines": lines,
             "summary": "; ".join(summary) if summary else "NO Set-Cookie on the login response"}
        self.add("Login (session cookie)", [c])

    def credential_reuse(self):
        """Is the legitimate credential single-use and short-lived (a ticket), or reusable?"""
        one = self.session_login().cookie if self.auth == "cookie-login" else None
        if one is None:
            c = super().credential_reuse()
        else:
            def legit():
                conn = self.connect(cookie=one)
                ok, how = self.login(conn)
                return conn, ok, how
            c = super().credential_reuse(legit, f"one login (POST {self.args.login_path}), then its session "
                                                "cookie on three handshakes + valid payment")
        if self.auth == "none":
            c["summary"] = "no credential exists: every connection is served without one"
        return c

    def messages(self):
        """The differential message attacks of suites/messages.yaml: each is the valid payment
        changed in one property, on a connection that has just carried the valid payment."""
        texts = payload_mutations("malformed JSON: the valid payment with its last byte cut off")
        cases = [self.case("MSG-VALID", "the valid payment (positive control)", f"text {VALID}",
                           lambda conn: conn.send_text(VALID)[1])]
        for cid, title, text in texts:
            cases.append(self.case(cid, title, f"text {shown(text)}",
                                   lambda conn, t=text: conn.send_text(t)[1], send_valid=True, window=3.0))
        cases.append(self.case(
            "MSG-BINARY", "the valid payment in a binary frame instead of a text frame", f"binary {VALID}",
            lambda conn: conn.send(frame(2, VALID.encode()))[1], send_valid=True, window=3.0))
        bad = corrupt_utf8(VALID.encode())
        cases.append(self.case(
            "MSG-INVALID-UTF8", "the valid payment with the invalid UTF-8 bytes C3 28 after its first quote",
            f"text frame payload {bad[:12].hex()}... ({len(bad)} B)",
            lambda conn: conn.send(frame(1, bad))[1], send_valid=True, window=3.0))
        self.add("Messages (schema)", cases)

    def size(self):
        cases = []
        under = padded(VALID, 64 * KIB - 1)
        cases.append(self.case(
            "SIZE-UNDER-LIMIT", "the valid payment padded with trailing spaces to 64 KiB - 1 (positive control)",
            f"one text frame, {64 * KIB - 1} B", lambda conn: send_note(conn, frame(1, under.encode())),
            window=5.0))
        for cid, size, label in [("SIZE-ONE-OVER", 64 * KIB + 1, "64 KiB + 1"),
                                 ("SIZE-PADDED 1 MiB + 1", MIB + 1, "1 MiB + 1"),
                                 ("SIZE-PADDED 2 MiB", 2 * MIB, "2 MiB"),
                                 ("SIZE-PADDED 4 MiB + 1", 4 * MIB + 1, "4 MiB + 1"),
                                 ("SIZE-PADDED 16 MiB + 1", 16 * MIB + 1, "16 MiB + 1")]:
            text = padded(VALID, size)
            cases.append(self.case(
                cid, f"the valid payment padded with trailing spaces to {size} B ({label}), one frame"
                + ("" if cid == "SIZE-ONE-OVER" else " (probe only, to find the limit)"),
                f"one text frame, {size} B", lambda conn, t=text: send_note(conn, frame(1, t.encode())),
                window=5.0, send_valid=True))
        decl = frame(1, padded(VALID, 4 * KIB).encode(), declared=100 * MIB)
        cases.append(self.case(
            "SIZE-DECLARED-100MIB", "a text frame header declaring 100 MiB, then only the valid payment padded to 4 KiB",
            "header len=104857600, 4096 B (the valid payment + spaces)", lambda conn: send_note(conn, decl),
            window=3.0, send_valid=True, differential=False))
        chunk, frag = fragments(padded(VALID, 64 * KIB + 1).encode(), 8)
        cases.append(self.case(
            "SIZE-FRAGMENTED", "the valid payment padded to 64 KiB + 1, in 8 fragments",
            f"text frame + 7 continuation frames of <= {chunk} B, 65537 B in all",
            lambda conn: send_note(conn, frag), window=3.0, send_valid=True))
        chunk16, frag16 = fragments(padded(VALID, 16 * MIB + 1).encode(), 4)
        cases.append(self.case(
            "SIZE-FRAGMENTED 16 MiB + 1", "probe only: the valid payment padded to 16 MiB + 1, in 4 fragments (frame vs message limit)",
            f"text frame + 3 continuation frames of <= {chunk16} B, {16 * MIB + 1} B in all",
            lambda conn: send_note(conn, frag16), window=5.0, send_valid=True))
        # permessage-deflate offered.
        deflate, negotiated = self.deflate_case()
        cases.append(deflate)
        if negotiated:
            for cid, size, label in [("SIZE-DEFLATE-BOMB 1 MiB", MIB, "1 MiB"),
                                     ("SIZE-DEFLATE-BOMB 4 MiB + 1", 4 * MIB + 1, "4 MiB + 1")]:
                comp = zlib.compressobj(9, zlib.DEFLATED, -15)
                body = comp.compress(padded(VALID, size).encode()) + comp.flush(zlib.Z_SYNC_FLUSH)
                body = body[:-4] if body.endswith(b"\x00\x00\xff\xff") else body
                cases.append(self.case(
                    cid, f"probe only: the valid payment padded to {label}, compressed to {len(body)} B (RSV1)",
                    f"one compressed text frame, {len(body)} B on the wire, inflating to {size} B",
                    lambda conn, b=body: send_note(conn, frame(1, b, rsv1=True)), window=3.0,
                    conn_kwargs={"headers": {"Sec-WebSocket-Extensions": "permessage-deflate"}},
                    send_valid=True))
        self.add("Size", cases)

    def deflate_section(self):
        """--deflate: permessage-deflate offered (--deflate-offer) and negotiated. The legitimate
        login (sent uncompressed, as wsaudit's login is) and whether its reply comes compressed;
        the valid payment compressed; then, as wsaudit's SIZE-DEFLATE-BOMB does, after the
        uncompressed valid payment was acked, the valid payment padded with trailing spaces to
        the limit x 16 and compressed (and one byte more, probe only). Every data message the
        server sends on these connections is listed with whether it carried RSV1."""
        offer = self.args.deflate_offer
        hk = {"headers": {"Sec-WebSocket-Extensions": offer}}
        limit = self.args.deflate_limit
        cases = []

        def negotiated(conn):
            ext = conn.header("Sec-WebSocket-Extensions")
            return [f"Sec-WebSocket-Extensions in the 101: {ext!r}",
                    "negotiated permessage-deflate parameters: "
                    + (", ".join(f"{k}={v}" if v is not True else k for k, v in conn.deflate.items()) or "(none)"
                       if conn.deflate is not None else "NOT NEGOTIATED")]

        def log_lines(conn):
            return [f"server data message ({i + 1}): {line}" for i, line in enumerate(conn.data_log)] \
                or ["server data messages: none"]

        # LOGIN-DEFLATE: the handshake and the login.
        conn = self.connect(**hk)
        c = {"id": "LOGIN-DEFLATE", "title": f"the legitimate handshake offering `{offer}`, then the legitimate login "
                                             "(its auth message uncompressed)",
             "sent": f"Sec-WebSocket-Extensions: {offer}; the login", "lines": [f"status: {conn.status_line or conn.error}"]}
        if not conn.upgraded:
            c["summary"] = f"handshake refused: {conn.status_line or conn.error}"
            self.add("permessage-deflate", [c])
            return
        c["lines"] += negotiated(conn)
        ok, how = self.login(conn)
        c["lines"].append(f"login: {how}")
        c["lines"] += log_lines(conn)
        first = conn.data_log[0].split(" ", 1)[1] if conn.data_log else "none"
        c["summary"] = (f"permessage-deflate {'negotiated (' + conn.header('Sec-WebSocket-Extensions') + ')' if conn.deflate is not None else 'NOT negotiated'}; "
                        f"login {'ok' if ok else 'FAILED'}; the reply: {first}")
        conn.close()
        cases.append(c)
        if conn.deflate is None:
            self.add("permessage-deflate", cases)
            return

        # Probe only: the auth message itself compressed.
        conn = self.connect(**hk)
        c = {"id": "PROBE-LOGIN-DEFLATE-COMPRESSED", "title": "probe only: the login with its auth message compressed (RSV1)",
             "sent": f"Sec-WebSocket-Extensions: {offer}; the auth message compressed",
             "lines": [f"status: {conn.status_line or conn.error}"] + negotiated(conn)}
        if self.auth == "first-message":
            _, stop, data = conn.send_compressed(json.dumps({"type": "auth", "token": self.token}), mark=True)
            c["lines"].append(f"auth message compressed, a {len(data)} B frame with RSV1" + (f" ({stop})" if stop else ""))
            evs = collect(conn, 2.0, stop_on_text=True, grace=0)
            c["lines"] += ["reply: " + line for line in fmt_events(evs)] + log_lines(conn)
            c["summary"] = summarize(evs)
            cases.append(c)
        conn.close()

        holder = []

        def keep(conn, send):
            holder.append(conn)
            return send(conn)

        def with_log(c):
            i = next((k for k, line in enumerate(c["lines"]) if line.startswith("fresh client afterwards")), len(c["lines"]))
            c["lines"][i:i] = (negotiated(holder[-1]) + log_lines(holder[-1])) if holder else []
            return c

        def compressed_note(conn, text):
            t = time.monotonic()
            n, stop, data = conn.send_compressed(text, mark=True)
            return (f"{len(text.encode())} B compressed (in {conn.mark_t - t:.3f}s, before the write) to a "
                    f"{len(data)} B text frame with RSV1; wrote {n} of {len(data)} B in {conn.now():.3f}s"
                    + (f" ({stop})" if stop else ""))

        # VALID-DEFLATE: the valid payment compressed.
        cases.append(with_log(self.case(
            "VALID-DEFLATE", "the valid payment compressed (RSV1), after the login",
            f"Sec-WebSocket-Extensions: {offer}; login; the valid payment compressed, one text frame with RSV1",
            lambda conn: keep(conn, lambda cn: compressed_note(cn, VALID)), conn_kwargs=hk)))

        # DEFLATE-BOMB: the limit x 16, and one byte more.
        for cid, size, what in [("DEFLATE-BOMB", 16 * limit, f"{limit} x 16, as wsaudit's SIZE-DEFLATE-BOMB"),
                                ("DEFLATE-BOMB + 1", 16 * limit + 1, f"{limit} x 16 + 1, probe only")]:
            text = padded(VALID, size)
            holder.clear()
            cases.append(with_log(self.case(
                cid, f"after the acked valid payment (uncompressed), the valid payment padded with trailing spaces to "
                     f"{size} B ({what}), compressed (RSV1)",
                f"Sec-WebSocket-Extensions: {offer}; login; valid payment; the payment + spaces, {size} B, "
                "compressed, one text frame with RSV1",
                lambda conn, t=text: keep(conn, lambda cn: compressed_note(cn, t)),
                window=3.0, send_valid=True, conn_kwargs=hk)))
        self.add("permessage-deflate", cases)

    def append_title(self):
        if self.args.deflate and [t for t, _ in self.sections] == ["permessage-deflate"]:
            return f"permessage-deflate negotiated (`--deflate`, offer `{self.args.deflate_offer}`)"
        return super().append_title()

    def append_note(self):
        if not self.args.deflate:
            return []
        return ["", f"`--deflate`: every connection of this section offers `Sec-WebSocket-Extensions: {self.args.deflate_offer}`. "
                "The probe inflates the server's compressed messages (RSV1 on the first frame: raw DEFLATE with "
                "00 00 ff ff appended, the context kept across messages unless server_no_context_takeover, at most "
                f"{INFLATE_CAP} B a message) and lists every data message the server sent on the connection with "
                "whether it carried RSV1 (`server data message`, times as in its case's replies: the login's from the "
                "101, the rest from the probe's last write). It compresses a message as a fresh raw DEFLATE stream "
                "(level 9, within the negotiated client_max_window_bits), sync-flushed, its trailing 00 00 ff ff cut, "
                "in one text frame with RSV1; the auth message, the valid payment first and the valid payment afterwards "
                "are sent uncompressed, as wsaudit sends them."]

    def rate(self):
        burst = b"".join(frame(1, VALID.encode()) for _ in range(200))
        c = self.case("RATE-FLOOD-200", "200 valid payments back to back on one connection",
                      "200 x text " + VALID, lambda conn: send_note(conn, burst, frames=200), window=3.0,
                      stop_on_text=False)
        self.add("Rate limit", [c])

    def protocol(self):
        """suites/protocol.yaml: each violation after the valid payment was acknowledged."""
        cases = [self.case("PROTO-VALID", "well-formed masked text frame with the valid payment (positive control)",
                           f"text {VALID}", lambda conn: conn.send_text(VALID)[1])]
        cases += self.protocol_cases(lambda: VALID.encode(), "the valid payment",
                                     "probe only (not a wsaudit case): a well-formed ping from the client")
        self.add("Protocol (RFC 6455)", cases)

    # -- long observations (run concurrently) ---------------------------------------------------
    def long_observations(self, seconds):
        def unauth_idle():
            conn = self.connect(credential=False, answer_pings=True)
            if not conn.upgraded:
                return {"id": "UNAUTH-IDLE", "title": "no credential, answering pings, never authenticating",
                        "sent": "handshake without the credential", "lines": [f"handshake: {conn.status_line or conn.error}"],
                        "summary": f"handshake refused ({conn.status}): an unauthenticated connection never exists"}
            return self.idle_case(
                conn, "UNAUTH-IDLE", f"no credential, answering pings, never authenticating, observed up to {seconds:.0f}s",
                "handshake without the credential, then nothing (pings answered)", seconds, [])

        self.add("Heartbeat and idle connections (observed concurrently)", concurrently([
            lambda: self.heartbeat_case("HB-ANSWERING", f"logged in, answering pings, observed {seconds:.0f}s",
                                        "login, then nothing (pings answered with pongs)", seconds, True),
            lambda: self.heartbeat_case("HB-NOT-ANSWERING", f"logged in, NOT answering pings, observed up to {seconds:.0f}s",
                                        "login, then nothing (pings ignored)", seconds, False),
            unauth_idle]))

    # -- output ---------------------------------------------------------------------------------
    def preamble(self, argv, started):
        out = [f"# Observed behaviour: {self.args.name}", "",
               "Generated by tests/interop/probe.py (an independent stdlib-only client; no wsaudit). Command line:",
               "", "```", self.command_line(argv), "```", "",
               f"Run at {started} UTC; probe took {time.monotonic() - self.t_start:.0f}s. Times are seconds after the "
               "probe's last write (`+0.004s`). Every attack runs on a fresh connection that logged in the "
               "legitimate way first (unless stated), from Origin https://app.example.com. Message, size and "
               "protocol attacks are differential: the valid payment is sent first on that connection and must "
               "be acked (`valid payment first`), then the attack, which is the valid payment changed in one "
               "property. Then, when the connection is still open, the unmutated valid payment is sent on the "
               "same connection again; then a fresh client logs in and sends the valid payment (`fresh client "
               "afterwards`; a dead server is restarted on the same port, as a supervisor would).",
               f"Valid payment: `{VALID}`", ""]
        if self.auth == "cookie-login":
            out[-1:-1] = ["", f"Legitimate login (`--auth cookie-login`): before every legitimate connection a fresh "
                          f"`POST {self.args.login_path}` with `{{\"token\":\"<TOKEN>\"}}`; the cookie(s) of its Set-Cookie "
                          "are sent as `Cookie:` on the upgrade request (session ids written `<SID>`). "
                          "Attacks without credentials send no cookie."]
        return out


DROP = object()


class LoginResult:
    """One POST to the login path (cookie-login): its status, Set-Cookie headers and the
    Cookie header value they make."""

    def __init__(self, valid):
        self.valid = valid
        self.status = ""
        self.set_cookies = []
        self.body = ""
        self.cookie = None


def cookie_attributes(set_cookie):
    """The attributes of one Set-Cookie value: {lower-case name: value or True}."""
    attrs = {}
    for part in set_cookie.split(";")[1:]:
        k, eq, v = part.strip().partition("=")
        if k:
            attrs[k.lower()] = v.strip() if eq else True
    return attrs


def ping_summary(evs, seconds):
    pings = [e[0] for e in evs if e[1] == "ping"]
    data = [e for e in evs if is_data(e)]
    s = f"{len(pings)} ping(s)" + (times_at(pings) or f" in {seconds:.0f}s")
    if data:
        s += f"; {len(data)} data message(s)"
    return s + idle_end(evs, seconds)


def times_at(times):
    """` at +1.0s, +26.0s` (empty for none)."""
    return f" at {', '.join(f'+{t:.1f}s' for t in times)}" if times else ""


def idle_end(evs, seconds):
    """How a connection watched for `seconds` ended, as `; ...`."""
    end = next((e for e in evs if e[1] in ENDS), None)
    if end is None:
        return f"; still open after {seconds:.0f}s"
    if end[1] == "close":
        return f"; closed {end[2]} at +{end[0]:.1f}s"
    return f"; {end[1]} (no close frame) at +{end[0]:.1f}s"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target_arguments(ap, default="/ws")
    ap.add_argument("--auth", choices=["first-message", "query", "header", "cookie-login", "none"], required=True)
    ap.add_argument("--login-path", default="/login",
                    help="cookie-login: the path of the login request (default /login)")
    ap.add_argument("--deflate", action="store_true",
                    help="also run the permessage-deflate section (`deflate`): offer it, and with it negotiated "
                         "log in, send the valid payment compressed, then compressed payments inflating to "
                         "--deflate-limit x 16 and one byte more")
    ap.add_argument("--deflate-offer", default="permessage-deflate; client_max_window_bits",
                    help="the Sec-WebSocket-Extensions offered by the deflate section (default: "
                         "'permessage-deflate; client_max_window_bits'; wsaudit offers 'permessage-deflate')")
    ap.add_argument("--deflate-limit", type=int, default=64 * KIB,
                    help="the policy's message limit in bytes (default 65536, policy-deflate.yaml's 64KiB); "
                         "the deflate bomb inflates to 16 times it")
    run_arguments(ap, 50.0, "pings and closes", "transport,origin,auth,messages,size,rate,protocol,long,login,deflate")
    run(ap, Probe)


if __name__ == "__main__":
    main()
