//! Raw numeric bytes to `f32`, shared by the NIfTI and NPY readers.

/// Decode `bytes` holding numbers of `kind` (`b'f'` float, `b'i'` signed,
/// `b'u'` unsigned) and `size` bytes each; `None` for a combination medtrans
/// does not read.
pub(crate) fn decode(bytes: &[u8], kind: u8, size: usize, big: bool) -> Option<Vec<f32>> {
    macro_rules! conv {
        ($t:ty, $n:expr) => {
            bytes
                .chunks_exact($n)
                .map(|c| {
                    let a: [u8; $n] = c.try_into().unwrap();
                    (if big {
                        <$t>::from_be_bytes(a)
                    } else {
                        <$t>::from_le_bytes(a)
                    }) as f32
                })
                .collect()
        };
    }
    Some(match (kind, size) {
        (b'u', 1) => bytes.iter().map(|&b| b as f32).collect(),
        (b'i', 1) => bytes.iter().map(|&b| b as i8 as f32).collect(),
        (b'i', 2) => conv!(i16, 2),
        (b'u', 2) => conv!(u16, 2),
        (b'i', 4) => conv!(i32, 4),
        (b'u', 4) => conv!(u32, 4),
        (b'i', 8) => conv!(i64, 8),
        (b'u', 8) => conv!(u64, 8),
        (b'f', 4) => conv!(f32, 4),
        (b'f', 8) => conv!(f64, 8),
        _ => return None,
    })
}
