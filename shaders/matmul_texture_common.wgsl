// What the texture matmul kernels share (matmul_texture.wgsl, and matmul_texture_sg.wgsl
// where the device has subgroups): the operand textures, the bias, the column sums read from
// B's texture and the store of an 8x8 block. A library, not a kernel.
// Uses matmul_params.wgsl and matmul_epilogue_vec4.wgsl.

@group(0) @binding(1) var ta: texture_2d<f32>;
@group(0) @binding(2) var tb: texture_2d<f32>;
// The buffer B was packed from: the bias lives there (at p.bias_off), as for the other variants.
@group(0) @binding(5) var<storage, read> b_src: array<f32>;

fn bias_at(j: u32) -> f32 {
    return b_src[p.bias_off + j];
}

// The column sums of B folded into the product's launch, as col_sums_slice in
// matmul_epilogue.wgsl (see there) but read from B's texture, 4 columns per texel: each lane
// adds its column's rows one at a time in order from 0.0, reduce.wgsl's column_sums order, so
// the same bits (the packed texture holds B's floats unchanged). n and sums_off are multiples
// of 4 here (the host checks). Each lane takes one texel column at most (slots >= n / 4:
// `grid_tests` in matmul.rs).
// `bt`: the texture holds B of A B^T as stored (see bt_rows).
fn col_sums_slice(wid: vec3<u32>, nwg: vec3<u32>, li: u32, wg: u32, bt: bool) {
    let slots = nwg.x * (nwg.y - p.sums_row) * wg;
    // Bounds guard: texel columns past n / 4.
    for (var x = ((wid.y - p.sums_row) * nwg.x + wid.x) * wg + li; x < p.n / 4u; x = x + slots) {
        var acc = vec4<f32>(0.0);
        if (bt) {
            for (var q = 0; q < i32(p.k / 4u); q = q + 1) {
                let rows = bt_rows(q, i32(x));
                acc = acc + rows[0];
                acc = acc + rows[1];
                acc = acc + rows[2];
                acc = acc + rows[3];
            }
        } else {
            for (var q = 0; q < i32(p.k); q = q + 1) {
                acc = acc + textureLoad(tb, vec2<i32>(i32(x), q), 0);
            }
        }
        c[p.sums_off / 4u + x] = acc;
    }
}

// Rows 4q..4q+3 of B at its columns 4c..4c+3 (B's texel (c, 4q + i) as row i): fetched as
// stored, or for `bt` (B of A B^T as stored) through bt_rows: the 8x8 A B kernel's B read (the
// subgroup kernel keeps its own four loads, faster there on lavapipe: BENCHMARKS.md).
fn b_rows(q: i32, c: i32, bt: bool) -> mat4x4<f32> {
    if (bt) {
        return bt_rows(q, c);
    }
    return mat4x4<f32>(
        textureLoad(tb, vec2<i32>(c, 4 * q), 0),
        textureLoad(tb, vec2<i32>(c, 4 * q + 1), 0),
        textureLoad(tb, vec2<i32>(c, 4 * q + 2), 0),
        textureLoad(tb, vec2<i32>(c, 4 * q + 3), 0),
    );
}

// For mm_tex_abt and mm_tex_abt_sg, whose texture holds B of C = A B^T as stored (n x k,
// texels k/4 x n): rows 4q..4q+3 of B^T's columns 4c..4c+3 (column i of the result is what
// the A B kernels fetch as the texel (c, 4q + i) of B's texture), from the 4 texels at
// column q of B's rows 4c..4c+3. Floats moved, not computed: the same bits.
fn bt_rows(q: i32, c: i32) -> mat4x4<f32> {
    return transpose(mat4x4<f32>(
        textureLoad(tb, vec2<i32>(q, 4 * c), 0),
        textureLoad(tb, vec2<i32>(q, 4 * c + 1), 0),
        textureLoad(tb, vec2<i32>(q, 4 * c + 2), 0),
        textureLoad(tb, vec2<i32>(q, 4 * c + 3), 0),
    ));
}

// Stores the 8x8 block at (row0, col0): acc[2r] holds columns col0..col0+3 of row row0 + r,
// acc[2r + 1] columns col0+4..col0+7. One store_row4 in a loop whose bound the compiler
// cannot see (the rows left in C): unrolled, the 16 stores held 128 copies of the activation
// switches and lavapipe spent ~2 s compiling each kernel; the loop runs once per invocation.
// A plain product (no epilogue, no activation code to copy) whose block lies inside C stores
// its 16 vec4s directly, as store_column_block in matmul_texture_sg.wgsl does, and for the
// same reason (BENCHMARKS.md, "The epilogue's stores").
fn store_block(row0: u32, col0: u32, acc: array<vec4<f32>, 16>) {
    if (p.flags == 0u && row0 + 8u <= p.m && col0 + 8u <= p.n) {
        let rs = p.n / 4u;
        let base = (p.c_off + row0 * p.n + col0) / 4u;
        c[base + 0u * rs] = acc[0];
        c[base + 0u * rs + 1u] = acc[1];
        c[base + 1u * rs] = acc[2];
        c[base + 1u * rs + 1u] = acc[3];
        c[base + 2u * rs] = acc[4];
        c[base + 2u * rs + 1u] = acc[5];
        c[base + 3u * rs] = acc[6];
        c[base + 3u * rs + 1u] = acc[7];
        c[base + 4u * rs] = acc[8];
        c[base + 4u * rs + 1u] = acc[9];
        c[base + 5u * rs] = acc[10];
        c[base + 5u * rs + 1u] = acc[11];
        c[base + 6u * rs] = acc[12];
        c[base + 6u * rs + 1u] = acc[13];
        c[base + 7u * rs] = acc[14];
        c[base + 7u * rs + 1u] = acc[15];
        return;
    }
    var a = acc;
    let blocks = 2u * min(8u, p.m - row0);
    for (var t = 0u; t < blocks; t = t + 1u) {
        store_row4(row0 + t / 2u, col0 + 4u * (t % 2u), a[t]);
    }
}
