//! Named random streams. Every random draw of a run comes from one of these,
//! seeded by (run seed, stream, index), so a run replays exactly, and a
//! resumed run continues exactly, without saving any generator state.
//!
//! Each stream's formula is fixed: changing one changes every seeded run's
//! trajectory. A new source of randomness gets a new variant, with a salt no
//! other stream uses.
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// What a random stream is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The order of the training slices in an epoch (index: the epoch).
    Shuffle,
    /// The device's generator during a training step: dropout and any other
    /// random op (index: the step).
    Device,
    /// The image pools' draws in a discriminator step (index: the step).
    Pool,
    /// Misalignment noise and unpaired partners of the pairs of an epoch
    /// (index: the epoch); [`pair_seed`] splits it per pair.
    Pairs,
    /// A loss term's or translator family's own draws in a training step
    /// (index: the step); [`term_rng`] splits it per name.
    Term,
}

impl Stream {
    /// Added to the index before mixing, to keep streams apart.
    fn salt(self) -> u64 {
        match self {
            Stream::Shuffle => 1,
            Stream::Device => 0x5eed,
            Stream::Pool => 0xd00d,
            Stream::Pairs => 0,
            Stream::Term => 0x7e52,
        }
    }
}

/// Mix a value into one well-spread 64-bit seed (splitmix64).
pub fn mix_seed(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of `stream` at `index` for a run seeded with `seed`.
pub fn stream_seed(seed: u64, stream: Stream, index: u64) -> u64 {
    mix_seed(seed ^ mix_seed(index.wrapping_add(stream.salt())))
}

/// A generator for `stream` at `index`.
pub fn stream_rng(seed: u64, stream: Stream, index: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(stream_seed(seed, stream, index))
}

/// The generator of the term or family called `name` in training step
/// `step`: its own stream, whatever other terms draw, so that adding a term
/// leaves the others' numbers unchanged, and a resumed run draws the same.
pub fn term_rng(seed: u64, step: u64, name: &str) -> ChaCha8Rng {
    // FNV-1a: a name's hash that no Rust release changes.
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    });
    ChaCha8Rng::seed_from_u64(mix_seed(stream_seed(seed, Stream::Term, step) ^ h))
}

/// The generator of pair `i` in `epoch`: its noise, and its partner when
/// unpaired.
pub fn pair_rng(seed: u64, epoch: u64, i: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(pair_seed(seed, epoch, i))
}

fn pair_seed(seed: u64, epoch: u64, i: u64) -> u64 {
    mix_seed(stream_seed(seed, Stream::Pairs, epoch) ^ i)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The streams' formulas as they were written inline before this
    /// module: seeded runs made then replay the same.
    #[test]
    fn streams_keep_their_historic_formulas() {
        let (seed, k) = (1234u64, 57u64);
        assert_eq!(
            stream_seed(seed, Stream::Shuffle, k),
            mix_seed(seed ^ mix_seed(k + 1))
        );
        assert_eq!(
            stream_seed(seed, Stream::Device, k),
            mix_seed(seed ^ mix_seed(k + 0x5eed))
        );
        assert_eq!(
            stream_seed(seed, Stream::Pool, k),
            mix_seed(seed ^ mix_seed(k + 0xd00d))
        );
        assert_eq!(
            pair_seed(seed, k, 9),
            mix_seed(mix_seed(seed ^ mix_seed(k)) ^ 9)
        );
        // splitmix64's published first output for state 0.
        assert_eq!(mix_seed(0), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn streams_differ() {
        let s: Vec<u64> = [Stream::Shuffle, Stream::Device, Stream::Pool, Stream::Pairs]
            .iter()
            .map(|&st| stream_seed(7, st, 3))
            .collect();
        for i in 0..s.len() {
            for j in i + 1..s.len() {
                assert_ne!(s[i], s[j]);
            }
        }
    }
}
