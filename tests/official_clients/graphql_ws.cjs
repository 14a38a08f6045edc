// A real graphql-transport-ws session against the reference server
// (`serve --dialect graphql-transport-ws`) with the official client, graphql-ws 6.4.2
// (`createClient`, the `ws` package as its WebSocket). See README.md.
//
// env: WS_URL (wss://HOST:PORT/ws), TICKET_URL, API_TOKEN, ORIGIN, VALID, INVALID, HEARTBEAT_MS;
//      NODE_PATH to a node_modules holding graphql-ws and ws; NODE_EXTRA_CA_CERTS to the CA.
'use strict';

const WebSocket = require('ws');
const { createClient } = require('graphql-ws');
const { run, fetchTicket, sleep, within, watcher, describe, log, heartbeatWindow } = require('./common.cjs');

const STEP_TIMEOUT_MS = 5000;
const PAY = 'mutation Pay($input: PaymentInput!) { pay(input: $input) { type reference } }';

// graphql-ws constructs its socket as `new webSocketImpl(url, "graphql-transport-ws")`; the
// Origin header rides the `ws` options of a subclass.
function originWebSocket(origin) {
  return class OriginWebSocket extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols, { headers: { Origin: origin } });
    }
  };
}

// A non-lazy client (one connection for the whole session, opened at once) that does not
// retry; `events` sees what the client emits, `until(what, predicate)` waits for them.
function connect(input, ticket) {
  const events = { opened: [], connected: [], closed: [], errors: [], socketErrors: [] };
  const { changed, until } = watcher(events, STEP_TIMEOUT_MS);
  const client = createClient({
    url: input.wsUrl,
    webSocketImpl: originWebSocket(input.origin),
    connectionParams: { ticket },
    lazy: false,
    retryAttempts: 0,
    onNonLazyError: (e) => {
      events.errors.push(e);
      changed();
    },
    on: {
      opened: (socket) => {
        events.opened.push(socket);
        changed();
      },
      connected: (socket, payload) => {
        events.connected.push({ socket, payload });
        changed();
      },
      closed: (event) => {
        events.closed.push(event);
        log('closed', describe(event));
        changed();
      },
      error: (e) => {
        events.socketErrors.push(describe(e));
        log('socket error', describe(e));
      },
    },
  });
  return { client, events, until };
}

// Runs the Pay mutation as one graphql-transport-ws `subscribe`; resolves to every `next`
// payload (until `complete`), rejects with the `error` payload.
async function pay(client, payment) {
  const results = [];
  for await (const result of client.iterate({ query: PAY, variables: { input: payment } })) {
    results.push(result);
  }
  return results;
}

function closeSummary(event) {
  return event && typeof event === 'object' && 'code' in event
    ? { code: event.code, reason: event.reason }
    : { error: describe(event) };
}

run('graphql-ws', async (ctx) => {
  const { input } = ctx;

  // 1. ticket
  const ticket = await fetchTicket(input);
  ctx.step('ticket');

  // 2. connection_init {"ticket"} -> connection_ack
  const session = connect(input, ticket);
  const acked = await session.until('connection_ack', (ev) => {
    if (ev.connected.length) return ev.connected[0];
    if (ev.closed.length) {
      const why = ev.socketErrors.length ? ` (${ev.socketErrors.join('; ')})` : '';
      throw new Error(`closed before connection_ack: ${describe(ev.closed[0])}${why}`);
    }
    return undefined;
  }).catch((e) => {
    throw new Error(`authenticated connection refused: ${describe(e)}`);
  });
  const socket = acked.socket;
  ctx.step('connected', { subprotocol: socket.protocol, ack_payload: acked.payload });

  // 3. valid payment -> next {"data":{"pay":{"type":"ack"}}}, complete
  const accepted = await within(STEP_TIMEOUT_MS, 'valid payment result', pay(session.client, input.valid.value));
  const first = accepted[0];
  if (accepted.length !== 1 || first.errors || !first.data || !first.data.pay || first.data.pay.type !== 'ack') {
    throw new Error(`valid payment: expected one next {"data":{"pay":{"type":"ack"}}} then complete, got ${describe(accepted)}`);
  }
  ctx.step('valid_payment_acknowledged', { reply: first });

  // 4. invalid payment -> error [GraphQLError] (or a next carrying errors)
  let rejection;
  try {
    const results = await within(STEP_TIMEOUT_MS, 'invalid payment result', pay(session.client, input.invalid.value));
    const withErrors = results.find((r) => Array.isArray(r.errors) && r.errors.length);
    if (!withErrors) {
      throw new Error(`invalid payment: expected an error, got ${describe(results)}`);
    }
    rejection = { via: 'next', errors: withErrors.errors };
  } catch (e) {
    if (!Array.isArray(e)) throw e;
    rejection = { via: 'error', errors: e };
  }
  ctx.step('invalid_payment_rejected', {
    via: rejection.via,
    codes: rejection.errors.map((err) => err.extensions && err.extensions.code),
    errors: rejection.errors,
  });

  // 5. the server's WebSocket pings (answered by `ws`) over 3 heartbeat intervals
  let pings = 0;
  socket.on('ping', () => {
    pings += 1;
  });
  const windowMs = heartbeatWindow(input);
  await sleep(windowMs);
  if (socket.readyState !== WebSocket.OPEN || session.events.closed.length) {
    throw new Error(`closed during the heartbeat window: ${describe(session.events.closed[0])}`);
  }
  if (pings < 1) {
    throw new Error(`no WebSocket ping in ${windowMs} ms`);
  }
  ctx.step('heartbeat', { websocket_pings: pings, window_ms: windowMs });

  // 6. clean disconnect: close 1000
  await session.client.dispose();
  const closed = await session.until('close after dispose', (ev) => ev.closed[0]);
  if (closed.code !== 1000) {
    throw new Error(`dispose: expected close 1000, got ${describe(closed)}`);
  }
  ctx.step('disconnected', closeSummary(closed));

  // negative: a bogus ticket -> close 4403 Forbidden
  const bogus = connect(input, `bogus-${Math.random().toString(16).slice(2)}`);
  const outcome = await bogus.until('refusal of a bogus ticket', (ev) => {
    if (ev.connected.length) return { accepted: true };
    if (ev.closed.length) return { closed: ev.closed[0] };
    return undefined;
  });
  await bogus.client.dispose();
  if (outcome.accepted) {
    throw new Error('a bogus ticket was accepted (connection_ack)');
  }
  if (outcome.closed.code !== 4403) {
    throw new Error(`bogus ticket: expected close 4403, got ${describe(outcome.closed)}`);
  }
  ctx.step('bogus_ticket_refused', closeSummary(outcome.closed));
});
