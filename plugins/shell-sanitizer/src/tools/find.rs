//! `find`: `-exec`, `-execdir`, `-ok` and `-okdir` run a program, judged like any other; the
//! `-fprint*` and `-fls` actions write files, and `-delete` deletes under the starting points,
//! all confined to the workspace.

use super::{Arg, Call};

/// Actions that run the program named after them, up to `;` or `+`.
const RUNS: &[&str] = &["-exec", "-execdir", "-ok", "-okdir"];
/// Actions whose value is a file they write.
const WRITES: &[&str] = &["-fprint", "-fprint0", "-fprintf", "-fls"];
/// Tests and actions that take one value (`-fprintf` takes two: the file, then the format).
const WITH_VALUE: &[&str] = &[
    "-name",
    "-iname",
    "-path",
    "-ipath",
    "-wholename",
    "-iwholename",
    "-regex",
    "-iregex",
    "-lname",
    "-ilname",
    "-type",
    "-xtype",
    "-perm",
    "-user",
    "-group",
    "-uid",
    "-gid",
    "-size",
    "-links",
    "-inum",
    "-samefile",
    "-newer",
    "-anewer",
    "-cnewer",
    "-mtime",
    "-mmin",
    "-atime",
    "-amin",
    "-ctime",
    "-cmin",
    "-used",
    "-maxdepth",
    "-mindepth",
    "-printf",
    "-fstype",
    "-context",
    "-regextype",
    "-files0-from",
    "-D",
    "-O",
];

pub(super) fn check(call: &Call) -> Result<(), String> {
    let mut args = call.args.iter();
    let mut starts = Vec::new();
    let mut deletes = false;
    let mut in_expression = false;
    while let Some(arg) = args.next() {
        let text = arg.as_text().filter(|_| !arg.open);
        if !in_expression && starts.is_empty() {
            match text {
                Some("-H" | "-L" | "-P") => continue,
                Some(t) if t.starts_with("-O") => continue,
                Some("-D") => {
                    args.next();
                    continue;
                }
                _ => {}
            }
        }
        in_expression |= arg.open || text.is_some_and(|t| t.starts_with(['-', '(', '!', ')', ',']));
        if !in_expression {
            starts.push(arg);
            continue;
        }
        let Some(token) = text else {
            return call.refuse(format_args!(
                "expression `{}` is built from an expansion and could become any action",
                arg.shown
            ));
        };
        match token {
            _ if RUNS.contains(&token) => run(call, token, &mut args)?,
            _ if WRITES.contains(&token) => {
                let Some(file) = args.next() else { return Ok(()) };
                call.write_target(file, &format!("action `{token}`"))?;
                if token == "-fprintf" {
                    args.next();
                }
            }
            "-delete" => deletes = true,
            "-files0-from" if call.checks.outside_workspace => {
                return call
                    .refuse("option `-files0-from` takes its starting points from a file, which cannot be judged");
            }
            _ if WITH_VALUE.contains(&token) || token.starts_with("-newer") => {
                args.next();
            }
            _ => {}
        }
    }
    if deletes {
        let here = Arg::literal(".");
        let starts = if starts.is_empty() { vec![&here] } else { starts };
        for start in starts {
            call.write_target(start, "action `-delete` under")?;
        }
    }
    Ok(())
}

/// `-exec PROGRAM ARGS... ;` (or `+`): the program and its arguments are judged as a command.
fn run<'a>(call: &Call, action: &str, args: &mut impl Iterator<Item = &'a Arg>) -> Result<(), String> {
    let Some(program) = args.next() else { return Ok(()) };
    let rest: Vec<Arg> = args
        .by_ref()
        .take_while(|arg| !matches!(arg.as_text(), Some(";" | "+")))
        .cloned()
        .collect();
    (call.nested)(program, &rest).map_err(|reason| format!("`find {action}`: {reason}"))
}

#[cfg(test)]
mod tests {
    use crate::tools::testing::{allows, refuses};

    #[test]
    fn allows_ordinary_finds() {
        allows(&[
            "find . -name '*.rs' -print",
            "find src -type f -name \"$pattern\" -newer Cargo.toml",
            "find . -name '*.rs' -exec wc -l {} +",
            "find target -name '*.o' -delete",
            "find -L . -maxdepth 2 -fprint list.txt",
            "find . -name '*.rs' -exec sed -i 's/a/b/' {} +",
            "find /usr/include -name '*.h'",
        ]);
    }

    #[test]
    fn judges_the_programs_find_runs() {
        refuses("find . -exec sh -c id \\;", "`find -exec`: program `sh` is refused");
        refuses("find . -execdir nc -l 1 \\;", "program `nc` is not on the allowlist");
        refuses("find . -ok $cmd {} \\;", "built from an expansion");
        refuses("find . -exec rm {} /etc/x \\;", "`rm` operand writing to `/etc/x`");
    }

    #[test]
    fn confines_what_find_writes() {
        refuses(
            "find . -fprint /tmp/x",
            "`find` action `-fprint` writing to `/tmp/x` is refused",
        );
        refuses("find . -fprintf ~/x %p", "action `-fprintf`");
        refuses("find . -fls ../x", "action `-fls`");
        refuses("find / -name x -delete", "`find` action `-delete` under writing to `/`");
        refuses("find -L /etc -delete", "`/etc`");
        refuses("find . $action", "could become any action");
        refuses("find . -files0-from list -delete", "`-files0-from`");
    }
}
