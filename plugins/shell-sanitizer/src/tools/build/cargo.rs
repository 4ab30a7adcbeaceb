//! `cargo`: its own commands build, test and run the workspace's code, which stays allowed;
//! `--config` runners and wrappers, directories outside the workspace, commands that write
//! cargo's home, and external commands (`cargo foo` runs `cargo-foo`, a program the allowlist
//! never saw, judged as that program) are not.

use super::operands;
use crate::tools::{Arg, Call, Item, Spec};

const CARGO: Spec = Spec {
    short_values: "pjFZCt",
    long_values: &[
        "config",
        "manifest-path",
        "target-dir",
        "artifact-dir",
        "out-dir",
        "lockfile-path",
        "package",
        "jobs",
        "features",
        "target",
        "bin",
        "example",
        "test",
        "bench",
        "profile",
        "color",
        "exclude",
        "message-format",
        "explain",
        "vcs",
        "edition",
        "name",
        "registry",
        "sync",
    ],
    ..Spec::NONE
};

/// cargo's built-in commands and their aliases, and `fmt` and `clippy`, which rustup installs
/// beside cargo. Any other name runs `cargo-NAME` from PATH, or an alias of cargo's
/// configuration, which the command line does not show.
const BUILT_IN: &[&str] = &[
    "add",
    "b",
    "bench",
    "build",
    "c",
    "check",
    "clean",
    "clippy",
    "config",
    "d",
    "doc",
    "fetch",
    "fix",
    "fmt",
    "generate-lockfile",
    "help",
    "info",
    "init",
    "install",
    "locate-project",
    "login",
    "logout",
    "metadata",
    "new",
    "owner",
    "package",
    "pkgid",
    "publish",
    "r",
    "read-manifest",
    "remove",
    "report",
    "rm",
    "run",
    "rustc",
    "rustdoc",
    "search",
    "t",
    "test",
    "tree",
    "uninstall",
    "update",
    "vendor",
    "verify-project",
    "version",
    "yank",
];
/// `cargo --config` keys that cannot name a program, a wrapper or a directory.
const CARGO_CONFIG_KEYS: &[&str] = &[
    "profile.",
    "term.",
    "build.jobs",
    "build.incremental",
    "net.",
    "future-incompat-report.",
];

pub(super) fn check(call: &Call) -> Result<(), String> {
    let items = call.items(&CARGO)?;
    for (name, value) in items.iter().filter_map(Item::valued) {
        match name {
            "--config" if call.checks.indirect_execution => cargo_config(call, value)?,
            "--manifest-path" | "--lockfile-path" => call.in_workspace(value, &format!("option `{name}`"))?,
            "--target-dir" | "--artifact-dir" | "--out-dir" | "-C" => {
                call.write_target(value, &format!("option `{name}`"))?
            }
            _ => {}
        }
    }
    let mut operands = operands(&items).filter(|arg| !arg.as_text().is_some_and(|s| s.starts_with('+')));
    let Some(subcommand) = operands.next() else {
        return Ok(());
    };
    match name(call, subcommand)? {
        sub @ ("install" | "uninstall" | "login" | "logout") => {
            call.refuse(format_args!("`{sub}` writes outside the workspace (cargo's home)"))
        }
        sub @ ("new" | "init" | "vendor") => {
            operands.try_for_each(|path| call.write_target(path, &format!("`{sub}` operand")))
        }
        "help" => match operands.next().map(|topic| name(call, topic)).transpose()? {
            Some(topic) if !BUILT_IN.contains(&topic) => external(call, topic, &[Arg::literal("--help")]),
            _ => Ok(()),
        },
        sub if BUILT_IN.contains(&sub) => Ok(()),
        sub => {
            let at = call.args.iter().position(|arg| std::ptr::eq(arg, subcommand));
            external(call, sub, at.map_or(&[], |at| &call.args[at + 1..]))
        }
    }
}

/// The name of a subcommand, which must be literal for its rules to apply.
fn name<'a>(call: &Call, arg: &'a Arg) -> Result<&'a str, String> {
    match arg.as_text() {
        Some(name) => Ok(name),
        None => call.refuse(format_args!(
            "subcommand `{}` is built from an expansion, so its rules cannot be applied",
            arg.shown
        )),
    }
}

/// `cargo NAME ARGS...` runs `cargo-NAME NAME ARGS...`, judged as that command would be.
fn external(call: &Call, name: &str, args: &[Arg]) -> Result<(), String> {
    let program = Arg::literal(&format!("cargo-{name}"));
    let args: Vec<Arg> = std::iter::once(Arg::literal(name))
        .chain(args.iter().cloned())
        .collect();
    (call.nested)(&program, &args).map_err(|reason| {
        format!(
            "`cargo {name}` is not a built-in command: cargo runs `cargo-{name}` from PATH (or an alias of its configuration): {reason}"
        )
    })
}

fn cargo_config(call: &Call, value: &Arg) -> Result<(), String> {
    let key = value
        .as_text()
        .and_then(|v| v.split_once('='))
        .map(|(key, _)| key.trim().trim_matches('"'));
    match key {
        Some(key) if CARGO_CONFIG_KEYS.iter().any(|k| key.starts_with(k)) && !key.contains("rustflags") => Ok(()),
        _ => call.refuse(format_args!(
            "option `--config {}` is refused (only profile, term, net and build.jobs keys; others can name runners, wrappers or files)",
            value.shown
        )),
    }
}

#[cfg(test)]
mod tests {
    use crate::tools::testing::{allowing, allows, allows_under, refuses};

    #[test]
    fn allows_built_in_cargo_commands_and_allowlisted_external_ones() {
        allows(&[
            "cargo b --release && cargo t -- --nocapture && cargo rm serde",
            "cargo fmt --all -- --check && cargo clippy --all-targets -- -D warnings",
            "cargo new sub/tool && cargo init --lib sub/lib && cargo vendor",
            "cargo --version && cargo --explain E0308 && cargo help build",
        ]);
        allows_under(&allowing(&["cargo-nextest"]), &["cargo nextest run"]);
    }

    #[test]
    fn refuses_external_cargo_commands_the_allowlist_never_saw() {
        refuses(
            "cargo foo --bar",
            "`cargo foo` is not a built-in command: cargo runs `cargo-foo` from PATH (or an alias of its configuration): program `cargo-foo` is not on the allowlist",
        );
        refuses("cargo +nightly nextest run", "runs `cargo-nextest`");
        refuses("cargo help foo", "runs `cargo-foo`");
        refuses("cargo inst$x ripgrep", "subcommand `inst$x` is built from an expansion");
    }

    #[test]
    fn refuses_new_packages_outside_the_workspace() {
        refuses("cargo new ../x", "`cargo` `new` operand writing to `../x` is refused");
        refuses("cargo init --name x /tmp/x", "`init` operand writing to `/tmp/x`");
        refuses("cargo vendor /tmp/v", "`vendor` operand");
    }
}
