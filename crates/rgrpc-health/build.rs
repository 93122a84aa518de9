fn main() -> Result<(), rgrpc_build::Error> {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    rgrpc_build::configure()
        .file_descriptor_set_path(out.join("health.bin"))
        .compile(&["proto/grpc/health/v1/health.proto"], &["proto"])
}
