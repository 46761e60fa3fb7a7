//! The engine interface: the kernels the one training loop ([`crate::vae`]) is written against.
//!
//! An engine owns its buffers. The loop allocates every buffer once per fit and then only records
//! operations on them; nothing here returns data to the host except [`Engine::read`], which the loop
//! calls once per chunk of up to 256 optimizer steps (for the losses; with early stopping, at each
//! epoch's end). A device engine can therefore keep the whole fit resident and queue many steps'
//! work without a round trip per batch.
//!
//! Shapes are passed explicitly: a buffer may be larger than the rows an operation uses (the last
//! mini-batch of an epoch is smaller), and only the first `rows * cols` elements are touched.
//! All matrices are row-major.

mod cpu;
mod device;
mod gpu;
mod ops;

pub use cpu::CpuEngine;
pub use device::{Backend, Device, BACKEND_VAR};
pub use gpu::{adapters, AdapterSummary, Counts, Gpu, GpuBuffer, GpuEngine};
pub use ops::{Activation, Likelihood, Optimizer};

use crate::error::Result;
use crate::rng::{Purpose, Stream};

/// The shape of `C = op(A) op(B)`: `op(A)` is `m x k`, `op(B)` is `k x n`, `C` is `m x n`.
///
/// With `a_t`, `A` is stored as `k x m` and transposed; likewise `b_t` for `B` stored `n x k`.
/// The three products of a dense layer are `Y = X W`, `dX = dY W^T` (`b_t`) and `dW = X^T dY` (`a_t`).
///
/// With `batch` above 1, that many independent products of this shape: the layers of `batch`
/// models in one operation (one dispatch on a device). Product `z` reads `A` from element
/// `z * strides.a`, `B` from `z * strides.b` (and the epilogue's bias from `z * strides.bias`)
/// and writes `C` from `z * strides.c`; without `strides`, the products are stored one after
/// another ([`MatMul::operand_strides`]). Each product is computed exactly as it would be alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatMul {
    /// Rows of `C`.
    pub m: usize,
    /// The summed dimension.
    pub k: usize,
    /// Columns of `C`.
    pub n: usize,
    /// `A` is stored transposed.
    pub a_t: bool,
    /// `B` is stored transposed.
    pub b_t: bool,
    /// Independent products, at least 1.
    pub batch: usize,
    /// Where each product's operands start, when not one after another.
    pub strides: Option<Strides>,
}

/// Elements from one product's operand to the next's in a batch of [`MatMul`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strides {
    /// Between `A`s.
    pub a: usize,
    /// Between `B`s.
    pub b: usize,
    /// Between `C`s.
    pub c: usize,
    /// Between the epilogue's biases.
    pub bias: usize,
}

impl MatMul {
    /// One product `op(A) op(B)` of `m x k` by `k x n`, neither stored transposed.
    pub fn new(m: usize, k: usize, n: usize) -> Self {
        MatMul {
            m,
            k,
            n,
            a_t: false,
            b_t: false,
            batch: 1,
            strides: None,
        }
    }

    /// The strides of a batch: as given, or those of products stored one after another
    /// (`m k`, `k n`, `m n` and `n`).
    pub fn operand_strides(&self) -> Strides {
        self.strides.unwrap_or(Strides {
            a: self.m * self.k,
            b: self.k * self.n,
            c: self.m * self.n,
            bias: self.n,
        })
    }
}

/// What happens to `C` after the product.
#[derive(Debug, Clone, Copy)]
pub enum Epilogue<'a, B> {
    /// `C = A B`.
    None,
    /// `C = act(A B + bias)`, the bias broadcast over rows.
    BiasActivation(&'a B, Activation),
}

/// One tile of a nearest-neighbour search: `queries` rows (global indices from `q_start`)
/// against `refs` reference rows (from `r_start`), keeping the `k` nearest of each query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnnTile {
    /// Query rows in the tile.
    pub queries: usize,
    /// Global index of the first query row.
    pub q_start: usize,
    /// Reference rows in the tile.
    pub refs: usize,
    /// Global index of the first reference row.
    pub r_start: usize,
    /// Neighbours kept per query, at most [`KNN_MAX_K`].
    pub k: usize,
}

/// The largest `k` the neighbour kernels keep.
pub const KNN_MAX_K: usize = 64;

/// The step-dependent inputs of an optimizer update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Update {
    /// Which optimizer.
    pub optimizer: Optimizer,
    /// Learning rate.
    pub learning_rate: f32,
    /// Step number, from 1 (for Adam's bias correction).
    pub t: u32,
}

/// Global-norm gradient clipping, applied by [`Engine::optimizer_step`] as it reads each
/// gradient: with `norm = sqrt(sum_squares[m])` (the sum of the squares of every gradient of
/// model `m`; `m = 0` for one model), a gradient `g` is used as `g * max_norm / norm` when
/// `norm > max_norm`.
#[derive(Debug)]
pub struct Clip<'a, B> {
    /// Holds the sum of squares at element 0.
    pub sum_squares: &'a B,
    /// The largest gradient norm let through.
    pub max_norm: f32,
}

// By hand: a derive would ask `B: Copy`, and only a reference to `B` is held.
impl<B> Clone for Clip<'_, B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B> Copy for Clip<'_, B> {}

/// One model's part of a batched step (for example [`Engine::reparameterize_models`]): the rows
/// it uses this step, at most the rows each model has in the buffers (the rest are padding,
/// left at zero), and the seed and step of its random stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelStep {
    /// Rows used.
    pub rows: usize,
    /// The model's seed.
    pub seed: u64,
    /// The stream's step (the model's optimizer step, for its noise).
    pub step: u32,
}

impl ModelStep {
    /// `u32` words per model in a table.
    pub const WORDS: usize = 5;

    /// The table the batched kernels read, one entry per model (upload it with
    /// [`Engine::upload_indices`]): rows, the seed's low and high words, the step, and the bits
    /// of `1 / rows` as the host rounds it (the scale of the model's gradients, so a device
    /// divides exactly as a model alone is given it).
    pub fn table(steps: &[ModelStep]) -> Vec<u32> {
        steps
            .iter()
            .flat_map(|m| {
                let scale = 1.0 / m.rows as f32;
                [
                    m.rows as u32,
                    m.seed as u32,
                    (m.seed >> 32) as u32,
                    m.step,
                    scale.to_bits(),
                ]
            })
            .collect()
    }

    /// Entry `i` of a table.
    pub fn read(table: &[u32], i: usize) -> ModelStep {
        let w = &table[i * Self::WORDS..(i + 1) * Self::WORDS];
        ModelStep {
            rows: w[0] as usize,
            seed: u64::from(w[1]) | u64::from(w[2]) << 32,
            step: w[3],
        }
    }
}

/// The models of a batched operation: entries `at .. at + count` of a [`ModelStep::table`].
#[derive(Debug)]
pub struct Models<'a, I> {
    /// The table, on the engine.
    pub table: &'a I,
    /// The first model's entry.
    pub at: usize,
    /// Models.
    pub count: usize,
}

// By hand: a derive would ask `I: Copy`, and only a reference to `I` is held.
impl<I> Clone for Models<'_, I> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<I> Copy for Models<'_, I> {}

/// The per-model outputs of a batched operation: `count` models' blocks, `stride` elements
/// apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocks {
    /// Models.
    pub count: usize,
    /// Elements from one model's block to the next's.
    pub stride: usize,
}

impl Blocks {
    /// One model's block.
    pub const ONE: Blocks = Blocks {
        count: 1,
        stride: 0,
    };
}

/// Tensors allocated together by [`Engine::zeros_packed`], for one model or several.
#[derive(Debug)]
pub struct Packed<B> {
    /// The tensors, zero-filled, in the order of the lengths asked for; each holds every
    /// model's copy of it, `strides[i]` elements apart.
    pub parts: Vec<B>,
    /// Elements from one model's copy of each tensor to the next's.
    pub strides: Vec<usize>,
    /// On an engine that places them in one allocation: that allocation as one buffer, and the
    /// length in elements of one model's block in it (the gaps between tensors, kept at zero,
    /// included; the models' blocks follow one another). An element-wise kernel over it is one
    /// dispatch for every tensor of every model.
    pub whole: Option<(B, usize)>,
}

/// The kernels of VAE training and generation.
///
/// Loss kernels *add* their sums into a slot of a loss buffer, so one buffer can collect a whole
/// epoch and be read once.
pub trait Engine {
    /// A resident array of `f32`.
    type Buffer;
    /// A resident array of `u32` row indices.
    type Indices;

    /// A short name for messages ("cpu", or the adapter's name).
    fn name(&self) -> String;

    /// A zero-filled buffer of `len` elements.
    fn zeros(&mut self, len: usize) -> Result<Self::Buffer>;
    /// Zero-filled tensors of lengths `lens` for each of `models` models, in one allocation
    /// where the engine gains from it (a device engine: one kernel then updates every tensor of
    /// every model; each model's block is laid out as one model's alone); by default one buffer
    /// per tensor holding the models' copies one after another.
    fn zeros_packed(&mut self, lens: &[usize], models: usize) -> Result<Packed<Self::Buffer>> {
        Ok(Packed {
            parts: lens
                .iter()
                .map(|&len| self.zeros(len * models))
                .collect::<Result<_>>()?,
            strides: lens.to_vec(),
            whole: None,
        })
    }
    /// A buffer holding `data`.
    fn upload(&mut self, data: &[f32]) -> Result<Self::Buffer>;
    /// Index buffer holding `idx`.
    fn upload_indices(&mut self, idx: &[u32]) -> Result<Self::Indices>;
    /// Overwrites the first `data.len()` elements of `buf`.
    fn write(&mut self, buf: &mut Self::Buffer, data: &[f32]) -> Result<()> {
        self.write_at(buf, 0, data)
    }
    /// Overwrites `data.len()` elements of `buf` from element `at`.
    fn write_at(&mut self, buf: &mut Self::Buffer, at: usize, data: &[f32]) -> Result<()>;
    /// Copies the first `len` elements back to the host (waits for queued work).
    fn read(&mut self, buf: &Self::Buffer, len: usize) -> Result<Vec<f32>>;
    /// Copies the first `len` indices back to the host (waits for queued work).
    fn read_indices(&mut self, idx: &Self::Indices, len: usize) -> Result<Vec<u32>>;

    /// Sets the first `len` elements to `value`.
    fn fill(&mut self, buf: &mut Self::Buffer, len: usize, value: f32);
    /// `dst[..len] = src[..len]`.
    fn copy(&mut self, src: &Self::Buffer, dst: &mut Self::Buffer, len: usize);
    /// `dst[r, :] = src[idx[start + r], :]` for `r < rows`, rows of width `cols`.
    fn gather_rows(
        &mut self,
        src: &Self::Buffer,
        cols: usize,
        idx: &Self::Indices,
        start: usize,
        rows: usize,
        dst: &mut Self::Buffer,
    );

    /// `C = op(A) op(B)`, then the epilogue; for each of the `shape.batch` products.
    fn matmul(
        &mut self,
        a: &Self::Buffer,
        b: &Self::Buffer,
        c: &mut Self::Buffer,
        shape: MatMul,
        epilogue: Epilogue<'_, Self::Buffer>,
    );
    /// A layer's backward step at its nonlinearity, for `models.count` blocks of `rows x cols`
    /// stored one after another (the batch rows of that many models; 1 for one model):
    /// `grad *= act'(.)`, with the derivative written in terms of the activation's output `y`,
    /// then each block's bias gradient `db[m * models.stride + j] = sum_r grad[m, r, j]` of the
    /// scaled `grad`.
    #[allow(clippy::too_many_arguments)]
    fn activation_bias_grad(
        &mut self,
        act: Activation,
        y: &Self::Buffer,
        grad: &mut Self::Buffer,
        rows: usize,
        cols: usize,
        models: Blocks,
        db: &mut Self::Buffer,
    );
    /// `db[m * models.stride + j] = sum_r grad[m, r, j]` for `models.count` blocks of
    /// `rows x cols` stored one after another.
    fn bias_grad(
        &mut self,
        grad: &Self::Buffer,
        rows: usize,
        cols: usize,
        models: Blocks,
        db: &mut Self::Buffer,
    );
    /// Inverted dropout in place, model by model: `buf` holds `models.count` blocks of `len`
    /// elements, and element `i` of model `m`'s block is zeroed when the uniform draw at
    /// `offset + i` of `Stream::new(seed, purpose, step)` (its table entry's seed and step) is
    /// `<= rate`; the rest are scaled by `1 / (1 - rate)`. Applying it again with the same
    /// table applies the same masks, which is the backward pass.
    fn dropout_models(
        &mut self,
        buf: &mut Self::Buffer,
        len: usize,
        rate: f32,
        purpose_offset: (Purpose, u64),
        models: Models<'_, Self::Indices>,
    );
    /// Standard normal draws for elements `offset..offset + len` of `stream`.
    fn normal(&mut self, dst: &mut Self::Buffer, len: usize, stream: Stream, offset: u64);

    /// Reparameterisation, model by model: `head` holds `models.count` blocks of `rows x 2L`
    /// (`[mu | logvar]` per row), `z` and `eps` blocks of `rows x L`. For the rows model `m`'s
    /// table entry gives, `eps = N(0, I)` from `Stream::new(seed, purpose, step)` (elements from
    /// 0) and `z = mu + eps * exp(0.5 logvar)`; its padding rows are 0 in `z` and `eps`.
    #[allow(clippy::too_many_arguments)]
    fn reparameterize_models(
        &mut self,
        head: &Self::Buffer,
        rows: usize,
        latent: usize,
        purpose: Purpose,
        models: Models<'_, Self::Indices>,
        z: &mut Self::Buffer,
        eps: &mut Self::Buffer,
    );
    /// Reconstruction loss and its gradient for logits `o` against targets `x`, model by model:
    /// `o`, `x` and `grad` hold `models.count` blocks of `rows x cols`, and model `m` uses the
    /// `n` rows its table entry gives. Over the first `numeric` columns of each row (the rest
    /// belong to categorical heads, [`Engine::softmax_cross_entropy_models`], and are left as
    /// they are) it adds the summed loss to `losses[slot + m * stride]` and writes
    /// `grad = d(loss)/d(o) / n`; the numeric columns of its padding rows get zero gradients.
    /// Both Gaussians compute the unit-variance loss here; the learned variance has its own
    /// kernel, [`Engine::gaussian_learned_models`].
    #[allow(clippy::too_many_arguments)]
    fn reconstruction_models(
        &mut self,
        likelihood: Likelihood,
        o_x: (&Self::Buffer, &Self::Buffer),
        rows_cols_numeric: (usize, usize, usize),
        models: Models<'_, Self::Indices>,
        grad: &mut Self::Buffer,
        losses: &mut Self::Buffer,
        slots: (usize, usize),
    );
    /// The loss of [`Likelihood::GaussianLearned`] and its gradients, model by model: `o`, `x`
    /// and `grad` hold `models.count` blocks of `rows x cols` (of which the first `numeric`
    /// columns of each row are Gaussian; the rest are left as they are), `dlogvar_terms` blocks
    /// of `rows x numeric`, and model `m`'s log-variances start at `m * logvar_stride` of
    /// `logvar` (used clamped to [`Likelihood::MIN_LOGVAR`]..=[`Likelihood::MAX_LOGVAR`]). Over
    /// the `n` rows its table entry gives, per element, with `w = e^(-s_j)` and `s_j` the clamped
    /// value: `loss = 0.5 ((x - o)^2 w + s_j + ln 2 pi)`, summed into `losses[slot + m * stride]`;
    /// `grad = (o - x) w / n`; `dlogvar_terms[r, j] = 0.5 (1 - (x - o)^2 w) / n`, or 0 where the
    /// clamp is active. Its padding rows get zero gradients and terms. The column sums of a
    /// model's `dlogvar_terms` ([`Engine::bias_grad`]) are its gradient with respect to `logvar`.
    #[allow(clippy::too_many_arguments)]
    fn gaussian_learned_models(
        &mut self,
        o_x_logvar: (&Self::Buffer, &Self::Buffer, &Self::Buffer),
        rows_cols_numeric: (usize, usize, usize),
        logvar_stride: usize,
        models: Models<'_, Self::Indices>,
        grad_terms: (&mut Self::Buffer, &mut Self::Buffer),
        losses: &mut Self::Buffer,
        slots: (usize, usize),
    );
    /// Categorical cross-entropy of softmax heads, model by model: `o` (logits), `x` (targets)
    /// and `grad` hold `models.count` blocks of `rows x cols`. Each row holds `heads` groups of
    /// consecutive columns; `groups` lists each group's first column and width
    /// (`[start_0, width_0, start_1, width_1, ...]`). Over the `n` rows model `m`'s table entry
    /// gives, per row and group, with `p = softmax(o_g)`: `loss = logsumexp(o_g) - sum(x_g o_g)`
    /// (the cross-entropy `-sum(x_g ln p)` for targets that sum to 1), summed into
    /// `losses[slot + m * stride]`, and `grad_g = (p - x_g) / n`. The heads' columns of its
    /// padding rows get zero gradients; columns outside the groups are left as they are.
    #[allow(clippy::too_many_arguments)]
    fn softmax_cross_entropy_models(
        &mut self,
        o_x: (&Self::Buffer, &Self::Buffer),
        rows_cols: (usize, usize),
        groups_heads: (&Self::Indices, usize),
        models: Models<'_, Self::Indices>,
        grad: &mut Self::Buffer,
        losses: &mut Self::Buffer,
        slots: (usize, usize),
    );
    /// KL divergence of `N(mu, exp(logvar))` to `N(0, I)` and its gradient at the encoder head,
    /// model by model: `head` and `dhead` hold `models.count` blocks of `rows x 2L`, `eps` and
    /// `dz` (the gradient reaching `z`, already divided by the rows) blocks of `rows x L`. Over
    /// the `n` rows model `m`'s table entry gives: the sum into `losses[slot + m * stride]`,
    /// `dmu = dz + beta mu / n`,
    /// `dlogvar = 0.5 dz eps exp(0.5 logvar) + 0.5 beta (exp(logvar) - 1) / n`;
    /// its padding rows get zero gradients.
    #[allow(clippy::too_many_arguments)]
    fn kl_models(
        &mut self,
        head_eps_dz: (&Self::Buffer, &Self::Buffer, &Self::Buffer),
        rows_latent: (usize, usize),
        beta: f32,
        models: Models<'_, Self::Indices>,
        dhead: &mut Self::Buffer,
        losses: &mut Self::Buffer,
        slots: (usize, usize),
    );
    /// L2 penalty: `grad += l2 * w` and `losses[slot] += 0.5 * l2 * sum(w^2)`, over `len`
    /// elements; for `models.count` models whose copies of `w` and `grad` are `models.stride`
    /// apart, each model's sum (what it would be alone) into `losses[slot + m * slot_stride]`.
    #[allow(clippy::too_many_arguments)]
    fn l2(
        &mut self,
        w: &Self::Buffer,
        grad: &mut Self::Buffer,
        len: usize,
        models: Blocks,
        l2: f32,
        losses: &mut Self::Buffer,
        slots: (usize, usize),
    );
    /// `acc[slot + m] += sum(block_m^2)` for each of `models` blocks of `len` values stored one
    /// after another in `buf` (one model: `acc[slot] += sum(buf[..len]^2)`); each block's sum
    /// is what it would be alone.
    fn sum_squares(
        &mut self,
        buf: &Self::Buffer,
        len: usize,
        models: usize,
        acc: &mut Self::Buffer,
        slot: usize,
    );
    /// Merges one tile into running nearest-neighbour lists. `gram` is `queries x refs` with
    /// `gram[q, r] = <x[q_start + q], x[r_start + r]>`, `norms[i] = |x[i]|^2` for every row; the
    /// squared distance is `max(norms[q] + norms[r] - 2 gram[q, r], 0)`. `best_d`/`best_i` hold
    /// each query's `k` nearest so far (`queries x k`, ascending by distance then index; empty
    /// entries are `inf`/`u32::MAX`). A query is never its own neighbour.
    fn knn_merge(
        &mut self,
        gram: &Self::Buffer,
        norms: &Self::Buffer,
        tile: KnnTile,
        best_d: &mut Self::Buffer,
        best_i: &mut Self::Indices,
    );

    /// One optimizer update of `param` from `grad` (clipped first where `clip` says), with the
    /// optimizer's state tensors: `models` blocks of `len` elements stored one after another
    /// (one model: 1), block `m` clipped by its own model's norm, `clip.sum_squares[m]`.
    #[allow(clippy::too_many_arguments)]
    fn optimizer_step(
        &mut self,
        update: Update,
        param: &mut Self::Buffer,
        grad: &Self::Buffer,
        state: &mut [Self::Buffer],
        len: usize,
        models: usize,
        clip: Option<Clip<'_, Self::Buffer>>,
    );
}
