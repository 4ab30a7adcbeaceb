//! Builds the wasm workspaces the gateway loads, so that `cargo run -p rdev -- serve` needs no
//! extra step: the default plugins (`plugins/`) and the hostile test plugins (`tests/plugins/`).
//! Their directories reach the code as `RDEV_DEFAULT_PLUGINS_DIR` and `RDEV_TEST_PLUGINS_DIR`.
//! It also lists the sources `rdev plugins new` writes (templates, WIT, SDKs) into
//! `$OUT_DIR/authoring_files.rs`, so that the binary carries them.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let repo = manifest_dir
        .parent()
        .expect("host/ is inside the repository")
        .to_owned();
    for dir in [
        "plugins",
        "tests/plugins",
        "sdk",
        "shell",
        "wit",
        "templates",
        "sdk-python",
        "sdk-js",
    ] {
        for entry in watched_files(&repo.join(dir)) {
            println!("cargo:rerun-if-changed={}", entry.display());
        }
    }
    // A directory is scanned whole: a template file added later is noticed too.
    println!("cargo:rerun-if-changed={}", repo.join("templates").display());
    ensure_target();
    let target_dir = wasm_target_dir();
    let default_dir = build(&repo.join("plugins/Cargo.toml"), &target_dir.join("plugins"));
    let test_dir = build(&repo.join("tests/plugins/Cargo.toml"), &target_dir.join("test-plugins"));
    println!("cargo:rustc-env=RDEV_DEFAULT_PLUGINS_DIR={}", default_dir.display());
    println!("cargo:rustc-env=RDEV_TEST_PLUGINS_DIR={}", test_dir.display());
    write_authoring_files(&repo);
}

/// What a new plugin project may be written from: the templates, the WIT, the Rust SDK and the
/// shell parser it depends on (vendored into Rust projects), the Python and JavaScript shims, and
/// the workspace manifest the SDK's inherits its package settings from.
const AUTHORING_SOURCES: &[&str] = &[
    "Cargo.toml",
    "templates",
    "wit",
    "sdk/Cargo.toml",
    "sdk/src",
    "shell/Cargo.toml",
    "shell/src",
    "sdk-python/rdev_plugin.py",
    "sdk-js/rdev-plugin.js",
];

/// Writes `$OUT_DIR/authoring_files.rs`: `(path relative to the repository, bytes)` of every
/// file of `AUTHORING_SOURCES`, sorted.
fn write_authoring_files(repo: &Path) {
    let mut files: Vec<(String, PathBuf)> = AUTHORING_SOURCES
        .iter()
        .flat_map(|source| {
            let path = repo.join(source);
            if path.is_dir() {
                watched_files(&path)
            } else {
                vec![path]
            }
        })
        .map(|file| {
            let relative = file.strip_prefix(repo).expect("listed under the repository");
            (relative.to_string_lossy().into_owned(), file)
        })
        .collect();
    // Sorted as strings: the binary looks them up by binary search on the path.
    files.sort();
    let mut code = String::from("&[\n");
    for (relative, file) in files {
        code.push_str(&format!(
            "    ({relative:?}, include_bytes!({:?}) as &[u8]),\n",
            file.to_string_lossy()
        ));
    }
    code.push_str("]\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("authoring_files.rs");
    std::fs::write(out, code).expect("OUT_DIR is writable");
}

/// Source files under `dir`, skipping build output.
fn watched_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target"
            || name == "__pycache__"
            || name == "node_modules"
            || name.to_string_lossy().starts_with('.')
        {
            continue;
        }
        if path.is_dir() {
            files.extend(watched_files(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Adds the wasm target when the toolchain lacks it (rustup does not, with
/// `RUSTUP_AUTO_INSTALL=0`, even though `rust-toolchain.toml` names it).
fn ensure_target() {
    let sysroot = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["--print", "sysroot"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    if Path::new(&sysroot).join("lib/rustlib").join(TARGET).exists() {
        return;
    }
    let status = Command::new("rustup").args(["target", "add", TARGET]).status();
    if !status.is_ok_and(|s| s.success()) {
        panic!("the {TARGET} target is missing and `rustup target add {TARGET}` failed");
    }
}

/// A target directory for the wasm builds next to the outer one (whose lock cargo holds now).
fn wasm_target_dir() -> PathBuf {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    // OUT_DIR is <target>/<profile>/build/<pkg>/out.
    let target = out_dir
        .ancestors()
        .nth(4)
        .expect("OUT_DIR is inside the target directory");
    target.join("wasm")
}

/// Builds one wasm workspace in release mode and returns the directory holding its components.
fn build(manifest: &Path, target_dir: &Path) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--release", "--target", TARGET, "--manifest-path"])
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir);
    // The outer build's settings are for the host target; none of them may leak in.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_") && key != "CARGO_HOME" || key.starts_with("RUSTC") || key == "RUSTFLAGS" {
            command.env_remove(key.as_ref());
        }
    }
    let output = command.output().expect("cargo can be started");
    if !output.status.success() {
        panic!(
            "building {} failed:\n{}",
            manifest.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    target_dir.join(TARGET).join("release")
}
