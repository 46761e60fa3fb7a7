// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011).
// The same stream as src/rng.rs, bit for bit: key = seed, counter = [block_lo, block_hi, step,
// purpose], element i of a stream is lane i % 4 of block i / 4.

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;

// The 64-bit product a * b as (high word, low word), from 16-bit halves.
fn mul_wide(a: u32, b: u32) -> vec2<u32> {
    let a_lo = a & 0xFFFFu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xFFFFu;
    let b_hi = b >> 16u;
    let ll = a_lo * b_lo;
    let lh = a_lo * b_hi;
    let hl = a_hi * b_lo;
    let mid = (ll >> 16u) + (lh & 0xFFFFu) + (hl & 0xFFFFu);
    let hi = a_hi * b_hi + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
    return vec2<u32>(hi, a * b);
}

fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var round = 0u; round < 10u; round++) {
        if round > 0u {
            k += vec2<u32>(PHILOX_W0, PHILOX_W1);
        }
        let p0 = mul_wide(PHILOX_M0, c.x);
        let p1 = mul_wide(PHILOX_M1, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
    }
    return c;
}

// A stream (seed, purpose, step) with a 64-bit element offset.
struct Stream {
    seed_lo: u32,
    seed_hi: u32,
    step: u32,
    purpose: u32,
    offset_lo: u32,
    offset_hi: u32,
}

// The block holding element `offset + i` of stream `s`, and the element's lane in it.
fn stream_block(s: Stream, i: u32) -> vec4<u32> {
    let lo = s.offset_lo + i;
    let hi = s.offset_hi + select(0u, 1u, lo < i);
    let block = vec2<u32>((lo >> 2u) | (hi << 30u), hi >> 2u);
    return philox4x32_10(vec4<u32>(block.x, block.y, s.step, s.purpose), vec2<u32>(s.seed_lo, s.seed_hi));
}

fn stream_lane(s: Stream, i: u32) -> u32 {
    return (s.offset_lo + i) & 3u;
}

// The 32-bit word at element `offset + i`.
fn stream_word(s: Stream, i: u32) -> u32 {
    return stream_block(s, i)[stream_lane(s, i)];
}

// A uniform draw in (0, 1): the top 24 bits plus half an ulp (exact in f32).
fn unit_open(x: u32) -> f32 {
    return (f32(x >> 8u) + 0.5) * (1.0 / 16777216.0);
}

// (cos, sin) of the angle 2 pi u, u in [0, 1): the quadrant from 4u exactly, then Taylor
// polynomials on [0, pi/2) (error below 1e-7). The built-in sin/cos may err by 2^-11 on Vulkan.
fn cos_sin_turn(u: f32) -> vec2<f32> {
    let q = u * 4.0;
    let k = floor(q);
    let x = (q - k) * 1.5707963267948966;
    let x2 = x * x;
    let s = x * (1.0 + x2 * (-1.0 / 6.0 + x2 * (1.0 / 120.0 + x2 * (-1.0 / 5040.0
        + x2 * (1.0 / 362880.0 - x2 / 39916800.0)))));
    let c = 1.0 + x2 * (-0.5 + x2 * (1.0 / 24.0 + x2 * (-1.0 / 720.0 + x2 * (1.0 / 40320.0
        + x2 * (-1.0 / 3628800.0 + x2 / 479001600.0)))));
    switch u32(k) {
        case 0u: { return vec2<f32>(c, s); }
        case 1u: { return vec2<f32>(-s, c); }
        case 2u: { return vec2<f32>(-c, -s); }
        default: { return vec2<f32>(s, -c); }
    }
}

// ln(u) for u in (0, 1) to a few ulps. Near 1, where -2 ln(u) sets small radii, the built-in
// log may err by 2^-21 absolutely; there ln(u) = 2 atanh(s), s = (u - 1) / (u + 1), |s| <= 1/3.
fn ln_unit(u: f32) -> f32 {
    if u < 0.5 {
        return log(u);
    }
    let s = (u - 1.0) / (u + 1.0);
    let s2 = s * s;
    return 2.0 * s * (1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0
        + s2 * (1.0 / 11.0 + s2 * (1.0 / 13.0 + s2 / 15.0)))))));
}

// A standard normal at element `offset + i`: Box-Muller on the block, lanes (0, 1) giving
// r0 cos, r0 sin and lanes (2, 3) giving r1 cos, r1 sin, with r = sqrt(-2 ln u1), angle 2 pi u2.
fn stream_normal(s: Stream, i: u32) -> f32 {
    let w = stream_block(s, i);
    let lane = stream_lane(s, i);
    let pair = select(w.xy, w.zw, lane >= 2u);
    let r = sqrt(-2.0 * ln_unit(unit_open(pair.x)));
    let cs = cos_sin_turn(unit_open(pair.y));
    return r * select(cs.x, cs.y, (lane & 1u) == 1u);
}
