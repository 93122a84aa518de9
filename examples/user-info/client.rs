//! `user-info-client [--addr URL] [ID NAME]`: prints `用户信息: id: <id>; name: <name>`.

use rgrpc_examples::user_info::{User, UserInfoClient};

#[tokio::main]
async fn main() {
    let args = rgrpc_examples::Args::parse(
        "http://localhost:50051",
        &[],
        "user-info-client [--addr URL] [ID NAME]",
    );
    let id = args
        .positional
        .first()
        .cloned()
        .unwrap_or_else(|| "1".into());
    let name = args
        .positional
        .get(1)
        .cloned()
        .unwrap_or_else(|| "zhangsan".into());
    rgrpc_examples::run_client(|| async move {
        let client = UserInfoClient::connect(&args.addr).await?;
        let reply = client.info(User { id, name }).await?;
        println!("用户信息: {}", reply.into_inner().message);
        Ok(())
    })
    .await;
}
