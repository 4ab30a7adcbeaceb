//! The Python and JavaScript shims' own tests (`sdk-python/tests`, `sdk-js/test`), run with the
//! suite: natively, against fakes of the host imports.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn passes(mut command: Command, what: &str) -> String {
    let output = command.current_dir(repository()).output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(output.status.success(), "{what} failed:\n{stdout}\n{stderr}");
    format!("{stdout}{stderr}")
}

#[test]
fn the_python_shim_passes_its_tests() {
    let mut command = Command::new("python3");
    command.args(["-m", "unittest", "discover", "-s", "sdk-python/tests", "-v"]);
    let output = passes(command, "the Python shim's tests");
    assert!(output.contains("OK") && !output.contains("skipped"), "{output}");
}

#[test]
fn the_javascript_shim_passes_its_tests() {
    let mut command = Command::new("node");
    command.args(["--test", "sdk-js/test/rdev-plugin.test.mjs"]);
    let output = passes(command, "the JavaScript shim's tests");
    assert!(output.contains("# fail 0") && !output.contains("# pass 0"), "{output}");
}
