//! gRPC server reflection for rgrpc servers: `grpc.reflection.v1.ServerReflection` and
//! `grpc.reflection.v1alpha.ServerReflection`, answered from the file descriptor sets that
//! `rgrpc-build` writes (`file_descriptor_set_path`).
//!
//! ```no_run
//! # const FILE_DESCRIPTOR_SET: &[u8] = &[];
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let reflection = rgrpc_reflection::Reflection::from_sets(&[FILE_DESCRIPTOR_SET])?;
//! rgrpc::Server::builder()
//!     .add_service(reflection.v1())
//!     .add_service(reflection.v1alpha())
//!     .serve("[::]:50051")
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! Answers list_services, file_by_filename, file_containing_symbol, file_containing_extension and
//! all_extension_numbers_of_type, each file with its transitive dependencies. The services listed
//! are those of the registered sets, plus reflection itself.

#![deny(missing_docs)]

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::sync::Arc;

use prost::Message;
use prost_reflect::{DescriptorPool, FileDescriptor};
use rgrpc::{Code, Request, Response, ResponseStream, Status, Streaming};

/// Generated code of both reflection versions, clients included. Checked in and compared with a
/// fresh generation by `tests/generated.rs`.
#[allow(missing_docs)]
pub mod pb {
    /// `grpc.reflection.v1`.
    pub mod v1 {
        include!("generated/grpc.reflection.v1.rs");
    }
    /// `grpc.reflection.v1alpha`.
    pub mod v1alpha {
        include!("generated/grpc.reflection.v1alpha.rs");
    }
}

use pb::v1;
use v1::server_reflection_request::MessageRequest;
use v1::server_reflection_response::MessageResponse;

/// The encoded file descriptor set of the reflection protos themselves.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!("generated/reflection.bin");

/// A descriptor set that could not be read.
#[derive(Debug)]
pub struct Error(prost_reflect::DescriptorError);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid file descriptor set: {}", self.0)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// The schema the reflection services answer from; cheap to clone.
#[derive(Clone)]
pub struct Reflection {
    inner: Arc<Schema>,
}

struct Schema {
    pool: DescriptorPool,
    services: Vec<String>,
}

impl fmt::Debug for Reflection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reflection")
            .field("services", &self.inner.services)
            .finish()
    }
}

impl Reflection {
    /// A schema of the given encoded `FileDescriptorSet`s (and the reflection protos).
    pub fn from_sets(sets: &[&[u8]]) -> Result<Reflection, Error> {
        let mut pool = DescriptorPool::new();
        for set in sets.iter().copied().chain([FILE_DESCRIPTOR_SET]) {
            pool.decode_file_descriptor_set(set).map_err(Error)?;
        }
        let services: BTreeSet<String> =
            pool.services().map(|s| s.full_name().to_owned()).collect();
        Ok(Reflection {
            inner: Arc::new(Schema {
                pool,
                services: services.into_iter().collect(),
            }),
        })
    }

    /// The fully qualified names of the services in the schema.
    pub fn services(&self) -> &[String] {
        &self.inner.services
    }

    /// The `grpc.reflection.v1` service.
    pub fn v1(&self) -> v1::ServerReflectionServer<ReflectionV1> {
        v1::ServerReflectionServer::new(ReflectionV1(self.clone()))
    }

    /// The `grpc.reflection.v1alpha` service, for older clients.
    pub fn v1alpha(&self) -> pb::v1alpha::ServerReflectionServer<ReflectionV1alpha> {
        pb::v1alpha::ServerReflectionServer::new(ReflectionV1alpha(self.clone()))
    }

    /// The answer to one request.
    fn answer(&self, request: v1::ServerReflectionRequest) -> v1::ServerReflectionResponse {
        let response = match &request.message_request {
            None => Err(Status::invalid_argument("the request names no question")),
            Some(MessageRequest::ListServices(_)) => Ok(MessageResponse::ListServicesResponse(
                v1::ListServiceResponse {
                    service: self
                        .inner
                        .services
                        .iter()
                        .map(|name| v1::ServiceResponse { name: name.clone() })
                        .collect(),
                },
            )),
            Some(MessageRequest::FileByFilename(name)) => self
                .inner
                .pool
                .get_file_by_name(name)
                .ok_or_else(|| Status::not_found(format!("no file named {name:?}")))
                .map(files),
            Some(MessageRequest::FileContainingSymbol(symbol)) => self
                .file_of_symbol(symbol)
                .ok_or_else(|| Status::not_found(format!("no symbol {symbol:?}")))
                .map(files),
            Some(MessageRequest::FileContainingExtension(ext)) => self
                .inner
                .pool
                .get_message_by_name(&ext.containing_type)
                .and_then(|m| m.get_extension(ext.extension_number as u32))
                .ok_or_else(|| {
                    Status::not_found(format!(
                        "no extension {} of {:?}",
                        ext.extension_number, ext.containing_type
                    ))
                })
                .map(|e| files(e.parent_file())),
            Some(MessageRequest::AllExtensionNumbersOfType(name)) => self
                .inner
                .pool
                .get_message_by_name(name)
                .ok_or_else(|| Status::not_found(format!("no message type {name:?}")))
                .map(|m| {
                    MessageResponse::AllExtensionNumbersResponse(v1::ExtensionNumberResponse {
                        base_type_name: m.full_name().to_owned(),
                        extension_number: m.extensions().map(|e| e.number() as i32).collect(),
                    })
                }),
        };
        let message_response = Some(response.unwrap_or_else(|status| {
            MessageResponse::ErrorResponse(v1::ErrorResponse {
                error_code: status.code() as i32,
                error_message: status.message().to_owned(),
            })
        }));
        v1::ServerReflectionResponse {
            valid_host: request.host.clone(),
            original_request: Some(request),
            message_response,
        }
    }

    /// The file declaring a symbol: a message, enum, service, method, field, enum value or
    /// extension.
    fn file_of_symbol(&self, symbol: &str) -> Option<FileDescriptor> {
        let pool = &self.inner.pool;
        let symbol = symbol.trim_start_matches('.');
        if let Some(m) = pool.get_message_by_name(symbol) {
            return Some(m.parent_file());
        }
        if let Some(e) = pool.get_enum_by_name(symbol) {
            return Some(e.parent_file());
        }
        if let Some(s) = pool.get_service_by_name(symbol) {
            return Some(s.parent_file());
        }
        if let Some(e) = pool.get_extension_by_name(symbol) {
            return Some(e.parent_file());
        }
        // A member: service.method, message.field or enum.value.
        let (parent, member) = symbol.rsplit_once('.')?;
        if let Some(s) = pool.get_service_by_name(parent) {
            return s
                .methods()
                .any(|m| m.name() == member)
                .then(|| s.parent_file());
        }
        if let Some(m) = pool.get_message_by_name(parent) {
            return m.get_field_by_name(member).map(|_| m.parent_file());
        }
        pool.get_enum_by_name(parent)
            .and_then(|e| e.get_value_by_name(member).map(|_| e.parent_file()))
    }
}

/// A file and everything it imports, each encoded as a `FileDescriptorProto`.
fn files(file: FileDescriptor) -> MessageResponse {
    let mut seen = HashSet::new();
    let mut order = Vec::new();
    let mut stack = vec![file];
    while let Some(f) = stack.pop() {
        if !seen.insert(f.name().to_owned()) {
            continue;
        }
        stack.extend(f.dependencies());
        order.push(f.file_descriptor_proto().encode_to_vec());
    }
    MessageResponse::FileDescriptorResponse(v1::FileDescriptorResponse {
        file_descriptor_proto: order,
    })
}

/// Answers a stream of requests, in order, until the client stops.
fn serve_stream<Req, Resp>(
    reflection: Reflection,
    mut requests: Streaming<Req>,
    to_v1: fn(Req) -> v1::ServerReflectionRequest,
    from_v1: fn(v1::ServerReflectionResponse) -> Resp,
) -> ResponseStream<Resp>
where
    Req: Message + Default + Send + 'static,
    Resp: Message + Send + 'static,
{
    let (tx, stream) = ResponseStream::channel(4);
    tokio::spawn(async move {
        loop {
            match requests.message().await {
                Ok(Some(request)) => {
                    let response = reflection.answer(to_v1(request));
                    if tx.send(from_v1(response)).await.is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(status) if status.code() == Code::Cancelled => return,
                Err(status) => return tx.fail(status).await,
            }
        }
    });
    stream
}

/// The v1 service.
#[derive(Debug, Clone)]
pub struct ReflectionV1(Reflection);

impl v1::ServerReflection for ReflectionV1 {
    async fn server_reflection_info(
        &self,
        request: Request<Streaming<v1::ServerReflectionRequest>>,
    ) -> Result<Response<ResponseStream<v1::ServerReflectionResponse>>, Status> {
        let stream = serve_stream(self.0.clone(), request.into_inner(), |r| r, |r| r);
        Ok(Response::new(stream))
    }
}

/// The v1alpha service: the same messages under another package, so each is carried across by
/// re-encoding (the field numbers are the same).
#[derive(Debug, Clone)]
pub struct ReflectionV1alpha(Reflection);

fn recode<A: Message, B: Message + Default>(a: A) -> B {
    // Both sides are generated from protos with the same fields and numbers.
    B::decode(a.encode_to_vec().as_slice()).unwrap_or_default()
}

impl pb::v1alpha::ServerReflection for ReflectionV1alpha {
    async fn server_reflection_info(
        &self,
        request: Request<Streaming<pb::v1alpha::ServerReflectionRequest>>,
    ) -> Result<Response<ResponseStream<pb::v1alpha::ServerReflectionResponse>>, Status> {
        let stream = serve_stream(self.0.clone(), request.into_inner(), recode, recode);
        Ok(Response::new(stream))
    }
}
