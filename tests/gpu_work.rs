//! How much work a fit sends the GPU: dispatches per optimiser step, counted on whatever adapter
//! wgpu finds (lavapipe in CI; the counts do not depend on the adapter).

use smrt::engine::{Counts, Gpu};
use smrt::rng::{Purpose, Stream};
use smrt::{Device, FitJob, Vae, VaeConfig};

/// The GPU, or `None` with a notice where wgpu finds no adapter at all (never with
/// `SMRT_TEST_REQUIRE_GPU` set, as CI sets it).
fn gpu() -> Option<Gpu> {
    match Gpu::new() {
        Ok(g) => Some(g),
        Err(smrt::Error::NoGpu(why)) => {
            assert!(
                std::env::var_os("SMRT_TEST_REQUIRE_GPU").is_none(),
                "SMRT_TEST_REQUIRE_GPU is set but there is no GPU: {why}"
            );
            eprintln!("GPU work counts skipped: {why}");
            None
        }
        Err(e) => panic!("opening the GPU failed: {e}"),
    }
}

/// Dispatches and submissions per optimiser step of fits of `cfg` on `rows` rows of 8 columns:
/// fits of one and of three epochs, the difference per step (so fixed costs drop out).
fn per_step(g: &Gpu, rows: usize, cfg: &VaeConfig) -> (f64, f64) {
    let s = Stream::new(4, Purpose::Init, 0);
    let x = ndarray::Array2::from_shape_fn((rows, 8), |(i, j)| s.normal_at((i * 8 + j) as u64));
    let device = Device::Gpu(g.clone());
    let counted = |epochs| -> Counts {
        let cfg = VaeConfig {
            epochs,
            min_steps: 0,
            ..cfg.clone()
        };
        let before = g.counts();
        Vae::fit_on(&device, x.view(), &cfg).unwrap();
        g.counts() - before
    };
    let (one, three) = (counted(1), counted(3));
    let steps = 2.0 * rows.div_ceil(cfg.batch_size.min(rows)) as f64;
    (
        (three.dispatches - one.dispatches) as f64 / steps,
        (three.submissions - one.submissions) as f64 / steps,
    )
}

#[test]
fn the_default_model_takes_at_most_29_dispatches_per_step() {
    let Some(g) = gpu() else { return };
    // 58 before the parameters were packed and clipping joined the optimiser step: the target
    // is half of that. Submissions: one per epoch for the loss read-back and one for the shuffle.
    let (dispatches, submissions) = per_step(&g, 320, &VaeConfig::default());
    assert!(dispatches <= 29.0, "{dispatches} dispatches per step");
    assert!(submissions < 1.0, "{submissions} submissions per step");
    // Deeper models, other optimisers and no clipping: still one optimiser dispatch per step,
    // so the count grows only with the layers' own kernels.
    let deeper = VaeConfig {
        hidden: vec![32, 16],
        ..VaeConfig::default()
    };
    let (deep, _) = per_step(&g, 320, &deeper);
    let unclipped = VaeConfig {
        clip_norm: None,
        ..deeper.clone()
    };
    let (plain, _) = per_step(&g, 320, &unclipped);
    eprintln!(
        "dispatches per step: default {dispatches}, hidden [32, 16] {deep}, unclipped {plain}"
    );
    assert!(plain < deep, "clipping costs dispatches: {plain} vs {deep}");
    assert!(
        deep - plain <= 4.0,
        "clipping took {} dispatches",
        deep - plain
    );
}

#[test]
fn the_layers_of_ten_models_take_one_dispatch_per_kernel() {
    use smrt::engine::{Engine, Epilogue, MatMul};
    let Some(g) = gpu() else { return };
    let mut e = g.engine().unwrap();
    // Ten models' forward product of a 64-row batch through a 16 -> 32 layer, with its bias.
    let s = MatMul {
        batch: 10,
        strides: None,
        ..MatMul::new(64, 16, 32)
    };
    let x = e.upload(&vec![0.5; 10 * 64 * 16]).unwrap();
    let w = e.upload(&vec![0.25; 10 * 16 * 32]).unwrap();
    let bias = e.upload(&vec![1.0; 10 * 32]).unwrap();
    let mut y = e.zeros(10 * 64 * 32).unwrap();
    let before = g.counts();
    e.matmul(
        &x,
        &w,
        &mut y,
        s,
        Epilogue::BiasActivation(&bias, smrt::Activation::Relu),
    );
    let out = e.read(&y, 10 * 64 * 32).unwrap();
    assert_eq!((g.counts() - before).dispatches, 1);
    // 16 * 0.5 * 0.25 + 1 in every element of every model's output.
    assert!(out.iter().all(|&v| v == 3.0));
    // Their backward step at the nonlinearity and bias gradients: one dispatch, 64 rows each.
    let mut grad = e.upload(&vec![1.0; 10 * 64 * 32]).unwrap();
    let mut db = e.zeros(10 * 32).unwrap();
    let before = g.counts();
    let db_models = smrt::engine::Blocks {
        count: 10,
        stride: 32,
    };
    e.activation_bias_grad(
        smrt::Activation::Relu,
        &y,
        &mut grad,
        64,
        32,
        db_models,
        &mut db,
    );
    let sums = e.read(&db, 10 * 32).unwrap();
    assert_eq!((g.counts() - before).dispatches, 1);
    assert!(sums.iter().all(|&v| v == 64.0));
    // Their gradient norms (a reduction and its finish) and one clipped Adam step for all ten.
    let (len, params) = (16 * 32, 10 * 16 * 32);
    let mut w = e.upload(&vec![0.0; params]).unwrap();
    let dw = e.upload(&vec![1.0; params]).unwrap();
    let mut state = vec![e.zeros(params).unwrap(), e.zeros(params).unwrap()];
    let mut norms = e.zeros(10).unwrap();
    let before = g.counts();
    e.sum_squares(&dw, len, 10, &mut norms, 0);
    let clip = smrt::engine::Clip {
        sum_squares: &norms,
        max_norm: 1.0,
    };
    let update = smrt::engine::Update {
        optimizer: smrt::Optimizer::Adam,
        learning_rate: 0.1,
        t: 1,
    };
    e.optimizer_step(update, &mut w, &dw, &mut state, len, 10, Some(clip));
    let norms = e.read(&norms, 10).unwrap();
    assert_eq!((g.counts() - before).dispatches, 3);
    assert!(norms.iter().all(|&v| v == len as f32));
    // Their reparameterisation, each model with its own stream and rows.
    use smrt::engine::{ModelStep, Models};
    let steps: Vec<ModelStep> = (0..10)
        .map(|m| ModelStep {
            rows: 64 - m,
            seed: m as u64,
            step: 1,
        })
        .collect();
    let table = e.upload_indices(&ModelStep::table(&steps)).unwrap();
    let models = Models {
        table: &table,
        at: 0,
        count: 10,
    };
    let head = e.upload(&vec![0.0; 10 * 64 * 16]).unwrap();
    let (mut z, mut eps) = (e.zeros(10 * 64 * 8).unwrap(), e.zeros(10 * 64 * 8).unwrap());
    let before = g.counts();
    e.reparameterize_models(&head, 64, 8, Purpose::Noise, models, &mut z, &mut eps);
    let z = e.read(&z, 10 * 64 * 8).unwrap();
    assert_eq!((g.counts() - before).dispatches, 1);
    // Model 9 uses 55 rows: its last 9 rows are padding.
    assert!(z[9 * 512 + 55 * 8..].iter().all(|&v| v == 0.0));
    assert!(z[9 * 512..9 * 512 + 55 * 8].iter().any(|&v| v != 0.0));
    // Their KL terms: a reduction and its finish for all ten, each sum in its model's slot.
    let dz = e.zeros(10 * 64 * 8).unwrap();
    let (mut dhead, mut losses) = (e.zeros(10 * 64 * 16).unwrap(), e.zeros(30).unwrap());
    let before = g.counts();
    let inputs = (&head, &eps, &dz);
    e.kl_models(
        inputs,
        (64, 8),
        1.0,
        models,
        &mut dhead,
        &mut losses,
        (0, 3),
    );
    let losses = e.read(&losses, 30).unwrap();
    assert_eq!((g.counts() - before).dispatches, 2);
    // mu = logvar = 0: KL 0 in every model's slot, nothing anywhere else.
    assert!(losses.iter().all(|&v| v == 0.0));
}

#[test]
fn ten_models_trained_together_take_no_more_dispatches_per_step_than_one_alone() {
    let Some(g) = gpu() else { return };
    let device = Device::Gpu(g.clone());
    let s = Stream::new(5, Purpose::Init, 0);
    // Ten classes of 40 to 130 rows: 2 to 5 batches of 32 an epoch.
    let data: Vec<_> = (0..10)
        .map(|m| {
            let rows = 40 + 10 * m;
            ndarray::Array2::from_shape_fn((rows, 8), |(i, j)| {
                s.normal_at((m * 10_000 + i * 8 + j) as u64)
            })
        })
        .collect();
    let config = |epochs, seed| VaeConfig {
        epochs,
        min_steps: 0,
        seed,
        ..VaeConfig::default()
    };
    // Fits of one and of three epochs: the difference per step, so fixed costs drop out. The
    // largest class takes 5 steps an epoch, alone or with the others.
    let counted = |epochs: usize, together: bool| -> Counts {
        let before = g.counts();
        if together {
            let jobs: Vec<FitJob<'_>> = (data.iter().enumerate())
                .map(|(m, x)| FitJob::new(x.view(), config(epochs, m as u64)))
                .collect();
            assert_eq!(Vae::fit_many(&device, &jobs).unwrap().len(), 10);
        } else {
            Vae::fit_on(&device, data[9].view(), &config(epochs, 9)).unwrap();
        }
        g.counts() - before
    };
    let per_step = |together| {
        let (one, three) = (counted(1, together), counted(3, together));
        (three.dispatches - one.dispatches) as f64 / 10.0
    };
    let (alone, ten) = (per_step(false), per_step(true));
    let ten_total = counted(3, true);
    eprintln!(
        "dispatches per step: one model alone {alone}, ten together {ten} ({} in all for 3 epochs, {} submissions)",
        ten_total.dispatches, ten_total.submissions
    );
    assert!(
        ten <= alone,
        "ten models together: {ten} a step, one alone {alone}"
    );
    // One after another, the ten would take a step's dispatches for each of 75 steps.
    assert!((ten_total.dispatches as f64) < 75.0 * alone / 2.0);
}
