//! Matrix-product throughput (GFLOP/s) of both engines at the shapes of VAE layers: a batch of
//! 256 rows through a `w x w` layer (`Y = X W`, and the weight gradient `dW = X^T dY`), for
//! widths 16 to 1024; and, on a hardware GPU only, a 4096^3 product to compare with cuBLAS.
//!
//! `cargo bench --bench kernels` (throughput in elements = floating-point operations).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use smrt::engine::{CpuEngine, Engine, Epilogue, Gpu, MatMul};

/// Products per measured iteration: the GPU engine records them all, then waits once.
const REPEAT: usize = 10;

fn run<E: Engine>(e: &mut E, s: MatMul) -> impl FnMut() + '_ {
    let a = e.upload(&vec![0.5; s.m * s.k]).expect("upload");
    let b = e.upload(&vec![0.25; s.k * s.n]).expect("upload");
    let mut c = e.zeros(s.m * s.n).expect("zeros");
    move || {
        for _ in 0..REPEAT {
            e.matmul(&a, &b, &mut c, s, Epilogue::None);
        }
        e.read(&c, 1).expect("read");
    }
}

fn shapes(batch: usize) -> Vec<(String, MatMul)> {
    let mut out = Vec::new();
    for w in [16, 64, 256, 512, 1024] {
        let fwd = MatMul {
            m: batch,
            k: w,
            n: w,
            a_t: false,
            b_t: false,
            batch: 1,
            strides: None,
        };
        let dw = MatMul {
            m: w,
            k: batch,
            n: w,
            a_t: true,
            b_t: false,
            batch: 1,
            strides: None,
        };
        out.push((format!("forward {batch}x{w}x{w}"), fwd));
        out.push((format!("weight-grad {w}x{batch}x{w}"), dw));
    }
    out
}

fn bench_matmul(c: &mut Criterion) {
    let gpu = Gpu::new().ok();
    let gpu_name = gpu.as_ref().map(|g| format!("gpu ({})", g.adapter().name));
    let mut group = c.benchmark_group("matmul");
    group.sample_size(10);
    for (name, s) in shapes(256) {
        group.throughput(Throughput::Elements((2 * s.m * s.k * s.n * REPEAT) as u64));
        let mut cpu = CpuEngine::new();
        let mut f = run(&mut cpu, s);
        group.bench_function(BenchmarkId::new("cpu", &name), |b| b.iter(&mut f));
        if let (Some(g), Some(label)) = (&gpu, &gpu_name) {
            let mut e = g.engine().expect("engine");
            let mut f = run(&mut e, s);
            group.bench_function(BenchmarkId::new(label, &name), |b| b.iter(&mut f));
        }
    }
    group.finish();

    if let Some(g) = gpu.filter(|g| !g.adapter().software) {
        let n = 4096;
        let s = MatMul {
            m: n,
            k: n,
            n,
            a_t: false,
            b_t: false,
            batch: 1,
            strides: None,
        };
        let mut group = c.benchmark_group("matmul-large");
        group.sample_size(10);
        group.throughput(Throughput::Elements((2 * n * n * n * REPEAT) as u64));
        let mut e = g.engine().expect("engine");
        let mut f = run(&mut e, s);
        group.bench_function(format!("gpu ({}) 4096^3", g.adapter().name), |b| {
            b.iter(&mut f)
        });
        group.finish();
    }
}

criterion_group!(benches, bench_matmul);
criterion_main!(benches);
