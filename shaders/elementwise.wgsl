// Element-wise kernels and small reductions over rows. One invocation per element, in a
// grid-stride loop so any length fits the dispatch limits. WG is injected from Rust.

struct ElementParams {
    len: u32,
    cols: u32,
    start: u32,
    act: u32,
    slot: u32,
    value: f32,
    models: u32,
    model_stride: u32,    // elements between models' blocks of a batched output
}

@group(0) @binding(0) var<uniform> p: ElementParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read> idx: array<u32>;
@group(0) @binding(4) var<storage, read_write> sums: array<f32>;

fn stride(groups: vec3<u32>) -> u32 {
    return groups.x * WG;
}

// dst[i] = value
@compute @workgroup_size(WG)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    for (var i = gid.x; i < p.len; i += stride(groups)) {
        dst[i] = p.value;
    }
}

// dst[i] = src[i]
@compute @workgroup_size(WG)
fn copy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    for (var i = gid.x; i < p.len; i += stride(groups)) {
        dst[i] = src[i];
    }
}

// dst[r, :] = src[idx[start + r], :] for the rows whose index falls in the window of src bound to
// this dispatch: rows slot .. slot + arrayLength(src) / cols. A source larger than one binding is
// gathered window by window; each dispatch writes only its window's rows.
@compute @workgroup_size(WG)
fn gather_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let window = arrayLength(&src) / p.cols;
    for (var i = gid.x; i < p.len; i += stride(groups)) {
        let r = i / p.cols;
        let j = i % p.cols;
        let row = idx[p.start + r];
        if row >= p.slot && row - p.slot < window {
            dst[i] = src[(row - p.slot) * p.cols + j];
        }
    }
}

// A layer's backward step at its nonlinearity, over the rows of `models` models stored one after
// another (len / (cols * models) rows each): dst *= act'(.), from the activation's output
// y = src; then each model's bias gradient sums[m * model_stride + j] = sum_r dst[m, r, j]. One
// invocation per column of each model.
@compute @workgroup_size(WG)
fn activation_bias_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let rows = p.len / (p.cols * p.models);
    for (var c = gid.x; c < p.models * p.cols; c += stride(groups)) {
        let first = (c / p.cols) * rows * p.cols + c % p.cols;
        var sum = 0.0;
        for (var r = 0u; r < rows; r++) {
            let i = first + r * p.cols;
            let g = dst[i] * derivative_from_output(p.act, src[i]);
            dst[i] = g;
            sum += g;
        }
        sums[(c / p.cols) * p.model_stride + c % p.cols] = sum;
    }
}

// dst[m * model_stride + j] = sum_r src[m, r, j] for each of `models` models' rows stored one
// after another (len / (cols * models) rows each): one invocation per column of each model.
@compute @workgroup_size(WG)
fn bias_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let rows = p.len / (p.cols * p.models);
    for (var c = gid.x; c < p.models * p.cols; c += stride(groups)) {
        let first = (c / p.cols) * rows * p.cols + c % p.cols;
        var sum = 0.0;
        for (var r = 0u; r < rows; r++) {
            sum += src[first + r * p.cols];
        }
        dst[(c / p.cols) * p.model_stride + c % p.cols] = sum;
    }
}
