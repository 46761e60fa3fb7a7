//! A stack of dense layers resident on an engine: forward and backward passes.
//!
//! The encoder and the decoder are each one stack. Layer `i` computes
//! `out_i = act_i(in_i W_i + b_i)`; in training, hidden outputs (all but the stack's last layer) may
//! pass through dropout before feeding the next layer.

use crate::engine::{Blocks, Engine, Epilogue, MatMul, Models, Strides};
use crate::error::Result;
use crate::rng::Purpose;
use crate::vae::{Activation, Dense};

/// One dense layer's parameters on the engine, for one model or for several trained together.
pub(crate) struct DeviceLayer<B> {
    pub w: B,
    pub b: B,
    pub fan_in: usize,
    pub fan_out: usize,
    pub act: Activation,
    /// Elements from one model's copy of `w` (and of its gradient) to the next's, and of `b`.
    pub strides: [usize; 2],
}

impl<B> DeviceLayer<B> {
    /// The three products of the layer for every model of `r`, as one batch each: the forward
    /// `Y = X W` (with the bias), the weight gradient `dW = X^T dY` and the input gradient
    /// `dX = dY W^T`. Activations are `r.rows` rows per model one after another; parameters and
    /// their gradients are `strides` apart.
    fn products(&self, r: Rows) -> [MatMul; 3] {
        let (rows, fan_in, fan_out) = (r.rows, self.fan_in, self.fan_out);
        let [w, bias] = self.strides;
        let (x, y) = (rows * fan_in, rows * fan_out);
        let batch = |(m, k, n), (a_t, b_t), (a, b, c)| MatMul {
            m,
            k,
            n,
            a_t,
            b_t,
            batch: r.models,
            strides: Some(Strides { a, b, c, bias }),
        };
        [
            batch((rows, fan_in, fan_out), (false, false), (x, w, y)),
            batch((fan_in, rows, fan_out), (true, false), (x, y, w)),
            batch((rows, fan_out, fan_in), (false, true), (y, w, x)),
        ]
    }

    /// Uploads `dense`, computing with `act` (generation swaps the output activation).
    pub fn upload<E: Engine<Buffer = B>>(
        e: &mut E,
        dense: &Dense,
        act: Activation,
    ) -> Result<Self> {
        Ok(DeviceLayer {
            w: e.upload(dense.w.as_slice().expect("standard layout"))?,
            b: e.upload(dense.b.as_slice().expect("standard layout"))?,
            fan_in: dense.w.nrows(),
            fan_out: dense.w.ncols(),
            act,
            strides: [dense.w.len(), dense.b.len()],
        })
    }
}

/// Dropout on the hidden outputs of a stack during one training step.
pub(crate) struct Dropout<'a, I> {
    pub rate: f32,
    /// Distinguishes the encoder (0) from the decoder (1).
    pub stack: u64,
    /// Whose random streams the masks come from: each model's by its table entry
    /// (`Stream::new(seed, Purpose::Dropout, step)`).
    pub streams: Models<'a, I>,
}

// By hand: a derive would ask `I: Copy`, and only references to `I` are held.
impl<I> Clone for Dropout<'_, I> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<I> Copy for Dropout<'_, I> {}

impl<I> Dropout<'_, I> {
    /// Applies layer `layer`'s mask to `buf` (`len` elements per model): disjoint ranges of one
    /// stream per step, so the forward and the backward pass apply the same mask.
    fn apply<E: Engine<Indices = I>>(
        &self,
        e: &mut E,
        buf: &mut E::Buffer,
        len: usize,
        layer: usize,
    ) {
        let offset = ((self.stack << 8) + layer as u64) << 40;
        let at = (Purpose::Dropout, offset);
        e.dropout_models(buf, len, self.rate, at, self.streams);
    }
}

/// Per-layer outputs of a stack, sized for `rows` rows (of every model trained together).
pub(crate) struct StackBuffers<B> {
    pub out: Vec<B>,
    /// Outputs after dropout (hidden layers only); empty without dropout.
    pub dropped: Vec<B>,
}

impl<B> StackBuffers<B> {
    pub fn new<E: Engine<Buffer = B>>(
        e: &mut E,
        layers: &[DeviceLayer<B>],
        rows: usize,
        with_dropout: bool,
    ) -> Result<Self> {
        let out = layers
            .iter()
            .map(|l| e.zeros(rows * l.fan_out))
            .collect::<Result<Vec<_>>>()?;
        let hidden = &layers[..layers.len() - 1];
        let dropped = if with_dropout {
            hidden
                .iter()
                .map(|l| e.zeros(rows * l.fan_out))
                .collect::<Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        Ok(StackBuffers { out, dropped })
    }

    /// The input that layer `i` saw.
    fn input<'a>(&'a self, stack_input: &'a B, i: usize, dropout: bool) -> &'a B {
        match i {
            0 => stack_input,
            _ if dropout => &self.dropped[i - 1],
            _ => &self.out[i - 1],
        }
    }

    /// The stack's output (the last layer's).
    pub fn output(&self) -> &B {
        self.out.last().expect("a stack has at least one layer")
    }
}

/// The rows of a pass: `rows` per model, for `models` models whose rows follow one another in
/// every activation buffer (1 for one model).
#[derive(Clone, Copy)]
pub(crate) struct Rows {
    pub rows: usize,
    pub models: usize,
}

impl Rows {
    /// One model's `rows`.
    pub fn one(rows: usize) -> Rows {
        Rows { rows, models: 1 }
    }
}

/// Runs `input` (`rows x fan_in` per model) through the stack; the result is in
/// `bufs.output()`.
pub(crate) fn forward<E: Engine>(
    e: &mut E,
    layers: &[DeviceLayer<E::Buffer>],
    input: &E::Buffer,
    r: Rows,
    bufs: &mut StackBuffers<E::Buffer>,
    dropout: Option<Dropout<'_, E::Indices>>,
) {
    let last = layers.len() - 1;
    let rows = r.rows;
    for (i, l) in layers.iter().enumerate() {
        let [shape, _, _] = l.products(r);
        let (before, after) = bufs.out.split_at_mut(i);
        let x = match i {
            0 => input,
            _ if dropout.is_some() => &bufs.dropped[i - 1],
            _ => &before[i - 1],
        };
        e.matmul(
            x,
            &l.w,
            &mut after[0],
            shape,
            Epilogue::BiasActivation(&l.b, l.act),
        );
        if let (Some(d), true) = (dropout, i < last) {
            let len = rows * l.fan_out;
            e.copy(&bufs.out[i], &mut bufs.dropped[i], r.models * len);
            d.apply(e, &mut bufs.dropped[i], len, i);
        }
    }
}

/// Gradients of one layer's parameters, and the optimizer's state for them.
pub(crate) struct LayerGrads<B> {
    pub w: B,
    pub b: B,
    pub state_w: Vec<B>,
    pub state_b: Vec<B>,
}

/// Back-propagates through the stack. On entry `gout[last]` holds the gradient with respect to
/// the stack's output; on exit `grads` hold the parameter gradients and, if given, `input_grad`
/// the gradient with respect to the stack's input.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<E: Engine>(
    e: &mut E,
    layers: &[DeviceLayer<E::Buffer>],
    grads: &mut [LayerGrads<E::Buffer>],
    input: &E::Buffer,
    r: Rows,
    bufs: &StackBuffers<E::Buffer>,
    gout: &mut [E::Buffer],
    input_grad: Option<&mut E::Buffer>,
    dropout: Option<Dropout<'_, E::Indices>>,
) {
    let last = layers.len() - 1;
    let mut input_grad = input_grad;
    let rows = r.rows;
    for i in (0..=last).rev() {
        let l = &layers[i];
        let db = Blocks {
            count: r.models,
            stride: l.strides[1],
        };
        let (lower, upper) = gout.split_at_mut(i);
        let g = &mut upper[0];
        if let (Some(d), true) = (dropout, i < last) {
            d.apply(e, g, rows * l.fan_out, i);
        }
        // The identity's derivative is 1: only the bias gradient is left.
        match l.act {
            Activation::Identity => e.bias_grad(g, rows, l.fan_out, db, &mut grads[i].b),
            act => {
                e.activation_bias_grad(act, &bufs.out[i], g, rows, l.fan_out, db, &mut grads[i].b)
            }
        }
        let x = bufs.input(input, i, dropout.is_some());
        let [_, dw, dx] = l.products(r);
        e.matmul(x, g, &mut grads[i].w, dw, Epilogue::None);
        if i > 0 {
            e.matmul(g, &l.w, &mut lower[i - 1], dx, Epilogue::None);
        } else if let Some(ig) = input_grad.as_deref_mut() {
            e.matmul(g, &l.w, ig, dx, Epilogue::None);
        }
    }
}
