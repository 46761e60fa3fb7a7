//! Training and generation throughput of both engines (the GPU engine on whatever adapter wgpu
//! finds: lavapipe on a machine without a GPU). Training on the reference shape: 10,000 rows x 64 features,
//! hidden 128, latent 16, batch 256, sigmoid hidden units, Bernoulli likelihood, Adam — the model
//! of `shared/bench/torch_vae.py` (PyTorch) with its defaults.
//!
//! and on a wide one (hidden 512).
//!
//! Generation: 1,000,000 rows from the prior with the trained decoder (16 -> 128 -> 64).
//!
//! `cargo bench --bench train` (throughput in rows/s: elements = rows x epochs, or rows generated).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ndarray::Array2;
use smrt::engine::Gpu;
use smrt::rng::{Purpose, Stream};
use smrt::{Activation, Device, Latent, Likelihood, Scaling, Vae, VaeConfig};

fn config(hidden: usize, epochs: usize) -> VaeConfig {
    VaeConfig {
        hidden: vec![hidden],
        latent: Latent::Count(16),
        activation: Activation::Sigmoid,
        likelihood: Likelihood::Bernoulli,
        scaling: Scaling::None,
        beta: 1.0,
        clip_norm: None,
        batch_size: 256,
        learning_rate: 1e-3,
        epochs,
        min_steps: 0, // exactly `epochs` epochs: the throughput counts them
        ..VaeConfig::default()
    }
}

/// The CPU engine, and the GPU engine if wgpu finds any adapter, with their labels.
fn devices() -> Vec<(String, Device)> {
    let mut out = vec![("cpu".to_string(), Device::Cpu)];
    if let Ok(g) = Gpu::new() {
        out.push((format!("gpu ({})", g.adapter().name), Device::Gpu(g)));
    }
    out
}

fn bench_train(c: &mut Criterion) {
    let (rows, features, epochs) = (10_000, 64, 2);
    let s = Stream::new(1, Purpose::Generate, 0);
    let x = Array2::from_shape_fn((rows, features), |(i, j)| {
        s.uniform_at((i * features + j) as u64)
    });
    let devices = devices();
    let mut g = c.benchmark_group("train");
    g.sample_size(10);
    g.throughput(Throughput::Elements((rows * epochs) as u64));
    for hidden in [128, 512] {
        let cfg = config(hidden, epochs);
        for (label, device) in &devices {
            let id = format!("{label} 10000x64 h{hidden} l16 b256");
            g.bench_function(id, |b| {
                b.iter(|| Vae::fit_on(device, x.view(), &cfg).expect("fit"))
            });
        }
    }
    g.finish();

    let vae = Vae::fit_on(&Device::Cpu, x.view(), &config(128, 1)).expect("fit");
    let n = 1_000_000;
    let mut g = c.benchmark_group("generate");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n as u64));
    for (label, device) in &devices {
        g.bench_function(format!("{label} decoder 16-128-64"), |b| {
            b.iter(|| vae.generate_on(device, n, 3).expect("generate"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_train);
criterion_main!(benches);
