//! Progress on stderr while classes train, and the summary table after.

use std::collections::BTreeMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use smrt::{EpochStats, Resampled};

/// One bar per class (epochs, loss, rows/s). Draws nothing when stderr is not a terminal or
/// when quiet.
pub struct Progress {
    bars: MultiProgress,
    by_class: Mutex<BTreeMap<String, ProgressBar>>,
    epochs: u64,
    rows: BTreeMap<String, usize>,
}

impl Progress {
    pub fn new(quiet: bool, epochs: usize, rows: BTreeMap<String, usize>) -> Self {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        Progress {
            bars: MultiProgress::with_draw_target(target),
            by_class: Mutex::new(BTreeMap::new()),
            epochs: epochs as u64,
            rows,
        }
    }

    /// Records one finished epoch of `class`.
    pub fn epoch(&self, class: &str, epoch: usize, stats: &EpochStats) {
        let mut bars = self.by_class.lock().expect("no panics while drawing");
        let bar = bars.entry(class.to_string()).or_insert_with(|| {
            let bar = self.bars.add(ProgressBar::new(self.epochs));
            bar.set_style(
                ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} epochs  {msg}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(class.to_string());
            bar
        });
        let rows = self.rows.get(class).copied().unwrap_or(0) as f64;
        let speed = if stats.seconds > 0.0 {
            rows / stats.seconds
        } else {
            0.0
        };
        bar.set_position(epoch as u64 + 1);
        bar.set_message(format!("loss {:.4}  {speed:.0} rows/s", stats.total));
    }

    /// Removes the bars.
    pub fn finish(&self) {
        for bar in self
            .by_class
            .lock()
            .expect("no panics while drawing")
            .values()
        {
            bar.finish_and_clear();
        }
    }
}

/// The table printed after balancing: per class, rows before and after, epochs, final loss,
/// training time, engine.
pub fn summary<L: smrt::Label + std::fmt::Display>(
    y: &[L],
    out: &Resampled<L>,
    engine: &str,
) -> String {
    let mut before: BTreeMap<&L, usize> = BTreeMap::new();
    for l in y {
        *before.entry(l).or_default() += 1;
    }
    let after = out.class_counts();
    let mut s = format!(
        "{:<16} {:>8} {:>8} {:>7} {:>11} {:>9}  engine\n",
        "class", "before", "after", "epochs", "final loss", "time"
    );
    for (class, n) in &after {
        let model = out.models.get(*class);
        let (epochs, loss, time) = match model.map(|m| m.history()) {
            Some(h) if !h.epochs.is_empty() => (
                h.epochs.len().to_string(),
                format!("{:.4}", h.epochs[h.epochs.len() - 1].total),
                format!("{:.3} s", h.epochs.iter().map(|e| e.seconds).sum::<f64>()),
            ),
            _ => ("-".into(), "-".into(), "-".into()),
        };
        let had = before.get(class).copied().unwrap_or(0);
        let on = if model.is_some() { engine } else { "-" };
        s += &format!("{class:<16} {had:>8} {n:>8} {epochs:>7} {loss:>11} {time:>9}  {on}\n");
    }
    s
}
