//! Constant tensors (index lists, coordinate grids, interpolation weights)
//! made once per (what, shape, device) and kept, so that a GPU gets no
//! host-to-device upload for them per call and step.

use burn::tensor::Device;
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

type Cache = HashMap<(String, String), Box<dyn Any + Send>>;

/// The tensor `make` builds for `key` on `device`, built on first use.
/// `key` names what and its shape (e.g. "identity grid 64x64"); the device
/// is part of the key (a plain and an autodiff device get their own).
pub(crate) fn constant<T: Clone + Send + 'static>(
    key: String,
    device: &Device,
    make: impl FnOnce() -> T,
) -> T {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let entry = cache
        .entry((key, format!("{device:?}")))
        .or_insert_with(|| Box::new(make()));
    entry
        .downcast_ref::<T>()
        .expect("one type per constant's key")
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made once per key and device; another key or an autodiff device
    /// gets its own.
    #[test]
    fn a_constant_is_made_once_per_key_and_device() {
        let d = Device::flex();
        let mut made = 0;
        for _ in 0..3 {
            let v: i32 = constant("test a".into(), &d, || {
                made += 1;
                7
            });
            assert_eq!(v, 7);
        }
        assert_eq!(made, 1);
        assert_eq!(constant::<i32>("test b".into(), &d, || 8), 8);
        assert_eq!(constant::<i32>("test a".into(), &d.autodiff(), || 9), 9);
        assert_eq!(constant::<i32>("test a".into(), &Device::flex(), || 10), 7);
    }
}
