//! Random over-sampling (plain, and with shrinkage 1) and random under-sampling on the data of
//! the SMOTE benchmark: 100,000 rows x 32 Gaussian features, majority:minority 20:1, balanced
//! fully (90,476 copies; under-sampling keeps 2 x 4,762 rows).
//!
//! `cargo bench --bench random` (time = one `fit_resample`, output matrix included).

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use smrt::{Balancer, RandomOverSampler, RandomUnderSampler};

fn bench_random(c: &mut Criterion) {
    let (x, y) = common::imbalanced(100_000, 32);
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
