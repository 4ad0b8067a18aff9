//! SplitMix64, the whole source of randomness: each input is generated from its own generator,
//! seeded from the campaign seed, the source's name and the input's index, so any input can be
//! replayed alone (`--index`) and a campaign gives the same inputs on any number of threads.

/// A SplitMix64 generator (Steele, Lea and Flood, 2014): tiny, fast, and good enough to pick
/// mutations; nothing here needs cryptographic randomness.
pub struct Rng {
    state: u64,
}

/// The golden-ratio increment of SplitMix64.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// The generator of input `index` of the source `source` in the campaign `seed`.
    pub fn for_input(seed: u64, source: &str, index: u64) -> Rng {
        let mut mixer = Rng::new(seed ^ fnv1a(source.as_bytes()));
        let base = mixer.next_u64();
        let mut rng = Rng::new(base ^ index.wrapping_mul(GAMMA));
        // One step so that neighbouring indices do not start from neighbouring states.
        rng.state = rng.next_u64();
        rng
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`; 0 when `n` is 0, so that callers indexing an empty range need no branch.
    pub fn below(&mut self, n: usize) -> usize {
        // Lemire's multiply-shift: no modulo bias worth caring about at these sizes.
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `low..=high`.
    pub fn between(&mut self, low: usize, high: usize) -> usize {
        low + self.below(high.saturating_sub(low) + 1)
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// One item of a constant, non-empty list.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A length up to `max`, log-uniform: short lengths are as likely as each power of two, so
    /// both off-by-one sizes and huge ones come up often.
    pub fn size(&mut self, max: usize) -> usize {
        let bits = usize::BITS - max.leading_zeros();
        let bound = 1usize << self.below(bits as usize + 1).min(usize::BITS as usize - 1);
        self.below(bound).min(max)
    }

    pub fn byte(&mut self) -> u8 {
        self.next_u64().to_le_bytes()[0]
    }
}

/// FNV-1a, to turn a source's name into part of its seed.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_input_gets_the_same_numbers() {
        let draw = |index| {
            let mut rng = Rng::for_input(7, "github", index);
            [rng.next_u64(), rng.next_u64()]
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
        assert_ne!(
            Rng::for_input(7, "github", 3).next_u64(),
            Rng::for_input(7, "gitlab", 3).next_u64()
        );
    }

    #[test]
    fn ranges_stay_in_bounds() {
        let mut rng = Rng::new(1);
        for _ in 0..10_000 {
            assert!(rng.below(7) < 7);
            assert!((3..=5).contains(&rng.between(3, 5)));
            assert!(rng.size(100) <= 100);
        }
        assert_eq!(rng.below(0), 0);
    }
}
