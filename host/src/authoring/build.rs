//! `rdev plugins build`: a project's component, built by its language's own tool — `cargo` for
//! Rust (`wasm32-wasip2`), `componentize-py` for Python, `componentize-js` for JavaScript —
//! against the project's `wit/`, then checked to implement the project's world.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::project::{Lang, Project};
use crate::plugins::compat;

/// The target Rust plugins are built for.
const RUST_TARGET: &str = "wasm32-wasip2";

/// Why no component was built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The language's tool is not installed.
    #[error("`{tool}` is not on PATH: {install}")]
    ToolMissing {
        /// The program.
        tool: &'static str,
        /// How to install it.
        install: &'static str,
    },
    /// The tool ran and failed (its output went to the terminal).
    #[error("`{tool}` failed ({status}): see its output above")]
    Failed {
        /// The program.
        tool: &'static str,
        /// How it ended.
        status: std::process::ExitStatus,
    },
    /// The component was built but is not what the project says.
    #[error("{path}: {reason}")]
    Invalid {
        /// The component.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{0}")]
    Io(String),
}

/// Builds the project in `dir` and returns its component, `dist/NAME.wasm`.
pub fn build(dir: &Path, project: &Project) -> Result<PathBuf, BuildError> {
    let shown = project.component(dir);
    let dist = shown.parent().expect("dist/ is the component's directory");
    std::fs::create_dir_all(dist).map_err(|e| BuildError::Io(format!("cannot create {}: {e}", dist.display())))?;
    // The tools run in the project directory: they get the output's absolute path.
    let dist = dist
        .canonicalize()
        .map_err(|e| BuildError::Io(format!("cannot resolve {}: {e}", dist.display())))?;
    let output = dist.join(shown.file_name().expect("the component has a file name"));
    match project.lang {
        Lang::Rust => build_rust(dir, &output)?,
        Lang::Python => run(python(dir, project, &output))?,
        Lang::Js => run(js(dir, project, &output))?,
    }
    let wasm = std::fs::read(&output).map_err(|e| BuildError::Io(format!("cannot read {}: {e}", shown.display())))?;
    let invalid = |reason: String| BuildError::Invalid {
        path: shown.clone(),
        reason,
    };
    let built = compat::check(&wasm, project.world).map_err(invalid)?;
    if built.world.is_none() {
        return Err(invalid(format!(
            "exports none of the worlds; expected {}",
            project.world.as_str()
        )));
    }
    Ok(shown)
}

/// A tool invocation: the program, how to install it, and the command.
struct Step {
    tool: &'static str,
    install: &'static str,
    command: Command,
}

fn run(mut step: Step) -> Result<(), BuildError> {
    let status = step.command.status().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => BuildError::ToolMissing {
            tool: step.tool,
            install: step.install,
        },
        _ => BuildError::Io(format!("cannot start `{}`: {e}", step.tool)),
    })?;
    match status.success() {
        true => Ok(()),
        false => Err(BuildError::Failed {
            tool: step.tool,
            status,
        }),
    }
}

fn python(dir: &Path, project: &Project, output: &Path) -> Step {
    let mut command = Command::new("componentize-py");
    command
        .current_dir(dir)
        .args([
            "--wit-path",
            "wit",
            "--world",
            project.world.as_str(),
            "componentize",
            "app",
        ])
        .args(["--python-path", ".", "--output"])
        .arg(output);
    Step {
        tool: "componentize-py",
        install: "pip install componentize-py==0.25.1",
        command,
    }
}

fn js(dir: &Path, project: &Project, output: &Path) -> Step {
    let mut command = Command::new("componentize-js");
    // Every WASI feature disabled: plugins are pure functions, and the gateway offers none.
    command
        .current_dir(dir)
        .args(["app.js", "--wit", "wit", "--world-name", project.world.as_str()])
        .args(["--disable", "stdio", "random", "clocks", "http", "fetch-event", "--out"])
        .arg(output);
    Step {
        tool: "componentize-js",
        install: "npm install -g @bytecodealliance/componentize-js",
        command,
    }
}

/// `cargo build --release --target wasm32-wasip2`, then the `cdylib` it reports copied to
/// `output` (cargo's target directory may be anywhere: `CARGO_TARGET_DIR`, a workspace's).
fn build_rust(dir: &Path, output: &Path) -> Result<(), BuildError> {
    ensure_rust_target()?;
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .current_dir(dir)
        .args([
            "build",
            "--release",
            "--target",
            RUST_TARGET,
            "--message-format=json-render-diagnostics",
        ])
        .stdout(std::process::Stdio::piped());
    let child = command.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => BuildError::ToolMissing {
            tool: "cargo",
            install: "install Rust with rustup (https://rustup.rs)",
        },
        _ => BuildError::Io(format!("cannot start `cargo`: {e}")),
    })?;
    let finished = child
        .wait_with_output()
        .map_err(|e| BuildError::Io(format!("cargo: {e}")))?;
    if !finished.status.success() {
        return Err(BuildError::Failed {
            tool: "cargo",
            status: finished.status,
        });
    }
    let built = String::from_utf8_lossy(&finished.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter(|message| {
            message["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "cdylib"))
        })
        .filter_map(|message| message["filenames"].as_array().cloned())
        .flatten()
        .filter_map(|file| file.as_str().map(PathBuf::from))
        .find(|file| file.extension().is_some_and(|e| e == "wasm"))
        .ok_or_else(|| BuildError::Io("cargo built no .wasm (is the crate a `cdylib`?)".into()))?;
    std::fs::copy(&built, output)
        .map(drop)
        .map_err(|e| BuildError::Io(format!("cannot copy {} to {}: {e}", built.display(), output.display())))
}

/// Adds the wasm target through rustup when the toolchain lacks it.
fn ensure_rust_target() -> Result<(), BuildError> {
    let sysroot = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .args(["--print", "sysroot"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    if Path::new(&sysroot).join("lib/rustlib").join(RUST_TARGET).exists() {
        return Ok(());
    }
    let mut add = Command::new("rustup");
    add.args(["target", "add", RUST_TARGET]);
    run(Step {
        tool: "rustup",
        install: "add the target by hand: rustup target add wasm32-wasip2",
        command: add,
    })
}
