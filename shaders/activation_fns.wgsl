// Activation functions shared by activation.wgsl and the matmul epilogues.
// A library, not a kernel: the host appends it to the shaders that call it (after their own
// text, so their line numbers stay true in error messages).
//
// Codes (src/model.rs `Activation::code`): 0 identity, 1 relu, 2 sigmoid, 3 tanh, 4 gelu (tanh form).

const ACT_IDENTITY: u32 = 0u;
const ACT_RELU: u32 = 1u;
const ACT_SIGMOID: u32 = 2u;
const ACT_TANH: u32 = 3u;
const ACT_GELU: u32 = 4u;

// sqrt(2 / pi) as the CPU reference writes it.
const GELU_C: f32 = 0.7978845608;
const GELU_A: f32 = 0.044715;

// Some drivers lower tanh to (e^2x - 1) / (e^2x + 1), which is inf/inf = NaN for |x| > ~44.
// tanh(15) already rounds to 1.0 in f32, so clamping changes no result and avoids the NaN.
fn safe_tanh(x: f32) -> f32 {
    return tanh(clamp(x, -15.0, 15.0));
}

fn act_apply(code: u32, x: f32) -> f32 {
    switch code {
        case 1u: { return max(x, 0.0); }
        case 2u: { return 1.0 / (1.0 + exp(-x)); }
        case 3u: { return safe_tanh(x); }
        case 4u: { return 0.5 * x * (1.0 + safe_tanh(GELU_C * (x + GELU_A * x * x * x))); }
        default: { return x; }
    }
}

// d act / dz evaluated at the pre-activation z.
fn act_grad(code: u32, z: f32) -> f32 {
    switch code {
        case 1u: { return select(0.0, 1.0, z > 0.0); }
        case 2u: {
            let s = 1.0 / (1.0 + exp(-z));
            return s * (1.0 - s);
        }
        case 3u: {
            let t = safe_tanh(z);
            return 1.0 - t * t;
        }
        case 4u: {
            let t = safe_tanh(GELU_C * (z + GELU_A * z * z * z));
            return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * GELU_A * z * z);
        }
        default: { return 1.0; }
    }
}
