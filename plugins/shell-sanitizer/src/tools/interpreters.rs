//! Interpreters and package runners: code given on the command line (`python3 -c`, `node -e`,
//! and `python3 -m` of a module that runs its arguments, such as `timeit`), read from standard
//! input (`python3` with no script, `node -`, `-i`), or fetched to run (`npx`, `npm exec`,
//! `npm init <pkg>`) is refused, since the allowlist never sees what it does; `python3
//! script.py`, `python3 -m pytest`, `node app.js` and `npm test` run the workspace's own code
//! (or its environment's tools) and stay allowed. Every `python*` name gets the same rules.
//! npm options that name a program or another configuration are refused too.

use super::{Call, Item, Spec};

const PYTHON: Spec = Spec {
    short_values: "cmWXQ",
    stop_at_operand: true,
    ending_values: "cm",
    ..Spec::NONE
};
/// Standard modules that run code given on their own command line or standard input (`timeit`
/// statements, `pdb` commands, the `code`, `asyncio` and `idlelib` shells) or the module named
/// after them (`runpy`): `-m` of these is `-c` in other words.
const CODE_MODULES: &[&str] = &["timeit", "pdb", "code", "asyncio", "idlelib", "runpy"];
/// Profilers and tracers run a script (the workspace's code, allowed) or, given this option,
/// another module, which this check would never see.
const RUNNER_MODULES: &[(&str, &str)] = &[("cProfile", "-m"), ("profile", "-m"), ("trace", "--module")];
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
        "node" => interpreter(call, &NODE, &["-e", "--eval", "-p", "--print", "-i", "--interactive"]).map(drop),
        python if is_python(python) => {
            let items = interpreter(call, &PYTHON, &["-c", "-i"])?;
            module(call, &items)
        }
        _ => Ok(()),
    }
}

/// Whether `program` is a Python interpreter: `python`, `python3`, `python3.12`...
pub(super) fn is_python(program: &str) -> bool {
    program
        .strip_prefix("python")
        .is_some_and(|version| version.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

/// Judges inline code and a program from standard input; returns the options and operands read
/// (none when the check is off).
fn interpreter<'a>(call: &Call<'a>, spec: &Spec, inline: &[&str]) -> Result<Vec<Item<'a>>, String> {
    if !call.checks.inline_code {
        return Ok(Vec::new());
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
        _ if runs_module => Ok(items),
        Some(Some("-")) => call.refuse("reads its program from standard input"),
        None if !no_stdin => call.refuse("without a script reads its program from standard input"),
        _ => Ok(items),
    }
}

/// `python3 -m MODULE ARGS...`: a module is the workspace's or the environment's code, like a
/// script, unless it runs code given on the command line or another module.
fn module(call: &Call, items: &[Item]) -> Result<(), String> {
    let Some(at) = items.iter().position(|item| item.is("-m")) else {
        return Ok(());
    };
    let Some((_, name)) = items[at].valued() else {
        return Ok(());
    };
    // The value is literal here: `interpreter` refused one the shell decides.
    let name = name.as_text().unwrap_or_default();
    let name = name.strip_suffix(".__main__").unwrap_or(name);
    let is = |module: &str| name == module || name.strip_prefix(module).is_some_and(|rest| rest.starts_with('.'));
    if let Some(module) = CODE_MODULES.iter().find(|module| is(module)) {
        return call.refuse(format_args!(
            "module `{module}` runs code given on its command line or standard input"
        ));
    }
    match RUNNER_MODULES.iter().find(|(module, _)| is(module)) {
        Some((module, option)) => runner(call, module, option, &items[at + 1..]),
        None => Ok(()),
    }
}

/// Refuses a profiler's or tracer's `option` (or an argument the shell could turn into it).
fn runner(call: &Call, module: &str, option: &str, items: &[Item]) -> Result<(), String> {
    // argparse (`trace`) takes any unambiguous abbreviation: `--mo` is `--module`.
    let names_module = |arg: &str| arg == option || option.len() > 2 && arg.len() >= 4 && option.starts_with(arg);
    let given = items.iter().find_map(|item| match item {
        Item::Operand(arg) if arg.open || arg.as_text().is_some_and(names_module) => Some(arg),
        _ => None,
    });
    match given {
        Some(arg) => call.refuse(format_args!(
            "module `{module}` with argument `{}` may run another module (`{option}`), which is not judged",
            arg.shown
        )),
        None => Ok(()),
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
    use crate::tools::testing::{allowing, allows, allows_under, refuses, refuses_under};

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
    fn allows_modules_that_run_the_workspace_s_code() {
        allows(&[
            "python3 -m pytest -c pytest.ini -q tests/",
            "python3 -m venv .venv && python3 -m http.server 8000",
            "python3 -m cProfile -o prof.out script.py",
            "python3 -m unittest discover -s tests",
        ]);
        allows_under(
            &allowing(&["python", "python3.12"]),
            &["python script.py", "python3.12 -m pytest"],
        );
    }

    #[test]
    fn refuses_modules_that_run_code_given_on_the_command_line() {
        refuses(
            "python3 -m timeit 'import os'",
            "`python3` module `timeit` runs code given on its command line or standard input",
        );
        refuses("python3 -m pdb script.py", "module `pdb`");
        refuses("python3 -mcode", "module `code`");
        refuses("python3 -m asyncio.__main__", "module `asyncio`");
        refuses("python3 -m idlelib.idle -c x", "module `idlelib`");
        refuses("python3 -m runpy timeit", "module `runpy`");
        refuses(
            "python3 -m cProfile -m timeit x",
            "module `cProfile` with argument `-m` may run another module",
        );
        refuses(
            "python3 -m trace --trace --mod timeit",
            "module `trace` with argument `--mod`",
        );
        refuses("python3 -m profile \"$opt\" timeit", "may run another module");
        refuses("python3 -i script.py", "option `-i`");
        refuses_under(&allowing(&["python"]), "python -c 'import os'", "`python` option `-c`");
        refuses_under(&allowing(&["python3.12"]), "python3.12 -m timeit x", "module `timeit`");
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
