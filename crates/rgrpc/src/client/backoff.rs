//! Reconnection delays of grpc/grpc `doc/connection-backoff.md`: 1 s growing by 1.6x to 120 s,
//! each delay jittered by ±20%, with at least 20 s allowed for each connection attempt.

use std::time::Duration;

use super::rng::Rng;

/// The spec's parameters.
#[derive(Debug, Clone)]
pub(crate) struct BackoffConfig {
    pub(crate) initial: Duration,
    pub(crate) multiplier: f64,
    pub(crate) jitter: f64,
    pub(crate) max: Duration,
    pub(crate) min_connect_timeout: Duration,
}

impl Default for BackoffConfig {
    fn default() -> BackoffConfig {
        BackoffConfig {
            initial: Duration::from_secs(1),
            multiplier: 1.6,
            jitter: 0.2,
            max: Duration::from_secs(120),
            min_connect_timeout: Duration::from_secs(20),
        }
    }
}

/// Where a channel is in its sequence of failed attempts.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    config: BackoffConfig,
    current: Duration,
    rng: Rng,
}

impl Backoff {
    pub(crate) fn new(config: BackoffConfig) -> Backoff {
        Backoff {
            current: config.initial,
            config,
            rng: Rng::from_entropy(),
        }
    }

    /// After a successful connection, start again from the initial delay.
    pub(crate) fn reset(&mut self) {
        self.current = self.config.initial;
    }

    /// The delay before the next attempt, then grows the base delay.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let base = self.current.as_secs_f64();
        let spread = base * self.config.jitter * (2.0 * self.rng.unit() - 1.0);
        let delay = Duration::from_secs_f64((base + spread).max(0.0));
        let grown = (base * self.config.multiplier).min(self.config.max.as_secs_f64());
        self.current = Duration::from_secs_f64(grown);
        delay
    }

    /// How long one connection attempt may take.
    pub(crate) fn connect_timeout(&self) -> Duration {
        self.current.max(self.config.min_connect_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_by_the_multiplier_within_jitter_and_caps() {
        let mut b = Backoff::new(BackoffConfig::default());
        let mut base = 1.0f64;
        for _ in 0..20 {
            let d = b.next_delay().as_secs_f64();
            assert!(
                d >= base * 0.8 - 1e-9 && d <= base * 1.2 + 1e-9,
                "{d} vs {base}"
            );
            base = (base * 1.6).min(120.0);
        }
        assert!(b.next_delay() <= Duration::from_secs(144));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(1200));
        assert_eq!(b.connect_timeout(), Duration::from_secs(20));
    }
}
