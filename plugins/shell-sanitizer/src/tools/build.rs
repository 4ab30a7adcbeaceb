//! Build tools: they run the workspace's own recipes (`make test`, `cargo test`, `go test`),
//! which stays allowed, but not code or programs the command line adds (`make --eval`,
//! `SHELL=` overrides, `cargo --config` runners and wrappers, `go -toolexec`/`-exec`,
//! `rustc -C linker=`, `rustup run`), and not work or output outside the workspace.

mod cargo;

use super::{Arg, Call, Item, Spec};

const MAKE: Spec = Spec {
    short_values: "CfEIoWl",
    long_values: &[
        "directory",
        "file",
        "makefile",
        "eval",
        "include-dir",
        "old-file",
        "assume-old",
        "what-if",
        "new-file",
        "assume-new",
    ],
    long_optional: &[
        "jobs",
        "load-average",
        "output-sync",
        "debug",
        "jobserver-style",
        "shuffle",
    ],
    ..Spec::NONE
};
/// Make variables that decide how recipes run, refused as command-line overrides.
const MAKE_VARIABLES: &[&str] = &[
    "SHELL",
    ".SHELLFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "MAKEFILES",
    "MAKE",
    "MAKESHELL",
];
const RUSTC: Spec = Spec {
    short_values: "oCLlZWADF",
    long_values: &[
        "out-dir",
        "emit",
        "crate-type",
        "crate-name",
        "edition",
        "target",
        "cfg",
        "cap-lints",
        "extern",
        "sysroot",
        "codegen",
        "explain",
        "print",
        "error-format",
        "json",
        "color",
        "remap-path-prefix",
    ],
    ..Spec::NONE
};

pub(super) fn check(call: &Call) -> Result<(), String> {
    match call.program {
        "make" => make(call),
        "cargo" => cargo::check(call),
        "go" => go(call),
        "rustc" => rustc(call),
        _ => rustup(call),
    }
}

fn operands<'a>(items: &'a [Item]) -> impl Iterator<Item = &'a Arg> {
    items.iter().filter_map(|item| match item {
        Item::Operand(arg) => Some(*arg),
        Item::Opt { .. } => None,
    })
}

fn make(call: &Call) -> Result<(), String> {
    let items = call.items(&MAKE)?;
    for item in &items {
        let Item::Opt { name, value } = item else { continue };
        match (name.as_str(), value) {
            ("-E" | "--eval", _) if call.checks.inline_code => {
                return call.refuse("option `--eval` runs makefile text given on the command line");
            }
            ("-C" | "--directory", Some(dir)) => call.write_target(dir, "option `-C`")?,
            ("-f" | "--file" | "--makefile", Some(file)) => {
                if file.as_text().is_none_or(|f| f == "-" || f.starts_with("/dev/")) && call.checks.inline_code {
                    return call.refuse(format_args!(
                        "makefile `{}` is read from standard input or an expansion",
                        file.shown
                    ));
                }
                call.in_workspace(file, "makefile")?;
            }
            _ => {}
        }
    }
    for arg in operands(&items) {
        let variable = arg
            .as_text()
            .unwrap_or(&arg.head)
            .split_once('=')
            .map(|(name, _)| name.trim_end_matches([':', '+', '?', '!']));
        if let Some(variable) = variable.filter(|v| MAKE_VARIABLES.contains(v))
            && call.checks.indirect_execution
        {
            return call.refuse(format_args!("override of `{variable}` changes what runs the recipes"));
        }
    }
    Ok(())
}

/// `go` flags are `-name`, `--name`, `-name=value` or `-name value`.
fn go(call: &Call) -> Result<(), String> {
    let mut args = call.args.iter();
    let mut subcommand = None;
    while let Some(arg) = args.next() {
        call.closed(arg)?;
        let text = arg.as_text().unwrap_or(&arg.head);
        let Some(flag) = text.strip_prefix("--").or(text.strip_prefix('-')) else {
            subcommand = subcommand.or(Some(text));
            if matches!(subcommand, Some("run" | "install")) && text.contains('@') && subcommand != Some(text) {
                return call.refuse(format_args!(
                    "`{}` of `{text}` fetches code to run",
                    subcommand.unwrap_or_default()
                ));
            }
            continue;
        };
        let (name, attached) = flag.split_once('=').map_or((flag, None), |(n, v)| (n, Some(v)));
        match name {
            "toolexec" | "exec" | "vettool" if call.checks.indirect_execution => {
                return call.refuse(format_args!("flag `-{name}` runs a program"));
            }
            "o" => {
                let output = attached.map(Arg::literal).or_else(|| args.next().cloned());
                output.iter().try_for_each(|out| call.write_target(out, "flag `-o`"))?;
            }
            "w" | "u" if subcommand == Some("env") => {
                return call.refuse("`env -w` writes go's configuration outside the workspace");
            }
            "ldflags"
                if text.contains("extld")
                    || args
                        .as_slice()
                        .first()
                        .is_some_and(|v| v.as_text().is_none_or(|v| v.contains("extld"))) =>
            {
                return call.refuse("flag `-ldflags` with `-extld` runs another linker");
            }
            _ => {}
        }
    }
    Ok(())
}

fn rustc(call: &Call) -> Result<(), String> {
    if let Some(file) = call
        .args
        .iter()
        .find(|a| a.as_text().is_none_or(|t| t.starts_with('@')))
    {
        return call.refuse(format_args!(
            "argument `{}` could read arguments from a file",
            file.shown
        ));
    }
    let items = call.items(&RUSTC)?;
    for (name, value) in items.iter().filter_map(Item::valued) {
        let text = value.as_text().unwrap_or_default();
        match name {
            "-o" | "--out-dir" => call.write_target(value, &format!("option `{name}`"))?,
            "-C" | "--codegen" if text.starts_with("link") && call.checks.indirect_execution => {
                return call.refuse(format_args!("option `-C {text}` runs or configures another linker"));
            }
            "--emit" => {
                for path in text
                    .split(',')
                    .filter_map(|kind| kind.split_once('='))
                    .map(|(_, path)| path)
                {
                    call.write_target(&Arg::literal(path), "option `--emit`")?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn rustup(call: &Call) -> Result<(), String> {
    let words: Vec<&str> = call
        .args
        .iter()
        .filter_map(Arg::as_text)
        .filter(|a| !a.starts_with(['-', '+']))
        .collect();
    match words.as_slice() {
        ["run", ..] => call.refuse("`run` runs any program with a toolchain's environment"),
        ["toolchain", "link", ..] => call.refuse("`toolchain link` makes a directory's programs a toolchain"),
        ["self", ..] => call.refuse("`self` changes rustup itself"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::tools::testing::{allows, refuses};

    #[test]
    fn allows_the_workspace_s_own_builds() {
        allows(&[
            "make -j4 test",
            "make -C sub all CFLAGS=-O2",
            "git status && cargo test 2>&1 | tail -n 20",
            "cargo build --release --target-dir target/x",
            "cargo --config profile.dev.debug=false test",
            "cargo +nightly run -- --config x",
            "go test ./... -run TestX",
            "go build -o bin/app ./cmd/app",
            "rustc -O -o build/x src/main.rs",
            "rustup component add clippy",
        ]);
    }

    #[test]
    fn refuses_programs_and_code_from_the_command_line() {
        refuses("make --eval='x:;id' x", "`make` option `--eval`");
        refuses("make -E 'x:;id'", "option `--eval`");
        refuses("make SHELL=/tmp/x test", "`make` override of `SHELL`");
        refuses("make .SHELLFLAGS=-c test", "override of `.SHELLFLAGS`");
        refuses("make -f - <<EOF\nx:\nEOF", "standard input");
        refuses("make -C /tmp", "option `-C` writing to `/tmp`");
        refuses(
            "cargo --config 'target.x86_64-unknown-linux-gnu.runner=\"id\"' run",
            "`cargo` option `--config",
        );
        refuses("cargo --config build.rustc-wrapper=/tmp/x build", "option `--config");
        refuses("cargo --config alias.b=x b", "option `--config");
        refuses("cargo --config /tmp/c.toml build", "option `--config");
        refuses(
            "cargo build --target-dir /tmp/t",
            "option `--target-dir` writing to `/tmp/t`",
        );
        refuses("cargo test --manifest-path ../x/Cargo.toml", "option `--manifest-path`");
        refuses("cargo install ripgrep", "`install` writes outside");
        refuses("go build -toolexec=/tmp/x .", "`go` flag `-toolexec` runs a program");
        refuses("go test -exec 'sh -c' .", "flag `-exec`");
        refuses("go vet -vettool=/tmp/x", "flag `-vettool`");
        refuses("go run example.com/x@latest", "fetches code");
        refuses("go build -o /tmp/x .", "flag `-o` writing to `/tmp/x`");
        refuses("go env -w GOFLAGS=-toolexec=x", "`env -w`");
        refuses("rustc -C linker=/tmp/x a.rs", "`rustc` option `-C linker=/tmp/x`");
        refuses("rustc -Clinker=sh a.rs", "option `-C linker=sh`");
        refuses("rustc -o /tmp/x a.rs", "option `-o` writing to `/tmp/x`");
        refuses("rustc --out-dir=/tmp a.rs", "option `--out-dir`");
        refuses("rustc @args", "read arguments from a file");
        refuses("rustup run stable sh", "`rustup` `run` runs any program");
        refuses("rustup toolchain link x /tmp/x", "`toolchain link`");
    }
}
