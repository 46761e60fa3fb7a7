//! Independent work spread over the cores.

/// The number of cores to use: asked of the system once (on Linux the answer reads cgroup
/// files, which costs more than a small parallel step).
pub(crate) fn threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |t| t.get()))
}

/// `f` over `items` on up to one thread per core; results in the order of `items`.
pub(crate) fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    let threads = threads().min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                results
                    .lock()
                    .expect("no worker panics while holding the lock")[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .expect("workers finished")
        .into_iter()
        .map(|r| r.expect("every item was processed"))
        .collect()
}

/// `f` on every item of `items`, on up to one thread per core.
pub(crate) fn for_each_mut<T: Send>(items: &mut [T], f: impl Fn(&mut T) + Sync) {
    use std::sync::Mutex;

    let threads = threads().min(items.len());
    if threads <= 1 {
        return items.iter_mut().for_each(f);
    }
    let queue = Mutex::new(items.iter_mut());
    let next = || {
        queue
            .lock()
            .expect("no worker panics while holding the lock")
            .next()
    };
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while let Some(item) = next() {
                    f(item);
                }
            });
        }
    });
}

/// Appends `rows` rows of `width` values to `data`, `fill(r, row)` writing row `r`. Parts of
/// rows are filled on separate threads, straight into `data`'s new memory.
pub(crate) fn extend_rows(
    data: &mut Vec<f32>,
    rows: usize,
    width: usize,
    fill: impl Fn(usize, &mut [f32]) + Sync,
) {
    use std::mem::MaybeUninit;

    if width == 0 {
        return;
    }
    let len = rows * width;
    data.reserve(len);
    let part_rows = (1 << 16) / width + 1;
    let spare = &mut data.spare_capacity_mut()[..len];
    let mut parts: Vec<(usize, &mut [MaybeUninit<f32>])> = spare
        .chunks_mut(part_rows * width)
        .enumerate()
        .map(|(p, values)| (p * part_rows, values))
        .collect();
    for_each_mut(&mut parts, |(first, values)| {
        // Zeroed first (in cache, on this thread), so `fill` gets initialised values.
        values.iter_mut().for_each(|v| {
            v.write(0.0);
        });
        // SAFETY: every element was initialised just above; `MaybeUninit<f32>` has the layout
        // of `f32`.
        let values =
            unsafe { &mut *(std::ptr::from_mut::<[MaybeUninit<f32>]>(*values) as *mut [f32]) };
        for (r, row) in (*first..).zip(values.chunks_exact_mut(width)) {
            fill(r, row);
        }
    });
    // SAFETY: the `len` values after the old length were all initialised above, and `reserve`
    // made room for them.
    unsafe { data.set_len(data.len() + len) };
}
