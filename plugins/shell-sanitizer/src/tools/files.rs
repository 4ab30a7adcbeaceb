//! File tools whose operands or options are write targets (`cp`, `mv`, `ln`, `touch`, `mkdir`,
//! `rm`, `rmdir`, `tee`, `gzip`, `sort -o`, `uniq IN OUT`), confined to the workspace, and the
//! forms of them that run programs or reach past the workspace otherwise (`sort
//! --compress-program`, symbolic links and hard links to files outside, `date -s`).

use super::{Arg, Call, Item, Spec};

/// The options that name a backup or file suffix.
const BACKUP_SUFFIX: &[&str] = &["-S", "--suffix"];
const COPY: Spec = Spec {
    short_values: "tS",
    long_values: &["target-directory", "suffix", "no-preserve"],
    long_optional: &["backup", "preserve", "reflink", "sparse", "update"],
    long_flags: &["symbolic-link", "link", "strip-trailing-slashes", "no-target-directory"],
    ..Spec::NONE
};
const LINK: Spec = Spec {
    short_values: "St",
    long_values: &["target-directory", "suffix"],
    long_optional: &["backup"],
    long_flags: &[
        "symbolic",
        "relative",
        "logical",
        "physical",
        "no-dereference",
        "no-target-directory",
        "directory",
        "force",
        "interactive",
        "verbose",
    ],
    ..Spec::NONE
};
const TOUCH: Spec = Spec {
    short_values: "rdt",
    long_values: &["reference", "date", "time"],
    harmless_options: true,
    ..Spec::NONE
};
const MKDIR: Spec = Spec {
    short_values: "m",
    long_values: &["mode"],
    long_optional: &["context"],
    harmless_options: true,
    ..Spec::NONE
};
const HARMLESS: Spec = Spec {
    harmless_options: true,
    ..Spec::NONE
};
const GZIP: Spec = Spec {
    short_values: "S",
    long_values: &["suffix"],
    long_flags: &["stdout", "to-stdout", "list", "test"],
    ..Spec::NONE
};
const SORT: Spec = Spec {
    short_values: "kotSTz",
    long_values: &[
        "key",
        "output",
        "field-separator",
        "buffer-size",
        "temporary-directory",
        "compress-program",
        "files0-from",
        "parallel",
        "batch-size",
        "sort",
        "random-source",
    ],
    ..Spec::NONE
};
const UNIQ: Spec = Spec {
    short_values: "fsw",
    long_values: &["skip-fields", "skip-chars", "check-chars"],
    long_optional: &["all-repeated", "group"],
    ..Spec::NONE
};
const DATE: Spec = Spec {
    short_values: "dfrs",
    short_optional: "I",
    long_values: &["date", "file", "reference", "set"],
    long_optional: &["iso-8601", "rfc-3339"],
    ..Spec::NONE
};

fn operands<'a>(items: &'a [Item]) -> impl Iterator<Item = &'a Arg> {
    items.iter().filter_map(|item| match item {
        Item::Operand(arg) => Some(*arg),
        Item::Opt { .. } => None,
    })
}

fn value<'a>(items: &'a [Item], names: &[&str]) -> Option<&'a Arg> {
    items.iter().find_map(|item| match item {
        Item::Opt { value, .. } if item.is_any(names) => value.as_ref(),
        _ => None,
    })
}

pub(super) fn check(call: &Call) -> Result<(), String> {
    match call.program {
        "cp" | "mv" | "ln" => copy(call),
        "touch" => every_operand(call, &TOUCH),
        "mkdir" => every_operand(call, &MKDIR),
        "rm" | "rmdir" | "tee" => every_operand(call, &HARMLESS),
        "gzip" => gzip(call),
        "sort" => sort(call),
        "uniq" => uniq(call),
        _ => date(call),
    }
}

fn every_operand(call: &Call, spec: &Spec) -> Result<(), String> {
    let items = call.items(spec)?;
    operands(&items).try_for_each(|arg| call.write_target(arg, "operand"))
}

/// `mv` writes where its sources were as well as where they go; `cp` and `ln` only to their
/// destination. A symbolic link (`ln -s`, `cp -s`) is refused, since later writes could follow
/// it out of the workspace; a hard link (`ln`, `cp -l`) only to a file in the workspace, since
/// writes through it reach that file.
fn copy(call: &Call) -> Result<(), String> {
    let (spec, symbolic) = match call.program {
        "ln" => (&LINK, ["-s", "--symbolic"]),
        _ => (&COPY, ["-s", "--symbolic-link"]),
    };
    let items = call.items(spec)?;
    if call.checks.outside_workspace && items.iter().any(|item| item.is_any(&symbolic)) {
        return call.refuse("option `-s` makes symbolic links, which later writes could follow out of the workspace");
    }
    suffix(call, &items, BACKUP_SUFFIX)?;
    let operands: Vec<&Arg> = operands(&items).collect();
    let target = value(&items, &["-t", "--target-directory"]);
    if let Some(target) = target {
        call.write_target(target, "option `-t`")?;
    }
    let (sources, destination) = match (target, operands.split_last()) {
        (None, Some((last, rest))) if !rest.is_empty() => (rest, Some(*last)),
        // With `-t`, or `ln FILE` (a link in the current directory), every operand is a source.
        _ => (&operands[..], None),
    };
    let hard_link = call.program == "ln" || items.iter().any(|item| item.is_any(&["-l", "--link"]));
    if hard_link && call.checks.outside_workspace {
        sources
            .iter()
            .try_for_each(|source| call.in_workspace(source, "hard link to"))?;
    }
    match (call.program, destination) {
        ("mv", _) => operands.iter().try_for_each(|arg| call.write_target(arg, "operand")),
        (_, Some(destination)) => call.write_target(destination, "destination"),
        _ => Ok(()),
    }
}

/// A backup or output suffix with a `/` puts the file in another directory.
/// A backup or file suffix given by one of the options `names` that holds a `/` (or may: an
/// expansion) puts files in another directory.
pub(super) fn suffix(call: &Call, items: &[Item], names: &[&str]) -> Result<(), String> {
    match value(items, names) {
        Some(arg) if arg.as_text().is_none_or(|s| s.contains('/')) => call.refuse(format_args!(
            "suffix `{}` is refused (it could name another directory)",
            arg.shown
        )),
        _ => Ok(()),
    }
}

fn gzip(call: &Call) -> Result<(), String> {
    let items = call.items(&GZIP)?;
    suffix(call, &items, BACKUP_SUFFIX)?;
    let to_stdout = ["-c", "--stdout", "--to-stdout", "-l", "--list", "-t", "--test"];
    if items.iter().any(|item| item.is_any(&to_stdout)) {
        return Ok(());
    }
    operands(&items)
        .filter(|arg| arg.as_text() != Some("-"))
        .try_for_each(|arg| call.write_target(arg, "operand"))
}

fn sort(call: &Call) -> Result<(), String> {
    let items = call.items(&SORT)?;
    if call.checks.indirect_execution && items.iter().any(|item| item.is("--compress-program")) {
        return call.refuse("option `--compress-program` runs a program");
    }
    if let Some(output) = value(&items, &["-o", "--output"]) {
        call.write_target(output, "option `-o`")?;
    }
    match value(&items, &["-T", "--temporary-directory"]) {
        Some(dir) => call.write_target(dir, "option `-T`"),
        None => Ok(()),
    }
}

fn uniq(call: &Call) -> Result<(), String> {
    let items = call.items(&UNIQ)?;
    match operands(&items).nth(1) {
        Some(output) => call.write_target(output, "output operand"),
        None => Ok(()),
    }
}

fn date(call: &Call) -> Result<(), String> {
    let items = call.items(&DATE)?;
    if items.iter().any(|item| item.is_any(&["-s", "--set"])) {
        return call.refuse("option `--set` changes the system clock");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::tools::testing::{allowing, allows, allows_under, refuses, refuses_under};

    #[test]
    fn allows_writes_inside_the_workspace() {
        allows(&[
            "cp a b",
            "cp -r src build/src",
            "mv a.txt b.txt",
            "mkdir -p build/x",
            "touch -d yesterday src/lib.rs",
            "rm -f *.o target/x",
            "echo hi | tee log.txt",
            "gzip -k dist/app.tar",
            "gzip -c /etc/hosts > hosts.gz",
            "sort -o sorted.txt -k 2 list.txt",
            "sort -t, -k2 /etc/passwd",
            "uniq -c in.txt out.txt",
            "date -u +%s",
        ]);
    }

    #[test]
    fn refuses_writes_outside_the_workspace() {
        refuses(
            "cp a /etc/x",
            "`cp` destination writing to `/etc/x` is refused (outside the workspace)",
        );
        refuses("cp -t /tmp a b", "`cp` option `-t` writing to `/tmp`");
        refuses("cp --target-dir=../x a", "option `-t` writing to `--target-dir=../x`");
        refuses("mv /etc/hosts here", "`mv` operand writing to `/etc/hosts`");
        refuses("touch ~/.profile", "depends on a tilde expansion");
        refuses("mkdir -p ../../x", "outside the workspace");
        refuses("rm /etc/passwd", "`rm` operand writing to `/etc/passwd`");
        refuses("rmdir ../x", "`rmdir` operand");
        refuses("tee -a /etc/hosts", "`tee` operand");
        refuses("gzip /var/log/x", "`gzip` operand");
        refuses("gzip -S /../x a", "suffix `/../x`");
        refuses("sort -o /etc/x a", "`sort` option `-o` writing to `/etc/x`");
        refuses("sort --out=/etc/x a", "option `-o`");
        refuses("sort -T /tmp a", "option `-T`");
        refuses("uniq a /tmp/b", "`uniq` output operand writing to `/tmp/b`");
        refuses("cp a \"$OUT\"", "could become an option");
        refuses("cp -- a \"$OUT\"", "depends on a parameter expansion");
    }

    #[test]
    fn allows_links_inside_the_workspace() {
        allows(&["cp -l a b", "cp -r --link src build/src"]);
        allows_under(
            &allowing(&["ln"]),
            &[
                "ln src/a.txt b.txt",
                "ln -f build/x bin/x",
                "ln -t bin a b",
                "ln /workspaces/demo/a",
            ],
        );
    }

    #[test]
    fn refuses_links_that_writes_could_follow_out_of_the_workspace() {
        let ln = allowing(&["ln"]);
        refuses_under(&ln, "ln -s /etc x", "`ln` option `-s` makes symbolic links");
        refuses_under(&ln, "ln -sf a b", "option `-s`");
        refuses_under(&ln, "ln --sym src x", "option `-s`");
        refuses_under(
            &ln,
            "ln /etc/passwd x",
            "`ln` hard link to `/etc/passwd` is refused (outside the workspace)",
        );
        refuses_under(&ln, "ln ../x", "hard link to `../x`");
        refuses_under(&ln, "ln a /tmp/b", "`ln` destination writing to `/tmp/b`");
        refuses_under(&ln, "ln -t /tmp a", "option `-t` writing to `/tmp`");
        refuses_under(&ln, "ln -S /../x a b", "suffix `/../x`");
        refuses("cp -l /etc/passwd x", "`cp` hard link to `/etc/passwd`");
        refuses("cp --li ../x y", "hard link to `../x`");
    }

    #[test]
    fn refuses_program_running_and_system_changing_forms() {
        refuses(
            "sort --compress-program=sh a",
            "`sort` option `--compress-program` runs a program",
        );
        refuses("sort --compress-p sh a", "`--compress-program`");
        refuses("cp -s /etc/passwd x", "`cp` option `-s` makes symbolic links");
        refuses("date -s 2020-01-01", "`date` option `--set`");
        refuses("date --se=now", "`--set`");
        refuses("cp {--target-directory=/tmp,a} b", "could become an option");
    }
}
