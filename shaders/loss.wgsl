// Losses with their gradients, and sums. A sum is taken in two dispatches: each workgroup
// reduces its share into partials[workgroup], then `finish_sum` adds scale * sum(partials) into
// out[slot]. Both are deterministic: same inputs, same bits. A batch of models runs one workgroup
// layer z per model: its partials from z * PARTIALS, its sum into out[slot + z * slot_stride].
// Each model of a batch takes its rows and its gradients' scale from the table.

struct LossParams {
    len: u32,
    latent: u32,
    slot: u32,
    likelihood: u32,
    scale: f32,
    beta: f32,
    count: u32,
    heads: u32,
    slot_stride: u32,
    at: u32,
    model_stride: u32,    // elements between the models' copies of a batched input (l2)
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: LossParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> aux: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;
@group(0) @binding(5) var<storage, read> dz: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
@group(0) @binding(7) var<storage, read> logvar: array<f32>;
@group(0) @binding(8) var<storage, read_write> dlogvar_terms: array<f32>;
@group(0) @binding(9) var<storage, read> head_spans: array<u32>;
// Per model of a batch (ModelStep::table, MODEL_WORDS each): rows used, seed low and high
// words, step, the bits of 1 / rows.
@group(0) @binding(10) var<storage, read> table: array<u32>;

// The rows model z uses this step (of the rows its block holds) and the scale of its gradients
// (1 / rows as the host rounds it): its entry of the table (from p.at).
struct ModelRows {
    rows: u32,
    scale: f32,
}

fn model_rows(z: u32) -> ModelRows {
    let entry = (p.at + z) * MODEL_WORDS;
    return ModelRows(table[entry], bitcast<f32>(table[entry + 4u]));
}

var<workgroup> shared_sum: array<f32, WG>;

fn stride(groups: vec3<u32>) -> u32 {
    return groups.x * WG;
}

// The sum of every invocation's `value` over the workgroup (a tree in workgroup memory).
fn workgroup_sum(value: f32, lid: u32) -> f32 {
    shared_sum[lid] = value;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half /= 2u) {
        if lid < half {
            shared_sum[lid] += shared_sum[lid + half];
        }
        workgroupBarrier();
    }
    return shared_sum[0];
}

// partials[workgroup] = the workgroup's sum of `value` (workgroup layer z: partials from
// z * PARTIALS).
fn reduce_to_partial(value: f32, lid: u32, wid: vec3<u32>) {
    let total = workgroup_sum(value, lid);
    if lid == 0u {
        partials[wid.z * PARTIALS + wid.x] = total;
    }
}

// ln(1 + e^x), stable for large |x|.
fn softplus(x: f32) -> f32 {
    return max(x, 0.0) + log(1.0 + exp(-abs(x)));
}

// Reconstruction of targets x = aux from logits o = src, per element of the first p.heads
// (here: the numeric) columns of each row of p.latent columns:
//   bernoulli: loss = softplus(o) - x o,   d/do = sigmoid(o) - x
//   gaussian:  loss = (x - o)^2 / 2,       d/do = o - x
// grad = d/do * scale (scale = 1 / rows). Element i: writes grad[i], returns its loss.
fn reconstruction_element(i: u32, scale: f32) -> f32 {
    let o = src[i];
    let x = aux[i];
    if p.likelihood == LIKELIHOOD_BERNOULLI {
        grad[i] = (sigmoid(o) - x) * scale;
        return softplus(o) - x * o;
    }
    grad[i] = (o - x) * scale;
    return 0.5 * (x - o) * (x - o);
}

// Workgroup layer z for model z (blocks of p.len = rows x p.latent elements), the rows it uses
// and its scale from model_rows; the numeric columns of padding rows get zero gradients and add
// nothing.
@compute @workgroup_size(WG)
fn reconstruction(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let model = model_rows(wid.z);
    let used = model.rows * p.latent;
    let scale = model.scale;
    let first = wid.z * p.len;
    var sum = 0.0;
    for (var i = gid.x; i < p.len; i += stride(groups)) {
        if i % p.latent >= p.heads {
            continue; // a categorical head's column
        }
        if i < used {
            sum += reconstruction_element(first + i, scale);
        } else {
            grad[first + i] = 0.0;
        }
    }
    reduce_to_partial(sum, lid, wid);
}

// Gaussian with a learned log-variance s_j per column j < p.heads (the numeric columns; p.latent
// carries the row width, and dlogvar_terms has p.heads columns), for
// means o = src and targets x = aux, with s_j clamped to [MIN_LOGVAR, MAX_LOGVAR] and w = e^(-s_j):
//   loss = ((x - o)^2 w + s_j + ln 2 pi) / 2,   d/do = (o - x) w,   d/ds_j = (1 - (x - o)^2 w) / 2
// grad = d/do * scale; dlogvar_terms = d/ds_j * scale per element (0 where the clamp is active),
// summed over rows afterwards by bias_grad.
// One element of gaussian_learned: mean o = src[i] against target x = aux[i] in column j, its
// log-variance logvar[lv]; writes grad[i] and dlogvar_terms[term], returns its loss.
fn gaussian_learned_element(i: u32, lv: u32, term: u32, scale: f32) -> f32 {
    let ln_2pi = 1.8378770664093453;
    let o = src[i];
    let x = aux[i];
    let raw = logvar[lv];
    let s = clamp(raw, MIN_LOGVAR, MAX_LOGVAR);
    let w = exp(-s);
    let r2 = (x - o) * (x - o);
    grad[i] = (o - x) * w * scale;
    dlogvar_terms[term] = select(0.0, 0.5 * (1.0 - r2 * w) * scale, s == raw);
    return 0.5 * (r2 * w + s + ln_2pi);
}

// Workgroup layer z for model z (blocks of p.len = rows x p.latent elements, and of
// rows x p.heads terms), the rows it uses and its scale from model_rows; model z's
// log-variances start model_stride elements after model z - 1's. Padding rows get zero
// gradients and terms and add nothing.
@compute @workgroup_size(WG)
fn gaussian_learned(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let model = model_rows(wid.z);
    let used = model.rows * p.latent;
    let scale = model.scale;
    let first = wid.z * p.len;
    let terms = wid.z * (p.len / p.latent) * p.heads;
    var sum = 0.0;
    for (var i = gid.x; i < p.len; i += stride(groups)) {
        let j = i % p.latent;
        if j >= p.heads {
            continue; // a categorical head's column
        }
        let term = terms + (i / p.latent) * p.heads + j;
        if i < used {
            sum += gaussian_learned_element(first + i, wid.z * p.model_stride + j, term, scale);
        } else {
            grad[first + i] = 0.0;
            dlogvar_terms[term] = 0.0;
        }
    }
    reduce_to_partial(sum, lid, wid);
}

// Categorical cross-entropy of softmax heads, one invocation per (row, head): logits o = src and
// one-hot targets x = aux (rows of p.latent columns); head h spans head_spans[2h] .. + head_spans[2h + 1].
// With m = max(o_h) and t = sum(e^(o_h - m)):
//   loss = m + ln t - sum(x_h o_h),   d/do_j = e^(o_j - m) / t - x_j
// grad = d/do * scale (scale = 1 / rows); columns outside the heads are not touched.
// One (row, head): the row starts at element `row`; writes the head's gradients, returns its loss.
fn softmax_element(row: u32, h: u32, scale: f32) -> f32 {
    let first = row + head_spans[2u * h];
    let end = first + head_spans[2u * h + 1u];
    var m = src[first];
    for (var j = first + 1u; j < end; j++) {
        m = max(m, src[j]);
    }
    var t = 0.0;
    var dot = 0.0;
    for (var j = first; j < end; j++) {
        t += exp(src[j] - m);
        dot += src[j] * aux[j];
    }
    for (var j = first; j < end; j++) {
        grad[j] = (exp(src[j] - m) / t - aux[j]) * scale;
    }
    return m + log(t) - dot;
}

// Workgroup layer z for model z (p.len = rows x heads invocations each, over blocks of
// rows x p.latent logits), the rows it uses and its scale from model_rows; the heads' columns of
// padding rows get zero gradients.
@compute @workgroup_size(WG)
fn softmax_cross_entropy(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let model = model_rows(wid.z);
    let used = model.rows * p.heads;
    let scale = model.scale;
    let first = wid.z * (p.len / p.heads) * p.latent;
    var sum = 0.0;
    for (var i = gid.x; i < p.len; i += stride(groups)) {
        let row = first + (i / p.heads) * p.latent;
        let h = i % p.heads;
        if i < used {
            sum += softmax_element(row, h, scale);
        } else {
            let start = row + head_spans[2u * h];
            for (var j = start; j < start + head_spans[2u * h + 1u]; j++) {
                grad[j] = 0.0;
            }
        }
    }
    reduce_to_partial(sum, lid, wid);
}

// KL(N(mu, exp(logvar)) || N(0, I)) = -1/2 (1 + logvar - mu^2 - exp(logvar)) per element, with
// head = src ([mu | logvar] rows), eps = aux, dz the gradient reaching z (already / rows):
//   dmu = dz + beta mu scale,  dlogvar = dz eps exp(logvar / 2) / 2 + beta (exp(logvar) - 1) scale / 2.
// One latent element: mu at head[at_mu], logvar p.latent after it, eps and dz at i; writes both
// gradients, returns its loss.
fn kl_element(at_mu: u32, i: u32, scale: f32) -> f32 {
    let at_logvar = at_mu + p.latent;
    let mu = src[at_mu];
    let logvar = src[at_logvar];
    let variance = exp(logvar);
    grad[at_mu] = dz[i] + p.beta * mu * scale;
    grad[at_logvar] = 0.5 * dz[i] * aux[i] * exp(0.5 * logvar) + 0.5 * p.beta * (variance - 1.0) * scale;
    return -0.5 * (1.0 + logvar - mu * mu - variance);
}

// Workgroup layer z for model z (blocks of p.len = rows x L elements; head and grad blocks of
// rows x 2L), the rows it uses and its scale from model_rows; padding rows get zero gradients
// and add nothing.
@compute @workgroup_size(WG)
fn kl(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let model = model_rows(wid.z);
    let used = model.rows * p.latent;
    let scale = model.scale;
    let first = wid.z * p.len;
    var sum = 0.0;
    for (var i = gid.x; i < p.len; i += stride(groups)) {
        let at_mu = 2u * first + (i / p.latent) * 2u * p.latent + i % p.latent;
        if i < used {
            sum += kl_element(at_mu, first + i, scale);
        } else {
            grad[at_mu] = 0.0;
            grad[at_mu + p.latent] = 0.0;
        }
    }
    reduce_to_partial(sum, lid, wid);
}

// L2 penalty on w = src: grad += beta w (beta carries the l2 weight); partial sums of w^2.
// Layer z works on model z's copies of w and grad, model_stride elements after model z - 1's.
@compute @workgroup_size(WG)
fn l2(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let first = wid.z * p.model_stride;
    var sum = 0.0;
    for (var i = gid.x; i < p.len; i += stride(groups)) {
        let w = src[first + i];
        grad[first + i] += p.beta * w;
        sum += w * w;
    }
    reduce_to_partial(sum, lid, wid);
}

// Partial sums of src^2.
@compute @workgroup_size(WG)
fn sum_squares(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    // Layer z sums model z's block of p.len values.
    let first = wid.z * p.len;
    var sum = 0.0;
    for (var i = gid.x; i < p.len; i += stride(groups)) {
        let v = src[first + i];
        sum += v * v;
    }
    reduce_to_partial(sum, lid, wid);
}

// out[slot + z slot_stride] += scale * sum(partials[z PARTIALS ..][..count]), one workgroup per
// layer z.
@compute @workgroup_size(WG)
fn finish_sum(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let first = wid.z * PARTIALS;
    var sum = 0.0;
    for (var i = lid; i < p.count; i += WG) {
        sum += partials[first + i];
    }
    let total = workgroup_sum(sum, lid);
    if lid == 0u {
        out[p.slot + wid.z * p.slot_stride] += p.scale * total;
    }
}
