//! The layering of `src/`: each top-level module imports only modules declared above it in
//! [`LAYERS`], so the tree reads bottom-up (spec, data, executors, parallel, callbacks,
//! checkpoint, train) and no two modules depend on each other. The test reads every
//! `crate::` path in `src/` (in `use` lines and inline paths alike) and fails on one that
//! reaches up or sideways into a later layer.

use std::path::{Path, PathBuf};

/// The layers, lowest first. Modules on one line are peers and may not import each other.
const LAYERS: &[&[&str]] = &[
    &["error", "ops"],
    &["atomic_file"],
    &["spec"],
    &["data"],
    &["exec"],
    &["cpu"],
    &["gpu"],
    &["parallel"],
    &["callbacks"],
    &["checkpoint"],
    &["train"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`src/gpu/kernels/matmul.rs` -> `gpu`).
fn owner(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    Some(first.trim_end_matches(".rs").to_string())
}

/// Every top-level module named after `crate::` in `text`, with its line number; a grouped
/// `use crate::{a, b::c}` names each of them.
fn imports(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                for item in inner.split(',') {
                    let name: String =
                        item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if !name.is_empty() {
                        out.push((n + 1, name));
                    }
                }
            } else {
                let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                out.push((n + 1, name));
            }
        }
    }
    out
}

#[test]
fn every_module_imports_only_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut checked = 0;
    let mut violations = Vec::new();
    for file in &files {
        let Some(module) = owner(&src, file) else { continue };
        // lib.rs declares and re-exports everything; bin/ is a client of the public API.
        if module == "lib" || module == "bin" {
            continue;
        }
        let Some(own) = layer_of(&module) else {
            violations.push(format!("{}: module `{module}` is in no layer of LAYERS", file.display()));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("read source");
        for (line, target) in imports(&text) {
            checked += 1;
            if target == module {
                continue;
            }
            match layer_of(&target) {
                Some(layer) if layer < own => {}
                Some(_) => violations.push(format!(
                    "{}:{line}: `{module}` imports `crate::{target}`, which is not below it",
                    file.display()
                )),
                // Items re-exported at the crate root (crate::Result): fine only if the
                // root item comes from a lower layer, which the compiler cannot tell us here.
                None => violations.push(format!(
                    "{}:{line}: `crate::{target}` is not a module of LAYERS; import it from its module",
                    file.display()
                )),
            }
        }
    }
    assert!(checked > 50, "only {checked} imports found: is the parser reading src/?");
    assert!(violations.is_empty(), "layering violations:\n{}", violations.join("\n"));
}

#[test]
fn the_parser_sees_grouped_and_inline_paths() {
    let text = "use crate::{spec::Network, data};\nlet x = crate::gpu::open(); // crate::train\n";
    let found: Vec<String> = imports(text).into_iter().map(|(_, m)| m).collect();
    assert_eq!(found, ["spec", "data", "gpu"], "grouped items and inline paths, comments ignored");
}
