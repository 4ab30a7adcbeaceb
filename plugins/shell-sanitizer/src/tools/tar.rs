//! `tar`: options that run another program (`--to-command`, `-I`, `--checkpoint-action`,
//! `--rsh-command`, `-F`, remote archives `host:file`) are refused; the archive written, the
//! directory changed to and other files tar writes are confined to the workspace; extraction
//! with absolute names (`-P`) is refused. Old-style bundles (`tar czf out.tgz src`) are read as
//! tar reads them: each letter that takes a value takes the next argument.

use super::{Arg, Call, Item, Spec, options};

const TAR: Spec = Spec {
    short_values: "fCIFbgHKLNTVX",
    long_values: &[
        "file",
        "directory",
        "use-compress-program",
        "to-command",
        "checkpoint-action",
        "rsh-command",
        "rmt-command",
        "info-script",
        "new-volume-script",
        "listed-incremental",
        "exclude",
        "exclude-from",
        "files-from",
        "format",
        "transform",
        "xform",
        "owner",
        "group",
        "mode",
        "mtime",
        "label",
        "newer",
        "after-date",
        "newer-mtime",
        "blocking-factor",
        "record-size",
        "tape-length",
        "starting-file",
        "suffix",
        "index-file",
        "volno-file",
        "strip-components",
        "warning",
        "quoting-style",
        "pax-option",
        "level",
        "sparse-version",
        "owner-map",
        "group-map",
    ],
    long_optional: &["backup", "checkpoint", "occurrence", "atime-preserve", "one-top-level"],
    long_flags: &[
        "create",
        "append",
        "update",
        "catenate",
        "concatenate",
        "delete",
        "extract",
        "get",
        "list",
        "to-stdout",
        "absolute-names",
        "force-local",
        "directory-only",
    ],
    ..Spec::NONE
};

/// Options naming a program tar runs, with the name shown in reasons.
const RUNS: &[(&str, &str)] = &[
    ("--to-command", "--to-command"),
    ("--use-compress-program", "-I"),
    ("-I", "-I"),
    ("--checkpoint-action", "--checkpoint-action"),
    ("--rsh-command", "--rsh-command"),
    ("--rmt-command", "--rmt-command"),
    ("--info-script", "-F"),
    ("--new-volume-script", "-F"),
    ("-F", "-F"),
];
/// Options whose value is a file tar writes.
const WRITES: &[&str] = &["-g", "--listed-incremental", "--index-file", "--volno-file"];
const WRITE_MODES: &[&str] = &[
    "-c",
    "--create",
    "-r",
    "--append",
    "-u",
    "--update",
    "-A",
    "--catenate",
    "--concatenate",
    "--delete",
];

pub(super) fn check(call: &Call) -> Result<(), String> {
    let items = read(call)?;
    let has = |names: &[&str]| items.iter().any(|item| item.is_any(names));
    for item in &items {
        let Item::Opt { name, value } = item else { continue };
        if let Some((_, shown)) = RUNS.iter().find(|(option, _)| option == name) {
            if call.checks.indirect_execution {
                return call.refuse(format_args!("option `{shown}` runs a program"));
            }
        } else if matches!(name.as_str(), "-C" | "--directory" | "--one-top-level") {
            value.iter().try_for_each(|dir| call.write_target(dir, "option `-C`"))?;
        } else if WRITES.contains(&name.as_str()) {
            value
                .iter()
                .try_for_each(|file| call.write_target(file, &format!("option `{name}`")))?;
        } else if name == "-f" || name == "--file" {
            archive(call, value.as_ref(), has(WRITE_MODES), has(&["--force-local"]))?;
        }
    }
    if has(&["-x", "--extract", "--get"]) && has(&["-P", "--absolute-names"]) && call.checks.outside_workspace {
        return call.refuse("option `-P` extracts absolute names, which can land outside the workspace");
    }
    Ok(())
}

/// The archive: `host:file` makes tar run a remote shell; a written archive must stay inside.
fn archive(call: &Call, file: Option<&Arg>, written: bool, force_local: bool) -> Result<(), String> {
    let Some(file) = file else { return Ok(()) };
    let remote = file
        .as_text()
        .is_some_and(|f| f.split('/').next().is_some_and(|head| head.contains(':')));
    if remote && !force_local && call.checks.indirect_execution {
        return call.refuse(format_args!(
            "archive `{}` is on a remote host, which tar reaches by running a remote shell",
            file.shown
        ));
    }
    if written && file.as_text() != Some("-") {
        call.write_target(file, "option `-f`")?;
    }
    Ok(())
}

/// The options and operands, reading an old-style first bundle (`czf out.tgz`) first.
fn read<'a>(call: &Call<'a>) -> Result<Vec<Item<'a>>, String> {
    let Some(first) = call.args.first() else {
        return Ok(Vec::new());
    };
    let old_style = first.as_text().filter(|t| !t.starts_with('-') && !first.open);
    let Some(bundle) = old_style else {
        return call.items(&TAR);
    };
    let mut items = Vec::new();
    let mut values = call.args[1..].iter();
    for letter in bundle.chars() {
        let value = TAR
            .short_values
            .contains(letter)
            .then(|| values.next().cloned())
            .flatten();
        items.push(Item::Opt {
            name: format!("-{letter}"),
            value,
        });
    }
    let rest = values.as_slice();
    items.extend(options::scan(call, &TAR, rest)?);
    Ok(items)
}

#[cfg(test)]
mod tests {
    use crate::tools::testing::{allows, refuses};

    #[test]
    fn allows_ordinary_archives() {
        allows(&[
            "tar -czf out.tgz src",
            "tar -xzf a.tgz",
            "tar czf out.tgz src",
            "tar -xzf /tmp/a.tgz -C build",
            "tar -tvf a.tar",
            "tar -cf - src | gzip > out.tgz",
            "tar --exclude=target -czf out.tgz .",
            "tar -czf out.tgz -- *",
        ]);
    }

    #[test]
    fn refuses_options_that_run_programs() {
        refuses(
            "tar -xf a.tar --to-command=sh",
            "`tar` option `--to-command` runs a program",
        );
        refuses("tar -xf a.tar --to-com sh", "option `--to-command`");
        refuses("tar -I 'sh -c id' -cf a.tar src", "option `-I` runs a program");
        refuses("tar --use-compress-prog=id -cf a.tar src", "option `-I`");
        refuses(
            "tar -cf a.tar --checkpoint=1 --checkpoint-action=exec=id src",
            "`--checkpoint-action`",
        );
        refuses("tar -cf a.tar --rsh-command=/tmp/x src", "`--rsh-command`");
        refuses("tar -cf a.tar -F id -M src", "option `-F`");
        refuses("tar -cf a.tar --new-volume-script=id src", "option `-F`");
        refuses("tar cfI a.tar id src", "option `-I`");
        refuses("tar -cf host:/x.tar src", "on a remote host");
        refuses("tar -czf out.tgz *", "could become an option");
        refuses("tar -czf out.tgz {--to-command=id,src}", "could become an option");
    }

    #[test]
    fn confines_what_tar_writes() {
        refuses(
            "tar -czf /tmp/out.tgz src",
            "`tar` option `-f` writing to `/tmp/out.tgz`",
        );
        refuses("tar czf ../out.tgz src", "option `-f` writing to `../out.tgz`");
        refuses("tar --file=/tmp/x -c src", "option `-f`");
        refuses("tar -xzf a.tgz -C /", "`tar` option `-C` writing to `/`");
        refuses("tar -xf a.tar --directory=/etc", "option `-C`");
        refuses("tar -xPf a.tar", "option `-P` extracts absolute names");
        refuses("tar -cg /tmp/snap -f a.tar src", "option `-g` writing to `/tmp/snap`");
    }
}
