//! Every WGSL file parsed and validated by naga on the CPU, no adapter needed (as naga's own
//! tests do for their `.wgsl` folder).
//!
//! A kernel is validated as the device compiles it: `shader_source(file)`, its own text first
//! and then the libraries its `// Requires:` line names, so an error's line number is the
//! file's own. Libraries are checked through their users (and `activation_fns.wgsl`, which
//! stands alone, by itself too). The folder on disk and `SHADERS` must list the same files, so
//! a new shader cannot be forgotten by the embedding or by these tests.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::gpu::kernels::{requirements, shader_source, SHADERS};
use naga::valid::{Capabilities, ValidationFlags, Validator};
use naga::ShaderStage;

/// The entry points each kernel file must define; the host wrappers build pipelines by these
/// names (src/gpu/kernels/*.rs), so a rename in one place only fails here first.
const ENTRY_POINTS: &[(&str, &[&str])] = &[
    ("activation.wgsl", &["act_forward", "act_backward"]),
    ("dense_backward.wgsl", &["dense_backward", "dense_backward_tex"]),
    ("dropout.wgsl", &["dropout_forward", "dropout_backward"]),
    ("gather.wgsl", &["gather"]),
    ("gather_targets.wgsl", &["gather_targets"]),
    ("gather_texture.wgsl", &["gather_tex", "gather_tex4", "gather_tex_pack", "gather_tex4_pack"]),
    ("gather_values.wgsl", &["gather_values"]),
    ("gather_vec4.wgsl", &["gather4"]),
    ("matmul.wgsl", &["mm_naive", "mm_tiled", "mm_tiled_k64", "mm_tiled8_k64", "mm_rb4x4", "mm_rb4x8"]),
    ("matmul_texture.wgsl", &["mm_tex_ab", "mm_tex_abt", "mm_tex_atb"]),
    ("matmul_texture_sg.wgsl", &["mm_tex_ab_sg", "mm_tex_abt_sg", "mm_tex_atb_sg"]),
    ("matmul_vec4.wgsl", &["mm_v4_ab", "mm_v4_atb", "mm_v4_abt"]),
    ("optim.wgsl", &["adam", "sgd"]),
    ("optim_vec4.wgsl", &["adam4", "sgd4"]),
    ("pack_texture.wgsl", &["pack_texture"]),
    ("reduce.wgsl", &["column_sums", "column_sums_batched", "scale", "add_scaled"]),
    ("regression_loss.wgsl", &["regression_loss"]),
    ("sigmoid_xent.wgsl", &["sigmoid_xent"]),
    ("softmax_head.wgsl", &["softmax_head"]),
    ("softmax_xent.wgsl", &["softmax_xent"]),
];

/// Files with no entry point: appended to the kernels that require them.
const LIBRARIES: &[&str] = &[
    "activation_fns.wgsl",
    "gather_common.wgsl",
    "matmul_epilogue.wgsl",
    "matmul_epilogue_vec4.wgsl",
    "matmul_params.wgsl",
    "matmul_texture_common.wgsl",
    "optim_common.wgsl",
    "pack_params.wgsl",
    "softmax_xent_row.wgsl",
];

/// Kernels that use subgroup operations: validated with the subgroup capability the device
/// then has (the host builds them only there); every other file is validated without it.
const NEEDS_SUBGROUPS: &[&str] = &["matmul_texture_sg.wgsl"];

fn shaders_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("shaders")
}

fn files_on_disk() -> BTreeSet<String> {
    let dir = shaders_dir();
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".wgsl"))
        .collect()
}

fn raw(file: &str) -> &'static str {
    SHADERS
        .iter()
        .find(|(name, _)| *name == file)
        .map(|(_, src)| *src)
        .unwrap_or_else(|| panic!("{file} is not in SHADERS"))
}

/// Parses and validates `source`, attributing errors to `file` with its line numbers.
fn validate(file: &str, source: &str) -> Result<naga::Module, String> {
    // Typed as wgpu's own naga: this only compiles while the dev-dependency is the very crate
    // wgpu compiles shaders with, so what passes here is what the device accepts.
    let module: wgpu::naga::Module =
        naga::front::wgsl::parse_str(source).map_err(|e| e.emit_to_string_with_path(source, file))?;
    let mut validator = if NEEDS_SUBGROUPS.contains(&file) {
        let mut v = Validator::new(ValidationFlags::all(), Capabilities::default() | Capabilities::SUBGROUP);
        v.subgroup_stages(naga::valid::ShaderStages::COMPUTE)
            .subgroup_operations(naga::valid::SubgroupOperationSet::BALLOT);
        v
    } else {
        Validator::new(ValidationFlags::all(), Capabilities::default())
    };
    validator.validate(&module).map_err(|e| e.emit_to_string_with_path(source, file))?;
    Ok(module)
}

fn compute_entry_points(module: &naga::Module) -> BTreeSet<String> {
    module.entry_points.iter().filter(|e| e.stage == ShaderStage::Compute).map(|e| e.name.clone()).collect()
}

#[test]
fn the_folder_and_the_embedded_list_hold_the_same_files() {
    let disk = files_on_disk();
    let embedded: BTreeSet<String> = SHADERS.iter().map(|(name, _)| name.to_string()).collect();
    let missing: Vec<_> = disk.difference(&embedded).collect();
    let stale: Vec<_> = embedded.difference(&disk).collect();
    assert!(missing.is_empty(), "shaders/ has files that SHADERS does not embed: {missing:?}");
    assert!(stale.is_empty(), "SHADERS names files that shaders/ does not have: {stale:?}");
    // The embedded text is the file's current text (include_str! at build time).
    for (name, src) in SHADERS {
        let on_disk = std::fs::read_to_string(shaders_dir().join(name)).expect("read shader");
        assert_eq!(&on_disk, src, "{name}: the embedded copy differs from the file (stale build?)");
    }
    // Every file is either a kernel or a library of this test, so none goes unchecked.
    let classified: BTreeSet<String> = ENTRY_POINTS
        .iter()
        .map(|(f, _)| f.to_string())
        .chain(LIBRARIES.iter().map(|f| f.to_string()))
        .collect();
    assert_eq!(disk, classified, "every shader must be listed in ENTRY_POINTS or LIBRARIES of this test");
}

#[test]
fn every_kernel_parses_validates_and_has_its_entry_points() {
    let mut kernels = 0;
    for (file, _) in SHADERS {
        let source = shader_source(file).unwrap_or_else(|e| panic!("{file}: {e}"));
        if !source.contains("@compute") {
            continue;
        }
        let module = validate(file, &source).unwrap_or_else(|msg| panic!("{file} does not validate:\n{msg}"));
        let found = compute_entry_points(&module);
        let want: BTreeSet<String> = ENTRY_POINTS
            .iter()
            .find(|(f, _)| f == file)
            .unwrap_or_else(|| panic!("{file} has @compute entry points but is not in ENTRY_POINTS"))
            .1
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(found, want, "{file}: compute entry points differ from what the host builds");
        kernels += 1;
    }
    assert_eq!(kernels, ENTRY_POINTS.len(), "every kernel file in ENTRY_POINTS must have been validated");
}

#[test]
fn libraries_have_no_entry_point_and_each_is_required_by_a_kernel() {
    for lib in LIBRARIES {
        let src = raw(lib);
        assert!(!src.contains("@compute"), "{lib} is a library: it must declare no entry point");
        let users: Vec<&str> = SHADERS
            .iter()
            .filter(|(_, s)| s.contains("@compute") && requirements(s).iter().any(|r| r == lib))
            .map(|(f, _)| *f)
            .collect();
        assert!(!users.is_empty(), "{lib} is required by no kernel, so nothing validates or uses it");
    }
    // Every requirement names an existing library (shader_source would fail otherwise).
    for (file, src) in SHADERS {
        for req in requirements(src) {
            assert!(LIBRARIES.contains(&req.as_str()), "{file} requires {req}, which is not a library");
        }
    }
}

#[test]
fn activation_fns_validates_on_its_own() {
    // It depends on nothing, so it must stand alone; matmul_epilogue.wgsl refers to the
    // bindings of its users and is validated through them above.
    let module =
        validate("activation_fns.wgsl", raw("activation_fns.wgsl")).unwrap_or_else(|msg| panic!("{msg}"));
    for f in ["act_apply", "act_grad"] {
        assert!(
            module.functions.iter().any(|(_, func)| func.name.as_deref() == Some(f)),
            "activation_fns.wgsl must define {f}"
        );
    }
}

#[test]
fn requirements_reads_the_requires_lines_in_order() {
    assert_eq!(
        requirements(raw("matmul.wgsl")),
        ["matmul_params.wgsl", "matmul_epilogue.wgsl", "activation_fns.wgsl"]
    );
    assert_eq!(requirements(raw("activation.wgsl")), ["activation_fns.wgsl"]);
    assert_eq!(requirements(raw("optim.wgsl")), ["optim_common.wgsl"]);
    assert_eq!(requirements(raw("softmax_xent.wgsl")), ["softmax_xent_row.wgsl"]);
    assert!(requirements(raw("reduce.wgsl")).is_empty(), "reduce.wgsl requires nothing");
    // The kernel's own text comes first, so its lines keep their numbers.
    let full = shader_source("activation.wgsl").expect("source");
    assert!(full.starts_with(raw("activation.wgsl")), "shader_source must put the file's own text first");
    assert!(full.ends_with(raw("activation_fns.wgsl")), "and append its library after");
    assert!(shader_source("no_such.wgsl").is_err(), "an unknown shader is an error");
}

/// Proves the error path of the validation test: a type error injected on a known line of
/// `activation.wgsl` yields a message that names that file and that line.
#[test]
fn an_injected_type_error_is_reported_with_its_file_and_line() {
    let original = raw("activation.wgsl");
    let target = "out[p.out_off + i] = act_apply(p.code, x[p.in_off + i]);";
    let line = original.lines().position(|l| l.trim() == target).expect("the act_forward store line") + 1;
    // A u32 stored into an array<f32>: a type error, not a syntax one.
    let broken_text = original.replacen(target, "out[p.out_off + i] = p.code;", 1);
    let mut broken = broken_text;
    for lib in requirements(original) {
        broken.push('\n');
        broken.push_str(raw(&lib));
    }
    let msg = validate("activation.wgsl", &broken).expect_err("a u32 stored into f32 must not validate");
    let at = format!("activation.wgsl:{line}:");
    assert!(msg.contains(&at), "the error must name `{at}`, got:\n{msg}");

    // A second fault deep in a library keeps the library's text but not the kernel's numbering:
    // it must still be reported (an error, not a silent pass).
    let lib_broken = shader_source("activation.wgsl").expect("source").replacen(
        "return max(x, 0.0);",
        "return max(x, 0u);",
        1,
    );
    assert!(
        validate("activation.wgsl", &lib_broken).is_err(),
        "a type error in an appended library must fail validation"
    );
}
