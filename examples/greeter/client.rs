//! `greeter-client [--addr URL] [NAME [NUMBER]]`: prints the greeting and the square root, the
//! float32 result widened to a double and printed as Python prints it.

use rgrpc_examples::greeter::{GreeterClient, HelloRequest, Number};

#[tokio::main]
async fn main() {
    let args = rgrpc_examples::Args::parse(
        "http://localhost:50051",
        &[],
        "greeter-client [--addr URL] [NAME [NUMBER]]",
    );
    let name = args
        .positional
        .first()
        .cloned()
        .unwrap_or_else(|| "you".into());
    let number_text = args
        .positional
        .get(1)
        .cloned()
        .unwrap_or_else(|| "231".into());
    let number: f32 = number_text.parse().unwrap_or_else(|_| {
        eprintln!("error: {number_text:?} is not a number");
        std::process::exit(2);
    });
    rgrpc_examples::run_client(|| async move {
        let client = GreeterClient::connect(&args.addr).await?;
        let reply = client.say_hello(HelloRequest { name }).await?;
        println!("Greeter client received: {}", reply.into_inner().message);
        let root = client
            .square(Number { value: number })
            .await?
            .into_inner()
            .value;
        println!(
            "client Square {number_text} get :{}",
            rgrpc_examples::py_float(f64::from(root))
        );
        Ok(())
    })
    .await;
}
