//! Every GPU kernel against the CPU engine (the oracle), on random inputs of awkward sizes.
//!
//! Each case is written once as a generic function over [`Engine`] and run on both engines.
//! Outputs are poisoned with NaN before each run, so an element a kernel never writes fails.
//! Comparisons use `|gpu - cpu| <= max(REL * |cpu|, ABS)` and fail on NaN.
//!
//! In CI these run on Mesa's lavapipe. They skip (and say so) only where wgpu finds no adapter,
//! and never when `SMRT_TEST_REQUIRE_GPU` is set (as CI sets it).

use std::sync::OnceLock;

use smrt::engine::{
    Blocks, Clip, CpuEngine, Engine, Epilogue, Gpu, GpuEngine, KnnTile, MatMul, ModelStep, Models,
    Strides, Update,
};
use smrt::rng::{Purpose, Stream};
use smrt::{
    Activation, CategoryDraw, Device, Generation, Latent, Likelihood, Optimizer, Sampling, Vae,
    VaeConfig,
};

mod common;
use common::EVERY_GENERATION;

/// Relative tolerance: a few ulps of f32 accumulated over a few hundred terms, plus the
/// different `exp`/`log`/`tanh` of the two engines.
const REL: f32 = 1e-4;
/// Absolute tolerance, for results near zero.
const ABS: f32 = 1e-5;

const SIZES: [usize; 4] = [1, 7, 65, 300];

/// One device for the whole file (its pipelines compile once); `None`, with a notice, when wgpu
/// finds no adapter at all.
fn gpu() -> Option<Gpu> {
    static GPU: OnceLock<Option<Gpu>> = OnceLock::new();
    GPU.get_or_init(|| match Gpu::new() {
        Ok(g) => Some(g),
        Err(smrt::Error::NoGpu(why)) => {
            // CI installs lavapipe and sets this, so the tests cannot skip there unnoticed.
            assert!(
                std::env::var_os("SMRT_TEST_REQUIRE_GPU").is_none(),
                "SMRT_TEST_REQUIRE_GPU is set but there is no GPU: {why}"
            );
            eprintln!("GPU tests skipped: {why}");
            None
        }
        Err(e) => panic!("opening the GPU failed: {e}"),
    })
    .clone()
}

fn gpu_engine() -> Option<GpuEngine> {
    gpu().map(|g| g.engine().expect("a GPU engine"))
}

fn data(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    let s = Stream::new(seed, Purpose::Init, 9);
    (0..n)
        .map(|i| lo + (hi - lo) * s.uniform_at(i as u64))
        .collect()
}

#[track_caller]
fn assert_close(what: &str, gpu: &[f32], cpu: &[f32], rel: f32, abs: f32) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths");
    for (i, (&g, &c)) in gpu.iter().zip(cpu).enumerate() {
        let err = (g - c).abs();
        assert!(
            err <= (rel * c.abs()).max(abs),
            "{what}: element {i}: gpu {g}, cpu {c} (|diff| {err})"
        );
    }
}

/// A buffer of `len` NaNs.
fn poisoned<E: Engine>(e: &mut E, len: usize) -> E::Buffer {
    e.upload(&vec![f32::NAN; len]).unwrap()
}

/// `values`, `z` blocks of `len`, laid out `stride` apart with NaN between them.
fn spread(values: &[f32], len: usize, stride: usize) -> Vec<f32> {
    let z = values.len() / len.max(1);
    let mut out = vec![f32::NAN; (z.max(1) - 1) * stride + len];
    for (i, block) in values.chunks_exact(len.max(1)).enumerate() {
        out[i * stride..][..len].copy_from_slice(block);
    }
    out
}

/// The batch `s` on inputs from fixed seeds, each operand laid out at the batch's strides; the
/// products read back one after another.
fn matmul_case<E: Engine>(e: &mut E, s: MatMul, act: Option<Activation>) -> Vec<f32> {
    let z = s.batch;
    let st = s.operand_strides();
    let (la, lb, lc) = (s.m * s.k, s.k * s.n, s.m * s.n);
    let a = e
        .upload(&spread(&data(z * la, 1, -1.0, 1.0), la, st.a))
        .unwrap();
    let b = e
        .upload(&spread(&data(z * lb, 2, -1.0, 1.0), lb, st.b))
        .unwrap();
    let bias = spread(&data(z * s.n, 3, -0.5, 0.5), s.n, st.bias);
    let bias = e.upload(&bias).unwrap();
    let mut c = poisoned(e, (z - 1) * st.c + lc);
    let epilogue = match act {
        Some(act) => Epilogue::BiasActivation(&bias, act),
        None => Epilogue::None,
    };
    e.matmul(&a, &b, &mut c, s, epilogue);
    let c = e.read(&c, (z - 1) * st.c + lc).unwrap();
    (0..z).flat_map(|i| c[i * st.c..][..lc].to_vec()).collect()
}

/// The products of [`matmul_case`]'s batch computed one at a time, concatenated.
fn matmul_alone<E: Engine>(e: &mut E, s: MatMul, act: Option<Activation>) -> Vec<f32> {
    let z = s.batch;
    let (a, b) = (
        data(z * s.m * s.k, 1, -1.0, 1.0),
        data(z * s.k * s.n, 2, -1.0, 1.0),
    );
    let bias = data(z * s.n, 3, -0.5, 0.5);
    let mut out = Vec::new();
    for i in 0..z {
        let part = |v: &[f32], len: usize| v[i * len..(i + 1) * len].to_vec();
        let a = e.upload(&part(&a, s.m * s.k)).unwrap();
        let b = e.upload(&part(&b, s.k * s.n)).unwrap();
        let bias = e.upload(&part(&bias, s.n)).unwrap();
        let mut c = poisoned(e, s.m * s.n);
        let epilogue = match act {
            Some(act) => Epilogue::BiasActivation(&bias, act),
            None => Epilogue::None,
        };
        e.matmul(&a, &b, &mut c, MatMul { batch: 1, ..s }, epilogue);
        out.extend(e.read(&c, s.m * s.n).unwrap());
    }
    out
}

#[test]
fn a_batch_of_products_is_each_product_alone_bit_for_bit() {
    // The layers of several models in one dispatch: every product of the batch computed as it
    // would be alone (on the CPU, and on the device), and the device within tolerance of the CPU.
    let mut c = CpuEngine::new();
    let mut g = gpu_engine();
    for (m, k, n) in [(1, 1, 1), (64, 9, 33), (7, 65, 300), (130, 70, 20)] {
        // One after another, or each operand with a gap before the next product's (the
        // parameters of models packed one model's block after another).
        let gaps = [
            None,
            Some(Strides {
                a: m * k + 3,
                b: k * n + 70,
                c: m * n + 1,
                bias: n + 5,
            }),
        ];
        for ((a_t, b_t), strides) in [(false, false), (true, false), (false, true)]
            .into_iter()
            .flat_map(|t| gaps.map(|g| (t, g)))
        {
            for act in [None, Some(Activation::Tanh)] {
                let s = MatMul {
                    a_t,
                    b_t,
                    batch: 3,
                    strides,
                    ..MatMul::new(m, k, n)
                };
                let what = format!("{s:?} {act:?}");
                let cpu = matmul_case(&mut c, s, act);
                assert_eq!(cpu, matmul_alone(&mut c, s, act), "cpu {what}");
                if let Some(g) = g.as_mut() {
                    let gpu = matmul_case(g, s, act);
                    assert_eq!(gpu, matmul_alone(g, s, act), "gpu {what}");
                    assert_close(&what, &gpu, &cpu, REL, 1e-6 * k as f32 + 1e-6);
                }
            }
        }
    }
}

#[test]
fn matmul_matches_cpu() {
    let Some(mut g) = gpu_engine() else { return };
    let mut c = CpuEngine::new();
    for &m in &SIZES {
        for &k in &SIZES {
            for &n in &SIZES {
                for (a_t, b_t) in [(false, false), (true, false), (false, true), (true, true)] {
                    let s = MatMul {
                        m,
                        k,
                        n,
                        a_t,
                        b_t,
                        batch: 1,
                        strides: None,
                    };
                    let what = format!("matmul {s:?}");
                    // Sums of k products of values in [-1, 1]: absolute error grows with k.
                    let abs = 1e-6 * k as f32;
                    assert_close(
                        &what,
                        &matmul_case(&mut g, s, None),
                        &matmul_case(&mut c, s, None),
                        REL,
                        abs,
                    );
                }
            }
        }
    }
}

#[test]
fn matmul_epilogue_matches_cpu_for_every_activation() {
    let Some(mut g) = gpu_engine() else { return };
    let mut c = CpuEngine::new();
    for act in [
        Activation::Relu,
        Activation::Elu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Identity,
    ] {
        // Small products run in 32 x 32 tiles, large ones (300 x 300: 25 blocks of 64) in 64 x 64.
        for (m, k, n) in [(1, 1, 1), (65, 7, 300), (300, 65, 7), (300, 65, 300)] {
            let s = MatMul {
                m,
                k,
                n,
                a_t: false,
                b_t: false,
                batch: 1,
                strides: None,
            };
            let what = format!("matmul {s:?} + bias, {act:?}");
            assert_close(
                &what,
                &matmul_case(&mut g, s, Some(act)),
                &matmul_case(&mut c, s, Some(act)),
                REL,
                1e-5,
            );
        }
    }
}

/// A test running one generic case on both engines. The case returns labelled outputs; each
/// is compared element by element.
macro_rules! parity_test {
    ($test:ident, $rel:expr, $abs:expr, |$e:ident| $body:block) => {
        #[test]
        fn $test() {
            fn case<E: Engine>($e: &mut E) -> Vec<(String, Vec<f32>)> $body
            let Some(mut g) = gpu_engine() else { return };
            let got = case(&mut g);
            let want = case(&mut CpuEngine::new());
            assert_eq!(got.len(), want.len());
            for ((label, g), (_, c)) in got.iter().zip(&want) {
                assert_close(&format!("{}: {label}", stringify!($test)), g, c, $rel, $abs);
            }
        }
    };
}

parity_test!(fill_and_copy_match_cpu, 0.0, 0.0, |e| {
    let mut out = Vec::new();
    for n in [1, 7, 65, 300, 5000] {
        // One element past `len` stays NaN: kernels touch only what they are asked to.
        let src = e.upload(&data(n, 4, -1.0, 1.0)).unwrap();
        let mut dst = poisoned(e, n + 1);
        e.copy(&src, &mut dst, n);
        let copied = e.read(&dst, n + 1).unwrap();
        assert!(copied[n].is_nan(), "copy wrote past len {n}");
        out.push((format!("copy {n}"), copied[..n].to_vec()));
        e.fill(&mut dst, n, 2.5);
        let filled = e.read(&dst, n + 1).unwrap();
        assert!(filled[n].is_nan(), "fill wrote past len {n}");
        out.push((format!("fill {n}"), filled[..n].to_vec()));
    }
    out
});

parity_test!(gather_rows_matches_cpu, 0.0, 0.0, |e| {
    let mut out = Vec::new();
    for cols in SIZES {
        let rows = 300;
        let src = e.upload(&data(rows * cols, 5, -1.0, 1.0)).unwrap();
        let order = smrt::rng::permutation(&Stream::new(1, Purpose::Shuffle, 0), rows);
        let idx = e.upload_indices(&order).unwrap();
        for (start, n) in [(0, 1), (5, 65), (0, 300)] {
            let mut dst = poisoned(e, n * cols);
            e.gather_rows(&src, cols, &idx, start, n, &mut dst);
            out.push((
                format!("cols {cols} start {start} rows {n}"),
                e.read(&dst, n * cols).unwrap(),
            ));
        }
    }
    out
});

parity_test!(activation_bias_grad_matches_cpu, REL, ABS, |e| {
    let mut out = Vec::new();
    for act in [
        Activation::Relu,
        Activation::Elu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Identity,
    ] {
        for (rows, cols) in [(1, 1), (7, 3), (65, 8), (300, 17), (64, 257)] {
            for models in [1, 3] {
                let n = models * rows * cols;
                let y = e.upload(&data(n, 6, -0.9, 0.9)).unwrap();
                let mut g = e.upload(&data(n, 7, -2.0, 2.0)).unwrap();
                // Each model's bias gradient two elements after the last's.
                let db_models = Blocks {
                    count: models,
                    stride: cols + 2,
                };
                let mut db = poisoned(e, models * (cols + 2));
                e.activation_bias_grad(act, &y, &mut g, rows, cols, db_models, &mut db);
                let what = format!("{act:?} {models} x {rows} x {cols}");
                out.push((what.clone(), e.read(&g, n).unwrap()));
                let db = e.read(&db, models * (cols + 2)).unwrap();
                let db = db.chunks(cols + 2).flat_map(|b| b[..cols].to_vec());
                out.push((format!("{what} bias"), db.collect()));
            }
        }
    }
    out
});

parity_test!(bias_grad_matches_cpu, REL, ABS, |e| {
    let mut out = Vec::new();
    for rows in SIZES {
        for cols in SIZES {
            for models in [1, 3] {
                let g = e.upload(&data(models * rows * cols, 8, -1.0, 1.0)).unwrap();
                let mut db = poisoned(e, models * cols);
                let db_models = Blocks {
                    count: models,
                    stride: cols,
                };
                e.bias_grad(&g, rows, cols, db_models, &mut db);
                let sums = e.read(&db, models * cols).unwrap();
                out.push((format!("{models} x {rows} x {cols}"), sums));
            }
        }
    }
    out
});

/// Each model's bias gradient of a batch, computed alone: `(scaled grad, bias sums)` of every
/// block concatenated, or of the whole batch at once.
fn bias_grads<E: Engine>(
    e: &mut E,
    (rows, cols, models): (usize, usize, usize),
    alone: bool,
) -> (Vec<f32>, Vec<f32>) {
    let n = models * rows * cols;
    let (y, g) = (data(n, 6, -0.9, 0.9), data(n, 7, -2.0, 2.0));
    let blocks: Vec<(usize, usize)> = match alone {
        true => (0..models).map(|m| (m, 1)).collect(),
        false => vec![(0, models)],
    };
    let (mut grads, mut sums) = (Vec::new(), Vec::new());
    for (first, count) in blocks {
        let part = |v: &[f32]| v[first * rows * cols..(first + count) * rows * cols].to_vec();
        let y = e.upload(&part(&y)).unwrap();
        let mut g = e.upload(&part(&g)).unwrap();
        let mut db = poisoned(e, count * cols);
        let db_models = Blocks {
            count,
            stride: cols,
        };
        e.activation_bias_grad(Activation::Tanh, &y, &mut g, rows, cols, db_models, &mut db);
        grads.extend(e.read(&g, count * rows * cols).unwrap());
        sums.extend(e.read(&db, count * cols).unwrap());
    }
    (grads, sums)
}

#[test]
fn a_batch_of_bias_gradients_is_each_model_alone_bit_for_bit() {
    let mut c = CpuEngine::new();
    let mut g = gpu_engine();
    for shape in [(1, 1, 4), (64, 9, 3), (300, 17, 2)] {
        assert_eq!(
            bias_grads(&mut c, shape, false),
            bias_grads(&mut c, shape, true),
            "cpu {shape:?}"
        );
        if let Some(g) = g.as_mut() {
            assert_eq!(
                bias_grads(g, shape, false),
                bias_grads(g, shape, true),
                "gpu {shape:?}"
            );
        }
    }
}

parity_test!(sum_squares_and_clipped_steps_match_cpu, REL, ABS, |e| {
    let mut out = Vec::new();
    for n in [1, 7, 65, 300, 5000] {
        let v = data(n, 9, -1.0, 1.0);
        let buf = e.upload(&v).unwrap();
        // Slot 1 of a buffer already holding 0.25 there: the kernel adds.
        let mut acc = e.upload(&[f32::NAN, 0.25]).unwrap();
        e.sum_squares(&buf, n, 1, &mut acc, 1);
        let sums = e.read(&acc, 2).unwrap();
        assert!(sums[0].is_nan(), "sum_squares wrote the wrong slot");
        out.push((format!("sum_squares {n}"), vec![sums[1]]));
        // A norm above the limit scales the gradient; one below leaves it alone.
        let norm = e.upload(&[sums[1]]).unwrap();
        for max_norm in [0.5, 1e6] {
            let mut w = e.upload(&data(n, 10, -1.0, 1.0)).unwrap();
            let clip = Clip {
                sum_squares: &norm,
                max_norm,
            };
            let update = Update {
                optimizer: Optimizer::Sgd,
                learning_rate: 1.0,
                t: 1,
            };
            e.optimizer_step(update, &mut w, &buf, &mut [], n, 1, Some(clip));
            out.push((
                format!("sgd clipped {n} to {max_norm}"),
                e.read(&w, n).unwrap(),
            ));
        }
    }
    out
});

/// Clipped Adam steps of `models` models of `len` parameters each: their norms and parameters,
/// from one batched sum of squares and one batched step, or from each model alone.
fn clipped_steps<E: Engine>(
    e: &mut E,
    (len, models): (usize, usize),
    alone: bool,
) -> (Vec<f32>, Vec<f32>) {
    let update = Update {
        optimizer: Optimizer::Adam,
        learning_rate: 0.1,
        t: 3,
    };
    // Gradients of norms about 2.5 (m + 1) / (models + 1): some models clipped to 1, some not.
    let size = |m: usize| 2.5 * (m + 1) as f32 / ((models + 1) as f32 * (len as f32 / 3.0).sqrt());
    let grads: Vec<f32> = (0..models)
        .flat_map(|m| {
            data(len, 50 + m as u64, -1.0, 1.0)
                .into_iter()
                .map(move |v| v * size(m))
        })
        .collect();
    let params = data(models * len, 60, -1.0, 1.0);
    let blocks: Vec<(usize, usize)> = match alone {
        true => (0..models).map(|m| (m, 1)).collect(),
        false => vec![(0, models)],
    };
    let (mut norms, mut out) = (Vec::new(), Vec::new());
    for (first, count) in blocks {
        let part = |v: &[f32]| v[first * len..(first + count) * len].to_vec();
        let g = e.upload(&part(&grads)).unwrap();
        let mut w = e.upload(&part(&params)).unwrap();
        let mut state = vec![e.zeros(count * len).unwrap(), e.zeros(count * len).unwrap()];
        let mut norm = e.upload(&vec![0.0; count]).unwrap();
        e.sum_squares(&g, len, count, &mut norm, 0);
        let clip = Clip {
            sum_squares: &norm,
            max_norm: 1.0,
        };
        e.optimizer_step(update, &mut w, &g, &mut state, len, count, Some(clip));
        norms.extend(e.read(&norm, count).unwrap());
        out.extend(e.read(&w, count * len).unwrap());
    }
    (norms, out)
}

#[test]
fn a_batch_of_clipped_steps_is_each_model_alone_bit_for_bit() {
    let mut c = CpuEngine::new();
    let mut g = gpu_engine();
    // 70,000 parameters take more workgroups than one reduction pass has partial sums.
    for shape in [(1, 3), (300, 4), (5000, 10), (70_000, 2)] {
        let (cpu, cpu_alone) = (
            clipped_steps(&mut c, shape, false),
            clipped_steps(&mut c, shape, true),
        );
        assert_eq!(cpu, cpu_alone, "cpu {shape:?}");
        let clipped = cpu.0.iter().filter(|&&n| n.sqrt() > 1.0).count();
        assert!(
            shape.0 < 300 || (clipped > 0 && clipped < shape.1),
            "{shape:?}: clipped {clipped} of {}",
            shape.1
        );
        if let Some(g) = g.as_mut() {
            let gpu = clipped_steps(g, shape, false);
            assert_eq!(gpu, clipped_steps(g, shape, true), "gpu {shape:?}");
            assert_close(&format!("norms {shape:?}"), &gpu.0, &cpu.0, REL, ABS);
            assert_close(&format!("params {shape:?}"), &gpu.1, &cpu.1, REL, ABS);
        }
    }
}

/// Reparameterisation of four models (`rows` rows of `latent` each in the buffers; some using
/// fewer) in one batch, or each model alone with its own stream: `(z, eps)` of every model.
fn reparameterized<E: Engine>(
    e: &mut E,
    (rows, latent): (usize, usize),
    alone: bool,
) -> (Vec<f32>, Vec<f32>) {
    let steps = [
        ModelStep {
            rows,
            seed: 7,
            step: 1,
        },
        ModelStep {
            rows: rows / 2,
            seed: 1 << 40 | 3,
            step: 900,
        },
        ModelStep {
            rows: 0,
            seed: 7,
            step: 2,
        },
        ModelStep {
            rows,
            seed: 8,
            step: 1,
        },
    ];
    let block = rows * latent;
    let head = data(steps.len() * 2 * block, 70, -1.0, 1.0);
    let (mut z, mut eps) = (Vec::new(), Vec::new());
    if alone {
        for (m, s) in steps.iter().enumerate() {
            let h = e.upload(&head[m * 2 * block..(m + 1) * 2 * block]).unwrap();
            let (mut zb, mut eb) = (poisoned(e, block), poisoned(e, block));
            let t = one_model(e, s.rows, s.seed, s.step);
            e.reparameterize_models(
                &h,
                s.rows,
                latent,
                Purpose::Noise,
                only_model(&t),
                &mut zb,
                &mut eb,
            );
            let used = s.rows * latent;
            // Padding rows of a batch are 0.
            let pad = |mut v: Vec<f32>| {
                v[used..].fill(0.0);
                v
            };
            z.extend(pad(e.read(&zb, block).unwrap()));
            eps.extend(pad(e.read(&eb, block).unwrap()));
        }
        return (z, eps);
    }
    let table = e
        .upload_indices(&[vec![0; ModelStep::WORDS], ModelStep::table(&steps)].concat())
        .unwrap();
    let models = Models {
        table: &table,
        at: 1,
        count: steps.len(),
    };
    let h = e.upload(&head).unwrap();
    let (mut zb, mut eb) = (poisoned(e, 4 * block), poisoned(e, 4 * block));
    e.reparameterize_models(&h, rows, latent, Purpose::Noise, models, &mut zb, &mut eb);
    (
        e.read(&zb, 4 * block).unwrap(),
        e.read(&eb, 4 * block).unwrap(),
    )
}

#[test]
fn a_batch_of_reparameterisations_is_each_model_alone_bit_for_bit() {
    let mut c = CpuEngine::new();
    let mut g = gpu_engine();
    for shape in [(1, 1), (7, 3), (64, 8), (300, 17)] {
        let cpu = reparameterized(&mut c, shape, false);
        assert_eq!(cpu, reparameterized(&mut c, shape, true), "cpu {shape:?}");
        if let Some(g) = g.as_mut() {
            let gpu = reparameterized(g, shape, false);
            assert_eq!(gpu, reparameterized(g, shape, true), "gpu {shape:?}");
            assert_close(&format!("z {shape:?}"), &gpu.0, &cpu.0, REL, ABS);
            assert_close(&format!("eps {shape:?}"), &gpu.1, &cpu.1, REL, ABS);
        }
    }
}

/// The KL term of four models (`rows` rows of `latent` each in the buffers; some using fewer)
/// in one batch, or each alone: `(dhead, losses)` of every model, losses in slots 1, 4, 7, 10.
fn kl_batch<E: Engine>(
    e: &mut E,
    (rows, latent): (usize, usize),
    alone: bool,
) -> (Vec<f32>, Vec<f32>) {
    let used = [rows, rows / 2, 0, rows.div_ceil(3)];
    let block = rows * latent;
    let head = data(4 * 2 * block, 80, -1.5, 1.5);
    let (eps, dz) = (
        data(4 * block, 81, -2.0, 2.0),
        data(4 * block, 82, -0.1, 0.1),
    );
    let mut losses = e.upload(&[0.5; 12]).unwrap();
    let mut dhead = Vec::new();
    if alone {
        for (m, &n) in used.iter().enumerate() {
            let part = |v: &[f32], w: usize| block_of(v, m, w);
            let (h, ep, d) = (part(&head, 2 * block), part(&eps, block), part(&dz, block));
            let (h, ep, d) = (
                e.upload(&h).unwrap(),
                e.upload(&ep).unwrap(),
                e.upload(&d).unwrap(),
            );
            let mut g = poisoned(e, 2 * block);
            if n > 0 {
                let t = one_model(e, n, 0, 0);
                let slots = (1 + 3 * m, 0);
                e.kl_models(
                    (&h, &ep, &d),
                    (n, latent),
                    0.7,
                    only_model(&t),
                    &mut g,
                    &mut losses,
                    slots,
                );
            }
            let mut got = e.read(&g, 2 * block).unwrap();
            got[2 * n * latent..].fill(0.0); // padding rows of a batch get zero gradients
            dhead.extend(got);
        }
    } else {
        let table = rows_table(e, &used);
        let models = Models {
            table: &table,
            at: 0,
            count: used.len(),
        };
        let (h, ep, d) = (
            e.upload(&head).unwrap(),
            e.upload(&eps).unwrap(),
            e.upload(&dz).unwrap(),
        );
        let mut g = poisoned(e, 4 * 2 * block);
        e.kl_models(
            (&h, &ep, &d),
            (rows, latent),
            0.7,
            models,
            &mut g,
            &mut losses,
            (1, 3),
        );
        dhead = e.read(&g, 4 * 2 * block).unwrap();
    }
    (dhead, e.read(&losses, 12).unwrap())
}

/// The reconstruction loss of four models (`rows` rows of `cols` columns, the first `numeric`
/// of them numeric; some models using fewer rows) in one batch, or each alone: `(grad, losses)`,
/// losses in slots 0, 2, 4, 6. The heads' columns of `grad` stay as they were (here 9).
fn reconstructed<E: Engine>(
    e: &mut E,
    likelihood: Likelihood,
    (rows, cols, numeric): (usize, usize, usize),
    alone: bool,
) -> (Vec<f32>, Vec<f32>) {
    let used = [rows.div_ceil(2), rows, 0, rows - rows / 3];
    let block = rows * cols;
    let o = data(4 * block, 90, -3.0, 3.0);
    let x = data(4 * block, 91, 0.0, 1.0);
    let mut losses = e.upload(&[0.25; 8]).unwrap();
    let mut grad = Vec::new();
    if alone {
        for (m, &n) in used.iter().enumerate() {
            let (ob, xb) = (
                e.upload(&block_of(&o, m, block)).unwrap(),
                e.upload(&block_of(&x, m, block)).unwrap(),
            );
            let mut g = e.upload(&vec![9.0; block]).unwrap();
            if n > 0 {
                let t = one_model(e, n, 0, 0);
                e.reconstruction_models(
                    likelihood,
                    (&ob, &xb),
                    (n, cols, numeric),
                    only_model(&t),
                    &mut g,
                    &mut losses,
                    (2 * m, 0),
                );
            }
            let mut got = e.read(&g, block).unwrap();
            for (i, v) in got.iter_mut().enumerate().skip(n * cols) {
                if i % cols < numeric {
                    *v = 0.0; // padding rows of a batch get zero gradients
                }
            }
            grad.extend(got);
        }
    } else {
        let table = rows_table(e, &used);
        let models = Models {
            table: &table,
            at: 0,
            count: used.len(),
        };
        let (ob, xb) = (e.upload(&o).unwrap(), e.upload(&x).unwrap());
        let mut g = e.upload(&vec![9.0; 4 * block]).unwrap();
        let shape = (rows, cols, numeric);
        e.reconstruction_models(
            likelihood,
            (&ob, &xb),
            shape,
            models,
            &mut g,
            &mut losses,
            (0, 2),
        );
        grad = e.read(&g, 4 * block).unwrap();
    }
    (grad, e.read(&losses, 8).unwrap())
}

#[test]
fn a_batch_of_reconstruction_losses_is_each_model_alone_bit_for_bit() {
    let mut c = CpuEngine::new();
    let mut g = gpu_engine();
    for likelihood in [Likelihood::Gaussian, Likelihood::Bernoulli] {
        for shape in [
            (1, 1, 1),
            (7, 5, 3),
            (64, 8, 8),
            (300, 17, 12),
            (600, 160, 150),
        ] {
            let what = format!("{likelihood:?} {shape:?}");
            let cpu = reconstructed(&mut c, likelihood, shape, false);
            assert_eq!(
                cpu,
                reconstructed(&mut c, likelihood, shape, true),
                "cpu {what}"
            );
            if let Some(g) = g.as_mut() {
                let gpu = reconstructed(g, likelihood, shape, false);
                assert_eq!(gpu, reconstructed(g, likelihood, shape, true), "gpu {what}");
                assert_close(&format!("grad {what}"), &gpu.0, &cpu.0, REL, ABS);
                assert_close(&format!("losses {what}"), &gpu.1, &cpu.1, REL, 1e-2);
            }
        }
    }
}

/// A table of models using `used` rows each (no random streams).
fn rows_table<E: Engine>(e: &mut E, used: &[usize]) -> E::Indices {
    let steps: Vec<ModelStep> = (used.iter())
        .map(|&rows| ModelStep {
            rows,
            seed: 0,
            step: 0,
        })
        .collect();
    e.upload_indices(&ModelStep::table(&steps)).unwrap()
}

/// The table of one model using `rows` rows, with the stream of `seed` at `step`: a batched
/// kernel given it computes that model alone.
fn one_model<E: Engine>(e: &mut E, rows: usize, seed: u64, step: u32) -> E::Indices {
    let step = ModelStep { rows, seed, step };
    e.upload_indices(&ModelStep::table(&[step])).unwrap()
}

/// The first model of `table`, alone.
fn only_model<I>(table: &I) -> Models<'_, I> {
    Models {
        table,
        at: 0,
        count: 1,
    }
}

/// Block `m` of `v`, blocks of `width` values.
fn block_of(v: &[f32], m: usize, width: usize) -> Vec<f32> {
    v[m * width..(m + 1) * width].to_vec()
}

#[test]
fn a_batch_of_kl_terms_is_each_model_alone_bit_for_bit() {
    let mut c = CpuEngine::new();
    let mut g = gpu_engine();
    // 300 x 300 = 90,000 elements a model: more than one reduction pass's partial sums cover.
    for shape in [(1, 1), (7, 3), (64, 8), (300, 17), (300, 300)] {
        let cpu = kl_batch(&mut c, shape, false);
        assert_eq!(cpu, kl_batch(&mut c, shape, true), "cpu {shape:?}");
        if let Some(g) = g.as_mut() {
            let gpu = kl_batch(g, shape, false);
            assert_eq!(gpu, kl_batch(g, shape, true), "gpu {shape:?}");
            assert_close(&format!("dhead {shape:?}"), &gpu.0, &cpu.0, REL, ABS);
            assert_close(&format!("losses {shape:?}"), &gpu.1, &cpu.1, REL, 1e-3);
        }
    }
}

/// Tensors packed in one allocation: each written, read and stepped as a tensor of its own,
/// and the whole stepped at once, give the same values.
#[test]
fn packed_tensors_step_as_a_whole_as_one_by_one() {
    fn case<E: Engine>(e: &mut E) -> Vec<Vec<f32>> {
        let lens = [5, 64, 1, 300];
        let update = Update {
            optimizer: Optimizer::Adam,
            learning_rate: 0.1,
            t: 1,
        };
        let values: Vec<Vec<f32>> = (0..lens.len())
            .map(|k| data(lens[k], 30 + k as u64, -1.0, 1.0))
            .collect();
        let gradients: Vec<Vec<f32>> = (0..lens.len())
            .map(|k| data(lens[k], 40 + k as u64, -1.0, 1.0))
            .collect();
        let mut params = e.zeros_packed(&lens, 1).unwrap();
        let mut grads = e.zeros_packed(&lens, 1).unwrap();
        let mut state: Vec<_> = (0..2).map(|_| e.zeros_packed(&lens, 1).unwrap()).collect();
        for k in 0..lens.len() {
            e.write(&mut params.parts[k], &values[k]).unwrap();
            e.write(&mut grads.parts[k], &gradients[k]).unwrap();
        }
        let mut norm = e.zeros(1).unwrap();
        match (&mut params.whole, &grads.whole) {
            (Some((p, len)), Some((g, _))) => {
                e.sum_squares(g, *len, 1, &mut norm, 0);
                let clip = Clip {
                    sum_squares: &norm,
                    max_norm: 3.0,
                };
                let mut s: Vec<_> = state
                    .iter_mut()
                    .map(|s| s.whole.take().unwrap().0)
                    .collect();
                e.optimizer_step(update, p, g, &mut s, *len, 1, Some(clip));
            }
            _ => {
                for (g, &len) in grads.parts.iter().zip(&lens) {
                    e.sum_squares(g, len, 1, &mut norm, 0);
                }
                let clip = Clip {
                    sum_squares: &norm,
                    max_norm: 3.0,
                };
                let tensors = params.parts.iter_mut().zip(&grads.parts).zip(&lens);
                for ((p, g), &len) in tensors {
                    let mut s: Vec<_> = state.iter_mut().map(|s| s.parts.remove(0)).collect();
                    e.optimizer_step(update, p, g, &mut s, len, 1, Some(clip));
                }
            }
        }
        let mut out: Vec<Vec<f32>> = (0..lens.len())
            .map(|k| e.read(&params.parts[k], lens[k]).unwrap())
            .collect();
        out.push(e.read(&norm, 1).unwrap());
        out
    }
    let Some(mut g) = gpu_engine() else { return };
    let want = case(&mut CpuEngine::new());
    // The norm is above the limit: the step is clipped.
    assert!(want.last().unwrap()[0].sqrt() > 3.0);
    let got = case(&mut g);
    for (k, (g, c)) in got.iter().zip(&want).enumerate() {
        assert_close(&format!("tensor {k}"), g, c, REL, ABS);
    }
}

parity_test!(dropout_and_normal_match_cpu, REL, ABS, |e| {
    let mut out = Vec::new();
    let stream = Stream::new(0xDEAD_BEEF_0123, Purpose::Dropout, 17);
    // Offsets past 2^32 and 2^40, as the dropout masks of deeper layers use.
    for offset in [0u64, 3, (1 << 32) - 6, (257 << 40) + 5] {
        for n in [1, 7, 65, 300, 5000] {
            let mut b = e.upload(&data(n, 10, -1.0, 1.0)).unwrap();
            let t = one_model(e, n, stream.seed, stream.step);
            e.dropout_models(&mut b, n, 0.3, (stream.purpose, offset), only_model(&t));
            out.push((format!("dropout {n} at {offset}"), e.read(&b, n).unwrap()));
            let mut z = poisoned(e, n);
            e.normal(&mut z, n, stream, offset);
            out.push((format!("normal {n} at {offset}"), e.read(&z, n).unwrap()));
        }
    }
    out
});

parity_test!(reparameterize_matches_cpu, REL, ABS, |e| {
    let mut out = Vec::new();
    for rows in SIZES {
        for latent in [1, 7, 65] {
            let head = e.upload(&data(rows * 2 * latent, 11, -2.0, 2.0)).unwrap();
            let (mut z, mut eps) = (poisoned(e, rows * latent), poisoned(e, rows * latent));
            let t = one_model(e, rows, 42, 3);
            let one = only_model(&t);
            e.reparameterize_models(&head, rows, latent, Purpose::Noise, one, &mut z, &mut eps);
            out.push((
                format!("z {rows} x {latent}"),
                e.read(&z, rows * latent).unwrap(),
            ));
            out.push((
                format!("eps {rows} x {latent}"),
                e.read(&eps, rows * latent).unwrap(),
            ));
        }
    }
    out
});

parity_test!(reconstruction_matches_cpu, REL, ABS, |e| {
    let mut out = Vec::new();
    for likelihood in [Likelihood::Bernoulli, Likelihood::Gaussian] {
        for rows in SIZES {
            for cols in SIZES {
                let n = rows * cols;
                let o = e.upload(&data(n, 12, -4.0, 4.0)).unwrap();
                let x = e.upload(&data(n, 13, 0.0, 1.0)).unwrap();
                // Every column numeric; or all but the last two (left as they were).
                let numeric = if cols > 2 { cols - 2 } else { cols };
                let mut grad = e.upload(&vec![7.0; n]).unwrap();
                let mut losses = e.upload(&[f32::NAN, 0.5]).unwrap();
                let t = one_model(e, rows, 0, 0);
                e.reconstruction_models(
                    likelihood,
                    (&o, &x),
                    (rows, cols, numeric),
                    only_model(&t),
                    &mut grad,
                    &mut losses,
                    (1, 0),
                );
                let label = format!("{likelihood:?} {rows} x {cols} ({numeric} numeric)");
                let g = e.read(&grad, n).unwrap();
                for (i, v) in g.iter().enumerate() {
                    assert_eq!(*v == 7.0, i % cols >= numeric, "{label}: element {i}");
                }
                out.push((format!("grad {label}"), g));
                let l = e.read(&losses, 2).unwrap();
                assert!(l[0].is_nan(), "reconstruction wrote the wrong slot");
                out.push((format!("loss {label}"), vec![l[1]]));
            }
        }
    }
    out
});

parity_test!(softmax_heads_match_cpu, REL, ABS, |e| {
    let mut out = Vec::new();
    for rows in SIZES {
        // A numeric column, then heads of 1, 4 and 7 columns (13 columns).
        let (cols, spans) = (13, [1u32, 1, 2, 4, 6, 7]);
        let n = rows * cols;
        let o = e.upload(&data(n, 21, -6.0, 6.0)).unwrap();
        let mut targets = vec![0.0; n];
        for r in 0..rows {
            for h in spans.chunks_exact(2) {
                targets[r * cols + (h[0] + r as u32 % h[1]) as usize] = 1.0;
            }
        }
        let x = e.upload(&targets).unwrap();
        let groups = e.upload_indices(&spans).unwrap();
        let mut grad = e.upload(&vec![7.0; n]).unwrap();
        let mut losses = e.upload(&[f32::NAN, 0.5]).unwrap();
        let t = one_model(e, rows, 0, 0);
        let shape = ((rows, cols), (&groups, 3));
        e.softmax_cross_entropy_models(
            (&o, &x),
            shape.0,
            shape.1,
            only_model(&t),
            &mut grad,
            &mut losses,
            (1, 0),
        );
        let grad = e.read(&grad, n).unwrap();
        for r in 0..rows {
            assert_eq!(
                grad[r * cols],
                7.0,
                "a column outside the heads was written"
            );
        }
        out.push((format!("grad {rows} rows"), grad));
        let l = e.read(&losses, 2).unwrap();
        assert!(l[0].is_nan(), "softmax_cross_entropy wrote the wrong slot");
        out.push((format!("loss {rows} rows"), vec![l[1]]));
    }
    out
});

parity_test!(learned_variance_loss_matches_cpu, REL, ABS, |e| {
    let mut out = Vec::new();
    for rows in SIZES {
        for cols in SIZES {
            let n = rows * cols;
            let o = e.upload(&data(n, 17, -3.0, 3.0)).unwrap();
            let x = e.upload(&data(n, 18, -3.0, 3.0)).unwrap();
            // Log-variances across the clamp: some below -10 and above 6 (their gradient is 0).
            let numeric = if cols > 2 { cols - 2 } else { cols };
            let s = e.upload(&data(numeric, 19, -12.0, 8.0)).unwrap();
            let mut grad = e.upload(&vec![7.0; n]).unwrap();
            let mut terms = poisoned(e, rows * numeric);
            let mut losses = e.upload(&[f32::NAN, 0.5]).unwrap();
            let t = one_model(e, rows, 0, 0);
            e.gaussian_learned_models(
                (&o, &x, &s),
                (rows, cols, numeric),
                0,
                only_model(&t),
                (&mut grad, &mut terms),
                &mut losses,
                (1, 0),
            );
            let label = format!("{rows} x {cols} ({numeric} numeric)");
            let g = e.read(&grad, n).unwrap();
            for (i, v) in g.iter().enumerate() {
                assert_eq!(*v == 7.0, i % cols >= numeric, "{label}: element {i}");
            }
            out.push((format!("grad {label}"), g));
            out.push((
                format!("dlogvar terms {label}"),
                e.read(&terms, rows * numeric).unwrap(),
            ));
            let l = e.read(&losses, 2).unwrap();
            assert!(l[0].is_nan(), "gaussian_learned wrote the wrong slot");
            out.push((format!("loss {label}"), vec![l[1]]));
        }
    }
    out
});

parity_test!(kl_and_l2_match_cpu, REL, ABS, |e| {
    let mut out = Vec::new();
    for rows in SIZES {
        for latent in [1, 7, 65] {
            let n = rows * latent;
            let head = e.upload(&data(2 * n, 14, -2.0, 2.0)).unwrap();
            let eps = e.upload(&data(n, 15, -2.0, 2.0)).unwrap();
            let dz = e.upload(&data(n, 16, -0.1, 0.1)).unwrap();
            let mut dhead = poisoned(e, 2 * n);
            let mut losses = e.upload(&[0.0]).unwrap();
            let t = one_model(e, rows, 0, 0);
            let inputs = (&head, &eps, &dz);
            e.kl_models(
                inputs,
                (rows, latent),
                0.7,
                only_model(&t),
                &mut dhead,
                &mut losses,
                (0, 0),
            );
            out.push((
                format!("dhead {rows} x {latent}"),
                e.read(&dhead, 2 * n).unwrap(),
            ));
            out.push((format!("kl {rows} x {latent}"), e.read(&losses, 1).unwrap()));
        }
    }
    for n in [1, 7, 65, 300, 5000] {
        let w = e.upload(&data(n, 17, -1.0, 1.0)).unwrap();
        let mut grad = e.upload(&data(n, 18, -1.0, 1.0)).unwrap();
        let mut losses = e.upload(&[1.0]).unwrap();
        e.l2(&w, &mut grad, n, Blocks::ONE, 0.01, &mut losses, (0, 0));
        out.push((format!("l2 grad {n}"), e.read(&grad, n).unwrap()));
        out.push((format!("l2 loss {n}"), e.read(&losses, 1).unwrap()));
    }
    out
});

parity_test!(every_optimizer_matches_cpu, REL, ABS, |e| {
    let mut out = Vec::new();
    for optimizer in [
        Optimizer::Sgd,
        Optimizer::Momentum,
        Optimizer::Adagrad,
        Optimizer::RmsProp,
        Optimizer::Adam,
    ] {
        for n in [1, 7, 65, 300, 5000] {
            let mut param = e.upload(&data(n, 19, -1.0, 1.0)).unwrap();
            let mut state: Vec<_> = (0..optimizer.state_tensors())
                .map(|_| e.zeros(n).unwrap())
                .collect();
            for t in 1..=3 {
                let grad = e.upload(&data(n, 20 + u64::from(t), -1.0, 1.0)).unwrap();
                let update = Update {
                    optimizer,
                    learning_rate: 0.01,
                    t,
                };
                e.optimizer_step(update, &mut param, &grad, &mut state, n, 1, None);
            }
            out.push((format!("{optimizer:?} {n}"), e.read(&param, n).unwrap()));
            for (k, s) in state.iter().enumerate() {
                out.push((
                    format!("{optimizer:?} {n} state {k}"),
                    e.read(s, n).unwrap(),
                ));
            }
        }
    }
    out
});

/// Two tiles merged in turn into fresh lists: `queries` rows from 40 against rows 0..refs, then
/// rows refs..2 refs (the first tile holds the queries themselves, which must be skipped).
fn knn_merge_case<E: Engine>(
    e: &mut E,
    queries: usize,
    refs: usize,
    k: usize,
) -> (Vec<f32>, Vec<u32>) {
    let (n, d) = (2 * refs, 5);
    let x = data(n * d, 11, -1.0, 1.0);
    let row = |i: usize| &x[i * d..(i + 1) * d];
    let dot = |a: usize, b: usize| row(a).iter().zip(row(b)).map(|(u, v)| u * v).sum::<f32>();
    let norms: Vec<f32> = (0..n).map(|i| dot(i, i)).collect();
    let norms_buf = e.upload(&norms).unwrap();
    let mut best_d = e.upload(&vec![f32::INFINITY; queries * k]).unwrap();
    let mut best_i = e.upload_indices(&vec![u32::MAX; queries * k]).unwrap();
    let q_start = 40;
    for r_start in [0, refs] {
        let gram: Vec<f32> = (0..queries * refs)
            .map(|i| dot(q_start + i / refs, r_start + i % refs))
            .collect();
        let gram = e.upload(&gram).unwrap();
        let tile = KnnTile {
            queries,
            q_start,
            refs,
            r_start,
            k,
        };
        e.knn_merge(&gram, &norms_buf, tile, &mut best_d, &mut best_i);
    }
    let d = e.read(&best_d, queries * k).unwrap();
    let i = e.read_indices(&best_i, queries * k).unwrap();
    (d, i)
}

#[test]
fn knn_merge_matches_cpu() {
    let Some(mut g) = gpu_engine() else { return };
    let mut c = CpuEngine::new();
    for (queries, refs, k) in [(1, 65, 1), (7, 65, 5), (65, 300, 5), (65, 300, 64)] {
        let what = format!("knn_merge queries {queries} refs {refs} k {k}");
        let (gd, gi) = knn_merge_case(&mut g, queries, refs, k);
        let (cd, ci) = knn_merge_case(&mut c, queries, refs, k);
        assert_close(&what, &gd, &cd, REL, ABS);
        assert_eq!(gi, ci, "{what}: indices");
        assert!(ci.iter().all(|&i| i != u32::MAX), "{what}: lists filled");
        let own = |q: usize| ci[q * k..(q + 1) * k].contains(&((40 + q) as u32));
        assert!(
            !(0..queries).any(own),
            "{what}: a row is never its own neighbour"
        );
    }
}

#[test]
fn philox_stream_equals_rust_bit_for_bit() {
    let Some(mut g) = gpu_engine() else { return };
    for stream in [
        Stream::new(0, Purpose::Noise, 0),
        Stream::new(u64::MAX, Purpose::OutputShuffle, u32::MAX),
        Stream::new(0x0123_4567_89AB_CDEF, Purpose::Dropout, 1234),
    ] {
        for offset in [0u64, 1, (1 << 32) - 3, (3 << 40) + 7] {
            let got = g.random_words(stream, offset, 1000).unwrap();
            let want: Vec<u32> = (0..1000).map(|i| stream.u32_at(offset + i)).collect();
            assert_eq!(got, want, "{stream:?} at offset {offset}");
        }
    }
}

/// Rows of a correlated 2-D Gaussian plus three noisy functions of it.
fn table(rows: usize) -> ndarray::Array2<f32> {
    let s = Stream::new(77, Purpose::Init, 1);
    ndarray::Array2::from_shape_fn((rows, 5), |(i, j)| {
        let a = s.normal_at(2 * i as u64);
        let b = 0.6 * a + 0.8 * s.normal_at(2 * i as u64 + 1);
        match j {
            0 => a,
            1 => b,
            2 => a * b,
            3 => (a - b).tanh(),
            _ => 2.0 + 0.1 * s.normal_at(10_000 + i as u64),
        }
    })
}

fn small_config() -> VaeConfig {
    VaeConfig {
        hidden: vec![16, 8],
        latent: Latent::Count(3),
        activation: Activation::Elu,
        epochs: 40,
        min_steps: 0,
        batch_size: 16,
        likelihood: Likelihood::GaussianLearned,
        dropout: 0.1,
        l2: 1e-3,
        seed: 5,
        ..VaeConfig::default()
    }
}

/// [`table`] with a sixth column of two values (0 and 1, tied to the first two columns): a
/// yes/no variable, modelled by a two-way head.
fn table_with_a_yes_no_column(rows: usize) -> ndarray::Array2<f32> {
    let x = table(rows);
    let yes = x.map_axis(ndarray::Axis(1), |r| f32::from(u8::from(r[0] + r[1] > 0.4)));
    ndarray::concatenate(
        ndarray::Axis(1),
        &[x.view(), yes.insert_axis(ndarray::Axis(1)).view()],
    )
    .unwrap()
}

#[test]
fn a_whole_fit_and_generation_match_cpu() {
    let Some(gpu) = gpu() else { return };
    let x = table_with_a_yes_no_column(70);
    let cfg = small_config();
    let on_gpu = Vae::fit_on(&Device::Gpu(gpu.clone()), x.view(), &cfg).unwrap();
    let on_cpu = Vae::fit_on(&Device::Cpu, x.view(), &cfg).unwrap();
    let (hg, hc) = (&on_gpu.history().epochs, &on_cpu.history().epochs);
    assert_eq!(hg.len(), hc.len());
    // Rounding differences compound over 200 optimizer steps; the losses stay within 0.1%.
    for (epoch, (g, c)) in hg.iter().zip(hc).enumerate() {
        for (what, a, b) in [
            ("reconstruction", g.reconstruction, c.reconstruction),
            ("kl", g.kl, c.kl),
            ("l2", g.l2, c.l2),
        ] {
            assert!(
                (a - b).abs() <= 1e-3 * b.abs() + 1e-6,
                "epoch {epoch} {what}: gpu {a}, cpu {b}"
            );
        }
    }
    // The same model generates the same rows on either engine.
    let prior_gpu = on_cpu
        .generate_on(&Device::Gpu(gpu.clone()), 500, 9)
        .unwrap();
    let prior_cpu = on_cpu.generate_on(&Device::Cpu, 500, 9).unwrap();
    assert_close(
        "prior rows",
        prior_gpu.as_slice().unwrap(),
        prior_cpu.as_slice().unwrap(),
        1e-4,
        1e-4,
    );
    // Every generation mode, at a temperature other than 1.
    for generation in EVERY_GENERATION {
        let sampling = Sampling {
            generation,
            temperature: 0.8,
            ..Sampling::default()
        };
        let draw = |device: &Device| {
            on_cpu
                .sample_on(device, x.view(), 300, 9, &sampling)
                .unwrap()
        };
        let (rows_gpu, src_gpu) = draw(&Device::Gpu(gpu.clone()));
        let (rows_cpu, src_cpu) = draw(&Device::Cpu);
        assert_eq!(src_gpu, src_cpu, "{generation:?} sources");
        assert_close(
            &format!("{generation:?} rows"),
            rows_gpu.as_slice().unwrap(),
            rows_cpu.as_slice().unwrap(),
            1e-4,
            1e-4,
        );
    }
    // And the GPU-trained model's rows are close to the CPU-trained model's.
    let rows_gpu = on_gpu.generate_on(&Device::Gpu(gpu), 500, 9).unwrap();
    let worst = rows_gpu
        .iter()
        .zip(prior_cpu.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-2, "rows of the two fits differ by up to {worst}");
}

/// 300 draws of `vae` from the class rows `x` in mode `generation` at temperature 0.8, seed 9,
/// on the GPU engine and on the CPU.
fn draws_on_both(
    gpu: &Gpu,
    vae: &Vae,
    x: ndarray::ArrayView2<'_, f32>,
    generation: Generation,
) -> (ndarray::Array2<f32>, ndarray::Array2<f32>) {
    let sampling = Sampling {
        generation,
        temperature: 0.8,
        ..Sampling::default()
    };
    let draw = |device: &Device| vae.sample_on(device, x, 300, 9, &sampling).unwrap().0;
    (draw(&Device::Gpu(gpu.clone())), draw(&Device::Cpu))
}

#[test]
fn draws_at_a_point_mass_match_cpu() {
    let Some(gpu) = gpu() else { return };
    // Column 1 is exactly 0.5 where column 0 is small (about 60% of rows), spread elsewhere.
    let mut x = table(70);
    for mut row in x.rows_mut() {
        row[1] = if row[0] < 0.25 {
            0.5
        } else {
            1.0 + row[1].abs()
        };
    }
    let vae = Vae::fit_on(&Device::Cpu, x.view(), &small_config()).unwrap();
    let point = vae.columns().stats()[1]
        .point
        .expect("column 1 has a point mass");
    for generation in EVERY_GENERATION {
        let (on_gpu, on_cpu) = draws_on_both(&gpu, &vae, x.view(), generation);
        let at = |rows: &ndarray::Array2<f32>, i: usize| rows[[i, 1]] == point.value;
        let on_point = (0..300).filter(|&i| at(&on_cpu, i)).count();
        assert!(
            on_point > 100,
            "{generation:?}: {on_point} of 300 at the point"
        );
        // Each engine measures its own reach from its own calibration draws: a row can land on
        // the point on one engine only where a draw and the reach meet within rounding.
        let (flips, same): (Vec<usize>, Vec<usize>) =
            (0..300).partition(|&i| at(&on_gpu, i) != at(&on_cpu, i));
        assert!(
            flips.len() <= 2,
            "{generation:?}: {} rows differ at the point",
            flips.len()
        );
        let pick = |rows: &ndarray::Array2<f32>| -> Vec<f32> {
            same.iter().flat_map(|&i| rows.row(i).to_vec()).collect()
        };
        assert_close(
            &format!("{generation:?} rows"),
            &pick(&on_gpu),
            &pick(&on_cpu),
            1e-4,
            1e-4,
        );
    }
}

#[test]
fn draws_keeping_a_relation_match_cpu() {
    let Some(gpu) = gpu() else { return };
    // Column 4 becomes the sum of columns 0 and 1 in every row.
    let mut x = table(70);
    for mut row in x.rows_mut() {
        row[4] = row[0] + row[1];
    }
    let vae = Vae::fit_on(&Device::Cpu, x.view(), &small_config()).unwrap();
    assert_eq!(vae.columns().relations().map(|r| r.len()), Some(1));
    for generation in EVERY_GENERATION {
        let (on_gpu, on_cpu) = draws_on_both(&gpu, &vae, x.view(), generation);
        for row in on_gpu.rows() {
            let off = (row[4] - row[0] - row[1]).abs();
            assert!(off < 1e-4, "{generation:?}: the sum is off by {off}");
        }
        let flat = |rows: &ndarray::Array2<f32>| rows.iter().copied().collect::<Vec<f32>>();
        assert_close(
            &format!("{generation:?} rows"),
            &flat(&on_gpu),
            &flat(&on_cpu),
            1e-4,
            1e-4,
        );
    }
}

#[test]
fn a_fit_with_categorical_heads_and_its_draws_match_cpu() {
    let Some(gpu) = gpu() else { return };
    let x = table(70);
    // Two categorical columns, related to the numeric ones: 3 and 4 categories.
    let codes = ndarray::Array2::from_shape_fn((70, 2), |(i, j)| {
        let v = x[[i, 0]] + x[[i, 1]];
        if j == 0 {
            u32::from(v > -0.5) + u32::from(v > 0.5)
        } else {
            (i % 4) as u32
        }
    });
    let cfg = small_config();
    let on_gpu =
        Vae::fit_mixed_on(&Device::Gpu(gpu.clone()), x.view(), codes.view(), &cfg).unwrap();
    let on_cpu = Vae::fit_mixed_on(&Device::Cpu, x.view(), codes.view(), &cfg).unwrap();
    for (epoch, (g, c)) in on_gpu
        .history()
        .epochs
        .iter()
        .zip(&on_cpu.history().epochs)
        .enumerate()
    {
        assert!(
            (g.reconstruction - c.reconstruction).abs() <= 1e-3 * c.reconstruction.abs() + 1e-6,
            "epoch {epoch}: gpu {}, cpu {}",
            g.reconstruction,
            c.reconstruction
        );
    }
    // The same model draws the same rows and categories on either engine, in every mode.
    for generation in EVERY_GENERATION {
        for category in [CategoryDraw::Sample, CategoryDraw::Argmax] {
            let sampling = Sampling {
                generation,
                temperature: 0.8,
                category,
                ..Sampling::default()
            };
            let draw = |device: &Device| {
                on_cpu
                    .sample_mixed_on(device, x.view(), codes.view(), 300, 9, &sampling)
                    .unwrap()
            };
            let (rows_gpu, codes_gpu, src_gpu) = draw(&Device::Gpu(gpu.clone()));
            let (rows_cpu, codes_cpu, src_cpu) = draw(&Device::Cpu);
            let what = format!("{generation:?} {category:?}");
            assert_eq!(src_gpu, src_cpu, "{what} sources");
            assert_close(
                &format!("{what} rows"),
                rows_gpu.as_slice().unwrap(),
                rows_cpu.as_slice().unwrap(),
                1e-4,
                1e-4,
            );
            // A category can flip only where two logits or a draw and a boundary meet within
            // rounding: at most a row or two of 300.
            let differ = codes_gpu
                .rows()
                .into_iter()
                .zip(codes_cpu.rows())
                .filter(|(a, b)| a != b)
                .count();
            assert!(differ <= 2, "{what}: {differ} rows of categories differ");
        }
    }
}

#[test]
fn same_seed_same_bits_on_the_gpu() {
    let Some(gpu) = gpu() else { return };
    let x = table(50);
    let device = Device::Gpu(gpu);
    let fit = || Vae::fit_on(&device, x.view(), &small_config()).unwrap();
    let (a, b) = (fit(), fit());
    assert_eq!(a.history().epochs.len(), b.history().epochs.len());
    for (ea, eb) in a.history().epochs.iter().zip(&b.history().epochs) {
        assert_eq!(ea.total.to_bits(), eb.total.to_bits());
    }
    assert_eq!(a.decoder()[0].w, b.decoder()[0].w);
    let ga = a.generate_on(&device, 100, 3).unwrap();
    assert_eq!(ga, b.generate_on(&device, 100, 3).unwrap());
    assert_ne!(ga, a.generate_on(&device, 100, 4).unwrap());
}

/// The application's own device, opened with wgpu directly (on the adapter `Gpu::new` picks).
fn own_device() -> Option<(wgpu::Device, wgpu::Queue)> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let wanted = gpu()?.adapter().name.clone();
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    let adapter = adapters.into_iter().find(|a| a.get_info().name == wanted)?;
    pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default())).ok()
}

#[test]
fn an_application_device_and_two_devices_side_by_side() {
    let Some(shared) = gpu() else { return };
    let Some((device, queue)) = own_device() else {
        panic!("wgpu found an adapter for Gpu::new but not for the application");
    };
    let theirs = Gpu::from_device(device, queue);
    let x = table(60);
    let cfg = small_config();
    // Two fits at once, each on its own device, from two threads.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| Vae::fit_on(&Device::Gpu(shared.clone()), x.view(), &cfg).unwrap());
        let b = s.spawn(|| Vae::fit_on(&Device::Gpu(theirs.clone()), x.view(), &cfg).unwrap());
        (a.join().unwrap(), b.join().unwrap())
    });
    // Same adapter, same kernels, same seed: the same bits.
    assert_eq!(a.decoder()[0].w, b.decoder()[0].w);
    assert_eq!(
        a.generate_on(&Device::Gpu(shared), 50, 1).unwrap(),
        b.generate_on(&Device::Gpu(theirs), 50, 1).unwrap()
    );
}

#[test]
fn a_device_lost_during_a_fit_is_an_error_within_seconds() {
    let Some(_) = gpu() else { return };
    let Some((device, queue)) = own_device() else {
        panic!("wgpu found an adapter for Gpu::new but not for the application");
    };
    let lost = device.clone();
    let engine = Device::Gpu(Gpu::from_device(device, queue));
    let x = table(200);
    let cfg = VaeConfig {
        epochs: 100_000,
        min_steps: 0,
        ..small_config()
    };
    let (done, result) = std::sync::mpsc::channel();
    let fit = std::thread::spawn(move || {
        let _ = done.send(Vae::fit_on(&engine, x.view(), &cfg).map(|_| ()));
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    // What a driver reset does to a running program, on purpose.
    lost.destroy();
    let outcome = result
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the fit returns within 20 s of losing its device");
    let e = outcome.expect_err("a fit on a destroyed device cannot succeed");
    eprintln!("device lost: {e}");
    assert!(matches!(e, smrt::Error::Gpu { .. }), "{e}");
    fit.join().expect("no panic in the fitting thread");
}

#[test]
fn the_device_counts_dispatches_per_epoch_alike_and_submits_per_chunk_of_steps() {
    let Some(_) = gpu() else { return };
    // A device of its own: the shared one counts the other tests' work too.
    let g = Gpu::new().unwrap();
    let x = table(64);
    let counted = |epochs| {
        let cfg = VaeConfig {
            epochs,
            min_steps: 0,
            ..small_config()
        };
        let before = g.counts();
        Vae::fit_on(&Device::Gpu(g.clone()), x.view(), &cfg).unwrap();
        g.counts() - before
    };
    // 4, 8 and 16 steps, and 300: more than the 256 steps of one chunk.
    let (one, two, four, many) = (counted(1), counted(2), counted(4), counted(75));
    // Every epoch sends the same work: the increments are proportional.
    let per_epoch = two.dispatches - one.dispatches;
    assert!(per_epoch > 0);
    assert_eq!(four.dispatches - two.dispatches, 2 * per_epoch);
    // The host waits for the device once per chunk of steps, not once per epoch.
    assert!(one.submissions > 0);
    assert_eq!(
        four.submissions, one.submissions,
        "one chunk whatever the epochs"
    );
    assert!(
        many.submissions > four.submissions,
        "a second chunk is a second read-back"
    );
}

/// Dropout masks of three models (seeds 4, 5, 6 at steps 7, 8, 9), `len` values each, from
/// element `offset` of their streams: in one batch, or each alone.
fn dropped<E: Engine>(e: &mut E, len: usize, offset: u64, alone: bool) -> Vec<f32> {
    let steps: Vec<ModelStep> = (0..3)
        .map(|m| ModelStep {
            rows: 1,
            seed: 4 + m as u64,
            step: 7 + m as u32,
        })
        .collect();
    let values = data(3 * len, 90, 0.5, 1.5);
    if alone {
        return (0..3)
            .flat_map(|m| {
                let mut buf = e.upload(&block_of(&values, m, len)).unwrap();
                let t = one_model(e, 1, steps[m].seed, steps[m].step);
                e.dropout_models(
                    &mut buf,
                    len,
                    0.3,
                    (Purpose::Dropout, offset),
                    only_model(&t),
                );
                e.read(&buf, len).unwrap()
            })
            .collect();
    }
    let table = e.upload_indices(&ModelStep::table(&steps)).unwrap();
    let models = Models {
        table: &table,
        at: 0,
        count: 3,
    };
    let mut buf = e.upload(&values).unwrap();
    e.dropout_models(&mut buf, len, 0.3, (Purpose::Dropout, offset), models);
    e.read(&buf, 3 * len).unwrap()
}

#[test]
fn a_batch_of_dropout_masks_is_each_model_alone_bit_for_bit() {
    let mut c = CpuEngine::new();
    let mut g = gpu_engine();
    for (len, offset) in [(1, 0), (65, 3), (300 * 17, 1 << 41)] {
        let cpu = dropped(&mut c, len, offset, false);
        assert_eq!(cpu, dropped(&mut c, len, offset, true), "cpu {len}");
        // Some of every model's values dropped, and the rest scaled by 1 / 0.7.
        if len > 1 {
            assert!(cpu.contains(&0.0) && cpu.iter().any(|&v| v > 0.5 / 0.7));
        }
        if let Some(g) = g.as_mut() {
            let gpu = dropped(g, len, offset, false);
            assert_eq!(gpu, dropped(g, len, offset, true), "gpu {len}");
            assert_close(&format!("dropout {len}"), &gpu, &cpu, REL, ABS);
        }
    }
}

/// The L2 penalty of three models' weights (`len` each, copies `len + 5` apart): in one batch,
/// or each alone. Returns the gradients and the losses (slots 2, 5, 8).
fn penalised<E: Engine>(e: &mut E, len: usize, alone: bool) -> (Vec<f32>, Vec<f32>) {
    let stride = len + 5;
    let (w, g) = (
        data(3 * stride, 91, -1.0, 1.0),
        data(3 * stride, 92, -0.5, 0.5),
    );
    let mut losses = e.upload(&[0.25; 9]).unwrap();
    let mut grads = Vec::new();
    if alone {
        for m in 0..3 {
            let (wb, mut gb) = (
                e.upload(&block_of(&w, m, stride)).unwrap(),
                e.upload(&block_of(&g, m, stride)).unwrap(),
            );
            e.l2(
                &wb,
                &mut gb,
                len,
                Blocks::ONE,
                0.1,
                &mut losses,
                (2 + 3 * m, 0),
            );
            grads.extend(e.read(&gb, len).unwrap());
        }
    } else {
        let (wb, mut gb) = (e.upload(&w).unwrap(), e.upload(&g).unwrap());
        let models = Blocks { count: 3, stride };
        e.l2(&wb, &mut gb, len, models, 0.1, &mut losses, (2, 3));
        let all = e.read(&gb, 3 * stride).unwrap();
        grads.extend((0..3).flat_map(|m| all[m * stride..][..len].to_vec()));
    }
    (grads, e.read(&losses, 9).unwrap())
}

#[test]
fn a_batch_of_l2_penalties_is_each_model_alone_bit_for_bit() {
    let mut c = CpuEngine::new();
    let mut g = gpu_engine();
    for len in [1, 65, 300 * 300] {
        let cpu = penalised(&mut c, len, false);
        assert_eq!(cpu, penalised(&mut c, len, true), "cpu {len}");
        if let Some(g) = g.as_mut() {
            let gpu = penalised(g, len, false);
            assert_eq!(gpu, penalised(g, len, true), "gpu {len}");
            assert_close(&format!("l2 grads {len}"), &gpu.0, &cpu.0, REL, ABS);
            assert_close(&format!("l2 losses {len}"), &gpu.1, &cpu.1, REL, 1e-3);
        }
    }
}

/// The learned-variance loss of four models (`rows` rows of `cols` columns in the buffers, the
/// first `numeric` Gaussian; some models using fewer rows), log-variances `numeric + 3` apart:
/// in one batch, or each alone. Returns the gradients, terms and losses (slots 0, 3, 6, 9).
fn learned_batch<E: Engine>(
    e: &mut E,
    (rows, cols, numeric): (usize, usize, usize),
    alone: bool,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let used = [rows, rows / 2, 0, rows.div_ceil(3)];
    let (block, terms_block, lv_stride) = (rows * cols, rows * numeric, numeric + 3);
    let (o, x) = (
        data(4 * block, 93, -2.0, 2.0),
        data(4 * block, 94, -2.0, 2.0),
    );
    let logvar = data(4 * lv_stride, 95, -12.0, 8.0); // some beyond the clamp
    let mut losses = e.upload(&[0.5; 12]).unwrap();
    let (mut grads, mut terms) = (Vec::new(), Vec::new());
    if alone {
        for (m, &n) in used.iter().enumerate() {
            let (ob, xb) = (
                e.upload(&block_of(&o, m, block)).unwrap(),
                e.upload(&block_of(&x, m, block)).unwrap(),
            );
            let s = e.upload(&logvar[m * lv_stride..][..numeric]).unwrap();
            let mut g = poisoned(e, block);
            let mut t = poisoned(e, terms_block);
            if n > 0 {
                let table = one_model(e, n, 0, 0);
                e.gaussian_learned_models(
                    (&ob, &xb, &s),
                    (n, cols, numeric),
                    0,
                    only_model(&table),
                    (&mut g, &mut t),
                    &mut losses,
                    (3 * m, 0),
                );
            }
            let mut got = e.read(&g, block).unwrap();
            // Padding rows of a batch get zero gradients in the Gaussian columns; the others
            // are left as they were (NaN here).
            for (i, v) in got.iter_mut().enumerate().skip(n * cols) {
                if i % cols < numeric {
                    *v = 0.0;
                }
            }
            grads.extend(got);
            let mut got = e.read(&t, terms_block).unwrap();
            got[n * numeric..].fill(0.0);
            terms.extend(got);
        }
    } else {
        let table = rows_table(e, &used);
        let models = Models {
            table: &table,
            at: 0,
            count: 4,
        };
        let (ob, xb, s) = (
            e.upload(&o).unwrap(),
            e.upload(&x).unwrap(),
            e.upload(&logvar).unwrap(),
        );
        let mut g = poisoned(e, 4 * block);
        let mut t = poisoned(e, 4 * terms_block);
        e.gaussian_learned_models(
            (&ob, &xb, &s),
            (rows, cols, numeric),
            lv_stride,
            models,
            (&mut g, &mut t),
            &mut losses,
            (0, 3),
        );
        grads = e.read(&g, 4 * block).unwrap();
        terms = e.read(&t, 4 * terms_block).unwrap();
    }
    (grads, terms, e.read(&losses, 12).unwrap())
}

#[test]
fn a_batch_of_learned_variance_losses_is_each_model_alone_bit_for_bit() {
    let mut c = CpuEngine::new();
    let mut g = gpu_engine();
    for shape in [(1, 1, 1), (7, 5, 3), (64, 8, 8), (300, 300, 250)] {
        let cpu = learned_batch(&mut c, shape, false);
        assert_eq!(
            format!("{cpu:?}"),
            format!("{:?}", learned_batch(&mut c, shape, true)),
            "cpu {shape:?}"
        );
        if let Some(g) = g.as_mut() {
            let gpu = learned_batch(g, shape, false);
            let gpu_alone = learned_batch(g, shape, true);
            assert_eq!(
                format!("{gpu:?}"),
                format!("{gpu_alone:?}"),
                "gpu {shape:?}"
            );
            assert_close(
                &format!("grads {shape:?}"),
                &nan_free(&gpu.0),
                &nan_free(&cpu.0),
                REL,
                ABS,
            );
            assert_close(&format!("terms {shape:?}"), &gpu.1, &cpu.1, REL, ABS);
            assert_close(&format!("losses {shape:?}"), &gpu.2, &cpu.2, REL, 1e-2);
        }
    }
}

/// `v` with NaN (columns a kernel leaves as they are) replaced by 0, for a tolerance check.
fn nan_free(v: &[f32]) -> Vec<f32> {
    v.iter()
        .map(|&x| if x.is_nan() { 0.0 } else { x })
        .collect()
}

/// Softmax heads (widths 3, 1 and 4 from column 2 of rows of 10) of four models, some using
/// fewer rows: in one batch, or each alone. Returns the gradients and losses (slots 1, 4, 7, 10).
fn softmax_batch<E: Engine>(e: &mut E, rows: usize, alone: bool) -> (Vec<f32>, Vec<f32>) {
    let cols = 10;
    let spans = [2u32, 3, 5, 1, 6, 4];
    let used = [rows, rows / 2, 0, rows.div_ceil(3)];
    let block = rows * cols;
    let o = data(4 * block, 96, -3.0, 3.0);
    // One-hot targets in each head.
    let x: Vec<f32> = (0..4 * block)
        .map(|i| {
            let (r, c) = (i / cols, i % cols);
            let hit = spans
                .chunks(2)
                .any(|s| c as u32 == s[0] + (r as u32 % s[1]));
            f32::from(u8::from(hit))
        })
        .collect();
    let groups = e.upload_indices(&spans).unwrap();
    let mut losses = e.upload(&[0.5; 12]).unwrap();
    let mut grads = Vec::new();
    if alone {
        for (m, &n) in used.iter().enumerate() {
            let (ob, xb) = (
                e.upload(&block_of(&o, m, block)).unwrap(),
                e.upload(&block_of(&x, m, block)).unwrap(),
            );
            let mut g = poisoned(e, block);
            if n > 0 {
                let t = one_model(e, n, 0, 0);
                e.softmax_cross_entropy_models(
                    (&ob, &xb),
                    (n, cols),
                    (&groups, 3),
                    only_model(&t),
                    &mut g,
                    &mut losses,
                    (1 + 3 * m, 0),
                );
            }
            let mut got = e.read(&g, block).unwrap();
            for (i, v) in got.iter_mut().enumerate().skip(n * cols) {
                if (2..10).contains(&(i % cols)) {
                    *v = 0.0;
                }
            }
            grads.extend(got);
        }
    } else {
        let table = rows_table(e, &used);
        let models = Models {
            table: &table,
            at: 0,
            count: 4,
        };
        let (ob, xb) = (e.upload(&o).unwrap(), e.upload(&x).unwrap());
        let mut g = poisoned(e, 4 * block);
        e.softmax_cross_entropy_models(
            (&ob, &xb),
            (rows, cols),
            (&groups, 3),
            models,
            &mut g,
            &mut losses,
            (1, 3),
        );
        grads = e.read(&g, 4 * block).unwrap();
    }
    (grads, e.read(&losses, 12).unwrap())
}

#[test]
fn a_batch_of_softmax_heads_is_each_model_alone_bit_for_bit() {
    let mut c = CpuEngine::new();
    let mut g = gpu_engine();
    for rows in [1, 7, 64, 3000] {
        let cpu = softmax_batch(&mut c, rows, false);
        let cpu_alone = softmax_batch(&mut c, rows, true);
        assert_eq!(format!("{cpu:?}"), format!("{cpu_alone:?}"), "cpu {rows}");
        if let Some(g) = g.as_mut() {
            let gpu = softmax_batch(g, rows, false);
            let gpu_alone = softmax_batch(g, rows, true);
            assert_eq!(format!("{gpu:?}"), format!("{gpu_alone:?}"), "gpu {rows}");
            assert_close(
                &format!("grads {rows}"),
                &nan_free(&gpu.0),
                &nan_free(&cpu.0),
                REL,
                ABS,
            );
            assert_close(&format!("losses {rows}"), &gpu.1, &cpu.1, REL, 1e-2);
        }
    }
}
