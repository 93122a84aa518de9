// A @grpc/grpc-js server for rgrpc's retry tests, speaking the same protocol as
// tests/go/retryserver: grpc.testing.TestService calls fail until the client's attempt number
// (1 + grpc-previous-rpc-attempts) reaches the call's x-fail-until header.
//
//   node retry-server.js --port=N
//
// x-fail-code sets the failures' code (default 14), x-pushback-ms is sent back as
// grpc-retry-pushback-ms; successes answer with the header x-attempt; EmptyCall answers with
// x-calls, the UnaryCall and StreamingInputCall attempts seen so far.
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.join(__dirname, '..', '..', 'crates', 'rgrpc-interop', 'proto');
const definition = protoLoader.loadSync('grpc/testing/test.proto', {
  includeDirs: [PROTO_ROOT],
  keepCase: true,
  defaults: true,
});
const testing = grpc.loadPackageDefinition(definition).grpc.testing;

let calls = 0;

function first(md, key) {
  const v = md.get(key);
  return v.length ? String(v[0]) : '';
}

// Counts the attempt; returns [attempt, error or null].
function attempt(call) {
  calls += 1;
  const previous = parseInt(first(call.metadata, 'grpc-previous-rpc-attempts'), 10) || 0;
  const n = previous + 1;
  const until = parseInt(first(call.metadata, 'x-fail-until'), 10) || 0;
  if (n >= until) return [n, null];
  const code = parseInt(first(call.metadata, 'x-fail-code'), 10) || grpc.status.UNAVAILABLE;
  const trailers = new grpc.Metadata();
  const pushback = first(call.metadata, 'x-pushback-ms');
  if (pushback) trailers.set('grpc-retry-pushback-ms', pushback);
  return [n, { code, details: `attempt ${n} fails`, metadata: trailers }];
}

function attemptHeader(call, n) {
  const md = new grpc.Metadata();
  md.set('x-attempt', String(n));
  call.sendMetadata(md);
}

const server = new grpc.Server();
server.addService(testing.TestService.service, {
  emptyCall(call, callback) {
    const md = new grpc.Metadata();
    md.set('x-calls', String(calls));
    call.sendMetadata(md);
    callback(null, {});
  },
  unaryCall(call, callback) {
    const [n, err] = attempt(call);
    if (err) return callback(err);
    attemptHeader(call, n);
    callback(null, { payload: { body: Buffer.alloc(call.request.response_size) } });
  },
  streamingInputCall(call, callback) {
    let total = 0;
    call.on('data', (m) => { total += m.payload ? m.payload.body.length : 0; });
    call.on('end', () => {
      // The whole stream is read before failing, so a retry must replay all of it.
      const [n, err] = attempt(call);
      if (err) return callback(err);
      attemptHeader(call, n);
      callback(null, { aggregated_payload_size: total });
    });
  },
});

const port = (process.argv.find((a) => a.startsWith('--port=')) || '--port=0').slice(7);
server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
  if (err) throw err;
  console.log(`listening on 127.0.0.1:${bound}`);
});
