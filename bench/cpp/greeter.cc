// greeter: C++ gRPC (Debian's libgrpc++) serving helloworld.Greeter on 127.0.0.1:PORT, an anchor
// of the unary server benchmark. bench/run.sh generates the stubs from bench/proto with protoc
// and grpc_cpp_plugin, builds this and pins it to core 0 like the others; SIGTERM stops it.

#include <csignal>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "helloworld.grpc.pb.h"

namespace {

class Greeter final : public helloworld::Greeter::CallbackService {
  grpc::ServerUnaryReactor* SayHello(grpc::CallbackServerContext* context,
                                     const helloworld::HelloRequest* request,
                                     helloworld::HelloReply* reply) override {
    reply->set_message("Hello " + request->name());
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

volatile std::sig_atomic_t stopping = 0;

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: greeter PORT\n";
    return 2;
  }
  Greeter service;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(std::string("127.0.0.1:") + argv[1], grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) return 1;
  std::signal(SIGTERM, [](int) { stopping = 1; });
  while (!stopping) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  server->Shutdown();
  return 0;
}
