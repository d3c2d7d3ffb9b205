//! What the network is trained to do: how inputs reach it and which loss it minimises.
//!
//! Today's one task is classification of u8 images: each pixel becomes `p / 255` and the
//! outputs are the logits of a softmax cross-entropy over the classes.

/// A pixel as every executor sees it: `p / 255`, correctly rounded.
#[inline]
pub fn pixel_value(p: u8) -> f32 {
    f32::from(p) / 255.0
}

/// [`pixel_value`] of every byte: the table the GPU gathers look pixels up in (a shader's own
/// division may not round correctly; a table lookup always gives these bits).
pub fn pixel_lut() -> [f32; 256] {
    std::array::from_fn(|p| pixel_value(p as u8))
}
