//! `git` subcommands that create or write at a path they are given (`clone DIR`, `init DIR`,
//! `worktree add PATH`, `archive -o`, `format-patch -o`, `bundle create FILE`, `--output`,
//! `--separate-git-dir`, ...), confined to the workspace like any other tool's write targets.
//! What makes git run a program or read another configuration is the `git` argv rules' part
//! (`config::git_rules`); these rules hold whatever those are configured to be.

use super::options::{attached, scan};
use super::{Arg, Call, Item, Spec};

/// Global options that take a separate value; git matches them exactly, without abbreviations.
const GLOBAL_VALUES: &[&str] = &[
    "-C",
    "-c",
    "--git-dir",
    "--work-tree",
    "--namespace",
    "--super-prefix",
    "--config-env",
    "--attr-source",
];

/// How a subcommand writes: its options that take a value (so that operands are found, and
/// abbreviations resolve as git's parse-options does) and those whose value is a path it writes.
struct Rules {
    names: &'static [&'static str],
    spec: Spec,
    writes: &'static [&'static str],
}

const RULES: &[Rules] = &[
    Rules {
        names: &["clone"],
        spec: Spec {
            short_values: "obucj",
            long_values: &[
                "template",
                "origin",
                "branch",
                "upload-pack",
                "reference",
                "reference-if-able",
                "separate-git-dir",
                "depth",
                "shallow-since",
                "shallow-exclude",
                "config",
                "jobs",
                "filter",
                "server-option",
                "bundle-uri",
                "ref-format",
                "revision",
            ],
            long_optional: &["recurse-submodules"],
            ..Spec::NONE
        },
        writes: &["--separate-git-dir"],
    },
    Rules {
        names: &["init", "init-db"],
        spec: Spec {
            short_values: "b",
            long_values: &[
                "template",
                "separate-git-dir",
                "initial-branch",
                "object-format",
                "ref-format",
            ],
            long_optional: &["shared"],
            ..Spec::NONE
        },
        writes: &["--separate-git-dir"],
    },
    Rules {
        names: &["worktree", "submodule"],
        spec: Spec {
            short_values: "bB",
            long_values: &["reason", "expire", "branch", "name", "reference", "depth", "jobs"],
            ..Spec::NONE
        },
        writes: &[],
    },
    Rules {
        names: &["bundle"],
        spec: Spec {
            long_values: &["version"],
            ..Spec::NONE
        },
        writes: &[],
    },
    Rules {
        names: &["archive"],
        spec: Spec {
            short_values: "o",
            long_values: &[
                "format",
                "prefix",
                "output",
                "add-file",
                "add-virtual-file",
                "remote",
                "exec",
                "mtime",
            ],
            ..Spec::NONE
        },
        writes: &["-o", "--output"],
    },
    Rules {
        names: &["format-patch"],
        spec: Spec {
            short_values: "ov",
            long_values: &[
                "output-directory",
                "output",
                "start-number",
                "subject-prefix",
                "suffix",
                "in-reply-to",
                "to",
                "cc",
                "signature",
                "signature-file",
                "reroll-count",
                "base",
                "range-diff",
                "interdiff",
                "creation-factor",
                "add-header",
                "filename-max-length",
                "cover-from-description",
                "description-file",
            ],
            long_optional: &["from", "thread", "notes", "attach", "inline"],
            ..Spec::NONE
        },
        writes: &["-o", "--output-directory", "--output"],
    },
    Rules {
        names: &["checkout-index"],
        spec: Spec {
            long_values: &["prefix", "stage"],
            ..Spec::NONE
        },
        writes: &["--prefix"],
    },
];

/// Every other subcommand: the diff option `--output` (`git diff`, `log`, `show`, ...).
const OTHERS: Rules = Rules {
    names: &[],
    spec: Spec {
        long_values: &["output"],
        ..Spec::NONE
    },
    writes: &["--output"],
};

pub(super) fn check(call: &Call) -> Result<(), String> {
    let (base, at) = globals(call)?;
    let Some(subcommand) = call.args.get(at) else {
        return Ok(());
    };
    // Neither the argv rules nor these can be applied to a subcommand the shell decides.
    let Some(name) = subcommand.as_text() else {
        return call.refuse(format_args!(
            "subcommand `{}` is built from an expansion, so its rules cannot be applied",
            subcommand.shown
        ));
    };
    if !call.checks.outside_workspace {
        return Ok(());
    }
    let rules = RULES.iter().find(|r| r.names.contains(&name)).unwrap_or(&OTHERS);
    let items = scan(call, &rules.spec, &call.args[at + 1..])?;
    let write = |arg: &Arg, what: String| call.write_target(&rebased(&base, arg), &what);
    for (option, path) in write_options(call, rules, &items)? {
        write(path, format!("`{name}` option `{option}`"))?;
    }
    // A `format-patch` suffix with a `/` puts the patches in another directory.
    super::files::suffix(call, &items, &["--suffix"])?;
    let (words, written) = written(call, name, &items)?;
    written
        .iter()
        .try_for_each(|path| write(path, format!("`{words}` operand")))
}

/// The options in `items` that write a path (by the name of the option they are or may
/// abbreviate), with their values.
fn write_options<'i>(call: &Call, rules: &Rules, items: &'i [Item]) -> Result<Vec<(&'static str, &'i Arg)>, String> {
    let mut found = Vec::new();
    for item in items {
        let Item::Opt { name, value } = item else { continue };
        let Some(option) = writing_option(name, rules.writes) else {
            continue;
        };
        match value {
            Some(path) => found.push((option, path)),
            None => {
                return call.refuse(format_args!(
                    "option `{name}` is ambiguous or lacks its value (it may be `{option}`, which writes a path)"
                ));
            }
        }
    }
    Ok(found)
}

/// Judges the global options that name a directory git works in (refused by the default argv
/// rules; confined here whatever those are configured to be). Returns the directory `-C` moves
/// to (relative paths after it are resolved from there) and where the subcommand is.
fn globals(call: &Call) -> Result<(String, usize), String> {
    let (mut base, mut at) = (String::new(), 0);
    while let Some(arg) = call.args.get(at) {
        let head = arg.as_text().unwrap_or(&arg.head);
        if !head.starts_with('-') || head == "-" {
            break;
        }
        at += 1;
        let (name, value) = match head.split_once('=') {
            Some((name, _)) => (name, Some(attached(arg, head, name.len() + 1))),
            None if GLOBAL_VALUES.contains(&head) => (head, call.args.get(at).cloned()),
            None => (head, None),
        };
        if GLOBAL_VALUES.contains(&name) && !head.contains('=') {
            at += 1;
        }
        let Some(dir) = value.filter(|_| matches!(name, "-C" | "--git-dir" | "--work-tree")) else {
            continue;
        };
        let dir = rebased(&base, &dir);
        call.write_target(&dir, &format!("option `{name}`"))?;
        if name == "-C" {
            base = dir.as_text().unwrap_or_default().to_string();
        }
    }
    Ok((base, at))
}

/// `arg` as a path from the workspace, when `git -C base` resolves it from `base`.
fn rebased(base: &str, arg: &Arg) -> Arg {
    match arg.as_text() {
        Some(path) if !base.is_empty() && !path.starts_with('/') => Arg {
            text: Some(format!("{base}/{path}")),
            ..arg.clone()
        },
        _ => arg.clone(),
    }
}

/// The option of `writes` that `given` names, or that it may abbreviate: whether git takes an
/// abbreviation depends on the subcommand and git's version, so any is judged as the option.
fn writing_option<'w>(given: &str, writes: &[&'w str]) -> Option<&'w str> {
    let abbreviates = |option: &&&str| option.starts_with("--") && given.len() > 2 && option.starts_with(given);
    let exact = writes.iter().find(|option| **option == given);
    exact.or_else(|| writes.iter().find(abbreviates)).copied()
}

/// The subcommand's words (`worktree add`) and the operands it writes at.
fn written<'a>(call: &Call, name: &str, items: &[Item<'a>]) -> Result<(String, Vec<&'a Arg>), String> {
    let operands: Vec<&Arg> = items
        .iter()
        .filter_map(|item| match item {
            Item::Operand(arg) => Some(*arg),
            Item::Opt { .. } => None,
        })
        .collect();
    let verb = match (name, operands.first()) {
        ("worktree" | "bundle" | "submodule", Some(verb)) => match verb.as_text() {
            Some(verb) => verb,
            None => {
                return call.refuse(format_args!(
                    "`{name}` subcommand `{}` is built from an expansion",
                    verb.shown
                ));
            }
        },
        _ => "",
    };
    let from = |n: usize| operands.get(n..).unwrap_or_default().to_vec();
    let written = match (name, verb) {
        ("clone", _) => from(1),
        ("init" | "init-db", _) => from(0),
        ("worktree", "add") | ("bundle", "create") => operands.get(1).into_iter().copied().collect(),
        ("worktree", "move" | "remove" | "repair") => from(1),
        ("submodule", "add") => from(2),
        _ => Vec::new(),
    };
    Ok((format!("{name} {verb}").trim_end().to_string(), written))
}

#[cfg(test)]
mod tests {
    use crate::config::{Checks, Config};
    use crate::tools::testing::{allows, allows_argv, allows_under, refuses, refuses_argv, refuses_under};

    #[test]
    fn allows_paths_inside_the_workspace() {
        allows(&[
            "git clone https://example.com/r.git",
            "git clone https://example.com/r.git sub/dir",
            "git clone --depth 1 -b main https://example.com/r.git /workspaces/demo/vendor/r",
            "git init && git init sub && git init --bare /workspaces/demo/bare.git",
            "git worktree add wt-feature && git worktree add -b feature wt-2 main",
            "git worktree move wt-feature wt-3 && git worktree list",
            "git archive -o out.tar HEAD && git archive --output=out.tar HEAD && git archive -oout.zip HEAD",
            "git format-patch -o patches HEAD~3 && git format-patch --output-directory patches -3",
            "git format-patch --stdout HEAD~1 > x.patch",
            "git bundle create repo.bundle --all",
            "git diff --output=changes.diff && git log -p --output log.txt",
            "git submodule add https://example.com/r.git libs/r",
            "git commit -m 'fix: output' && git log --oneline -o",
        ]);
        allows_argv(
            "git",
            &[
                &["clone", "https://example.com/r.git"],
                &["clone", "https://example.com/r.git", "sub/dir"],
                &["worktree", "add", "wt-feature"],
                &["archive", "-o", "out.tar", "HEAD"],
                &["format-patch", "-o", "patches", "HEAD~3"],
            ],
        );
    }

    #[test]
    fn refuses_clones_and_repositories_outside_the_workspace() {
        refuses(
            "git clone https://example.com/r.git ../dir",
            "`git` `clone` operand writing to `../dir` is refused (outside the workspace)",
        );
        refuses("git clone -q https://example.com/r.git /tmp/x", "writing to `/tmp/x`");
        refuses(
            "git clone --separate-git-dir=/x u d",
            "`clone` option `--separate-git-dir` writing to `--separate-git-dir=/x`",
        );
        refuses("git clone --sep /x u d", "option `--separate-git-dir` writing to `/x`");
        refuses("git clone --se /x u d", "option `--se` is ambiguous");
        refuses("git init /path", "`init` operand writing to `/path`");
        refuses("git init --separate-git-dir /x", "option `--separate-git-dir`");
        refuses("git init-db ../x", "`init-db` operand");
        refuses(
            "git submodule add https://example.com/r.git ../p",
            "`submodule add` operand writing to `../p`",
        );
        refuses("git submodule --quiet add -b main u ../p", "writing to `../p`");
        refuses_argv("git", &["clone", "u", "../dir"], "writing to `../dir`");
        refuses_argv("git", &["clone", "u", "/tmp/x"], "writing to `/tmp/x`");
        refuses_argv("git", &["init", "--separate-git-dir", "/x"], "`--separate-git-dir`");
    }

    #[test]
    fn refuses_worktrees_outside_the_workspace() {
        refuses("git worktree add ../wt", "`worktree add` operand writing to `../wt`");
        refuses("git worktree add -b x /tmp/wt main", "writing to `/tmp/wt`");
        refuses(
            "git worktree move wt ../wt2",
            "`worktree move` operand writing to `../wt2`",
        );
        refuses("git worktree remove ../other", "`worktree remove` operand");
        refuses_argv("git", &["worktree", "add", "../wt"], "writing to `../wt`");
    }

    #[test]
    fn refuses_output_files_outside_the_workspace() {
        refuses("git archive -o /x HEAD", "`archive` option `-o` writing to `/x`");
        refuses("git archive -o/x HEAD", "option `-o`");
        refuses("git archive --output=/x HEAD", "option `--output`");
        refuses("git archive --out /x HEAD", "option `--output` writing to `/x`");
        refuses("git format-patch -o /x HEAD~1", "`format-patch` option `-o`");
        refuses(
            "git format-patch --output-directory=../x -1",
            "option `--output-directory`",
        );
        refuses("git format-patch --output=/x -1", "option `--output`");
        refuses("git format-patch --suffix=/../../x -1", "suffix");
        refuses("git bundle create /x HEAD", "`bundle create` operand writing to `/x`");
        refuses("git bundle create -q ../x --all", "writing to `../x`");
        refuses("git diff --output=/x", "`diff` option `--output`");
        refuses("git log --output /x", "`log` option `--output` writing to `/x`");
        refuses("git --no-pager show --output=../x", "`show` option `--output`");
        refuses("git checkout-index -a --prefix=/tmp/x/", "option `--prefix`");
        refuses_argv("git", &["archive", "--output=/x", "HEAD"], "option `--output`");
        refuses_argv("git", &["diff", "--output=/x"], "option `--output`");
    }

    #[test]
    fn refuses_paths_and_subcommands_the_shell_decides() {
        refuses("git clone u \"dir$x\"", "depends on a parameter expansion");
        refuses("git cl$x u /tmp/x", "subcommand `cl$x` is built from an expansion");
    }

    #[test]
    fn resolves_paths_from_the_directory_of_git_c() {
        // The default argv rules refuse `-C`; without them, it is confined and followed.
        let mut config = Config::default();
        config.argv_kinds.insert("git".into(), None);
        allows_under(&config, &["git -C sub clone u ../x", "git -C sub -C a init ../b"]);
        refuses_under(
            &config,
            "git -C sub clone u ../../x",
            "`clone` operand writing to `../../x`",
        );
        refuses_under(&config, "git -C /tmp init", "option `-C` writing to `/tmp`");
        refuses_under(&config, "git --git-dir=/tmp/g status", "option `--git-dir`");
    }

    #[test]
    fn writes_outside_are_allowed_when_the_check_is_off() {
        let config = Config {
            checks: Checks {
                outside_workspace: false,
                ..Checks::default()
            },
            ..Config::default()
        };
        allows_under(
            &config,
            &[
                "git clone u ../dir",
                "git worktree add ../wt",
                "git diff --output=/tmp/x",
            ],
        );
    }
}
