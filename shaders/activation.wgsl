// Activations and their derivatives written in terms of the output y = act(x).
// The ACT_* codes are injected from Rust (`Activation::code`).

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

fn activate(act: u32, x: f32) -> f32 {
    switch act {
        case ACT_RELU: { return max(x, 0.0); }
        case ACT_ELU: { return select(exp(min(x, 0.0)) - 1.0, x, x > 0.0); }
        case ACT_TANH: { return tanh(x); }
        case ACT_SIGMOID: { return sigmoid(x); }
        default: { return x; }
    }
}

// d act / dx at the point whose output is y.
fn derivative_from_output(act: u32, y: f32) -> f32 {
    switch act {
        case ACT_RELU: { return select(0.0, 1.0, y > 0.0); }
        case ACT_ELU: { return select(y + 1.0, 1.0, y > 0.0); }
        case ACT_TANH: { return 1.0 - y * y; }
        case ACT_SIGMOID: { return y * (1.0 - y); }
        default: { return 1.0; }
    }
}
