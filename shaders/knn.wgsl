// Nearest neighbours, merged tile by tile: one invocation per query row keeps its k nearest
// (ascending by squared distance, then by index) in registers while it scans the tile's
// distances d = max(|q|^2 + |r|^2 - 2 <q, r>, 0), the products <q, r> coming from matmul.wgsl.
// KNN_MAX_K is injected from Rust.

struct KnnParams {
    queries: u32,
    refs: u32,
    q_start: u32,
    r_start: u32,
    k: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: KnnParams;
@group(0) @binding(1) var<storage, read> gram: array<f32>;
@group(0) @binding(2) var<storage, read> norms: array<f32>;
@group(0) @binding(3) var<storage, read_write> best_d: array<f32>;
@group(0) @binding(4) var<storage, read_write> best_i: array<u32>;

// (d, j) comes before (e, i): nearer, or as near with the lower index.
fn before(d: f32, j: u32, e: f32, i: u32) -> bool {
    return d < e || (d == e && j < i);
}

@compute @workgroup_size(WG)
fn knn_merge(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    for (var q = gid.x; q < p.queries; q += groups.x * WG) {
        var d: array<f32, KNN_MAX_K>;
        var id: array<u32, KNN_MAX_K>;
        let last = p.k - 1u;
        for (var t = 0u; t < p.k; t++) {
            d[t] = best_d[q * p.k + t];
            id[t] = best_i[q * p.k + t];
        }
        let me = p.q_start + q;
        let qn = norms[me];
        for (var r = 0u; r < p.refs; r++) {
            let j = p.r_start + r;
            let dist = max(qn + norms[j] - 2.0 * gram[q * p.refs + r], 0.0);
            if j != me && before(dist, j, d[last], id[last]) {
                var at = last;
                while at > 0u && before(dist, j, d[at - 1u], id[at - 1u]) {
                    d[at] = d[at - 1u];
                    id[at] = id[at - 1u];
                    at -= 1u;
                }
                d[at] = dist;
                id[at] = j;
            }
        }
        for (var t = 0u; t < p.k; t++) {
            best_d[q * p.k + t] = d[t];
            best_i[q * p.k + t] = id[t];
        }
    }
}
