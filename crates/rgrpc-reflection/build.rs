fn main() -> Result<(), rgrpc_build::Error> {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    rgrpc_build::configure()
        .file_descriptor_set_path(out.join("reflection.bin"))
        .compile(
            &[
                "proto/grpc/reflection/v1/reflection.proto",
                "proto/grpc/reflection/v1alpha/reflection.proto",
            ],
            &["proto"],
        )
}
