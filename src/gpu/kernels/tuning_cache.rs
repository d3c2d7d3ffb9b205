//! The autotuner's decisions kept between processes: one small JSON file per adapter, driver
//! version and wgtrain version, in the user's cache folder, so that only the first process on
//! a machine pays for timing the matmul variants.
//!
//! It is a cache: a missing, unreadable, corrupt or foreign file is ignored (and replaced at
//! the next save), a failed write leaves training untouched, and a decision never changes a
//! result (every variant gives the same bits), only the speed.

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic_file::write_atomic;
use crate::error::{Error, Result};
use crate::gpu::AdapterReport;

/// Where a device's matmul tuning decisions are kept between runs (see
/// [`crate::TrainerOptions::tuning_cache`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TuningCache {
    /// The user's cache folder: `$XDG_CACHE_HOME/wgtrain`, else `$HOME/.cache/wgtrain`
    /// (`%LOCALAPPDATA%\wgtrain` on Windows). Nothing is kept when none of these is set.
    #[default]
    User,
    /// This folder (created when the first decision is saved).
    Dir(PathBuf),
    /// Neither read nor written: every process measures again. Shipped defaults for known
    /// software drivers still apply.
    Disabled,
}

impl TuningCache {
    /// The folder the decisions go to, or `None` when disabled or no cache folder is known.
    pub fn dir(&self) -> Option<PathBuf> {
        match self {
            TuningCache::User => user_cache_dir(&|name| std::env::var_os(name)),
            TuningCache::Dir(dir) => Some(dir.clone()),
            TuningCache::Disabled => None,
        }
    }
}

/// `$XDG_CACHE_HOME/wgtrain`, `$HOME/.cache/wgtrain` or `%LOCALAPPDATA%\wgtrain`, the first
/// whose variable is set to an absolute path (the XDG rule: relative paths are ignored).
/// `var` looks the variables up (the environment, or a table in tests).
pub(crate) fn user_cache_dir(var: &dyn Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    let absolute = |name: &str| var(name).map(PathBuf::from).filter(|p| p.is_absolute());
    if let Some(xdg) = absolute("XDG_CACHE_HOME") {
        return Some(xdg.join("wgtrain"));
    }
    if let Some(home) = absolute("HOME") {
        return Some(home.join(".cache").join("wgtrain"));
    }
    absolute("LOCALAPPDATA").map(|local| local.join("wgtrain"))
}

/// Bumped when the file's meaning changes; a file of another format is ignored.
const FORMAT: u32 = 1;

/// What a file is valid for: decisions measured on one adapter with one driver version by one
/// version of wgtrain (whose kernels may differ from another's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Identity {
    wgtrain: String,
    adapter: String,
    backend: String,
    device_type: String,
    driver: String,
}

impl Identity {
    fn of(report: &AdapterReport) -> Self {
        Identity {
            wgtrain: env!("CARGO_PKG_VERSION").to_string(),
            adapter: report.name.clone(),
            backend: report.backend.clone(),
            device_type: report.device_type.clone(),
            driver: report.driver.clone(),
        }
    }

    /// A file name unique to the identity (FNV-1a: stable across Rust versions, unlike
    /// `DefaultHasher`). The file itself repeats the identity, so a collision is detected.
    fn file_name(&self) -> String {
        let text = format!(
            "{}\n{}\n{}\n{}\n{}",
            self.wgtrain, self.adapter, self.backend, self.device_type, self.driver
        );
        let hash = text
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3));
        format!("matmul-{hash:016x}.json")
    }
}

/// One decision: for products of this form and shape class, use this variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Decision {
    /// `AB`, `AtB` or `ABt`.
    pub form: String,
    /// log2 buckets of m, n and k (see `autotune::key`).
    pub buckets: [u32; 3],
    /// The variants that could run the call (alignment decides), by name.
    pub supported: Vec<String>,
    /// Whether A arrived packed into a texture.
    pub a_packed: bool,
    /// The variant chosen, by name.
    pub variant: String,
}

impl Decision {
    fn same_key(&self, other: &Decision) -> bool {
        self.form == other.form
            && self.buckets == other.buckets
            && self.supported == other.supported
            && self.a_packed == other.a_packed
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct CacheFile {
    format: u32,
    #[serde(flatten)]
    identity: Identity,
    decisions: Vec<Decision>,
}

/// The cache file of one device.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    path: PathBuf,
    identity: Identity,
}

/// Files larger than this are not read: a decision is ~150 bytes and a device makes a few
/// dozen, so anything this big is not ours.
const MAX_FILE_BYTES: u64 = 1 << 20;

impl Store {
    /// The file for `report`'s adapter under `setting`'s folder, or `None` when disabled.
    pub fn new(setting: &TuningCache, report: &AdapterReport) -> Option<Store> {
        let identity = Identity::of(report);
        let path = setting.dir()?.join(identity.file_name());
        Some(Store { path, identity })
    }

    /// Where the decisions are kept.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The decisions on file. A missing file is no decisions; an unreadable, oversized,
    /// corrupt or foreign one is an error for the caller to log and then ignore.
    pub fn load(&self) -> Result<Vec<Decision>> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.path, e)),
        };
        let len = file.metadata().map_err(|e| Error::io(&self.path, e))?.len();
        if len > MAX_FILE_BYTES {
            return Err(Error::file(&self.path, format!("{len} bytes: too large for a tuning cache")));
        }
        let parsed: CacheFile = serde_json::from_reader(std::io::BufReader::new(file))
            .map_err(|e| Error::file(&self.path, format!("not a tuning cache ({e}); it will be replaced")))?;
        if parsed.format != FORMAT || parsed.identity != self.identity {
            return Err(Error::file(
                &self.path,
                "written for another adapter, driver or format; it will be replaced",
            ));
        }
        Ok(parsed.decisions)
    }

    /// Adds `new` to the decisions on file (replacing any of the same key) and writes the
    /// file atomically. What was on file is kept only if it loads.
    pub fn save(&self, new: &[Decision]) -> Result<()> {
        let mut decisions = self.load().unwrap_or_default();
        decisions.retain(|d| !new.iter().any(|n| n.same_key(d)));
        decisions.extend(new.iter().cloned());
        let file = CacheFile { format: FORMAT, identity: self.identity.clone(), decisions };
        let json = serde_json::to_vec_pretty(&file).map_err(|e| Error::file(&self.path, e.to_string()))?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        write_atomic(&self.path, &json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(driver: &str) -> AdapterReport {
        AdapterReport {
            index: 0,
            name: "llvmpipe (LLVM 15.0.6, 256 bits)".into(),
            backend: "vulkan".into(),
            device_type: "cpu".into(),
            driver: driver.into(),
            max_storage_buffer_binding_size: 1 << 27,
            max_buffer_size: 1 << 28,
            max_compute_invocations_per_workgroup: 256,
            max_compute_workgroup_storage_size: 16384,
            timestamp_queries: false,
        }
    }

    fn decision(variant: &str, buckets: [u32; 3]) -> Decision {
        Decision {
            form: "AB".into(),
            buckets,
            supported: vec!["tex_ab".into(), "rb4x8".into()],
            a_packed: true,
            variant: variant.into(),
        }
    }

    fn store(dir: &Path, driver: &str) -> Store {
        Store::new(&TuningCache::Dir(dir.to_path_buf()), &report(driver)).expect("a folder is set")
    }

    #[test]
    fn decisions_round_trip_and_merge_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir.path().join("nested"), "Mesa 22.3.6");
        assert_eq!(s.load().unwrap(), Vec::new(), "no file yet: no decisions");
        s.save(&[decision("tex_ab", [8, 7, 10])]).unwrap();
        s.save(&[decision("rb4x8", [8, 4, 7])]).unwrap();
        s.save(&[decision("rb4x8", [8, 7, 10])]).unwrap();
        let got = s.load().unwrap();
        assert_eq!(got, vec![decision("rb4x8", [8, 4, 7]), decision("rb4x8", [8, 7, 10])], "replaced by key");
        let leftovers: Vec<_> = std::fs::read_dir(s.path().parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp."))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");
    }

    #[test]
    fn another_driver_version_uses_another_file() {
        let dir = tempfile::tempdir().unwrap();
        let old = store(dir.path(), "Mesa 22.3.6");
        let new = store(dir.path(), "Mesa 24.0.1");
        assert_ne!(old.path(), new.path());
        old.save(&[decision("tex_ab", [8, 7, 10])]).unwrap();
        assert_eq!(new.load().unwrap(), Vec::new(), "a new driver starts with no decisions");
        // A file renamed (or a hash collision) into the other's place is refused by its content.
        std::fs::copy(old.path(), new.path()).unwrap();
        assert!(new.load().is_err(), "the file names another driver");
    }

    #[test]
    fn corrupt_files_are_errors_to_ignore_and_get_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), "Mesa 22.3.6");
        // (contents, why)
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty (a crash before the first write of an older, non-atomic writer)"),
            (b"{\"format\": 1, \"decisions\": [", "truncated JSON"),
            (b"\xff\xfe\x00garbage", "not UTF-8"),
            (b"[]", "JSON of another shape"),
            (b"{\"format\": 99, \"wgtrain\": \"0.1.0\", \"decisions\": []}", "a future format"),
        ];
        for (bytes, why) in cases {
            std::fs::write(s.path(), bytes).unwrap();
            assert!(s.load().is_err(), "{why}: must be reported, not trusted");
            s.save(&[decision("tex_ab", [8, 7, 10])]).unwrap_or_else(|e| panic!("{why}: save failed: {e}"));
            assert_eq!(s.load().unwrap(), vec![decision("tex_ab", [8, 7, 10])], "{why}: replaced");
        }
        std::fs::write(s.path(), vec![b' '; (MAX_FILE_BYTES + 1) as usize]).unwrap();
        assert!(s.load().is_err(), "an oversized file is not read");
    }

    #[test]
    fn an_unwritable_folder_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("a-file");
        std::fs::write(&blocker, b"x").unwrap();
        let s = store(&blocker.join("below-a-file"), "Mesa 22.3.6");
        assert!(s.save(&[decision("tex_ab", [8, 7, 10])]).is_err());
        assert!(!matches!(s.load(), Ok(d) if !d.is_empty()), "nothing can have been saved");
    }

    #[test]
    fn the_user_cache_folder_follows_xdg_then_home() {
        // (XDG_CACHE_HOME, HOME, LOCALAPPDATA, expected, why)
        type Row<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>, Option<&'a str>, &'a str);
        let rows: &[Row] = &[
            (Some("/x"), Some("/h"), None, Some("/x/wgtrain"), "XDG_CACHE_HOME first"),
            (None, Some("/h"), None, Some("/h/.cache/wgtrain"), "then ~/.cache"),
            (Some("rel"), Some("/h"), None, Some("/h/.cache/wgtrain"), "a relative XDG path is ignored"),
            (Some(""), Some("/h"), None, Some("/h/.cache/wgtrain"), "an empty XDG path is ignored"),
            (None, None, None, None, "nothing set: no cache"),
        ];
        for &(xdg, home, local, want, why) in rows {
            let var = |name: &str| {
                match name {
                    "XDG_CACHE_HOME" => xdg,
                    "HOME" => home,
                    "LOCALAPPDATA" => local,
                    _ => None,
                }
                .map(std::ffi::OsString::from)
            };
            assert_eq!(user_cache_dir(&var), want.map(PathBuf::from), "{why}");
        }
        assert_eq!(TuningCache::Disabled.dir(), None);
        assert_eq!(TuningCache::Dir("/d".into()).dir(), Some(PathBuf::from("/d")));
    }
}
