//! The matmul variants: what each computes the product with (scalar loads, vec4 loads,
//! shared-memory tiles, register blocks, textures, textures shared across a subgroup), which
//! shapes it supports, and which shader file holds it. Every variant adds in the same order, so all give the same bits.

use serde::{Deserialize, Serialize};

use crate::ops::MatmulForm;

/// A matmul kernel variant. All compute the same function; they differ in speed per adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// One output per invocation.
    Naive,
    /// 16x16 shared-memory tiles.
    Tiled16,
    /// 16x16 outputs per workgroup, k staged 64 at a time with the next slice prefetched.
    Tiled16K64,
    /// [`Variant::Tiled16K64`] with 8x8 outputs per workgroup (more workgroups).
    Tiled8K64,
    /// 4x4 register block, scalar loads.
    Rb4x4,
    /// 4x8 register block, scalar loads.
    Rb4x8,
    /// 4x8 register block, vec4 loads of A along k and of B along n (AB layouts).
    V4Ab,
    /// 4x8 register block, vec4 loads of A along m and of B along n (AtB layouts).
    V4Atb,
    /// 4x4 block of vec4 dot products along k (ABt layouts).
    V4Abt,
    /// 8x8 register block, A and B packed into textures (AB layouts).
    TexAb,
    /// 8x8 register block, A and B packed into textures (AtB layouts).
    TexAtb,
    /// [`Variant::TexAb`]'s block for ABt layouts: A and B packed as stored, B's texels read
    /// transposed (`mm_tex_abt`).
    TexAbt,
    /// 16x4 register block from textures, each texel of A fetched once per subgroup (AB
    /// layouts; devices with subgroups of exactly 8, as lavapipe's).
    TexAbSg,
    /// [`Variant::TexAbSg`]'s sharing for AtB layouts.
    TexAtbSg,
    /// [`Variant::TexAbSg`]'s block for ABt layouts, B read as [`Variant::TexAbt`] reads it.
    TexAbtSg,
}

/// Which shader file a variant lives in (the two texture files share one pipeline layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    Scalar,
    Vec4,
    Texture,
    /// Texture variants that share fetches across a subgroup.
    TextureSubgroup,
}

impl Family {
    pub(super) fn file(self) -> &'static str {
        match self {
            Family::Scalar => "matmul.wgsl",
            Family::Vec4 => "matmul_vec4.wgsl",
            Family::Texture => "matmul_texture.wgsl",
            Family::TextureSubgroup => "matmul_texture_sg.wgsl",
        }
    }
}

impl Variant {
    /// Every variant, the usually fastest first (the autotuner measures in this order).
    pub const ALL: [Variant; 15] = [
        Variant::TexAbSg,
        Variant::TexAtbSg,
        Variant::TexAbtSg,
        Variant::TexAb,
        Variant::TexAtb,
        Variant::TexAbt,
        Variant::V4Ab,
        Variant::V4Atb,
        Variant::V4Abt,
        Variant::Rb4x8,
        Variant::Rb4x4,
        Variant::Tiled16,
        Variant::Tiled16K64,
        Variant::Tiled8K64,
        Variant::Naive,
    ];

    /// The name reports and the JSON records use.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Naive => "naive",
            Variant::Tiled16 => "tiled16",
            Variant::Tiled16K64 => "tiled16_k64",
            Variant::Tiled8K64 => "tiled8_k64",
            Variant::Rb4x4 => "rb4x4",
            Variant::Rb4x8 => "rb4x8",
            Variant::V4Ab => "v4_ab",
            Variant::V4Atb => "v4_atb",
            Variant::V4Abt => "v4_abt",
            Variant::TexAb => "tex_ab",
            Variant::TexAtb => "tex_atb",
            Variant::TexAbt => "tex_abt",
            Variant::TexAbSg => "tex_ab_sg",
            Variant::TexAtbSg => "tex_atb_sg",
            Variant::TexAbtSg => "tex_abt_sg",
        }
    }

    /// Parses a name from [`Variant::name`].
    pub fn from_name(name: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == name)
    }

    pub(super) fn entry(self) -> &'static str {
        match self {
            Variant::Naive => "mm_naive",
            Variant::Tiled16 => "mm_tiled",
            Variant::Tiled16K64 => "mm_tiled_k64",
            Variant::Tiled8K64 => "mm_tiled8_k64",
            Variant::Rb4x4 => "mm_rb4x4",
            Variant::Rb4x8 => "mm_rb4x8",
            Variant::V4Ab => "mm_v4_ab",
            Variant::V4Atb => "mm_v4_atb",
            Variant::V4Abt => "mm_v4_abt",
            Variant::TexAb => "mm_tex_ab",
            Variant::TexAtb => "mm_tex_atb",
            Variant::TexAbt => "mm_tex_abt",
            Variant::TexAbSg => "mm_tex_ab_sg",
            Variant::TexAbtSg => "mm_tex_abt_sg",
            Variant::TexAtbSg => "mm_tex_atb_sg",
        }
    }

    /// The one form this variant computes, or `None` for variants that compute all three.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn only_form(self) -> Option<MatmulForm> {
        match self {
            Variant::V4Ab | Variant::TexAb | Variant::TexAbSg => Some(MatmulForm::AB),
            Variant::V4Atb | Variant::TexAtb | Variant::TexAtbSg => Some(MatmulForm::AtB),
            Variant::V4Abt | Variant::TexAbt | Variant::TexAbtSg => Some(MatmulForm::ABt),
            _ => None,
        }
    }

    /// Whether this variant reads A and B from textures (packed before each product).
    pub fn reads_textures(self) -> bool {
        matches!(self.family(), Family::Texture | Family::TextureSubgroup)
    }

    /// Whether this variant uses subgroup operations (it runs only on devices with subgroups
    /// of exactly 8 invocations).
    pub fn needs_subgroups(self) -> bool {
        self.family() == Family::TextureSubgroup
    }

    pub(super) fn family(self) -> Family {
        match self {
            Variant::V4Ab | Variant::V4Atb | Variant::V4Abt => Family::Vec4,
            Variant::TexAb | Variant::TexAtb | Variant::TexAbt => Family::Texture,
            Variant::TexAbSg | Variant::TexAtbSg | Variant::TexAbtSg => Family::TextureSubgroup,
            _ => Family::Scalar,
        }
    }

    /// Outputs per invocation (rows, cols) and workgroup size (x, y).
    pub(super) fn tiling(self) -> ((u32, u32), (u32, u32)) {
        match self {
            Variant::Naive => ((1, 1), (8, 8)),
            Variant::Tiled16 | Variant::Tiled16K64 => ((1, 1), (16, 16)),
            Variant::Tiled8K64 => ((1, 1), (8, 8)),
            Variant::Rb4x4 | Variant::V4Abt => ((4, 4), (8, 8)),
            Variant::Rb4x8 | Variant::V4Ab | Variant::V4Atb => ((4, 8), (8, 8)),
            Variant::TexAb | Variant::TexAtb | Variant::TexAbt => ((8, 8), (8, 2)),
            Variant::TexAbSg | Variant::TexAtbSg | Variant::TexAbtSg => ((16, 4), (8, 1)),
        }
    }

    /// Whether this variant can compute `call`'s product. `offsets` are those of A, B, C, the
    /// bias and z, in floats. The vec4 variants need their contiguous dimensions to be
    /// multiples of 4 and the A, B, C and bias offsets 16-byte aligned; the texture variants
    /// also store vec4s, so z's offset too. (The texture variants also need the device to
    /// take the textures, and the subgroup ones subgroups: see [`Matmul::supports`].)
    pub fn supports(self, form: MatmulForm, m: usize, n: usize, k: usize, offsets: [usize; 5]) -> bool {
        let aligned = offsets[..4].iter().all(|o| o % 4 == 0);
        let all_aligned = aligned && offsets[4].is_multiple_of(4);
        match self {
            Variant::TexAb | Variant::TexAbSg => {
                form == MatmulForm::AB && all_aligned && k.is_multiple_of(4) && n.is_multiple_of(4)
            }
            Variant::TexAtb | Variant::TexAtbSg => {
                form == MatmulForm::AtB && all_aligned && m.is_multiple_of(4) && n.is_multiple_of(4)
            }
            Variant::TexAbt | Variant::TexAbtSg => {
                form == MatmulForm::ABt && all_aligned && k.is_multiple_of(4) && n.is_multiple_of(4)
            }
            Variant::V4Ab => form == MatmulForm::AB && aligned && k.is_multiple_of(4) && n.is_multiple_of(4),
            Variant::V4Atb => {
                form == MatmulForm::AtB && aligned && m.is_multiple_of(4) && n.is_multiple_of(4)
            }
            Variant::V4Abt => form == MatmulForm::ABt && aligned && k.is_multiple_of(4),
            _ => true,
        }
    }
}
