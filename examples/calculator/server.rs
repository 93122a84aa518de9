//! `calculator-server [--addr ADDR]`: `Add` and `Multiply` on int32.
//!
//! A result that does not fit in int32 fails with OUT_OF_RANGE and says so, instead of wrapping
//! around silently (as C would) or failing with an unrelated error.

use rgrpc::{Request, Response, Server, Status};
use rgrpc_examples::calculator::{AddRequest, Cal, CalServer, MultiplyRequest, ResultReply};

struct Calculator;

impl Cal for Calculator {
    async fn add(&self, request: Request<AddRequest>) -> Result<Response<ResultReply>, Status> {
        let r = request.into_inner();
        let number = r.number1.checked_add(r.number2).ok_or_else(|| {
            Status::out_of_range(format!(
                "{} + {} does not fit in int32",
                r.number1, r.number2
            ))
        })?;
        Ok(Response::new(ResultReply { number }))
    }

    async fn multiply(
        &self,
        request: Request<MultiplyRequest>,
    ) -> Result<Response<ResultReply>, Status> {
        let r = request.into_inner();
        let number = r.number1.checked_mul(r.number2).ok_or_else(|| {
            Status::out_of_range(format!(
                "{} * {} does not fit in int32",
                r.number1, r.number2
            ))
        })?;
        Ok(Response::new(ResultReply { number }))
    }
}

#[tokio::main]
async fn main() {
    let args = rgrpc_examples::Args::parse("[::]:50051", &[], "calculator-server [--addr ADDR]");
    rgrpc_examples::serve(
        Server::builder().add_service(CalServer::new(Calculator)),
        &args.addr,
        rgrpc_examples::calculator::FILE_DESCRIPTOR_SET,
    )
    .await;
}
