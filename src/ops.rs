//! Names shared by the GPU kernels and the CPU reference.

/// The three matrix products training needs. `C: [m, n]` row-major in every form.
///
/// - `AB`:  `A: [m, k]`, `B: [k, n]` (forward: activations times weights)
/// - `AtB`: `A: [k, m]`, `B: [k, n]` (weight gradient: inputs^T times output gradient)
/// - `ABt`: `A: [m, k]`, `B: [n, k]` (input gradient: output gradient times weights^T)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatmulForm {
    /// `C = A B`.
    AB,
    /// `C = A^T B`.
    AtB,
    /// `C = A B^T`.
    ABt,
}

impl MatmulForm {
    /// All forms.
    pub const ALL: [MatmulForm; 3] = [MatmulForm::AB, MatmulForm::AtB, MatmulForm::ABt];

    /// The name used in reports and JSON records.
    pub fn name(self) -> &'static str {
        match self {
            MatmulForm::AB => "AB",
            MatmulForm::AtB => "AtB",
            MatmulForm::ABt => "ABt",
        }
    }

    /// Row and column strides (in elements) of `A` and `B` for row-major storage, so that
    /// `A(i, p) = a[i * a_rs + p * a_cs]` and `B(p, j) = b[p * b_rs + j * b_cs]`.
    pub fn strides(self, m: usize, n: usize, k: usize) -> [usize; 4] {
        let _ = m;
        match self {
            MatmulForm::AB => [k, 1, n, 1],
            MatmulForm::AtB => [1, m, n, 1],
            MatmulForm::ABt => [k, 1, 1, k],
        }
    }
}
