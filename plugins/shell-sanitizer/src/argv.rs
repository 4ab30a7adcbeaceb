//! Argument rules of argv programs (`git`): options, subcommands and argument text that would
//! make the program run another program, read another configuration or leave the workspace.

use crate::config::ArgvRules;

/// Whether `arg` is (or abbreviates, or for a one-letter option contains in a bundle) the
/// option `option`.
fn is_option(arg: &str, option: &str) -> bool {
    if arg == option {
        return true;
    }
    match (option.strip_prefix("--"), option.strip_prefix('-')) {
        // Git accepts any unambiguous abbreviation of a long option (`--upl=...`).
        (Some(_), _) => {
            let name = arg.split('=').next().unwrap_or(arg);
            name.len() > 2 && option.starts_with(name)
        }
        (None, Some(letter)) if letter.chars().count() == 1 => {
            !arg.starts_with("--") && arg.strip_prefix('-').is_some_and(|flags| flags.contains(letter))
        }
        _ => false,
    }
}

fn denied_option<'a>(arg: &str, options: &'a [String]) -> Option<&'a str> {
    options.iter().find(|option| is_option(arg, option)).map(String::as_str)
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len()
        && text.is_char_boundary(prefix.len())
        && text[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Judges the arguments `args` (after the program) of `program` under `rules`.
pub fn check(program: &str, rules: &ArgvRules, args: &[String]) -> Result<(), String> {
    options(program, rules, args)?;
    for arg in args {
        let lower = arg.to_lowercase();
        if let Some(text) = rules
            .denied_substrings
            .iter()
            .find(|text| lower.contains(&text.to_lowercase()))
        {
            return Err(format!(
                "`{program}` argument `{arg}` contains `{text}`, which is refused"
            ));
        }
    }
    Ok(())
}

/// Options, subcommands and subcommand arguments.
fn options(program: &str, rules: &ArgvRules, args: &[String]) -> Result<(), String> {
    let mut rest = args.iter();
    let subcommand = loop {
        let Some(arg) = rest.next() else { return Ok(()) };
        if !arg.starts_with('-') || arg == "-" {
            break arg;
        }
        let denied = denied_option(arg, &rules.denied_global_options).or(denied_option(arg, &rules.denied_options));
        if let Some(option) = denied {
            return Err(format!("`{program}` option `{option}` is refused"));
        }
        if rules.global_options_with_value.contains(arg) {
            rest.next();
        }
    };
    if rules.denied_subcommands.contains(subcommand) {
        return Err(format!("`{program} {subcommand}` is refused"));
    }
    let no_options = Vec::new();
    let subcommand_options = rules.denied_subcommand_options.get(subcommand).unwrap_or(&no_options);
    let subcommand_arguments = rules.denied_subcommand_arguments.get(subcommand).unwrap_or(&no_options);
    let mut options_ended = false;
    for arg in rest {
        if arg == "--" {
            options_ended = true;
        } else if !options_ended && arg.starts_with('-') {
            let denied = denied_option(arg, &rules.denied_options).or(denied_option(arg, subcommand_options));
            if let Some(option) = denied {
                return Err(format!("`{program} {subcommand}` option `{option}` is refused"));
            }
        }
        if subcommand_arguments
            .iter()
            .any(|prefix| starts_with_ignore_case(arg, prefix))
        {
            return Err(format!("`{program} {subcommand}` argument `{arg}` is refused"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::git_rules;

    fn git(args: &[&str]) -> Result<(), String> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        check("git", &git_rules(), &args)
    }

    #[test]
    fn allows_everyday_git() {
        for args in [
            &["status"][..],
            &["log", "--oneline", "-n", "5"],
            &["commit", "-m", "fix: ext"],
            &["push", "-u", "origin", "main"],
            &["diff", "--", "src/"],
            &["config", "user.name", "Ada"],
            &[],
        ] {
            assert_eq!(git(args), Ok(()), "{args:?}");
        }
    }

    #[test]
    fn refuses_configuration_overrides_before_the_subcommand() {
        assert_eq!(
            git(&["-c", "core.pager=less", "log"]),
            Err("`git` option `-c` is refused".into())
        );
        assert!(git(&["--config-env=core.pager=X", "log"]).is_err());
        assert!(git(&["-C", "/etc", "status"]).is_err());
    }

    #[test]
    fn refuses_program_running_options_anywhere() {
        assert_eq!(
            git(&["fetch", "--upload-pack=touch /tmp/x", "origin"]),
            Err("`git fetch` option `--upload-pack` is refused".into())
        );
        assert!(git(&["fetch", "-u", "x", "origin"]).is_err());
        assert!(git(&["fetch", "-qu", "x"]).is_err());
        assert!(git(&["grep", "-Ovim", "x"]).is_err());
        assert!(git(&["rebase", "-x", "make", "main"]).is_err());
        assert_eq!(
            git(&["fetch", "--upl=touch /tmp/x", "origin"]),
            Err("`git fetch` option `--upload-pack` is refused".into())
        );
        assert!(git(&["push", "--rec", "id", "origin"]).is_err());
        assert!(git(&["clone", "--config", "core.sshCommand=id", "u", "d"]).is_err());
        assert!(git(&["clone", "-ccore.sshCommand=id", "u", "d"]).is_err());
        assert!(git(&["--config-e=core.pager=X", "log"]).is_err());
    }

    #[test]
    fn refuses_dangerous_transports_and_config_keys() {
        assert!(git(&["clone", "ext::sh -c touch% /tmp/x", "dir"]).is_err());
        assert!(git(&["clone", "FILE::/tmp/x", "dir"]).is_err());
        assert!(git(&["clone", "ssh://-oProxyCommand=id/x", "dir"]).is_err());
        assert!(git(&["config", "url.ext::x.insteadOf", "https://"]).is_err());
        assert!(git(&["config", "remote.origin.uploadpack", "id"]).is_err());
        assert!(git(&["config", "--global", "user.name", "x"]).is_err());
        assert!(git(&["config", "Protocol.ext.allow", "always"]).is_err());
        assert!(git(&["instaweb"]).is_err());
        assert!(git(&["config", "core.sshCommand", "x"]).is_err());
        assert!(git(&["config", "alias.st", "!sh"]).is_err());
        assert_eq!(
            git(&["filter-branch", "x"]),
            Err("`git filter-branch` is refused".into())
        );
        assert!(git(&["submodule", "foreach", "id"]).is_err());
    }

    #[test]
    fn options_after_double_dash_are_paths() {
        assert_eq!(git(&["log", "--", "-u"]), Ok(()));
    }
}
