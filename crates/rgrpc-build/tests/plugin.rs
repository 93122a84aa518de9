//! The protoc plugin writes the same code as `build.rs` does, for the same files.

use std::io::Write;
use std::process::{Command, Stdio};

use prost::Message;
use prost_types::compiler::{CodeGeneratorRequest, CodeGeneratorResponse};

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rgrpc-plugin-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("out")).unwrap();
    dir
}

const PROTO: &str = r#"syntax = "proto3";
package demo.v1;
import "google/protobuf/empty.proto";
// Says hello.
service Greeter {
  // Greets one caller.
  rpc SayHello(HelloRequest) returns (HelloReply);
  rpc Chat(stream HelloRequest) returns (stream HelloReply);
  rpc Ping(google.protobuf.Empty) returns (google.protobuf.Empty);
}
message HelloRequest { string name = 1; optional int32 times = 2; }
message HelloReply { string message = 1; }
"#;

#[test]
fn plugin_output_matches_build_output() {
    let dir = scratch("same");
    std::fs::write(dir.join("demo.proto"), PROTO).unwrap();
    rgrpc_build::configure()
        .out_dir(dir.join("out"))
        .emit_rerun_if_changed(false)
        .compile(&[dir.join("demo.proto")], &[&dir])
        .unwrap();
    let from_build = std::fs::read_to_string(dir.join("out/demo.v1.rs")).unwrap();

    // What protoc would send: every file with its imports, the one to generate named.
    let mut compiler = protox::Compiler::new([&dir]).unwrap();
    compiler.include_imports(true).include_source_info(true);
    compiler.open_file("demo.proto").unwrap();
    let request = CodeGeneratorRequest {
        file_to_generate: vec!["demo.proto".into()],
        proto_file: compiler.file_descriptor_set().file,
        ..Default::default()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_protoc-gen-rgrpc"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&request.encode_to_vec())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let response = CodeGeneratorResponse::decode(&output.stdout[..]).unwrap();
    assert_eq!(response.error, None);
    assert_eq!(
        response.file.len(),
        1,
        "only the requested package, not google.protobuf"
    );
    assert_eq!(response.file[0].name(), "demo.v1.rs");
    assert_eq!(response.file[0].content(), from_build);
    assert!(from_build.contains("pub trait Greeter"));
    assert!(from_build.contains("\"/demo.v1.Greeter/SayHello\""));
    assert!(from_build.contains("Greets one caller."));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn plugin_reports_bad_input_and_options() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_protoc-gen-rgrpc"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let request = CodeGeneratorRequest {
        parameter: Some("fast=true".into()),
        ..Default::default()
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&request.encode_to_vec())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let response = CodeGeneratorResponse::decode(&output.stdout[..]).unwrap();
    assert!(response.error().contains("fast=true"));
}
