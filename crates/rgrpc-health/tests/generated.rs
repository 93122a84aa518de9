//! The checked-in generated code is what rgrpc-build writes today. `RGRPC_BLESS=1 cargo test -p
//! rgrpc-health --test generated` rewrites it after a generator change.

use std::path::Path;

#[test]
fn checked_in_code_matches_the_generator() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("rgrpc-health-gen-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    rgrpc_build::configure()
        .out_dir(&out)
        .emit_rerun_if_changed(false)
        .file_descriptor_set_path(out.join("health.bin"))
        .compile(
            &[root.join("proto/grpc/health/v1/health.proto")],
            &[root.join("proto")],
        )
        .unwrap();
    let bless = std::env::var_os("RGRPC_BLESS").is_some();
    for (made, kept) in [
        ("grpc.health.v1.rs", "grpc.health.v1.rs"),
        ("health.bin", "health.bin"),
    ] {
        let fresh = std::fs::read(out.join(made)).unwrap();
        let path = root.join("src/generated").join(kept);
        if bless {
            std::fs::write(&path, &fresh).unwrap();
        }
        let checked_in = std::fs::read(&path).unwrap_or_default();
        assert!(
            checked_in == fresh,
            "{} is stale: run RGRPC_BLESS=1 cargo test -p rgrpc-health --test generated",
            path.display()
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}
