//! `file-controller-client [--addr URL]`: reads a missing file, writes one, reads it back.

use rgrpc_examples::file_controller::{FileControllerClient, Files};

#[tokio::main]
async fn main() {
    let args = rgrpc_examples::Args::parse(
        "http://localhost:50051",
        &[],
        "file-controller-client [--addr URL]",
    );
    rgrpc_examples::run_client(|| async move {
        let client = FileControllerClient::connect(&args.addr).await?;
        let file = |name: &str, text: &str| Files {
            filename: name.into(),
            text: text.into(),
        };
        let missing = client.read(file("aaaa.txt", "")).await?.into_inner();
        println!("File Read: {}", missing.text);
        let written = client
            .write(file("aaaa2.txt", "37183714ghgjh243"))
            .await?
            .into_inner();
        println!("File Write: {}", written.code);
        let back = client.read(file("aaaa2.txt", "")).await?.into_inner();
        println!("File Read: {}", back.text);
        Ok(())
    })
    .await;
}
