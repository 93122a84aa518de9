//! `rgrpc bench`: load on one method of any server, closed loop (a fixed number of calls in
//! flight) or open loop (calls started at a fixed rate), with a latency histogram, errors by
//! code and a report as text, JSON or a self-contained HTML page.
//!
//! The request is encoded once and its bytes shared by every call; replies are checked to be
//! well-formed protobuf and dropped, so the load generator spends its time on gRPC, not on JSON.
//! In the open loop a call's latency counts from the moment it was due, not from when a busy
//! worker got to it, so a server that falls behind shows it (no coordinated omission).

mod histogram;
mod report;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{Args, ValueEnum};
use prost::Message;
use rgrpc::client::Request;
use rgrpc::{Channel, Code, Status};
use tokio::time::Instant;

use crate::raw::{Encoded, Skipped};
use crate::{Conn, Failure, Outcome, builder, parse_duration, read_requests, schema, split_method};
use histogram::Histogram;
use report::Report;

/// Calls when neither `-n` nor `-z` is given.
const DEFAULT_TOTAL: u64 = 1000;
/// Width of the finest time slot of the latency-over-time record.
const SLOT: Duration = Duration::from_millis(100);
/// At most this many time slots are kept; a longer run widens them.
const MAX_SLOTS: usize = 600;
/// Distinct error messages kept for the report (the rest are counted by code only).
const MAX_MESSAGES: usize = 16;

#[derive(Args, Debug)]
pub(crate) struct BenchArgs {
    #[command(flatten)]
    pub(crate) conn: Conn,
    /// The method, as package.Service/Method (or package.Service.Method).
    method: String,
    /// The request as JSON or `@FILE` (`-` reads stdin); for a method that takes a stream, one
    /// message per line, sent in turn. Without it, an empty message.
    #[arg(short = 'd', long = "data")]
    data: Option<String>,
    /// Channels to spread the calls over, each with its own connections.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Calls in flight at once (workers), spread over the connections.
    #[arg(short = 'c', long, default_value_t = 50)]
    concurrency: usize,
    /// Calls to make (1000 when neither -n nor -z is given).
    #[arg(short = 'n', long = "total", conflicts_with = "duration")]
    total: Option<u64>,
    /// Run for this long (e.g. 10s, 1m) instead of a number of calls.
    #[arg(short = 'z', long = "duration")]
    duration: Option<String>,
    /// Open loop: start this many calls per second (at most --concurrency in flight).
    #[arg(long)]
    rps: Option<f64>,
    /// Run this long first without recording, to warm connections and the server.
    #[arg(long)]
    warmup: Option<String>,
    /// Deadline of each call; 0 for none.
    #[arg(long, default_value = "20s")]
    timeout: String,
    /// Request messages per call of a client-streaming or bidi method (the messages of
    /// --data in turn); the default sends each given message once.
    #[arg(long)]
    messages: Option<usize>,
    /// How the report is written.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Write the report to this file instead of stdout.
    #[arg(short = 'o', long = "output")]
    output: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
    Html,
}

/// The four call kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Unary,
    ServerStreaming,
    ClientStreaming,
    Bidi,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Unary => "unary",
            Kind::ServerStreaming => "server-streaming",
            Kind::ClientStreaming => "client-streaming",
            Kind::Bidi => "bidi-streaming",
        }
    }
}

/// What every call sends.
struct Plan {
    path: rgrpc::codegen::PathAndQuery,
    kind: Kind,
    messages: Vec<Encoded>,
    timeout: Option<Duration>,
}

/// When a phase stops starting calls.
#[derive(Debug, Clone, Copy)]
enum Stop {
    After(u64),
    At(Duration),
}

/// State the workers of one phase share.
struct Phase {
    start: Instant,
    stop: Stop,
    rps: Option<f64>,
    next: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
    timeline: Mutex<Timeline>,
}

impl Phase {
    /// The next call to make and the moment it is due, or `None` when the phase is over.
    fn take(&self) -> Option<Instant> {
        let k = self.next.fetch_add(1, Ordering::Relaxed);
        if let Stop::After(total) = self.stop
            && k >= total
        {
            return None;
        }
        let due = match self.rps {
            Some(rps) => self.start + Duration::from_secs_f64(k as f64 / rps),
            None => Instant::now(),
        };
        if let Stop::At(length) = self.stop
            && due >= self.start + length
        {
            return None;
        }
        Some(due)
    }
}

/// Latency over time: slots of `SLOT << shift`, widened as the run grows.
pub(crate) struct Timeline {
    shift: u32,
    slots: Vec<Slot>,
}

#[derive(Clone)]
pub(crate) struct Slot {
    pub(crate) calls: u64,
    pub(crate) errors: u64,
    pub(crate) latency: Histogram,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            calls: 0,
            errors: 0,
            latency: Histogram::new(4),
        }
    }

    fn clear(&mut self) {
        self.calls = 0;
        self.errors = 0;
        self.latency.clear();
    }

    fn merge(&mut self, other: &Slot) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.latency.merge(&other.latency);
    }
}

impl Timeline {
    fn new() -> Timeline {
        Timeline {
            shift: 0,
            slots: Vec::new(),
        }
    }

    /// Adds what happened in finest slot number `base`.
    fn add(&mut self, base: u64, slot: &Slot) {
        while (base >> self.shift) as usize >= MAX_SLOTS {
            self.shift += 1;
            let old = std::mem::take(&mut self.slots);
            for pair in old.chunks(2) {
                let mut merged = pair[0].clone();
                if let Some(second) = pair.get(1) {
                    merged.merge(second);
                }
                self.slots.push(merged);
            }
        }
        let index = (base >> self.shift) as usize;
        if self.slots.len() <= index {
            self.slots.resize(index + 1, Slot::new());
        }
        self.slots[index].merge(slot);
    }

    pub(crate) fn width(&self) -> Duration {
        SLOT * (1 << self.shift)
    }

    pub(crate) fn slots(&self) -> &[Slot] {
        &self.slots
    }
}

/// What one worker saw; merged into the report at the end.
pub(crate) struct Tally {
    pub(crate) latency: Histogram,
    pub(crate) ok: u64,
    pub(crate) errors: HashMap<Code, u64>,
    pub(crate) messages: HashMap<(Code, String), u64>,
    pub(crate) sent: u64,
    pub(crate) received: u64,
    pub(crate) last: Option<Instant>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            latency: Histogram::new(7),
            ok: 0,
            errors: HashMap::new(),
            messages: HashMap::new(),
            sent: 0,
            received: 0,
            last: None,
        }
    }

    fn fail(&mut self, status: &Status) {
        *self.errors.entry(status.code()).or_default() += 1;
        let key = (status.code(), status.message().to_owned());
        if let Some(n) = self.messages.get_mut(&key) {
            *n += 1;
        } else if self.messages.len() < MAX_MESSAGES {
            self.messages.insert(key, 1);
        }
    }

    fn merge(&mut self, other: Tally) {
        self.latency.merge(&other.latency);
        self.ok += other.ok;
        for (code, n) in other.errors {
            *self.errors.entry(code).or_default() += n;
        }
        for (key, n) in other.messages {
            if let Some(mine) = self.messages.get_mut(&key) {
                *mine += n;
            } else if self.messages.len() < MAX_MESSAGES {
                self.messages.insert(key, n);
            }
        }
        self.sent += other.sent;
        self.received += other.received;
        self.last = self.last.max(other.last);
    }

    pub(crate) fn failed(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// One call; the request and reply messages it moved.
async fn one_call(channel: &Channel, plan: &Plan) -> Result<(u64, u64), Status> {
    fn request<T>(message: T, plan: &Plan) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(timeout) = plan.timeout {
            request.set_timeout(timeout);
        }
        request
    }
    let path = plan.path.clone();
    match plan.kind {
        Kind::Unary => {
            let r = request(plan.messages[0].clone(), plan);
            channel.unary::<Encoded, Skipped>(path, r).await?;
            Ok((1, 1))
        }
        Kind::ServerStreaming => {
            let r = request(plan.messages[0].clone(), plan);
            // The streaming kinds are boxed: inline, the largest of them would set the size of
            // every call's future (and what is copied per call), unary calls included.
            let mut replies = Box::pin(channel.server_streaming::<Encoded, Skipped>(path, r))
                .await?
                .into_inner();
            let mut received = 0;
            while replies.message().await?.is_some() {
                received += 1;
            }
            Ok((1, received))
        }
        Kind::ClientStreaming => {
            let r = request(rgrpc::stream::iter(plan.messages.clone()), plan);
            Box::pin(channel.client_streaming::<_, Encoded, Skipped>(path, r)).await?;
            Ok((plan.messages.len() as u64, 1))
        }
        Kind::Bidi => {
            let r = request(rgrpc::stream::iter(plan.messages.clone()), plan);
            let mut replies = Box::pin(channel.streaming::<_, Encoded, Skipped>(path, r))
                .await?
                .into_inner();
            let mut received = 0;
            while replies.message().await?.is_some() {
                received += 1;
            }
            Ok((plan.messages.len() as u64, received))
        }
    }
}

/// What a group of workers records: the tally and the time slot being filled. Workers share a
/// shard (a few per core) rather than each keeping its own, so that the histograms stay few and
/// warm in the cache however many calls are in flight.
struct Shard {
    tally: Tally,
    slot: Slot,
    slot_number: u64,
}

impl Shard {
    fn new() -> Shard {
        Shard {
            tally: Tally::new(),
            slot: Slot::new(),
            slot_number: 0,
        }
    }

    /// Hands the slot being filled to the timeline and starts slot `next` empty.
    fn flush(&mut self, timeline: &Mutex<Timeline>, next: u64) {
        if self.slot.calls > 0 {
            lock(timeline).add(self.slot_number, &self.slot);
            self.slot.clear();
        }
        self.slot_number = next;
    }
}

async fn worker(channel: Channel, plan: Arc<Plan>, phase: Arc<Phase>, shard: Arc<Mutex<Shard>>) {
    while let Some(due) = phase.take() {
        if phase.rps.is_some() {
            tokio::time::sleep_until(due).await;
        }
        let result = one_call(&channel, &plan).await;
        let now = Instant::now();
        let latency = now.saturating_duration_since(due).as_nanos() as u64;
        let number =
            (now.saturating_duration_since(phase.start).as_nanos() / SLOT.as_nanos()) as u64;
        let mut guard = lock(&shard);
        let shard = &mut *guard;
        if number != shard.slot_number {
            shard.flush(&phase.timeline, number);
        }
        shard.slot.calls += 1;
        let tally = &mut shard.tally;
        match result {
            Ok((sent, received)) => {
                tally.ok += 1;
                tally.sent += sent;
                tally.received += received;
                tally.latency.record(latency);
                shard.slot.latency.record(latency);
            }
            Err(status) => {
                tally.fail(&status);
                shard.slot.errors += 1;
                phase.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        tally.last = Some(now);
        drop(guard);
        phase.done.fetch_add(1, Ordering::Relaxed);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A worker that panicked mid-update leaves counts, not broken invariants.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs one phase over the channels and returns what the workers saw.
async fn run_phase(
    channels: &[Channel],
    plan: &Arc<Plan>,
    stop: Stop,
    rps: Option<f64>,
    concurrency: usize,
    progress: bool,
) -> Outcome<(Tally, Timeline, Instant)> {
    let phase = Arc::new(Phase {
        start: Instant::now(),
        stop,
        rps,
        next: AtomicU64::new(0),
        done: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        timeline: Mutex::new(Timeline::new()),
    });
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let shards: Vec<_> = (0..concurrency.min(channels.len().max(2 * cores)))
        .map(|_| Arc::new(Mutex::new(Shard::new())))
        .collect();
    let workers: Vec<_> = (0..concurrency)
        .map(|i| {
            let channel = channels[i % channels.len()].clone();
            let shard = shards[i % shards.len()].clone();
            tokio::spawn(worker(channel, plan.clone(), phase.clone(), shard))
        })
        .collect();
    let ticker = progress.then(|| tokio::spawn(show_progress(phase.clone())));
    for worker in workers {
        worker
            .await
            .map_err(|e| Failure::usage(format!("a benchmark worker failed: {e}")))?;
    }
    let mut tally = Tally::new();
    for shard in shards {
        let mut shard = lock(&shard);
        shard.flush(&phase.timeline, 0);
        tally.merge(std::mem::replace(&mut shard.tally, Tally::new()));
    }
    if let Some(ticker) = ticker {
        ticker.abort();
        eprint!("\r\x1b[2K");
    }
    let timeline = std::mem::replace(&mut *lock(&phase.timeline), Timeline::new());
    Ok((tally, timeline, phase.start))
}

/// A progress bar on stderr, redrawn five times a second.
async fn show_progress(phase: Arc<Phase>) {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        let done = phase.done.load(Ordering::Relaxed);
        let failed = phase.failed.load(Ordering::Relaxed);
        let elapsed = phase.start.elapsed();
        let fraction = match phase.stop {
            Stop::After(total) => done as f64 / total.max(1) as f64,
            Stop::At(length) => elapsed.as_secs_f64() / length.as_secs_f64().max(1e-9),
        }
        .min(1.0);
        let filled = (fraction * 30.0).round() as usize;
        let rate = done as f64 / elapsed.as_secs_f64().max(1e-9);
        eprint!(
            "\r\x1b[2K[{}{}] {:>3.0}% {done} calls, {failed} failed, {rate:.0}/s, {:.1}s",
            "#".repeat(filled),
            "-".repeat(30 - filled),
            fraction * 100.0,
            elapsed.as_secs_f64(),
        );
    }
}

/// Builds a channel for the benchmark and waits until it is ready.
async fn connect(conn: &Conn, timeout: Option<Duration>) -> Outcome<Channel> {
    let builder = builder(conn)?;
    let timeout = timeout.unwrap_or(Duration::from_secs(20));
    match tokio::time::timeout(timeout, builder.connect()).await {
        Ok(Ok(channel)) => Ok(channel),
        Ok(Err(e)) if e.is_config() || e.is_invalid_address() => Err(Failure::usage(e.to_string())),
        Ok(Err(e)) => Err(Failure::connect(e.to_string())),
        Err(_) => Err(Failure::connect(format!(
            "{} was not ready within {timeout:?}",
            conn.addr
        ))),
    }
}

pub(crate) async fn bench(args: &BenchArgs) -> Outcome {
    let (service, name) = split_method(&args.method)?;
    if args.connections == 0 || args.concurrency == 0 {
        return Err(Failure::usage(
            "--connections and --concurrency must be at least 1",
        ));
    }
    if args.concurrency < args.connections {
        return Err(Failure::usage(
            "--concurrency must be at least --connections (each connection needs a worker)",
        ));
    }
    if let Some(rps) = args.rps
        && !(rps.is_finite() && rps > 0.0)
    {
        return Err(Failure::usage("--rps must be a positive number"));
    }
    let timeout = Some(parse_duration(&args.timeout)?).filter(|t| !t.is_zero());
    let stop = match (&args.total, &args.duration) {
        (Some(0), _) => return Err(Failure::usage("-n must be at least 1")),
        (Some(n), _) => Stop::After(*n),
        (None, Some(d)) => Stop::At(parse_duration(d)?),
        (None, None) => Stop::After(DEFAULT_TOTAL),
    };
    let warmup = args.warmup.as_deref().map(parse_duration).transpose()?;

    let mut channels = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        channels.push(connect(&args.conn, timeout).await?);
    }
    let pool = schema(&args.conn, &channels[0], &[service]).await?;
    let svc = pool
        .get_service_by_name(service)
        .ok_or_else(|| Failure::schema(format!("no service {service}")))?;
    let method = svc
        .methods()
        .find(|m| m.name() == name)
        .ok_or_else(|| Failure::schema(format!("no method {name} in {service}")))?;
    let kind = match (method.is_client_streaming(), method.is_server_streaming()) {
        (false, false) => Kind::Unary,
        (false, true) => Kind::ServerStreaming,
        (true, false) => Kind::ClientStreaming,
        (true, true) => Kind::Bidi,
    };
    let client_streams = method.is_client_streaming();
    let data = args.data.as_deref().unwrap_or("{}");
    let given: Vec<Encoded> = read_requests(&method.input(), Some(data), client_streams)
        .await?
        .iter()
        .map(|m| Encoded(m.encode_to_vec().into()))
        .collect();
    let messages = match (client_streams, args.messages) {
        (false, Some(_)) => {
            return Err(Failure::usage(
                "--messages is for methods that take a stream of requests",
            ));
        }
        (false, None) => given.into_iter().take(1).collect(),
        (true, None) => given,
        (true, Some(_)) if given.is_empty() => {
            return Err(Failure::usage(
                "--messages needs at least one message in --data",
            ));
        }
        (true, Some(n)) => given.iter().cycle().take(n).cloned().collect(),
    };
    if messages.is_empty() && !client_streams {
        return Err(Failure::usage("--data holds no message"));
    }
    let path = format!("/{service}/{name}")
        .parse()
        .map_err(|_| Failure::usage("bad method path"))?;
    let plan = Arc::new(Plan {
        path,
        kind,
        messages,
        timeout,
    });

    let progress = std::io::stderr().is_terminal();
    if let Some(warmup) = warmup {
        run_phase(
            &channels,
            &plan,
            Stop::At(warmup),
            args.rps,
            args.concurrency,
            progress,
        )
        .await?;
    }
    let (tally, timeline, start) =
        run_phase(&channels, &plan, stop, args.rps, args.concurrency, progress).await?;
    let report = Report {
        target: &args.conn.addr,
        method: &args.method,
        kind,
        connections: args.connections,
        concurrency: args.concurrency,
        rps_target: args.rps,
        messages_per_call: plan.messages.len(),
        duration: tally
            .last
            .map(|last| last.saturating_duration_since(start))
            .unwrap_or_default(),
        tally: &tally,
        timeline: &timeline,
    };
    let text = match args.format {
        Format::Text => report.text(),
        Format::Json => format!("{}\n", report.json()),
        Format::Html => report.html(),
    };
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| Failure::usage(format!("cannot write {path}: {e}")))?,
        None => crate::emit(text.as_bytes())?,
    }
    if tally.ok == 0 {
        return Err(Failure {
            code: 1,
            message: "no call succeeded".into(),
        });
    }
    Ok(())
}
