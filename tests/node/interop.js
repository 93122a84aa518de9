// Interop peer written with @grpc/grpc-js, from grpc/grpc doc/interop-test-descriptions.md
// (grpc-js ships no interop programs on npm).
//
//   node interop.js server --port=N
//   node interop.js client --server_host=H --server_port=N --test_case=NAME
//
// The client exits 0 on pass.
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

const ECHO_INITIAL = 'x-grpc-test-echo-initial';
const ECHO_TRAILING = 'x-grpc-test-echo-trailing-bin';
const GZIP = 2; // grpc-js compression algorithm numbers: 0 identity, 1 deflate, 2 gzip

function flags(args) {
  const out = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i].replace(/^--?/, '');
    const eq = a.indexOf('=');
    if (eq >= 0) out[a.slice(0, eq)] = a.slice(eq + 1);
    else out[a] = args[++i];
  }
  return out;
}

const payload = (size) => ({ type: 'COMPRESSABLE', body: Buffer.alloc(size) });

// ------------------------------------------------------------------ server

function echoMetadata(call) {
  const initial = call.metadata.get(ECHO_INITIAL);
  const trailing = call.metadata.get(ECHO_TRAILING);
  if (initial.length) {
    const md = new grpc.Metadata();
    md.set(ECHO_INITIAL, initial[0]);
    call.sendMetadata(md);
  }
  const out = new grpc.Metadata();
  if (trailing.length) out.set(ECHO_TRAILING, trailing[0]);
  return out;
}

function requestedStatus(status, trailers) {
  if (status && status.code) {
    return { code: status.code, details: status.message, metadata: trailers };
  }
  return null;
}

function sleep(us) {
  return new Promise((ok) => setTimeout(ok, us / 1000));
}

async function respond(call, request) {
  for (const p of request.response_parameters) {
    if (p.interval_us) await sleep(p.interval_us);
    if (call.cancelled) return;
    call.write({ payload: payload(p.size) });
  }
}

const service = {
  EmptyCall(call, done) {
    done(null, {}, echoMetadata(call));
  },
  UnaryCall(call, done) {
    const trailers = echoMetadata(call);
    const failure = requestedStatus(call.request.response_status, trailers);
    if (failure) return done(failure);
    done(null, { payload: payload(call.request.response_size) }, trailers);
  },
  CacheableUnaryCall(call, done) {
    service.UnaryCall(call, done);
  },
  async StreamingOutputCall(call) {
    const trailers = echoMetadata(call);
    await respond(call, call.request);
    const failure = requestedStatus(call.request.response_status, trailers);
    if (failure) return call.emit('error', failure);
    call.end(trailers);
  },
  StreamingInputCall(call, done) {
    const trailers = echoMetadata(call);
    let total = 0;
    call.on('data', (r) => { total += r.payload ? r.payload.body.length : 0; });
    call.on('end', () => done(null, { aggregated_payload_size: total }, trailers));
    call.on('error', () => {});
  },
  FullDuplexCall(call) {
    const trailers = echoMetadata(call);
    let chain = Promise.resolve();
    let failed = false;
    call.on('data', (request) => {
      chain = chain.then(async () => {
        if (failed) return;
        const failure = requestedStatus(request.response_status, trailers);
        if (failure) {
          failed = true;
          call.emit('error', failure);
          return;
        }
        await respond(call, request);
      });
    });
    call.on('end', () => chain.then(() => { if (!failed) call.end(trailers); }));
    call.on('error', () => {});
  },
  HalfDuplexCall(call) {
    const trailers = echoMetadata(call);
    const requests = [];
    call.on('data', (r) => requests.push(r));
    call.on('end', async () => {
      for (const r of requests) await respond(call, r);
      call.end(trailers);
    });
  },
  UnimplementedCall(call, done) {
    done({ code: grpc.status.UNIMPLEMENTED, details: 'not implemented, on purpose' });
  },
};

function serve(port) {
  const server = new grpc.Server();
  server.addService(testing.TestService.service, service);
  server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err) => {
    if (err) {
      console.error(err.message);
      process.exit(1);
    }
  });
  process.on('SIGTERM', () => server.forceShutdown());
}

// ------------------------------------------------------------------ client

function ensure(ok, what) {
  if (!ok) throw new Error(what);
}

// A unary call that settles once both the reply and the status (with trailers) are in.
const unary = (client, method, request, options = {}) => new Promise((ok, fail) => {
  const md = options.metadata || new grpc.Metadata();
  let initial = null;
  let trailing = null;
  let result = null;
  const settle = () => {
    if (!result || !trailing) return;
    if (result.err) fail(result.err);
    else ok({ reply: result.reply, initial, trailing });
  };
  const call = client[method](request, md, { deadline: options.deadline }, (err, reply) => {
    result = { err, reply };
    settle();
  });
  call.on('metadata', (m) => { initial = m; });
  call.on('status', (s) => { trailing = s.metadata; settle(); });
});

async function expectCode(promise, code, message) {
  try {
    await promise;
  } catch (err) {
    ensure(err.code === code, `expected code ${code}, got ${err.code}: ${err.details}`);
    if (message !== undefined) ensure(err.details === message, `message ${JSON.stringify(err.details)}`);
    return;
  }
  throw new Error(`expected code ${code}, the call succeeded`);
}

const largeRequest = (extra = {}) => ({ response_size: 314159, payload: payload(271828), ...extra });
const outputRequest = (sizes, body = 0) => ({
  response_parameters: sizes.map((size) => ({ size })),
  payload: payload(body),
});

function readAll(call) {
  return new Promise((ok, fail) => {
    const got = [];
    call.on('data', (m) => got.push(m));
    call.on('end', () => ok(got));
    call.on('error', fail);
  });
}

async function runCase(name, addr) {
  const creds = grpc.credentials.createInsecure();
  const client = new testing.TestService(addr, creds);
  const gzipClient = new testing.TestService(addr, creds,
    { 'grpc.default_compression_algorithm': GZIP });
  switch (name) {
    case 'empty_unary': {
      const { reply } = await unary(client, 'EmptyCall', {});
      ensure(Object.keys(reply).length === 0, 'not empty');
      break;
    }
    case 'large_unary': {
      const { reply } = await unary(client, 'UnaryCall', largeRequest());
      ensure(reply.payload.body.length === 314159, 'size');
      break;
    }
    case 'client_compressed_unary': {
      await expectCode(unary(client, 'UnaryCall', largeRequest({ expect_compressed: { value: true } })),
        grpc.status.INVALID_ARGUMENT);
      let r = await unary(gzipClient, 'UnaryCall', largeRequest({ expect_compressed: { value: true } }));
      ensure(r.reply.payload.body.length === 314159, 'size');
      r = await unary(client, 'UnaryCall', largeRequest({ expect_compressed: { value: false } }));
      ensure(r.reply.payload.body.length === 314159, 'size');
      break;
    }
    case 'server_compressed_unary': {
      for (const value of [true, false]) {
        const { reply } = await unary(client, 'UnaryCall', largeRequest({ response_compressed: { value } }));
        ensure(reply.payload.body.length === 314159, 'size');
      }
      break;
    }
    case 'client_streaming': {
      const total = await new Promise((ok, fail) => {
        const call = client.StreamingInputCall((err, r) => (err ? fail(err) : ok(r.aggregated_payload_size)));
        for (const n of [27182, 8, 1828, 45904]) call.write({ payload: payload(n) });
        call.end();
      });
      ensure(total === 74922, `sum ${total}`);
      break;
    }
    case 'server_streaming':
    case 'server_compressed_streaming': {
      const request = name === 'server_streaming' ? outputRequest([31415, 9, 2653, 58979]) : {
        response_parameters: [
          { size: 31415, compressed: { value: true } },
          { size: 92653, compressed: { value: false } }],
      };
      const got = (await readAll(client.StreamingOutputCall(request))).map((m) => m.payload.body.length);
      const want = request.response_parameters.map((p) => p.size);
      ensure(JSON.stringify(got) === JSON.stringify(want), `sizes ${got}`);
      break;
    }
    case 'ping_pong': {
      const call = client.FullDuplexCall();
      const pairs = [[31415, 27182], [9, 8], [2653, 1828], [58979, 45904]];
      const responses = [];
      let wake = null;
      call.on('data', (m) => { responses.push(m); if (wake) wake(); });
      const failed = new Promise((_, fail) => call.on('error', fail));
      for (const [size, body] of pairs) {
        const next = new Promise((ok) => { wake = ok; });
        call.write(outputRequest([size], body));
        await Promise.race([next, failed]);
        ensure(responses[responses.length - 1].payload.body.length === size, 'size');
      }
      call.end();
      await new Promise((ok) => call.on('end', ok));
      break;
    }
    case 'empty_stream': {
      const call = client.FullDuplexCall();
      call.end();
      ensure((await readAll(call)).length === 0, 'responses');
      break;
    }
    case 'timeout_on_sleeping_server': {
      const call = client.FullDuplexCall({ deadline: Date.now() + 1 });
      call.write(outputRequest([31415], 27182));
      await expectCode(readAll(call), grpc.status.DEADLINE_EXCEEDED);
      break;
    }
    case 'cancel_after_begin': {
      const result = new Promise((ok) => {
        const call = client.StreamingInputCall((err) => ok(err));
        setTimeout(() => call.cancel(), 50);
      });
      const err = await result;
      ensure(err && err.code === grpc.status.CANCELLED, `got ${err && err.code}`);
      break;
    }
    case 'cancel_after_first_response': {
      const call = client.FullDuplexCall();
      const first = new Promise((ok) => call.once('data', ok));
      const status = new Promise((ok) => call.on('error', ok));
      call.write(outputRequest([31415], 27182));
      ensure((await first).payload.body.length === 31415, 'size');
      call.cancel();
      ensure((await status).code === grpc.status.CANCELLED, 'not cancelled');
      break;
    }
    case 'custom_metadata': {
      const md = new grpc.Metadata();
      md.set(ECHO_INITIAL, 'test_initial_metadata_value');
      md.set(ECHO_TRAILING, Buffer.from([0xab, 0xab, 0xab]));
      const r = await unary(client, 'UnaryCall', largeRequest(), { metadata: md });
      ensure(r.initial.get(ECHO_INITIAL)[0] === 'test_initial_metadata_value', 'initial');
      ensure(r.trailing.get(ECHO_TRAILING)[0].equals(Buffer.from([0xab, 0xab, 0xab])), 'trailing');
      const call = client.FullDuplexCall(md);
      const initial = new Promise((ok) => call.on('metadata', ok));
      const trailing = new Promise((ok) => call.on('status', (s) => ok(s.metadata)));
      call.write(outputRequest([314159], 271828));
      call.end();
      const got = await readAll(call);
      ensure(got.length === 1 && got[0].payload.body.length === 314159, 'duplex size');
      ensure((await initial).get(ECHO_INITIAL)[0] === 'test_initial_metadata_value', 'duplex initial');
      ensure((await trailing).get(ECHO_TRAILING)[0].equals(Buffer.from([0xab, 0xab, 0xab])), 'duplex trailing');
      break;
    }
    case 'status_code_and_message':
    case 'special_status_message': {
      const message = name === 'special_status_message'
        ? '\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n'
        : 'test status message';
      const status = { code: 2, message };
      await expectCode(unary(client, 'UnaryCall', { response_status: status }), grpc.status.UNKNOWN, message);
      if (name === 'status_code_and_message') {
        const call = client.FullDuplexCall();
        call.write({ response_status: status });
        call.end();
        await expectCode(readAll(call), grpc.status.UNKNOWN, message);
      }
      break;
    }
    case 'unimplemented_method':
      await expectCode(unary(client, 'UnimplementedCall', {}), grpc.status.UNIMPLEMENTED);
      break;
    case 'unimplemented_service': {
      const other = new testing.UnimplementedService(addr, creds);
      await expectCode(unary(other, 'UnimplementedCall', {}), grpc.status.UNIMPLEMENTED);
      break;
    }
    case 'very_large_request': {
      const { reply } = await unary(client, 'UnaryCall', { response_size: 10, payload: payload(4 * 1024 * 1024 - 64) });
      ensure(reply.payload.body.length === 10, 'size');
      break;
    }
    default:
      throw new Error(`unknown test case ${name}`);
  }
  client.close();
  gzipClient.close();
}

const [role, ...rest] = process.argv.slice(2);
const f = flags(rest);
if (role === 'server') {
  serve(f.port);
} else {
  runCase(f.test_case, `${f.server_host}:${f.server_port}`).then(
    () => { console.log(`PASS ${f.test_case}`); process.exit(0); },
    (err) => { console.log(`FAIL ${f.test_case}: ${err.message || err.details}`); process.exit(1); },
  );
}
