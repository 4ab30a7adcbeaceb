//! Environment variables that change how programs load code, find programs or read configuration,
//! refused for every kind of command and in script assignments (`PATH=/tmp ls`, `export PATH=`).

use crate::config::Config;

/// Always refused (case-insensitive); a trailing `*` matches any suffix.
const DENIED: &[&str] = &[
    "LD_*",
    "DYLD_*",
    "PATH",
    "BASH_ENV",
    "ENV",
    "PROMPT_COMMAND",
    "BASH_FUNC_*",
    "SHELLOPTS",
    "BASHOPTS",
    "IFS",
    "PS0",
    "PS1",
    "PS2",
    "PS4",
    "CDPATH",
    "OLDPWD",
    "MAKEFLAGS",
    "GNUMAKEFLAGS",
    "MFLAGS",
    "MAKEFILES",
    "NPM_CONFIG_*",
    "CARGO_HOME",
    "CARGO_TARGET_*",
    "CARGO_BUILD_RUSTC*",
    "CARGO_BUILD_RUSTDOC*",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_ALIAS_*",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTDOC",
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "GOFLAGS",
    "GOENV",
    "GOTOOLCHAIN",
    "CC",
    "CXX",
    "BROWSER",
    "HOME",
    "XDG_CONFIG_HOME",
    "GIT_CONFIG*",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_EXEC_PATH",
    "GIT_PROXY_COMMAND",
    "GIT_ASKPASS",
    "GIT_EXTERNAL_DIFF",
    "GIT_PAGER",
    "GIT_EDITOR",
    "GIT_SEQUENCE_EDITOR",
    "GIT_TEMPLATE_DIR",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_ALLOW_PROTOCOL",
    "SSH_ASKPASS",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "NODE_OPTIONS",
    "PYTHONSTARTUP",
    "PYTHONPATH",
    "PERL5OPT",
    "PERL5LIB",
    "RUBYOPT",
    "RUSTC_WRAPPER",
    "RUSTC",
];

fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.len() >= prefix.len() && name[..prefix.len()].eq_ignore_ascii_case(prefix),
        None => pattern.eq_ignore_ascii_case(name),
    }
}

fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Refuses a malformed or denied environment variable name.
pub fn check_name(config: &Config, name: &str) -> Result<(), String> {
    if !is_valid_name(name) {
        return Err(format!("environment variable name {name:?} is malformed"));
    }
    let denied = DENIED
        .iter()
        .copied()
        .chain(config.extra_denied_env.iter().map(String::as_str));
    match denied.into_iter().any(|pattern| matches(pattern, name)) {
        true => Err(format!("environment variable `{name}` is refused")),
        false => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_loader_and_git_variables_in_any_case() {
        let config = Config::default();
        for name in [
            "LD_PRELOAD",
            "ld_library_path",
            "GIT_CONFIG_GLOBAL",
            "GIT_SSH_COMMAND",
            "PATH",
            "BASH_ENV",
        ] {
            assert!(check_name(&config, name).is_err(), "{name}");
        }
        assert_eq!(
            check_name(&config, "LD_AUDIT"),
            Err("environment variable `LD_AUDIT` is refused".into())
        );
    }

    #[test]
    fn allows_ordinary_variables() {
        for name in ["RUST_LOG", "CI", "_X", "NODE_ENV", "PATHS"] {
            assert_eq!(check_name(&Config::default(), name), Ok(()), "{name}");
        }
    }

    #[test]
    fn refuses_configured_extra_names_and_malformed_names() {
        let config = Config {
            extra_denied_env: vec!["AWS_*".into()],
            ..Config::default()
        };
        assert!(check_name(&config, "AWS_SECRET_ACCESS_KEY").is_err());
        assert!(check_name(&config, "1X").is_err());
        assert!(check_name(&config, "A=B").is_err());
    }
}
