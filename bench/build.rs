use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let ours = out.join("rgrpc");
    let theirs = out.join("tonic");
    std::fs::create_dir_all(&ours)?;
    std::fs::create_dir_all(&theirs)?;
    // Our client too: the scale-out benchmark calls with it.
    rgrpc_build::configure().out_dir(&ours).compile(
        &[
            "proto/helloworld.proto",
            "proto/stream.proto",
            "proto/soak.proto",
        ],
        &["proto"],
    )?;
    // tonic's generator, fed by protox too, so no protoc is needed.
    let fds = protox::compile(["proto/helloworld.proto", "proto/stream.proto"], ["proto"])?;
    // Its client too: the allocation and client benchmarks call with it.
    tonic_prost_build::configure()
        .out_dir(&theirs)
        .compile_fds(fds)?;
    Ok(())
}
