// Shared plumbing of the official-client scripts (socketio.cjs, graphql_ws.cjs, stomp.cjs,
// signalr.cjs): the inputs the Rust test passes in the environment, the ticket request, waiting
// on a client's events, the step log, the overall deadline and the one-line JSON verdict.
//
// Contract of every script: stdout carries exactly one line, the verdict, printed last:
//   {"ok":true,"steps":[...]}                  exit 0
//   {"ok":false,"error":"...","steps":[...]}   exit 1 (any failure, or the overall deadline)
// Diagnostics go to stderr.
'use strict';

const DEFAULT_TIMEOUT_MS = 15000;

function required(name) {
  const value = process.env[name];
  if (value === undefined || value === '') {
    throw new Error(`environment variable ${name} is required`);
  }
  return value;
}

// A payment as the clients send it: the parsed JSON value (a text that is not JSON is sent as
// a string, which violates the schema too).
function payment(name) {
  const text = required(name);
  try {
    return { text, value: JSON.parse(text) };
  } catch (_) {
    return { text, value: text };
  }
}

/** The inputs of a session, read from the environment. */
function inputs() {
  const heartbeatMs = Number(required('HEARTBEAT_MS'));
  if (!Number.isFinite(heartbeatMs) || heartbeatMs <= 0) {
    throw new Error(`HEARTBEAT_MS must be a positive number of milliseconds, got ${process.env.HEARTBEAT_MS}`);
  }
  return {
    wsUrl: required('WS_URL'),
    ticketUrl: required('TICKET_URL'),
    apiToken: required('API_TOKEN'),
    origin: required('ORIGIN'),
    valid: payment('VALID'),
    invalid: payment('INVALID'),
    heartbeatMs,
  };
}

/** `POST TICKET_URL` with the bearer API token; resolves to the ticket string. */
async function fetchTicket(input) {
  const response = await fetch(input.ticketUrl, {
    method: 'POST',
    headers: { Authorization: `Bearer ${input.apiToken}` },
  });
  const body = await response.text();
  if (response.status !== 200) {
    throw new Error(`ticket endpoint answered ${response.status}: ${body.slice(0, 200)}`);
  }
  let ticket;
  try {
    ticket = JSON.parse(body).ticket;
  } catch (e) {
    throw new Error(`ticket endpoint answered non-JSON: ${body.slice(0, 200)}`);
  }
  if (typeof ticket !== 'string' || ticket === '') {
    throw new Error(`ticket endpoint answered no ticket: ${body.slice(0, 200)}`);
  }
  return ticket;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Rejects with `what` when `promise` has not settled within `ms`. */
function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * A record of what a client emits, to wait on: call `changed()` after every update of `events`;
 * `until(what, predicate)` resolves with `predicate(events)` once that is not undefined (checked
 * at once and on every change), rejects when it throws, or after `ms` (naming `what`).
 */
function watcher(events, ms) {
  const waiters = new Set();
  const changed = () => {
    for (const waiter of [...waiters]) waiter();
  };
  const until = (what, predicate) => {
    let waiter;
    const settled = new Promise((resolve, reject) => {
      waiter = () => {
        try {
          const value = predicate(events);
          if (value === undefined) return;
          resolve(value);
        } catch (e) {
          reject(e);
        }
        waiters.delete(waiter);
      };
      waiters.add(waiter);
      waiter();
    });
    return within(ms, what, settled).finally(() => waiters.delete(waiter));
  };
  return { changed, until };
}

function describe(error) {
  if (error instanceof Error) {
    const message = error.message || String(error);
    // undici's "fetch failed" keeps the reason (TLS, connection refused, ...) in `cause`.
    return error.cause ? `${message}: ${describe(error.cause)}` : message;
  }
  if (error && typeof error === 'object') {
    if ('code' in error && 'reason' in error) return `close ${error.code} ${error.reason}`;
    if (typeof error.message === 'string' && error.message) return error.message;
    if (error.error instanceof Error) return error.error.message;
    try {
      return JSON.stringify(error);
    } catch (_) {
      /* fall through */
    }
  }
  return String(error);
}

function log(...parts) {
  process.stderr.write(`[${new Date().toISOString()}] ${parts.map((p) => (typeof p === 'string' ? p : describe(p))).join(' ')}\n`);
}

/**
 * Runs `session(ctx)` under the overall deadline and prints the verdict. `ctx.step(name,
 * detail)` records a completed step; `ctx.input` holds the inputs; `ctx.deadline` is the
 * overall budget in ms. The deadline is 15 s (TIMEOUT_MS overrides it), stretched to
 * 3 × HEARTBEAT_MS + 10 s when the heartbeat wait alone would not fit.
 */
function run(name, session) {
  const steps = [];
  let finished = false;
  const finish = (ok, error) => {
    if (finished) return;
    finished = true;
    const verdict = ok ? { ok: true, client: name, steps } : { ok: false, client: name, error, steps };
    process.stdout.write(`${JSON.stringify(verdict)}\n`, () => process.exit(ok ? 0 : 1));
  };
  let input;
  try {
    input = inputs();
  } catch (e) {
    finish(false, describe(e));
    return;
  }
  const deadline = Math.max(Number(process.env.TIMEOUT_MS) || DEFAULT_TIMEOUT_MS, 3 * input.heartbeatMs + 10000);
  setTimeout(() => finish(false, `overall timeout of ${deadline} ms (after ${steps.length} steps)`), deadline);
  process.on('uncaughtException', (e) => finish(false, `uncaught: ${describe(e)}`));
  process.on('unhandledRejection', (e) => finish(false, `unhandled rejection: ${describe(e)}`));
  const ctx = {
    input,
    deadline,
    step(stepName, detail) {
      const entry = detail === undefined ? { step: stepName } : { step: stepName, ...detail };
      steps.push(entry);
      log('step', JSON.stringify(entry));
    },
  };
  session(ctx).then(
    () => finish(true),
    (e) => finish(false, describe(e)),
  );
}

/** A short fixed reference for a heartbeat window: 3 × HEARTBEAT_MS. */
function heartbeatWindow(input) {
  return 3 * input.heartbeatMs;
}

module.exports = { inputs, fetchTicket, sleep, within, watcher, describe, log, run, heartbeatWindow };
