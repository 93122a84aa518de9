//! Each example's protos into a folder of its own under OUT_DIR, so that two packageless files
//! (calculator, grpc-service) never share a module.

fn main() -> Result<(), rgrpc_build::Error> {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    for (example, proto) in [
        ("user-info", "hello.proto"),
        ("calculator", "SimpleCal.proto"),
        ("greeter", "helloworld.proto"),
        ("file-controller", "muxs.proto"),
        ("grpc-service", "hello.proto"),
        ("route-guide", "route_guide.proto"),
        ("secure-greeter", "greeter.proto"),
    ] {
        let dir = out.join(example);
        std::fs::create_dir_all(&dir).expect("out dir");
        rgrpc_build::configure()
            .out_dir(&dir)
            .file_descriptor_set_path(dir.join("fds.bin"))
            .compile(&[format!("{example}/{proto}")], &[example])?;
    }
    Ok(())
}
