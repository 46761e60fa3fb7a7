//! The CPU engine: every kernel in plain Rust over `Vec<f32>`, matrix products by `ndarray`
//! (matrixmultiply on one thread: its threading measured slower at VAE layer sizes).
//! The fallback without a GPU and the oracle for every shader.

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2};

use super::Likelihood;
use super::{
    Activation, Blocks, Clip, Engine, Epilogue, KnnTile, MatMul, ModelStep, Models, Optimizer,
    Update,
};
use crate::error::Result;
use crate::rng::{Purpose, Stream};

/// Computes on the host's cores. Stateless: create one wherever needed.
#[derive(Debug, Default, Clone, Copy)]
pub struct CpuEngine;

impl CpuEngine {
    /// A CPU engine.
    pub fn new() -> Self {
        CpuEngine
    }
}

/// Applies `act` to every element; the match is outside the loop so each loop vectorises.
fn activate_all(act: Activation, v: &mut [f32]) {
    match act {
        Activation::Relu => v.iter_mut().for_each(|x| *x = x.max(0.0)),
        Activation::Elu => v.iter_mut().for_each(|x| {
            let neg = exp(x.min(0.0)) - 1.0;
            *x = if *x > 0.0 { *x } else { neg };
        }),
        Activation::Tanh => v.iter_mut().for_each(|x| *x = x.tanh()),
        Activation::Sigmoid => v.iter_mut().for_each(|x| *x = sigmoid(*x)),
        Activation::Identity => {}
    }
}

/// `grad *= act'(x)`, the derivative written in terms of the output `y = act(x)`.
fn scale_by_derivative(act: Activation, y: &[f32], grad: &mut [f32]) {
    let pairs = grad.iter_mut().zip(y);
    match act {
        Activation::Relu => pairs.for_each(|(g, &y)| *g = if y > 0.0 { *g } else { 0.0 }),
        Activation::Elu => pairs.for_each(|(g, &y)| *g *= if y > 0.0 { 1.0 } else { y + 1.0 }),
        Activation::Tanh => pairs.for_each(|(g, &y)| *g *= 1.0 - y * y),
        Activation::Sigmoid => pairs.for_each(|(g, &y)| *g *= y * (1.0 - y)),
        Activation::Identity => {}
    }
}

/// `e^x` to about 1 ulp, branch-free so loops over it vectorise (Cephes `expf`: range reduction by
/// `ln 2`, degree-6 polynomial, exponent by bit assembly). Inputs are clamped to [-87.3, 88].
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding and subtracting rounds to an integer.
    let x = x.clamp(-87.3, 88.0);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // t's bits are 0x4B40_0000 + n, so 2^n is (n + 127) placed in the exponent field.
    let two_n = t.to_bits().wrapping_sub(0x4B40_0000).wrapping_add(127) << 23;
    e * f32::from_bits(two_n)
}

/// [`Engine::knn_merge`] on the host: the oracle of the GPU kernel, the same steps in the same
/// order (the host's own search, `knn/cpu.rs`, does not materialise products).
fn merge_tile(gram: &[f32], norms: &[f32], t: KnnTile, best_d: &mut [f32], best_i: &mut [u32]) {
    for q in 0..t.queries {
        let me = t.q_start + q;
        let bd = &mut best_d[q * t.k..(q + 1) * t.k];
        let bi = &mut best_i[q * t.k..(q + 1) * t.k];
        for r in 0..t.refs {
            let j = t.r_start + r;
            let v = norms[me] + norms[j] - 2.0 * gram[q * t.refs + r];
            let d = if v > 0.0 { v } else { 0.0 };
            let entry = (d, j as u32);
            if j == me || entry >= (bd[t.k - 1], bi[t.k - 1]) {
                continue;
            }
            let mut p = t.k - 1;
            while p > 0 && entry < (bd[p - 1], bi[p - 1]) {
                bd[p] = bd[p - 1];
                bi[p] = bi[p - 1];
                p -= 1;
            }
            bd[p] = d;
            bi[p] = j as u32;
        }
    }
}

/// The logistic function `1 / (1 + e^-x)`.
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `ln(1 + e^x)`, stable for large `|x|`.
fn softplus(x: f32) -> f32 {
    x.max(0.0) + exp(-x.abs()).ln_1p()
}

fn view(data: &[f32], rows: usize, cols: usize) -> ArrayView2<'_, f32> {
    ArrayView2::from_shape((rows, cols), &data[..rows * cols]).expect("buffer holds rows * cols")
}

impl Engine for CpuEngine {
    type Buffer = Vec<f32>;
    type Indices = Vec<u32>;

    fn name(&self) -> String {
        "cpu".to_string()
    }

    fn zeros(&mut self, len: usize) -> Result<Vec<f32>> {
        Ok(vec![0.0; len])
    }

    fn upload(&mut self, data: &[f32]) -> Result<Vec<f32>> {
        Ok(data.to_vec())
    }

    fn upload_indices(&mut self, idx: &[u32]) -> Result<Vec<u32>> {
        Ok(idx.to_vec())
    }

    fn write_at(&mut self, buf: &mut Vec<f32>, at: usize, data: &[f32]) -> Result<()> {
        buf[at..at + data.len()].copy_from_slice(data);
        Ok(())
    }

    fn read(&mut self, buf: &Vec<f32>, len: usize) -> Result<Vec<f32>> {
        Ok(buf[..len].to_vec())
    }

    fn read_indices(&mut self, idx: &Vec<u32>, len: usize) -> Result<Vec<u32>> {
        Ok(idx[..len].to_vec())
    }

    fn fill(&mut self, buf: &mut Vec<f32>, len: usize, value: f32) {
        buf[..len].fill(value);
    }

    fn copy(&mut self, src: &Vec<f32>, dst: &mut Vec<f32>, len: usize) {
        dst[..len].copy_from_slice(&src[..len]);
    }

    fn gather_rows(
        &mut self,
        src: &Vec<f32>,
        cols: usize,
        idx: &Vec<u32>,
        start: usize,
        rows: usize,
        dst: &mut Vec<f32>,
    ) {
        for (r, &i) in idx[start..start + rows].iter().enumerate() {
            let i = i as usize;
            dst[r * cols..(r + 1) * cols].copy_from_slice(&src[i * cols..(i + 1) * cols]);
        }
    }

    fn matmul(
        &mut self,
        a: &Vec<f32>,
        b: &Vec<f32>,
        c: &mut Vec<f32>,
        s: MatMul,
        epilogue: Epilogue<'_, Vec<f32>>,
    ) {
        let st = s.operand_strides();
        for z in 0..s.batch {
            let a = &a[z * st.a..][..s.m * s.k];
            let b = &b[z * st.b..][..s.k * s.n];
            let out = &mut c[z * st.c..][..s.m * s.n];
            let a = if s.a_t {
                view(a, s.k, s.m).reversed_axes()
            } else {
                view(a, s.m, s.k)
            };
            let b = if s.b_t {
                view(b, s.n, s.k).reversed_axes()
            } else {
                view(b, s.k, s.n)
            };
            {
                let mut cv = ArrayViewMut2::from_shape((s.m, s.n), &mut *out)
                    .expect("buffer holds rows * cols");
                general_mat_mul(1.0, &a, &b, 0.0, &mut cv);
            }
            if let Epilogue::BiasActivation(bias, act) = epilogue {
                let bias = &bias[z * st.bias..][..s.n];
                for row in out.chunks_exact_mut(s.n) {
                    row.iter_mut().zip(bias).for_each(|(v, &b)| *v += b);
                }
                activate_all(act, out);
            }
        }
    }

    fn activation_bias_grad(
        &mut self,
        act: Activation,
        y: &Vec<f32>,
        grad: &mut Vec<f32>,
        rows: usize,
        cols: usize,
        models: Blocks,
        db: &mut Vec<f32>,
    ) {
        let len = models.count * rows * cols;
        scale_by_derivative(act, &y[..len], &mut grad[..len]);
        self.bias_grad(grad, rows, cols, models, db);
    }

    fn bias_grad(
        &mut self,
        grad: &Vec<f32>,
        rows: usize,
        cols: usize,
        models: Blocks,
        db: &mut Vec<f32>,
    ) {
        if rows * cols == 0 {
            return; // no columns (or rows): no sums to write
        }
        let blocks = grad[..models.count * rows * cols].chunks_exact(rows * cols);
        for (m, block) in blocks.enumerate() {
            let db = &mut db[m * models.stride..][..cols];
            db.fill(0.0);
            for row in block.chunks_exact(cols) {
                for (d, &g) in db.iter_mut().zip(row) {
                    *d += g;
                }
            }
        }
    }

    fn dropout_models(
        &mut self,
        buf: &mut Vec<f32>,
        len: usize,
        rate: f32,
        (purpose, offset): (Purpose, u64),
        models: Models<'_, Vec<u32>>,
    ) {
        for m in 0..models.count {
            let entry = ModelStep::read(models.table, models.at + m);
            let stream = Stream::new(entry.seed, purpose, entry.step);
            dropout(&mut buf[m * len..(m + 1) * len], rate, stream, offset);
        }
    }

    fn normal(&mut self, dst: &mut Vec<f32>, len: usize, stream: Stream, offset: u64) {
        stream.fill_normal(offset, &mut dst[..len]);
    }

    fn reparameterize_models(
        &mut self,
        head: &Vec<f32>,
        rows: usize,
        latent: usize,
        purpose: Purpose,
        models: Models<'_, Vec<u32>>,
        z: &mut Vec<f32>,
        eps: &mut Vec<f32>,
    ) {
        let block = rows * latent;
        for m in 0..models.count {
            let step = ModelStep::read(models.table, models.at + m);
            let used = step.rows.min(rows) * latent;
            let head = &head[m * 2 * block..(m + 1) * 2 * block];
            let (z, eps) = (
                &mut z[m * block..(m + 1) * block],
                &mut eps[m * block..(m + 1) * block],
            );
            Stream::new(step.seed, purpose, step.step).fill_normal(0, &mut eps[..used]);
            for i in 0..used {
                let (r, j) = (i / latent, i % latent);
                let (mu, logvar) = (head[r * 2 * latent + j], head[r * 2 * latent + latent + j]);
                z[i] = mu + eps[i] * exp(0.5 * logvar);
            }
            z[used..].fill(0.0);
            eps[used..].fill(0.0);
        }
    }

    fn reconstruction_models(
        &mut self,
        likelihood: Likelihood,
        (o, x): (&Vec<f32>, &Vec<f32>),
        (rows, cols, numeric): (usize, usize, usize),
        models: Models<'_, Vec<u32>>,
        grad: &mut Vec<f32>,
        losses: &mut Vec<f32>,
        (slot, stride): (usize, usize),
    ) {
        let shape = (rows, cols);
        each_model(
            shape,
            models,
            (slot, stride),
            (o, x),
            grad,
            losses,
            |_, o, x, g, used| {
                let sum = match used {
                    0 => 0.0,
                    _ => reconstruction(likelihood, o, x, (used, cols, numeric), g),
                };
                zero_numeric_padding(g, used, cols, numeric);
                sum
            },
        );
    }

    fn gaussian_learned_models(
        &mut self,
        (o, x, logvar): (&Vec<f32>, &Vec<f32>, &Vec<f32>),
        (rows, cols, numeric): (usize, usize, usize),
        logvar_stride: usize,
        models: Models<'_, Vec<u32>>,
        (grad, terms): (&mut Vec<f32>, &mut Vec<f32>),
        losses: &mut Vec<f32>,
        (slot, stride): (usize, usize),
    ) {
        let term_block = rows * numeric;
        each_model(
            (rows, cols),
            models,
            (slot, stride),
            (o, x),
            grad,
            losses,
            |m, o, x, g, used| {
                let s = &logvar[m * logvar_stride..][..numeric];
                let t = &mut terms[m * term_block..(m + 1) * term_block];
                let sum = match used {
                    0 => 0.0,
                    _ => gaussian_learned(o, x, s, (used, cols, numeric), g, t),
                };
                zero_numeric_padding(g, used, cols, numeric);
                t[used * numeric..].fill(0.0);
                sum
            },
        );
    }

    fn softmax_cross_entropy_models(
        &mut self,
        (o, x): (&Vec<f32>, &Vec<f32>),
        (rows, cols): (usize, usize),
        (groups, heads): (&Vec<u32>, usize),
        models: Models<'_, Vec<u32>>,
        grad: &mut Vec<f32>,
        losses: &mut Vec<f32>,
        (slot, stride): (usize, usize),
    ) {
        let shape = (rows, cols);
        each_model(
            shape,
            models,
            (slot, stride),
            (o, x),
            grad,
            losses,
            |_, o, x, g, used| {
                let spans = &groups[..2 * heads];
                let sum = match used {
                    0 => 0.0,
                    _ => softmax_cross_entropy(o, x, (used, cols), spans, g),
                };
                for r in used..rows {
                    for span in spans.chunks_exact(2) {
                        let start = r * cols + span[0] as usize;
                        g[start..start + span[1] as usize].fill(0.0);
                    }
                }
                sum
            },
        );
    }

    fn kl_models(
        &mut self,
        (head, eps, dz): (&Vec<f32>, &Vec<f32>, &Vec<f32>),
        (rows, latent): (usize, usize),
        beta: f32,
        models: Models<'_, Vec<u32>>,
        dhead: &mut Vec<f32>,
        losses: &mut Vec<f32>,
        (slot, stride): (usize, usize),
    ) {
        let block = rows * latent;
        let blocks = dhead.chunks_exact_mut(2 * block).take(models.count);
        for (m, dhead) in blocks.enumerate() {
            let used = ModelStep::read(models.table, models.at + m).rows.min(rows);
            let h = &head[m * 2 * block..(m + 1) * 2 * block];
            let (e, d) = (
                &eps[m * block..(m + 1) * block],
                &dz[m * block..(m + 1) * block],
            );
            if used > 0 {
                losses[slot + m * stride] += kl(h, e, d, (used, latent), beta, dhead);
            }
            dhead[used * 2 * latent..].fill(0.0);
        }
    }

    fn l2(
        &mut self,
        w: &Vec<f32>,
        grad: &mut Vec<f32>,
        len: usize,
        models: Blocks,
        l2: f32,
        losses: &mut Vec<f32>,
        (slot, slot_stride): (usize, usize),
    ) {
        for m in 0..models.count {
            let first = m * models.stride;
            let mut sum = 0.0f64;
            let (g, w) = (&mut grad[first..][..len], &w[first..][..len]);
            for (g, &wv) in g.iter_mut().zip(w) {
                *g += l2 * wv;
                sum += f64::from(wv * wv);
            }
            losses[slot + m * slot_stride] += (0.5 * f64::from(l2) * sum) as f32;
        }
    }

    fn sum_squares(
        &mut self,
        buf: &Vec<f32>,
        len: usize,
        models: usize,
        acc: &mut Vec<f32>,
        slot: usize,
    ) {
        for (m, block) in buf[..models * len].chunks_exact(len.max(1)).enumerate() {
            let s: f64 = block.iter().map(|&v| f64::from(v * v)).sum();
            acc[slot + m] += s as f32;
        }
    }

    fn knn_merge(
        &mut self,
        gram: &Vec<f32>,
        norms: &Vec<f32>,
        t: KnnTile,
        best_d: &mut Vec<f32>,
        best_i: &mut Vec<u32>,
    ) {
        merge_tile(gram, norms, t, best_d, best_i);
    }

    fn optimizer_step(
        &mut self,
        u: Update,
        param: &mut Vec<f32>,
        grad: &Vec<f32>,
        state: &mut [Vec<f32>],
        len: usize,
        models: usize,
        clip: Option<Clip<'_, Vec<f32>>>,
    ) {
        for m in 0..models {
            // Multiplying by 1 is exact: an unclipped gradient is used as it is.
            let scale = clip.map_or(1.0, |c| {
                let norm = c.sum_squares[m].sqrt();
                if norm > c.max_norm {
                    c.max_norm / norm
                } else {
                    1.0
                }
            });
            update_block(u, param, grad, state, m * len..(m + 1) * len, scale);
        }
    }
}

/// Dropout on `buf` with the mask of `stream` from `offset`: a kept value is scaled by
/// `1 / (1 - rate)`.
fn dropout(buf: &mut [f32], rate: f32, stream: Stream, offset: u64) {
    let keep_scale = 1.0 / (1.0 - rate);
    for (i, v) in buf.iter_mut().enumerate() {
        if stream.uniform_at(offset + i as u64) <= rate {
            *v = 0.0;
        } else {
            *v *= keep_scale;
        }
    }
}

/// The reconstruction loss of the numeric columns (the first `numeric` of `cols`) of `rows`
/// rows: the gradient (over `rows`) into `grad`, the sum returned.
fn reconstruction(
    likelihood: Likelihood,
    o: &[f32],
    x: &[f32],
    (rows, cols, numeric): (usize, usize, usize),
    grad: &mut [f32],
) -> f32 {
    let n = rows * cols;
    let inv_rows = 1.0 / rows as f32;
    let mut sum = 0.0f64;
    let elements = grad[..n].iter_mut().zip(&o[..n]).zip(&x[..n]).enumerate();
    for (_, ((g, &ov), &xv)) in elements.filter(|(i, _)| i % cols < numeric) {
        let (loss, d) = match likelihood {
            Likelihood::Bernoulli => (softplus(ov) - xv * ov, sigmoid(ov) - xv),
            Likelihood::Gaussian | Likelihood::GaussianLearned => {
                (0.5 * (xv - ov) * (xv - ov), ov - xv)
            }
        };
        sum += f64::from(loss);
        *g = d * inv_rows;
    }
    sum as f32
}

/// Categorical cross-entropy of the softmax heads `spans` (`[start, width]` each) of `rows`
/// rows: the gradient (over `rows`) into their columns of `grad`, the sum returned.
fn softmax_cross_entropy(
    o: &[f32],
    x: &[f32],
    (rows, cols): (usize, usize),
    spans: &[u32],
    grad: &mut [f32],
) -> f32 {
    let inv_rows = 1.0 / rows as f32;
    let mut sum = 0.0f64;
    for r in 0..rows {
        for g in spans.chunks_exact(2) {
            let at = r * cols + g[0] as usize..r * cols + (g[0] + g[1]) as usize;
            let (o, x) = (&o[at.clone()], &x[at.clone()]);
            let max = o.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let total: f32 = o.iter().map(|&v| exp(v - max)).sum();
            let dot: f32 = o.iter().zip(x).map(|(&ov, &xv)| ov * xv).sum();
            sum += f64::from(max + total.ln() - dot);
            for ((gv, &ov), &xv) in grad[at].iter_mut().zip(o).zip(x) {
                *gv = (exp(ov - max) / total - xv) * inv_rows;
            }
        }
    }
    sum as f32
}

/// The Gaussian loss with a learned log-variance per numeric column: the gradient of the
/// outputs into `grad`, each element's term of the log-variance's gradient into `terms`
/// (`rows x numeric`), the sum returned.
fn gaussian_learned(
    o: &[f32],
    x: &[f32],
    logvar: &[f32],
    (rows, cols, numeric): (usize, usize, usize),
    grad: &mut [f32],
    terms: &mut [f32],
) -> f32 {
    const LN_2PI: f32 = 1.837_877_1;
    let inv_rows = 1.0 / rows as f32;
    let mut sum = 0.0f64;
    for (r, j) in (0..rows).flat_map(|r| (0..numeric).map(move |j| (r, j))) {
        let (g, ds) = (&mut grad[r * cols + j], &mut terms[r * numeric + j]);
        let (ov, xv) = (o[r * cols + j], x[r * cols + j]);
        let raw = logvar[j];
        let s = raw.clamp(Likelihood::MIN_LOGVAR, Likelihood::MAX_LOGVAR);
        let w = exp(-s);
        let r2 = (xv - ov) * (xv - ov);
        sum += f64::from(0.5 * (r2 * w + s + LN_2PI));
        *g = (ov - xv) * w * inv_rows;
        *ds = if s == raw {
            0.5 * (1.0 - r2 * w) * inv_rows
        } else {
            0.0
        };
    }
    sum as f32
}

/// The KL divergence of each row's posterior from N(0, I), weighted by `beta`: the gradient of
/// the encoder's head (`mu`, then `log var`; over `rows`, with the decoder's `dz` carried through
/// the reparameterisation) into `dhead`, the unweighted sum returned.
fn kl(
    head: &[f32],
    eps: &[f32],
    dz: &[f32],
    (rows, latent): (usize, usize),
    beta: f32,
    dhead: &mut [f32],
) -> f32 {
    let inv_rows = 1.0 / rows as f32;
    let mut sum = 0.0f64;
    for r in 0..rows {
        let w = 2 * latent;
        let (mu, logvar) = head[r * w..(r + 1) * w].split_at(latent);
        let (dmu, dlogvar) = dhead[r * w..(r + 1) * w].split_at_mut(latent);
        for j in 0..latent {
            let i = r * latent + j;
            let var = exp(logvar[j]);
            sum += f64::from(-0.5 * (1.0 + logvar[j] - mu[j] * mu[j] - var));
            dmu[j] = dz[i] + beta * mu[j] * inv_rows;
            dlogvar[j] =
                0.5 * dz[i] * eps[i] * exp(0.5 * logvar[j]) + 0.5 * beta * (var - 1.0) * inv_rows;
        }
    }
    sum as f32
}

/// A batched loss computed model by model: for each model `m`, `loss` gets its blocks of `o`,
/// `x` and `grad` (`rows x cols` each) and the rows its table entry gives, and returns its sum,
/// added to `losses[slot + m * stride]`.
fn each_model(
    (rows, cols): (usize, usize),
    models: Models<'_, Vec<u32>>,
    (slot, stride): (usize, usize),
    (o, x): (&[f32], &[f32]),
    grad: &mut [f32],
    losses: &mut [f32],
    mut loss: impl FnMut(usize, &[f32], &[f32], &mut [f32], usize) -> f32,
) {
    let block = rows * cols;
    let blocks = o.chunks_exact(block).zip(x.chunks_exact(block));
    let blocks = blocks.zip(grad.chunks_exact_mut(block)).take(models.count);
    for (m, ((o, x), g)) in blocks.enumerate() {
        let used = ModelStep::read(models.table, models.at + m).rows.min(rows);
        losses[slot + m * stride] += loss(m, o, x, g, used);
    }
}

/// Zeroes the numeric columns' gradients of the padding rows (from row `used`) of a model's
/// `rows x cols` block: they are no rows of its.
fn zero_numeric_padding(g: &mut [f32], used: usize, cols: usize, numeric: usize) {
    for row in g.chunks_exact_mut(cols).skip(used) {
        row[..numeric].fill(0.0);
    }
}

/// One optimizer update of the elements `r` of `param` from `grad` times `scale`, with the
/// optimizer's state tensors.
fn update_block(
    u: Update,
    param: &mut [f32],
    grad: &[f32],
    state: &mut [Vec<f32>],
    r: std::ops::Range<usize>,
    scale: f32,
) {
    let lr = u.learning_rate;
    let (p, g) = (&mut param[r.clone()], &grad[r.clone()]);
    let g = g.iter().map(|&v| v * scale);
    match u.optimizer {
        Optimizer::Sgd => {
            for (w, gv) in p.iter_mut().zip(g) {
                *w -= lr * gv;
            }
        }
        Optimizer::Momentum => {
            for ((w, gv), m) in p.iter_mut().zip(g).zip(&mut state[0][r]) {
                *m = Optimizer::MOMENTUM * *m + gv;
                *w -= lr * *m;
            }
        }
        Optimizer::Adagrad => {
            for ((w, gv), s) in p.iter_mut().zip(g).zip(&mut state[0][r]) {
                *s += gv * gv;
                *w -= lr * gv / (s.sqrt() + Optimizer::EPS);
            }
        }
        Optimizer::RmsProp => {
            let rho = Optimizer::RMSPROP_RHO;
            for ((w, gv), v) in p.iter_mut().zip(g).zip(&mut state[0][r]) {
                *v = rho * *v + (1.0 - rho) * gv * gv;
                *w -= lr * gv / (v.sqrt() + Optimizer::EPS);
            }
        }
        Optimizer::Adam => {
            let (b1, b2) = (Optimizer::ADAM_BETA1, Optimizer::ADAM_BETA2);
            let c1 = 1.0 - b1.powi(u.t as i32);
            let c2 = 1.0 - b2.powi(u.t as i32);
            let (m_state, v_state) = state.split_at_mut(1);
            let (m, v) = (&mut m_state[0][r.clone()], &mut v_state[0][r]);
            for (i, gv) in g.enumerate() {
                m[i] = b1 * m[i] + (1.0 - b1) * gv;
                v[i] = b2 * v[i] + (1.0 - b2) * gv * gv;
                p[i] -= lr * (m[i] / c1) / ((v[i] / c2).sqrt() + Optimizer::ADAM_EPS);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    fn step(opt: Optimizer, lr: f32, grads: [f32; 2], w0: f32) -> [f32; 2] {
        let mut e = CpuEngine;
        let mut w = vec![w0];
        let mut state = vec![vec![0.0f32]; opt.state_tensors()];
        let mut out = [0.0; 2];
        for (t, g) in grads.iter().enumerate() {
            let u = Update {
                optimizer: opt,
                learning_rate: lr,
                t: t as u32 + 1,
            };
            e.optimizer_step(u, &mut w, &vec![*g], &mut state, 1, 1, None);
            out[t] = w[0];
        }
        out
    }

    // Two steps of each optimizer, worked by hand from the formulas in `Optimizer`'s docs,
    // w0 = 1, lr = 0.1, gradients 0.5 then -0.2.
    #[test]
    fn sgd_two_steps_by_hand() {
        // 1 - 0.05 = 0.95; 0.95 + 0.02 = 0.97
        let w = step(Optimizer::Sgd, 0.1, [0.5, -0.2], 1.0);
        assert_relative_eq!(w[0], 0.95, max_relative = 1e-6);
        assert_relative_eq!(w[1], 0.97, max_relative = 1e-6);
    }

    #[test]
    fn momentum_two_steps_by_hand() {
        // u1 = 0.5, w1 = 0.95; u2 = 0.45 - 0.2 = 0.25, w2 = 0.95 - 0.025 = 0.925
        let w = step(Optimizer::Momentum, 0.1, [0.5, -0.2], 1.0);
        assert_relative_eq!(w[0], 0.95, max_relative = 1e-6);
        assert_relative_eq!(w[1], 0.925, max_relative = 1e-6);
    }

    #[test]
    fn adagrad_two_steps_by_hand() {
        // s1 = 0.25, w1 = 1 - 0.1 * 0.5 / 0.5 = 0.9
        // s2 = 0.29, w2 = 0.9 + 0.1 * 0.2 / sqrt(0.29) = 0.9 + 0.0371390676 = 0.9371390676
        let w = step(Optimizer::Adagrad, 0.1, [0.5, -0.2], 1.0);
        assert_relative_eq!(w[0], 0.9, max_relative = 1e-6);
        assert_relative_eq!(w[1], 0.937_139_1, max_relative = 1e-6);
    }

    #[test]
    fn rmsprop_two_steps_by_hand() {
        // v1 = 0.1 * 0.25 = 0.025, w1 = 1 - 0.1 * 0.5 / sqrt(0.025) = 1 - 0.316227766 = 0.683772234
        // v2 = 0.0225 + 0.1 * 0.04 = 0.0265, w2 = w1 + 0.1 * 0.2 / sqrt(0.0265) = w1 + 0.122859388
        let w = step(Optimizer::RmsProp, 0.1, [0.5, -0.2], 1.0);
        assert_relative_eq!(w[0], 0.683_772_2, max_relative = 1e-5);
        assert_relative_eq!(w[1], 0.806_631_6, max_relative = 1e-5);
    }

    #[test]
    fn adam_two_steps_by_hand() {
        // t=1: m = 0.05, v = 0.00025, mhat = 0.5, vhat = 0.25, w1 = 1 - 0.1 * 0.5 / 0.5 = 0.9
        // t=2: m = 0.045 - 0.02 = 0.025, v = 0.00024975 + 0.00004 = 0.00028975
        //      mhat = 0.025 / 0.19 = 0.131578947, vhat = 0.00028975 / 0.001999 = 0.144947474
        //      w2 = 0.9 - 0.1 * 0.131578947 / 0.380719680 = 0.9 - 0.034560626 = 0.865439374
        let w = step(Optimizer::Adam, 0.1, [0.5, -0.2], 1.0);
        assert_relative_eq!(w[0], 0.9, max_relative = 1e-6);
        assert_relative_eq!(w[1], 0.865_439_4, max_relative = 1e-5);
    }

    #[test]
    fn fast_exp_within_two_ulp() {
        let mut worst = 0.0f64;
        for i in -87_000..88_000 {
            let x = i as f32 * 1e-3 + 0.000_37;
            let want = f64::from(x).exp();
            let rel = (f64::from(exp(x)) - want).abs() / want;
            worst = worst.max(rel);
        }
        assert!(worst < 2.5e-7, "worst relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert!(sigmoid(-100.0) >= 0.0 && sigmoid(-100.0) < 1e-30);
        assert_eq!(sigmoid(100.0), 1.0);
    }

    #[test]
    fn matmul_transposes_match_hand_values() {
        let mut e = CpuEngine;
        // A = [[1,2,3],[4,5,6]] (2x3), B = [[1,0],[0,1],[1,1]] (3x2): AB = [[4,5],[10,11]]
        let a = vec![1., 2., 3., 4., 5., 6.];
        let b = vec![1., 0., 0., 1., 1., 1.];
        let mut c = vec![f32::NAN; 4];
        let s = MatMul {
            m: 2,
            k: 3,
            n: 2,
            a_t: false,
            b_t: false,
            batch: 1,
            strides: None,
        };
        e.matmul(&a, &b, &mut c, s, Epilogue::None);
        assert_eq!(c, vec![4., 5., 10., 11.]);
        // A^T stored (3x2) and B^T stored (2x3) give the same product.
        let at = vec![1., 4., 2., 5., 3., 6.];
        let bt = vec![1., 0., 1., 0., 1., 1.];
        let mut c2 = vec![f32::NAN; 4];
        let s2 = MatMul {
            a_t: true,
            b_t: true,
            ..s
        };
        e.matmul(&at, &bt, &mut c2, s2, Epilogue::None);
        assert_eq!(c2, c);
        // Bias + relu epilogue: [[4-5, 5+1], [10-5, 11+1]] -> relu.
        let bias = vec![-5., 1.];
        e.matmul(
            &a,
            &b,
            &mut c,
            s,
            Epilogue::BiasActivation(&bias, Activation::Relu),
        );
        assert_eq!(c, vec![0., 6., 5., 12.]);
    }

    #[test]
    fn softmax_heads_match_hand_values_and_finite_differences() {
        // One row, a head over columns 1..3: o = [0, ln 3], x = [0, 1]: p = [1/4, 3/4],
        // loss = ln 4 - ln 3, grad = p - x. Columns 0 and 3 are not the head's.
        let o = vec![9.0, 0.0, 3f32.ln(), 9.0];
        let x = vec![0.0, 0.0, 1.0, 0.0];
        let mut grad = vec![f32::NAN; 4];
        let loss = softmax_cross_entropy(&o, &x, (1, 4), &[1, 2], &mut grad);
        assert_relative_eq!(loss, (4f32 / 3.0).ln(), max_relative = 1e-6);
        assert_relative_eq!(grad[1], 0.25, max_relative = 1e-6);
        assert_relative_eq!(grad[2], -0.25, max_relative = 1e-6);
        assert!(
            grad[0].is_nan() && grad[3].is_nan(),
            "outside the head: {grad:?}"
        );

        // Three rows, heads of 3 and 2 columns after a numeric column: the gradient is the
        // derivative of the summed loss (divided by rows), element by element.
        let (rows, cols, groups) = (3, 6, vec![1, 3, 4, 2]);
        let o: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7) % 11) as f32 * 0.4 - 2.0)
            .collect();
        let mut x = vec![0.0; rows * cols];
        for r in 0..rows {
            x[r * cols + 1 + r % 3] = 1.0;
            x[r * cols + 4 + r % 2] = 1.0;
        }
        let loss = |o: &Vec<f32>| {
            let mut g = vec![0.0; rows * cols];
            let l = softmax_cross_entropy(o, &x, (rows, cols), &groups, &mut g);
            (f64::from(l), g)
        };
        let (_, analytic) = loss(&o);
        for i in (0..rows * cols).filter(|i| i % cols != 0) {
            let h = 1e-2;
            let (mut up, mut down) = (o.clone(), o.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (loss(&up).0 - loss(&down).0) / (2.0 * f64::from(h)) / rows as f64;
            assert!(
                (numeric - f64::from(analytic[i])).abs() < 1e-3,
                "element {i}: numeric {numeric}, analytic {}",
                analytic[i]
            );
        }
    }

    #[test]
    fn losses_match_hand_values() {
        let mut grad = vec![f32::NAN; 2];
        // Bernoulli, o = [0, ln 3], x = [1, 0]: softplus(0) = ln 2, softplus(ln 3) = ln 4.
        let o = [0.0, 3f32.ln()];
        let loss = reconstruction(Likelihood::Bernoulli, &o, &[1.0, 0.0], (1, 2, 2), &mut grad);
        assert_relative_eq!(loss, 2f32.ln() + 4f32.ln(), max_relative = 1e-6);
        assert_relative_eq!(grad[0], -0.5, max_relative = 1e-6);
        assert_relative_eq!(grad[1], 0.75, max_relative = 1e-6);
        // KL of mu = 1, logvar = 0 is 0.5; gradient with dz = 0, beta = 2, rows = 1: dmu = 2, dlv = 0.
        let mut dhead = vec![f32::NAN; 2];
        let kl = kl(&[1.0, 0.0], &[0.3], &[0.0], (1, 1), 2.0, &mut dhead);
        assert_relative_eq!(kl, 0.5, max_relative = 1e-6);
        assert_eq!(dhead, vec![2.0, 0.0]);
    }
}
