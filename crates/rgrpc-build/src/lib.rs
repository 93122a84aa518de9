//! rgrpc-build: Rust code for gRPC services from `.proto` files, in `build.rs`, with no `protoc`.
//!
//! `.proto` files are parsed by `protox` (pure Rust), messages are written by `prost-build`, and
//! the service code (a server trait, its server wrapper, a client) by this crate.
//!
//! ```no_run
//! // build.rs
//! fn main() -> Result<(), rgrpc_build::Error> {
//!     rgrpc_build::compile(&["proto/hello.proto"], &["proto"])
//! }
//! ```
//!
//! and in the crate, `rgrpc::include_proto!("hello");` brings in the package `hello`.
//!
//! A bad `.proto` fails the build with `file:line:column: reason`.
//!
//! ## Names
//! For a service `Greeter`, the package module gets the trait `Greeter`, the server wrapper
//! `GreeterServer`, the clients `GreeterClient` and `GreeterBlockingClient`, and one method per
//! RPC in snake case, as prost names fields. Every valid `.proto` compiles: a name that is
//! already taken gets underscores appended until it is free, as prost does for keywords. Taken
//! means a message or enum of the package (`message GreeterServer` makes the wrapper
//! `GreeterServer_`), an earlier service's item, another RPC of the same snake-case name
//! (`GetFoo` and `get_foo` become `get_foo` and `get_foo_`), or, on the clients, one of their own
//! items: `new`, `connect`, `channel`, and `clone`, `clone_from` and `fmt` of the traits they
//! derive (`rpc Connect` is `client.connect_(..)`; the trait method stays `connect`).

#![deny(missing_docs)]

mod service;

use std::fmt;
use std::path::{Path, PathBuf};

use miette::Diagnostic;
use prost::Message as _;

/// Compiles `protos`, resolving imports under `includes`, into `OUT_DIR` with server and client
/// code. See [`configure`] for options.
pub fn compile(protos: &[impl AsRef<Path>], includes: &[impl AsRef<Path>]) -> Result<(), Error> {
    configure().compile(protos, includes)
}

/// A builder for options: what to emit, where, extra attributes, descriptor set output.
pub fn configure() -> Builder {
    Builder {
        server: true,
        client: true,
        out_dir: None,
        descriptor_set: None,
        type_attributes: Vec::new(),
        field_attributes: Vec::new(),
        extern_paths: Vec::new(),
        rerun: true,
    }
}

/// Options for code generation.
#[derive(Debug, Clone)]
pub struct Builder {
    server: bool,
    client: bool,
    out_dir: Option<PathBuf>,
    descriptor_set: Option<PathBuf>,
    type_attributes: Vec<(String, String)>,
    field_attributes: Vec<(String, String)>,
    extern_paths: Vec<(String, String)>,
    rerun: bool,
}

impl Builder {
    /// Emit the server trait and wrapper (default: yes).
    pub fn build_server(mut self, yes: bool) -> Self {
        self.server = yes;
        self
    }

    /// Emit the client (default: yes).
    pub fn build_client(mut self, yes: bool) -> Self {
        self.client = yes;
        self
    }

    /// Where to write the `.rs` files (default: `OUT_DIR`).
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Also write the encoded `FileDescriptorSet` (with imports and source info) to `path`, for
    /// server reflection.
    pub fn file_descriptor_set_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.descriptor_set = Some(path.into());
        self
    }

    /// Adds an attribute, such as `#[derive(serde::Serialize)]`, to the messages and enums
    /// matching `path` (`.` for all, `.pkg.Message` for one).
    pub fn type_attribute(mut self, path: impl Into<String>, attribute: impl Into<String>) -> Self {
        self.type_attributes.push((path.into(), attribute.into()));
        self
    }

    /// Adds an attribute to the fields matching `path` (`.pkg.Message.field`).
    pub fn field_attribute(
        mut self,
        path: impl Into<String>,
        attribute: impl Into<String>,
    ) -> Self {
        self.field_attributes.push((path.into(), attribute.into()));
        self
    }

    /// Uses an existing Rust path for a proto package or type instead of generating it.
    pub fn extern_path(
        mut self,
        proto_path: impl Into<String>,
        rust_path: impl Into<String>,
    ) -> Self {
        self.extern_paths
            .push((proto_path.into(), rust_path.into()));
        self
    }

    /// Print `cargo:rerun-if-changed` for the inputs (default: yes).
    pub fn emit_rerun_if_changed(mut self, yes: bool) -> Self {
        self.rerun = yes;
        self
    }

    /// Parses `protos` and writes the code.
    pub fn compile(
        self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<(), Error> {
        let out_dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or_else(|| {
                    Error::message("OUT_DIR is not set: call this from build.rs or set out_dir")
                })?,
        };
        let mut compiler = protox::Compiler::new(includes.iter().map(AsRef::as_ref))
            .map_err(Error::from_protox)?;
        compiler.include_imports(true).include_source_info(true);
        for proto in protos {
            compiler
                .open_file(proto.as_ref())
                .map_err(Error::from_protox)?;
        }
        if self.rerun {
            for proto in protos {
                println!("cargo:rerun-if-changed={}", proto.as_ref().display());
            }
            for file in compiler.files() {
                if let Some(path) = file.path() {
                    println!("cargo:rerun-if-changed={}", path.display());
                }
            }
        }
        let fds = compiler.file_descriptor_set();
        if let Some(path) = &self.descriptor_set {
            std::fs::write(path, fds.encode_to_vec())
                .map_err(|e| Error::message(format!("cannot write {}: {e}", path.display())))?;
        }
        self.prost_config(&fds.file)
            .out_dir(&out_dir)
            .compile_fds(fds)
            .map_err(|e| Error::message(format!("code generation failed: {e}")))
    }

    /// The prost-build configuration with our service generator for `files` (every file that
    /// will be generated, so that names are chosen per package); also used by the protoc plugin.
    #[doc(hidden)]
    pub fn prost_config(&self, files: &[prost_types::FileDescriptorProto]) -> prost_build::Config {
        let mut config = prost_build::Config::new();
        config.service_generator(Box::new(service::Generator {
            server: self.server,
            client: self.client,
            names: service::choose_names(files),
        }));
        for (path, attr) in &self.type_attributes {
            config.type_attribute(path, attr);
        }
        for (path, attr) in &self.field_attributes {
            config.field_attribute(path, attr);
        }
        for (proto, rust) in &self.extern_paths {
            config.extern_path(proto, rust);
        }
        config
    }
}

/// Runs the whole front end on one in-memory file named `fuzz.proto` (imports from the
/// well-known types only) and returns the Rust code, or the located error. For the fuzz targets;
/// not an API.
#[doc(hidden)]
pub fn generate_from_source(source: &str) -> Result<String, Error> {
    struct Memory(String);
    impl protox::file::FileResolver for Memory {
        fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
            if name == "fuzz.proto" {
                protox::file::File::from_source(name, &self.0)
            } else {
                Err(protox::Error::file_not_found(name))
            }
        }
    }
    let mut resolver = protox::file::ChainFileResolver::new();
    resolver.add(Memory(source.to_owned()));
    resolver.add(protox::file::GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true).include_source_info(true);
    compiler
        .open_file("fuzz.proto")
        .map_err(Error::from_protox)?;
    let fds = compiler.file_descriptor_set();
    let mut config = configure().prost_config(&fds.file);
    let requests = fds
        .file
        .into_iter()
        .map(|file| {
            (
                prost_build::Module::from_protobuf_package_name(file.package()),
                file,
            )
        })
        .collect();
    let modules = config
        .generate(requests)
        .map_err(|e| Error::message(format!("code generation failed: {e}")))?;
    let mut modules: Vec<_> = modules.into_iter().collect();
    modules.sort();
    Ok(modules.into_iter().map(|(_, code)| code).collect())
}

/// Why code generation failed. Its `Display` (and `Debug`, which a failing `build.rs` prints) is
/// `file:line:column: reason` when the cause is in a `.proto` file.
pub struct Error {
    text: String,
}

impl Error {
    fn message(text: impl Into<String>) -> Error {
        Error { text: text.into() }
    }

    fn from_protox(err: protox::Error) -> Error {
        // protox's Debug output is `file:line:column: reason` with the primary location (the
        // second definition of a duplicate, the unknown name…); fall back to the first label.
        let located = format!("{err:?}");
        let text = if located.contains(".proto:") && !located.contains('\n') {
            located
        } else {
            let reason = err.to_string();
            let file = err.file().map(str::to_owned);
            let place = match (err.source_code(), err.labels().and_then(|mut l| l.next())) {
                (Some(source), Some(label)) => source
                    .read_span(label.inner(), 0, 0)
                    .ok()
                    .map(|span| (span.line() + 1, span.column() + 1)),
                _ => None,
            };
            match (file, place) {
                (Some(file), Some((line, column))) => format!("{file}:{line}:{column}: {reason}"),
                (Some(file), None) if !reason.contains(&file) => format!("{file}: {reason}"),
                _ => reason,
            }
        };
        Error { text }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Error {}
