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

--auth: first-message  first message {"type":"auth","token":TOKEN} -> {"type":"auth_ok"}
        query          ?token=TOKEN in the URL -> {"type":"welcome"} after the upgrade
        header         "Authorization: Bearer TOKEN" on the upgrade request (401 without it)
        none           no authentication at all
The token is INTEROP_TOKEN (a fixed test value when unset) and is written as <TOKEN> in the
output. Attacks that strip the credential send none of it (no ?token=, no Authorization).
Every connection goes to the loopback address given; nothing else is contacted.

Every message, size and protocol attack is differential, as wsaudit's suites are: the attack is
the valid payment changed in one property, sent on a connection that first carried the
unmutated valid payment and got it acknowledged. A server that dies is restarted on the same
port (PORT=<n> in its environment, as a supervisor would) so that later cases still run.
"""
import argparse
import base64
import hashlib
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

OP_NAMES = {0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}


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
        self.t0 = time.monotonic()
        self.mark_t = self.t0
        self.queue = []
        self.buf = b""
        self.ended = False        # no more events will come (eof, reset, garbage)
        self.got_close = False
        self.sent_close = False
        self.fragments = None     # (opcode, bytearray) of a fragmented server message
        self.inflater = None
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
        if "permessage-deflate" in (self.header("Sec-WebSocket-Extensions") or "").lower():
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
        if rsv and not (rsv == 0x40 and self.inflater and opcode in (0, 1, 2)):
            bad = "RSV bits set"
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
        if rsv == 0x40:
            payload = self.inflater.decompress(payload + b"\x00\x00\xff\xff")
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

    def _reply(self, data):
        if self.sending:
            self.pending_out.append(data)
        else:
            self.send(data)

    def _message(self, opcode, data):
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


def collect(conn, window, stop_on_text=False, grace=0.3):
    """Events for up to `window` seconds; stops after the connection ends, and `grace` seconds
    after the first data message when `stop_on_text`."""
    events = []
    deadline = time.monotonic() + window
    while True:
        ev = conn.next_event(deadline)
        if ev is None:
            break
        if ev[1] == "timeout":
            events.append(ev)
            break
        events.append(ev)
        if ev[1] == "close":
            deadline = min(deadline, time.monotonic() + 1.0)   # wait for the TCP close
        if stop_on_text and ev[1] in ("text", "binary"):
            deadline = min(deadline, time.monotonic() + grace)
    return events


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
            d = detail if len(detail) <= 160 else detail[:160] + f"... ({len(detail)} chars)"
            if j > i:
                out.append(f"+{t:.3f}s..+{events[j][0]:.3f}s {kind} {d} x {j - i + 1}".rstrip())
            else:
                out.append(f"+{t:.3f}s {kind} {d}".rstrip())
        i = j + 1
    return out


def summarize(events):
    """Short, neutral summary: the replies and how the connection ended."""
    parts = []
    types = [reply_type(e) or (e[1] if e[1] != "text" else "text") for e in events
             if e[1] in ("text", "binary")]
    if types:
        counts = {}
        for t in types:
            counts[t] = counts.get(t, 0) + 1
        parts.append(", ".join(f"{n} x {t}" if n > 1 else t for t, n in counts.items()))
    end = next((e for e in events if e[1] in ("close", "eof", "reset", "garbage")), None)
    if end is None:
        parts.append("no close (connection still open)" if types else "silence, still open")
    elif end[1] == "close":
        parts.append(f"close {end[2].split(' ')[0]} at +{end[0]:.3f}s")
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
# The probe
# ---------------------------------------------------------------------------------------------

class Probe:
    def __init__(self, args):
        self.args = args
        self.token = os.environ.get("INTEROP_TOKEN") or "interop-test-token-5d1c"
        self.auth = args.auth
        self.server = None
        if args.server:
            env = dict(os.environ, INTEROP_TOKEN=self.token)
            self.server = Server(args.server, env)
            self.server.start()
            self.host, self.path = "127.0.0.1", args.path
        else:
            u = urllib.parse.urlsplit(args.url)
            self.host, self.fixed_port = u.hostname, u.port
            self.path = u.path or "/"
        self.sections = []   # (title, [case dict])
        self.cookies = []    # (where, Set-Cookie value)
        self.handshakes = 0
        self.lock = threading.Lock()

    # -- connection profiles --------------------------------------------------------------------
    @property
    def port(self):
        return self.server.port if self.server else self.fixed_port

    def connect(self, origin=ALLOWED_ORIGIN, credential=True, query=None, headers=None,
                answer_pings=True):
        q = {}
        if self.auth == "query" and credential:
            q["token"] = self.token
        q.update(query or {})
        path = self.path + ("?" + urllib.parse.urlencode(q) if q else "")
        h = {}
        if self.auth == "header" and credential:
            h["Authorization"] = f"Bearer {self.token}"
        h.update(headers or {})
        conn = Conn(self.host, self.port, path, origin=origin, headers=h,
                    answer_pings=answer_pings)
        with self.lock:
            self.handshakes += 1
            for v in conn.headers_all("Set-Cookie"):
                self.cookies.append((f"handshake {redact(path, self.token)}", v))
        return conn

    def login(self, conn, timeout=2.0):
        """The legitimate authentication; returns (ok, description)."""
        if not conn.upgraded:
            return False, f"handshake not upgraded ({conn.status_line or conn.error})"
        if self.auth == "none":
            return True, "no authentication"
        if self.auth == "header":
            return True, "Authorization: Bearer <TOKEN> on the upgrade request accepted (101)"
        if self.auth == "first-message":
            conn.send_text(json.dumps({"type": "auth", "token": self.token}))
            want = "auth_ok"
        else:
            want = "welcome"
        evs = collect(conn, timeout, stop_on_text=True, grace=0)
        ok = any(reply_type(e) == want for e in evs)
        return ok, f"{want} received" if ok else f"no {want}: {fmt_events(evs)}"

    def legit(self, answer_pings=True):
        conn = self.connect(answer_pings=answer_pings)
        ok, how = self.login(conn)
        return conn, ok, how

    def healthy(self):
        """A fresh client logs in and gets a valid payment acknowledged; restarts a dead server."""
        for attempt in range(2):
            t = time.monotonic()
            conn, ok, how = self.legit()
            if ok:
                conn.mark()
                conn.send_text(VALID)
                evs = collect(conn, 2.0, stop_on_text=True, grace=0)
                conn.close()
                if any(reply_type(e) == "ack" for e in evs):
                    return f"yes: a fresh client logged in and got an ack ({time.monotonic() - t:.3f}s)"
                how = f"no ack: {summarize(evs)}"
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
    def case(self, cid, title, sent, action, login=True, window=2.0, differential=True,
             health=True, conn_kwargs=None, stop_on_text=True, send_valid=False):
        """Fresh connection (logged in unless login=False); with `send_valid`, the unmutated
        valid payment first, which must be acknowledged (the differential control); then
        `action(conn)` sends the attack, events for `window` s; then the unmutated valid
        message on the same connection when it is still open; then a fresh client (health)."""
        time.sleep(0.2)  # let the server log the end of earlier connections first
        pos = self.server.stderr_pos() if self.server else 0
        c = {"id": cid, "title": title, "sent": sent, "lines": []}
        conn = self.connect(**(conn_kwargs or {}))
        if not conn.upgraded:
            c["lines"].append(f"handshake: {conn.status_line or conn.error} (not upgraded)")
            c["summary"] = f"handshake refused: {conn.status_line or conn.error}"
        else:
            if login:
                ok, how = self.login(conn)
                c["lines"].append(f"login: {how}")
                if not ok:
                    c["summary"] = "login failed (case inconclusive)"
            if send_valid:
                conn.mark()
                conn.send_text(VALID)
                evs0 = collect(conn, 2.0, stop_on_text=True, grace=0.1)
                acked = any(reply_type(e) == "ack" for e in evs0)
                c["lines"].append("valid payment first (differential control): " + summarize(evs0))
                if not acked:
                    c["summary"] = "the valid payment first got no ack (case inconclusive)"
            conn.mark()
            note = action(conn)
            if note:
                c["lines"].append(note)
            evs = collect(conn, window, stop_on_text=stop_on_text)
            c["events"] = evs
            c["lines"] += ["reply: " + line for line in fmt_events(evs)]
            c.setdefault("summary", summarize(evs))
            if differential:
                if conn.ended or conn.got_close:
                    c["lines"].append("same connection, valid payment afterwards: not possible (connection ended)")
                else:
                    conn.mark()
                    conn.send_text(VALID)
                    evs2 = collect(conn, 2.0, stop_on_text=True)
                    c["lines"].append("same connection, valid payment afterwards: " + summarize(evs2))
                    c["differential"] = summarize(evs2)
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

    # -- the probes -----------------------------------------------------------------------------
    def transport(self):
        cases = []
        conn = self.connect()
        cases.append({"id": "TLS-PLAINTEXT-UPGRADE", "title": "ws:// upgrade from the allowed origin",
                      "sent": "GET /ws over plain TCP with Upgrade: websocket",
                      "lines": [f"status: {conn.status_line or conn.error}"],
                      "summary": "plaintext upgraded (101)" if conn.upgraded else "plaintext refused"})
        conn.close()
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            with socket.create_connection((self.host, self.port), timeout=3) as s:
                with ctx.wrap_socket(s, server_hostname="localhost") as t:
                    res = f"TLS handshake succeeded: {t.version()}"
        except (OSError, ssl.SSLError) as e:
            res = f"TLS handshake failed: {e.__class__.__name__}: {e}"
        cases.append({"id": "TLS-ENDPOINT", "title": "a TLS ClientHello to the same port",
                      "sent": "TLS ClientHello (any version) to 127.0.0.1:PORT", "lines": [res],
                      "summary": "no TLS endpoint" if "failed" in res else res})
        self.add("Transport (TLS)", cases)

    def origin(self):
        origins = [ALLOWED_ORIGIN, "https://evil.example", "null", None,
                   "https://app.example.com.evil.example", "https://evilapp.example.com",
                   "https://appXexample.com", "https://evil.app.example.com",
                   "http://app.example.com", "https://app.example.com:8443"]
        cases = []
        for o in origins:
            conn = self.connect(origin=o)
            label = "(no Origin header)" if o is None else o
            cases.append({"id": "ORIGIN " + label, "title": f"handshake with Origin {label}",
                          "sent": "the legitimate handshake (its credential included: ?token= or Authorization), Origin changed",
                          "lines": [f"status: {conn.status_line or conn.error}"],
                          "summary": "upgraded (101)" if conn.upgraded else f"refused ({conn.status})"})
            conn.close()
        self.add("Origin (CSWSH)", cases)

    def auth_cases(self):
        cases = []
        # No credential at all, then a business message.
        c = self.case("AUTH-NO-CREDENTIAL", "no credential at all (no URL token, no Authorization, no auth message), a valid payment as the first message",
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
        # Credential in the URL query.
        for param in ["token", "access_token", "ticket", "auth", "jwt"]:
            cases.append(self.case(
                f"URL-{param}", f"the valid token in ?{param}= and no other credential (no Authorization header, no auth message), then a valid payment",
                f"handshake ?{param}=<TOKEN>, text {VALID}", lambda conn: conn.send_text(VALID)[1],
                login=False, window=3.0,
                conn_kwargs={"credential": False, "query": {param: self.token}}))
        cases.append(self.credential_reuse())
        self.add("Authentication", cases)

    def credential_reuse(self):
        """Is the legitimate credential single-use and short-lived (a ticket), or reusable?"""
        c = {"id": "AUTH-CREDENTIAL-REUSE",
             "title": "the same legitimate credential on 2 connections at once, then again 3.5 s later (beyond a 2 s TTL + 1 s slack)",
             "sent": "login (the legitimate way) + valid payment, three times with the one credential", "lines": []}
        results = []
        t0 = time.monotonic()
        held = []
        for label, delay in (("1st connection", 0.0), ("2nd connection, 1st still open", 0.0),
                             ("3rd connection", 3.5)):
            time.sleep(delay)
            conn, ok, how = self.legit()
            acked = False
            if ok:
                conn.mark()
                conn.send_text(VALID)
                evs = collect(conn, 2.0, stop_on_text=True, grace=0)
                acked = any(reply_type(e) == "ack" for e in evs)
            c["lines"].append(f"{label} at +{time.monotonic() - t0:.1f}s: login: {how}; valid payment: "
                              + ("ack" if acked else "no ack"))
            results.append(ok and acked)
            held.append(conn)
        for conn in held:
            conn.close()
        if self.auth == "none":
            c["summary"] = "no credential exists: every connection is served without one"
        elif all(results):
            c["summary"] = "the one credential authenticated all 3 connections (reusable, concurrent, still valid after 3.5 s)"
        else:
            c["summary"] = f"authenticated: {results}"
        return c

    def messages(self):
        """The differential message attacks of suites/messages.yaml: each is the valid payment
        changed in one property, on a connection that has just carried the valid payment."""
        texts = [("MSG-MALFORMED-JSON", "malformed JSON: the valid payment with its last byte cut off",
                  VALID[:-1])]
        texts += [(f"MSG-SCHEMA[{vid}]", f"schema violation: {desc}", text)
                  for vid, desc, text in SCHEMA_VIOLATIONS]
        texts += [
            ("PROBE-TYPE-NUMBER", 'probe only (not a wsaudit case): "type" is the number 5',
             VALID.replace('"payment"', "5", 1)),
            ("MSG-HUGE-JSON", "the valid payment with its first field's value replaced by a 20,000-element array",
             embed_first(VALID, "[" + ",".join(["0"] * 20000) + "]")),
            ("MSG-DEEP-JSON", "the valid payment with its first field's value replaced by arrays nested 10,000 deep",
             embed_first(VALID, "[" * 10000 + "]" * 10000)),
        ]
        cases = [self.case("MSG-VALID", "the valid payment (positive control)", f"text {VALID}",
                           lambda conn: conn.send_text(VALID)[1])]
        for cid, title, text in texts:
            shown = text if len(text) <= 160 else f"{text[:48]}... ({len(text.encode())} B)"
            cases.append(self.case(cid, title, f"text {shown}",
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

        def send_note(conn, data):
            t = time.monotonic()
            n, stop = conn.send(data)
            return f"wrote {n} of {len(data)} B in {time.monotonic() - t:.3f}s" + (f" ({stop})" if stop else "")

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

        def fragmented(size, n):
            big = padded(VALID, size).encode()
            chunk = -(-len(big) // n)
            parts = [big[i:i + chunk] for i in range(0, len(big), chunk)]
            return chunk, b"".join(frame(1 if i == 0 else 0, p, fin=(i == len(parts) - 1))
                                   for i, p in enumerate(parts))
        chunk, frag = fragmented(64 * KIB + 1, 8)
        cases.append(self.case(
            "SIZE-FRAGMENTED", "the valid payment padded to 64 KiB + 1, in 8 fragments",
            f"text frame + 7 continuation frames of <= {chunk} B, 65537 B in all",
            lambda conn: send_note(conn, frag), window=3.0, send_valid=True))
        chunk16, frag16 = fragmented(16 * MIB + 1, 4)
        cases.append(self.case(
            "SIZE-FRAGMENTED 16 MiB + 1", "probe only: the valid payment padded to 16 MiB + 1, in 4 fragments (frame vs message limit)",
            f"text frame + 3 continuation frames of <= {chunk16} B, {16 * MIB + 1} B in all",
            lambda conn: send_note(conn, frag16), window=5.0, send_valid=True))
        # permessage-deflate offered.
        conn = self.connect(headers={"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"})
        ext = conn.header("Sec-WebSocket-Extensions")
        lines = [f"status: {conn.status_line}", f"Sec-WebSocket-Extensions in the 101: {ext!r}"]
        negotiated = bool(ext and "permessage-deflate" in ext.lower())
        conn.close()
        cases.append({"id": "SIZE-DEFLATE-DECLINED", "title": "permessage-deflate offered in the legitimate handshake",
                      "sent": "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
                      "lines": lines,
                      "summary": f"permessage-deflate NEGOTIATED ({ext})" if negotiated else "not negotiated"})
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

    def rate(self):
        burst = b"".join(frame(1, VALID.encode()) for _ in range(200))

        def flood(conn):
            t = time.monotonic()
            n, stop = conn.send(burst)
            return f"wrote 200 frames ({n} B) in {time.monotonic() - t:.3f}s" + (f" ({stop})" if stop else "")
        c = self.case("RATE-FLOOD-200", "200 valid payments back to back on one connection",
                      "200 x text " + VALID, flood, window=3.0, stop_on_text=False)
        self.add("Rate limit", [c])

    def protocol(self):
        """suites/protocol.yaml: each violation after the valid payment was acknowledged."""
        V = VALID.encode()
        specs = [
            ("PROTO-RESERVED-OPCODE-DATA", "the valid payment in a frame with the reserved data opcode 0x3",
             "frame opcode 3, the valid payment", frame(3, V)),
            ("PROTO-RESERVED-OPCODE-CONTROL", "a frame with the reserved control opcode 0xB",
             "frame opcode 11, payload 00", frame(11, b"\x00")),
            ("PROTO-RSV1-WITHOUT-EXTENSION", "the valid payment with RSV1 set, no extension negotiated",
             "text frame, RSV1, the valid payment", frame(1, V, rsv1=True)),
            ("PROTO-RSV2-RSV3", "the valid payment with RSV2 and RSV3 set",
             "text frame, RSV2+RSV3, the valid payment", frame(1, V, rsv2=True, rsv3=True)),
            ("PROTO-UNMASKED", "the valid payment in an unmasked client frame",
             "unmasked text frame, the valid payment", frame(1, V, masked=False)),
            ("PROTO-FRAGMENTED-PING", "a ping without FIN", "ping FIN=0 payload 00", frame(9, b"\x00", fin=False)),
            ("PROTO-OVERSIZED-PING", "a ping with a 126-byte payload", "ping, 126 x 'a'", frame(9, b"a" * 126)),
            ("PROTO-CONTINUATION-FIRST", "a continuation frame with nothing to continue",
             "continuation frame 7b7d", frame(0, b"{}")),
            ("PROTO-CLOSE-CODE-1005", "a close frame with the reserved code 1005", "close payload 03ed",
             frame(8, struct.pack("!H", 1005))),
            ("PROTO-CLOSE-CODE-999", "a close frame with the out-of-range code 999", "close payload 03e7",
             frame(8, struct.pack("!H", 999))),
            ("PROTO-CLOSE-ONE-BYTE", "a close frame with a one-byte payload", "close payload 03", frame(8, b"\x03")),
            ("PROBE-CLOSE-5000", "probe only (not a wsaudit case): a close frame with code 5000",
             "close payload 1388", frame(8, struct.pack("!H", 5000))),
        ]
        cases = [self.case("PROTO-VALID", "well-formed masked text frame with the valid payment (positive control)",
                           f"text {VALID}", lambda conn: conn.send_text(VALID)[1])]
        for cid, title, sent, data in specs:
            cases.append(self.case(cid, title, sent, lambda conn, d=data: conn.send(d)[1], send_valid=True,
                                   window=3.0))
        ping = self.case("PROBE-CLIENT-PING", "probe only (not a wsaudit case): a well-formed ping from the client",
                         "ping payload 'probe'", lambda conn: conn.send(frame(9, b"probe"))[1],
                         window=1.0)
        pongs = [e for e in ping.get("events", []) if e[1] == "pong"]
        if pongs:
            ping["summary"] = f"pong ({pongs[0][2]}) at +{pongs[0][0]:.3f}s; " + ping["summary"]
        else:
            ping["summary"] = "NO pong; " + ping["summary"]
        cases.append(ping)
        self.add("Protocol (RFC 6455)", cases)

    def cookies_probe(self):
        for path in ["/", self.path]:
            try:
                with socket.create_connection((self.host, self.port), timeout=3) as s:
                    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nConnection: close\r\n\r\n".encode())
                    s.settimeout(2)
                    raw = b""
                    while b"\r\n\r\n" not in raw and len(raw) < 65536:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        raw += chunk
            except OSError as e:
                raw = f"ERROR {e}".encode()
            head = raw.partition(b"\r\n\r\n")[0].decode("latin-1")
            status = head.split("\r\n")[0] if head else raw[:80].decode("latin-1")
            with self.lock:
                self.cookies.append((f"plain GET {path} -> {status}", None))
                for line in head.split("\r\n")[1:]:
                    k, _, v = line.partition(":")
                    if k.strip().lower() == "set-cookie":
                        self.cookies.append((f"plain GET {path}", v.strip()))

    # -- long observations (run concurrently) ---------------------------------------------------
    def long_observations(self, seconds):
        results = {}

        def hb_answering():
            conn, ok, how = self.legit(answer_pings=True)
            lines = [f"login: {how}"]
            conn.mark()
            evs = collect(conn, seconds)
            lines += ["event: " + line for line in fmt_events(evs)]
            if not conn.ended and not conn.got_close:
                conn.mark()
                conn.send_text(VALID)
                evs2 = collect(conn, 2.0, stop_on_text=True)
                lines.append(f"valid payment after {seconds:.0f}s: " + summarize(evs2))
            conn.close()
            results["hb_answering"] = {
                "id": "HB-ANSWERING", "title": f"logged in, answering pings, observed {seconds:.0f}s",
                "sent": "login, then nothing (pings answered with pongs)", "lines": lines,
                "summary": ping_summary(evs, seconds)}

        def hb_silent():
            conn, ok, how = self.legit(answer_pings=False)
            lines = [f"login: {how}"]
            conn.mark()
            evs = collect(conn, seconds)
            lines += ["event: " + line for line in fmt_events(evs)]
            conn.close()
            results["hb_silent"] = {
                "id": "HB-NOT-ANSWERING", "title": f"logged in, NOT answering pings, observed up to {seconds:.0f}s",
                "sent": "login, then nothing (pings ignored)", "lines": lines,
                "summary": ping_summary(evs, seconds)}

        def unauth_idle():
            conn = self.connect(credential=False, answer_pings=True)
            if not conn.upgraded:
                results["unauth_idle"] = {
                    "id": "UNAUTH-IDLE", "title": "no credential, answering pings, never authenticating",
                    "sent": "handshake without the credential", "lines": [f"handshake: {conn.status_line or conn.error}"],
                    "summary": f"handshake refused ({conn.status}): an unauthenticated connection never exists"}
                return
            conn.mark()
            evs = collect(conn, seconds)
            conn.close()
            results["unauth_idle"] = {
                "id": "UNAUTH-IDLE", "title": f"no credential, answering pings, never authenticating, observed up to {seconds:.0f}s",
                "sent": "handshake without the credential, then nothing (pings answered)",
                "lines": ["event: " + line for line in fmt_events(evs)],
                "summary": ping_summary(evs, seconds)}

        threads = [threading.Thread(target=f) for f in (hb_answering, hb_silent, unauth_idle)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.add("Heartbeat and idle connections (observed concurrently)",
                 [results["hb_answering"], results["hb_silent"], results["unauth_idle"]])

    # -- output ---------------------------------------------------------------------------------
    def markdown(self, argv, started):
        out = [f"# Observed behaviour: {self.args.name}", "",
               "Generated by tests/interop/probe.py (an independent stdlib-only client; no wsaudit). Command line:",
               "", "```", "INTEROP_TOKEN=<TOKEN> " + redact(" ".join(shlex.quote(a) for a in argv), self.token), "```", "",
               f"Run at {started} UTC; probe took {time.monotonic() - self.t_start:.0f}s. Times are seconds after the "
               "probe's last write (`+0.004s`). Every attack runs on a fresh connection that logged in the "
               "legitimate way first (unless stated), from Origin https://app.example.com. Message, size and "
               "protocol attacks are differential: the valid payment is sent first on that connection and must "
               "be acked (`valid payment first`), then the attack, which is the valid payment changed in one "
               "property. Then, when the connection is still open, the unmutated valid payment is sent on the "
               "same connection again; then a fresh client logs in and sends the valid payment (`fresh client "
               "afterwards`; a dead server is restarted on the same port, as a supervisor would).",
               f"Valid payment: `{VALID}`", ""]
        if self.server:
            restarts = self.server.restarts
            out.append(f"Server restarts after a crash: {len(restarts)}" +
                       (f" (exit codes {restarts})" if restarts else ""))
            out.append("")
        for title, cases in self.sections:
            out += [f"## {title}", ""]
            for c in cases:
                out.append(f"### {c['id']}: {c['title']}")
                out.append(f"- sent: `{redact(c['sent'], self.token)}`")
                for line in c["lines"]:
                    out.append(f"- {redact(line, self.token)}")
                out.append(f"- **summary: {redact(c['summary'], self.token)}**")
                out.append("")
        out += ["## Cookies", ""]
        sets = [(w, v) for w, v in self.cookies if v]
        for w, v in self.cookies:
            if v is None:
                out.append(f"- {w}")
        out.append(f"- Set-Cookie headers seen on any of the {self.handshakes} handshake responses or the plain GETs: "
                   + ("; ".join(f"{w}: {v}" for w, v in sets) if sets else "NONE"))
        out.append("")
        return "\n".join(out) + "\n"


DROP = object()


def ping_summary(evs, seconds):
    pings = [e[0] for e in evs if e[1] == "ping"]
    data = [e for e in evs if e[1] in ("text", "binary")]
    end = next((e for e in evs if e[1] in ("close", "eof", "reset", "garbage")), None)
    s = f"{len(pings)} ping(s)" + (f" at {', '.join(f'+{p:.1f}s' for p in pings)}" if pings else f" in {seconds:.0f}s")
    if data:
        s += f"; {len(data)} data message(s)"
    if end is None:
        s += f"; still open after {seconds:.0f}s"
    elif end[1] == "close":
        s += f"; closed {end[2]} at +{end[0]:.1f}s"
    else:
        s += f"; {end[1]} (no close frame) at +{end[0]:.1f}s"
    return s


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", help="command that starts the server and prints 'PORT <n>'")
    ap.add_argument("--url", help="ws://host:port/path of an already running server")
    ap.add_argument("--path", default="/ws")
    ap.add_argument("--auth", choices=["first-message", "query", "header", "none"], required=True)
    ap.add_argument("--name", default="server")
    ap.add_argument("--out", help="Markdown file to write (default: stdout)")
    ap.add_argument("--observe", type=float, default=50.0,
                    help="seconds to watch idle connections for pings and closes (default 50)")
    ap.add_argument("--only", help="comma-separated sections: transport,origin,auth,messages,size,rate,protocol,long")
    args = ap.parse_args()
    if not args.server and not args.url:
        ap.error("--server or --url is required")
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    p = Probe(args)
    p.t_start = time.monotonic()
    only = set(args.only.split(",")) if args.only else None
    steps = [("long", lambda: p.long_observations(args.observe)), ("transport", p.transport),
             ("origin", p.origin), ("auth", p.auth_cases), ("messages", p.messages),
             ("size", p.size), ("rate", p.rate), ("protocol", p.protocol)]
    try:
        for name, fn in steps:
            if only is None or name in only:
                print(f"[probe] {name}", file=sys.stderr, flush=True)
                fn()
        p.cookies_probe()
        text = p.markdown(sys.argv, started)
    finally:
        if p.server:
            p.server.stop()
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
