//! Counts of a channel's values over its recorded range, for calibration ranges that leave
//! out the rarest values: the 8-bit grid then spends its 256 steps where the values are
//! (weights/README.md: "8-bit calibration").

/// Bins over a channel's range: a u8 step of the widest range is 16 bins.
const BINS: usize = 4096;

/// Counts of values in equal bins over a range that holds 0.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    lo: f32,
    /// Bins per unit.
    per_unit: f32,
    counts: Vec<u64>,
}

impl Histogram {
    /// Empty, over `lo..=hi` widened to hold 0 (values outside count in the end bins).
    pub fn new((lo, hi): (f32, f32)) -> Self {
        let (lo, hi) = (lo.min(0.0), hi.max(0.0));
        let span = hi - lo;
        Self {
            lo,
            per_unit: if span > 0.0 { BINS as f32 / span } else { 1.0 },
            counts: vec![0; BINS],
        }
    }

    pub fn add(&mut self, v: f32) {
        let bin = ((v - self.lo) * self.per_unit) as isize;
        self.counts[bin.clamp(0, BINS as isize - 1) as usize] += 1;
    }

    /// Adds `other`'s counts (a histogram over the same range).
    pub fn merge(&mut self, other: &Histogram) {
        assert!(
            self.lo == other.lo && self.per_unit == other.per_unit,
            "one range"
        );
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    /// The range that leaves out at most `fraction` of the values at each end (to the bin),
    /// and holds 0.
    pub fn clipped(&self, fraction: f64) -> (f32, f32) {
        let total: u64 = self.counts.iter().sum();
        let out = (fraction * total as f64).floor() as u64;
        // the first bin (from either end) by which more than `out` values have been passed
        fn edge<'a>(mut bins: impl Iterator<Item = (usize, &'a u64)>, out: u64) -> Option<usize> {
            let mut seen = 0;
            bins.find(|&(_, &c)| {
                seen += c;
                seen > out
            })
            .map(|(i, _)| i)
        }
        let bins = self.counts.iter().enumerate();
        let (Some(first), Some(last)) = (edge(bins.clone(), out), edge(bins.rev(), out)) else {
            return (0.0, 0.0);
        };
        let at = |bin: usize| self.lo + bin as f32 / self.per_unit;
        (at(first).min(0.0), at(last + 1).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clipped_range_leaves_out_the_fraction_at_each_end() {
        let values: Vec<f32> = (0..10_000).map(|i| i as f32 / 1000.0 - 2.0).collect();
        let mut h = Histogram::new((-2.0, 8.0));
        values.iter().for_each(|&v| h.add(v));
        // nothing left out: the extremes, to the bin
        let (lo, hi) = h.clipped(0.0);
        assert!((lo + 2.0).abs() < 1e-6 && (hi - 8.0).abs() <= 10.0 / 4096.0 + 1e-6);
        // 1 % at each end: about -1.9 and 7.9
        let (lo, hi) = h.clipped(0.01);
        assert!((lo + 1.9).abs() < 0.005, "{lo}");
        assert!((hi - 7.9).abs() < 0.005, "{hi}");
        let outside = values.iter().filter(|&&v| v < lo || v >= hi).count();
        assert!(outside <= 200, "{outside}");
        // the range holds 0 however much is left out
        let mut h = Histogram::new((1.0, 2.0));
        (0..100).for_each(|i| h.add(1.0 + i as f32 / 100.0));
        assert_eq!(h.clipped(0.1).0, 0.0);
        // merging two halves is the whole
        let (mut a, mut b) = (Histogram::new((-2.0, 8.0)), Histogram::new((-2.0, 8.0)));
        for (i, &v) in values.iter().enumerate() {
            if i % 2 == 0 { a.add(v) } else { b.add(v) }
        }
        a.merge(&b);
        let mut whole = Histogram::new((-2.0, 8.0));
        values.iter().for_each(|&v| whole.add(v));
        assert_eq!(a, whole);
        assert_eq!(Histogram::new((0.0, 0.0)).clipped(0.0), (0.0, 0.0));
    }
}
