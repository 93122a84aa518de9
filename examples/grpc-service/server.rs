//! `grpc-service-server [--addr ADDR]`: `/GrpcService/hello` joins data and skill name.

use rgrpc::{Request, Response, Server, Status};
use rgrpc_examples::grpc_service::{GrpcService, GrpcServiceServer, HelloRequest, HelloResponse};

struct Service;

impl GrpcService for Service {
    async fn hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloResponse>, Status> {
        let r = request.into_inner();
        let skill = r.skill.map(|s| s.name).unwrap_or_default();
        Ok(Response::new(HelloResponse {
            result: format!("{}{} this is gprc test service", r.data, skill),
            map_result: [("12".to_owned(), 1232)].into_iter().collect(),
        }))
    }
}

#[tokio::main]
async fn main() {
    let args = rgrpc_examples::Args::parse("[::]:50052", &[], "grpc-service-server [--addr ADDR]");
    rgrpc_examples::serve(
        Server::builder().add_service(GrpcServiceServer::new(Service)),
        &args.addr,
        rgrpc_examples::grpc_service::FILE_DESCRIPTOR_SET,
    )
    .await;
}
