fn main() -> Result<(), rgrpc_build::Error> {
    rgrpc_build::compile(&["proto/grpc/testing/test.proto"], &["proto"])
}
