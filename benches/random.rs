//! Random over-sampling (plain, and with shrinkage 1) and random under-sampling on the data of
//! the SMOTE benchmark: 100,000 rows x 32 Gaussian features, majority:minority 20:1, balanced
//! fully (90,476 copies; under-sampling keeps 2 x 4,762 rows).
//!
//! `cargo bench --bench random` (time = one `fit_resample`, output matrix included).

use criterion::{criterion_group, criterion_main, Criterion};
use ndarray::Array2;
use smrt::rng::{Purpose, Stream};
use smrt::{Balancer, RandomOverSampler, RandomUnderSampler};

fn bench_random(c: &mut Criterion) {
    let (rows, features) = (100_000, 32);
    let minority = (rows as f64 / 21.0).round() as usize;
    let s = Stream::new(0, Purpose::Init, 0);
    let x = Array2::from_shape_fn((rows, features), |(i, j)| {
        s.normal_at((i * features + j) as u64) + if i < minority { 1.0 } else { 0.0 }
    });
    let y: Vec<u8> = (0..rows).map(|i| u8::from(i < minority)).collect();
    let samplers: [(&str, Box<dyn Balancer<u8>>); 3] = [
        ("over", Box::new(RandomOverSampler::new())),
        (
            "over shrinkage 1",
            Box::new(RandomOverSampler::new().shrinkage(1.0)),
        ),
        ("under", Box::new(RandomUnderSampler::new())),
    ];
    let mut g = c.benchmark_group("random");
    g.sample_size(20);
    for (name, sampler) in &samplers {
        g.bench_function(format!("{name} 100000x32 1:20"), |b| {
            b.iter(|| sampler.fit_resample(x.view(), &y).expect("resample"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_random);
criterion_main!(benches);
