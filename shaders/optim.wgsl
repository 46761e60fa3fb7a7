// Optimizer updates, element-wise over a parameter tensor (or every tensor of a model, packed in
// one buffer). The constants (OPT_*) are injected from Rust (`Optimizer`); Adam's bias
// corrections c1 = 1 - beta1^t, c2 = 1 - beta2^t come per step. With `clip`, every gradient is
// first scaled by max_norm / norm where norm = sqrt(sum_squares[0]) > max_norm (global-norm
// clipping, the norm taken over all of the model's gradients). A batch of models' tensors, stored
// one after another in blocks of `block` elements, is updated in one dispatch, each block
// clipped by its own model's norm, sum_squares[i / block].

struct OptimParams {
    len: u32,
    learning_rate: f32,
    c1: f32,
    c2: f32,
    max_norm: f32,
    clip: u32,
    block: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: OptimParams;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> s0: array<f32>;
@group(0) @binding(4) var<storage, read_write> s1: array<f32>;
@group(0) @binding(5) var<storage, read> sum_squares: array<f32>;

fn stride(groups: vec3<u32>) -> u32 {
    return groups.x * WG;
}

// The factor of global-norm clipping of element i's model: max_norm / norm above the limit, else
// exactly 1.
fn clip_scale(i: u32) -> f32 {
    if p.clip == 0u {
        return 1.0;
    }
    let norm = sqrt(sum_squares[i / p.block]);
    if norm > p.max_norm {
        return p.max_norm / norm;
    }
    return 1.0;
}

// w -= lr g
@compute @workgroup_size(WG)
fn sgd_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    for (var i = gid.x; i < p.len; i += stride(groups)) {
        let scale = clip_scale(i);
        param[i] -= p.learning_rate * (grad[i] * scale);
    }
}

// m = mu m + g; w -= lr m
@compute @workgroup_size(WG)
fn momentum_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    for (var i = gid.x; i < p.len; i += stride(groups)) {
        let scale = clip_scale(i);
        let m = OPT_MOMENTUM * s0[i] + grad[i] * scale;
        s0[i] = m;
        param[i] -= p.learning_rate * m;
    }
}

// s += g^2; w -= lr g / (sqrt(s) + eps)
@compute @workgroup_size(WG)
fn adagrad_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    for (var i = gid.x; i < p.len; i += stride(groups)) {
        let scale = clip_scale(i);
        let g = grad[i] * scale;
        let s = s0[i] + g * g;
        s0[i] = s;
        param[i] -= p.learning_rate * g / (sqrt(s) + OPT_EPS);
    }
}

// v = rho v + (1 - rho) g^2; w -= lr g / (sqrt(v) + eps)
@compute @workgroup_size(WG)
fn rmsprop_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    for (var i = gid.x; i < p.len; i += stride(groups)) {
        let scale = clip_scale(i);
        let g = grad[i] * scale;
        let v = OPT_RMSPROP_RHO * s0[i] + (1.0 - OPT_RMSPROP_RHO) * g * g;
        s0[i] = v;
        param[i] -= p.learning_rate * g / (sqrt(v) + OPT_EPS);
    }
}

// m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; w -= lr (m / c1) / (sqrt(v / c2) + eps)
@compute @workgroup_size(WG)
fn adam_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    for (var i = gid.x; i < p.len; i += stride(groups)) {
        let scale = clip_scale(i);
        let g = grad[i] * scale;
        let m = OPT_ADAM_BETA1 * s0[i] + (1.0 - OPT_ADAM_BETA1) * g;
        let v = OPT_ADAM_BETA2 * s1[i] + (1.0 - OPT_ADAM_BETA2) * g * g;
        s0[i] = m;
        s1[i] = v;
        param[i] -= p.learning_rate * (m / p.c1) / (sqrt(v / p.c2) + OPT_ADAM_EPS);
    }
}
