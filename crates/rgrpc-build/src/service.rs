//! Service code: for each `.proto` service, a server trait with one `async fn` per method, a
//! server wrapper to register it, and a client with one method per RPC.
//!
//! Generated code names the runtime only through `::rgrpc::codegen`, so the runtime's public API
//! can change without breaking it.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use heck::ToUpperCamelCase as _;
use prost_build::{Comments, Method, Service, ServiceGenerator};
use prost_types::FileDescriptorProto;

/// Writes service code next to the messages `prost-build` writes.
#[derive(Debug, Clone)]
pub(crate) struct Generator {
    pub(crate) server: bool,
    pub(crate) client: bool,
    /// The Rust names of each service's types, by package and proto service name.
    pub(crate) names: HashMap<(String, String), TypeNames>,
}

impl ServiceGenerator for Generator {
    fn generate(&mut self, service: Service, buf: &mut String) {
        let key = (service.package.clone(), service.proto_name.clone());
        let types = self.names.remove(&key).unwrap_or_else(|| TypeNames {
            service: service.name.clone(),
            server: format!("{}Server", service.name),
            client: format!("{}Client", service.name),
            blocking: format!("{}BlockingClient", service.name),
        });
        let names = Names::new(types, &service);
        if self.server {
            server(&service, &names, buf);
        }
        if self.client {
            client(&service, &names, buf);
        }
    }
}

/// What one service's generated items are called. Every name is the obvious one (`Greeter`,
/// `GreeterServer`, `GreeterClient`, `GreeterBlockingClient`, one method per RPC in snake case)
/// unless a message, an enum, another service's item or a name the generated type already has
/// takes it; then underscores are appended until it is free, as prost does for keywords.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    service: String,
    server: String,
    client: String,
    blocking: String,
    /// Trait method per RPC, in order.
    trait_methods: Vec<String>,
    /// Client method per RPC, in order (the same in the blocking client).
    client_methods: Vec<String>,
}

/// The names of a service's types, chosen for its whole package.
#[derive(Debug, Clone)]
pub(crate) struct TypeNames {
    service: String,
    server: String,
    client: String,
    blocking: String,
}

/// What the generated clients define themselves, and what the traits they derive bring
/// (`Clone`, `Debug`); an RPC method of the same name would hide or clash with them.
const CLIENT_OWN: &[&str] = &["new", "connect", "channel", "clone", "clone_from", "fmt"];

/// `name`, or `name_`, `name__`… whichever `taken` does not hold; it is then taken.
fn claim(name: &str, taken: &mut HashSet<String>) -> String {
    let mut name = name.to_owned();
    while taken.contains(&name) {
        name.push('_');
    }
    taken.insert(name.clone());
    name
}

impl Names {
    fn new(types: TypeNames, service: &Service) -> Names {
        // Two RPCs may share a snake-case name (`GetFoo` and `get_foo`).
        let mut seen = HashSet::new();
        let trait_methods = service
            .methods
            .iter()
            .map(|m| claim(&m.name, &mut seen))
            .collect();
        let mut seen = CLIENT_OWN.iter().map(|s| (*s).to_owned()).collect();
        let client_methods = service
            .methods
            .iter()
            .map(|m| claim(&m.name, &mut seen))
            .collect();
        Names {
            service: types.service,
            server: types.server,
            client: types.client,
            blocking: types.blocking,
            trait_methods,
            client_methods,
        }
    }
}

/// prost's name for a message, enum or service: upper camel case, `Self` suffixed.
fn rust_type_name(proto: &str) -> String {
    let name = proto.to_upper_camel_case();
    if name == "Self" {
        format!("{name}_")
    } else {
        name
    }
}

/// Chooses the type names of every service in `files`, given the messages and enums each
/// package module holds.
pub(crate) fn choose_names(files: &[FileDescriptorProto]) -> HashMap<(String, String), TypeNames> {
    let mut taken: HashMap<&str, HashSet<String>> = HashMap::new();
    for file in files {
        let names = taken.entry(file.package()).or_default();
        let types = file.message_type.iter().map(|m| m.name());
        for name in types.chain(file.enum_type.iter().map(|e| e.name())) {
            names.insert(rust_type_name(name));
        }
    }
    // Traits first (each service's own name, unless a type has it), so that a service called
    // `GreeterClient` keeps its name and `Greeter`'s client moves aside.
    let mut traits = HashMap::new();
    for file in files {
        let names = taken.entry(file.package()).or_default();
        for s in &file.service {
            let name = claim(&rust_type_name(s.name()), names);
            traits.insert((file.package().to_owned(), s.name().to_owned()), name);
        }
    }
    let mut chosen = HashMap::new();
    for file in files {
        let names = taken.entry(file.package()).or_default();
        for s in &file.service {
            let key = (file.package().to_owned(), s.name().to_owned());
            let base = rust_type_name(s.name());
            let types = TypeNames {
                service: traits[&key].clone(),
                server: claim(&format!("{base}Server"), names),
                client: claim(&format!("{base}Client"), names),
                blocking: claim(&format!("{base}BlockingClient"), names),
            };
            chosen.insert(key, types);
        }
    }
    chosen
}

/// `/package.Service/Method`, or `/Service/Method` without a package.
fn path(service: &Service, method: &Method) -> String {
    if service.package.is_empty() {
        format!("/{}/{}", service.proto_name, method.proto_name)
    } else {
        format!(
            "/{}.{}/{}",
            service.package, service.proto_name, method.proto_name
        )
    }
}

fn full_name(service: &Service) -> String {
    if service.package.is_empty() {
        service.proto_name.clone()
    } else {
        format!("{}.{}", service.package, service.proto_name)
    }
}

/// Proto comments as doc attributes. Lines are trimmed so that indented text in a comment never
/// becomes a Rust code block (and a doc test) in the user's crate.
fn docs(comments: &Comments, indent: &str, buf: &mut String) {
    for line in &comments.leading {
        let line = format!(" {}", line.trim());
        let _ = writeln!(buf, "{indent}#[doc = {line:?}]");
    }
}

fn doc(text: &str, indent: &str, buf: &mut String) {
    let _ = writeln!(buf, "{indent}#[doc = {text:?}]");
}

const C: &str = "::rgrpc::codegen";

fn request_type(method: &Method) -> String {
    if method.client_streaming {
        format!("{C}::Request<{C}::Streaming<{}>>", method.input_type)
    } else {
        format!("{C}::Request<{}>", method.input_type)
    }
}

fn response_type(method: &Method) -> String {
    if method.server_streaming {
        format!("{C}::Response<{C}::ResponseStream<{}>>", method.output_type)
    } else {
        format!("{C}::Response<{}>", method.output_type)
    }
}

fn server(service: &Service, names: &Names, buf: &mut String) {
    let name = &names.service;
    let server = &names.server;
    let full = full_name(service);

    // The trait users implement.
    docs(&service.comments, "", buf);
    if service.comments.leading.is_empty() {
        doc(
            &format!(
                " The server side of `{full}`: implement it, then register `{server}::new(..)`."
            ),
            "",
            buf,
        );
    }
    let _ = writeln!(
        buf,
        // An RPC may be called `New` or `FromX`, which clippy expects to take no `self`.
        "#[allow(clippy::wrong_self_convention)]\npub trait {name}: ::core::marker::Send + ::core::marker::Sync + 'static {{"
    );
    for (method, method_name) in service.methods.iter().zip(&names.trait_methods) {
        docs(&method.comments, "    ", buf);
        if method.comments.leading.is_empty() {
            doc(
                &format!(" Handles `{}`.", path(service, method)),
                "    ",
                buf,
            );
        }
        let _ = writeln!(
            buf,
            "    fn {}(&self, request: {}) -> impl ::core::future::Future<Output = ::core::result::Result<{}, {C}::Status>> + ::core::marker::Send;",
            method_name,
            request_type(method),
            response_type(method),
        );
    }
    buf.push_str("}\n");

    // The wrapper the server registers.
    doc(
        &format!(" Registers a [`{name}`] implementation with a server as `{full}`."),
        "",
        buf,
    );
    let _ = writeln!(
        buf,
        "pub struct {server}<T> {{\n    inner: ::std::sync::Arc<T>,\n}}"
    );
    let _ = writeln!(
        buf,
        r#"#[allow(dead_code)]
impl<T: {name}> {server}<T> {{
    /// The fully qualified service name.
    pub const SERVICE_NAME: &'static str = "{full}";
    /// Wraps an implementation.
    pub fn new(inner: T) -> Self {{
        Self {{ inner: ::std::sync::Arc::new(inner) }}
    }}
    /// Wraps an implementation that is shared elsewhere too.
    pub fn from_arc(inner: ::std::sync::Arc<T>) -> Self {{
        Self {{ inner }}
    }}
}}
impl<T> ::core::clone::Clone for {server}<T> {{
    fn clone(&self) -> Self {{
        Self {{ inner: ::std::sync::Arc::clone(&self.inner) }}
    }}
}}
impl<T> ::core::fmt::Debug for {server}<T> {{
    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {{
        f.write_str("{server}")
    }}
}}"#
    );
    let methods: Vec<String> = service
        .methods
        .iter()
        .map(|m| format!("{:?}", m.proto_name))
        .collect();
    let _ = writeln!(
        buf,
        r#"impl<T: {name}> {C}::Service for {server}<T> {{
    fn name(&self) -> &'static str {{
        "{full}"
    }}
    fn methods(&self) -> &'static [&'static str] {{
        &[{}]
    }}
    fn call(&self, method: usize, call: {C}::ServerCall) -> {C}::BoxFuture<{C}::Code> {{
        let inner = ::std::sync::Arc::clone(&self.inner);
        match method {{"#,
        methods.join(", ")
    );
    for (i, (method, method_name)) in service.methods.iter().zip(&names.trait_methods).enumerate() {
        let kind = match (method.client_streaming, method.server_streaming) {
            (false, false) => "unary",
            (false, true) => "server_streaming",
            (true, false) => "client_streaming",
            (true, true) => "bidi_streaming",
        };
        let _ = writeln!(
            buf,
            // Called through the trait: the implementing type may have a method of the same name
            // (an RPC called `Clone`, say).
            "            {i} => ::std::boxed::Box::pin({C}::{kind}(call, move |request: {}| async move {{ <T as {name}>::{method_name}(&*inner, request).await }})),",
            request_type(method),
        );
    }
    let _ = writeln!(
        buf,
        "            _ => {C}::unknown_method(call),\n        }}\n    }}\n}}"
    );
}

fn client(service: &Service, names: &Names, buf: &mut String) {
    let client = &names.client;
    let full = full_name(service);
    doc(
        &format!(" A client for `{full}`. Cheap to clone; clones share one connection."),
        "",
        buf,
    );
    let _ = writeln!(
        buf,
        r#"#[derive(Debug, Clone)]
pub struct {client} {{
    channel: {C}::Channel,
}}
#[allow(dead_code, clippy::wrong_self_convention)]
impl {client} {{
    /// Connects to `target`, such as `http://localhost:50051`.
    pub async fn connect(target: &str) -> ::core::result::Result<Self, {C}::Error> {{
        ::core::result::Result::Ok(Self::new({C}::Channel::connect(target).await?))
    }}
    /// A client over an existing channel.
    pub fn new(channel: {C}::Channel) -> Self {{
        Self {{ channel }}
    }}
    /// The channel this client calls over.
    pub fn channel(&self) -> &{C}::Channel {{
        &self.channel
    }}"#
    );
    for (method, name) in service.methods.iter().zip(&names.client_methods) {
        docs(&method.comments, "    ", buf);
        if method.comments.leading.is_empty() {
            doc(&format!(" Calls `{}`.", path(service, method)), "    ", buf);
        }
        let request = client_request(method);
        let response = if method.server_streaming {
            format!(
                "{C}::ClientResponse<{C}::Streaming<{}>>",
                method.output_type
            )
        } else {
            format!("{C}::ClientResponse<{}>", method.output_type)
        };
        let (call, into) = match (method.client_streaming, method.server_streaming) {
            (false, false) => ("unary", "IntoRequest::into_request"),
            (false, true) => ("server_streaming", "IntoRequest::into_request"),
            (true, false) => (
                "client_streaming",
                "IntoStreamingRequest::into_streaming_request",
            ),
            (true, true) => ("streaming", "IntoStreamingRequest::into_streaming_request"),
        };
        let _ = writeln!(
            buf,
            r#"    pub async fn {name}(&self, request: {request}) -> ::core::result::Result<{response}, {C}::Status> {{
        let path = {C}::PathAndQuery::from_static({path:?});
        self.channel.{call}(path, {C}::{into}(request)).await
    }}"#,
            path = path(service, method),
        );
    }
    buf.push_str("}\n");
    blocking_client(service, names, buf);
}

/// What a client method accepts: a message or a request wrapping one, or for a client-streaming
/// method a stream of messages or a request wrapping one.
fn client_request(method: &Method) -> String {
    if method.client_streaming {
        format!(
            "impl {C}::IntoStreamingRequest<Message = {}>",
            method.input_type
        )
    } else {
        format!("impl {C}::IntoRequest<{}>", method.input_type)
    }
}

/// The same client for synchronous code: each method blocks until its call completes, and
/// response streams are iterators.
fn blocking_client(service: &Service, names: &Names, buf: &mut String) {
    let client = &names.client;
    let blocking = &names.blocking;
    let full = full_name(service);
    doc(
        &format!(
            " A blocking client for `{full}`, for synchronous code (it must not run on a \
             current-thread async runtime's thread). Cheap to clone."
        ),
        "",
        buf,
    );
    let _ = writeln!(
        buf,
        r#"#[derive(Debug, Clone)]
pub struct {blocking} {{
    inner: {client},
}}
#[allow(dead_code, clippy::wrong_self_convention)]
impl {blocking} {{
    /// Connects to `target`, such as `http://localhost:50051`, waiting until it is ready.
    pub fn connect(target: &str) -> ::core::result::Result<Self, {C}::Error> {{
        let channel = {C}::block_on({C}::Channel::connect(target))??;
        ::core::result::Result::Ok(Self::new(channel))
    }}
    /// A blocking client over an existing channel.
    pub fn new(channel: {C}::Channel) -> Self {{
        Self {{ inner: {client}::new(channel) }}
    }}
    /// The channel this client calls over.
    pub fn channel(&self) -> &{C}::Channel {{
        self.inner.channel()
    }}"#
    );
    for (method, name) in service.methods.iter().zip(&names.client_methods) {
        docs(&method.comments, "    ", buf);
        if method.comments.leading.is_empty() {
            doc(
                &format!(
                    " Calls `{}` and waits for the answer.",
                    path(service, method)
                ),
                "    ",
                buf,
            );
        }
        let request = client_request(method);
        if method.server_streaming {
            let _ = writeln!(
                buf,
                r#"    pub fn {name}(&self, request: {request}) -> ::core::result::Result<{C}::ClientResponse<{C}::BlockingStreaming<{out}>>, {C}::Status> {{
        let response = {C}::block_on(self.inner.{name}(request))??;
        ::core::result::Result::Ok(response.map({C}::BlockingStreaming::new))
    }}"#,
                out = method.output_type,
            );
        } else {
            let _ = writeln!(
                buf,
                r#"    pub fn {name}(&self, request: {request}) -> ::core::result::Result<{C}::ClientResponse<{out}>, {C}::Status> {{
        {C}::block_on(self.inner.{name}(request))?
    }}"#,
                out = method.output_type,
            );
        }
    }
    buf.push_str("}\n");
}
