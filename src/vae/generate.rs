//! Inference with a fitted VAE: encode, decode, reconstruct, and draw synthetic rows in every
//! [`Generation`] mode, in chunks of bounded size on any engine.
//!
//! Every draw is addressed by its row number: row `i` of a run takes its source row, noise,
//! neighbour and gap from elements `i` (and `i * latent ..`) of fixed streams, so a run split into
//! ranges, over threads or calls, gives the same rows as one call.

use std::ops::Range;

use ndarray::{Array2, ArrayView2};

use super::network::{forward, DeviceLayer, StackBuffers};
use super::{Activation, Generation, Likelihood, Sampling, Vae};
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
    features: usize,
    latent: usize,
}

impl<'e, E: Engine> Inference<'e, E> {
    fn new(e: &'e mut E, vae: &Vae) -> Result<Self> {
        let out_act = match vae.config.likelihood {
            Likelihood::Bernoulli => Activation::Sigmoid,
            Likelihood::Gaussian | Likelihood::GaussianLearned => Activation::Identity,
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
        let (features, latent) = (vae.modelled_features(), vae.latent);
        Ok(Inference {
            enc_bufs: StackBuffers::new(e, &enc, CHUNK, false)?,
            dec_bufs: StackBuffers::new(e, &dec, CHUNK, false)?,
            x: e.zeros(CHUNK * features)?,
            z: e.zeros(CHUNK * latent)?,
            e,
            enc,
            dec,
            features,
            latent,
        })
    }

    /// Encodes `x` (scaled, `rows <= CHUNK`) and returns `[mu | logvar]` per row.
    fn encode(&mut self, x: &[f32], rows: usize) -> Result<Vec<f32>> {
        self.e.write(&mut self.x, x)?;
        forward(self.e, &self.enc, &self.x, rows, &mut self.enc_bufs, None);
        self.e.read(self.enc_bufs.output(), rows * 2 * self.latent)
    }

    /// Decodes `z` (`rows` latent rows) and returns the outputs, still scaled.
    fn decode(&mut self, z: &[f32], rows: usize) -> Result<Vec<f32>> {
        self.e.write(&mut self.z, z)?;
        self.decode_z(rows)
    }

    /// Decodes what is in `self.z`.
    fn decode_z(&mut self, rows: usize) -> Result<Vec<f32>> {
        forward(self.e, &self.dec, &self.z, rows, &mut self.dec_bufs, None);
        self.e.read(self.dec_bufs.output(), rows * self.features)
    }
}

/// What a run of draws needs besides the model: the class's rows (modelled columns, in original
/// units and scaled) and, for interpolation, their latent means and neighbours.
struct Source {
    original: Array2<f32>,
    scaled: Array2<f32>,
    /// Posterior means, `rows x latent` (interpolation only).
    means: Option<Array2<f32>>,
    /// The latent neighbours of each row, `rows x k` (interpolation only).
    neighbors: Option<Array2<u32>>,
}

impl Source {
    /// The row that draw `i` starts from (`None` for the prior).
    fn row_of(&self, draws: &Draws, i: usize, mode: Generation) -> Option<usize> {
        (mode != Generation::Prior).then(|| {
            draws
                .choose
                .below_at(i as u64, self.original.nrows() as u32) as usize
        })
    }
}

/// The streams of one run.
struct Draws {
    choose: Stream,
    noise: Stream,
    neighbor: Stream,
    gap: Stream,
}

impl Draws {
    fn new(seed: u64) -> Draws {
        Draws {
            choose: Stream::new(seed, Purpose::Choose, 0),
            noise: Stream::new(seed, Purpose::Generate, 1),
            neighbor: Stream::new(seed, Purpose::Choose, 1),
            gap: Stream::new(seed, Purpose::Choose, 2),
        }
    }
}

/// Latent points of interpolation draws `first..` (one per source row): `z = mu_i + u (mu_j -
/// mu_i)` with `j` a latent neighbour of the source `i` and `u ~ U(0, 1)`; `z = mu_i` for a class
/// of one row.
fn interpolate(src: &Source, draws: &Draws, sources: &[usize], first: usize, z: &mut [f32]) {
    let means = src.means.as_ref().expect("interpolation has latent means");
    let l = means.ncols();
    for (k, (zr, &i)) in z.chunks_exact_mut(l).zip(sources).enumerate() {
        let at = (first + k) as u64;
        let j = match &src.neighbors {
            Some(nn) => nn[[i, draws.neighbor.below_at(at, nn.ncols() as u32) as usize]] as usize,
            None => i,
        };
        let u = draws.gap.uniform_at(at);
        let (a, b) = (means.row(i), means.row(j));
        for ((zv, &a), &b) in zr.iter_mut().zip(a).zip(b) {
            *zv = a + u * (b - a);
        }
    }
}

impl Vae {
    /// The posterior parameters `(mu, logvar)` of each row of `x` (original units), on the CPU
    /// engine (one pass, no training: rarely worth a device round trip).
    pub fn encode(&self, x: ArrayView2<'_, f32>) -> Result<(Array2<f32>, Array2<f32>)> {
        self.check_input(x)?;
        let scaled = self.scaler.transform(self.columns.select(x).view());
        self.encode_scaled(&mut CpuEngine::new(), scaled.view())
    }

    /// [`Vae::encode`] of rows already reduced to the modelled columns and scaled.
    fn encode_scaled<E: Engine>(
        &self,
        engine: &mut E,
        scaled: ArrayView2<'_, f32>,
    ) -> Result<(Array2<f32>, Array2<f32>)> {
        let data = scaled.as_slice().expect("standard layout");
        let (d, l, n) = (self.modelled_features(), self.latent, scaled.nrows());
        let mut inf = Inference::new(engine, self)?;
        let mut mu = Vec::with_capacity(n * l);
        let mut logvar = Vec::with_capacity(n * l);
        for start in (0..n).step_by(CHUNK) {
            let rows = CHUNK.min(n - start);
            let head = inf.encode(&data[start * d..(start + rows) * d], rows)?;
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

    /// Decodes latent vectors `z` (`n x latent`) to rows in the original units, on the CPU engine
    /// (constant columns filled in, whole-number columns rounded, nothing clipped).
    pub fn decode(&self, z: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        crate::check::finite_matrix(z)?;
        crate::check::width(z, self.latent)?;
        let z = z.as_standard_layout();
        let data = z.as_slice().expect("standard layout");
        let mut e = CpuEngine::new();
        let mut inf = Inference::new(&mut e, self)?;
        let (l, n) = (self.latent, z.nrows());
        let mut out = Vec::with_capacity(n * self.modelled_features());
        for start in (0..n).step_by(CHUNK) {
            let rows = CHUNK.min(n - start);
            out.extend(inf.decode(&data[start * l..(start + rows) * l], rows)?);
        }
        self.scaler.inverse_in_place(&mut out);
        Ok(self.finish(&out, n, false))
    }

    /// Decodes the posterior mean of each row of `x`: the model's reconstruction of `x`.
    pub fn reconstruct(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        let (mu, _) = self.encode(x)?;
        self.decode(mu.view())
    }

    /// Draws `n` synthetic rows from the prior: `z ~ N(0, I)`, decoded, with the other
    /// [`Sampling::default`] settings. Same seed, same rows. Runs on the device [`Backend::Auto`] picks, chosen on every
    /// call (see [`Vae::generate_on`] to reuse one).
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
        range: Range<usize>,
        seed: u64,
    ) -> Result<Array2<f32>> {
        let empty = Array2::zeros((0, self.features()));
        let prior = Sampling::of(Generation::Prior);
        Ok(self
            .sample_range_on(device, empty.view(), range, seed, &prior)?
            .0)
    }

    /// [`Vae::generate`] on `engine`.
    pub fn generate_with<E: Engine>(
        &self,
        engine: &mut E,
        n: usize,
        seed: u64,
    ) -> Result<Array2<f32>> {
        let empty = Array2::zeros((0, self.features()));
        let prior = Sampling::of(Generation::Prior);
        Ok(self.sample_with(engine, empty.view(), n, seed, &prior)?.0)
    }

    /// Draws `n` synthetic rows from the posterior of rows of `x` chosen uniformly at random
    /// ([`Generation::Posterior`], the other [`Sampling::default`] settings). Returns the rows and, for each, the
    /// index of the row of `x` it was drawn from. Runs on the device [`Backend::Auto`] picks.
    pub fn generate_from(
        &self,
        x: ArrayView2<'_, f32>,
        n: usize,
        seed: u64,
    ) -> Result<(Array2<f32>, Vec<usize>)> {
        let device = Device::new(Backend::Auto)?;
        let posterior = Sampling::of(Generation::Posterior);
        let (rows, sources) = self.sample_on(&device, x, n, seed, &posterior)?;
        Ok((rows, sources.into_iter().flatten().collect()))
    }

    /// Draws `n` synthetic rows as `sampling` says. `x` holds the class's real rows (original
    /// units; unused by [`Generation::Prior`]). Returns the rows and, for each, the row of `x` it
    /// was drawn from (`None` for prior draws). Same seed, same rows; on the CPU, row ranges run
    /// on separate threads with the same result.
    ///
    /// ```
    /// use smrt::{Device, Generation, Sampling, Vae, VaeConfig};
    /// let x = ndarray::Array2::from_shape_fn((30, 3), |(i, j)| ((i * 7 + j * 5) % 11) as f32);
    /// let vae = Vae::fit_on(&Device::Cpu, x.view(), &VaeConfig { epochs: 5, ..Default::default() })?;
    /// let still = Sampling { generation: Generation::Residual, temperature: 0.0, ..Sampling::default() };
    /// let (rows, sources) = vae.sample_on(&Device::Cpu, x.view(), 8, 1, &still)?;
    /// for (row, source) in rows.rows().into_iter().zip(sources) {
    ///     assert_eq!(row, x.row(source.unwrap())); // t = 0: the source rows themselves
    /// }
    /// # Ok::<(), smrt::Error>(())
    /// ```
    pub fn sample_on(
        &self,
        device: &Device,
        x: ArrayView2<'_, f32>,
        n: usize,
        seed: u64,
        sampling: &Sampling,
    ) -> Result<(Array2<f32>, Vec<Option<usize>>)> {
        self.sample_range_on(device, x, 0..n, seed, sampling)
    }

    /// Rows `range` of the draws [`Vae::sample_on`] makes for `seed`.
    pub fn sample_range_on(
        &self,
        device: &Device,
        x: ArrayView2<'_, f32>,
        range: Range<usize>,
        seed: u64,
        sampling: &Sampling,
    ) -> Result<(Array2<f32>, Vec<Option<usize>>)> {
        let source = self.source(device, x, sampling)?;
        let n = range.len();
        let out = match device {
            Device::Gpu(gpu) => {
                self.draw(&mut gpu.engine()?, &source, range.clone(), seed, sampling)?
            }
            Device::Cpu => {
                let threads = crate::parallel::threads();
                let per = n.div_ceil(threads).next_multiple_of(CHUNK).max(CHUNK);
                let starts: Vec<usize> = range.clone().step_by(per).collect();
                let parts = crate::parallel::parallel_map(&starts, |&start| {
                    let part = start..(start + per).min(range.end);
                    self.draw(&mut CpuEngine::new(), &source, part, seed, sampling)
                });
                let mut out = Vec::with_capacity(n * self.modelled_features());
                for part in parts {
                    out.extend(part?);
                }
                out
            }
        };
        Ok(self.finish_run(&source, &out, range, seed, sampling))
    }

    /// [`Vae::sample_on`] on `engine`.
    pub fn sample_with<E: Engine>(
        &self,
        engine: &mut E,
        x: ArrayView2<'_, f32>,
        n: usize,
        seed: u64,
        sampling: &Sampling,
    ) -> Result<(Array2<f32>, Vec<Option<usize>>)> {
        let source = self.source_with(engine, x, sampling)?;
        let out = self.draw(engine, &source, 0..n, seed, sampling)?;
        Ok(self.finish_run(&source, &out, 0..n, seed, sampling))
    }

    /// The rows of a run (`out`: modelled columns of draws `range`) widened to every column, and
    /// the source row of each draw.
    fn finish_run(
        &self,
        source: &Source,
        out: &[f32],
        range: Range<usize>,
        seed: u64,
        sampling: &Sampling,
    ) -> (Array2<f32>, Vec<Option<usize>>) {
        let draws = Draws::new(seed);
        let rows = self.finish(out, range.len(), sampling.clip);
        let sources = range
            .map(|i| source.row_of(&draws, i, sampling.generation))
            .collect();
        (rows, sources)
    }

    /// The class rows a run draws from, prepared on `device`.
    fn source(&self, device: &Device, x: ArrayView2<'_, f32>, s: &Sampling) -> Result<Source> {
        match device {
            Device::Cpu => self.source_with(&mut CpuEngine::new(), x, s),
            Device::Gpu(gpu) => self.source_with(&mut gpu.engine()?, x, s),
        }
    }

    fn source_with<E: Engine>(
        &self,
        engine: &mut E,
        x: ArrayView2<'_, f32>,
        s: &Sampling,
    ) -> Result<Source> {
        s.validate()?;
        if s.generation != Generation::Prior && x.nrows() == 0 {
            return Err(crate::Error::DataModel(format!(
                "{:?} generation draws from real rows of the class, and none were given",
                s.generation
            )));
        }
        if x.nrows() > 0 {
            self.check_input(x)?;
        }
        let original = self.columns.select(x);
        let scaled = self.scaler.transform(original.view());
        let (mut means, mut neighbors) = (None, None);
        if s.generation == Generation::Interpolate {
            let (mu, _) = self.encode_scaled(engine, scaled.view())?;
            let k = s.neighbors.min(mu.nrows() - 1);
            if k > 0 {
                neighbors = Some(crate::knn::nearest_neighbors(&Device::Cpu, mu.view(), k)?);
            }
            means = Some(mu);
        }
        Ok(Source {
            original,
            scaled,
            means,
            neighbors,
        })
    }

    /// Draws `range` of the run, modelled columns in original units (row-major).
    fn draw<E: Engine>(
        &self,
        engine: &mut E,
        src: &Source,
        range: Range<usize>,
        seed: u64,
        s: &Sampling,
    ) -> Result<Vec<f32>> {
        let (d, l) = (self.modelled_features(), self.latent);
        let draws = Draws::new(seed);
        let t = s.temperature;
        let mut inf = Inference::new(engine, self)?;
        let mut out = Vec::with_capacity(range.len() * d);
        let mut z = vec![0.0f32; CHUNK * l];
        let mut batch = Vec::with_capacity(CHUNK * d);
        for first in range.clone().step_by(CHUNK) {
            let rows = CHUNK.min(range.end - first);
            let z = &mut z[..rows * l];
            let offset = (first * l) as u64;
            let sources: Vec<usize> = (first..first + rows)
                .map(|i| src.row_of(&draws, i, s.generation).unwrap_or(0))
                .collect();
            let mut decoded = match s.generation {
                Generation::Prior if t == 1.0 => {
                    // The noise drawn on the device itself: no upload per chunk.
                    inf.e.normal(
                        &mut inf.z,
                        rows * l,
                        Stream::new(seed, Purpose::Generate, 0),
                        offset,
                    );
                    inf.decode_z(rows)?
                }
                Generation::Prior => {
                    Stream::new(seed, Purpose::Generate, 0).fill_normal(offset, z);
                    z.iter_mut().for_each(|v| *v *= t);
                    inf.decode(z, rows)?
                }
                Generation::Posterior | Generation::Residual | Generation::PriorResidual => {
                    batch.clear();
                    for &i in &sources {
                        batch.extend(src.scaled.row(i).iter());
                    }
                    let head = inf.encode(&batch, rows)?;
                    draws.noise.fill_normal(offset, z);
                    for (zr, h) in z.chunks_exact_mut(l).zip(head.chunks_exact(2 * l)) {
                        let (mu, logvar) = h.split_at(l);
                        if s.generation == Generation::PriorResidual {
                            zr.iter_mut().for_each(|v| *v *= t);
                            continue;
                        }
                        for ((zv, &m), &lv) in zr.iter_mut().zip(mu).zip(logvar) {
                            *zv = m + t * (0.5 * lv).exp() * *zv;
                        }
                    }
                    let moved = inf.decode(z, rows)?;
                    if s.generation == Generation::Posterior {
                        moved
                    } else {
                        let means: Vec<f32> = head
                            .chunks_exact(2 * l)
                            .flat_map(|h| h[..l].iter().copied())
                            .collect();
                        let mut at_mean = inf.decode(&means, rows)?;
                        let mut moved = moved;
                        self.scaler.inverse_in_place(&mut moved);
                        self.scaler.inverse_in_place(&mut at_mean);
                        // x_i + dec(z) - dec(mu_i), in original units: exactly x_i when z = mu_i.
                        for (k, &i) in sources.iter().enumerate() {
                            let row = src.original.row(i);
                            let (a, b) = (&moved[k * d..(k + 1) * d], &at_mean[k * d..(k + 1) * d]);
                            out.extend(
                                row.iter()
                                    .zip(a.iter().zip(b))
                                    .map(|(&x, (&a, &b))| x + (a - b)),
                            );
                        }
                        continue;
                    }
                }
                Generation::Interpolate => {
                    interpolate(src, &draws, &sources, first, z);
                    inf.decode(z, rows)?
                }
            };
            if matches!(s.generation, Generation::Prior | Generation::Posterior) {
                self.add_output_noise(&mut decoded, (first * d) as u64, seed, t);
            }
            self.scaler.inverse_in_place(&mut decoded);
            out.extend(decoded);
        }
        Ok(out)
    }

    /// A draw of the decoder's own noise, `N(0, t^2 e^(s_j))` per element, added to decoded means
    /// (scaled units, rows from `first` of the run): with a learned output variance a prior or
    /// posterior draw is a sample of the whole model, not only its mean, so its spread matches
    /// the data's. Nothing is added for the other likelihoods.
    fn add_output_noise(&self, decoded: &mut [f32], first: u64, seed: u64, t: f32) {
        let Some(logvar) = &self.output_logvar else {
            return;
        };
        let d = logvar.len();
        let std: Vec<f32> = logvar
            .iter()
            .map(|&s| t * (0.5 * s.clamp(Likelihood::MIN_LOGVAR, Likelihood::MAX_LOGVAR)).exp())
            .collect();
        let mut noise = vec![0.0f32; decoded.len()];
        Stream::new(seed, Purpose::Generate, 2).fill_normal(first, &mut noise);
        for (row, eps) in decoded.chunks_exact_mut(d).zip(noise.chunks_exact(d)) {
            for ((v, &e), &sd) in row.iter_mut().zip(eps).zip(&std) {
                *v += sd * e;
            }
        }
    }

    /// Modelled columns (original units) widened to every column, as an `n x features` matrix.
    fn finish(&self, modelled: &[f32], n: usize, clip: bool) -> Array2<f32> {
        let full = self.columns.complete(modelled, n, clip);
        Array2::from_shape_vec((n, self.features()), full).expect("n * features values")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolated_latent_points_lie_on_a_segment_to_a_neighbour() {
        let (n, l, k) = (12, 3, 4);
        let s = Stream::new(1, Purpose::Init, 0);
        let means = Array2::from_shape_fn((n, l), |(i, j)| s.normal_at((i * l + j) as u64));
        let neighbors = crate::knn::nearest_neighbors(&Device::Cpu, means.view(), k).unwrap();
        let src = Source {
            original: Array2::zeros((n, 1)),
            scaled: Array2::zeros((n, 1)),
            means: Some(means.clone()),
            neighbors: Some(neighbors.clone()),
        };
        let draws = Draws::new(5);
        let sources: Vec<usize> = (0..200).map(|r| r % n).collect();
        let mut z = vec![f32::NAN; sources.len() * l];
        interpolate(&src, &draws, &sources, 0, &mut z);
        for (zr, &i) in z.chunks_exact(l).zip(&sources) {
            // Some neighbour j of i has z - mu_i = u (mu_j - mu_i) with one u in [0, 1].
            let on_segment = neighbors.row(i).iter().any(|&j| {
                let (a, b) = (means.row(i), means.row(j as usize));
                let d: Vec<f32> = b.iter().zip(a).map(|(b, a)| b - a).collect();
                let norm2: f32 = d.iter().map(|v| v * v).sum();
                let u = zr
                    .iter()
                    .zip(a)
                    .zip(&d)
                    .map(|((z, a), d)| (z - a) * d)
                    .sum::<f32>()
                    / norm2;
                (-1e-6..=1.0 + 1e-6).contains(&u)
                    && zr
                        .iter()
                        .zip(a)
                        .zip(&d)
                        .all(|((z, a), d)| (z - (a + u * d)).abs() < 1e-5)
            });
            assert!(
                on_segment,
                "row from source {i}: {zr:?} is on no segment to a neighbour"
            );
        }
    }
}
