//! Inference with a fitted VAE: encode, decode, reconstruct, and draw synthetic rows in every
//! [`Generation`] mode, in chunks of bounded size on any engine.
//!
//! Every draw is addressed by its row number: row `i` of a run takes its source row, noise,
//! neighbour and gap from elements `i` (and `i * latent ..`) of fixed streams, so a run split into
//! ranges, over threads or calls, gives the same rows as one call.

use std::ops::Range;

use ndarray::{Array2, ArrayView2};

use super::model::no_codes;
use super::network::{forward, DeviceLayer, Rows, StackBuffers};
use super::{Activation, CategoryDraw, Generation, Heads, Likelihood, Sampling, Vae};
use crate::engine::{Backend, CpuEngine, Device, Engine};
use crate::error::Result;
use crate::rng::{Purpose, Stream};

/// Rows per chunk: bounds the memory of generation whatever the number of rows asked for.
const CHUNK: usize = 8192;

/// Draws made before a run to find how near a point mass a draw must be to take its value
/// ([`super::columns::Columns::reaches`]), and their seed: fixed, so the reach depends on the
/// model, the class's rows and the sampling settings, never on the run's seed or range.
const CALIBRATION_DRAWS: usize = 1000;
const CALIBRATION_SEED: u64 = 0x00ca_11b7_a7e5;

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
        // With categorical heads the output stays raw (logits); a Bernoulli sigmoid is applied
        // to the numeric columns on the host (`Vae::split`).
        let out_act = match vae.config.likelihood {
            Likelihood::Bernoulli if vae.network_heads().is_empty() => Activation::Sigmoid,
            _ => Activation::Identity,
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
        let (features, latent) = (vae.network_width(), vae.latent);
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
        forward(
            self.e,
            &self.enc,
            &self.x,
            Rows::one(rows),
            &mut self.enc_bufs,
            None,
        );
        self.e.read(self.enc_bufs.output(), rows * 2 * self.latent)
    }

    /// Decodes `z` (`rows` latent rows) and returns the outputs, still scaled.
    fn decode(&mut self, z: &[f32], rows: usize) -> Result<Vec<f32>> {
        self.e.write(&mut self.z, z)?;
        self.decode_z(rows)
    }

    /// Decodes what is in `self.z`.
    fn decode_z(&mut self, rows: usize) -> Result<Vec<f32>> {
        forward(
            self.e,
            &self.dec,
            &self.z,
            Rows::one(rows),
            &mut self.dec_bufs,
            None,
        );
        self.e.read(self.dec_bufs.output(), rows * self.features)
    }
}

/// What a run of draws needs besides the model: the class's rows (modelled columns, in original
/// units and scaled) and, for interpolation, their latent means and neighbours.
struct Source {
    original: Array2<f32>,
    /// The network's input: scaled numeric columns, then the one-hot heads.
    scaled: Array2<f32>,
    /// The codes of the network's heads (categorical columns, then two-valued ones).
    codes: Array2<u32>,
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

/// What a run draws: modelled numeric columns (original units) and the codes of the network's
/// heads, row-major.
struct Drawn {
    numeric: Vec<f32>,
    codes: Vec<u32>,
}

impl Drawn {
    fn with_capacity(rows: usize, vae: &Vae) -> Drawn {
        Drawn {
            numeric: Vec::with_capacity(rows * vae.modelled_features()),
            codes: Vec::with_capacity(rows * vae.network_heads().len()),
        }
    }
}

/// The numeric columns, the categorical codes and the source row of each drawn row.
pub type Sampled = (Array2<f32>, Array2<u32>, Vec<Option<usize>>);

/// A model's draws for one seed, ready to give any range of them ([`Vae::drawer`]).
pub struct Drawer<'a> {
    vae: &'a Vae,
    device: Device,
    source: Source,
    seed: u64,
    sampling: Sampling,
    reach: Vec<Option<f32>>,
}

impl Drawer<'_> {
    /// Rows `range` of the draws: the same rows whichever pieces they are asked in.
    pub fn rows(&self, range: Range<usize>) -> Result<Sampled> {
        let (vae, source, seed, sampling) = (self.vae, &self.source, self.seed, &self.sampling);
        let n = range.len();
        let out = match &self.device {
            Device::Gpu(gpu) => {
                vae.draw(&mut gpu.engine()?, source, range.clone(), seed, sampling)?
            }
            Device::Cpu => {
                let threads = crate::parallel::threads();
                let per = n.div_ceil(threads).next_multiple_of(CHUNK).max(CHUNK);
                let starts: Vec<usize> = range.clone().step_by(per).collect();
                let parts = crate::parallel::parallel_map(&starts, |&start| {
                    let part = start..(start + per).min(range.end);
                    vae.draw(&mut CpuEngine::new(), source, part, seed, sampling)
                });
                let mut out = Drawn::with_capacity(n, vae);
                for part in parts {
                    let part = part?;
                    out.numeric.extend(part.numeric);
                    out.codes.extend(part.codes);
                }
                out
            }
        };
        Ok(vae.finish_run(source, &out, range, seed, sampling, &self.reach))
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
        self.numeric_only("encode")?;
        self.check_input(x)?;
        let (_, input, _) = self.network_input(x, no_codes(x.nrows()).view())?;
        self.encode_scaled(&mut CpuEngine::new(), input.view())
    }

    /// [`Vae::encode`] of rows already in the network's input form.
    fn encode_scaled<E: Engine>(
        &self,
        engine: &mut E,
        scaled: ArrayView2<'_, f32>,
    ) -> Result<(Array2<f32>, Array2<f32>)> {
        let data = scaled.as_slice().expect("standard layout");
        let (d, l, n) = (self.network_width(), self.latent, scaled.nrows());
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
    /// (constant columns filled in, two-valued columns at their more probable value, whole-number
    /// columns rounded, nothing clipped).
    pub fn decode(&self, z: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        self.numeric_only("decode")?;
        crate::check::finite_matrix(z)?;
        crate::check::width(z, self.latent)?;
        let z = z.as_standard_layout();
        let data = z.as_slice().expect("standard layout");
        let mut e = CpuEngine::new();
        let mut inf = Inference::new(&mut e, self)?;
        let (l, n) = (self.latent, z.nrows());
        let heads = self.network_heads();
        let mut out = Drawn::with_capacity(n, self);
        for start in (0..n).step_by(CHUNK) {
            let rows = CHUNK.min(n - start);
            let decoded = inf.decode(&data[start * l..(start + rows) * l], rows)?;
            let (mut numeric, logits) = self.split(&heads, decoded, rows);
            self.scaler.inverse_in_place(&mut numeric);
            out.numeric.extend(numeric);
            self.choose(
                &heads,
                &logits,
                start,
                0,
                CategoryDraw::Argmax,
                &mut out.codes,
            );
        }
        Ok(self.finish(&out, n, false, &[]).0)
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
        self.numeric_only("sample_range_on")?;
        let codes = no_codes(x.nrows());
        let (rows, _, sources) =
            self.sample_mixed_range_on(device, x, codes.view(), range, seed, sampling)?;
        Ok((rows, sources))
    }

    /// [`Vae::sample_on`] for a model of categorical columns too ([`Vae::fit_mixed_on`]): `x`
    /// and `codes` hold the class's real rows (unused by [`Generation::Prior`]). Returns the
    /// numeric columns, the categorical columns' codes and each row's source row.
    pub fn sample_mixed_on(
        &self,
        device: &Device,
        x: ArrayView2<'_, f32>,
        codes: ArrayView2<'_, u32>,
        n: usize,
        seed: u64,
        sampling: &Sampling,
    ) -> Result<Sampled> {
        self.sample_mixed_range_on(device, x, codes, 0..n, seed, sampling)
    }

    /// Rows `range` of the draws [`Vae::sample_mixed_on`] makes for `seed`.
    pub fn sample_mixed_range_on(
        &self,
        device: &Device,
        x: ArrayView2<'_, f32>,
        codes: ArrayView2<'_, u32>,
        range: Range<usize>,
        seed: u64,
        sampling: &Sampling,
    ) -> Result<Sampled> {
        self.drawer(device, x, codes, seed, sampling)?.rows(range)
    }

    /// The draws [`Vae::sample_mixed_on`] makes for `seed`, any range of them at a time: the
    /// class's rows are prepared once (encoded, for the modes that start from them), so a long
    /// run drawn in pieces costs what it costs in one, and memory holds one piece.
    pub fn drawer<'a>(
        &'a self,
        device: &Device,
        x: ArrayView2<'_, f32>,
        codes: ArrayView2<'_, u32>,
        seed: u64,
        sampling: &Sampling,
    ) -> Result<Drawer<'a>> {
        let sampling = self.resolve(sampling);
        let (source, reach) = match device {
            Device::Cpu => self.prepare_with(&mut CpuEngine::new(), x, codes, &sampling)?,
            Device::Gpu(gpu) => self.prepare_with(&mut gpu.engine()?, x, codes, &sampling)?,
        };
        Ok(Drawer {
            vae: self,
            device: device.clone(),
            source,
            seed,
            sampling,
            reach,
        })
    }

    /// How near its point mass a draw of each column must be to take its value, from
    /// [`CALIBRATION_DRAWS`] draws made as `sampling` says (none where no column has a point mass).
    fn reach<E: Engine>(
        &self,
        engine: &mut E,
        source: &Source,
        sampling: &Sampling,
    ) -> Result<Vec<Option<f32>>> {
        if self.columns.stats().iter().all(|s| s.point.is_none()) {
            return Ok(Vec::new());
        }
        let n = CALIBRATION_DRAWS;
        let out = self.draw(engine, source, 0..n, CALIBRATION_SEED, sampling)?;
        Ok(self.columns.reaches(&out.numeric, n))
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
        self.numeric_only("sample_with")?;
        let sampling = &self.resolve(sampling);
        let codes = no_codes(x.nrows());
        let (source, reach) = self.prepare_with(engine, x, codes.view(), sampling)?;
        let out = self.draw(engine, &source, 0..n, seed, sampling)?;
        let (rows, _, sources) = self.finish_run(&source, &out, 0..n, seed, sampling, &reach);
        Ok((rows, sources))
    }

    /// The rows of a run (`out`: modelled columns of draws `range`) widened to every column,
    /// their codes, and the source row of each draw.
    fn finish_run(
        &self,
        source: &Source,
        out: &Drawn,
        range: Range<usize>,
        seed: u64,
        sampling: &Sampling,
        reach: &[Option<f32>],
    ) -> Sampled {
        let draws = Draws::new(seed);
        let n = range.len();
        let (rows, codes) = self.finish(out, n, sampling.clip, reach);
        let sources = range
            .map(|i| source.row_of(&draws, i, sampling.generation))
            .collect();
        (rows, codes, sources)
    }

    /// An error for the numeric-only entry points of a model with categorical columns.
    fn numeric_only(&self, what: &str) -> Result<()> {
        if self.heads.is_empty() {
            Ok(())
        } else {
            Err(crate::Error::DataModel(format!(
                "{what} takes numeric columns only, and this model also has {} categorical: use the mixed entry points (sample_mixed_on)",
                self.heads.len()
            )))
        }
    }

    /// The class rows a run draws from and the reach of each point mass, both on one engine.
    fn prepare_with<E: Engine>(
        &self,
        engine: &mut E,
        x: ArrayView2<'_, f32>,
        codes: ArrayView2<'_, u32>,
        s: &Sampling,
    ) -> Result<(Source, Vec<Option<f32>>)> {
        let source = self.source_with(engine, x, codes, s)?;
        let reach = self.reach(engine, &source, s)?;
        Ok((source, reach))
    }

    fn source_with<E: Engine>(
        &self,
        engine: &mut E,
        x: ArrayView2<'_, f32>,
        codes: ArrayView2<'_, u32>,
        s: &Sampling,
    ) -> Result<Source> {
        s.validate()?;
        if s.generation != Generation::Prior && x.nrows() == 0 {
            return Err(crate::Error::DataModel(format!(
                "{:?} generation draws from real rows of the class, and none were given",
                s.generation
            )));
        }
        if codes.nrows() != x.nrows() {
            return Err(crate::Error::ShapeMismatch {
                what: "rows of categorical codes",
                expected: x.nrows(),
                got: codes.nrows(),
            });
        }
        if x.nrows() > 0 {
            self.check_input(x)?;
        }
        let (original, scaled, codes) = self.network_input(x, codes)?;
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
            codes,
            means,
            neighbors,
        })
    }

    /// Draws `range` of the run: modelled numeric columns in original units and the codes of the
    /// categorical columns (both row-major).
    fn draw<E: Engine>(
        &self,
        engine: &mut E,
        src: &Source,
        range: Range<usize>,
        seed: u64,
        s: &Sampling,
    ) -> Result<Drawn> {
        let (d, w, l) = (self.modelled_features(), self.network_width(), self.latent);
        let draws = Draws::new(seed);
        let t = s.temperature;
        let heads = self.network_heads();
        let mut inf = Inference::new(engine, self)?;
        let mut out = Drawn::with_capacity(range.len(), self);
        let mut z = vec![0.0f32; CHUNK * l];
        let mut batch = Vec::with_capacity(CHUNK * w);
        for first in range.clone().step_by(CHUNK) {
            let rows = CHUNK.min(range.end - first);
            let z = &mut z[..rows * l];
            let offset = (first * l) as u64;
            let sources: Vec<usize> = (first..first + rows)
                .map(|i| src.row_of(&draws, i, s.generation))
                .map(|i| i.unwrap_or(0))
                .collect();
            // The decoded rows, and for the residual modes the decoded posterior means.
            let (moved, at_mean) = match s.generation {
                // (Auto is resolved to a mode before a run starts: `Vae::resolve`.)
                Generation::Prior | Generation::Auto if t == 1.0 => {
                    // The noise drawn on the device itself: no upload per chunk.
                    inf.e.normal(
                        &mut inf.z,
                        rows * l,
                        Stream::new(seed, Purpose::Generate, 0),
                        offset,
                    );
                    (inf.decode_z(rows)?, None)
                }
                Generation::Prior | Generation::Auto => {
                    Stream::new(seed, Purpose::Generate, 0).fill_normal(offset, z);
                    z.iter_mut().for_each(|v| *v *= t);
                    (inf.decode(z, rows)?, None)
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
                    let at_mean = if s.generation == Generation::Posterior {
                        None
                    } else {
                        let means: Vec<f32> = head
                            .chunks_exact(2 * l)
                            .flat_map(|h| h[..l].iter().copied())
                            .collect();
                        Some(inf.decode(&means, rows)?)
                    };
                    (moved, at_mean)
                }
                Generation::Interpolate => {
                    interpolate(src, &draws, &sources, first, z);
                    (inf.decode(z, rows)?, None)
                }
            };
            let (mut moved, logits) = self.split(&heads, moved, rows);
            match at_mean {
                Some(at_mean) => {
                    let (mut at_mean, mean_logits) = self.split(&heads, at_mean, rows);
                    self.scaler.inverse_in_place(&mut moved);
                    self.scaler.inverse_in_place(&mut at_mean);
                    // The steps dec(z) - dec(mu_i), in original units, minus any part that
                    // would break a relation the class's rows keep.
                    moved.iter_mut().zip(&at_mean).for_each(|(a, &b)| *a -= b);
                    if let Some(relations) = self.columns.relations() {
                        relations.keep_in_steps(&mut moved);
                    }
                    // x_i + step: exactly x_i when z = mu_i.
                    for (k, &i) in sources.iter().enumerate() {
                        let row = src.original.row(i);
                        let step = &moved[k * d..(k + 1) * d];
                        out.numeric.extend(
                            row.iter()
                                .zip(step)
                                .map(|(&x, &step)| (x + step).clamp(-f32::MAX, f32::MAX)),
                        );
                    }
                    let codes = &mut out.codes;
                    self.keep_or_move(&heads, src, &sources, &logits, &mean_logits, codes);
                }
                None => {
                    if matches!(s.generation, Generation::Prior | Generation::Posterior) {
                        self.add_output_noise(&mut moved, (first * d) as u64, seed, t);
                    }
                    self.scaler.inverse_in_place(&mut moved);
                    if let Some(relations) = self.columns.relations() {
                        relations.keep_in_rows(&mut moved);
                    }
                    out.numeric.extend(moved);
                    self.choose(&heads, &logits, first, seed, s.category, &mut out.codes);
                }
            }
        }
        Ok(out)
    }

    /// Decoded rows (network width) split into the numeric columns and the logits of the
    /// network's `heads`. With heads and a Bernoulli likelihood the numeric columns get their
    /// sigmoid here (the network's output stays raw for the softmax heads).
    fn split(&self, heads: &Heads, decoded: Vec<f32>, rows: usize) -> (Vec<f32>, Vec<f32>) {
        if heads.is_empty() {
            return (decoded, Vec::new());
        }
        let (d, w) = (self.modelled_features(), self.network_width());
        let mut numeric = Vec::with_capacity(rows * d);
        let mut logits = Vec::with_capacity(rows * (w - d));
        for row in decoded.chunks_exact(w) {
            numeric.extend_from_slice(&row[..d]);
            logits.extend_from_slice(&row[d..]);
        }
        if self.config.likelihood == Likelihood::Bernoulli {
            numeric
                .iter_mut()
                .for_each(|v| *v = 1.0 / (1.0 + (-*v).exp()));
        }
        (numeric, logits)
    }

    /// The categories of rows `first..` from their heads' `logits`: a softmax draw (uniform `r * heads
    /// + h` of a fixed stream) or the arg-max.
    fn choose(
        &self,
        heads: &Heads,
        logits: &[f32],
        first: usize,
        seed: u64,
        how: CategoryDraw,
        out: &mut Vec<u32>,
    ) {
        let (q, width) = (heads.len(), heads.width());
        if q == 0 {
            return;
        }
        let stream = Stream::new(seed, Purpose::Generate, 3);
        let mut codes = vec![0u32; q];
        let mut uniforms = vec![0.0f32; q];
        for (k, row) in logits.chunks_exact(width).enumerate() {
            match how {
                CategoryDraw::Argmax => heads.argmax(row, &mut codes),
                CategoryDraw::Sample => {
                    let at = ((first + k) * q) as u64;
                    for (h, u) in uniforms.iter_mut().enumerate() {
                        *u = stream.uniform_at(at + h as u64);
                    }
                    heads.sample(row, &uniforms, &mut codes);
                }
            }
            out.extend_from_slice(&codes);
        }
    }

    /// The categories of residual draws: each source row's own, unless the head's arg-max at
    /// the moved latent point differs from its arg-max at the source's posterior mean.
    fn keep_or_move(
        &self,
        heads: &Heads,
        src: &Source,
        sources: &[usize],
        moved: &[f32],
        at_mean: &[f32],
        out: &mut Vec<u32>,
    ) {
        let (q, width) = (heads.len(), heads.width());
        if q == 0 {
            return;
        }
        let (mut a, mut b) = (vec![0u32; q], vec![0u32; q]);
        let rows = moved.chunks_exact(width).zip(at_mean.chunks_exact(width));
        for ((m, c), &i) in rows.zip(sources) {
            heads.argmax(m, &mut a);
            heads.argmax(c, &mut b);
            let own = src.codes.row(i);
            out.extend((0..q).map(|h| if a[h] == b[h] { own[h] } else { a[h] }));
        }
    }

    /// A draw of the decoder's own noise, `N(0, t^2 e^(s_j))` per element, added to decoded means
    /// (scaled units, rows from `first` of the run): with a learned output variance a prior or
    /// posterior draw is a sample of the whole model, not only its mean, so its spread matches
    /// the data's. Nothing is added for the other likelihoods.
    fn add_output_noise(&self, decoded: &mut [f32], first: u64, seed: u64, t: f32) {
        let Some(logvar) = self.output_logvar.as_ref().filter(|s| !s.is_empty()) else {
            return; // no learned variance, or no numeric column to add noise to
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

    /// `n` drawn rows as an `n x features` matrix of every column (the two-valued heads' codes
    /// become their columns' values, values within `reach` of a point mass take its value) and
    /// the categorical columns' codes.
    fn finish(
        &self,
        out: &Drawn,
        n: usize,
        clip: bool,
        reach: &[Option<f32>],
    ) -> (Array2<f32>, Array2<u32>) {
        let (q, b) = (self.heads.len(), self.columns.binary().len());
        let (mut categorical, mut binary) = (Vec::with_capacity(n * q), Vec::with_capacity(n * b));
        if q + b > 0 {
            for row in out.codes.chunks_exact(q + b) {
                categorical.extend_from_slice(&row[..q]);
                binary.extend_from_slice(&row[q..]);
            }
        }
        let full = self.columns.complete(&out.numeric, &binary, n, clip, reach);
        let rows = Array2::from_shape_vec((n, self.features()), full).expect("n * features values");
        let codes = Array2::from_shape_vec((n, q), categorical).expect("a code per row and head");
        (rows, codes)
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
            codes: Array2::zeros((n, 0)),
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
