// Interop target: a payment endpoint on Node `ws` behind express + express-session, the shape of
// the ws repository's examples/express-session-parse/index.js: `POST /login` puts a userId in
// the session (here only when the JSON body carries {"token": INTEROP_TOKEN}), and the http
// server's 'upgrade' handler runs the same session parser on the upgrade request, answers
// `HTTP/1.1 401 Unauthorized` when the session has no userId, otherwise `wss.handleUpgrade`.
// The session cookie is the only credential of the WebSocket.
//
// Defaults everywhere: express-session's MemoryStore and DEFAULT cookie options
// (`saveUninitialized: false`, `resave: false` as in the example; only the secret is given),
// `new WebSocketServer({ clientTracking: false, noServer: true })` as in the example (every
// other option at its default: maxPayload, perMessageDeflate, no pings), no Origin check.
// Each message is parsed with JSON.parse and no error handling of its own, as in node_ws: what
// happens on an exception thrown in a 'message' listener is the behaviour under test.
// The example's console.log progress lines are left out (errors still go to stderr), so that
// stdout carries only `PORT <n>`.
//
// usage: INTEROP_TOKEN=secret node server.js   -> prints "PORT <n>"
//        POST http://127.0.0.1:<n>/login {"token":"secret"} -> Set-Cookie: connect.sid=...
//        ws://127.0.0.1:<n>/ws with that cookie
// (NODE_PATH must point at a node_modules that holds express, express-session and ws;
// PORT=<n> listens on <n>, so that a supervisor can restart it on the same port.)
'use strict';

const session = require('express-session');
const express = require('express');
const crypto = require('crypto');
const http = require('http');

const { WebSocketServer } = require('ws');

const TOKEN = process.env.INTEROP_TOKEN;

function onSocketError(err) {
  console.error(err);
}

const app = express();
const map = new Map();

//
// We need the same instance of the session parser in express and
// WebSocket server.
//
const sessionParser = session({
  saveUninitialized: false,
  secret: process.env.SESSION_SECRET || '$eCuRiTy',
  resave: false
});

app.use(sessionParser);
app.use(express.json());

app.post('/login', function (req, res) {
  //
  // "Log in" user and set userId to session.
  //
  if (!req.body || req.body.token !== TOKEN) {
    res.status(401).send({ result: 'ERROR', message: 'Invalid token' });
    return;
  }
  const id = crypto.randomUUID();

  req.session.userId = id;
  res.send({ result: 'OK', message: 'Session updated' });
});

app.delete('/logout', function (request, response) {
  const ws = map.get(request.session.userId);

  request.session.destroy(function () {
    if (ws) ws.close();

    response.send({ result: 'OK', message: 'Session destroyed' });
  });
});

//
// Create an HTTP server.
//
const server = http.createServer(app);

//
// Create a WebSocket server completely detached from the HTTP server.
//
const wss = new WebSocketServer({ clientTracking: false, noServer: true });

server.on('upgrade', function (request, socket, head) {
  socket.on('error', onSocketError);

  const { pathname } = new URL(request.url, 'ws://base.url');
  if (pathname !== '/ws') {
    socket.destroy();
    return;
  }

  sessionParser(request, {}, () => {
    if (!request.session.userId) {
      socket.write('HTTP/1.1 401 Unauthorized\r\n\r\n');
      socket.destroy();
      return;
    }

    socket.removeListener('error', onSocketError);

    wss.handleUpgrade(request, socket, head, function (ws) {
      wss.emit('connection', ws, request);
    });
  });
});

wss.on('connection', function (ws, request) {
  const userId = request.session.userId;

  map.set(userId, ws);

  ws.on('error', console.error);

  ws.on('message', function (data) {
    const msg = JSON.parse(data);
    if (msg.type === 'payment') {
      ws.send(JSON.stringify({ type: 'ack', reference: msg.reference }));
    } else {
      ws.send(JSON.stringify({ type: 'error', reason: 'unknown type' }));
    }
  });

  ws.on('close', function () {
    map.delete(userId);
  });
});

//
// Start the server.
//
server.listen(Number(process.env.PORT || 0), '127.0.0.1', function () {
  process.stdout.write(`PORT ${server.address().port}\n`);
});
