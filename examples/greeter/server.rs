//! `greeter-server [--addr ADDR]`: `SayHello` greets; `Square` returns the square root, and
//! INVALID_ARGUMENT for a negative number.

use rgrpc::{Request, Response, Server, Status};
use rgrpc_examples::greeter::{Greeter, GreeterServer, HelloReply, HelloRequest, Number};

struct Service;

impl Greeter for Service {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        Ok(Response::new(HelloReply {
            message: format!("Hello, {}!", request.into_inner().name),
        }))
    }

    async fn square(&self, request: Request<Number>) -> Result<Response<Number>, Status> {
        let value = request.into_inner().value;
        if value < 0.0 || value.is_nan() {
            return Err(Status::invalid_argument(format!(
                "cannot take the square root of {value}"
            )));
        }
        Ok(Response::new(Number {
            value: value.sqrt(),
        }))
    }
}

#[tokio::main]
async fn main() {
    let args = rgrpc_examples::Args::parse("[::]:50051", &[], "greeter-server [--addr ADDR]");
    rgrpc_examples::serve(
        Server::builder().add_service(GreeterServer::new(Service)),
        &args.addr,
        rgrpc_examples::greeter::FILE_DESCRIPTOR_SET,
    )
    .await;
}
