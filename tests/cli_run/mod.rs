//! The `wgtrain` binary run as a user runs it, for the command-line tests (`tests/cli.rs`,
//! `tests/cli_numpy.rs`): a private runtime folder (EGL and the Vulkan loader want one),
//! success with stdout back, or a failure as one stderr line and no panic.
#![allow(dead_code)]

use std::process::{Command, Output};

pub const WGTRAIN: &str = env!("CARGO_BIN_EXE_wgtrain");

pub fn run(args: &[&str]) -> Output {
    let runtime = std::env::temp_dir().join("wgtrain-cli-test-xdg");
    std::fs::create_dir_all(&runtime).expect("a runtime dir");
    Command::new(WGTRAIN).args(args).env("XDG_RUNTIME_DIR", &runtime).output().expect("wgtrain runs")
}

/// Runs and fails the test, showing stderr, unless the command succeeded; returns stdout.
pub fn ok(args: &[&str]) -> String {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "wgtrain {args:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command that must fail with exactly one stderr line and no panic; returns the exit
/// code and that line.
pub fn failure(args: &[&str]) -> (Option<i32>, String) {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "wgtrain {args:?} succeeded; stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "wgtrain {args:?} panicked: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line for {args:?}, got: {stderr}");
    (out.status.code(), stderr.trim_end().to_string())
}

/// [`failure`]'s line.
pub fn fails(args: &[&str]) -> String {
    failure(args).1
}

/// [`failure`] with exit code 1, an input error (clap's own errors exit with 2).
pub fn fails_on_input(args: &[&str]) -> String {
    let (code, line) = failure(args);
    assert_eq!(code, Some(1), "wgtrain {args:?} exit code; stderr: {line}");
    line
}
