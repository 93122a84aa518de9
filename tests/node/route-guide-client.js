// The route guide client with @grpc/grpc-js: one call of each kind, the same fixed inputs and the
// same output lines as the Python and Rust clients.
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const args = process.argv.slice(2);
const addr = (args[0] === '--addr' ? args[1] : 'localhost:50051').replace('http://', '');
const proto = path.join(__dirname, '..', '..', 'examples', 'route-guide', 'route_guide.proto');
const routeguide = grpc.loadPackageDefinition(
  protoLoader.loadSync(proto, { defaults: true, keepCase: true })).routeguide;
const client = new routeguide.RouteGuide(addr, grpc.credentials.createInsecure());

const ROUTE = [
  [401000000, -748000000], [410123457, -732012989], [405246914, -735025978],
  [414370371, -738038967], [409493828, -741051956], [404617285, -744064945],
  [413740742, -747077934], [408864199, -731090923], [403987656, -734103912],
  [413111113, -737116901], [402000000, -747000000], [402500000, -746500000],
];
const NOTES = [['First message', 1], ['Second message', 2], ['Third message', 3],
  ['Fourth message', 1], ['Fifth message', 2], ['Sixth message', 3]];

const point = (latitude, longitude) => ({ latitude, longitude });
const at = (p) => `(${p.latitude}, ${p.longitude})`;
const call = (fn, arg) => new Promise((ok, fail) => fn.call(client, arg, (e, r) => (e ? fail(e) : ok(r))));

async function main() {
  for (const [lat, lon] of [[410123457, -732012989], [0, 0]]) {
    const f = await call(client.GetFeature, point(lat, lon));
    console.log(f.name ? `GetFeature: "${f.name}" at ${at(f.location)}`
      : `GetFeature: no feature at ${at(f.location)}`);
  }

  await new Promise((ok, fail) => {
    let n = 0;
    const stream = client.ListFeatures({ lo: point(400000000, -750000000), hi: point(410000000, -740000000) });
    stream.on('data', (f) => { console.log(`ListFeatures: "${f.name}" at ${at(f.location)}`); n++; });
    stream.on('end', () => { console.log(`ListFeatures: ${n} features`); ok(); });
    stream.on('error', fail);
  });

  await new Promise((ok, fail) => {
    const stream = client.RecordRoute((err, s) => {
      if (err) return fail(err);
      console.log(`RecordRoute: ${s.point_count} points, ${s.feature_count} features, ${s.distance} metres`);
      ok();
    });
    for (const [lat, lon] of ROUTE) stream.write(point(lat, lon));
    stream.end();
  });

  await new Promise((ok, fail) => {
    const stream = client.RouteChat();
    stream.on('data', (n) => console.log(`RouteChat: "${n.message}" at ${at(n.location)}`));
    stream.on('end', ok);
    stream.on('error', fail);
    for (const [message, lon] of NOTES) stream.write({ location: point(0, lon), message });
    stream.end();
  });
  client.close();
}

main().catch((err) => {
  console.error(`error: ${err.code} ${err.details}`);
  process.exit(1);
});
