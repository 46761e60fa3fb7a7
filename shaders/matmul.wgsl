// C = op(A) op(B), then optionally C = act(C + bias): the three products of a dense layer
// (Y = X W with its bias and activation, dX = dY W^T, dW = X^T dY). Workgroup layer z computes
// product z of a batch of independent products (the layers of several models), whose operands
// start `stride_*` elements after product z - 1's.
// op(A) is m x k (stored k x m when a_t), op(B) is k x n (stored n x k when b_t); row-major.
//
// Each workgroup computes a TILE x TILE block of C from DEPTH-deep slices of A and B staged in
// workgroup memory; each invocation accumulates PER x PER outputs in registers, strided by the
// workgroup width so neighbouring invocations read neighbouring tile entries.

struct MatmulParams {
    m: u32,
    k: u32,
    n: u32,
    a_t: u32,
    b_t: u32,
    bias: u32,
    act: u32,
    batch: u32,
    // Elements from one product's A, B, C and bias to the next's.
    stride_a: u32,
    stride_b: u32,
    stride_c: u32,
    stride_bias: u32,
}

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

const SIDE: u32 = 16u;              // invocations per workgroup side
// PER, outputs per invocation per side, is injected from Rust: 4 (tiles of 64 x 64, for large
// products) or 2 (32 x 32, for the small products of a VAE's layers).
const TILE: u32 = SIDE * PER;
const DEPTH: u32 = 16u;
const LOADS: u32 = TILE * DEPTH / (SIDE * SIDE);

// a_tile[kk * TILE + i] = op(A)[row0 + i, k0 + kk]; b_tile[kk * TILE + j] = op(B)[k0 + kk, col0 + j].
var<workgroup> a_tile: array<f32, TILE * DEPTH>;
var<workgroup> b_tile: array<f32, TILE * DEPTH>;

// `at`, `bt`: where product z's A and B start.
fn load_a(at: u32, i: u32, kk: u32) -> f32 {
    if i >= p.m || kk >= p.k {
        return 0.0;
    }
    if p.a_t == 1u {
        return a[at + kk * p.m + i];
    }
    return a[at + i * p.k + kk];
}

fn load_b(bt: u32, kk: u32, j: u32) -> f32 {
    if kk >= p.k || j >= p.n {
        return 0.0;
    }
    if p.b_t == 1u {
        return b[bt + j * p.k + kk];
    }
    return b[bt + kk * p.n + j];
}

@compute @workgroup_size(16, 16)
fn matmul(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    let z = wid.z;
    let at = z * p.stride_a;
    let bt = z * p.stride_b;
    let ct = z * p.stride_c;
    let t = lid.y * SIDE + lid.x;
    var acc: array<f32, PER * PER>;
    for (var k0 = 0u; k0 < p.k; k0 += DEPTH) {
        for (var l = 0u; l < LOADS; l++) {
            let e = t + l * SIDE * SIDE;
            // Walk memory order: along k for row-major A and transposed B, along rows otherwise.
            var i = e / DEPTH;
            var kk = e % DEPTH;
            if p.a_t == 1u {
                i = e % TILE;
                kk = e / TILE;
            }
            a_tile[kk * TILE + i] = load_a(at, row0 + i, k0 + kk);
            var j = e % TILE;
            var kb = e / TILE;
            if p.b_t == 1u {
                j = e / DEPTH;
                kb = e % DEPTH;
            }
            b_tile[kb * TILE + j] = load_b(bt, k0 + kb, col0 + j);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < DEPTH; kk++) {
            var av: array<f32, PER>;
            var bv: array<f32, PER>;
            for (var q = 0u; q < PER; q++) {
                av[q] = a_tile[kk * TILE + lid.y + q * SIDE];
                bv[q] = b_tile[kk * TILE + lid.x + q * SIDE];
            }
            for (var r = 0u; r < PER; r++) {
                for (var q = 0u; q < PER; q++) {
                    acc[r * PER + q] = fma(av[r], bv[q], acc[r * PER + q]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var r = 0u; r < PER; r++) {
        let row = row0 + lid.y + r * SIDE;
        for (var q = 0u; q < PER; q++) {
            let col = col0 + lid.x + q * SIDE;
            if row < p.m && col < p.n {
                var v = acc[r * PER + q];
                if p.bias == 1u {
                    v = activate(p.act, v + bias[z * p.stride_bias + col]);
                }
                c[ct + row * p.n + col] = v;
            }
        }
    }
}
