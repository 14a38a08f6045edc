// A real SignalR session (JSON hub protocol, negotiation on, WebSockets transport) against the
// reference server (`serve --dialect signalr-json`) with the official client,
// @microsoft/signalr 11.0.0 (`HubConnectionBuilder`). See README.md.
//
// env: WS_URL (wss://HOST:PORT/ws; the client takes the https:// form of it), TICKET_URL,
//      API_TOKEN, ORIGIN, VALID, INVALID, HEARTBEAT_MS; NODE_PATH to a node_modules holding
//      @microsoft/signalr (and its ws, fetch-cookie, tough-cookie); NODE_EXTRA_CA_CERTS to the CA.
'use strict';

const WebSocket = require('ws');
const signalR = require('@microsoft/signalr');
const { run, fetchTicket, sleep, within, watcher, describe, log, heartbeatWindow } = require('./common.cjs');

const STEP_TIMEOUT_MS = 5000;
const RECORD_SEPARATOR = '\x1e';

// The client only takes http(s) URLs: it POSTs <url>/negotiate, then opens the WebSocket at
// the ws(s) form of <url>?id=<connectionToken>.
function hubUrl(wsUrl) {
  const url = new URL(wsUrl);
  if (url.protocol === 'wss:') url.protocol = 'https:';
  else if (url.protocol === 'ws:') url.protocol = 'http:';
  return url.toString();
}

// The client hides the hub protocol's pings; this `ws` subclass (handed to the client as its
// WebSocket implementation) counts the ping records ({"type":6}) the client receives, and
// keeps the upgrade's URL for the report. Everything else is the client's own.
function tappedWebSocket(tap) {
  return class TappedWebSocket extends WebSocket {
    constructor(url, protocols, options) {
      super(url, protocols, options);
      tap.urls.push(url);
      this.on('message', (data) => {
        for (const record of data.toString().split(RECORD_SEPARATOR)) {
          if (!record) continue;
          try {
            if (JSON.parse(record).type === signalR.MessageType.Ping) tap.pings += 1;
          } catch (_) {
            /* not JSON: the client reports it */
          }
        }
      });
    }
  };
}

const stderrLogger = {
  log(level, message) {
    if (level >= signalR.LogLevel.Information) {
      log(`signalr ${signalR.LogLevel[level]}`, message);
    }
  },
};

function build(input, tap) {
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(hubUrl(input.wsUrl), {
      transport: signalR.HttpTransportType.WebSockets,
      skipNegotiation: false,
      // In Node the client sends these on the negotiate POST and on the WebSocket upgrade.
      headers: { Origin: input.origin },
      WebSocket: tappedWebSocket(tap),
    })
    .withHubProtocol(new signalR.JsonHubProtocol())
    // The server closes a client silent for `missed` intervals; the client's default
    // keep-alive (15 s) is far longer, so ping at half the server's interval.
    .withKeepAliveInterval(Math.max(1, Math.floor(input.heartbeatMs / 2)))
    .withServerTimeout(Math.max(6 * input.heartbeatMs, 5000))
    .configureLogging(stderrLogger)
    .build();
  const closes = [];
  const { changed, until } = watcher({ closes }, STEP_TIMEOUT_MS);
  connection.onclose((error) => {
    closes.push(error === undefined ? null : describe(error));
    changed();
  });
  // The first close: null, or the error it came with.
  const closed = () => until('connection close', (ev) => (ev.closes.length ? ev.closes[0] : undefined));
  return { connection, closes, closed };
}

run('@microsoft/signalr', async (ctx) => {
  const { input } = ctx;

  // 1. negotiate, WebSocket, handshake {"protocol":"json","version":1} -> {}
  const tap = { pings: 0, urls: [] };
  const hub = build(input, tap);
  await within(STEP_TIMEOUT_MS, 'negotiate, connect and handshake', hub.connection.start()).catch((e) => {
    throw new Error(`start failed: ${describe(e)}`);
  });
  ctx.step('started', {
    connection_id: hub.connection.connectionId,
    websocket_url: (tap.urls[0] || '').replace(/([?&]id=)[^&]*/, '$1…'),
  });

  // 2. ticket, then Authenticate(ticket) -> {"type":"auth_ok"}. The ticket is bought after
  //    the handshake, as an app authenticating in its first invocation would: its short TTL
  //    then covers one invocation, not negotiate + upgrade + handshake.
  const ticket = await fetchTicket(input);
  ctx.step('ticket');
  const auth = await within(STEP_TIMEOUT_MS, 'Authenticate', hub.connection.invoke('Authenticate', ticket)).catch((e) => {
    throw new Error(`authenticated connection refused: ${describe(e)}`);
  });
  if (!auth || auth.type !== 'auth_ok') {
    throw new Error(`Authenticate: expected {"type":"auth_ok"}, got ${describe(auth)}`);
  }
  ctx.step('authenticated', { auth });

  // 3. valid payment -> completion with result {"type":"ack"}
  const ack = await within(STEP_TIMEOUT_MS, 'Pay(valid)', hub.connection.invoke('Pay', input.valid.value));
  if (!ack || ack.type !== 'ack') {
    throw new Error(`valid payment: expected {"type":"ack"}, got ${describe(ack)}`);
  }
  ctx.step('valid_payment_acknowledged', { reply: ack });

  // 4. invalid payment -> completion with error (a HubException on the server side)
  const refusal = await within(
    STEP_TIMEOUT_MS,
    'Pay(invalid)',
    hub.connection.invoke('Pay', input.invalid.value).then(
      (result) => ({ result }),
      (e) => ({ error: e.message }),
    ),
  );
  if (!('error' in refusal)) {
    throw new Error(`invalid payment: expected a completion with an error, got result ${describe(refusal.result)}`);
  }
  if (hub.connection.state !== signalR.HubConnectionState.Connected) {
    throw new Error(`invalid payment: the connection did not survive the refusal (${hub.connection.state}): ${describe(hub.closes[0])}`);
  }
  ctx.step('invalid_payment_rejected', { error: refusal.error });

  // 5. {"type":6} pings from the server (the client pings back) over 3 heartbeat intervals
  const before = tap.pings;
  const windowMs = heartbeatWindow(input);
  await sleep(windowMs);
  if (hub.connection.state !== signalR.HubConnectionState.Connected) {
    throw new Error(`connection lost during the heartbeat window: ${describe(hub.closes[0])}`);
  }
  if (tap.pings - before < 1) {
    throw new Error(`no SignalR ping in ${windowMs} ms`);
  }
  ctx.step('heartbeat', { signalr_pings: tap.pings - before, window_ms: windowMs });

  // 6. clean disconnect: close message, then the socket closes
  await within(STEP_TIMEOUT_MS, 'stop', hub.connection.stop());
  const closeError = await hub.closed();
  if (closeError !== null) {
    throw new Error(`stop: the connection closed with an error: ${closeError}`);
  }
  ctx.step('disconnected', { state: hub.connection.state });

  // negative: Authenticate(bogus) -> close message {"type":7,"error":"invalid_ticket"}, close
  const bogusTap = { pings: 0, urls: [] };
  const bogus = build(input, bogusTap);
  await within(STEP_TIMEOUT_MS, 'negotiate, connect and handshake (bogus ticket)', bogus.connection.start());
  const invocation = await within(
    STEP_TIMEOUT_MS,
    'Authenticate(bogus)',
    bogus.connection.invoke('Authenticate', `bogus-${Math.random().toString(16).slice(2)}`).then(
      (result) => ({ accepted: result }),
      (e) => ({ failed: e.message }),
    ),
  );
  if ('accepted' in invocation) {
    await bogus.connection.stop();
    throw new Error(`a bogus ticket was accepted: Authenticate returned ${describe(invocation.accepted)}`);
  }
  const closeReason = await bogus.closed().catch((e) => `not closed: ${describe(e)}`);
  await bogus.connection.stop();
  ctx.step('bogus_ticket_refused', { invocation_error: invocation.failed, close: closeReason });
});
