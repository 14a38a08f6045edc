#!/usr/bin/env python3
"""probe_dialect.py: what a WebSocket server speaking an application protocol REALLY does,
independently of wsaudit.

The dialect sibling of probe.py: the same hand-written RFC 6455 client and case runner
(probe.py's `Conn`, frame helpers and `ProbeBase`, imported), with the application protocol
spoken by hand on top of it:

  socketio              Engine.IO v4 / Socket.IO v5 over a plain WebSocket
                        (`/socket.io/?EIO=4&transport=websocket`): the open packet `0{...}`,
                        CONNECT `40{auth}` -> `40{"sid":..}` or CONNECT_ERROR `44{...}`, the
                        business message `42<ackId>["pay",<payment>]` -> ACK `43<ackId>[...]`,
                        the Engine.IO heartbeat ping `2` / pong `3`
  graphql-transport-ws  graphql-ws' protocol (subprotocol `graphql-transport-ws`):
                        `connection_init` {payload} -> `connection_ack`, the business message
                        `subscribe` with the payment in `variables.input` -> `next` / `error`
                        and `complete`, close codes 4400 / 4401 / 4403 / 4406 / 4408 / 4409 /
                        4429 / 4500, WebSocket pings as heartbeat (and `ping` -> `pong`)

It starts the server itself (to tell a crash from a refusal, read its stderr and restart a dead
server on the same port with PORT=<n>, as a supervisor would), runs every probe and writes
Markdown. Stdlib only; every connection goes to the loopback address given.

usage:
  INTEROP_TOKEN=... NODE_PATH=/tmp/interop-node/node_modules python3 probe_dialect.py \
      --dialect socketio --server "node node_socketio/server.js" --name node-socketio \
      --observe 60 --out node_socketio/observed.md
  ... --dialect graphql-transport-ws --server "node node_graphql_ws/server.js" ...
  python3 probe_dialect.py --dialect socketio --url ws://127.0.0.1:3000/socket.io/   (no restarts)

Every attack of the message, size, rate and protocol families is differential, as wsaudit's
suites are: sent on a connection that logged in the legitimate way and first carried the
unmutated valid payment (acknowledged). Message attacks change the PAYLOAD inside an intact
envelope (`42<id>["pay",<payload>]`, `{"id":..,"type":"subscribe",..,"variables":{"input":
<payload>}}`); size and RFC 6455 attacks act on the WebSocket frame that carries the whole
envelope (sizes are sizes of that whole WebSocket message, padded with spaces after the payload,
inside the envelope).
"""
import argparse
import functools
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from probe import (  # noqa: E402  (probe.py: its frames, client, server runner and case runner)
    ALLOWED_ORIGIN, ENDS, KIB, MIB, URL_PARAMS, VALID, Conn, ProbeBase, clip, concurrently, corrupt_utf8,
    fragments, frame, idle_end, is_data, payload_mutations, redact, run, run_arguments, send_note, shown,
    target_arguments, times_at)
from probe import collect as collect_events, summarize as summarize_events  # noqa: E402

GRAPHQL_QUERY = "mutation Pay($input: PaymentInput!) { pay(input: $input) { type reference } }"


# ---------------------------------------------------------------------------------------------
# Dialects: the envelope, the authentication and how the server's messages are read
# ---------------------------------------------------------------------------------------------

def reply_kind(typ, typed, untyped):
    """(kind, note) of the app's reply {"type": typ}: ack or error (`typed` and the type), else
    other (`untyped`)."""
    if typ in ("ack", "error"):
        return typ, f"{typed} {typ}"
    return "other", untyped


# The first character of an Engine.IO packet, and of the Socket.IO packet in a message `4...`
# (ACK `3` is read apart).
EIO_PACKETS = {"2": ("eio-ping", "Engine.IO ping"), "3": ("eio-pong", "Engine.IO pong"),
               "6": ("eio-noop", "Engine.IO noop"), "1": ("eio-close", "Engine.IO close"),
               "0": ("open", "Engine.IO open")}
SIO_PACKETS = {"0": ("auth_ok", "CONNECT (accepted)"), "4": ("refusal", "CONNECT_ERROR"),
               "1": ("refusal", "DISCONNECT"), "2": ("event", "EVENT")}
# The graphql-transport-ws message types read as they are (`next` is read apart).
GQL_MESSAGES = {"connection_ack": ("auth_ok", "connection_ack"), "error": ("refusal", "error"),
                "complete": ("complete", "complete"), "ping": ("gql-ping", "ping"), "pong": ("gql-pong", "pong")}


class SocketIO:
    name = "socketio"
    default_path = "/socket.io/"
    heartbeat = "Engine.IO ping `2` (answered `3`)"

    def query(self):
        return {"EIO": "4", "transport": "websocket"}

    def headers(self):
        return {}

    def wrap(self, payload, n):
        """The business message around `payload` (str or bytes), with ack id n."""
        if isinstance(payload, bytes):
            return f'42{n}["pay",'.encode() + payload + b"]"
        return f'42{n}["pay",{payload}]'

    def auth_message(self, token):
        return "40" + json.dumps({"token": token}, separators=(",", ":"))

    def connect_without_auth(self):
        return "40"

    def classify(self, text):
        """(kind, note): kind in open, auth_ok, ack, error, refusal, event, eio-ping, eio-pong,
        eio-noop, eio-close, other. `error` is the app's {"type":"error"} in an ACK; `refusal`
        a protocol-level refusal (CONNECT_ERROR 44, DISCONNECT 41)."""
        if text[:1] in EIO_PACKETS:
            return EIO_PACKETS[text[:1]]
        if not text.startswith("4") or len(text) < 2:
            return "other", "not a Socket.IO packet"
        t, rest = text[1], text[2:]
        if rest.startswith("/"):                      # a namespace other than "/"
            rest = rest.partition(",")[2]
        m = re.match(r"(\d*)(.*)", rest, re.S)
        ack_id, data = m.group(1), m.group(2)
        if t in SIO_PACKETS:
            return SIO_PACKETS[t]
        if t == "3":
            try:
                args = json.loads(data)
            except ValueError:
                return "other", f"ACK {ack_id} (unparsable)"
            first = args[0] if isinstance(args, list) and args else None
            return reply_kind(first.get("type") if isinstance(first, dict) else None, f"ACK {ack_id} type", f"ACK {ack_id}")
        return "other", f"Socket.IO packet type {t}"


class GraphQLWS:
    name = "graphql-transport-ws"
    default_path = "/graphql"
    heartbeat = "WebSocket ping (answered with pong)"

    def query(self):
        return {}

    def headers(self):
        return {"Sec-WebSocket-Protocol": "graphql-transport-ws"}

    def wrap(self, payload, n):
        head = ('{"id":"%s","type":"subscribe","payload":{"query":%s,"variables":{"input":'
                % (n, json.dumps(GRAPHQL_QUERY)))
        if isinstance(payload, bytes):
            return head.encode() + payload + b"}}}"
        return head + payload + "}}}"

    def auth_message(self, token):
        return json.dumps({"type": "connection_init", "payload": {"token": token}}, separators=(",", ":"))

    def connect_without_auth(self):
        return '{"type":"connection_init"}'

    def classify(self, text):
        try:
            doc = json.loads(text)
        except ValueError:
            return "other", "not JSON"
        if not isinstance(doc, dict):
            return "other", "not an object"
        t = doc.get("type")
        if isinstance(t, str) and t in GQL_MESSAGES:
            return GQL_MESSAGES[t]
        if t == "next":
            payload = doc.get("payload") if isinstance(doc.get("payload"), dict) else {}
            if payload.get("errors"):
                return "refusal", "next with errors"
            pay = ((payload.get("data") or {}).get("pay") or {}) if isinstance(payload.get("data"), dict) else {}
            return reply_kind(pay.get("type") if isinstance(pay, dict) else None, "next data.pay.type", "next")
        return "other", f"type {t!r}"


DIALECTS = {"socketio": SocketIO, "graphql-transport-ws": GraphQLWS, "graphql": GraphQLWS}
CRASH_CODES = {"socketio": {1011}, "graphql-transport-ws": {1011, 4500}}


# ---------------------------------------------------------------------------------------------
# A connection speaking the dialect
# ---------------------------------------------------------------------------------------------

class DConn(Conn):
    """probe.py's Conn plus the dialect's heartbeat: Engine.IO pings `2` are answered with `3`
    while `answer_pings` (as WebSocket pings are)."""

    def __init__(self, dialect, *args, **kwargs):
        self.d = dialect
        self.hb = []          # times (since t0) of protocol heartbeats (Engine.IO pings)
        super().__init__(*args, **kwargs)

    def next_event(self, deadline):
        ev = super().next_event(deadline)
        if ev and ev[1] == "text" and self.d.name == "socketio" and ev[2] == "2":
            self.hb.append(time.monotonic() - self.t0)
            if self.answer_pings and not self.done:
                self.send_text("3")
                return (ev[0], "eio-ping", "`2` (answered `3`)")
            return (ev[0], "eio-ping", "`2` (not answered)")
        return ev


def kind_of(d, ev):
    if ev[1] == "text":
        return d.classify(ev[2])[0]
    return ev[1]


def collect(dc, window, stop_kinds=("ack", "error", "refusal"), grace=0.3):
    """Events for up to `window` s; stops after the connection ends, and `grace` s after the
    first message of a kind in `stop_kinds`."""
    stop = (lambda ev: kind_of(dc.d, ev) in stop_kinds) if stop_kinds else None
    return collect_events(dc, window, grace=grace, stop=stop)


def fmt_events(d, events):
    """One line per event; a run of 4 or more text messages of one kind becomes one line."""
    out = []
    i = 0
    while i < len(events):
        t, kind, detail = events[i]
        if kind == "timeout":
            out.append(f"+{t:.3f}s nothing more (window over)")
            i += 1
            continue
        if kind == "text":
            k = d.classify(detail)
            j = i
            while j + 1 < len(events) and events[j + 1][1] == "text" and d.classify(events[j + 1][2])[0] == k[0]:
                j += 1
            if j - i >= 3:
                out.append(f"+{t:.3f}s..+{events[j][0]:.3f}s text [{k[0]}] x {j - i + 1}, the first: {clip(detail)}  [{k[1]}]")
                i = j + 1
                continue
            out.append(f"+{t:.3f}s text {clip(detail)}  [{k[1]}]")
            i += 1
            continue
        out.append(f"+{t:.3f}s {kind} {clip(detail)}".rstrip())
        i += 1
    return out


SILENT_KINDS = ("eio-ping", "eio-pong", "eio-noop", "complete", "open")


def summarize(d, events, crash_codes=()):
    """probe.summarize, the server's messages counted by how `d` reads them."""
    def label(e):
        if e[1] != "text":
            return "binary"
        kind, note = d.classify(e[2])
        if kind in SILENT_KINDS:
            return None
        return f"refusal ({note})" if kind == "refusal" else kind
    return summarize_events(events, label, crash_codes, whole_close=True)


def idle_summary(dc, evs, seconds):
    wsp = [e[0] for e in evs if e[1] == "ping"]
    hb = [e[0] for e in evs if e[1] == "eio-ping"]
    data = [dc.d.classify(e[2])[1] if e[1] == "text" else e[1] for e in evs if is_data(e)]
    s = f"{len(wsp)} WebSocket ping(s)" + times_at(wsp)
    if dc.d.name == "socketio":
        s += f"; {len(hb)} Engine.IO ping(s)" + times_at(hb)
    if data:
        s += f"; {len(data)} message(s) from the server: {', '.join(data)}"
    return s + idle_end(evs, seconds)


# ---------------------------------------------------------------------------------------------
# The probe
# ---------------------------------------------------------------------------------------------

class DProbe(ProbeBase):
    """probe.py's case runner with the dialect spoken on top: the login, the business message
    around the payment and how the server's replies are read are the dialect's."""

    case_window = 3.0
    refusal_body = True
    tag = "probe_dialect"

    def __init__(self, args):
        self.d = DIALECTS[args.dialect]()
        self.crash_codes = CRASH_CODES["socketio" if self.d.name == "socketio" else "graphql-transport-ws"]
        super().__init__(args, self.d.default_path)
        self.seq = 0

    def next_id(self):
        with self.lock:
            self.seq += 1
            return self.seq

    # -- connections ----------------------------------------------------------------------------
    def connect(self, origin=ALLOWED_ORIGIN, query=None, headers=None, answer_pings=True,
                dialect_query=True, subprotocol=True, path=None):
        q = dict(self.d.query()) if dialect_query else {}
        q.update(query or {})
        h = dict(self.d.headers()) if subprotocol else {}
        h.update(headers or {})
        return self.handshake(path or self.path, q, h, origin, answer_pings, make=functools.partial(DConn, self.d))

    def opening(self, dc, timeout=2.0):
        """socketio: the Engine.IO open packet `0{...}`; graphql: nothing to wait for."""
        if self.d.name != "socketio":
            return True, "no opening packet in this protocol"
        evs = collect(dc, timeout, stop_kinds=("open",), grace=0)
        op = next((e for e in evs if kind_of(self.d, e) == "open"), None)
        if op:
            dc.open_packet = op[2]
            return True, f"open packet {op[2]}"
        return False, f"no open packet: {fmt_events(self.d, evs)}"

    def login(self, dc, timeout=2.0):
        if not dc.upgraded:
            return False, f"handshake not upgraded ({dc.status_line or dc.error})"
        ok, how = self.opening(dc)
        if not ok:
            return False, how
        dc.send_text(self.d.auth_message(self.token))
        evs = collect(dc, timeout, stop_kinds=("auth_ok", "refusal"), grace=0)
        acc = next((e for e in evs if kind_of(self.d, e) == "auth_ok"), None)
        if acc:
            return True, f"{self.d.auth_message('<TOKEN>')} -> {acc[2]}"
        return False, f"not accepted: {fmt_events(self.d, evs)}"

    def unauthenticated(self, dc):
        return f"opening: {self.opening(dc)[1]}"

    def send_payment(self, dc, payload=VALID):
        return dc.send_text(self.d.wrap(payload, self.next_id()))

    def pay_valid(self, dc, grace=0.3):
        """The business message with the valid payment: (acknowledged, the events after it)."""
        dc.mark()
        self.send_payment(dc)
        evs = collect(dc, 2.0, grace=grace)
        return any(kind_of(self.d, e) == "ack" for e in evs), evs

    # -- reading the replies --------------------------------------------------------------------
    def watch(self, dc, window, stop_kinds=("ack", "error", "refusal"), grace=0.3):
        return collect(dc, window, stop_kinds=stop_kinds, grace=grace)

    def summary(self, evs):
        return summarize(self.d, evs)

    def case_summary(self, dc, evs):
        if getattr(dc, "ended_before", False):
            return dc.before + "; the payment was never sent (connection ended)"
        if getattr(dc, "before", None):
            return dc.before + "; then the payment: " + summarize(self.d, evs, self.crash_codes)
        return summarize(self.d, evs, self.crash_codes)

    def fmt(self, evs):
        return fmt_events(self.d, evs)

    def idle_summary(self, dc, evs, seconds):
        return idle_summary(dc, evs, seconds)

    # -- transport, origin ----------------------------------------------------------------------
    def transport(self):
        dc = self.connect()
        ok, how = self.opening(dc) if dc.upgraded else (False, "")
        cases = [{"id": "TLS-PLAINTEXT-UPGRADE", "title": "ws:// upgrade from the allowed origin",
                  "sent": f"GET {dc.path} over plain TCP with Upgrade: websocket",
                  "lines": [f"status: {dc.status_line or dc.error}"]
                  + ([f"opening: {how}"] if dc.upgraded and self.d.name == "socketio" else [])
                  + ([f"Sec-WebSocket-Protocol in the 101: {dc.header('Sec-WebSocket-Protocol')!r}"] if dc.upgraded else []),
                  "summary": "plaintext upgraded (101)" if dc.upgraded else "plaintext refused"}]
        dc.close()
        cases.append(self.tls_case())
        # The protocol's own handshake requirements (probe only).
        if self.d.name == "socketio":
            for cid, q, what in [("PROBE-NO-EIO", {"transport": "websocket"}, "without EIO=4"),
                                 ("PROBE-EIO3", {"EIO": "3", "transport": "websocket"}, "with EIO=3 (Engine.IO v3)"),
                                 ("PROBE-NO-QUERY", {}, "without any query")]:
                dc = self.connect(query=q, dialect_query=False)
                lines = [f"status: {dc.status_line or dc.error}"]
                if dc.body:
                    lines.append(f"response body: {dc.body[:200]!r}")
                after = []
                if dc.upgraded:
                    dc.mark()
                    after = collect(dc, 1.0, stop_kinds=())
                    lines += ["after the 101: " + line for line in fmt_events(self.d, after)]
                http_after = any(e[1] == "garbage" and "HTTP/1.1" in e[2] for e in after)
                cases.append({"id": cid, "title": f"probe only: the legitimate handshake {what}",
                              "sent": f"GET {dc.path}", "lines": lines,
                              "summary": ("101, then an HTTP error response written on the upgraded socket (no WebSocket session)"
                                          if http_after else "upgraded (101)" if dc.upgraded else f"refused ({dc.status})")})
                dc.close()
        else:
            c = self.case("PROBE-NO-SUBPROTOCOL", "probe only: the legitimate handshake without Sec-WebSocket-Protocol",
                          "no Sec-WebSocket-Protocol, then connection_init with the token",
                          lambda dc: dc.send_text(self.d.auth_message(self.token))[1],
                          login=False, differential=False, conn_kwargs={"subprotocol": False})
            cases.append(c)
        self.add("Transport (TLS)", cases)

    def origin(self):
        cases = self.origin_cases("the legitimate handshake (GET {path}), Origin changed")
        # A foreign origin is not only upgraded but served (cross-site WebSocket hijacking).
        c = self.case("ORIGIN-FOREIGN-SERVED", "probe only: Origin https://evil.example, the legitimate login and a payment",
                      f"Origin https://evil.example, login, {self.d.wrap(VALID, 'N')}",
                      lambda dc: self.send_payment(dc)[1], differential=False, health=False,
                      conn_kwargs={"origin": "https://evil.example"})
        cases.append(c)
        self.add("Origin (CSWSH)", cases)

    # -- authentication -------------------------------------------------------------------------
    def auth_cases(self):
        d = self.d
        cases = []
        pay = d.wrap(VALID, "N")

        def connect_then_pay(first):
            """`first` (a CONNECT / connection_init without the valid token, or None), its
            replies, then the valid payment: the events after the payment are the case's."""
            def act(dc):
                note = ""
                if first is not None:
                    dc.send_text(first)
                    evs = collect(dc, 1.0, stop_kinds=("auth_ok", "refusal"), grace=0.05)
                    note = f"reply to {redact(first, self.token)}: " + " | ".join(fmt_events(d, evs))
                    dc.before = f"to {redact(first, self.token)}: " + summarize(d, evs, self.crash_codes)
                    if dc.done:
                        dc.ended_before = True
                        return note + "; connection ended before the payment could be sent"
                    dc.mark()
                self.send_payment(dc)
                return (note + "; " if note else "") + "then the payment (times below from its write)"
            return act

        noauth = d.connect_without_auth()
        wrong = d.auth_message("wrong")
        if d.name == "socketio":
            titles = ["no credential at all: CONNECT without auth (`40`), then a payment",
                      ("AUTH-EVENT-BEFORE-CONNECT", "the payment event with no CONNECT at all (straight after the open packet)"),
                      'CONNECT with a wrong token (`40{"token":"wrong"}`), then a payment']
        else:
            titles = ["no credential at all: connection_init without payload, then a payment",
                      ("AUTH-SUBSCRIBE-BEFORE-INIT", "the payment subscribe with no connection_init at all"),
                      "connection_init with a wrong token, then a payment"]
        # (id, title, sent, the first message before the payment (None: none), conn_kwargs)
        specs = [("AUTH-NO-CREDENTIAL", titles[0], f"text {noauth}, then text {pay}", noauth, None),
                 (*titles[1], f"text {pay}", None, None),
                 ("AUTH-WRONG-TOKEN", titles[2], f"text {wrong}, then text {pay}", wrong, None)]
        if d.name == "socketio":
            specs.append(("AUTH-TOKEN-NOT-STRING", 'probe only: CONNECT with `40{"token":{}}`, then a payment',
                          f'text 40{{"token":{{}}}}, then text {pay}', '40{"token":{}}', None))
        specs += [(f"URL-{param}", f"the valid token in ?{param}= and no other credential ({noauth}), then a payment",
                   f"handshake ?{param}=<TOKEN>, text {noauth}, then text {pay}", noauth,
                   {"query": {param: self.token}})
                  for param in URL_PARAMS]
        # The token as a path segment and as a subprotocol, with no other credential.
        base = self.path.rstrip("/")
        offered = ", ".join(filter(None, [self.d.headers().get("Sec-WebSocket-Protocol"), self.token]))
        specs += [
            ("PATH-CREDENTIAL", f"the valid token as a path segment ({base}/<TOKEN>) and no other credential ({noauth}), then a payment",
             f"handshake {base}/<TOKEN>, text {noauth}, then text {pay}", noauth, {"path": base + "/" + self.token}),
            ("SUBPROTOCOL-CREDENTIAL", f"the valid token offered as a subprotocol (Sec-WebSocket-Protocol: {offered}) and no other credential ({noauth}), then a payment",
             f"handshake Sec-WebSocket-Protocol: {offered}, text {noauth}, then text {pay}", noauth,
             {"headers": {"Sec-WebSocket-Protocol": offered}}),
        ]
        if d.name == "socketio":
            specs.append(("URL-token-NO-CONNECT", "probe only: the valid token in ?token= and the payment with no CONNECT",
                          f"handshake ?token=<TOKEN>, text {pay}", None, {"query": {"token": self.token}}))
        for cid, title, sent, first, conn_kwargs in specs:
            cases.append(self.case(cid, title, sent, connect_then_pay(first), login=False, differential=False,
                                   conn_kwargs=conn_kwargs))
        cases.append(self.credential_reuse())
        if d.name != "socketio":
            cases.append(self.init_timeout_samples())
        self.add("Authentication", cases)

    def init_timeout_samples(self, n=10):
        """graphql: connections that never send connection_init, timed from the 101, in parallel:
        idle (answering pings), sending a WebSocket ping every 200 ms, sending a pong every 200 ms."""
        def one(busy):
            dc = self.connect()
            if not dc.upgraded:
                return f"not upgraded ({dc.status_line})"
            dc.mark()
            evs = []
            deadline = time.monotonic() + 6.0
            next_busy = time.monotonic() + 0.2
            while time.monotonic() < deadline:
                ev = dc.next_event(min(deadline, next_busy) if busy else deadline)
                if ev is None:
                    break
                if ev[1] == "timeout":
                    if busy and time.monotonic() >= next_busy and not dc.done:
                        dc.send(frame(9 if busy == "pings" else 10, b"busy"))
                        next_busy += 0.2
                        continue
                    if time.monotonic() >= deadline:
                        evs.append(ev)
                        break
                    continue
                evs.append(ev)
                if ev[1] in ENDS and ev[1] != "close":
                    break
                if ev[1] == "close":
                    deadline = min(deadline, time.monotonic() + 0.5)
            dc.close()
            data = [e for e in evs if is_data(e)]
            end = next((e for e in evs if e[1] in ENDS), None)
            return ((f"{len(data)} message(s) before; " if data else "no data; ")
                    + (f"close {end[2]} at +{end[0]:.4f}s after the 101" if end and end[1] == "close"
                       else f"{end[1]} at +{end[0]:.4f}s" if end else "still open after 6 s"))
        kinds = [None] * n + ["pings", "pongs"]
        res = concurrently([functools.partial(one, b) for b in kinds])
        lines = [f"connection {i + 1} ({'idle, answering pings' if b is None else 'a WebSocket ' + b[:-1] + ' every 200 ms'}): {r}"
                 for i, (b, r) in enumerate(zip(kinds, res))]
        times = [float(m.group(1)) for r in res for m in [re.search(r"at \+([\d.]+)s", r)] if m]
        return {"id": "UNAUTH-INIT-TIMEOUT", "title": f"{n + 2} connections that never send connection_init, in parallel, timed from the 101",
                "sent": "the legitimate handshake, then no connection_init (2 of them send pings / pongs every 200 ms)",
                "lines": lines,
                "summary": (f"closed at +{min(times):.4f}s ... +{max(times):.4f}s after the 101 (the probe's clock starts when it has read the 101)" if times else "not closed")}

    # -- messages -------------------------------------------------------------------------------
    def messages(self):
        d = self.d
        texts = payload_mutations("malformed JSON: the payment cut by its last byte, inside the intact envelope",
                                  "the payment", "probe only")
        cases = [self.case("MSG-VALID", "the valid payment (positive control)", f"text {d.wrap(VALID, 'N')}",
                           lambda dc: self.send_payment(dc)[1])]
        for cid, title, text in texts:
            cases.append(self.case(cid, title, f"text {d.wrap(shown(text), 'N')}",
                                   lambda dc, t=text: self.send_payment(dc, t)[1], send_valid=True))
        cases.append(self.case(
            "MSG-BINARY", "the whole business message (envelope + valid payment) in a binary frame",
            f"binary {d.wrap(VALID, 'N')}",
            lambda dc: dc.send(frame(2, d.wrap(VALID, self.next_id()).encode()))[1], send_valid=True))
        bad = corrupt_utf8(VALID.encode())
        cases.append(self.case(
            "MSG-INVALID-UTF8", "the payment with the invalid UTF-8 bytes C3 28 after its first quote, inside the envelope",
            "text frame: the business message with C3 28 inserted after the payment's first quote: "
            + repr(d.wrap(bad, "N")[-len(bad) - 10:-len(bad) + 20]) + "...",
            lambda dc: dc.send(frame(1, d.wrap(bad, self.next_id())))[1], send_valid=True))
        # The envelope itself broken (probe only).
        cases.append(self.case(
            "PROBE-ENVELOPE-TRUNCATED", "probe only: the whole business message cut by its last byte",
            f"text {d.wrap(VALID, 'N')[:-1]}",
            lambda dc: dc.send_text(d.wrap(VALID, self.next_id())[:-1])[1], send_valid=True))
        if d.name == "socketio":
            extra = [
                ("PROBE-EVENT-WITHOUT-ACK-ID", "probe only: the payment event without an ack id (`42[...]`: the handler's `ack` is undefined)",
                 f'42["pay",{VALID}]'),
                ("PROBE-EVENT-NO-PAYLOAD", 'probe only: the event with no payment (`42N["pay"]`)', '42{n}["pay"]'),
                ("PROBE-EVENT-NULL-PAYLOAD", 'probe only: the event with a null payment (`42N["pay",null]`)', '42{n}["pay",null]'),
                ("PROBE-UNKNOWN-EVENT", "probe only: the payment under another event name, with an ack id",
                 '42{n}["transfer",' + VALID + "]"),
                ("PROBE-EIO-UNKNOWN-PACKET", "probe only: an Engine.IO packet of unknown type `9`", "9"),
                ("PROBE-SIO-UNKNOWN-PACKET", "probe only: a Socket.IO packet of unknown type `47`", "47"),
            ]
        else:
            extra = [
                ("PROBE-UNKNOWN-MESSAGE-TYPE", 'probe only: {"type":"transfer"}', '{"type":"transfer"}'),
                ("PROBE-QUERY-SYNTAX-ERROR", "probe only: a subscribe whose query does not parse",
                 '{"id":"{n}","type":"subscribe","payload":{"query":"mutation {","variables":{}}}'),
                ("PROBE-NULL-INPUT", "probe only: the payment variable null",
                 d.wrap("null", 0).replace('"id":"0"', '"id":"{n}"')),
                ("PROBE-SECOND-INIT", "probe only: a second connection_init (with the valid token)",
                 self.d.auth_message(self.token)),
            ]
        for cid, title, text in extra:
            def act(dc, t=text):
                return dc.send_text(t.replace("{n}", str(self.next_id())))[1]
            cases.append(self.case(cid, title, "text " + redact(text.replace("{n}", "N"), self.token), act,
                                   send_valid=True))
        self.add("Messages (payload inside the envelope)", cases)

    # -- sizes ----------------------------------------------------------------------------------
    def padded_message(self, size, n):
        """The business message (valid payment) padded with spaces after the payment, inside
        the envelope, to exactly `size` bytes."""
        wire = self.d.wrap(VALID, n)
        return self.d.wrap(VALID + " " * (size - len(wire.encode())), n).encode()

    def size(self):
        cases = [self.case(
            "SIZE-UNDER-LIMIT", "the business message padded to 64 KiB - 1 (positive control)",
            f"one text frame, {64 * KIB - 1} B", lambda dc: send_note(dc, frame(1, self.padded_message(64 * KIB - 1, self.next_id()))),
            window=5.0)]
        sizes = [("SIZE-ONE-OVER", 64 * KIB + 1, "64 KiB + 1")]
        if self.d.name == "socketio":
            sizes += [("SIZE-PADDED 1000000", 1000000, "1,000,000 B = maxHttpBufferSize"),
                      ("SIZE-PADDED 1000001", 1000001, "1,000,001 B = maxHttpBufferSize + 1")]
        else:
            sizes += [("SIZE-PADDED 1 MiB + 1", MIB + 1, "1 MiB + 1"),
                      ("SIZE-PADDED 16 MiB + 1", 16 * MIB + 1, "16 MiB + 1")]
        for cid, sz, label in sizes:
            cases.append(self.case(
                cid, f"the business message padded to {sz} B ({label}), one frame"
                + ("" if cid == "SIZE-ONE-OVER" else " (probe only, to find the limit)"),
                f"one text frame, {sz} B", lambda dc, s=sz: send_note(dc, frame(1, self.padded_message(s, self.next_id()))),
                window=5.0, send_valid=True))
        cases.append(self.case(
            "SIZE-DECLARED-100MIB", "a text frame header declaring 100 MiB, then only the business message padded to 4 KiB",
            "header len=104857600, 4096 B (the business message + spaces)",
            lambda dc: send_note(dc, frame(1, self.padded_message(4 * KIB, self.next_id()), declared=100 * MIB)),
            send_valid=True, differential=False))
        cases.append(self.case(
            "SIZE-FRAGMENTED", "the business message padded to 64 KiB + 1, in 8 fragments",
            "text frame + 7 continuation frames, 65537 B in all",
            lambda dc: send_note(dc, fragments(self.padded_message(64 * KIB + 1, self.next_id()), 8)[1]),
            send_valid=True))
        cases.append(self.deflate_case()[0])
        self.add("Size", cases)

    # -- rate -----------------------------------------------------------------------------------
    def rate(self):
        def flood(dc):
            return send_note(dc, b"".join(frame(1, self.d.wrap(VALID, self.next_id()).encode()) for _ in range(200)),
                             frames=200)
        c = self.case("RATE-FLOOD-200", "200 valid payments back to back on one connection (distinct ids)",
                      f"200 x text {self.d.wrap(VALID, 'N')}", flood, stop_kinds=())
        self.add("Rate limit", [c])

    # -- RFC 6455 -------------------------------------------------------------------------------
    def protocol(self):
        cases = [self.case("PROTO-VALID", "a well-formed masked text frame with the business message (positive control)",
                           f"text {self.d.wrap(VALID, 'N')}", lambda dc: self.send_payment(dc)[1])]
        cases += self.protocol_cases(lambda: self.d.wrap(VALID, self.next_id()).encode(), "the business message",
                                     "probe only: a well-formed WebSocket ping from the client",
                                     probe_only="probe only", stop_kinds=())
        if self.d.name == "socketio":
            cases.append(self.case("PROBE-EIO-CLIENT-PING", "probe only: an Engine.IO ping `2` from the client (v4: only the server pings)",
                                   "text 2", lambda dc: dc.send_text("2")[1], window=2.0, stop_kinds=()))
        else:
            cases.append(self.case("PROBE-GQL-PING", 'probe only: a graphql-ws {"type":"ping"} from the client',
                                   'text {"type":"ping"}', lambda dc: dc.send_text('{"type":"ping"}')[1], window=1.0,
                                   stop_kinds=("gql-pong",)))
        self.add("Protocol (RFC 6455)", cases)

    # -- heartbeat and idle connections (concurrently) ------------------------------------------
    def long_observations(self, seconds):
        d = self.d

        def unauth(cid, title, sent, first):
            dc = self.connect(answer_pings=True)
            if not dc.upgraded:
                return {"id": cid, "title": title, "sent": sent, "lines": [f"handshake: {dc.status_line or dc.error}"],
                        "summary": f"handshake refused ({dc.status})"}
            return self.idle_case(dc, cid, title, sent, seconds, [], first=first)

        what = "Engine.IO pings answered with `3`, WebSocket pings with pongs" if d.name == "socketio" \
            else "WebSocket pings answered with pongs"
        jobs = [
            lambda: self.heartbeat_case("HB-ANSWERING", f"logged in, answering the heartbeat, observed {seconds:.0f}s",
                                        f"login, then nothing ({what})", seconds, True),
            lambda: self.heartbeat_case("HB-NOT-ANSWERING", f"logged in, NOT answering the heartbeat, observed up to {seconds:.0f}s",
                                        "login, then nothing (no `3`, no pong)" if d.name == "socketio" else "login, then nothing (no pong)",
                                        seconds, False),
        ]
        if d.name == "socketio":
            jobs.append(lambda: unauth(
                "UNAUTH-IDLE", f"no CONNECT at all (open packet only), answering the heartbeat, observed up to {seconds:.0f}s",
                f"handshake, then nothing: never a CONNECT `40` ({what})", None))
            jobs.append(lambda: unauth(
                "UNAUTH-IDLE-AFTER-CONNECT-ERROR", f"CONNECT without auth (`40`, refused `44`), then idle answering the heartbeat, observed up to {seconds:.0f}s",
                f"handshake, `40`, then nothing ({what})", "40"))
        else:
            jobs.append(lambda: unauth(
                "UNAUTH-IDLE", f"no connection_init, answering pings, observed up to {seconds:.0f}s",
                "handshake (subprotocol graphql-transport-ws), then nothing", None))
        self.add("Heartbeat and idle connections (observed concurrently)", concurrently(jobs))

    # -- cookies --------------------------------------------------------------------------------
    def cookies_probe(self):
        paths = ["/", self.path] + ([self.path + "?EIO=4&transport=polling"] if self.d.name == "socketio" else [])
        super().cookies_probe(paths, origin=ALLOWED_ORIGIN, verbose=True)

    # -- output ---------------------------------------------------------------------------------
    def preamble(self, argv, started):
        d = self.d
        return [f"# Observed behaviour: {self.args.name}", "",
               "Generated by tests/interop/probe_dialect.py (an independent stdlib-only client speaking the "
               f"`{d.name}` dialect by hand; no wsaudit). Command line:",
               "", "```", self.command_line(argv), "```", "",
               f"Run at {started} UTC; probe took {time.monotonic() - self.t_start:.0f}s. Times are seconds after the "
               "probe's last write (`+0.004s`). Every attack runs on a fresh connection that logged in the "
               f"legitimate way first (unless stated: `{d.auth_message('<TOKEN>')}`), from Origin "
               "https://app.example.com. Message, size, rate and protocol attacks are differential: the valid payment "
               "is sent first on that connection and must be acked (`valid payment first`), then the attack. "
               "Message attacks change the payment inside an intact envelope; size and RFC 6455 attacks act on "
               "the WebSocket frame carrying the whole business message. Then, when the connection is still open, "
               "the unmutated valid payment is sent on the same connection again; then a fresh client logs in and "
               "sends the valid payment (`fresh client afterwards`; a dead server is restarted on the same port, as "
               "a supervisor would).",
               f"Valid payment: `{VALID}`; business message: `{d.wrap(VALID, 'N')}` (N: a fresh "
               + ("ack id" if d.name == "socketio" else "subscribe id") + " per message).",
               "Replies are shown with how the probe reads them in brackets: "
               + ("`[ACK n type ack]` / `[ACK n type error]` (the app's reply to our ack id), `[CONNECT_ERROR]` (44), "
                  "`[DISCONNECT]` (41), `[CONNECT (accepted)]` (40), Engine.IO packets."
                  if d.name == "socketio" else
                  "`[next data.pay.type ack]`, `[next data.pay.type error]` (the resolver's own error), `[next with errors]` and "
                  "`[error]` (GraphQL errors: protocol-level refusals), `[complete]`, `[connection_ack]`."), ""]

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dialect", choices=sorted(DIALECTS), required=True)
    target_arguments(ap, help="the WebSocket path (default: /socket.io/ or /graphql)")
    run_arguments(ap, 60.0, "heartbeats and closes", "long,transport,origin,auth,messages,size,rate,protocol")
    run(ap, DProbe)


if __name__ == "__main__":
    main()
