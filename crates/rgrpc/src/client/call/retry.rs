//! Retries and hedging (gRFC A6) as state machines over time and chance given from outside:
//! the backoff before each retry, server pushback, the channel's retry throttle, and the
//! per-call and channel-wide replay buffers.
//!
//! This module decides; it does not send. The call kinds in `call/` run attempts and ask it
//! whether another one follows.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::client::service_config::{HedgingPolicy, RetryPolicy, Throttling};
use crate::status::{Code, Status};

/// Default bound on the request bytes one call keeps for replay.
pub(crate) const DEFAULT_PER_CALL_BUFFER: usize = 256 * 1024;
/// Default bound on the request bytes all calls of a channel keep for replay.
pub(crate) const DEFAULT_CHANNEL_BUFFER: usize = 16 * 1024 * 1024;

/// A6's token bucket, shared by every call of a channel. Tokens are kept in thousandths, so
/// that `tokenRatio`'s three decimals are exact.
#[derive(Debug)]
pub(crate) struct Throttle {
    settings: Throttling,
    max: i64,
    ratio: i64,
    tokens: AtomicI64,
}

impl Throttle {
    pub(crate) fn new(settings: Throttling) -> Throttle {
        let max = (settings.max_tokens * 1000.0).round() as i64;
        Throttle {
            settings,
            max,
            ratio: (settings.token_ratio * 1000.0).round() as i64,
            tokens: AtomicI64::new(max),
        }
    }

    pub(crate) fn settings(&self) -> Throttling {
        self.settings
    }

    /// A failed attempt takes one token.
    pub(crate) fn failure(&self) {
        let _ = self
            .tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some((t - 1000).max(0))
            });
    }

    /// A successful call gives back `tokenRatio`.
    pub(crate) fn success(&self) {
        let max = self.max;
        let ratio = self.ratio;
        let _ = self
            .tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some((t + ratio).min(max))
            });
    }

    /// Retries and hedges go out only while more than half the bucket is left.
    pub(crate) fn allows(&self) -> bool {
        self.tokens.load(Ordering::Acquire) * 2 > self.max
    }

    #[cfg(test)]
    fn tokens(&self) -> f64 {
        self.tokens.load(Ordering::Acquire) as f64 / 1000.0
    }
}

/// What the server said with `grpc-retry-pushback-ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushback {
    /// Retry after this long, whatever the backoff says.
    After(Duration),
    /// Do not retry (a negative or unreadable value).
    Stop,
}

impl Pushback {
    /// The pushback that came with a status, if the server sent one.
    pub(crate) fn from_status(status: &Status) -> Option<Pushback> {
        let value = std::str::from_utf8(status.retry_pushback()?.as_bytes()).unwrap_or("x");
        Some(match value.trim().parse::<i64>() {
            Ok(ms) if ms >= 0 => Pushback::After(Duration::from_millis(ms as u64)),
            _ => Pushback::Stop,
        })
    }
}

/// Backoff jitter: the client's generator, seeded from outside so tests are repeatable.
pub(crate) type Jitter = crate::client::rng::Rng;

/// What follows a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Another attempt after this delay.
    RetryAfter(Duration),
    /// The failure is the call's outcome.
    Stop,
}

/// The retry state of one call.
#[derive(Debug)]
pub(crate) struct Retrier {
    policy: RetryPolicy,
    /// Attempts made so far under the policy (the first included).
    attempts: u32,
    /// Retries since the start or the last pushback, for the backoff's exponent.
    since_pushback: u32,
    jitter: Jitter,
}

impl Retrier {
    pub(crate) fn new(policy: RetryPolicy, jitter: Jitter) -> Retrier {
        Retrier {
            policy,
            attempts: 1,
            since_pushback: 0,
            jitter,
        }
    }

    /// Attempts made so far (the value of `grpc-previous-rpc-attempts` for the next one).
    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Decides after an uncommitted attempt ended with `code` (and maybe a pushback).
    pub(crate) fn after_failure(
        &mut self,
        code: Code,
        pushback: Option<Pushback>,
        throttle: Option<&Throttle>,
    ) -> Next {
        let retryable = self.policy.retryable_codes.contains(code);
        if (retryable || pushback.is_some())
            && let Some(t) = throttle
        {
            t.failure();
        }
        if !retryable || self.attempts >= self.policy.max_attempts {
            return Next::Stop;
        }
        if throttle.is_some_and(|t| !t.allows()) {
            return Next::Stop;
        }
        let delay = match pushback {
            Some(Pushback::Stop) => return Next::Stop,
            Some(Pushback::After(delay)) => {
                self.since_pushback = 0;
                delay
            }
            None => {
                let base = self.policy.initial_backoff.as_secs_f64()
                    * self
                        .policy
                        .backoff_multiplier
                        .powi(self.since_pushback as i32);
                let base = base.min(self.policy.max_backoff.as_secs_f64());
                self.since_pushback += 1;
                Duration::from_secs_f64(base * (0.8 + 0.4 * self.jitter.unit()))
            }
        };
        self.attempts += 1;
        Next::RetryAfter(delay)
    }
}

/// The hedging state of one call.
#[derive(Debug)]
pub(crate) struct Hedger {
    policy: HedgingPolicy,
    sent: u32,
}

impl Hedger {
    pub(crate) fn new(policy: HedgingPolicy) -> Hedger {
        Hedger { policy, sent: 1 }
    }

    /// Attempts sent so far.
    pub(crate) fn sent(&self) -> u32 {
        self.sent
    }

    /// The delay between hedges.
    pub(crate) fn delay(&self) -> Duration {
        self.policy.hedging_delay
    }

    /// Whether another hedge may go out now.
    pub(crate) fn may_send(&mut self, throttle: Option<&Throttle>) -> bool {
        if self.sent >= self.policy.max_attempts || throttle.is_some_and(|t| !t.allows()) {
            return false;
        }
        self.sent += 1;
        true
    }

    /// Whether an attempt that ended with `code` leaves the others running (true) or ends the
    /// call with it (false). A pushback that says stop ends hedging too.
    pub(crate) fn non_fatal(
        &mut self,
        code: Code,
        pushback: Option<Pushback>,
        throttle: Option<&Throttle>,
    ) -> bool {
        let non_fatal = self.policy.non_fatal_codes.contains(code);
        if non_fatal && let Some(t) = throttle {
            t.failure();
        }
        if pushback == Some(Pushback::Stop) {
            self.sent = self.policy.max_attempts;
        }
        non_fatal
    }
}

/// Reservations against the channel-wide replay buffer.
#[derive(Debug)]
pub(crate) struct ReplayBudget {
    limit: usize,
    used: AtomicUsize,
}

impl ReplayBudget {
    pub(crate) fn new(limit: usize) -> ReplayBudget {
        ReplayBudget {
            limit,
            used: AtomicUsize::new(0),
        }
    }

    /// Reserves `n` bytes; false (and nothing reserved) when the channel's buffer is full.
    pub(crate) fn reserve(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                (u + n <= self.limit).then_some(u + n)
            })
            .is_ok()
    }

    pub(crate) fn release(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::service_config::CodeSet;

    fn policy(max_attempts: u32) -> RetryPolicy {
        let mut codes = CodeSet::default();
        codes.insert(Code::Unavailable);
        RetryPolicy {
            max_attempts,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            backoff_multiplier: 2.0,
            retryable_codes: codes,
        }
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let mut r = Retrier::new(policy(5), Jitter::new(7));
        for base in [100.0, 200.0, 400.0, 500.0] {
            let Next::RetryAfter(d) = r.after_failure(Code::Unavailable, None, None) else {
                panic!("should retry");
            };
            let ms = d.as_secs_f64() * 1000.0;
            assert!(
                ms >= base * 0.8 - 1e-6 && ms <= base * 1.2 + 1e-6,
                "{ms} vs {base}"
            );
        }
        assert_eq!(r.attempts(), 5);
        assert_eq!(
            r.after_failure(Code::Unavailable, None, None),
            Next::Stop,
            "max attempts"
        );
    }

    #[test]
    fn jitter_covers_its_range() {
        let mut j = Jitter::new(42);
        let (mut lo, mut hi) = (1.0f64, 0.0f64);
        for _ in 0..10_000 {
            let f = 0.8 + 0.4 * j.unit();
            lo = lo.min(f);
            hi = hi.max(f);
        }
        assert!(
            (0.8..0.81).contains(&lo) && hi < 1.2 && hi > 1.19,
            "{lo} {hi}"
        );
    }

    #[test]
    fn only_retryable_codes_retry() {
        let mut r = Retrier::new(policy(5), Jitter::new(1));
        assert_eq!(r.after_failure(Code::Internal, None, None), Next::Stop);
    }

    #[test]
    fn pushback_overrides_and_resets_the_backoff() {
        let mut r = Retrier::new(policy(5), Jitter::new(3));
        r.after_failure(Code::Unavailable, None, None);
        r.after_failure(Code::Unavailable, None, None);
        let p = Some(Pushback::After(Duration::from_millis(1234)));
        assert_eq!(
            r.after_failure(Code::Unavailable, p, None),
            Next::RetryAfter(Duration::from_millis(1234))
        );
        // Back to the initial backoff.
        let Next::RetryAfter(d) = r.after_failure(Code::Unavailable, None, None) else {
            panic!()
        };
        assert!(d <= Duration::from_millis(120), "{d:?}");
        let mut r = Retrier::new(policy(5), Jitter::new(3));
        assert_eq!(
            r.after_failure(Code::Unavailable, Some(Pushback::Stop), None),
            Next::Stop
        );
    }

    fn status_with(pushback: Option<&str>) -> Status {
        let mut h = http::HeaderMap::new();
        h.insert("grpc-status", http::HeaderValue::from_static("14"));
        if let Some(p) = pushback {
            h.insert(
                "grpc-retry-pushback-ms",
                http::HeaderValue::from_str(p).unwrap(),
            );
        }
        Status::from_trailers(&h).unwrap().unwrap_err()
    }

    #[test]
    fn pushback_values() {
        assert_eq!(Pushback::from_status(&status_with(None)), None);
        assert_eq!(
            Pushback::from_status(&status_with(Some("250"))),
            Some(Pushback::After(Duration::from_millis(250)))
        );
        for bad in ["-1", "soon", "1.5", ""] {
            assert_eq!(
                Pushback::from_status(&status_with(Some(bad))),
                Some(Pushback::Stop),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn throttle_arithmetic() {
        let t = Throttle::new(Throttling {
            max_tokens: 10.0,
            token_ratio: 0.5,
        });
        assert_eq!(t.tokens(), 10.0);
        for _ in 0..4 {
            t.failure();
        }
        assert!(t.allows(), "6 > 5");
        t.failure();
        assert!(!t.allows(), "5 is not more than half of 10");
        t.success();
        assert_eq!(t.tokens(), 5.5);
        assert!(t.allows());
        for _ in 0..100 {
            t.success();
        }
        assert_eq!(t.tokens(), 10.0, "capped at maxTokens");
        for _ in 0..100 {
            t.failure();
        }
        assert_eq!(t.tokens(), 0.0, "never below zero");
    }

    #[test]
    fn a_throttled_channel_stops_retrying() {
        let t = Throttle::new(Throttling {
            max_tokens: 3.0,
            token_ratio: 1.0,
        });
        let mut r = Retrier::new(policy(5), Jitter::new(1));
        // 3 -> 2: still more than 1.5.
        assert!(matches!(
            r.after_failure(Code::Unavailable, None, Some(&t)),
            Next::RetryAfter(_)
        ));
        // 2 -> 1: no longer.
        assert_eq!(
            r.after_failure(Code::Unavailable, None, Some(&t)),
            Next::Stop
        );
    }

    #[test]
    fn hedging_counts_and_fatal_codes() {
        let mut codes = CodeSet::default();
        codes.insert(Code::Unavailable);
        let mut h = Hedger::new(HedgingPolicy {
            max_attempts: 3,
            hedging_delay: Duration::from_millis(10),
            non_fatal_codes: codes,
        });
        assert!(h.may_send(None));
        assert!(h.may_send(None));
        assert!(!h.may_send(None), "3 attempts in all");
        assert!(h.non_fatal(Code::Unavailable, None, None));
        assert!(!h.non_fatal(Code::Internal, None, None));
    }

    #[test]
    fn replay_budget() {
        let b = ReplayBudget::new(100);
        assert!(b.reserve(60));
        assert!(!b.reserve(41));
        assert!(b.reserve(40));
        b.release(60);
        assert!(b.reserve(60));
    }
}
