//! The checked-in generated code is what rgrpc-build writes today from our Envoy protos.
//! `RGRPC_BLESS=1 cargo test -p rgrpc-xds --test generated` rewrites it after a change.

use std::path::Path;

const FILES: [&str; 11] = [
    "envoy/config/core/v3/core.proto",
    "envoy/type/v3/type.proto",
    "envoy/type/matcher/v3/matcher.proto",
    "envoy/config/listener/v3/listener.proto",
    "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
    "envoy/extensions/filters/http/router/v3/router.proto",
    "envoy/config/route/v3/route.proto",
    "envoy/config/cluster/v3/cluster.proto",
    "envoy/config/endpoint/v3/endpoint.proto",
    "envoy/service/discovery/v3/discovery.proto",
    "google/rpc/status.proto",
];

#[test]
fn checked_in_code_matches_the_generator() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("rgrpc-xds-gen-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let files: Vec<_> = FILES.iter().map(|f| root.join("proto").join(f)).collect();
    rgrpc_build::configure()
        .out_dir(&out)
        .emit_rerun_if_changed(false)
        .compile(&files, &[root.join("proto")])
        .unwrap();
    let bless = std::env::var_os("RGRPC_BLESS").is_some();
    let mut made: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".rs"))
        .collect();
    made.sort();
    assert_eq!(made.len(), 11, "{made:?}");
    for name in made {
        let fresh = std::fs::read(out.join(&name)).unwrap();
        let path = root.join("src/generated").join(&name);
        if bless {
            std::fs::write(&path, &fresh).unwrap();
        }
        let checked_in = std::fs::read(&path).unwrap_or_default();
        assert!(
            checked_in == fresh,
            "{} is stale: run RGRPC_BLESS=1 cargo test -p rgrpc-xds --test generated",
            path.display()
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}
