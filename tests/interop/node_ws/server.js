// Interop target: a payment endpoint on Node `ws`, default settings, no authentication
// (like the examples of the ws README). Each message is parsed with JSON.parse and no error
// handling of its own: whatever happens on an exception thrown in a 'message' listener is the
// behaviour under test. Every WebSocketServer option except port/host/path is left at its
// default (maxPayload, perMessageDeflate, verifyClient, ...).
//
// usage: INTEROP_TOKEN=unused node server.js   -> prints "PORT <n>", serves ws://127.0.0.1:<n>/ws
// (NODE_PATH must point at a node_modules that holds ws.)
'use strict';

const { WebSocketServer } = require('ws');

// PORT lets a supervisor restart the server on the port its clients know (as systemd or a
// container orchestrator would after a crash); 0 picks a free one.
const wss = new WebSocketServer({ port: Number(process.env.PORT || 0), host: '127.0.0.1', path: '/ws' });

wss.on('connection', function connection(ws) {
  ws.on('error', console.error);

  ws.on('message', function message(data) {
    const msg = JSON.parse(data);
    if (msg.type === 'payment') {
      ws.send(JSON.stringify({ type: 'ack', reference: msg.reference }));
    } else {
      ws.send(JSON.stringify({ type: 'error', reason: 'unknown type' }));
    }
  });
});

wss.on('listening', function listening() {
  process.stdout.write(`PORT ${wss.address().port}\n`);
});
