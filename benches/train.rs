//! Training throughput of the CPU engine on the reference shape: 10,000 rows x 64 features,
//! hidden 128, latent 16, batch 256, sigmoid hidden units, Bernoulli likelihood, Adam — the model
//! of `shared/bench/torch_vae.py` (PyTorch) with its defaults.
//!
//! Generation: 1,000,000 rows from the prior with the trained decoder (16 -> 128 -> 64).
//!
//! `cargo bench --bench train` (throughput in rows/s: elements = rows x epochs, or rows generated).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ndarray::Array2;
use smrt::rng::{Purpose, Stream};
use smrt::{Activation, Latent, Likelihood, Scaling, Vae, VaeConfig};

fn config(epochs: usize) -> VaeConfig {
    VaeConfig {
        hidden: vec![128],
        latent: Latent::Count(16),
        activation: Activation::Sigmoid,
        likelihood: Likelihood::Bernoulli,
        scaling: Scaling::None,
        beta: 1.0,
        clip_norm: None,
        batch_size: 256,
        learning_rate: 1e-3,
        epochs,
        ..VaeConfig::default()
    }
}

fn bench_train(c: &mut Criterion) {
    let (rows, features, epochs) = (10_000, 64, 2);
    let s = Stream::new(1, Purpose::Generate, 0);
    let x = Array2::from_shape_fn((rows, features), |(i, j)| {
        s.uniform_at((i * features + j) as u64)
    });
    let cfg = config(epochs);
    let mut g = c.benchmark_group("train");
    g.sample_size(10);
    g.throughput(Throughput::Elements((rows * epochs) as u64));
    g.bench_function("cpu 10000x64 h128 l16 b256", |b| {
        b.iter(|| Vae::fit(x.view(), &cfg).expect("fit"))
    });
    g.finish();

    let vae = Vae::fit(x.view(), &config(1)).expect("fit");
    let n = 1_000_000;
    let mut g = c.benchmark_group("generate");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("cpu decoder 16-128-64", |b| {
        b.iter(|| vae.generate(n, 3).expect("generate"))
    });
    g.finish();
}

criterion_group!(benches, bench_train);
criterion_main!(benches);
