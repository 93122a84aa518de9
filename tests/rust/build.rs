fn main() -> Result<(), rgrpc_build::Error> {
    rgrpc_build::compile(
        &[
            "proto/echo.proto",
            "proto/kitchen.proto",
            "proto/legacy.proto",
            "proto/nopackage.proto",
            "proto/collisions.proto",
        ],
        &["proto"],
    )
}
