//! Generated code for a .proto whose names collide with everything rgrpc-build generates
//! (`proto/collisions.proto`): it compiles, every RPC reaches its own handler, and the clients
//! keep their constructors and derived traits. An RPC whose Rust name is taken gets a trailing
//! underscore (`Connect` is `connect_` on a client), as does a type (`Greeter_` when a message
//! already is `Greeter`).

use rgrpc::{Request, Response, ResponseStream, Status, Streaming};
use rgrpc_tests::TestServer;
use rgrpc_tests::collide::{
    self, Greeter_, GreeterBlockingClient_, GreeterClient, GreeterClient_, GreeterClientClient,
    GreeterClientServer, GreeterServer_,
};

#[derive(Clone, Default)]
struct Names;

/// `Clone` is also the name of an RPC: the server must call the trait's method, not this one.
fn reply(method: &str) -> Result<Response<collide::Response>, Status> {
    Ok(Response::new(collide::Response {
        method: method.into(),
    }))
}

type R = Request<collide::Request>;
type Out = Result<Response<collide::Response>, Status>;

impl Greeter_ for Names {
    async fn connect(&self, _: R) -> Out {
        reply("Connect")
    }
    async fn new(&self, _: R) -> Out {
        reply("New")
    }
    async fn channel(&self, _: R) -> Out {
        reply("Channel")
    }
    async fn clone(&self, _: R) -> Out {
        reply("Clone")
    }
    async fn clone_from(&self, _: R) -> Out {
        reply("CloneFrom")
    }
    async fn fmt(&self, _: R) -> Out {
        reply("Fmt")
    }
    async fn get_foo(&self, _: R) -> Out {
        reply("GetFoo")
    }
    async fn get_foo_(&self, _: R) -> Out {
        reply("get_foo")
    }
    async fn self_(&self, _: R) -> Out {
        reply("Self")
    }
    async fn r#type(&self, _: R) -> Out {
        reply("Type")
    }
    async fn call(&self, _: R) -> Out {
        reply("Call")
    }
    async fn name(&self, _: R) -> Out {
        reply("Name")
    }
    async fn methods(&self, _: R) -> Out {
        reply("Methods")
    }
    async fn from_arc(&self, _: R) -> Out {
        reply("FromArc")
    }
    async fn inner(
        &self,
        request: Request<Streaming<collide::Request>>,
    ) -> Result<Response<ResponseStream<collide::Response>>, Status> {
        let mut incoming = request.into_inner();
        let mut texts = Vec::new();
        while let Some(m) = incoming.message().await? {
            texts.push(m.text);
        }
        let out = texts
            .into_iter()
            .map(|text| Ok(rgrpc::Outgoing::new(collide::Response { method: text })));
        Ok(Response::new(ResponseStream::new(
            futures_util::stream::iter(out),
        )))
    }
}

impl GreeterClient for Names {
    async fn connect(&self, _: R) -> Out {
        reply("GreeterClient/Connect")
    }
}

fn req() -> collide::Request {
    collide::Request::default()
}

#[tokio::test]
async fn every_colliding_name_compiles_and_reaches_its_own_handler() {
    let server = TestServer::start(
        rgrpc::Server::builder()
            .add_service(GreeterServer_::new(Names))
            .add_service(GreeterClientServer::new(Names)),
    )
    .await;
    let url = server.url();
    let client = GreeterClient_::connect(&url).await.unwrap();
    // The derived Clone and the constructors are still what their names say.
    let copy = client.clone();
    let again = GreeterClient_::new(copy.channel().clone());
    let m = |r: Result<rgrpc::client::Response<collide::Response>, Status>| {
        r.unwrap().into_inner().method
    };
    assert_eq!(m(again.connect_(req()).await), "Connect");
    assert_eq!(m(client.new_(req()).await), "New");
    assert_eq!(m(client.channel_(req()).await), "Channel");
    assert_eq!(m(client.clone_(req()).await), "Clone");
    assert_eq!(m(client.clone_from_(req()).await), "CloneFrom");
    assert_eq!(m(client.fmt_(req()).await), "Fmt");
    assert_eq!(m(client.get_foo(req()).await), "GetFoo");
    assert_eq!(m(client.get_foo_(req()).await), "get_foo");
    assert_eq!(m(client.self_(req()).await), "Self");
    assert_eq!(m(client.r#type(req()).await), "Type");
    assert_eq!(m(client.call(req()).await), "Call");
    assert_eq!(m(client.name(req()).await), "Name");
    assert_eq!(m(client.methods(req()).await), "Methods");
    assert_eq!(m(client.from_arc(req()).await), "FromArc");
    let texts = ["a", "b"].map(|t| collide::Request { text: t.into() });
    let mut replies = client
        .inner(futures_util::stream::iter(texts))
        .await
        .unwrap()
        .into_inner();
    let mut got = Vec::new();
    while let Some(r) = replies.message().await.unwrap() {
        got.push(r.method);
    }
    assert_eq!(got, ["a", "b"]);
    assert!(format!("{client:?}").contains("GreeterClient_"));

    // The service named like Greeter's client has the plain names.
    let other = GreeterClientClient::connect(&url).await.unwrap();
    assert_eq!(m(other.connect_(req()).await), "GreeterClient/Connect");

    // The blocking client has the same method names (from a thread of its own: this test's
    // runtime is a current-thread one).
    let blocking_url = url.clone();
    let method = std::thread::spawn(move || {
        let blocking = GreeterBlockingClient_::connect(&blocking_url).unwrap();
        blocking.clone().clone_(req()).unwrap().into_inner().method
    });
    let method = tokio::task::spawn_blocking(move || method.join().unwrap())
        .await
        .unwrap();
    assert_eq!(method, "Clone");
    server.stop().await;
}
