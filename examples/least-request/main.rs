//! `least-request`: a load-balancing policy of your own, written against rgrpc's public
//! `Balancer`/`Picker` API and chosen by name in the service config.
//!
//! The policy is "power of two choices": each call looks at two READY servers at random and
//! goes to the one with fewer calls in flight, counted by the picker's `on_end` hook. The program
//! starts three greeter servers on loopback, one of them slow, sends 600 calls at concurrency
//! 24, and prints how many each server answered: the slow one gets far fewer, where
//! round_robin would give each a third.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use rgrpc::client::balancer::{
    Balancer, BalancerBuilder, ConnectivityState, Controller, Pick, PickRequest, Picked, Picker,
    Subchannel, SubchannelOptions, SubchannelState,
};
use rgrpc::client::resolver::Endpoint;
use rgrpc::{Channel, Request, Response, Server, Status};
use rgrpc_examples::greeter::{
    Greeter, GreeterClient, GreeterServer, HelloReply, HelloRequest, Number,
};

/// Builds the policy; registered on the channel, named in `loadBalancingConfig`.
struct LeastRequestBuilder;

impl BalancerBuilder for LeastRequestBuilder {
    fn name(&self) -> &str {
        "least_request_example"
    }

    fn build(&self) -> Box<dyn Balancer> {
        Box::new(LeastRequest::default())
    }
}

/// One subchannel per address, all kept connected, and a count of calls in flight on each.
#[derive(Default)]
struct LeastRequest {
    subchannels: Vec<(Subchannel, Arc<AtomicUsize>)>,
}

impl LeastRequest {
    fn publish(&self, ctl: &mut dyn Controller) {
        let ready: Vec<_> = self
            .subchannels
            .iter()
            .filter(|(sc, _)| sc.state() == ConnectivityState::Ready)
            .cloned()
            .collect();
        if ready.is_empty() {
            let failing = self
                .subchannels
                .iter()
                .all(|(sc, _)| sc.state() == ConnectivityState::TransientFailure);
            let state = if failing && !self.subchannels.is_empty() {
                ConnectivityState::TransientFailure
            } else {
                ConnectivityState::Connecting
            };
            ctl.update_picker(state, Arc::new(NoneReady(failing)));
        } else {
            ctl.update_picker(
                ConnectivityState::Ready,
                Arc::new(TwoChoices {
                    ready,
                    seed: AtomicU64::new(0x9e37_79b9_7f4a_7c15),
                }),
            );
        }
    }
}

impl Balancer for LeastRequest {
    fn resolved(
        &mut self,
        endpoints: &[Endpoint],
        _config: &serde_json::Value,
        ctl: &mut dyn Controller,
    ) -> Result<(), Status> {
        for (sc, _) in self.subchannels.drain(..) {
            sc.shutdown();
        }
        for endpoint in endpoints {
            for address in endpoint.addresses() {
                let sc = ctl.new_subchannel(address, SubchannelOptions::new());
                sc.connect();
                self.subchannels.push((sc, Arc::new(AtomicUsize::new(0))));
            }
        }
        self.publish(ctl);
        if self.subchannels.is_empty() {
            return Err(Status::unavailable("no addresses"));
        }
        Ok(())
    }

    fn resolver_error(&mut self, _error: &Status, ctl: &mut dyn Controller) {
        self.publish(ctl);
    }

    fn subchannel_update(
        &mut self,
        subchannel: &Subchannel,
        state: &SubchannelState,
        ctl: &mut dyn Controller,
    ) {
        // Keep every server connected: reconnect whatever goes idle.
        if state.state() == ConnectivityState::Idle {
            subchannel.connect();
        }
        self.publish(ctl);
    }

    fn exit_idle(&mut self, _ctl: &mut dyn Controller) {
        for (sc, _) in &self.subchannels {
            sc.connect();
        }
    }
}

/// The picker: two random READY subchannels, the less loaded wins. No lock: an atomic seed and
/// atomic counters.
struct TwoChoices {
    ready: Vec<(Subchannel, Arc<AtomicUsize>)>,
    seed: AtomicU64,
}

impl Picker for TwoChoices {
    fn pick(&self, _request: &PickRequest<'_>) -> Pick {
        let random = |seed: &AtomicU64| {
            let x = seed.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
            let z = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            (z ^ (z >> 27)) as usize
        };
        let a = &self.ready[random(&self.seed) % self.ready.len()];
        let b = &self.ready[random(&self.seed) % self.ready.len()];
        let (sc, in_flight) = if b.1.load(Ordering::Relaxed) < a.1.load(Ordering::Relaxed) {
            b
        } else {
            a
        };
        in_flight.fetch_add(1, Ordering::Relaxed);
        let in_flight = in_flight.clone();
        Pick::Ready(Picked::new(sc.clone()).on_end(move |_| {
            in_flight.fetch_sub(1, Ordering::Relaxed);
        }))
    }
}

/// While nothing is READY: wait, or fail once every server has failed.
struct NoneReady(bool);

impl Picker for NoneReady {
    fn pick(&self, _request: &PickRequest<'_>) -> Pick {
        if self.0 {
            Pick::Fail(Status::unavailable("no server is reachable"))
        } else {
            Pick::Queue
        }
    }
}

/// A greeter that takes `delay` per call and says who it is.
struct Named {
    name: &'static str,
    delay: Duration,
}

impl Greeter for Named {
    async fn say_hello(&self, _: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        tokio::time::sleep(self.delay).await;
        Ok(Response::new(HelloReply {
            message: self.name.to_owned(),
        }))
    }

    async fn square(&self, request: Request<Number>) -> Result<Response<Number>, Status> {
        Ok(Response::new(request.into_inner()))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addresses = Vec::new();
    for (name, delay) in [("fast-1", 2), ("fast-2", 2), ("slow", 40)] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        addresses.push(listener.local_addr()?.to_string());
        let service = GreeterServer::new(Named {
            name,
            delay: Duration::from_millis(delay),
        });
        tokio::spawn(async move {
            let serve = Server::builder()
                .add_service(service)
                .serve_with_listener(listener, std::future::pending());
            if let Err(e) = serve.await {
                eprintln!("server {name}: {e}");
            }
        });
    }
    let channel = Channel::builder(&format!("ipv4:{}", addresses.join(",")))?
        .balancer(LeastRequestBuilder)
        .default_service_config(r#"{"loadBalancingConfig":[{"least_request_example":{}}]}"#)
        .connect()
        .await?;
    let client = GreeterClient::new(channel);
    let mut tasks = Vec::new();
    let next = Arc::new(AtomicUsize::new(0));
    for _ in 0..24 {
        let (client, next) = (client.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut answered = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < 600 {
                let mut request = rgrpc::client::Request::new(HelloRequest { name: "lb".into() });
                request.set_wait_for_ready(true);
                match client.say_hello(request).await {
                    Ok(reply) => answered.push(reply.into_inner().message),
                    Err(status) => eprintln!("call failed: {status}"),
                }
            }
            answered
        }));
    }
    let mut counts: HashMap<String, usize> = HashMap::new();
    for task in tasks {
        for name in task.await? {
            *counts.entry(name).or_default() += 1;
        }
    }
    let mut names: Vec<_> = counts.into_iter().collect();
    names.sort();
    for (name, n) in names {
        println!("{name}: {n} calls");
    }
    Ok(())
}
