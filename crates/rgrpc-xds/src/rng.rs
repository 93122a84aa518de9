//! Chance shared by pickers that many calls use at once: splitmix64 over an atomic counter, so a
//! draw is one atomic add and no lock. Spread, not secrecy.

use std::sync::atomic::{AtomicU64, Ordering};

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// A lock-free generator for routing rolls, drops and locality picks.
#[derive(Debug)]
pub(crate) struct AtomicRng(AtomicU64);

impl AtomicRng {
    /// A generator from `seed`; equal seeds give equal sequences.
    pub(crate) fn new(seed: u64) -> AtomicRng {
        AtomicRng(AtomicU64::new(seed.wrapping_mul(GAMMA) | 1))
    }

    /// The next number.
    pub(crate) fn next_u64(&self) -> u64 {
        let mut z = self
            .0
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in [0, n).
    pub(crate) fn below(&self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_spread_and_repeatable() {
        let (a, b) = (AtomicRng::new(7), AtomicRng::new(7));
        assert_eq!(a.next_u64(), b.next_u64());
        let r = AtomicRng::new(3);
        let mut seen = [0usize; 10];
        for _ in 0..10_000 {
            seen[r.below(10) as usize] += 1;
        }
        assert!(seen.iter().all(|n| (850..1150).contains(n)), "{seen:?}");
    }
}
