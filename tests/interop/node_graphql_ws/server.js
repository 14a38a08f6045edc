// Interop target: a payment endpoint on graphql-ws 6.4.2 (`useServer` from graphql-ws/use/ws)
// over a ws 8.23.1 WebSocketServer on /graphql, with a graphql 16.11.0 schema, written the way
// the graphql-ws README writes a server. Every option is at its default except `schema`,
// `roots` and the README's authentication recipe in `onConnect` (returning false closes the
// socket with 4403 Forbidden): connectionInitWaitTimeout 3000 ms, useServer's keepAlive 12 s
// (a WebSocket ping every 12 s, terminate when no pong within 12 s), ws' maxPayload 100 MiB, no
// Origin check, no permessage-deflate. The payment is a mutation argument typed by the schema;
// no validation beyond what the GraphQL types give.
//
// usage: INTEROP_TOKEN=... node server.js   -> prints "PORT <n>", serves ws://127.0.0.1:<n>/graphql
// (subprotocol graphql-transport-ws; NODE_PATH must point at a node_modules that holds
// graphql-ws, graphql and ws.)
'use strict';

const { WebSocketServer } = require('ws');
const { useServer } = require('graphql-ws/use/ws');
const { buildSchema } = require('graphql');

const schema = buildSchema(`
  input PaymentInput {
    type: String!
    amount: Float!
    reference: String!
    currency: String!
  }

  type PayResult {
    type: String!
    reference: String
    reason: String
  }

  type Query {
    health: String
  }

  type Mutation {
    pay(input: PaymentInput!): PayResult
  }
`);

const roots = {
  query: { health: () => 'ok' },
  mutation: {
    pay: ({ input }) => {
      if (input.type === 'payment') {
        return { type: 'ack', reference: input.reference };
      }
      return { type: 'error', reason: 'unknown type' };
    },
  },
};

// PORT lets a supervisor restart the server on the port its clients know (as systemd or a
// container orchestrator would after a crash); 0 picks a free one.
const server = new WebSocketServer({
  port: Number(process.env.PORT || 0),
  host: '127.0.0.1',
  path: '/graphql',
});

useServer(
  {
    schema,
    roots,
    // The recipes' auth check (https://the-guild.dev/graphql/ws/recipes): returning false from
    // onConnect closes the socket with 4403 Forbidden.
    onConnect: (ctx) => ctx.connectionParams?.token === process.env.INTEROP_TOKEN,
  },
  server,
);

server.on('listening', () => {
  process.stdout.write(`PORT ${server.address().port}\n`);
});
