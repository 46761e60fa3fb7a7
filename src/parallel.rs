//! Independent work spread over the cores.
//!
//! On rayon's pool: its threads start once and wait for work, where a scope of new threads
//! costs tens of microseconds a call, more than some of the steps spread here.

use rayon::prelude::*;

/// The number of threads work is spread over.
pub(crate) fn threads() -> usize {
    rayon::current_num_threads()
}

/// `f` over `items` on the pool; results in the order of `items`.
pub(crate) fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    // One item a task: items are few and each is large (a block, a class, a part of rows).
    items.par_iter().with_max_len(1).map(&f).collect()
}

/// `f` on every item of `items`, on the pool.
pub(crate) fn for_each_mut<T: Send>(items: &mut [T], f: impl Fn(&mut T) + Sync) {
    items.par_iter_mut().with_max_len(1).for_each(&f);
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
