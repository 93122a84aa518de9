//! Reflection's extension queries over the wire (v1; v1alpha answers from the same code):
//! `file_containing_extension` (the file that declares an extension, with its imports),
//! `all_extension_numbers_of_type`, and extensions found by symbol, including extensions declared
//! in a file other than the message's; unknown types and numbers answer NOT_FOUND.

use prost::Message;
use prost_types::FileDescriptorProto;
use rgrpc_reflection::Reflection;
use rgrpc_reflection::pb::v1::server_reflection_request::MessageRequest;
use rgrpc_reflection::pb::v1::server_reflection_response::MessageResponse;
use rgrpc_reflection::pb::v1::{ExtensionRequest, ServerReflectionClient, ServerReflectionRequest};

const BASE: &str = r#"syntax = "proto2";
package demo;
message Base {
  optional string name = 1;
  extensions 100 to 199;
}
extend Base {
  optional string note = 100;
  optional int32 weight = 150;
}
service Things {
  rpc Get(Base) returns (Base);
}
"#;

const MORE: &str = r#"syntax = "proto2";
package demo.more;
import "base.proto";
extend demo.Base {
  optional bool flag = 120;
}
message Holder {
  extend demo.Base {
    optional Holder holder = 199;
  }
  optional int32 id = 1;
}
"#;

fn descriptor_set() -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("rgrpc-reflection-ext-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("base.proto"), BASE).unwrap();
    std::fs::write(dir.join("more.proto"), MORE).unwrap();
    rgrpc_build::configure()
        .out_dir(&dir)
        .emit_rerun_if_changed(false)
        .file_descriptor_set_path(dir.join("set.bin"))
        .compile(&[dir.join("base.proto"), dir.join("more.proto")], &[&dir])
        .unwrap();
    let set = std::fs::read(dir.join("set.bin")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    set
}

/// Sends `requests` on one reflection stream and returns the answers in order.
async fn ask(
    client: &ServerReflectionClient,
    requests: Vec<MessageRequest>,
) -> Vec<MessageResponse> {
    let requests = requests.into_iter().map(|r| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(r),
    });
    let mut answers = client
        .server_reflection_info(futures_util::stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(answer) = answers.message().await.unwrap() {
        out.push(answer.message_response.expect("an answer"));
    }
    out
}

fn file_names(answer: &MessageResponse) -> Vec<String> {
    match answer {
        MessageResponse::FileDescriptorResponse(files) => files
            .file_descriptor_proto
            .iter()
            .map(|bytes| {
                FileDescriptorProto::decode(&bytes[..])
                    .unwrap()
                    .name()
                    .to_owned()
            })
            .collect(),
        other => panic!("expected files, got {other:?}"),
    }
}

fn not_found(answer: &MessageResponse) -> bool {
    matches!(answer, MessageResponse::ErrorResponse(e) if e.error_code == rgrpc::Code::NotFound as i32)
}

#[tokio::test]
async fn extension_queries_answer_from_every_file() {
    let set = descriptor_set();
    let reflection = Reflection::from_sets(&[&set]).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        rgrpc::Server::builder()
            .add_service(reflection.v1())
            .add_service(reflection.v1alpha())
            .serve_with_listener(listener, async {
                let _ = stopped.await;
            }),
    );
    let client = ServerReflectionClient::connect(&format!("http://{addr}"))
        .await
        .unwrap();
    let ext = |number| {
        MessageRequest::FileContainingExtension(ExtensionRequest {
            containing_type: "demo.Base".into(),
            extension_number: number,
        })
    };
    let answers = ask(
        &client,
        vec![
            ext(150),
            ext(120),
            ext(199),
            ext(101),
            MessageRequest::FileContainingExtension(ExtensionRequest {
                containing_type: "demo.Nope".into(),
                extension_number: 100,
            }),
            MessageRequest::AllExtensionNumbersOfType("demo.Base".into()),
            MessageRequest::AllExtensionNumbersOfType("demo.more.Holder".into()),
            MessageRequest::AllExtensionNumbersOfType("demo.Nope".into()),
            MessageRequest::FileContainingSymbol("demo.note".into()),
            MessageRequest::FileContainingSymbol("demo.more.Holder.holder".into()),
        ],
    )
    .await;
    assert_eq!(answers.len(), 10);
    // The declaring file comes first, then what it imports.
    assert_eq!(file_names(&answers[0]), ["base.proto"]);
    assert_eq!(file_names(&answers[1]), ["more.proto", "base.proto"]);
    assert_eq!(file_names(&answers[2]), ["more.proto", "base.proto"]);
    assert!(not_found(&answers[3]), "{:?}", answers[3]);
    assert!(not_found(&answers[4]), "{:?}", answers[4]);
    match &answers[5] {
        MessageResponse::AllExtensionNumbersResponse(numbers) => {
            assert_eq!(numbers.base_type_name, "demo.Base");
            let mut got = numbers.extension_number.clone();
            got.sort();
            assert_eq!(got, [100, 120, 150, 199]);
        }
        other => panic!("expected numbers, got {other:?}"),
    }
    match &answers[6] {
        MessageResponse::AllExtensionNumbersResponse(numbers) => {
            assert_eq!(numbers.base_type_name, "demo.more.Holder");
            assert!(numbers.extension_number.is_empty());
        }
        other => panic!("expected numbers, got {other:?}"),
    }
    assert!(not_found(&answers[7]), "{:?}", answers[7]);
    assert_eq!(file_names(&answers[8]), ["base.proto"]);
    assert_eq!(file_names(&answers[9]), ["more.proto", "base.proto"]);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
