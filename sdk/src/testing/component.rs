//! The component half of the harness, from a plain `#[test]`: runs a fixture against a compiled
//! component through `rdev plugins test --json` (the gateway's own runtime, budgets and checks,
//! bundled self-test included) and returns the same [`Report`] as a native run.
//!
//! ```ignore
//! #[test]
//! fn fixtures_pass_as_a_component() {
//!     let wasm = "target/wasm32-wasip2/release/my_plugin.wasm";
//!     rdev_plugin_sdk::testing::run_component(wasm, "fixtures.json").assert_passed();
//! }
//! ```

use super::{Report, label};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable naming the `rdev` binary for [`run_component`].
const RDEV_BIN: &str = "RDEV_BIN";

/// Runs `fixture` (a path, or JSON text: see [`super::load`]) against the component in `wasm`, with
/// the `rdev` binary named by the `RDEV_BIN` environment variable, else the one on `PATH`.
///
/// # Panics
/// If there is no such binary, or for the reasons [`run_component_with`] gives.
pub fn run_component(wasm: impl AsRef<Path>, fixture: &str) -> Report {
    run_component_with(&find_rdev(), wasm, fixture)
}

/// Runs `fixture` (a path, or JSON text: see [`super::load`]) against the component in `wasm`, with
/// `rdev plugins test <wasm> --fixture <file> --json` run by the binary `rdev`. A failing case is a
/// failed case of the report, not a panic: call [`Report::assert_passed`].
///
/// # Panics
/// If `rdev` cannot be started, an inline fixture cannot be written to a temporary file, or `rdev`
/// prints no report (e.g. the fixture is not valid, or the binary predates `--json`).
pub fn run_component_with(rdev: &Path, wasm: impl AsRef<Path>, fixture: &str) -> Report {
    let inline = fixture.trim_start().starts_with('{').then(|| TempFile::write(fixture));
    let file = inline.as_ref().map_or(Path::new(fixture), |temp| temp.0.as_path());
    let output = Command::new(rdev)
        .args(["plugins", "test"])
        .arg(wasm.as_ref())
        .arg("--fixture")
        .arg(file)
        .arg("--json")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; {}", rdev.display(), HOW_TO_POINT));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last_line = stdout.lines().rev().find(|line| !line.trim().is_empty()).unwrap_or("");
    let mut report: Report = serde_json::from_str(last_line).unwrap_or_else(|e| {
        panic!(
            "`{} plugins test {} --fixture {fixture_label} --json` printed no report ({e}); it exited with {}.\n\
             stdout:\n{stdout}\nstderr:\n{}",
            rdev.display(),
            wasm.as_ref().display(),
            output.status,
            String::from_utf8_lossy(&output.stderr),
            fixture_label = label(fixture),
        )
    });
    report.source = label(fixture).to_string();
    report
}

const HOW_TO_POINT: &str = "set RDEV_BIN to the gateway binary (e.g. RDEV_BIN=$PWD/target/debug/rdev after \
                            `cargo build -p rdev` in the rdev repository), or put `rdev` on PATH";

/// The binary named by `RDEV_BIN`, else `rdev` on `PATH`.
fn find_rdev() -> PathBuf {
    if let Some(bin) = std::env::var_os(RDEV_BIN) {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "{RDEV_BIN}={} is not a file; {HOW_TO_POINT}",
            bin.display()
        );
        return bin;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("rdev"))
        .find(|bin| bin.is_file())
        .unwrap_or_else(|| panic!("cannot find the `rdev` binary: {HOW_TO_POINT}"))
}

/// An inline fixture written to a file of its own, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn write(text: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "rdev-fixture-{}-{}.json",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inline_fixture_lives_in_a_distinct_file_until_dropped() {
        let (a, b) = (TempFile::write("{}"), TempFile::write("{}"));
        assert_ne!(a.0, b.0);
        assert_eq!(std::fs::read_to_string(&a.0).unwrap(), "{}");
        let path = a.0.clone();
        drop(a);
        assert!(!path.exists());
    }

    #[test]
    #[should_panic(expected = "set RDEV_BIN")]
    fn a_missing_binary_says_how_to_point_at_it() {
        run_component_with(Path::new("/nonexistent/rdev"), "x.wasm", "fixtures.json");
    }

    #[test]
    #[should_panic(expected = "printed no report")]
    fn output_that_is_not_a_report_is_an_error() {
        run_component_with(Path::new("/bin/echo"), "x.wasm", r#"{"sanitizer": []}"#);
    }
}
