//! CycleGAN's image pool: discriminators see a mix of current and earlier
//! fakes, which damps oscillation between G and D.
use medtrans_io::Slice;
use rand::Rng;

#[derive(Debug, Clone, Default)]
pub struct ImagePool {
    capacity: usize,
    pub images: Vec<Slice>,
}

impl ImagePool {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            images: Vec::new(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// For each fake: while the pool fills, store and return it; then with
    /// probability 1/2 return a stored fake and keep the new one in its place.
    pub fn query<R: Rng>(&mut self, fakes: Vec<Slice>, rng: &mut R) -> Vec<Slice> {
        if self.capacity == 0 {
            return fakes;
        }
        fakes
            .into_iter()
            .map(|img| {
                if self.images.len() < self.capacity {
                    self.images.push(img.clone());
                    img
                } else if rng.random::<f64>() > 0.5 {
                    let k = rng.random_range(0..self.images.len());
                    std::mem::replace(&mut self.images[k], img)
                } else {
                    img
                }
            })
            .collect()
    }
}
