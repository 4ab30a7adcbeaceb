//! The sanitizer's configuration. Every field has a default, so `{}` gives the built-in policy;
//! unknown fields are refused so that a misspelt option never silently weakens it.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Programs a script may run when `programs` is not configured: everyday development tools, and
/// none that runs arbitrary text as code in a new shell (`sh`, `eval`, `sudo`, `curl`, ...).
const DEFAULT_PROGRAMS: &[&str] = &[
    "[", ":", "basename", "cargo", "cat", "cd", "cmp", "comm", "cp", "cut", "date", "diff", "dirname", "du", "echo",
    "exit", "export", "false", "file", "find", "git", "go", "grep", "gzip", "head", "jq", "ls", "make", "mkdir", "mv",
    "node", "npm", "npx", "paste", "printf", "pwd", "python3", "read", "realpath", "rm", "rmdir", "rustc", "rustup",
    "sed", "seq", "set", "sleep", "sort", "stat", "tail", "tar", "tee", "test", "touch", "tr", "true", "uniq", "unset",
    "wait", "wc", "which",
];

/// The sanitizer's configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Programs a shell script may run; replaces the default list. A program named by a path
    /// (`./build.sh`) must be listed verbatim.
    pub programs: Vec<String>,
    /// Programs allowed in addition to `programs`.
    pub extra_programs: Vec<String>,
    /// Rules for argv kinds, merged over the defaults (`git`); `null` removes a kind. Kinds
    /// missing here are refused. A program of the same name in a shell script follows the same
    /// rules.
    pub argv_kinds: BTreeMap<String, Option<ArgvRules>>,
    /// Whether `claude` prompts are allowed.
    pub allow_claude: bool,
    /// Dangerous forms refused whatever the allowlist says.
    pub checks: Checks,
    /// Environment variable names refused in addition to the built-in ones (compared without
    /// regard to case; a trailing `*` matches any suffix).
    pub extra_denied_env: Vec<String>,
    /// The built-in `git` rules, built once by [`Config::check`] (which `configure` runs, so a
    /// configured snapshot starts with them) instead of on every call.
    #[serde(skip)]
    pub(crate) default_git: OnceLock<ArgvRules>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            programs: DEFAULT_PROGRAMS.iter().map(|p| p.to_string()).collect(),
            extra_programs: Vec::new(),
            argv_kinds: BTreeMap::new(),
            allow_claude: true,
            checks: Checks::default(),
            extra_denied_env: Vec::new(),
            default_git: OnceLock::new(),
        }
    }
}

/// Toggles of the dangerous-form checks; all on by default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Checks {
    /// `rm -r` of `/`, `~`, `$HOME`, a path outside the workspace or an expansion.
    pub recursive_delete: bool,
    /// A download (`curl`, `wget`, `fetch`) feeding a shell or an interpreter.
    pub download_to_interpreter: bool,
    /// `sudo`, `su`, `doas`, `pkexec`.
    pub privilege: bool,
    /// Ways to run a name the allowlist did not see: `eval`, `exec`, `source`, `.`, shells,
    /// `env`, `xargs`, `command`, `builtin`, `alias`, `trap`, `let`, `declare`; bash arithmetic
    /// and variable names that evaluate subscripts (`$((x))` of text, `read 'a[$(id)]'`);
    /// `set -k`; and tools' own options and mini-languages that run programs (`sed` `e`,
    /// `tar --to-command`, `sort --compress-program`, `make SHELL=`, `cargo --config` runners,
    /// `go -toolexec`, `rustc -C linker=`, `rustup run`, npm's `--script-shell`).
    pub indirect_execution: bool,
    /// Code the command carries or fetches instead of the workspace's own: `python3 -c`,
    /// `node -e`/`-p`, an interpreter reading its program from standard input, `python3 -m`
    /// of a module that runs its arguments or another module (`timeit`, `pdb`, `runpy`...),
    /// `npx`, `npm exec`/`x`/`init`/`create`, `make --eval` and a makefile from standard input.
    pub inline_code: bool,
    /// Writes outside the workspace, from a redirection or a tool's own argument (`cp`, `mv`,
    /// `rm`, `tee`, `sort -o`, `sed -i` and `w`, `tar -f`/`-C`, `find -fprint`/`-delete`, `cargo
    /// --target-dir`, `cargo new`, `go build -o`, `npm -g`, `git clone DIR`, `git worktree add`,
    /// `git archive -o`, `--output`...); symbolic links, and hard links to files outside (`ln`,
    /// `cp -s`/`-l`), which later writes would follow; and `cd` out of it.
    pub outside_workspace: bool,
    /// Shell function definitions, of any name: a function can shadow or wrap any program,
    /// builtin or special name, so the allowlist would no longer say what runs.
    pub function_definitions: bool,
}

impl Default for Checks {
    fn default() -> Self {
        Self {
            recursive_delete: true,
            download_to_interpreter: true,
            privilege: true,
            indirect_execution: true,
            inline_code: true,
            outside_workspace: true,
            function_definitions: true,
        }
    }
}

/// What an argv program (`git`) may not be given.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArgvRules {
    /// Options before the subcommand that take a separate value (so that the value is not taken
    /// for the subcommand), e.g. git's `-C`.
    pub global_options_with_value: Vec<String>,
    /// Options refused before the subcommand, e.g. git's `-c`.
    pub denied_global_options: Vec<String>,
    /// Options refused anywhere, e.g. `--upload-pack`.
    pub denied_options: Vec<String>,
    /// Subcommands refused outright, e.g. `filter-branch`.
    pub denied_subcommands: Vec<String>,
    /// Options refused after a subcommand, e.g. `fetch: ["-u"]`.
    pub denied_subcommand_options: BTreeMap<String, Vec<String>>,
    /// Argument prefixes refused after a subcommand (without regard to case), e.g.
    /// `config: ["alias."]`.
    pub denied_subcommand_arguments: BTreeMap<String, Vec<String>>,
    /// Text refused anywhere in any argument (without regard to case), e.g. `ext::`.
    pub denied_substrings: Vec<String>,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn per_subcommand(entries: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    entries
        .iter()
        .map(|(subcommand, items)| (subcommand.to_string(), strings(items)))
        .collect()
}

/// The built-in rules for `git`: nothing that makes git run another program, read another
/// configuration or work outside the workspace.
pub fn git_rules() -> ArgvRules {
    ArgvRules {
        global_options_with_value: strings(&["-C", "-c", "--git-dir", "--work-tree", "--namespace", "--config-env"]),
        denied_global_options: strings(&["-c", "--config-env", "-C", "--git-dir", "--work-tree", "--exec-path"]),
        denied_options: strings(&[
            "--upload-pack",
            "--receive-pack",
            "--exec",
            "--config-env",
            "--open-files-in-pager",
            "--template",
            "--extcmd",
            "--config",
        ]),
        denied_subcommands: strings(&[
            "filter-branch",
            "daemon",
            "upload-pack",
            "receive-pack",
            "shell",
            "instaweb",
            "send-email",
            "imap-send",
            "credential",
        ]),
        denied_subcommand_options: per_subcommand(&[
            ("fetch", &["-u"]),
            ("clone", &["-u", "-c"]),
            ("config", &["--global", "--system", "--file", "-f", "--blob"]),
            ("ls-remote", &["-u"]),
            ("pull", &["-u"]),
            ("grep", &["-O"]),
            ("rebase", &["-x"]),
            ("difftool", &["-x", "-t", "--tool"]),
            ("mergetool", &["-t", "--tool"]),
        ]),
        denied_subcommand_arguments: per_subcommand(&[
            (
                "config",
                &[
                    "alias.",
                    "core.",
                    "filter.",
                    "diff.",
                    "merge.",
                    "include",
                    "credential",
                    "gpg.",
                    "url.",
                    "protocol.",
                    "uploadpack.",
                    "remote.",
                    "sequence.",
                    "pager.",
                    "web.",
                    "browser.",
                    "man.",
                    "difftool.",
                    "mergetool.",
                    "interactive.",
                    "sendemail.",
                    "ssh.",
                    "imap.",
                    "submodule.",
                    "safe.",
                ],
            ),
            ("submodule", &["foreach"]),
            ("bisect", &["run"]),
        ]),
        denied_substrings: strings(&[
            "ext::",
            "fd::",
            "file::",
            "://-",
            "core.sshcommand",
            "core.gitproxy",
            "core.fsmonitor",
            "core.hookspath",
            "core.pager",
            "core.editor",
            "sequence.editor",
            "diff.external",
            "credential.helper",
            "gpg.program",
            "uploadpack.packobjectshook",
            "protocol.ext.allow",
        ]),
    }
}

impl Config {
    /// Whether `program` is on the allowlist.
    pub fn allows_program(&self, program: &str) -> bool {
        self.programs
            .iter()
            .chain(&self.extra_programs)
            .any(|allowed| allowed == program)
    }

    /// The rules of argv kind `kind`, or `None` when the kind is not allowed.
    pub fn argv_rules(&self, kind: &str) -> Option<&ArgvRules> {
        match self.argv_kinds.get(kind) {
            Some(rules) => rules.as_ref(),
            None => (kind == "git").then(|| self.default_git.get_or_init(git_rules)),
        }
    }

    /// Refuses configurations that cannot mean what they say.
    pub fn check(&self) -> Result<(), String> {
        self.default_git.get_or_init(git_rules);
        let names = self.programs.iter().chain(&self.extra_programs);
        if let Some(bad) = names
            .into_iter()
            .find(|p| p.is_empty() || p.chars().any(char::is_whitespace))
        {
            return Err(format!(
                "program {bad:?} in the allowlist is empty or contains whitespace"
            ));
        }
        if let Some(kind) = ["shell", "claude"]
            .into_iter()
            .find(|kind| self.argv_kinds.contains_key(*kind))
        {
            return Err(format!("`{kind}` is not an argv kind"));
        }
        Ok(())
    }
}
