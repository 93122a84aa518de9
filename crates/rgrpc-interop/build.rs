fn main() -> Result<(), rgrpc_build::Error> {
    rgrpc_build::compile(
        &[
            "proto/grpc/testing/test.proto",
            "proto/connectrpc/conformance/v1/server_compat.proto",
            "proto/connectrpc/conformance/v1/client_compat.proto",
            "proto/google/rpc/status.proto",
        ],
        &["proto"],
    )
}
