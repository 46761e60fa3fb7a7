//! The one training loop: mini-batches, forward, loss, backward, L2, clipping, optimizer, early
//! stopping. Written once against [`Engine`]; engines implement only the kernels. It trains a
//! group of models of one shape together ([`super::Vae::fit_many`]); a fit alone is a group of
//! one.
//!
//! Everything a fit touches is allocated on the engine before the first step. Per step the loop
//! only records kernels; per chunk of steps it uploads the shuffled rows and the models' table
//! entries and reads back one loss buffer.

use std::borrow::Cow;
use std::ops::ControlFlow;
use std::time::Instant;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::network::{backward, forward, DeviceLayer, Dropout, LayerGrads, Rows, StackBuffers};
use super::{Vae, VaeConfig};
use crate::engine::{Blocks, Clip, Engine, ModelStep, Models, Update};
use crate::error::{Error, Result};
use crate::rng::{permutation, Purpose, Stream};

/// Losses and time of one epoch, averaged per row (the L2 term per batch).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// Mean reconstruction loss per row.
    pub reconstruction: f64,
    /// Mean KL divergence per row (before the beta weight).
    pub kl: f64,
    /// Mean L2 penalty per batch.
    pub l2: f64,
    /// `reconstruction + beta * kl + l2`: the minimised objective.
    pub total: f64,
    /// Wall-clock seconds of the epoch.
    pub seconds: f64,
}

/// The training record of one VAE.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// One entry per epoch run.
    pub epochs: Vec<EpochStats>,
    /// Whether early stopping ended the fit before the last configured epoch.
    pub stopped_early: bool,
}

/// Loss-buffer slots per batch: reconstruction, KL, L2.
pub(crate) const SLOTS: usize = 3;

/// The learned per-feature log-variance of [`crate::vae::Likelihood::GaussianLearned`]: a
/// parameter vector beside the layers, with its gradient and optimizer state.
pub(crate) struct Variance<B> {
    pub s: B,
    pub ds: B,
    pub state: Vec<B>,
    /// Elements (the numeric columns).
    pub len: usize,
    /// Elements from one model's copy to the next's.
    pub stride: usize,
}

/// Every parameter tensor of the model packed in one buffer ([`Engine::zeros_packed`]), with
/// the gradients and optimizer state laid out alike: clipping and the optimizer step are then
/// one kernel each for the whole model.
pub(crate) struct Whole<B> {
    pub params: B,
    pub grads: B,
    pub state: Vec<B>,
    /// Elements of one model's block of each of them (the blocks follow one another).
    pub len: usize,
}

/// The parameters of one model, or of several trained together, packed
/// ([`Engine::zeros_packed`]) with their gradients and optimizer state.
pub(crate) struct Parameters<B> {
    pub enc: Vec<DeviceLayer<B>>,
    pub dec: Vec<DeviceLayer<B>>,
    pub enc_grads: Vec<LayerGrads<B>>,
    pub dec_grads: Vec<LayerGrads<B>>,
    pub variance: Option<Variance<B>>,
    /// The parameters, gradients and state as one buffer each, on an engine that packs them.
    pub whole: Option<Whole<B>>,
}

impl<B> Parameters<B> {
    /// Allocates the tensors of `vaes` (all of one shape and optimizer) and uploads each
    /// model's initial values as its copy.
    pub fn upload<E: Engine<Buffer = B>>(e: &mut E, vaes: &[&Vae]) -> Result<Self> {
        let first = vaes[0];
        let models = vaes.len();
        let states = first.config.optimizer.state_tensors();
        let lens: Vec<usize> = tensors(first).iter().map(|t| t.len()).collect();
        let mut params = e.zeros_packed(&lens, models)?;
        for (z, v) in vaes.iter().enumerate() {
            for ((part, stride), t) in params.parts.iter_mut().zip(&params.strides).zip(tensors(v))
            {
                e.write_at(part, z * stride, t)?;
            }
        }
        let grads = e.zeros_packed(&lens, models)?;
        let mut state = (0..states)
            .map(|_| e.zeros_packed(&lens, models))
            .collect::<Result<Vec<_>>>()?;
        let strides = params.strides.clone();
        let whole = match (params.whole, grads.whole) {
            (Some((params, len)), Some((grads, _))) => Some(Whole {
                params,
                grads,
                state: state
                    .iter_mut()
                    .map(|s| s.whole.take().expect("packed alike").0)
                    .collect(),
                len,
            }),
            _ => None,
        };
        let mut params = params.parts.into_iter();
        let mut grads = grads.parts.into_iter();
        let mut state: Vec<_> = state.into_iter().map(|s| s.parts.into_iter()).collect();
        let mut next_state = || {
            state
                .iter_mut()
                .map(|s| s.next().expect("one per tensor"))
                .collect()
        };
        let mut out = Parameters {
            enc: vec![],
            dec: vec![],
            enc_grads: vec![],
            dec_grads: vec![],
            variance: None,
            whole,
        };
        let layers = first.encoder.iter().chain(&first.decoder);
        for (i, d) in layers.enumerate() {
            let layer = DeviceLayer {
                w: params.next().expect("w"),
                b: params.next().expect("b"),
                fan_in: d.w.nrows(),
                fan_out: d.w.ncols(),
                act: d.activation,
                strides: [strides[2 * i], strides[2 * i + 1]],
            };
            let g = LayerGrads {
                w: grads.next().expect("dw"),
                b: grads.next().expect("db"),
                state_w: next_state(),
                state_b: next_state(),
            };
            let (layers, grads) = match i < first.encoder.len() {
                true => (&mut out.enc, &mut out.enc_grads),
                false => (&mut out.dec, &mut out.dec_grads),
            };
            layers.push(layer);
            grads.push(g);
        }
        if let Some(values) = &first.output_logvar {
            out.variance = Some(Variance {
                s: params.next().expect("log-variance"),
                ds: grads.next().expect("its gradient"),
                state: next_state(),
                len: values.len(),
                stride: *strides.last().expect("one per tensor"),
            });
        }
        Ok(out)
    }

    /// Clips the gradients of the first `models` models (if configured; each by its own norm,
    /// summed into `norm`, one element per model) and applies optimizer step `t` to each of
    /// their tensors.
    pub fn update<E: Engine<Buffer = B>>(
        &mut self,
        e: &mut E,
        cfg: &VaeConfig,
        norm: &mut B,
        (t, models): (u32, usize),
    ) {
        let layers = self.enc.iter_mut().zip(self.enc_grads.iter_mut());
        let mut layers: Vec<_> = layers
            .chain(self.dec.iter_mut().zip(self.dec_grads.iter_mut()))
            .collect();
        if cfg.clip_norm.is_some() {
            e.fill(norm, models, 0.0);
            match &self.whole {
                Some(w) => e.sum_squares(&w.grads, w.len, models, norm, 0),
                None => {
                    for (l, g) in &layers {
                        e.sum_squares(&g.w, l.fan_in * l.fan_out, models, norm, 0);
                        e.sum_squares(&g.b, l.fan_out, models, norm, 0);
                    }
                    if let Some(v) = &self.variance {
                        e.sum_squares(&v.ds, v.len, models, norm, 0);
                    }
                }
            }
        }
        let clip = cfg.clip_norm.map(|max_norm| Clip {
            sum_squares: &*norm,
            max_norm,
        });
        let update = Update {
            optimizer: cfg.optimizer,
            learning_rate: cfg.learning_rate,
            t,
        };
        if let Some(w) = &mut self.whole {
            let (len, state) = (w.len, &mut w.state);
            e.optimizer_step(update, &mut w.params, &w.grads, state, len, models, clip);
            return;
        }
        for (l, g) in &mut layers {
            let n = l.fan_in * l.fan_out;
            e.optimizer_step(update, &mut l.w, &g.w, &mut g.state_w, n, models, clip);
            e.optimizer_step(
                update,
                &mut l.b,
                &g.b,
                &mut g.state_b,
                l.fan_out,
                models,
                clip,
            );
        }
        if let Some(v) = &mut self.variance {
            e.optimizer_step(update, &mut v.s, &v.ds, &mut v.state, v.len, models, clip);
        }
    }

    /// Reads the parameters of the models `which` back into `vaes` (one per model, in order).
    pub fn download<E: Engine<Buffer = B>>(
        &self,
        e: &mut E,
        which: &[usize],
        vaes: &mut [&mut Vae],
    ) -> Result<()> {
        let Some(&last) = which.iter().max() else {
            return Ok(());
        };
        let layers = self.enc.iter().chain(&self.dec);
        for (i, l) in layers.enumerate() {
            let [sw, sb] = l.strides;
            let (nw, nb) = (l.fan_in * l.fan_out, l.fan_out);
            let w = e.read(&l.w, last * sw + nw)?;
            let b = e.read(&l.b, last * sb + nb)?;
            for &z in which {
                let vae = &mut vaes[z];
                let n_enc = vae.encoder.len();
                let dense = match i < n_enc {
                    true => &mut vae.encoder[i],
                    false => &mut vae.decoder[i - n_enc],
                };
                let (dw, db) = (&mut dense.w, &mut dense.b);
                dw.as_slice_mut()
                    .expect("standard layout")
                    .copy_from_slice(&w[z * sw..][..nw]);
                db.as_slice_mut()
                    .expect("contiguous")
                    .copy_from_slice(&b[z * sb..][..nb]);
            }
        }
        if let Some(v) = &self.variance {
            let s = e.read(&v.s, last * v.stride + v.len)?;
            for &z in which {
                vaes[z].output_logvar = Some(s[z * v.stride..][..v.len].to_vec().into());
            }
        }
        Ok(())
    }
}

/// Every parameter tensor of `v` in order: weights and bias of each layer, encoder then decoder,
/// then the learned log-variance if any. Gradients and optimizer state are laid out alike.
fn tensors(v: &Vae) -> Vec<&[f32]> {
    let layers = v.encoder.iter().chain(&v.decoder);
    let mut t: Vec<&[f32]> = layers
        .flat_map(|d| [d.w.as_slice(), d.b.as_slice()])
        .map(|t| t.expect("standard layout"))
        .collect();
    t.extend(
        v.output_logvar
            .as_ref()
            .map(|s| s.as_slice().expect("contiguous")),
    );
    t
}

/// Called after every epoch with the epoch's number (from 0) and losses.
///
/// Returning [`ControlFlow::Break`] stops the fit between epochs with [`Error::Interrupted`].
pub type EpochObserver<'a> = &'a (dyn Fn(usize, &EpochStats) -> ControlFlow<()> + Sync);

/// Called after every epoch of every model of a group with the model's index, the epoch (from
/// 0) and its losses; [`ControlFlow::Break`] stops every fit with [`Error::Interrupted`].
pub(crate) type ManyObserver<'a> =
    &'a (dyn Fn(usize, usize, &EpochStats) -> ControlFlow<()> + Sync);

/// Steps uploaded (and losses read back) at a time, at most.
const CHUNK: usize = 256;

/// The most row indices uploaded for one chunk (16 MB): fewer steps a chunk for many models
/// with large batches.
const CHUNK_INDICES: usize = 1 << 22;

/// The whole state of a group's fit on an engine: every model's parameters and data, and the
/// buffers of a step (`batch` rows per model).
pub(crate) struct Trainer<'e, E: Engine> {
    e: &'e mut E,
    /// The step's arithmetic, shared by the group.
    cfg: VaeConfig,
    latent: usize,
    /// Network columns: the numeric ones, then the heads'.
    width: usize,
    /// Numeric columns (the likelihood's); the rest belong to `heads`.
    numeric: usize,
    /// Each head's first network column and width, and their number.
    heads: Option<(E::Indices, usize)>,
    /// Every model's rows, one model after another.
    data: E::Buffer,
    p: Parameters<E::Buffer>,
    enc_bufs: StackBuffers<E::Buffer>,
    dec_bufs: StackBuffers<E::Buffer>,
    enc_gout: Vec<E::Buffer>,
    dec_gout: Vec<E::Buffer>,
    xb: E::Buffer,
    z: E::Buffer,
    eps: E::Buffer,
    dz: E::Buffer,
    /// Per-element terms of the learned log-variance's gradient (`rows x numeric`).
    variance_terms: Option<E::Buffer>,
    /// `CHUNK` steps of `SLOTS` sums per model.
    losses: E::Buffer,
    /// One gradient norm per model.
    norm: E::Buffer,
}

impl<'e, E: Engine> Trainer<'e, E> {
    /// Uploads the initial parameters of `vaes` (one shape) and their rows `data` (network
    /// columns, the models' rows one after another); allocates the buffers of a step of at most
    /// `batch` rows per model.
    fn new(e: &'e mut E, vaes: &[&Vae], data: &[f32], batch: usize) -> Result<Self> {
        let (first, count) = (vaes[0], vaes.len());
        let cfg = first.config.clone();
        let (width, latent) = (first.network_width(), first.latent);
        let numeric = first.modelled_features();
        let network_heads = first.network_heads();
        let heads = match network_heads.len() {
            0 => None,
            n => Some((e.upload_indices(&network_heads.spans(numeric))?, n)),
        };
        let p = Parameters::upload(e, vaes)?;
        let rows = batch * count;
        let with_dropout = cfg.dropout > 0.0;
        let enc_bufs = StackBuffers::new(e, &p.enc, rows, with_dropout)?;
        let dec_bufs = StackBuffers::new(e, &p.dec, rows, with_dropout)?;
        let gouts = |e: &mut E, layers: &[DeviceLayer<E::Buffer>]| {
            layers
                .iter()
                .map(|l| e.zeros(rows * l.fan_out))
                .collect::<Result<Vec<_>>>()
        };
        let enc_gout = gouts(e, &p.enc)?;
        let dec_gout = gouts(e, &p.dec)?;
        let variance_terms = match p.variance {
            Some(_) => Some(e.zeros(rows * numeric)?),
            None => None,
        };
        Ok(Trainer {
            data: e.upload(data)?,
            xb: e.zeros(rows * width)?,
            z: e.zeros(rows * latent)?,
            eps: e.zeros(rows * latent)?,
            dz: e.zeros(rows * latent)?,
            losses: e.zeros(count * CHUNK * SLOTS)?,
            norm: e.zeros(count)?,
            variance_terms,
            heads,
            e,
            cfg,
            latent,
            width,
            numeric,
            p,
            enc_bufs,
            dec_bufs,
            enc_gout,
            dec_gout,
        })
    }

    /// The forward and backward pass of one step of the models `models` (their table entries):
    /// `r.rows` rows per model, gathered from the data by `rows` from index `at` (a model with
    /// fewer rows this step is padded; its padding gets zero gradients). Adds each model's loss
    /// sums at `slot` of its `SLOTS` (models `CHUNK * SLOTS` apart) and leaves the gradients
    /// (L2 included, before clipping) in the gradient buffers.
    fn forward_backward(
        &mut self,
        models: Models<'_, E::Indices>,
        (rows, at): (&E::Indices, usize),
        r: Rows,
        slot: usize,
    ) {
        let (b, d, numeric, latent) = (r.rows, self.width, self.numeric, self.latent);
        let cfg = &self.cfg;
        let slots = |k: usize| (slot * SLOTS + k, CHUNK * SLOTS);
        let dropout = |stack| {
            (cfg.dropout > 0.0).then_some(Dropout {
                rate: cfg.dropout,
                stack,
                streams: models,
            })
        };
        let (enc_drop, dec_drop) = (dropout(0), dropout(1));
        let (e, p) = (&mut *self.e, &mut self.p);
        e.gather_rows(&self.data, d, rows, at, r.models * b, &mut self.xb);
        forward(e, &p.enc, &self.xb, r, &mut self.enc_bufs, enc_drop);
        let head = self.enc_bufs.output();
        e.reparameterize_models(
            head,
            b,
            latent,
            Purpose::Noise,
            models,
            &mut self.z,
            &mut self.eps,
        );
        forward(e, &p.dec, &self.z, r, &mut self.dec_bufs, dec_drop);
        let out = self.dec_bufs.output();
        let dout = self.dec_gout.last_mut().expect("a decoder layer");
        match (&mut p.variance, &mut self.variance_terms) {
            (Some(v), Some(terms)) => {
                e.gaussian_learned_models(
                    (out, &self.xb, &v.s),
                    (b, d, numeric),
                    v.stride,
                    models,
                    (&mut *dout, &mut *terms),
                    &mut self.losses,
                    slots(0),
                );
                let ds = Blocks {
                    count: r.models,
                    stride: v.stride,
                };
                e.bias_grad(terms, b, numeric, ds, &mut v.ds);
            }
            _ => e.reconstruction_models(
                cfg.likelihood,
                (out, &self.xb),
                (b, d, numeric),
                models,
                &mut *dout,
                &mut self.losses,
                slots(0),
            ),
        }
        if let Some((spans, count)) = &self.heads {
            e.softmax_cross_entropy_models(
                (out, &self.xb),
                (b, d),
                (spans, *count),
                models,
                dout,
                &mut self.losses,
                slots(0),
            );
        }
        let dec = (&p.dec, &mut p.dec_grads, &self.dec_bufs, &mut self.dec_gout);
        backward(
            e,
            dec.0,
            dec.1,
            &self.z,
            r,
            dec.2,
            dec.3,
            Some(&mut self.dz),
            dec_drop,
        );
        e.kl_models(
            (self.enc_bufs.output(), &self.eps, &self.dz),
            (b, latent),
            cfg.beta,
            models,
            self.enc_gout.last_mut().expect("an encoder layer"),
            &mut self.losses,
            slots(1),
        );
        let enc = (&p.enc, &mut p.enc_grads, &self.enc_bufs, &mut self.enc_gout);
        backward(e, enc.0, enc.1, &self.xb, r, enc.2, enc.3, None, enc_drop);
        if cfg.l2 > 0.0 {
            let layers = p.enc.iter().zip(p.enc_grads.iter_mut());
            for (l, g) in layers.chain(p.dec.iter().zip(p.dec_grads.iter_mut())) {
                let blocks = Blocks {
                    count: r.models,
                    stride: l.strides[0],
                };
                let n = l.fan_in * l.fan_out;
                e.l2(
                    &l.w,
                    &mut g.w,
                    n,
                    blocks,
                    cfg.l2,
                    &mut self.losses,
                    slots(2),
                );
            }
        }
    }

    /// Clips the gradients of the first `models` models (if configured) and applies optimizer
    /// step `t` to them.
    fn update(&mut self, t: u32, models: usize) {
        self.p
            .update(self.e, &self.cfg, &mut self.norm, (t, models));
    }

    /// Parameter tensor `k` of the first model (weights and bias of each layer in order, encoder
    /// then decoder, then the learned log-variance if any), its gradient, and its length.
    #[cfg(test)]
    fn tensor(&mut self, k: usize) -> (&mut E::Buffer, &mut E::Buffer, usize) {
        let p = &mut self.p;
        let n_enc = p.enc.len();
        if k == 2 * (n_enc + p.dec.len()) {
            let v = p.variance.as_mut().expect("a learned variance");
            return (&mut v.s, &mut v.ds, v.len);
        }
        let (layers, grads, i) = if k / 2 < n_enc {
            (&mut p.enc, &mut p.enc_grads, k / 2)
        } else {
            (&mut p.dec, &mut p.dec_grads, k / 2 - n_enc)
        };
        let (l, g) = (&mut layers[i], &mut grads[i]);
        if k % 2 == 0 {
            (&mut l.w, &mut g.w, l.fan_in * l.fan_out)
        } else {
            (&mut l.b, &mut g.b, l.fan_out)
        }
    }
}

/// One model of a group: its schedule and its record so far.
struct Member {
    /// Its own settings (early stopping may differ within a group).
    config: VaeConfig,
    rows: usize,
    /// Its first row in the group's data.
    offset: usize,
    batch: usize,
    batches: usize,
    epochs: usize,
    /// The shuffle of the epoch in progress.
    order: Vec<u32>,
    /// The batch sums of the epoch in progress, `SLOTS` each, and its seconds so far.
    sums: Vec<f32>,
    seconds: f64,
    history: History,
    patience: Patience,
    /// Steps taken, and whether it has ended.
    steps: usize,
    done: bool,
}

impl Member {
    fn new(vae: &Vae, rows: usize, offset: usize) -> Member {
        let c = &vae.config;
        Member {
            config: c.clone(),
            rows,
            offset,
            batch: c.batch_for(rows),
            batches: c.batches_for(rows),
            epochs: c.epochs_for(rows),
            order: Vec::new(),
            sums: Vec::new(),
            seconds: 0.0,
            history: History::default(),
            patience: Patience::default(),
            steps: 0,
            done: false,
        }
    }

    /// Steps from `t` to the next step after which the host must look at this model: its last,
    /// or with early stopping the end of its epoch.
    fn until_sync(&self, t: usize) -> usize {
        let last = self.epochs * self.batches;
        let next = match self.config.early_stopping {
            Some(_) => (t / self.batches + 1) * self.batches,
            None => last,
        };
        next.min(last) - t
    }

    /// Its table entry at optimizer step `step`, and the rows of its batch then (indices into
    /// the group's data), shuffling at the start of each epoch.
    fn step(&mut self, step: usize) -> (ModelStep, &[u32]) {
        let seed = self.config.seed;
        if self.done {
            let entry = ModelStep {
                rows: 0,
                seed,
                step: step as u32,
            };
            return (entry, &[]);
        }
        let (epoch, batch_no) = ((step - 1) / self.batches, (step - 1) % self.batches);
        if batch_no == 0 {
            let shuffle = Stream::new(seed, Purpose::Shuffle, epoch as u32);
            let first = self.offset as u32;
            self.order = permutation(&shuffle, self.rows);
            self.order.iter_mut().for_each(|i| *i += first);
        }
        let start = batch_no * self.batch;
        let n = self.batch.min(self.rows - start);
        let entry = ModelStep {
            rows: n,
            seed,
            step: step as u32,
        };
        (entry, &self.order[start..start + n])
    }
}

/// Trains the prepared models of `group` (one network and step arithmetic, see
/// [`Vae::fit_many`]) together, each exactly as it would train alone; their histories and
/// layers are written back into them. A group of one is a fit alone.
///
/// Each step's kernels run once for the models still training (the first ones: put the longest
/// fits first), each model a block of `B` rows (its batch, padded to the largest). The steps'
/// inputs are uploaded, and the losses read back, a chunk of steps at a time; a chunk ends where
/// some model may end, and an ended model is read back then.
pub(crate) fn train<E: Engine>(
    e: &mut E,
    group: &mut [&mut (Vae, Array2<f32>)],
    observer: ManyObserver<'_>,
) -> Result<()> {
    let count = group.len();
    let mut members = Vec::with_capacity(count);
    let mut offset = 0;
    for (vae, data) in group.iter() {
        members.push(Member::new(vae, data.nrows(), offset));
        offset += data.nrows();
    }
    let b = members.iter().map(|m| m.batch).max().expect("a group");
    // The rows of every model one after another (a model alone's as they are), freed once on
    // the engine.
    let all: Cow<'_, [f32]> = match &group[..] {
        [one] if one.1.is_standard_layout() => Cow::Borrowed(one.1.as_slice().expect("standard")),
        _ => Cow::Owned(group.iter().flat_map(|(_, d)| d.iter().copied()).collect()),
    };
    let vaes: Vec<&Vae> = group.iter().map(|(v, _)| v).collect();
    let mut tr = Trainer::new(e, &vaes, &all, b)?;
    drop(all);

    let mut t = 0usize;
    while let Some(last_live) = members.iter().rposition(|m| !m.done) {
        // Kernels cover the models up to the last one still training.
        let live = last_live + 1;
        let active = members.iter().filter(|m| !m.done);
        let len = active
            .map(|m| m.until_sync(t))
            .min()
            .expect("an active model")
            .min(CHUNK)
            .min((CHUNK_INDICES / (live * b)).max(1));
        // Each step's table entries and gathered rows, for every model. A model training alone
        // takes its batch's own rows, without padding.
        let mut table = Vec::with_capacity(len * live);
        let mut rows_idx = Vec::with_capacity(len * live * b);
        let mut blocks = Vec::with_capacity(len);
        for step in t + 1..=t + len {
            let at = rows_idx.len();
            for m in &mut members[..live] {
                let first = m.offset as u32;
                let (entry, rows) = m.step(step);
                rows_idx.extend_from_slice(rows);
                if live > 1 {
                    rows_idx.extend(std::iter::repeat_n(first, b - rows.len()));
                }
                table.push(entry);
            }
            // Rows per model this step: `b`, or a model alone's own.
            blocks.push((at, (rows_idx.len() - at) / live));
        }
        let started = Instant::now();
        let table = tr.e.upload_indices(&ModelStep::table(&table))?;
        let rows_idx = tr.e.upload_indices(&rows_idx)?;
        tr.e.fill(&mut tr.losses, count * CHUNK * SLOTS, 0.0);
        for (s, &(at, rows)) in blocks.iter().enumerate() {
            let models = Models {
                table: &table,
                at: s * live,
                count: live,
            };
            let r = Rows { rows, models: live };
            tr.forward_backward(models, (&rows_idx, at), r, s);
            tr.update((t + s + 1) as u32, live);
        }
        let sums = tr.e.read(&tr.losses, count * CHUNK * SLOTS)?;
        let per_step = started.elapsed().as_secs_f64() / len as f64;
        let mut ended = Vec::new();
        for (i, m) in members.iter_mut().enumerate() {
            if m.done {
                continue;
            }
            let mine = &sums[i * CHUNK * SLOTS..][..len * SLOTS];
            for step_sums in mine.chunks_exact(SLOTS) {
                m.sums.extend_from_slice(step_sums);
                m.seconds += per_step;
                m.steps += 1;
                if m.steps % m.batches != 0 {
                    continue;
                }
                let epoch = m.steps / m.batches - 1;
                let stats = epoch_stats(&m.sums, m.rows, m.batches, tr.cfg.beta, m.seconds);
                m.sums.clear();
                m.seconds = 0.0;
                let observe = |epoch: usize, stats: &EpochStats| observer(i, epoch, stats);
                let position = (epoch, epoch + 1 == m.epochs);
                let (history, patience) = (&mut m.history, &mut m.patience);
                if end_epoch(
                    &m.config,
                    history,
                    patience,
                    position,
                    stats,
                    Some(&observe),
                )? {
                    // Only ever at the chunk's last step: chunks end where a model may end.
                    m.done = true;
                    ended.push(i);
                    break;
                }
            }
        }
        let mut vaes: Vec<&mut Vae> = group.iter_mut().map(|(v, _)| v).collect();
        tr.p.download(tr.e, &ended, &mut vaes)?;
        t += len;
    }
    for ((vae, _), m) in group.iter_mut().zip(members) {
        vae.history = m.history;
    }
    Ok(())
}

/// Early stopping's record between epochs.
pub(crate) struct Patience {
    best: f64,
    waited: usize,
}

impl Default for Patience {
    fn default() -> Self {
        Patience {
            best: f64::INFINITY,
            waited: 0,
        }
    }
}

/// What every fit does after epoch `epoch` (`last`: the last configured one): refuses a
/// non-finite loss, records the epoch, tells the observer, and applies early stopping. Returns
/// whether the fit ends here (early stopping, or the last epoch).
pub(crate) fn end_epoch(
    cfg: &VaeConfig,
    history: &mut History,
    patience: &mut Patience,
    (epoch, last): (usize, bool),
    stats: EpochStats,
    observer: Option<EpochObserver<'_>>,
) -> Result<bool> {
    if !stats.total.is_finite() {
        return Err(Error::Diverged {
            epoch,
            loss: stats.total,
        });
    }
    history.epochs.push(stats);
    crate::interrupt::check()?;
    if let Some(observe) = observer {
        if observe(epoch, &stats).is_break() {
            return Err(Error::Interrupted);
        }
    }
    if last {
        return Ok(true);
    }
    if let Some(es) = cfg.early_stopping {
        if stats.total < patience.best - f64::from(es.min_delta) {
            patience.best = stats.total;
            patience.waited = 0;
        } else {
            patience.waited += 1;
            if patience.waited >= es.patience {
                history.stopped_early = true;
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// An epoch's mean losses from its batches' `SLOTS` sums.
pub(crate) fn epoch_stats(
    sums: &[f32],
    rows: usize,
    batches: usize,
    beta: f32,
    seconds: f64,
) -> EpochStats {
    let total = |k: usize| {
        sums.chunks_exact(SLOTS)
            .map(|c| f64::from(c[k]))
            .sum::<f64>()
    };
    let reconstruction = total(0) / rows as f64;
    let kl = total(1) / rows as f64;
    let l2 = total(2) / batches as f64;
    EpochStats {
        reconstruction,
        kl,
        l2,
        total: reconstruction + f64::from(beta) * kl + l2,
        seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::CpuEngine;
    use crate::scale::Scaler;
    use crate::vae::model::init_layers;
    use crate::vae::{Activation, Heads, Likelihood};
    use ndarray::Array2;

    /// The objective of one batch of all `rows` as the loop minimises it: `(recon + beta kl) /
    /// rows + l2`, at optimizer step 1.
    fn batch_loss(tr: &mut Trainer<'_, CpuEngine>, (table, order): (&Vec<u32>, &Vec<u32>)) -> f64 {
        let rows = order.len();
        tr.e.fill(&mut tr.losses, SLOTS, 0.0);
        let models = Models {
            table,
            at: 0,
            count: 1,
        };
        tr.forward_backward(models, (order, 0), Rows::one(rows), 0);
        let s = tr.e.read(&tr.losses, SLOTS).unwrap();
        (f64::from(s[0]) + f64::from(tr.cfg.beta) * f64::from(s[1])) / rows as f64 + f64::from(s[2])
    }

    fn untrained(cfg: VaeConfig, features: usize, heads: Heads) -> Vae {
        let width = features + heads.width();
        let latent = cfg.latent.resolve(width);
        let (encoder, decoder) = init_layers(&cfg, width, latent);
        // A learned variance away from 0, so its gradient check is not at a special point.
        let output_logvar = (cfg.likelihood == Likelihood::GaussianLearned)
            .then(|| ndarray::Array1::from_shape_fn(features, |j| 0.3 - 0.2 * j as f32));
        Vae {
            scaler: Scaler::identity(features),
            config: cfg,
            encoder,
            decoder,
            latent,
            history: History::default(),
            columns: crate::vae::Columns::unconstrained(features),
            output_logvar,
            heads,
            preferred: None,
        }
    }

    /// Central differences of the full loss against the analytic gradient of every parameter;
    /// with `categorical`, two categorical columns (3 and 2 categories) after the numeric ones.
    fn gradcheck(act: Activation, likelihood: Likelihood, dropout: f32, categorical: bool) {
        let (rows, d) = (6, 5);
        let noise = Stream::new(99, Purpose::Init, 0);
        let numeric = Array2::from_shape_fn((rows, d), |(i, j)| {
            0.05 + 0.9 * noise.uniform_at((i * d + j) as u64)
        });
        let codes = if categorical {
            Array2::from_shape_fn((rows, 2), |(i, j)| ((i + j) % (3 - j)) as u32)
        } else {
            Array2::zeros((rows, 0))
        };
        let heads = Heads::observe(codes.view());
        let hot = heads.one_hot(codes.view()).unwrap();
        let x = ndarray::concatenate(ndarray::Axis(1), &[numeric.view(), hot.view()]).unwrap();
        let cfg = VaeConfig {
            hidden: vec![4, 3],
            latent: crate::vae::Latent::Count(2),
            activation: act,
            likelihood,
            l2: 0.1,
            beta: 0.7,
            dropout,
            clip_norm: None,
            batch_size: rows,
            seed: 3,
            ..VaeConfig::default()
        };
        let vae = untrained(cfg, d, heads);
        let mut engine = CpuEngine::new();
        let data: Vec<f32> = x.iter().copied().collect();
        let mut tr = Trainer::new(&mut engine, &[&vae], &data, rows).unwrap();
        let order: Vec<u32> = (0..rows as u32).collect();
        let step = ModelStep {
            rows,
            seed: vae.config.seed,
            step: 1,
        };
        let batch = (&ModelStep::table(&[step]), &order);
        batch_loss(&mut tr, batch);
        let n_tensors =
            2 * (vae.encoder.len() + vae.decoder.len()) + usize::from(vae.output_logvar.is_some());
        let h = 2e-3f32;
        for k in 0..n_tensors {
            let (p, g, len) = tr.tensor(k);
            let (p, g) = (p.clone(), g.clone());
            let analytic = tr.e.read(&g, len).unwrap();
            let mut values = tr.e.read(&p, len).unwrap();
            for i in 0..len {
                let orig = values[i];
                let mut at = |v: f32, tr: &mut Trainer<'_, CpuEngine>| {
                    values[i] = v;
                    let (p, _, _) = tr.tensor(k);
                    p[..len].copy_from_slice(&values);
                    batch_loss(tr, batch)
                };
                let numeric =
                    (at(orig + h, &mut tr) - at(orig - h, &mut tr)) / (2.0 * f64::from(h));
                at(orig, &mut tr);
                let a = f64::from(analytic[i]);
                let err = (numeric - a).abs();
                let tol = 2e-3 + 2e-2 * numeric.abs().max(a.abs());
                assert!(
                    err <= tol,
                    "{act:?}/{likelihood:?}/dropout {dropout}/categorical {categorical}: tensor {k} element {i}: numeric {numeric}, analytic {a}"
                );
            }
        }
    }

    #[test]
    fn gradient_matches_finite_differences_for_every_activation_and_likelihood() {
        for act in [
            Activation::Relu,
            Activation::Elu,
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Identity,
        ] {
            for lik in [
                Likelihood::Bernoulli,
                Likelihood::Gaussian,
                Likelihood::GaussianLearned,
            ] {
                gradcheck(act, lik, 0.0, false);
            }
        }
    }

    #[test]
    fn gradient_matches_finite_differences_with_categorical_heads() {
        for lik in [
            Likelihood::Bernoulli,
            Likelihood::Gaussian,
            Likelihood::GaussianLearned,
        ] {
            gradcheck(Activation::Tanh, lik, 0.0, true);
        }
        gradcheck(Activation::Elu, Likelihood::Gaussian, 0.3, true);
    }

    #[test]
    fn gradient_matches_finite_differences_with_dropout() {
        gradcheck(Activation::Tanh, Likelihood::Gaussian, 0.3, false);
        gradcheck(Activation::Elu, Likelihood::GaussianLearned, 0.3, false);
    }
}
