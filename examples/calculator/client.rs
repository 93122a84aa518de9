//! `calculator-client [--addr URL] [A B]`: prints `A + B = SUM` and `A * B = PRODUCT`.

use rgrpc_examples::calculator::{AddRequest, CalClient, MultiplyRequest};

#[tokio::main]
async fn main() {
    let args = rgrpc_examples::Args::parse(
        "http://localhost:50051",
        &[],
        "calculator-client [--addr URL] [A B]",
    );
    let number = |i: usize, default: i32| -> i32 {
        match args.positional.get(i) {
            None => default,
            Some(s) => s.parse().unwrap_or_else(|_| {
                eprintln!("error: {s:?} is not a 32-bit integer");
                std::process::exit(2);
            }),
        }
    };
    let (a, b) = (number(0, 100), number(1, 300));
    rgrpc_examples::run_client(|| async move {
        let client = CalClient::connect(&args.addr).await?;
        let sum = client
            .add(AddRequest {
                number1: a,
                number2: b,
            })
            .await?
            .into_inner()
            .number;
        println!("{a} + {b} = {sum}");
        let product = client
            .multiply(MultiplyRequest {
                number1: a,
                number2: b,
            })
            .await?
            .into_inner()
            .number;
        println!("{a} * {b} = {product}");
        Ok(())
    })
    .await;
}
