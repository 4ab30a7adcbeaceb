//! Judging the arguments of one `git` command: is it a push that may rewrite the history of a
//! protected branch? When in doubt, it is.

use crate::Config;

/// Global options of `git` that take the next argument as their value.
const GLOBAL_OPTIONS_WITH_VALUE: &[&str] = &[
    "-C",
    "-c",
    "--git-dir",
    "--work-tree",
    "--namespace",
    "--config-env",
];

/// Checks the arguments after `git`. `None` is a word the shell expands (`"$branch"`): unknown
/// until the command runs.
pub fn judge(config: &Config, args: &[Option<String>]) -> Result<(), String> {
    let mut args = args.iter();
    let subcommand = loop {
        match args.next() {
            None => return Ok(()),
            Some(Some(arg)) if GLOBAL_OPTIONS_WITH_VALUE.contains(&arg.as_str()) => {
                args.next();
            }
            Some(Some(arg)) if arg.starts_with('-') => {}
            Some(subcommand) => break subcommand,
        }
    };
    match subcommand.as_deref() {
        Some("push") => judge_push(config, args.as_slice()),
        Some(_) => Ok(()),
        None => Err("a `git` subcommand the shell expands cannot be judged".into()),
    }
}

/// Checks the arguments after `git push`: `[options] [<repository> [<refspec>...]]`.
fn judge_push(config: &Config, args: &[Option<String>]) -> Result<(), String> {
    let mut forced = false;
    let mut positional = Vec::new();
    let mut options_ended = false;
    for arg in args {
        let Some(arg) = arg else {
            return Err("`git push` with an argument the shell expands cannot be judged".into());
        };
        if options_ended || !arg.starts_with('-') {
            positional.push(arg.as_str());
        } else if arg == "--" {
            options_ended = true;
        } else {
            forced |= forces(arg);
        }
    }
    let refspecs = positional.get(1..).unwrap_or_default();
    if forced && refspecs.is_empty() {
        return Err(
            "a forced push must name its branch (`git push --force origin my-branch`)".into(),
        );
    }
    for refspec in refspecs {
        let (plus, destination) = destination(refspec);
        if !(forced || plus) {
            continue;
        }
        if destination.is_empty()
            || destination == "HEAD"
            || destination == "@"
            || destination.contains('*')
        {
            return Err(format!(
                "a forced push of `{refspec}` may update a protected branch: name the branch"
            ));
        }
        if config
            .protected_branches
            .iter()
            .any(|branch| branch == destination)
        {
            return Err(format!(
                "force-pushing to protected branch `{destination}` is refused"
            ));
        }
    }
    Ok(())
}

/// Whether an option forces the push. Git accepts unambiguous prefixes of long options (`--forc`)
/// and bundles of one-letter options (`-uf`), so they count too.
fn forces(option: &str) -> bool {
    match option.strip_prefix("--") {
        Some(long) => {
            let name = long.split('=').next().unwrap_or_default();
            !name.is_empty()
                && ["force", "force-with-lease", "mirror"]
                    .iter()
                    .any(|o| o.starts_with(name))
        }
        // `-o` takes a value: what follows it in the bundle is that value.
        None => option
            .chars()
            .skip(1)
            .take_while(|&c| c != 'o')
            .any(|c| c == 'f'),
    }
}

/// Whether a refspec forces (`+src:dst`), and the branch it updates (`dst`, or `src` alone).
fn destination(refspec: &str) -> (bool, &str) {
    let (plus, refspec) = match refspec.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, refspec),
    };
    let destination = refspec
        .rsplit_once(':')
        .map_or(refspec, |(_, destination)| destination);
    let destination = destination.strip_prefix("refs/").unwrap_or(destination);
    (
        plus,
        destination.strip_prefix("heads/").unwrap_or(destination),
    )
}
