//! Rules for allowed tools that run programs or write files through their own options or
//! mini-languages (`find -exec`, `sed`'s `e` command, `tar --to-command`, `sort -o`, `git clone
//! DIR`, ...). A tool is judged the same way in a `shell` script and as an argv kind, from
//! [`Arg`]s that say what the shell may still change about each argument.
//!
//! Running the project's own code stays allowed: `npm test`, `make -j4 test`, `cargo test`,
//! `python3 script.py` run what the workspace holds, which is what a workspace is for. What is
//! refused is code the command itself carries or fetches (`python3 -c`, `node -e`, `npx`,
//! `make --eval`) and options or subcommands that name another program (`--to-command`,
//! `-toolexec`, `cargo foo` running `cargo-foo`).

mod build;
mod files;
mod find;
mod git;
mod interpreters;
mod options;
mod sed;
mod tar;
#[cfg(test)]
pub(crate) mod testing;

use crate::config::Checks;
use crate::paths::{self, Place};

pub use options::{Item, Spec};

/// Files a tool may always write to.
const DEVICES: &[&str] = &["/dev/null", "/dev/stdout", "/dev/stderr", "/dev/stdin"];

/// One argument as the tool will receive it, as far as the script says.
#[derive(Debug, Clone)]
pub struct Arg {
    /// Its text (globs kept as written), or `None` when an expansion, a tilde or a brace
    /// expansion decides it.
    pub text: Option<String>,
    /// What `text` depends on when it is `None`.
    pub depends_on: &'static str,
    /// Whether the shell may change how it starts (an expansion, glob or brace expansion at
    /// its start, or right after a leading `-` without `=`), so that it could become an option.
    pub open: bool,
    /// Whether `text` holds an unquoted pattern.
    pub glob: bool,
    /// Its literal text up to the first expansion (all of it when `text` is known).
    pub head: String,
    /// The argument as written, for reasons.
    pub shown: String,
}

impl Arg {
    /// An argument given as is (argv kinds, or a fully literal word).
    pub fn literal(text: &str) -> Self {
        Arg {
            text: Some(text.to_string()),
            depends_on: "",
            open: false,
            glob: false,
            head: text.to_string(),
            shown: text.to_string(),
        }
    }

    /// The literal text, if the shell cannot change it.
    pub fn as_text(&self) -> Option<&str> {
        self.text.as_deref()
    }
}

/// Why `arg`, as a path, may not stay in the workspace `workdir` (devices are fine).
pub fn outside(workdir: &str, arg: &Arg) -> Option<String> {
    match arg.as_text() {
        None => Some(format!("it depends on {}", arg.depends_on)),
        Some(path) if DEVICES.contains(&path) => None,
        Some(path) if paths::can_match_parent(path) => Some("it can match `..`".into()),
        Some(path) => match paths::place(workdir, path) {
            Place::Inside | Place::Workspace => None,
            Place::Outside => Some("outside the workspace".into()),
        },
    }
}

/// How a program run by another one is judged: its name and arguments.
pub type Nested<'a> = dyn Fn(&Arg, &[Arg]) -> Result<(), String> + 'a;

/// One call of a tool.
pub struct Call<'a> {
    /// The program's base name.
    pub program: &'a str,
    /// Its arguments.
    pub args: &'a [Arg],
    /// The command's working directory, which is the workspace.
    pub workdir: &'a str,
    /// Which checks are on.
    pub checks: &'a Checks,
    /// Judges a program this one runs (`find -exec PROGRAM ARGS`) as the command would be.
    pub nested: &'a Nested<'a>,
}

/// Judges the arguments of `call.program` if it is a tool with rules of its own.
pub fn check(call: &Call) -> Result<(), String> {
    match call.program {
        "find" => find::check(call),
        "sed" => sed::check(call),
        "tar" => tar::check(call),
        "git" => git::check(call),
        "node" | "npm" | "npx" => interpreters::check(call),
        python if interpreters::is_python(python) => interpreters::check(call),
        "make" | "cargo" | "go" | "rustc" | "rustup" => build::check(call),
        "cp" | "mv" | "ln" | "touch" | "mkdir" | "rm" | "rmdir" | "tee" | "gzip" | "sort" | "uniq" | "date" => {
            files::check(call)
        }
        _ => Ok(()),
    }
}

impl<'a> Call<'a> {
    /// A refusal naming the program: "`tar` option `--to-command` runs a program".
    pub fn refuse<T>(&self, what: impl std::fmt::Display) -> Result<T, String> {
        Err(format!("`{}` {what}", self.program))
    }

    /// Refuses a write by `what` (such as "option `-o`") to `arg` unless it stays in the
    /// workspace.
    pub fn write_target(&self, arg: &Arg, what: &str) -> Result<(), String> {
        if !self.checks.outside_workspace {
            return Ok(());
        }
        self.in_workspace(arg, &format!("{what} writing to"))
    }

    /// Refuses `what` naming `arg` unless it stays in the workspace (or is a device).
    pub fn in_workspace(&self, arg: &Arg, what: &str) -> Result<(), String> {
        match outside(self.workdir, arg) {
            Some(why) => self.refuse(format_args!("{what} `{}` is refused ({why})", arg.shown)),
            None => Ok(()),
        }
    }

    /// Refuses an argument whose start the shell decides: it could become any option.
    pub fn closed(&self, arg: &Arg) -> Result<(), String> {
        if arg.open {
            return self.refuse(format_args!(
                "argument `{}` is built from an expansion or a glob and could become an option (put it after `--`)",
                arg.shown
            ));
        }
        Ok(())
    }

    /// The options and operands of the call under `spec`.
    pub fn items(&self, spec: &Spec) -> Result<Vec<Item<'a>>, String> {
        options::scan(self, spec, self.args)
    }
}
