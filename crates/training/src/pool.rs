//! CycleGAN's image pool: discriminators see a mix of current and earlier
//! fakes, which damps oscillation between G and D.
//!
//! The pool holds tensors on the training device: on a GPU, routing fakes
//! through it costs no copy to the host. Only checkpoints read it back.
use burn::tensor::Tensor;
use rand::Rng;

#[derive(Debug, Clone, Default)]
pub struct ImagePool {
    capacity: usize,
    /// Stored fakes, each `[1, C, H, W]`, detached.
    pub images: Vec<Tensor<4>>,
}

impl ImagePool {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            images: Vec::new(),
        }
    }

    /// For each image of the batch `fakes` (`[N, C, H, W]`): while the pool
    /// fills, store and return it; then with probability 1/2 return a stored
    /// fake and keep the new one in its place. The random draws are the same
    /// whatever the device.
    pub fn query<R: Rng>(&mut self, fakes: Tensor<4>, rng: &mut R) -> Tensor<4> {
        if self.capacity == 0 {
            return fakes;
        }
        let n = fakes.dims()[0];
        let out = (0..n)
            .map(|i| {
                let img = fakes.clone().narrow(0, i, 1);
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
            .collect();
        Tensor::cat(out, 0)
    }
}

impl ImagePool {
    /// The stored fakes as slices, for a checkpoint: one read-back.
    pub fn to_slices(&self) -> anyhow::Result<Vec<medtrans_io::Slice>> {
        if self.images.is_empty() {
            return Ok(Vec::new());
        }
        crate::tensors::unstack(Tensor::cat(self.images.clone(), 0), "the image pool")
    }

    /// Refill from a checkpoint's slices, onto `device`.
    pub fn load_slices(&mut self, slices: &[medtrans_io::Slice], device: &burn::tensor::Device) {
        self.images = slices
            .iter()
            .map(|s| crate::tensors::stack(&[s], device))
            .collect();
    }
}
