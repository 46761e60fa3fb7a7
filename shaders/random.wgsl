// Kernels that draw from the Philox stream (philox.wgsl): dropout masks, normal draws and the
// reparameterisation z = mu + eps * exp(0.5 logvar).

struct RandomParams {
    len: u32,
    latent: u32,
    rate: f32,
    at: u32,
    seed_lo: u32,
    seed_hi: u32,
    step: u32,
    purpose: u32,
    offset_lo: u32,
    offset_hi: u32,
    models: u32,
    _pad: u32,
}

fn params_stream() -> Stream {
    return Stream(p.seed_lo, p.seed_hi, p.step, p.purpose, p.offset_lo, p.offset_hi);
}

@group(0) @binding(0) var<uniform> p: RandomParams;
@group(0) @binding(1) var<storage, read> head: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read_write> eps: array<f32>;
@group(0) @binding(4) var<storage, read_write> bits: array<u32>;
// Per model of a batch (ModelStep::table, MODEL_WORDS each): rows used, seed low and high
// words, step, the bits of 1 / rows.
@group(0) @binding(5) var<storage, read> table: array<u32>;

fn stride(groups: vec3<u32>) -> u32 {
    return groups.x * WG;
}

// Model m's stream (from element p.offset): (seed, p.purpose, step) of its table entry.
fn model_stream(m: u32) -> Stream {
    let entry = (p.at + m) * MODEL_WORDS;
    return Stream(table[entry + 1u], table[entry + 2u], table[entry + 3u], p.purpose, p.offset_lo, p.offset_hi);
}

// The rows model m uses (its table entry's) of the rows its block holds.
fn model_rows(m: u32) -> u32 {
    return table[(p.at + m) * MODEL_WORDS];
}

// The raw 32-bit words of the stream: the bit-for-bit check against the Rust generator.
@compute @workgroup_size(WG)
fn philox_words(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    for (var i = gid.x; i < p.len; i += stride(groups)) {
        bits[i] = stream_word(params_stream(), i);
    }
}

// Inverted dropout: zero where the uniform draw is <= rate, scale the rest by 1 / (1 - rate);
// p.len elements of each of p.models models, model m's mask from its stream.
@compute @workgroup_size(WG)
fn dropout(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let keep_scale = 1.0 / (1.0 - p.rate);
    for (var g = gid.x; g < p.len * p.models; g += stride(groups)) {
        let u = unit_open(stream_word(model_stream(g / p.len), g % p.len));
        dst[g] = select(dst[g] * keep_scale, 0.0, u <= p.rate);
    }
}

// dst[i] = N(0, 1) draw at element offset + i.
@compute @workgroup_size(WG)
fn normal(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    for (var i = gid.x; i < p.len; i += stride(groups)) {
        dst[i] = stream_normal(params_stream(), i);
    }
}

// head is rows x 2L ([mu | logvar] per row) for each of p.models models (p.len = rows x L
// elements each); eps = N(0, 1) from the model's stream, z = dst = mu + eps exp(logvar / 2) for
// the rows it uses, 0 in its padding rows.
@compute @workgroup_size(WG)
fn reparameterize(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    for (var g = gid.x; g < p.len * p.models; g += stride(groups)) {
        let m = g / p.len;
        let i = g % p.len;
        let r = i / p.latent;
        let j = i % p.latent;
        if r >= model_rows(m) {
            eps[g] = 0.0;
            dst[g] = 0.0;
            continue;
        }
        let h = m * 2u * p.len + r * 2u * p.latent;
        let e = stream_normal(model_stream(m), i);
        eps[g] = e;
        dst[g] = head[h + j] + e * exp(0.5 * head[h + p.latent + j]);
    }
}
