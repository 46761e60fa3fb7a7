//! Quick timing of the reference training shape (see benches/train.rs).
use ndarray::Array2;
use smrt::rng::{Purpose, Stream};
use smrt::{Activation, Latent, Likelihood, Scaling, Vae, VaeConfig};
fn main() {
    let (rows, features, epochs) = (10_000, 64, 5);
    let s = Stream::new(1, Purpose::Generate, 0);
    let x = Array2::from_shape_fn((rows, features), |(i, j)| {
        s.uniform_at((i * features + j) as u64)
    });
    let cfg = VaeConfig {
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
    };
    let t = std::time::Instant::now();
    let v = Vae::fit(x.view(), &cfg).unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "train rows_per_s={:.0} last_loss={:.3}",
        (rows * epochs) as f64 / secs,
        v.history().epochs.last().unwrap().total
    );
    let t = std::time::Instant::now();
    let g = v.generate(1_000_000, 1).unwrap();
    println!(
        "gen rows_per_s={:.0} {}",
        1e6 / t.elapsed().as_secs_f64(),
        g.nrows()
    );
}
