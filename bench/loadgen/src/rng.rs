//! A tiny, seeded pseudo-random number generator (SplitMix64).
//!
//! The load generator must be reproducible from `--seed` without pulling in the
//! `rand` crate, and it needs nothing stronger than "well mixed and fast":
//! SplitMix64 passes BigCrush, has a 64-bit state, and every seed is valid.

/// The golden-ratio increment of SplitMix64.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a bijective 64-bit mixer.
///
/// Also used on its own to derive independent seeds and masks from an index.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A SplitMix64 generator.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator whose whole output is determined by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator for stream number `stream` of a run seeded with `seed`;
    /// streams are independent, so batches can be generated in any order.
    pub fn for_stream(seed: u64, stream: u64) -> Self {
        Self::new(mix64(seed ^ mix64(stream.wrapping_add(GAMMA))))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        mix64(self.state)
    }

    /// A uniform value in `0..n` (`n` must be non-zero); Lemire's
    /// multiply-shift, whose bias is below 2^-32 for the small `n` used here.
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0, "below(0)");
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A uniform value in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        debug_assert!(lo <= hi, "empty range {lo}..={hi}");
        lo + self.below(hi - lo + 1)
    }

    /// A uniform value in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// A value between `lo` and `hi` whose logarithm is uniform: the long-tailed
    /// shape that latencies, token counts and ids tend to have.
    pub fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        let (a, b) = (lo.ln(), hi.ln());
        (a + (b - a) * self.unit()).exp()
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// `N` random bytes that are not all zero (an all-zero trace or span id is
    /// invalid in OTLP).
    pub fn id<const N: usize>(&mut self) -> [u8; N] {
        loop {
            let mut out = [0u8; N];
            for chunk in out.chunks_mut(8) {
                let bytes = self.next_u64().to_le_bytes();
                chunk.copy_from_slice(&bytes[..chunk.len()]);
            }
            if out.iter().any(|&b| b != 0) {
                return out;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        let xs: Vec<u64> = (0..1000).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..1000).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
    }

    #[test]
    fn known_answer() {
        // Reference values of SplitMix64 seeded with 0 (as in Vigna's C code).
        let mut r = Rng::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn different_seeds_and_streams_differ() {
        let first = |mut r: Rng| (0..4).map(|_| r.next_u64()).collect::<Vec<_>>();
        assert_ne!(first(Rng::new(1)), first(Rng::new(2)));
        assert_ne!(first(Rng::for_stream(1, 0)), first(Rng::for_stream(1, 1)));
        assert_eq!(first(Rng::for_stream(7, 3)), first(Rng::for_stream(7, 3)));
    }

    #[test]
    fn ranges_stay_in_bounds() {
        let mut r = Rng::new(9);
        for _ in 0..10_000 {
            let v = r.range(4, 6);
            assert!((4..=6).contains(&v));
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
            let l = r.log_uniform(0.5, 20.0);
            assert!((0.5..=20.0 + 1e-9).contains(&l));
        }
        // All three values of a small range show up.
        let mut seen = [false; 3];
        for _ in 0..100 {
            seen[(r.range(4, 6) - 4) as usize] = true;
        }
        assert_eq!(seen, [true; 3]);
    }

    #[test]
    fn ids_are_non_zero_and_distinct() {
        let mut r = Rng::new(5);
        let a: [u8; 16] = r.id();
        let b: [u8; 16] = r.id();
        assert_ne!(a, [0; 16]);
        assert_ne!(a, b);
    }
}
