// A real Socket.IO session against the reference server (`serve --dialect socketio`) with the
// official client, socket.io-client 4.8.4 (Engine.IO v4 over the `ws` package). See README.md.
//
// env: WS_URL (wss://HOST:PORT/socket.io/ or .../ws), TICKET_URL, API_TOKEN, ORIGIN, VALID,
//      INVALID, HEARTBEAT_MS; NODE_PATH to a node_modules holding socket.io-client;
//      NODE_EXTRA_CA_CERTS to the server's CA.
'use strict';

const { io } = require('socket.io-client');
const { run, fetchTicket, sleep, within, describe, log, heartbeatWindow } = require('./common.cjs');

const STEP_TIMEOUT_MS = 5000;

// io(url) reads the path of its URL as the Socket.IO *namespace*; the Engine.IO path goes in
// the `path` option. Query parameters of WS_URL other than EIO/transport (which the client
// adds itself) are kept.
function endpoint(wsUrl) {
  const url = new URL(wsUrl);
  const path = url.pathname && url.pathname !== '/' ? url.pathname : '/socket.io/';
  const query = {};
  for (const [k, v] of url.searchParams) {
    if (k !== 'EIO' && k !== 'transport') query[k] = v;
  }
  return { base: `${url.protocol}//${url.host}`, path, query };
}

function connect(input, ticket) {
  const { base, path, query } = endpoint(input.wsUrl);
  return io(base, {
    path,
    // engine.io-client appends "/" to the path by default: keep WS_URL's path as given.
    addTrailingSlash: path.endsWith('/'),
    query,
    transports: ['websocket'],
    upgrade: false,
    extraHeaders: { Origin: input.origin },
    auth: { ticket },
    reconnection: false,
    forceNew: true,
    timeout: STEP_TIMEOUT_MS,
  });
}

// Resolves on CONNECT (40), rejects on CONNECT_ERROR (44) or a transport failure.
function connected(socket) {
  return new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
}

async function pay(socket, payment) {
  return socket.timeout(STEP_TIMEOUT_MS).emitWithAck('pay', payment);
}

run('socket.io-client', async (ctx) => {
  const { input } = ctx;

  // 1. ticket
  const ticket = await fetchTicket(input);
  ctx.step('ticket');

  // 2. connect, authenticate with the CONNECT packet's auth object
  const socket = connect(input, ticket);
  let pings = 0;
  let disconnectReason = null;
  socket.io.on('ping', () => {
    pings += 1;
  });
  socket.on('disconnect', (reason, details) => {
    disconnectReason = reason;
    log('disconnect', reason, details === undefined ? '' : describe(details));
  });
  try {
    await within(STEP_TIMEOUT_MS, 'Socket.IO CONNECT', connected(socket));
  } catch (e) {
    const detail = e && e.description ? ` (${describe(e.description)})` : '';
    throw new Error(`authenticated connection refused: ${describe(e)}${detail}`);
  }
  ctx.step('connected', { sid: socket.id, transport: socket.io.engine.transport.name });

  // 3. valid payment -> ACK [{"type":"ack",..}]
  const ack = await pay(socket, input.valid.value);
  if (!ack || ack.type !== 'ack') {
    throw new Error(`valid payment: expected an ack {"type":"ack"}, got ${describe(ack)}`);
  }
  ctx.step('valid_payment_acknowledged', { reply: ack });

  // 4. invalid payment -> ACK [{"type":"error",..}]
  const refusal = await pay(socket, input.invalid.value);
  if (!refusal || refusal.type !== 'error') {
    throw new Error(`invalid payment: expected an ack {"type":"error"}, got ${describe(refusal)}`);
  }
  ctx.step('invalid_payment_rejected', { reply: refusal });

  // 5. Engine.IO pings (answered with pongs by the client) over 3 heartbeat intervals
  const before = pings;
  const windowMs = heartbeatWindow(input);
  await sleep(windowMs);
  if (!socket.connected) {
    throw new Error(`disconnected during the heartbeat window: ${disconnectReason}`);
  }
  if (pings - before < 1) {
    throw new Error(`no Engine.IO ping in ${windowMs} ms`);
  }
  ctx.step('heartbeat', { engine_io_pings: pings - before, window_ms: windowMs, total_pings: pings });

  // 6. clean disconnect: DISCONNECT (41), then the transport closes
  const managerClosed = new Promise((resolve) => socket.io.once('close', resolve));
  socket.disconnect();
  const closeReason = await within(STEP_TIMEOUT_MS, 'transport close after disconnect', managerClosed);
  ctx.step('disconnected', { reason: disconnectReason, transport: describe(closeReason) });

  // negative: a bogus ticket is refused with CONNECT_ERROR
  const bogus = connect(input, `bogus-${Math.random().toString(16).slice(2)}`);
  let refusedWith;
  try {
    await within(STEP_TIMEOUT_MS, 'refusal of a bogus ticket', connected(bogus));
  } catch (e) {
    refusedWith = e;
  } finally {
    bogus.disconnect();
  }
  if (refusedWith === undefined) {
    throw new Error('a bogus ticket was accepted (Socket.IO CONNECT)');
  }
  // A CONNECT_ERROR packet from the server, not a failed upgrade or a timeout (which the
  // client reports through connect_error too).
  if (refusedWith.type === 'TransportError' || /^timed out|^timeout$/.test(refusedWith.message)) {
    throw new Error(`bogus ticket: expected a Socket.IO CONNECT_ERROR, got ${refusedWith.type || 'error'}: ${refusedWith.message}${refusedWith.description ? ` (${describe(refusedWith.description)})` : ''}`);
  }
  ctx.step('bogus_ticket_refused', { connect_error: refusedWith.message, data: refusedWith.data });
});
