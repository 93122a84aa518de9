//! A latency histogram with log-linear buckets: each power of two is split into `2^sub_bits`
//! equal buckets, so a recorded value is known to within `2^-sub_bits` of itself whatever its
//! size, in a fixed, small array (no allocation per value, merging is adding arrays).

/// Values above this (in nanoseconds, about 73 minutes) count in the last bucket.
const MAX_VALUE: u64 = (1 << 42) - 1;

#[derive(Debug, Clone)]
pub(crate) struct Histogram {
    sub_bits: u32,
    counts: Vec<u64>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Histogram {
    /// A histogram whose buckets are `2^-sub_bits` wide relative to their values.
    pub(crate) fn new(sub_bits: u32) -> Histogram {
        let sub = 1usize << sub_bits;
        let buckets = (64 - MAX_VALUE.leading_zeros() - sub_bits + 1) as usize * sub;
        Histogram {
            sub_bits,
            counts: vec![0; buckets],
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    fn index(&self, value: u64) -> usize {
        let sub = 1u64 << self.sub_bits;
        if value < sub {
            return value as usize;
        }
        let exponent = 63 - value.leading_zeros();
        let shift = exponent - self.sub_bits;
        let mantissa = (value >> shift) - sub;
        ((u64::from(shift) + 1) * sub + mantissa) as usize
    }

    /// The smallest value that falls in bucket `index`.
    fn low(&self, index: usize) -> u64 {
        let sub = 1usize << self.sub_bits;
        if index < sub {
            return index as u64;
        }
        let shift = index / sub - 1;
        ((sub + index % sub) as u64) << shift
    }

    pub(crate) fn record(&mut self, value: u64) {
        let value = value.min(MAX_VALUE);
        let index = self.index(value);
        self.counts[index] += 1;
        self.count += 1;
        self.sum += u128::from(value);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// Forgets every value, keeping the buckets' memory.
    pub(crate) fn clear(&mut self) {
        self.counts.fill(0);
        self.count = 0;
        self.sum = 0;
        self.min = u64::MAX;
        self.max = 0;
    }

    /// Adds `other`'s values (histograms of the same precision).
    pub(crate) fn merge(&mut self, other: &Histogram) {
        debug_assert_eq!(self.sub_bits, other.sub_bits);
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    pub(crate) fn min(&self) -> u64 {
        if self.count == 0 { 0 } else { self.min }
    }

    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    pub(crate) fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// The value at quantile `q` (0..=1): the middle of the bucket holding the value of that
    /// rank, kept within the recorded minimum and maximum (the top and bottom ranks are
    /// the maximum and minimum themselves); 0
    /// when empty.
    pub(crate) fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        if rank == self.count {
            return self.max;
        }
        if rank == 1 {
            return self.min;
        }
        let mut seen = 0;
        for (index, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let low = self.low(index);
                let high = self.low(index + 1).max(low + 1);
                return (low + (high - low - 1) / 2).clamp(self.min, self.max);
            }
        }
        self.max
    }

    /// Buckets with `2^-display_bits` relative width for a plot, from the bucket of the
    /// minimum to that of the maximum (empty ones between included): (from, to, count), `to`
    /// exclusive.
    pub(crate) fn bins(&self, display_bits: u32) -> Vec<(u64, u64, u64)> {
        if self.count == 0 {
            return Vec::new();
        }
        let display_bits = display_bits.min(self.sub_bits);
        let coarse = Histogram::new(display_bits);
        let first = coarse.index(self.min);
        let last = coarse.index(self.max);
        let mut bins: Vec<(u64, u64, u64)> = (first..=last)
            .map(|i| (coarse.low(i), coarse.low(i + 1), 0))
            .collect();
        for (index, &n) in self.counts.iter().enumerate() {
            if n > 0 {
                let at = coarse.index(self.low(index)) - first;
                bins[at].2 += n;
            }
        }
        bins
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_tile_the_range_without_gaps() {
        let h = Histogram::new(3);
        for index in 0..h.counts.len() - 1 {
            let (low, next) = (h.low(index), h.low(index + 1));
            assert!(next > low, "bucket {index}");
            assert_eq!(h.index(low), index);
            assert_eq!(h.index(next - 1), index);
        }
        assert_eq!(h.index(MAX_VALUE), h.counts.len() - 1);
    }

    #[test]
    fn quantiles_are_within_the_bucket_precision() {
        let mut h = Histogram::new(7);
        for v in 1..=100_000u64 {
            h.record(v * 1000);
        }
        for (q, want) in [
            (0.5, 50_000_000f64),
            (0.9, 90_000_000.0),
            (0.99, 99_000_000.0),
        ] {
            let got = h.quantile(q) as f64;
            assert!(
                (got - want).abs() / want < 1.0 / 128.0,
                "q{q}: {got} vs {want}"
            );
        }
        assert_eq!(h.quantile(1.0), 100_000_000);
        assert_eq!(h.quantile(0.0), 1000);
        assert_eq!(h.min(), 1000);
        assert!((h.mean() - 50_000_500.0).abs() < 1.0);
    }

    #[test]
    fn merged_histograms_count_everything_once() {
        let (mut a, mut b) = (Histogram::new(5), Histogram::new(5));
        a.record(10);
        a.record(1 << 50);
        b.record(3_000);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!((a.min(), a.max()), (10, MAX_VALUE));
        let bins = a.bins(2);
        assert_eq!(bins.iter().map(|b| b.2).sum::<u64>(), 3);
        assert!(bins.windows(2).all(|w| w[0].1 == w[1].0));
        assert_eq!(Histogram::new(5).quantile(0.5), 0);
    }
}
