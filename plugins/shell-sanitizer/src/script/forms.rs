//! Dangerous forms, refused whatever the allowlist says (each check can be switched off):
//! privilege escalation, running text as code, recursive deletes of what is not the workspace's,
//! downloads fed into interpreters, and leaving the workspace by `cd` or a redirection.

use super::{Judge, base_name, describe};
use crate::config::Config;
use crate::env;
use crate::paths::{self, Place};
use crate::tools;
use rdev_plugin_sdk::shell::{Element, Pipeline, Word, WordPart};

const PRIVILEGE: &[&str] = &["sudo", "su", "doas", "pkexec", "run0"];
/// Shells: each runs text as code.
const SHELLS: &[&str] = &[
    "sh", "bash", "zsh", "dash", "ksh", "mksh", "fish", "csh", "tcsh", "busybox",
];
/// Programs besides the shells that run another program or text as code.
const INDIRECT: &[&str] = &[
    "eval",
    "exec",
    "source",
    ".",
    "env",
    "xargs",
    "command",
    "builtin",
    "nohup",
    "setsid",
    "chroot",
    "unshare",
    "nsenter",
    "alias",
    "trap",
    "hash",
    "enable",
    "let",
    "declare",
    "typeset",
    "local",
    "mapfile",
    "readarray",
    "fc",
    "timeout",
    "nice",
    "stdbuf",
    "time",
    "parallel",
];
const DOWNLOADERS: &[&str] = &["curl", "wget", "fetch", "aria2c"];
/// Interpreters besides the shells, which a download must not feed.
const INTERPRETERS: &[&str] = &[
    "eval",
    "source",
    ".",
    "sudo",
    "node",
    "nodejs",
    "deno",
    "bun",
    "lua",
    "tclsh",
    "Rscript",
    "pwsh",
    "osascript",
];
const INTERPRETER_FAMILIES: &[&str] = &["python", "perl", "ruby", "php"];
const DECLARATIONS: &[&str] = &["export", "readonly", "declare", "typeset", "local"];

fn is_interpreter(program: &str) -> bool {
    SHELLS.contains(&program)
        || INTERPRETERS.contains(&program)
        || INTERPRETER_FAMILIES.iter().any(|family| program.starts_with(family))
}

/// Refuses programs that escalate privilege or run text as code.
pub(super) fn check_program_name(config: &Config, program: &str) -> Result<(), String> {
    if config.checks.privilege && PRIVILEGE.contains(&program) {
        return Err(format!("program `{program}` is refused (privilege escalation)"));
    }
    if config.checks.indirect_execution && (SHELLS.contains(&program) || INDIRECT.contains(&program)) {
        return Err(format!(
            "program `{program}` is refused (it runs text or other programs as commands)"
        ));
    }
    Ok(())
}

impl Judge<'_> {
    /// Dangerous forms of a simple command's program and arguments.
    pub(super) fn forms(&self, program: &str, args: &[Word]) -> Result<(), String> {
        let checks = &self.config.checks;
        match base_name(program) {
            "rm" if checks.recursive_delete => self.recursive_delete(args),
            "cd" if checks.outside_workspace => self.change_directory(args),
            name if DECLARATIONS.contains(&name) => self.declarations(name, args),
            name if checks.download_to_interpreter && is_interpreter(name) => self.substituted_download(name, args),
            _ => Ok(()),
        }
    }

    fn recursive_delete(&self, args: &[Word]) -> Result<(), String> {
        let mut recursive = false;
        let mut options_ended = false;
        let mut targets = Vec::new();
        for word in args {
            match word.literal() {
                Some(text) if !options_ended && text == "--" => options_ended = true,
                Some(text) if !options_ended && text.starts_with("--") => recursive |= text == "--recursive",
                Some(text) if !options_ended && text.len() > 1 && text.starts_with('-') => {
                    recursive |= text.contains(['r', 'R']);
                }
                // Before `--`, an expanded word may turn out to be `-r`.
                None if !options_ended => {
                    recursive |= !matches!(word.parts.first(), Some(WordPart::Literal(t)) if !t.starts_with('-'));
                    targets.push(word);
                }
                _ => targets.push(word),
            }
        }
        if !recursive {
            return Ok(());
        }
        for word in targets {
            let why = match self.literal_path(word) {
                Err(part) => format!(" (it depends on {part})"),
                Ok(path) if paths::is_root(&path) => String::new(),
                Ok(path) if paths::can_match_parent(&path) => " (the pattern can match `..`)".into(),
                Ok(path) => match paths::place(self.workdir, &path) {
                    Place::Inside => continue,
                    Place::Workspace => " (the whole workspace)".into(),
                    Place::Outside => " (outside the workspace)".into(),
                },
            };
            return Err(format!(
                "program `rm` with a recursive delete of `{}` is refused{why}",
                self.source(word)
            ));
        }
        Ok(())
    }

    fn change_directory(&self, args: &[Word]) -> Result<(), String> {
        let target = args
            .iter()
            .find(|w| !w.literal().is_some_and(|t| t.starts_with('-') && t.len() > 1));
        match target {
            None => Err("`cd` to the home directory is refused (outside the workspace)".into()),
            Some(word) if word.literal().is_some_and(|t| t == "-") => Ok(()),
            Some(word) => self.path_in_workspace(word, "`cd` to"),
        }
    }

    /// Refuses `what` (a redirection, a `cd`) to `word` unless it stays in the workspace.
    pub(super) fn path_in_workspace(&self, word: &Word, what: &str) -> Result<(), String> {
        let arg = super::words::arg(word, self.source(word));
        match tools::outside(self.workdir, &arg) {
            Some(why) => Err(format!("{what} `{}` is refused ({why})", arg.shown)),
            None => Ok(()),
        }
    }

    /// The text of a word made of literal text and globs, or what else it depends on.
    fn literal_path(&self, word: &Word) -> Result<String, &'static str> {
        let mut path = String::new();
        for part in &word.parts {
            match part {
                WordPart::Literal(text) | WordPart::Glob(text) => path.push_str(text),
                other => return Err(describe(other)),
            }
        }
        Ok(path)
    }

    /// `export NAME=value` sets the environment of every later command: names are judged.
    fn declarations(&self, program: &str, args: &[Word]) -> Result<(), String> {
        for word in args {
            match word.literal() {
                Some(text) if text.starts_with('-') => {}
                Some(text) => env::check_name(self.config, text.split('=').next().unwrap_or_default())?,
                None => {
                    let name_is_literal = matches!(word.parts.first(), Some(WordPart::Literal(t)) if t.contains('='));
                    if !name_is_literal {
                        return Err(format!(
                            "`{program}` of `{}` is refused (built from an expansion)",
                            self.source(word)
                        ));
                    }
                    let name = match word.parts.first() {
                        Some(WordPart::Literal(text)) => text.split('=').next().unwrap_or_default(),
                        _ => "",
                    };
                    env::check_name(self.config, name)?;
                }
            }
        }
        Ok(())
    }

    /// Literal names of the programs run by pipelines inside scope `scope` (or nested in it).
    fn programs_within(&self, scope: u32) -> Vec<String> {
        let pipelines = self.script.pipelines.iter().filter(|p| self.is_within(p.scope, scope));
        pipelines
            .flat_map(|p| self.element_programs(p.elements.iter()))
            .collect()
    }

    fn element_programs<'e>(&self, elements: impl Iterator<Item = &'e Element>) -> Vec<String> {
        let mut programs = Vec::new();
        for element in elements {
            match element {
                Element::Simple(command) => {
                    let program = command.words.first().and_then(Word::literal);
                    programs.extend(program.map(|p| base_name(&p).to_string()));
                }
                Element::Compound(compound) => programs.extend(self.programs_within(compound.scope)),
            }
        }
        programs
    }

    fn is_within(&self, mut scope: u32, ancestor: u32) -> bool {
        for _ in 0..=self.script.scopes.len() {
            if scope == ancestor {
                return true;
            }
            match self.script.scopes.get(scope as usize).and_then(|s| s.parent) {
                Some(parent) => scope = parent,
                None => return false,
            }
        }
        false
    }

    /// `curl ... | sh`: a download earlier in a pipeline than an interpreter.
    pub(super) fn download_into_interpreter(&self, pipeline: &Pipeline) -> Result<(), String> {
        let mut downloader: Option<String> = None;
        for element in &pipeline.elements {
            let programs = self.element_programs(std::iter::once(element));
            if let Some(fetcher) = &downloader
                && let Some(interpreter) = programs.iter().find(|p| is_interpreter(p))
            {
                return Err(format!(
                    "a download (`{fetcher}`) piped into `{interpreter}` is refused"
                ));
            }
            if downloader.is_none() {
                downloader = programs.into_iter().find(|p| DOWNLOADERS.contains(&p.as_str()));
            }
        }
        Ok(())
    }

    /// `python3 <(curl ...)`, `bash -c "$(wget ...)"`: a download substituted into an interpreter.
    fn substituted_download(&self, interpreter: &str, args: &[Word]) -> Result<(), String> {
        for part in args.iter().flat_map(|word| &word.parts) {
            if let WordPart::CommandSubstitution(scope) | WordPart::ProcessSubstitution(scope) = part
                && let Some(fetcher) = self
                    .programs_within(*scope)
                    .into_iter()
                    .find(|p| DOWNLOADERS.contains(&p.as_str()))
            {
                return Err(format!("a download (`{fetcher}`) fed into `{interpreter}` is refused"));
            }
        }
        Ok(())
    }
}
