//! Interpreters and package runners: code given on the command line (`python3 -c`, `node -e`),
//! read from standard input (`python3` with no script, `node -`), or fetched to run (`npx`,
//! `npm exec`, `npm init <pkg>`) is refused, since the allowlist never sees what it does;
//! `python3 script.py`, `node app.js` and `npm test` run the workspace's own code and stay
//! allowed. npm options that name a program or another configuration are refused too.

use super::{Call, Item, Spec};

const PYTHON: Spec = Spec {
    short_values: "cmWXQ",
    stop_at_operand: true,
    ..Spec::NONE
};
const NODE: Spec = Spec {
    short_values: "eprC",
    long_values: &[
        "eval",
        "print",
        "require",
        "import",
        "loader",
        "experimental-loader",
        "env-file",
        "input-type",
        "conditions",
        "title",
    ],
    long_flags: &["interactive", "version", "help", "check", "test"],
    stop_at_operand: true,
    ..Spec::NONE
};
const NPM: Spec = Spec {
    short_values: "wC",
    long_values: &[
        "prefix",
        "workspace",
        "script-shell",
        "node-options",
        "userconfig",
        "globalconfig",
        "editor",
        "browser",
        "shell",
        "location",
        "cache",
        "registry",
        "call",
        "package",
    ],
    long_flags: &["global"],
    ..Spec::NONE
};
/// npm subcommands that fetch a package and run it, as prefixes npm would accept.
const NPM_RUNNERS: &[&str] = &["exec", "explore", "init", "innit", "create"];
/// npm options that name a program or read another configuration.
const NPM_DENIED: &[&str] = &[
    "--script-shell",
    "--node-options",
    "--userconfig",
    "--globalconfig",
    "--editor",
    "--browser",
    "--shell",
    "--call",
];
/// Options after which an interpreter does not read a program from standard input.
const NO_STDIN: &[&str] = &["-V", "--version", "-h", "--help", "-v", "--test"];

pub(super) fn check(call: &Call) -> Result<(), String> {
    match call.program {
        "npx" if call.checks.inline_code => call.refuse("runs a package the allowlist never saw"),
        "npm" => npm(call),
        "python3" => interpreter(call, &PYTHON, &["-c"]),
        "node" => interpreter(call, &NODE, &["-e", "--eval", "-p", "--print", "-i", "--interactive"]),
        _ => Ok(()),
    }
}

fn interpreter(call: &Call, spec: &Spec, inline: &[&str]) -> Result<(), String> {
    if !call.checks.inline_code {
        return Ok(());
    }
    let items = call.items(spec)?;
    if let Some(Item::Opt { name, .. }) = items.iter().find(|item| item.is_any(inline)) {
        return call.refuse(format_args!("option `{name}` runs code given on the command line"));
    }
    for item in &items {
        if let Item::Opt {
            name,
            value: Some(value),
        } = item
            && value.as_text().is_none_or(|v| v.trim_start().starts_with("data:"))
        {
            return call.refuse(format_args!(
                "option `{name}` value `{}` could be inline code",
                value.shown
            ));
        }
    }
    let script = items.iter().find_map(|item| match item {
        Item::Operand(arg) => Some(arg.as_text()),
        Item::Opt { .. } => None,
    });
    let runs_module = items.iter().any(|item| item.is("-m"));
    let no_stdin = items.iter().any(|item| item.is_any(NO_STDIN));
    match script {
        Some(Some("-")) => call.refuse("reads its program from standard input"),
        None if !runs_module && !no_stdin => call.refuse("without a script reads its program from standard input"),
        _ => Ok(()),
    }
}

fn npm(call: &Call) -> Result<(), String> {
    let items = call.items(&NPM)?;
    for item in &items {
        if let Some(Item::Opt { name, .. }) = Some(item).filter(|item| item.is_any(NPM_DENIED)) {
            return call.refuse(format_args!("option `{name}` names a program or another configuration"));
        }
        if item.is_any(&["-g", "--global", "--location"]) && call.checks.outside_workspace {
            return call.refuse("global installs write outside the workspace");
        }
        if let Item::Opt { name, value: Some(dir) } = item
            && (name == "--prefix" || name == "-C" || name == "--cache")
        {
            call.write_target(dir, &format!("option `{name}`"))?;
        }
    }
    let subcommand = items.iter().find_map(|item| match item {
        Item::Operand(arg) => arg.as_text(),
        Item::Opt { .. } => None,
    });
    let Some(subcommand) = subcommand else { return Ok(()) };
    let runner = subcommand == "x" || subcommand.len() >= 2 && NPM_RUNNERS.iter().any(|r| r.starts_with(subcommand));
    if runner && call.checks.inline_code {
        return call.refuse(format_args!(
            "`{subcommand}` fetches and runs a package the allowlist never saw"
        ));
    }
    if matches!(subcommand, "config" | "set" | "c") {
        return call.refuse(format_args!(
            "`{subcommand}` changes npm's configuration outside the workspace"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::tools::testing::{allows, refuses};

    #[test]
    fn allows_the_workspace_s_own_code() {
        allows(&[
            "python3 script.py -c x",
            "python3 -m pytest -q",
            "python3 --version",
            "node app.js --eval",
            "node --test",
            "npm test",
            "npm run build -- --watch",
            "npm ci && npm install",
            "npm i",
        ]);
    }

    #[test]
    fn refuses_inline_and_fetched_code() {
        refuses(
            "python3 -c 'import os'",
            "`python3` option `-c` runs code given on the command line",
        );
        refuses("python3 -Ic 'import os'", "option `-c`");
        refuses("python3 <<EOF\nimport os\nEOF", "reads its program from standard input");
        refuses("echo x | python3 -", "standard input");
        refuses("node -e 'require(1)'", "`node` option `-e`");
        refuses("node --print 1", "option `--print`");
        refuses("node -pe 1", "option `-p`");
        refuses("node --import=data:text/javascript,x app.js", "could be inline code");
        refuses("npx cowsay", "`npx` runs a package");
        refuses("npm exec cowsay", "`npm` `exec` fetches and runs");
        refuses("npm x cowsay", "`x` fetches");
        refuses("npm exe cowsay", "`exe` fetches");
        refuses("npm init react-app x", "`init` fetches");
        refuses("npm create vite", "`create`");
        refuses("npm --script-shell=/tmp/x test", "option `--script-shell`");
        refuses("npm install -g x", "global installs");
        refuses("npm config set script-shell x", "`config`");
        refuses("npm --prefix /tmp install", "option `--prefix` writing to `/tmp`");
    }
}
