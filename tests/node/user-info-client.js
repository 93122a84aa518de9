// The user-info client with @grpc/grpc-js: prints the same line as the Python and Rust clients.
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const args = process.argv.slice(2);
let addr = 'localhost:50051';
const rest = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--addr') addr = args[++i].replace('http://', '');
  else rest.push(args[i]);
}
const proto = path.join(__dirname, '..', '..', 'examples', 'user-info', 'hello.proto');
const hello = grpc.loadPackageDefinition(protoLoader.loadSync(proto)).hello;
const client = new hello.UserInfo(addr, grpc.credentials.createInsecure());
client.Info({ id: rest[0] || '1', name: rest[1] || 'zhangsan' }, (err, reply) => {
  if (err) {
    console.error(`error: ${err.code} ${err.details}`);
    process.exit(1);
  }
  console.log('用户信息: ' + reply.message);
  client.close();
});
