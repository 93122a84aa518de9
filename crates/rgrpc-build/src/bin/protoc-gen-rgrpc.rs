//! `protoc-gen-rgrpc`: the same code as `rgrpc-build`, for teams that run `protoc` or `buf`.
//!
//! protoc runs it with a `CodeGeneratorRequest` on stdin and reads a `CodeGeneratorResponse` from
//! stdout. One `.rs` file is written per proto package (`_.rs` without a package). Options go in
//! the plugin parameter, comma-separated: `server=false`, `client=false`.

use std::io::{Read, Write};

use prost::Message;
use prost_types::compiler::code_generator_response::{Feature, File};
use prost_types::compiler::{CodeGeneratorRequest, CodeGeneratorResponse};

fn main() {
    let mut input = Vec::new();
    if let Err(err) = std::io::stdin().read_to_end(&mut input) {
        eprintln!("protoc-gen-rgrpc: cannot read the request from stdin: {err}");
        std::process::exit(1);
    }
    let response = match CodeGeneratorRequest::decode(&input[..]) {
        Ok(request) => generate(request),
        Err(err) => failure(format!("stdin is not a CodeGeneratorRequest: {err}")),
    };
    let mut out = std::io::stdout().lock();
    if out
        .write_all(&response.encode_to_vec())
        .and_then(|()| out.flush())
        .is_err()
    {
        std::process::exit(1);
    }
}

fn failure(message: String) -> CodeGeneratorResponse {
    CodeGeneratorResponse {
        error: Some(message),
        ..Default::default()
    }
}

fn generate(request: CodeGeneratorRequest) -> CodeGeneratorResponse {
    let mut builder = rgrpc_build::configure();
    for option in request.parameter().split(',').filter(|o| !o.is_empty()) {
        builder = match option.trim() {
            "server=false" => builder.build_server(false),
            "server=true" => builder.build_server(true),
            "client=false" => builder.build_client(false),
            "client=true" => builder.build_client(true),
            other => {
                return failure(format!(
                    "unknown option {other:?}; known: server=true|false, client=true|false"
                ));
            }
        };
    }
    let wanted: Vec<prost_build::Module> = request
        .proto_file
        .iter()
        .filter(|f| request.file_to_generate.iter().any(|g| g == f.name()))
        .map(|f| prost_build::Module::from_protobuf_package_name(f.package()))
        .collect();
    let mut config = builder.prost_config(&request.proto_file);
    let inputs = request
        .proto_file
        .into_iter()
        .map(|f| {
            (
                prost_build::Module::from_protobuf_package_name(f.package()),
                f,
            )
        })
        .collect();
    let modules = match config.generate(inputs) {
        Ok(modules) => modules,
        Err(err) => return failure(format!("code generation failed: {err}")),
    };
    let mut files: Vec<File> = modules
        .into_iter()
        .filter(|(module, _)| wanted.contains(module))
        .map(|(module, content)| File {
            name: Some(module.to_file_name_or("_")),
            content: Some(content),
            ..Default::default()
        })
        .collect();
    files.sort_by(|a, b| a.name.cmp(&b.name));
    CodeGeneratorResponse {
        file: files,
        supported_features: Some(Feature::Proto3Optional as u64),
        ..Default::default()
    }
}
