//! Inference with a fitted VAE: encode, decode, reconstruct, and draw synthetic rows, in chunks
//! of bounded size on any engine.

use ndarray::{Array2, ArrayView2};

use super::network::{forward, DeviceLayer, StackBuffers};
use super::{Activation, Likelihood, Vae};
use crate::engine::{Backend, CpuEngine, Device, Engine};
use crate::error::Result;
use crate::rng::{Purpose, Stream};

/// Rows per chunk: bounds the memory of generation whatever the number of rows asked for.
const CHUNK: usize = 8192;

/// The model's layers uploaded once, with buffers for one chunk.
struct Inference<'e, E: Engine> {
    e: &'e mut E,
    enc: Vec<DeviceLayer<E::Buffer>>,
    dec: Vec<DeviceLayer<E::Buffer>>,
    enc_bufs: StackBuffers<E::Buffer>,
    dec_bufs: StackBuffers<E::Buffer>,
    x: E::Buffer,
    z: E::Buffer,
    eps: E::Buffer,
    features: usize,
}

impl<'e, E: Engine> Inference<'e, E> {
    fn new(e: &'e mut E, vae: &Vae) -> Result<Self> {
        let out_act = match vae.config.likelihood {
            Likelihood::Bernoulli => Activation::Sigmoid,
            Likelihood::Gaussian => Activation::Identity,
        };
        let enc = vae
            .encoder
            .iter()
            .map(|d| DeviceLayer::upload(e, d, d.activation))
            .collect::<Result<Vec<_>>>()?;
        let last = vae.decoder.len() - 1;
        let dec = vae
            .decoder
            .iter()
            .enumerate()
            .map(|(i, d)| DeviceLayer::upload(e, d, if i == last { out_act } else { d.activation }))
            .collect::<Result<Vec<_>>>()?;
        let (features, latent) = (vae.features(), vae.latent);
        Ok(Inference {
            enc_bufs: StackBuffers::new(e, &enc, CHUNK, false)?,
            dec_bufs: StackBuffers::new(e, &dec, CHUNK, false)?,
            x: e.zeros(CHUNK * features)?,
            z: e.zeros(CHUNK * latent)?,
            eps: e.zeros(CHUNK * latent)?,
            e,
            enc,
            dec,
            features,
        })
    }

    /// Encodes `x` (scaled, `rows <= CHUNK`) into the head buffer `[mu | logvar]`.
    fn encode(&mut self, x: &[f32], rows: usize) -> Result<()> {
        self.e.write(&mut self.x, x)?;
        forward(self.e, &self.enc, &self.x, rows, &mut self.enc_bufs, None);
        Ok(())
    }

    /// Decodes `self.z` (`rows` rows) and returns the outputs, still scaled.
    fn decode_z(&mut self, rows: usize) -> Result<Vec<f32>> {
        forward(self.e, &self.dec, &self.z, rows, &mut self.dec_bufs, None);
        self.e.read(self.dec_bufs.output(), rows * self.features)
    }
}

impl Vae {
    /// The posterior parameters `(mu, logvar)` of each row of `x` (original units), on the CPU
    /// engine (one pass, no training: rarely worth a device round trip).
    pub fn encode(&self, x: ArrayView2<'_, f32>) -> Result<(Array2<f32>, Array2<f32>)> {
        self.check_input(x)?;
        let scaled = self.scaler.transform(x);
        let data = scaled.as_slice().expect("standard layout");
        let (d, l, n) = (self.features(), self.latent, x.nrows());
        let mut e = CpuEngine::new();
        let mut inf = Inference::new(&mut e, self)?;
        let mut mu = Vec::with_capacity(n * l);
        let mut logvar = Vec::with_capacity(n * l);
        for start in (0..n).step_by(CHUNK) {
            let rows = CHUNK.min(n - start);
            inf.encode(&data[start * d..(start + rows) * d], rows)?;
            let head = inf.e.read(inf.enc_bufs.output(), rows * 2 * l)?;
            for h in head.chunks_exact(2 * l) {
                mu.extend_from_slice(&h[..l]);
                logvar.extend_from_slice(&h[l..]);
            }
        }
        let shape = (n, l);
        Ok((
            Array2::from_shape_vec(shape, mu).expect("n * latent values"),
            Array2::from_shape_vec(shape, logvar).expect("n * latent values"),
        ))
    }

    /// Decodes latent vectors `z` (`n x latent`) to rows in the original units, on the CPU engine.
    pub fn decode(&self, z: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        crate::check::finite_matrix(z)?;
        crate::check::width(z, self.latent)?;
        let z = z.as_standard_layout();
        let data = z.as_slice().expect("standard layout");
        let mut e = CpuEngine::new();
        let mut inf = Inference::new(&mut e, self)?;
        let (l, n) = (self.latent, z.nrows());
        let mut out = Vec::with_capacity(n * self.features());
        for start in (0..n).step_by(CHUNK) {
            let rows = CHUNK.min(n - start);
            inf.e
                .write(&mut inf.z, &data[start * l..(start + rows) * l])?;
            out.extend(inf.decode_z(rows)?);
        }
        self.finish(out, n)
    }

    /// Decodes the posterior mean of each row of `x`: the model's reconstruction of `x`.
    pub fn reconstruct(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        let (mu, _) = self.encode(x)?;
        self.decode(mu.view())
    }

    /// Draws `n` synthetic rows from the prior: `z ~ N(0, I)`, decoded. Same seed, same rows.
    /// Runs on the device [`Backend::Auto`] picks, chosen on every call (see [`Vae::generate_on`]
    /// to reuse one).
    pub fn generate(&self, n: usize, seed: u64) -> Result<Array2<f32>> {
        self.generate_on(&Device::new(Backend::Auto)?, n, seed)
    }

    /// [`Vae::generate`] on `device`. On the CPU, row ranges are decoded on separate threads;
    /// draws are addressed by row, so the result does not depend on the number of threads.
    pub fn generate_on(&self, device: &Device, n: usize, seed: u64) -> Result<Array2<f32>> {
        self.generate_range_on(device, 0..n, seed)
    }

    /// Rows `range` of the draws [`Vae::generate_on`] makes for `seed`: generating a long run
    /// piece by piece gives the same rows as generating it at once, in bounded memory.
    ///
    /// ```
    /// # use smrt::{Device, Vae, VaeConfig};
    /// # let x = ndarray::Array2::from_shape_fn((20, 2), |(i, j)| (i * 2 + j) as f32);
    /// # let vae = Vae::fit_on(&Device::Cpu, x.view(), &VaeConfig { epochs: 3, ..Default::default() })?;
    /// let all = vae.generate_on(&Device::Cpu, 100, 7)?;
    /// let tail = vae.generate_range_on(&Device::Cpu, 60..100, 7)?;
    /// assert_eq!(tail, all.slice(ndarray::s![60.., ..]));
    /// # Ok::<(), smrt::Error>(())
    /// ```
    pub fn generate_range_on(
        &self,
        device: &Device,
        range: std::ops::Range<usize>,
        seed: u64,
    ) -> Result<Array2<f32>> {
        let n = range.len();
        if let Device::Gpu(gpu) = device {
            let out = self.prior_rows(&mut gpu.engine()?, range.start, n, seed)?;
            return Ok(self.matrix(out, n));
        }
        let threads = crate::parallel::threads();
        let per = n.div_ceil(threads).next_multiple_of(CHUNK).max(CHUNK);
        let starts: Vec<usize> = range.clone().step_by(per).collect();
        let parts = crate::parallel::parallel_map(&starts, |&start| {
            self.prior_rows(
                &mut CpuEngine::new(),
                start,
                per.min(range.end - start),
                seed,
            )
        });
        let mut out = Vec::with_capacity(n * self.features());
        for part in parts {
            out.extend(part?);
        }
        Ok(self.matrix(out, n))
    }

    /// [`Vae::generate`] on `engine`.
    pub fn generate_with<E: Engine>(
        &self,
        engine: &mut E,
        n: usize,
        seed: u64,
    ) -> Result<Array2<f32>> {
        let out = self.prior_rows(engine, 0, n, seed)?;
        Ok(self.matrix(out, n))
    }

    /// Prior draws for rows `start..start + count` of the stream of `seed`, in original units.
    fn prior_rows<E: Engine>(
        &self,
        engine: &mut E,
        start: usize,
        count: usize,
        seed: u64,
    ) -> Result<Vec<f32>> {
        let mut inf = Inference::new(engine, self)?;
        let stream = Stream::new(seed, Purpose::Generate, 0);
        let l = self.latent;
        let mut out = Vec::with_capacity(count * self.features());
        for first in (start..start + count).step_by(CHUNK) {
            let rows = CHUNK.min(start + count - first);
            inf.e
                .normal(&mut inf.z, rows * l, stream, (first * l) as u64);
            out.extend(inf.decode_z(rows)?);
        }
        self.scaler.inverse_in_place(&mut out);
        Ok(out)
    }

    /// Draws `n` synthetic rows from the posterior of rows of `x` chosen uniformly at random:
    /// `z ~ N(mu(x_i), exp(logvar(x_i)))`, decoded. Returns the rows and, for each, the index `i`
    /// of the row of `x` it was drawn from.
    /// Runs on the device [`Backend::Auto`] picks.
    pub fn generate_from(
        &self,
        x: ArrayView2<'_, f32>,
        n: usize,
        seed: u64,
    ) -> Result<(Array2<f32>, Vec<usize>)> {
        self.generate_from_on(&Device::new(Backend::Auto)?, x, n, seed)
    }

    /// [`Vae::generate_from`] on `device`.
    pub fn generate_from_on(
        &self,
        device: &Device,
        x: ArrayView2<'_, f32>,
        n: usize,
        seed: u64,
    ) -> Result<(Array2<f32>, Vec<usize>)> {
        match device {
            Device::Cpu => self.generate_from_with(&mut CpuEngine::new(), x, n, seed),
            Device::Gpu(gpu) => self.generate_from_with(&mut gpu.engine()?, x, n, seed),
        }
    }

    /// [`Vae::generate_from`] on `engine`.
    pub fn generate_from_with<E: Engine>(
        &self,
        engine: &mut E,
        x: ArrayView2<'_, f32>,
        n: usize,
        seed: u64,
    ) -> Result<(Array2<f32>, Vec<usize>)> {
        self.check_input(x)?;
        let scaled = self.scaler.transform(x);
        let (d, l) = (self.features(), self.latent);
        let choose = Stream::new(seed, Purpose::Choose, 0);
        let sources: Vec<usize> = (0..n)
            .map(|i| choose.below_at(i as u64, x.nrows() as u32) as usize)
            .collect();
        let noise = Stream::new(seed, Purpose::Generate, 1);
        let mut inf = Inference::new(engine, self)?;
        let mut out = Vec::with_capacity(n * d);
        let mut batch = Vec::with_capacity(CHUNK * d);
        for start in (0..n).step_by(CHUNK) {
            let rows = CHUNK.min(n - start);
            batch.clear();
            for &s in &sources[start..start + rows] {
                batch.extend(scaled.row(s).iter());
            }
            inf.encode(&batch, rows)?;
            let head = inf.enc_bufs.output();
            inf.e.reparameterize(
                head,
                rows,
                l,
                noise,
                (start * l) as u64,
                &mut inf.z,
                &mut inf.eps,
            );
            out.extend(inf.decode_z(rows)?);
        }
        Ok((self.finish(out, n)?, sources))
    }

    /// Inverts the scaling of decoded rows.
    fn finish(&self, mut out: Vec<f32>, n: usize) -> Result<Array2<f32>> {
        self.scaler.inverse_in_place(&mut out);
        Ok(self.matrix(out, n))
    }

    /// `n` rows of this model's width.
    fn matrix(&self, out: Vec<f32>, n: usize) -> Array2<f32> {
        Array2::from_shape_vec((n, self.features()), out).expect("n * features values")
    }
}
