//! The request stream of a retried streaming call: one task pulls the caller's messages, keeps
//! their frames until the call is committed, and writes them to the current attempt's stream;
//! a new attempt gets every kept frame again before the live ones.
//!
//! Kept frames are bounded twice, per call and per channel (gRFC A6's buffers); past either
//! bound the call is committed and nothing more is kept. Writes wait for HTTP/2 window, as for
//! any request stream.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_core::Stream;
use h2::SendStream;
use prost::Message;
use tokio::sync::mpsc;

use super::retry::ReplayBudget;
use crate::codec::{self, Encoding, IntoOutgoing};
use crate::framing::FrameWriter;
use crate::http2::body::poll_write;
use crate::status::Status;

enum Command {
    /// Send everything kept, then the live messages, on this stream.
    Attempt(SendStream<Bytes>),
    /// No attempt follows: stop keeping frames.
    Commit,
}

/// The call's side of the pump.
pub(crate) struct Pump {
    commands: mpsc::UnboundedSender<Command>,
    /// Set once the buffers overflowed: the call is committed to its current attempt.
    overflowed: Arc<AtomicBool>,
    /// An error of our own (a message too large, say), which ends the call.
    pub(crate) error: Arc<Mutex<Option<Status>>>,
}

impl Pump {
    pub(crate) fn spawn<S, M>(
        messages: S,
        encoding: Encoding,
        max_send: usize,
        per_call: usize,
        budget: Arc<ReplayBudget>,
    ) -> (Pump, tokio::task::JoinHandle<()>)
    where
        S: Stream<Item: IntoOutgoing<Message = M>> + Send + 'static,
        M: Message + 'static,
    {
        let (commands, rx) = mpsc::unbounded_channel();
        let overflowed = Arc::new(AtomicBool::new(false));
        let error = Arc::new(Mutex::new(None));
        let state = State {
            rx,
            current: None,
            frames: VecDeque::new(),
            written: 0,
            kept: 0,
            per_call,
            budget,
            committed: false,
            ended: false,
            finished: false,
            overflowed: overflowed.clone(),
            error: error.clone(),
        };
        let task = tokio::spawn(state.run(Box::pin(messages), encoding, max_send));
        let pump = Pump {
            commands,
            overflowed,
            error,
        };
        (pump, task)
    }

    pub(crate) fn attempt(&self, send: SendStream<Bytes>) {
        let _ = self.commands.send(Command::Attempt(send));
    }

    pub(crate) fn commit(&self) {
        let _ = self.commands.send(Command::Commit);
    }

    pub(crate) fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Acquire)
    }

    pub(crate) fn local_error(&self) -> Option<Status> {
        self.error.lock().ok()?.take()
    }
}

struct State {
    rx: mpsc::UnboundedReceiver<Command>,
    current: Option<SendStream<Bytes>>,
    /// Frames kept for replay (and, once committed, those not yet written).
    frames: VecDeque<Bytes>,
    /// How many of `frames` the current attempt has written.
    written: usize,
    /// Bytes reserved from the channel's budget.
    kept: usize,
    per_call: usize,
    budget: Arc<ReplayBudget>,
    committed: bool,
    /// The caller's stream has ended.
    ended: bool,
    /// The current attempt's stream has been ended.
    finished: bool,
    overflowed: Arc<AtomicBool>,
    error: Arc<Mutex<Option<Status>>>,
}

impl State {
    async fn run<S, M>(mut self, mut messages: Pin<Box<S>>, encoding: Encoding, max_send: usize)
    where
        S: Stream<Item: IntoOutgoing<Message = M>> + ?Sized,
        M: Message,
    {
        let mut writer = FrameWriter::new();
        loop {
            if self.current.is_none() || self.finished {
                if self.committed && self.current.is_none() {
                    return;
                }
                if self.committed && self.finished {
                    return;
                }
                match self.rx.recv().await {
                    Some(command) => self.command(command),
                    None => return,
                }
                continue;
            }
            // Something to write: a kept frame, the end of the stream, or the next message.
            if self.written < self.frames.len() {
                let frame = self.frames[self.written].clone();
                let Some(send) = self.current.as_mut() else {
                    continue;
                };
                let mut frame_left = frame;
                let rx = &mut self.rx;
                let outcome = tokio::select! {
                    biased;
                    command = rx.recv() => Err(command),
                    result = poll_fn(|cx| poll_write(cx, send, &mut frame_left)) => Ok(result),
                };
                match outcome {
                    Err(Some(command)) => self.command(command),
                    Err(None) => return,
                    Ok(Ok(())) => self.wrote_one(),
                    // The attempt is gone (reset, connection lost): wait for the next one.
                    Ok(Err(_)) => self.current = None,
                }
                continue;
            }
            if self.ended {
                if let Some(send) = self.current.as_mut() {
                    let _ = send.send_data(Bytes::new(), true);
                }
                self.finished = true;
                continue;
            }
            let rx = &mut self.rx;
            let next = tokio::select! {
                biased;
                command = rx.recv() => Err(command),
                item = poll_fn(|cx| messages.as_mut().poll_next(cx)) => Ok(item),
            };
            match next {
                Err(Some(command)) => self.command(command),
                Err(None) => return,
                Ok(None) => self.ended = true,
                Ok(Some(item)) => {
                    let (message, choice) = item.into_outgoing().into_parts();
                    let encoding = if choice.unwrap_or(true) {
                        encoding
                    } else {
                        Encoding::Identity
                    };
                    match codec::encode(&mut writer, &message, max_send, encoding) {
                        Ok(frame) => self.keep(frame),
                        Err(status) => {
                            if let Ok(mut slot) = self.error.lock() {
                                *slot = Some(status);
                            }
                            if let Some(send) = self.current.as_mut() {
                                send.send_reset(h2::Reason::CANCEL);
                            }
                            self.overflowed.store(true, Ordering::Release);
                            return;
                        }
                    }
                }
            }
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Attempt(send) => {
                self.current = Some(send);
                self.written = 0;
                self.finished = false;
            }
            Command::Commit => self.stop_keeping(),
        }
    }

    /// Adds a new frame: kept for replay while the buffers allow, else the call is committed.
    fn keep(&mut self, frame: Bytes) {
        if !self.committed {
            let fits = self.kept + frame.len() <= self.per_call && self.budget.reserve(frame.len());
            if fits {
                self.kept += frame.len();
            } else {
                self.overflowed.store(true, Ordering::Release);
                self.stop_keeping();
            }
        }
        self.frames.push_back(frame);
    }

    fn wrote_one(&mut self) {
        if self.committed {
            // Nothing is kept once committed: a written frame is done with.
            self.frames.pop_front();
        } else {
            self.written += 1;
        }
    }

    /// Drops the frames already written and keeps no more.
    fn stop_keeping(&mut self) {
        if self.committed {
            return;
        }
        self.committed = true;
        self.frames.drain(..self.written);
        self.written = 0;
        self.budget.release(self.kept);
        self.kept = 0;
    }
}

impl Drop for State {
    fn drop(&mut self) {
        if self.kept > 0 {
            self.budget.release(self.kept);
        }
    }
}
