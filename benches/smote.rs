//! SMOTE on the data of `shared/bench/smote_speed.py`: 100,000 rows x 32 Gaussian features,
//! majority:minority 20:1 (minority shifted by 1 on every feature), k = 5, balanced fully
//! (90,476 synthetic rows). Both engines (the GPU engine on whatever adapter wgpu finds).
//!
//! Also the neighbour search alone: of the minority class, and of one class of 100,000 rows; and
//! SMOTE-NC with 8 of the 32 columns categorical.
//!
//! `cargo bench --bench smote` (throughput in synthetic rows/s, rows/s for the 100,000-row
//! search; time = one `fit_resample` or one search).

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ndarray::Array2;
use smrt::engine::Gpu;
use smrt::knn::nearest_neighbors;
use smrt::rng::{below, Purpose, Stream};
use smrt::{Balancer, Categories, Device, Smote};

fn bench_smote(c: &mut Criterion) {
    let (rows, features) = (100_000, 32);
    let (x, y) = common::imbalanced(rows, features);
    let minority = y.iter().filter(|&&l| l == 1).count();
    let s = Stream::new(0, Purpose::Init, 0);
    let mut devices = vec![("cpu".to_string(), Device::Cpu)];
    if let Ok(g) = Gpu::new() {
        devices.push((format!("gpu ({})", g.adapter().name), Device::Gpu(g)));
    }
    let mut g = c.benchmark_group("smote");
    g.sample_size(10);
    g.throughput(Throughput::Elements((rows - 2 * minority) as u64));
    let minority_x = x.slice(ndarray::s![..minority, ..]).to_owned();
    for (label, device) in devices {
        g.bench_function(format!("{label} neighbours only 4762x32 k5"), |b| {
            b.iter(|| nearest_neighbors(&device, minority_x.view(), 5).expect("knn"))
        });
        let smote = Smote::new().device(device);
        g.bench_function(format!("{label} 100000x32 1:20 k5"), |b| {
            b.iter(|| smote.fit_resample(x.view(), &y).expect("smote"))
        });
    }
    // The whole search of one class of 100,000 rows (the CPU engine only: lavapipe would take
    // minutes per run).
    let big = Array2::from_shape_fn((rows, features), |(i, j)| {
        s.normal_at((i * features + j) as u64)
    });
    g.throughput(Throughput::Elements(rows as u64));
    g.bench_function("cpu neighbours only 100000x32 k5", |b| {
        b.iter(|| nearest_neighbors(&Device::Cpu, big.view(), 5).expect("knn"))
    });
    g.finish();

    // SMOTE-NC on the data of `scripts/smotenc_speed.py`: the same rows, the last 8 of the 32
    // columns categorical (5 values each, drawn uniformly), on the CPU engine.
    let (numeric, categorical) = (24, 8);
    let xn = x.slice(ndarray::s![.., ..numeric]).to_owned();
    let codes = Array2::from_shape_fn((rows, categorical), |(i, j)| {
        below(s.block((i * categorical + j) as u64)[0], 5)
    });
    let levels = vec![5u32; categorical];
    let mut g = c.benchmark_group("smote-nc");
    g.sample_size(10);
    g.throughput(Throughput::Elements((rows - 2 * minority) as u64));
    let smote = Smote::new().device(Device::Cpu);
    g.bench_function("cpu 100000x(24+8) 1:20 k5", |b| {
        b.iter(|| {
            let categories = Categories {
                codes: codes.view(),
                levels: &levels,
            };
            smote
                .fit_resample_mixed(xn.view(), categories, &y)
                .expect("smote-nc")
        })
    });
    g.finish();
}

criterion_group!(benches, bench_smote);
criterion_main!(benches);
