// Interop target: a payment endpoint on Socket.IO 4.8.4 (Engine.IO 6.6, ws 8), written the way
// the Socket.IO docs write a server: `new Server(httpServer)` with every option at its default
// (pingInterval 25000, pingTimeout 20000, connectTimeout 45000, maxHttpBufferSize 1e6, no
// allowRequest / Origin check, path /socket.io/, cookie off, perMessageDeflate off).
// Authentication is the docs' middleware on the handshake's `auth` object (the CONNECT packet
// `40{"token":...}`); business messages are the event `pay` with an acknowledgement callback.
// The handler reads the payment like the docs' examples: no schema validation, no guard on the
// arguments (an event without an ack id, or without a payment, throws in the handler: whatever
// happens then is the behaviour under test).
//
// usage: INTEROP_TOKEN=... node server.js   -> prints "PORT <n>", serves
//        ws://127.0.0.1:<n>/socket.io/?EIO=4&transport=websocket
// (NODE_PATH must point at a node_modules that holds socket.io.)
'use strict';

const { createServer } = require('http');
const { Server } = require('socket.io');

const httpServer = createServer();
const io = new Server(httpServer);

// https://socket.io/docs/v4/middlewares/#sending-credentials
io.use((socket, next) => {
  if (socket.handshake.auth.token === process.env.INTEROP_TOKEN) {
    next();
  } else {
    next(new Error('unauthorized'));
  }
});

io.on('connection', (socket) => {
  // https://socket.io/docs/v4/emitting-events/#acknowledgements
  socket.on('pay', (payment, ack) => {
    if (payment.type === 'payment') {
      ack({ type: 'ack', reference: payment.reference });
    } else {
      ack({ type: 'error', reason: 'unknown type' });
    }
  });
});

// PORT lets a supervisor restart the server on the port its clients know (as systemd or a
// container orchestrator would after a crash); 0 picks a free one.
httpServer.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  process.stdout.write(`PORT ${httpServer.address().port}\n`);
});
