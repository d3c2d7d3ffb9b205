//! The texture path on lavapipe: the gather into a texture (bit for bit against the CPU's
//! lookup, read back through a texture-to-buffer copy) and a texture matmul reading that
//! gathered batch directly (bit for bit against the naive kernel on the buffer gather's
//! output: every variant adds in the same order).

use super::common::*;
use super::*;
use crate::gpu::kernels::{
    pack_pixels, pixel_lut_buffer, submit, GatherSources, MatmulCall, Packed, Variant, WeightPack,
};
use crate::ops::MatmulForm;
use crate::spec::pixel_lut;

struct Batch {
    pixels: Vec<u8>,
    labels: Vec<u32>,
    perm: Vec<u32>,
    buffers: [wgpu::Buffer; 5],
}

const IMAGES: usize = 40;

impl Batch {
    fn new(features: usize) -> Self {
        let g = &fixture().gpu;
        let pixels: Vec<u8> = (0..IMAGES * features).map(|i| ((i * 7919 + i / 13) % 256) as u8).collect();
        let labels: Vec<u32> = (0..IMAGES as u32).map(|i| (i * 3 + 1) % 10).collect();
        // A permutation of the images (23 is coprime with 40).
        let perm: Vec<u32> = (0..IMAGES as u32).map(|i| (i * 23 + 7) % IMAGES as u32).collect();
        let (packed, _) = pack_pixels(&pixels, features);
        let step = uniform_buffer(g, 16);
        g.write(&step, 0, bytemuck::cast_slice(&[3u32, 0, 0, 0]));
        let buffers = [
            upload_u32(g, &packed),
            upload_u32(g, &labels),
            upload_u32(g, &perm),
            pixel_lut_buffer(g).expect("lut"),
            step,
        ];
        Batch { pixels, labels, perm, buffers }
    }

    fn sources(&self, features: usize) -> GatherSources<'_> {
        let [pixels, labels, perm, lut, step] = &self.buffers;
        GatherSources { pixels, words: features / 4, features, labels, perm, lut, step }
    }
}

#[test]
fn gather_into_a_texture_copies_the_permuted_batch_exactly() {
    let _serial = serial();
    let f = fixture();
    let lut = pixel_lut();
    for features in [784usize, 4, 12] {
        let batch = Batch::new(features);
        let src = batch.sources(features);
        assert!(f.kernels.gather.supports_texture(&src), "lavapipe gathers into textures");
        let rows = 13;
        let tex = f.kernels.matmul.operand_texture(&f.gpu, rows, features).expect("texture").expect("fits");
        let y = upload_u32(&f.gpu, &vec![u32::MAX; rows + 1]);
        let d = f.kernels.gather.record_texture(&f.gpu, rows, &src, &tex, &y, None).expect("record");
        submit(&f.gpu, &[&d]);
        let x = read_texture(&f.gpu, &tex);
        let labels = f.gpu.read::<u32>(&y, 0, rows + 1).expect("labels");
        for r in 0..rows {
            let image = batch.perm[3 + r] as usize;
            let want: Vec<u32> = batch.pixels[image * features..(image + 1) * features]
                .iter()
                .map(|&p| lut[p as usize].to_bits())
                .collect();
            let got: Vec<u32> = x[r * features..(r + 1) * features].iter().map(|v| v.to_bits()).collect();
            assert_eq!(got, want, "features={features}: row {r} (image {image})");
            assert_eq!(labels[r], batch.labels[image], "features={features}: label of row {r}");
        }
        assert_eq!(labels[rows], u32::MAX, "features={features}: the label past the batch was written");
    }
}

/// The gather that also packs the first layer's weights (`gather_tex_pack`,
/// `gather_tex4_pack`): the batch's texture as the gather alone writes it, the labels, and
/// the weights' texture holding the matrix as stored, bit for bit. 260 features (65 words)
/// make the gather's grid two workgroups wide, which the pack's texel index must account for.
#[test]
fn a_texture_gather_packs_the_first_layers_weights_exactly() {
    let _serial = serial();
    let f = fixture();
    let g = &f.gpu;
    // 16 features: a weights' texture of 16 rows, which gets a 17th (never a power-of-two
    // height), left untouched.
    for (features, n, rows) in
        [(784usize, 64usize, 13usize), (12, 8, 40), (260, 12, 5), (784, 4, 1), (16, 4, 7)]
    {
        let batch = Batch::new(features);
        let src = batch.sources(features);
        assert!(
            f.kernels.gather.packs_weights(g, &src, rows, features, n),
            "lavapipe packs weights in the gather"
        );
        // The weights sit at float 8 of a larger buffer: only they may land in the texture.
        let offset = 8;
        let params = random(offset + features * n + 5, 31);
        let buffer = upload(g, &params);
        let tex = |r, c| f.kernels.matmul.operand_texture(g, r, c).expect("texture").expect("fits");
        let (x_alone, x_fused, w_tex) = (tex(rows, features), tex(rows, features), tex(features, n));
        let y_alone = upload_u32(g, &vec![u32::MAX; rows + 1]);
        let y_fused = upload_u32(g, &vec![u32::MAX; rows + 1]);
        let pack = WeightPack { buffer: &buffer, offset, texture: &w_tex };
        let alone = f.kernels.gather.record_texture(g, rows, &src, &x_alone, &y_alone, None).expect("gather");
        let fused =
            f.kernels.gather.record_texture(g, rows, &src, &x_fused, &y_fused, Some(pack)).expect("fused");
        assert_eq!(fused.launches(), 1, "one launch");
        submit(g, &[&alone, &fused]);
        let name = format!("features={features} n={n} rows={rows}");
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
        assert_eq!(bits(&read_texture(g, &x_fused)), bits(&read_texture(g, &x_alone)), "{name}: the batch");
        assert_eq!(
            g.read::<u32>(&y_fused, 0, rows + 1).expect("labels"),
            g.read::<u32>(&y_alone, 0, rows + 1).expect("labels"),
            "{name}: the labels"
        );
        let packed = read_texture(g, &w_tex);
        let want = &params[offset..offset + features * n];
        assert_eq!(bits(&packed[..features * n]), bits(want), "{name}: the weights' texture");
        assert!(packed[features * n..].iter().all(|v| *v == 0.0), "{name}: past the weights");
        if features == 16 {
            assert_eq!(packed.len(), 17 * n, "{name}: the extra row is there to check");
        }
    }
    // Weights that are not whole texels, or not at a texel's offset, are refused.
    let batch = Batch::new(8);
    let src = batch.sources(8);
    let y = upload_u32(g, &[0; 4]);
    let x = f.kernels.matmul.operand_texture(g, 4, 8).expect("texture").expect("fits");
    let w = f.kernels.matmul.operand_texture(g, 8, 4).expect("texture").expect("fits");
    let buffer = zeros(g, 40);
    let misaligned = WeightPack { buffer: &buffer, offset: 2, texture: &w };
    let err = f.kernels.gather.record_texture(g, 4, &src, &x, &y, Some(misaligned)).expect_err("offset 2");
    assert!(err.to_string().contains("offset 2"), "{err}");
    let short = WeightPack { buffer: &buffer, offset: 12, texture: &w };
    assert!(f.kernels.gather.record_texture(g, 4, &src, &x, &y, Some(short)).is_err(), "past the buffer");
    assert!(!f.kernels.gather.packs_weights(g, &src, 4, 8, 6), "6 columns are not whole texels");
}

#[test]
fn a_texture_gather_refuses_padded_rows_and_small_textures() {
    let _serial = serial();
    let f = fixture();
    let batch = Batch::new(8);
    let y = upload_u32(&f.gpu, &[0; 16]);
    let tex = f.kernels.matmul.operand_texture(&f.gpu, 4, 8).expect("texture").expect("fits");
    let mut padded = batch.sources(8);
    padded.features = 7;
    assert!(!f.kernels.gather.supports_texture(&padded), "7 features leave a padding byte");
    assert!(f.kernels.gather.record_texture(&f.gpu, 4, &padded, &tex, &y, None).is_err());
    let src = batch.sources(8);
    let err = f
        .kernels
        .gather
        .record_texture(&f.gpu, 5, &src, &tex, &y, None)
        .expect_err("5 rows in a 4-row texture");
    assert!(err.to_string().contains("does not fit"), "{err}");
    let wide = f.kernels.matmul.operand_texture(&f.gpu, 8, 16).expect("texture").expect("fits");
    assert!(
        f.kernels.gather.record_texture(&f.gpu, 4, &src, &wide, &y, None).is_err(),
        "a texture 4 texels wide"
    );
}

/// The products that read the batch, both ways: from the buffer gather with the naive kernel,
/// and from the texture gather with the texture variants (A not packed again; the subgroup
/// ones too where the device has subgroups), and with B
/// packed ahead as well (as the gather packs W1 and the narrow backward writes dZ1: one launch,
/// no pack): same bits. A B texture of the wrong shape is refused. A B^T, which reads B as
/// stored too, takes a B packed ahead: same bits.
#[test]
fn texture_products_on_the_gathered_batch_match_the_buffer_path_bit_for_bit() {
    let _serial = serial();
    let f = fixture();
    let (g, k) = (&f.gpu, &f.kernels);
    let features = 784;
    let batch = Batch::new(features);
    let src = batch.sources(features);
    let tex = |r, c| k.matmul.operand_texture(g, r, c).expect("texture").expect("fits");
    for (rows, n) in [(13usize, 64usize), (32, 12)] {
        let y = upload_u32(g, &vec![0; rows]);
        let x = zeros(g, rows * features);
        let (x_tex, spare) = (tex(rows, features), tex(rows, features));
        // Forward (x W) and weight gradient (x^T dz), W and dZ at float 4 of their buffers,
        // each also packed ahead into its texture by a gather's launch (the path that does).
        let w = upload(g, &padded(&random(features * n, 11), 4));
        let dz = upload(g, &padded(&random(rows * n, 12), 4));
        let (w_tex, dz_tex) = (tex(features, n), tex(rows, n));
        let pack = |buffer, texture| Some(WeightPack { buffer, offset: 4, texture });
        let gathers = [
            k.gather.record(g, rows, &src, (&x, 0), &y).expect("buffer gather"),
            k.gather.record_texture(g, rows, &src, &x_tex, &y, pack(&w, &w_tex)).expect("gather packing W"),
            k.gather
                .record_texture(g, rows, &src, &spare, &y, pack(&dz, &dz_tex))
                .expect("gather packing dZ"),
        ];
        submit(g, &[&gathers[0], &gathers[1], &gathers[2]]);
        for (form, m, kk, b, b_tex) in
            [(MatmulForm::AB, rows, features, &w, &w_tex), (MatmulForm::AtB, features, rows, &dz, &dz_tex)]
        {
            let want = zeros(g, m * n);
            let naive = MatmulCall { b: (b, 4), ..MatmulCall::plain(form, m, n, kk, &x, b, &want) };
            let d = k.matmul.record(g, Variant::Naive, &naive).expect("naive");
            submit(g, &[&d]);
            let want = read(g, &want, m * n);
            let variants = match form {
                MatmulForm::AB => [Variant::TexAb, Variant::TexAbSg],
                _ => [Variant::TexAtb, Variant::TexAtbSg],
            };
            // The subgroup variants where the device has subgroups (lavapipe does).
            for variant in variants.into_iter().filter(|v| !v.needs_subgroups() || g.has_subgroups_of(8)) {
                let (got_a, got_ab) = (zeros(g, m * n), zeros(g, m * n));
                let c = |out| MatmulCall { b: (b, 4), ..MatmulCall::plain(form, m, n, kk, &x, b, out) };
                let name = format!("{} rows={rows} n={n}", variant.name());
                assert!(k.matmul.supports(variant, &c(&got_a)), "{name} supports {}", form.name());
                let a_packed = Packed::a(Some(&x_tex));
                let t = k.matmul.record_with(g, variant, &c(&got_a), a_packed).expect("texture product");
                assert_eq!(t.launches(), 2, "{name}: only B is packed when A comes packed");
                let both = Packed { a: Some(&x_tex), b: Some(b_tex) };
                let tb = k.matmul.record_with(g, variant, &c(&got_ab), both).expect("both packed");
                assert_eq!(tb.launches(), 1, "{name}: nothing left to pack");
                submit(g, &[&t, &tb]);
                for (what, got) in [("A packed", &got_a), ("A and B packed", &got_ab)] {
                    let got = read(g, got, m * n);
                    let first_diff = want.iter().zip(&got).position(|(a, b)| a.to_bits() != b.to_bits());
                    assert_eq!(first_diff, None, "{name}, {what}: differs from naive");
                }
                let wrong = Packed { a: Some(&x_tex), b: Some(&spare) };
                assert!(
                    k.matmul.record_with(g, variant, &c(&got_ab), wrong).is_err(),
                    "{name}: a wrong B texture"
                );
            }
        }
    }
    // A B^T reads B as stored (n x k), so a B packed ahead, here by a gather's launch, serves
    // it: the bits of the naive kernel, and no pack launch.
    let (rows, n, kk) = (13, 16, 12);
    let a = upload(g, &random(rows * kk, 21));
    let w = upload(g, &padded(&random(n * kk, 22), 4));
    let (b_tex, spare) = (tex(n, kk), tex(rows, features));
    let y = upload_u32(g, &vec![0; rows]);
    let weights = Some(WeightPack { buffer: &w, offset: 4, texture: &b_tex });
    let gather = k.gather.record_texture(g, rows, &src, &spare, &y, weights).expect("gather packing B");
    submit(g, &[&gather]);
    let want = zeros(g, rows * n);
    let call = MatmulCall { b: (&w, 4), ..MatmulCall::plain(MatmulForm::ABt, rows, n, kk, &a, &w, &want) };
    let d = k.matmul.record(g, Variant::Naive, &call).expect("naive");
    submit(g, &[&d]);
    let want = read(g, &want, rows * n);
    let variants = [Variant::TexAbt, Variant::TexAbtSg];
    for variant in variants.into_iter().filter(|v| !v.needs_subgroups() || g.has_subgroups_of(8)) {
        let got = zeros(g, rows * n);
        let d = k
            .matmul
            .record_with(
                g,
                variant,
                &MatmulCall { c: (&got, 0), ..call },
                Packed { a: None, b: Some(&b_tex) },
            )
            .expect("A B^T with B packed ahead");
        assert_eq!(d.launches(), 2, "{}: only A is packed", variant.name());
        submit(g, &[&d]);
        let got = read(g, &got, rows * n);
        let first_diff = want.iter().zip(&got).position(|(a, b)| a.to_bits() != b.to_bits());
        assert_eq!(first_diff, None, "{}: A B^T with B packed ahead differs from naive", variant.name());
    }
}
