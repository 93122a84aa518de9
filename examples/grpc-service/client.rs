//! `grpc-service-client [--addr URL] [DATA SKILL]`: prints `received: <result>`.

use rgrpc_examples::grpc_service::{GrpcServiceClient, HelloRequest, Skill};

#[tokio::main]
async fn main() {
    let args = rgrpc_examples::Args::parse(
        "http://localhost:50052",
        &[],
        "grpc-service-client [--addr URL] [DATA SKILL]",
    );
    let data = args
        .positional
        .first()
        .cloned()
        .unwrap_or_else(|| "xiao gang".into());
    let skill = args
        .positional
        .get(1)
        .cloned()
        .unwrap_or_else(|| "engineer".into());
    rgrpc_examples::run_client(|| async move {
        let client = GrpcServiceClient::connect(&args.addr).await?;
        let reply = client
            .hello(HelloRequest {
                data,
                skill: Some(Skill { name: skill }),
            })
            .await?;
        println!("received: {}", reply.into_inner().result);
        Ok(())
    })
    .await;
}
