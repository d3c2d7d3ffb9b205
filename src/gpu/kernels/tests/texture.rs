//! The texture path on lavapipe: the gather into a texture (bit for bit against the CPU's
//! lookup, read back through a texture-to-buffer copy) and a texture matmul reading that
//! gathered batch directly (bit for bit against the naive kernel on the buffer gather's
//! output: every variant adds in the same order).

use super::common::*;
use super::*;
use crate::gpu::kernels::{pack_pixels, pixel_lut_buffer, submit, GatherSources, MatmulCall, Variant};
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

/// Reads an rgba32float texture of `width` x `height` texels back as rows of `4 width` floats.
fn read_texture(tex: &wgpu::Texture) -> Vec<f32> {
    let g = &fixture().gpu;
    let (w, h) = (tex.width() as usize, tex.height() as usize);
    let row_bytes = (w * 16).next_multiple_of(256);
    let usage = wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let buf = g.storage_buffer("texture readback", (row_bytes * h) as u64, usage).expect("buffer");
    let mut enc = g.device.create_command_encoder(&Default::default());
    enc.copy_texture_to_buffer(
        tex.as_image_copy(),
        wgpu::TexelCopyBufferInfo {
            buffer: &buf,
            layout: wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(row_bytes as u32),
                rows_per_image: Some(h as u32),
            },
        },
        wgpu::Extent3d { width: w as u32, height: h as u32, depth_or_array_layers: 1 },
    );
    g.queue.submit([enc.finish()]);
    let all: Vec<f32> = g.read(&buf, 0, row_bytes * h / 4).expect("read");
    all.chunks(row_bytes / 4).flat_map(|row| row[..4 * w].to_vec()).collect()
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
        let d = f.kernels.gather.record_texture(&f.gpu, rows, &src, &tex, &y).expect("record");
        submit(&f.gpu, &[&d]);
        let x = read_texture(&tex);
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
    assert!(f.kernels.gather.record_texture(&f.gpu, 4, &padded, &tex, &y).is_err());
    let src = batch.sources(8);
    let err =
        f.kernels.gather.record_texture(&f.gpu, 5, &src, &tex, &y).expect_err("5 rows in a 4-row texture");
    assert!(err.to_string().contains("does not fit"), "{err}");
    let wide = f.kernels.matmul.operand_texture(&f.gpu, 8, 16).expect("texture").expect("fits");
    assert!(f.kernels.gather.record_texture(&f.gpu, 4, &src, &wide, &y).is_err(), "a texture 4 texels wide");
}

/// The products that read the batch, both ways: from the buffer gather with the naive kernel,
/// and from the texture gather with the texture variants (A not packed again): same bits.
#[test]
fn texture_products_on_the_gathered_batch_match_the_buffer_path_bit_for_bit() {
    let _serial = serial();
    let f = fixture();
    let (g, k) = (&f.gpu, &f.kernels);
    let features = 784;
    let batch = Batch::new(features);
    let src = batch.sources(features);
    for (rows, n) in [(13usize, 64usize), (32, 12)] {
        let y = upload_u32(g, &vec![0; rows]);
        let x = zeros(g, rows * features);
        let tex = k.matmul.operand_texture(g, rows, features).expect("texture").expect("fits");
        let gathers = [
            k.gather.record(g, rows, &src, (&x, 0), &y).expect("buffer gather"),
            k.gather.record_texture(g, rows, &src, &tex, &y).expect("texture gather"),
        ];
        submit(g, &[&gathers[0], &gathers[1]]);
        // Forward (x W) and weight gradient (x^T dz).
        let w = upload(g, &random(features * n, 11));
        let dz = upload(g, &random(rows * n, 12));
        for (form, m, kk, b) in [(MatmulForm::AB, rows, features, &w), (MatmulForm::AtB, features, rows, &dz)]
        {
            let want = zeros(g, m * n);
            let got = zeros(g, m * n);
            let naive = MatmulCall::plain(form, m, n, kk, &x, b, &want);
            let d = k.matmul.record(g, Variant::Naive, &naive).expect("naive");
            let variant = if form == MatmulForm::AB { Variant::TexAb } else { Variant::TexAtb };
            let call = MatmulCall::plain(form, m, n, kk, &x, b, &got);
            assert!(k.matmul.supports(variant, &call), "{} supports {}", variant.name(), form.name());
            let t = k.matmul.record_with(g, variant, &call, Some(&tex)).expect("texture product");
            assert_eq!(t.launches(), 2, "{}: only B is packed when A comes packed", variant.name());
            submit(g, &[&d, &t]);
            let (want, got) = (read(g, &want, m * n), read(g, &got, m * n));
            let first_diff = want.iter().zip(&got).position(|(a, b)| a.to_bits() != b.to_bits());
            assert_eq!(first_diff, None, "{} rows={rows} n={n}: differs from naive", variant.name());
        }
    }
}
