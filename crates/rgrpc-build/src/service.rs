//! Service code: for each `.proto` service, a server trait with one `async fn` per method, a
//! server wrapper to register it, and a client with one method per RPC.
//!
//! Generated code names the runtime only through `::rgrpc::codegen`, so the runtime's public API
//! can change without breaking it.

use std::fmt::Write as _;

use prost_build::{Comments, Method, Service, ServiceGenerator};

/// Writes service code next to the messages `prost-build` writes.
#[derive(Debug, Clone)]
pub(crate) struct Generator {
    pub(crate) server: bool,
    pub(crate) client: bool,
}

impl ServiceGenerator for Generator {
    fn generate(&mut self, service: Service, buf: &mut String) {
        if self.server {
            server(&service, buf);
        }
        if self.client {
            client(&service, buf);
        }
    }
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

fn server(service: &Service, buf: &mut String) {
    let name = &service.name;
    let server = format!("{name}Server");
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
        "pub trait {name}: ::core::marker::Send + ::core::marker::Sync + 'static {{"
    );
    for method in &service.methods {
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
            method.name,
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
    for (i, method) in service.methods.iter().enumerate() {
        let kind = match (method.client_streaming, method.server_streaming) {
            (false, false) => "unary",
            (false, true) => "server_streaming",
            (true, false) => "client_streaming",
            (true, true) => "bidi_streaming",
        };
        let _ = writeln!(
            buf,
            "            {i} => ::std::boxed::Box::pin({C}::{kind}(call, move |request: {}| async move {{ inner.{}(request).await }})),",
            request_type(method),
            method.name
        );
    }
    let _ = writeln!(
        buf,
        "            _ => {C}::unknown_method(call),\n        }}\n    }}\n}}"
    );
}

fn client(service: &Service, buf: &mut String) {
    let client = format!("{}Client", service.name);
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
#[allow(dead_code)]
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
    for method in &service.methods {
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
            name = method.name,
            path = path(service, method),
        );
    }
    buf.push_str("}\n");
    blocking_client(service, buf);
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
fn blocking_client(service: &Service, buf: &mut String) {
    let client = format!("{}Client", service.name);
    let blocking = format!("{}BlockingClient", service.name);
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
#[allow(dead_code)]
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
    for method in &service.methods {
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
        let name = &method.name;
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
