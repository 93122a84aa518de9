//! `user-info-server [--addr ADDR] [--log]`: answers `Info` with `id: <id>; name: <name>`.

use rgrpc::{Request, Response, Server, Status};
use rgrpc_examples::user_info::{Reply, User, UserInfo, UserInfoServer};

struct Service {
    log: bool,
    addr: String,
}

impl UserInfo for Service {
    async fn info(&self, request: Request<User>) -> Result<Response<Reply>, Status> {
        let user = request.into_inner();
        if self.log {
            println!("{} Info id={}", self.addr, user.id);
        }
        Ok(Response::new(Reply {
            message: format!("id: {}; name: {}", user.id, user.name),
        }))
    }
}

#[tokio::main]
async fn main() {
    let args =
        rgrpc_examples::Args::parse("[::]:50051", &[], "user-info-server [--addr ADDR] [--log]");
    let service = Service {
        log: args.log,
        addr: args.addr.clone(),
    };
    rgrpc_examples::serve(
        Server::builder().add_service(UserInfoServer::new(service)),
        &args.addr,
        rgrpc_examples::user_info::FILE_DESCRIPTOR_SET,
    )
    .await;
}
