// A real STOMP session against the reference server (`serve --dialect stomp`) with the official
// client, @stomp/stompjs 7.5.0 (`Client` with a `webSocketFactory` building a `ws` WebSocket).
// See README.md.
//
// env: WS_URL (wss://HOST:PORT/ws), TICKET_URL, API_TOKEN, ORIGIN, VALID, INVALID, HEARTBEAT_MS;
//      NODE_PATH to a node_modules holding @stomp/stompjs and ws; NODE_EXTRA_CA_CERTS to the CA.
'use strict';

const WebSocket = require('ws');
const { Client, Versions } = require('@stomp/stompjs');
const { run, fetchTicket, sleep, within, watcher, describe, log, heartbeatWindow } = require('./common.cjs');

const STEP_TIMEOUT_MS = 5000;
const REPLIES = '/user/queue/replies';
const PAY = '/app/pay';

// One STOMP client whose callbacks feed `events`; `until(what, predicate)` waits for them.
function connect(input, ticket) {
  const events = {
    connected: null,
    errors: [],
    closes: [],
    socketErrors: [],
    heartbeats: 0,
    disconnectReceipt: null,
    unhandled: [],
  };
  const { changed, until } = watcher(events, STEP_TIMEOUT_MS);
  const client = new Client({
    // The STOMP subprotocols (v12.stomp, v11.stomp, v10.stomp) and the Origin header.
    webSocketFactory: () =>
      new WebSocket(input.wsUrl, Versions.default.protocolVersions(), { headers: { Origin: input.origin } }),
    connectHeaders: { passcode: ticket },
    // Ask for the server's period both ways, so the negotiated heart-beat (the max of both
    // sides, STOMP 1.2 "Heart-beating") is HEARTBEAT_MS and not stompjs's 10 s default.
    heartbeatIncoming: input.heartbeatMs,
    heartbeatOutgoing: input.heartbeatMs,
    reconnectDelay: 0,
    debug: (msg) => log('stomp', msg),
    onConnect: (frame) => {
      events.connected = frame;
      changed();
    },
    onStompError: (frame) => {
      events.errors.push(frame);
      changed();
    },
    onWebSocketClose: (event) => {
      events.closes.push({ code: event.code, reason: event.reason, wasClean: event.wasClean });
      changed();
    },
    onWebSocketError: (event) => {
      events.socketErrors.push(describe(event));
      log('websocket error', describe(event));
    },
    onHeartbeatReceived: () => {
      events.heartbeats += 1;
    },
    onDisconnect: (frame) => {
      events.disconnectReceipt = frame;
      changed();
    },
    onUnhandledMessage: (frame) => {
      events.unhandled.push(`MESSAGE ${JSON.stringify(frame.headers)} ${frame.body}`);
    },
    onUnhandledReceipt: (frame) => {
      events.unhandled.push(`RECEIPT ${JSON.stringify(frame.headers)}`);
    },
    onUnhandledFrame: (frame) => {
      events.unhandled.push(`${frame.command} ${JSON.stringify(frame.headers)}`);
    },
  });
  client.activate();
  return { client, events, until };
}

function errorSummary(frame) {
  return { message: frame.headers.message, body: frame.body };
}

// SEND to /app/pay with a receipt; resolves with the MESSAGE the subscription gets and the
// RECEIPT.
async function pay(session, inbox, body, receipt) {
  const receipted = new Promise((resolve) => session.client.watchForReceipt(receipt, resolve));
  const replied = inbox.next();
  session.client.publish({
    destination: PAY,
    body,
    headers: { 'content-type': 'application/json', receipt },
  });
  const failed = session.until('no ERROR frame', (ev) => {
    if (ev.errors.length) throw new Error(`ERROR frame: ${describe(errorSummary(ev.errors[0]))}`);
    if (ev.closes.length) throw new Error(`connection closed: ${describe(ev.closes[0])}`);
    return undefined;
  });
  failed.catch(() => {});
  const [message, receiptFrame] = await within(
    STEP_TIMEOUT_MS,
    `MESSAGE on ${REPLIES} and RECEIPT ${receipt}`,
    Promise.race([Promise.all([replied, receipted]), failed]),
  );
  let reply;
  try {
    reply = JSON.parse(message.body);
  } catch (_) {
    throw new Error(`MESSAGE body is not JSON: ${message.body}`);
  }
  return { reply, message, receiptFrame };
}

// One payment step: SEND `body`, then require the MESSAGE reply {"type": `type`} (and the
// RECEIPT); records step `step` with the reply and the receipt id.
async function payStep(ctx, session, inbox, { what, body, receipt, type, step }) {
  const result = await pay(session, inbox, body, receipt);
  if (!result.reply || result.reply.type !== type) {
    throw new Error(`${what}: expected MESSAGE {"type":"${type}"}, got ${result.message.body}`);
  }
  ctx.step(step, {
    reply: result.reply,
    receipt: result.receiptFrame.headers['receipt-id'],
  });
}

// The MESSAGE frames of a subscription, in order.
function inboxOf(session, destination) {
  const queue = [];
  const takers = [];
  const subscription = session.client.subscribe(destination, (message) => {
    const taker = takers.shift();
    if (taker) taker(message);
    else queue.push(message);
  });
  return {
    subscription,
    next: () => (queue.length ? Promise.resolve(queue.shift()) : new Promise((resolve) => takers.push(resolve))),
  };
}

run('@stomp/stompjs', async (ctx) => {
  const { input } = ctx;

  // 1. ticket
  const ticket = await fetchTicket(input);
  ctx.step('ticket');

  // 2. CONNECT passcode:<ticket> -> CONNECTED; SUBSCRIBE /user/queue/replies
  const session = connect(input, ticket);
  const connected = await session
    .until('CONNECTED', (ev) => {
      if (ev.connected) return ev.connected;
      if (ev.errors.length) throw new Error(`ERROR frame: ${describe(errorSummary(ev.errors[0]))}`);
      if (ev.closes.length) {
        const why = ev.socketErrors.length ? ` (${ev.socketErrors.join('; ')})` : '';
        throw new Error(`closed: ${describe(ev.closes[0])}${why}`);
      }
      return undefined;
    })
    .catch((e) => {
      throw new Error(`authenticated connection refused: ${describe(e)}`);
    });
  const inbox = inboxOf(session, REPLIES);
  ctx.step('connected', {
    subprotocol: session.client.webSocket.protocol,
    version: connected.headers.version,
    heart_beat: connected.headers['heart-beat'],
    subscription: inbox.subscription.id,
  });

  // 3. valid payment -> MESSAGE {"type":"ack"} + RECEIPT
  await payStep(ctx, session, inbox, {
    what: 'valid payment',
    body: input.valid.text,
    receipt: 'pay-valid',
    type: 'ack',
    step: 'valid_payment_acknowledged',
  });

  // 4. invalid payment -> MESSAGE {"type":"error"} + RECEIPT
  await payStep(ctx, session, inbox, {
    what: 'invalid payment',
    body: input.invalid.text,
    receipt: 'pay-invalid',
    type: 'error',
    step: 'invalid_payment_rejected',
  });

  // 5. EOL heart-beats from the server (stompjs sends its own) over 3 heartbeat intervals
  const before = session.events.heartbeats;
  const windowMs = heartbeatWindow(input);
  await sleep(windowMs);
  if (!session.client.connected || session.events.closes.length || session.events.errors.length) {
    throw new Error(
      `connection lost during the heartbeat window: ${describe(session.events.closes[0] || session.events.errors[0] || 'not connected')}`,
    );
  }
  const beats = session.events.heartbeats - before;
  if (beats < 1) {
    throw new Error(`no STOMP heart-beat in ${windowMs} ms`);
  }
  ctx.step('heartbeat', { heart_beats: beats, window_ms: windowMs });

  // 6. clean disconnect: DISCONNECT receipt:close-N -> RECEIPT, then the socket closes
  await within(STEP_TIMEOUT_MS, 'DISCONNECT and socket close', session.client.deactivate());
  if (!session.events.disconnectReceipt) {
    throw new Error(`DISCONNECT was not answered with a RECEIPT (socket closed: ${describe(session.events.closes[0])})`);
  }
  ctx.step('disconnected', {
    receipt: session.events.disconnectReceipt.headers['receipt-id'],
    close: session.events.closes[0],
  });
  if (session.events.unhandled.length) {
    log('unhandled frames', session.events.unhandled.join(' | '));
  }

  // negative: a bogus ticket -> ERROR message:invalid_ticket (then close)
  const bogus = connect(input, `bogus-${Math.random().toString(16).slice(2)}`);
  const outcome = await bogus.until('refusal of a bogus ticket', (ev) => {
    if (ev.connected) return { accepted: true };
    if (ev.errors.length) return { error: ev.errors[0] };
    if (ev.closes.length) return { closed: ev.closes[0] };
    return undefined;
  });
  if (outcome.accepted) {
    await bogus.client.deactivate({ force: true });
    throw new Error('a bogus ticket was accepted (CONNECTED)');
  }
  if (!outcome.error) {
    throw new Error(`bogus ticket: expected an ERROR frame, the socket closed first: ${describe(outcome.closed)}`);
  }
  const closed = await bogus
    .until('close after ERROR', (ev) => ev.closes[0])
    .catch(() => null);
  await bogus.client.deactivate({ force: true });
  ctx.step('bogus_ticket_refused', { ...errorSummary(outcome.error), close: closed });
});
