//! The one training loop: mini-batches, forward, loss, backward, L2, clipping, optimizer, early
//! stopping. Written once against [`Engine`]; engines implement only the kernels.
//!
//! Everything a fit touches is allocated on the engine before the first epoch. Per batch the loop
//! only records kernels; per epoch it uploads one shuffle and reads back one loss buffer.

use std::ops::ControlFlow;
use std::time::Instant;

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use super::network::{
    backward, forward, DeviceLayer, Dropout, LayerGrads, MaskStreams, Rows, StackBuffers,
};
use super::{Vae, VaeConfig};
use crate::engine::{Blocks, Clip, Engine, Update};
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

/// The categorical heads on the engine: `[start, width]` per head, and their number.
struct DeviceHeads<I> {
    spans: I,
    count: usize,
}

/// The whole state of one fit on an engine.
pub(crate) struct Trainer<'e, E: Engine> {
    e: &'e mut E,
    cfg: VaeConfig,
    latent: usize,
    /// Network columns: the numeric ones, then the heads'.
    features: usize,
    /// Numeric columns (the likelihood's); the rest belong to `heads`.
    numeric: usize,
    heads: Option<DeviceHeads<E::Indices>>,
    rows: usize,
    p: Parameters<E::Buffer>,
    enc_bufs: StackBuffers<E::Buffer>,
    dec_bufs: StackBuffers<E::Buffer>,
    enc_gout: Vec<E::Buffer>,
    dec_gout: Vec<E::Buffer>,
    data: E::Buffer,
    xb: E::Buffer,
    z: E::Buffer,
    eps: E::Buffer,
    dz: E::Buffer,
    /// Per-element terms of the learned log-variance's gradient (`batch x numeric`).
    variance_terms: Option<E::Buffer>,
    /// `SLOTS` sums per batch of the current epoch.
    pub(crate) losses: E::Buffer,
    norm: E::Buffer,
}

impl<'e, E: Engine> Trainer<'e, E> {
    /// Uploads the model's initial layers and the scaled data; allocates everything else.
    pub fn new(e: &'e mut E, vae: &Vae, data: ArrayView2<'_, f32>) -> Result<Self> {
        let cfg = vae.config.clone();
        let (rows, features) = data.dim();
        let (batch, n_batches) = (cfg.batch_for(rows), cfg.batches_for(rows));
        let network_heads = vae.network_heads();
        let numeric = features - network_heads.width();
        let p = Parameters::upload(e, &[vae])?;
        let with_dropout = cfg.dropout > 0.0;
        let enc_bufs = StackBuffers::new(e, &p.enc, batch, with_dropout)?;
        let dec_bufs = StackBuffers::new(e, &p.dec, batch, with_dropout)?;
        let gouts = |e: &mut E, layers: &[DeviceLayer<E::Buffer>]| {
            layers
                .iter()
                .map(|l| e.zeros(batch * l.fan_out))
                .collect::<Result<Vec<_>>>()
        };
        let enc_gout = gouts(e, &p.enc)?;
        let dec_gout = gouts(e, &p.dec)?;
        let contiguous = data.as_standard_layout();
        let data_buf = e.upload(contiguous.as_slice().expect("standard layout"))?;
        let latent = vae.latent;
        let variance_terms = match p.variance {
            Some(_) => Some(e.zeros(batch * numeric)?),
            None => None,
        };
        let heads = match network_heads.len() {
            0 => None,
            count => Some(DeviceHeads {
                spans: e.upload_indices(&network_heads.spans(numeric))?,
                count,
            }),
        };
        Ok(Trainer {
            numeric,
            heads,
            variance_terms,
            xb: e.zeros(batch * features)?,
            z: e.zeros(batch * latent)?,
            eps: e.zeros(batch * latent)?,
            dz: e.zeros(batch * latent)?,
            losses: e.zeros(n_batches * SLOTS)?,
            norm: e.zeros(1)?,
            data: data_buf,
            e,
            cfg,
            latent,
            features,
            rows,
            p,
            enc_bufs,
            dec_bufs,
            enc_gout,
            dec_gout,
        })
    }

    /// Mini-batch size actually used.
    pub fn batch(&self) -> usize {
        self.cfg.batch_for(self.rows)
    }

    /// Forward and backward pass of one batch (`rows` rows of `order` from `start`) at optimizer
    /// step `t`: adds the batch's loss sums to slots `SLOTS * slot ..` and leaves the gradients
    /// (L2 included, before clipping) in the gradient buffers.
    pub fn forward_backward(
        &mut self,
        order: &E::Indices,
        start: usize,
        rows: usize,
        t: u32,
        slot: usize,
    ) {
        let (l, d) = (self.latent, self.features);
        let seed = self.cfg.seed;
        let dropout = |stack| {
            (self.cfg.dropout > 0.0).then_some(Dropout {
                rate: self.cfg.dropout,
                stack,
                streams: MaskStreams::One { seed, step: t },
            })
        };
        let (enc_drop, dec_drop) = (dropout(0), dropout(1));
        let e = &mut *self.e;
        e.gather_rows(&self.data, d, order, start, rows, &mut self.xb);
        forward(
            e,
            &self.p.enc,
            &self.xb,
            Rows::one(rows),
            &mut self.enc_bufs,
            enc_drop,
        );
        let head = self.enc_bufs.output();
        let noise = Stream::new(seed, Purpose::Noise, t);
        e.reparameterize(head, rows, l, noise, 0, &mut self.z, &mut self.eps);
        forward(
            e,
            &self.p.dec,
            &self.z,
            Rows::one(rows),
            &mut self.dec_bufs,
            dec_drop,
        );

        let base = SLOTS * slot;
        let last = self.p.dec.len() - 1;
        match (&mut self.p.variance, &mut self.variance_terms) {
            (Some(v), Some(terms)) => {
                e.gaussian_learned(
                    self.dec_bufs.output(),
                    &self.xb,
                    &v.s,
                    rows,
                    d,
                    self.numeric,
                    &mut self.dec_gout[last],
                    terms,
                    &mut self.losses,
                    base,
                );
                e.bias_grad(terms, rows, self.numeric, Blocks::ONE, &mut v.ds);
            }
            _ => e.reconstruction(
                self.cfg.likelihood,
                self.dec_bufs.output(),
                &self.xb,
                rows,
                d,
                self.numeric,
                &mut self.dec_gout[last],
                &mut self.losses,
                base,
            ),
        }
        if let Some(heads) = &self.heads {
            e.softmax_cross_entropy(
                self.dec_bufs.output(),
                &self.xb,
                rows,
                d,
                &heads.spans,
                heads.count,
                &mut self.dec_gout[last],
                &mut self.losses,
                base,
            );
        }
        backward(
            e,
            &self.p.dec,
            &mut self.p.dec_grads,
            &self.z,
            Rows::one(rows),
            &self.dec_bufs,
            &mut self.dec_gout,
            Some(&mut self.dz),
            dec_drop,
        );
        let last = self.p.enc.len() - 1;
        e.kl(
            self.enc_bufs.output(),
            &self.eps,
            &self.dz,
            rows,
            l,
            self.cfg.beta,
            &mut self.enc_gout[last],
            &mut self.losses,
            base + 1,
        );
        backward(
            e,
            &self.p.enc,
            &mut self.p.enc_grads,
            &self.xb,
            Rows::one(rows),
            &self.enc_bufs,
            &mut self.enc_gout,
            None,
            enc_drop,
        );
        if self.cfg.l2 > 0.0 {
            let p = &mut self.p;
            let layers = p.enc.iter().zip(p.enc_grads.iter_mut());
            let layers = layers.chain(p.dec.iter().zip(p.dec_grads.iter_mut()));
            for (layer, g) in layers {
                let n = layer.fan_in * layer.fan_out;
                let at = (base + 2, 0);
                e.l2(
                    &layer.w,
                    &mut g.w,
                    n,
                    Blocks::ONE,
                    self.cfg.l2,
                    &mut self.losses,
                    at,
                );
            }
        }
    }

    /// Clips the gradients (if configured) and applies one optimizer step `t`.
    pub fn update(&mut self, t: u32) {
        self.p.update(self.e, &self.cfg, &mut self.norm, (t, 1));
    }

    /// Parameter tensor `k` (weights and bias of each layer in order, encoder then decoder, then
    /// the learned log-variance if any), its gradient, and its length.
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

    /// Reads the trained layers back into `vae`.
    pub fn download(self, vae: &mut Vae) -> Result<()> {
        self.p.download(self.e, &[0], &mut [vae])
    }
}

/// Trains `vae`'s layers on `data` (already scaled) and returns the history.
/// Called after every epoch with the epoch's number (from 0) and losses.
///
/// Returning [`ControlFlow::Break`] stops the fit between epochs with [`Error::Interrupted`].
pub type EpochObserver<'a> = &'a (dyn Fn(usize, &EpochStats) -> ControlFlow<()> + Sync);

pub(crate) fn train<E: Engine>(
    e: &mut E,
    vae: &mut Vae,
    data: ArrayView2<'_, f32>,
    observer: Option<EpochObserver<'_>>,
) -> Result<History> {
    let cfg = vae.config.clone();
    let rows = data.nrows();
    let mut trainer = Trainer::new(e, vae, data)?;
    let (batch, n_batches) = (trainer.batch(), cfg.batches_for(rows));
    let mut history = History::default();
    let mut patience = Patience::default();
    let mut t = 0u32;
    let epochs = cfg.epochs_for(rows);
    for epoch in 0..epochs {
        let started = Instant::now();
        let order = permutation(&Stream::new(cfg.seed, Purpose::Shuffle, epoch as u32), rows);
        let order = trainer.e.upload_indices(&order)?;
        trainer.e.fill(&mut trainer.losses, n_batches * SLOTS, 0.0);
        for b in 0..n_batches {
            t += 1;
            let start = b * batch;
            let n = batch.min(rows - start);
            trainer.forward_backward(&order, start, n, t, b);
            trainer.update(t);
        }
        let sums = trainer.e.read(&trainer.losses, n_batches * SLOTS)?;
        let stats = epoch_stats(
            &sums,
            rows,
            n_batches,
            cfg.beta,
            started.elapsed().as_secs_f64(),
        );
        let last = epoch + 1 == epochs;
        if end_epoch(
            &cfg,
            &mut history,
            &mut patience,
            (epoch, last),
            stats,
            observer,
        )? {
            break;
        }
    }
    trainer.download(vae)?;
    Ok(history)
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

    /// The objective of one batch as the loop minimises it: `(recon + beta kl) / rows + l2`.
    fn batch_loss<E: Engine>(tr: &mut Trainer<'_, E>, order: &E::Indices, rows: usize) -> f64 {
        tr.e.fill(&mut tr.losses, SLOTS, 0.0);
        tr.forward_backward(order, 0, rows, 1, 0);
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
        let mut tr = Trainer::new(&mut engine, &vae, x.view()).unwrap();
        let order =
            tr.e.upload_indices(&(0..rows as u32).collect::<Vec<_>>())
                .unwrap();
        batch_loss(&mut tr, &order, rows);
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
                    batch_loss(tr, &order, rows)
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
