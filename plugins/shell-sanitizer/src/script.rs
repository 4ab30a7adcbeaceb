//! Judges a shell script by its parse tree: every program of every simple command, in every scope
//! (lists, pipelines, subshells, groups, loops, `if`/`case`, function bodies, command and process
//! substitutions wherever they appear), must be a literal name on the allowlist, and none may take
//! a dangerous form. The parser lists every pipeline of every scope in one flat table, so one pass
//! over it reaches all of them.

mod arithmetic;
mod builtins;
mod forms;
mod words;

use crate::config::Config;
use crate::tools::{self, Arg, Call};
use crate::{argv, env};
use rdev_plugin_sdk::CommandContext;
use rdev_plugin_sdk::shell::{self, Element, Pipeline, Redirection, ScopeKind, Script, SimpleCommand, Word, WordPart};

/// One script being judged.
struct Judge<'a> {
    config: &'a Config,
    workdir: &'a str,
    text: &'a str,
    script: &'a Script,
    /// Names of the variables the command's environment sets.
    env_names: Vec<String>,
}

/// Judges `text` (already normalised) as a script run in `context` with environment variables
/// named `env_names`.
pub fn judge(config: &Config, context: &CommandContext, env_names: Vec<String>, text: &str) -> Result<(), String> {
    let script = shell::parse(text).map_err(|e| format!("the script cannot be parsed: {e}"))?;
    let judge = Judge {
        config,
        workdir: &context.workdir,
        text,
        script: &script,
        env_names,
    };
    // Programs first, everywhere, so that the reason names the program that matters most (the
    // `sudo` in `echo > "$(sudo id)"`, rather than the redirection around it).
    script
        .pipelines
        .iter()
        .try_for_each(|pipeline| judge.programs(pipeline))?;
    if config.checks.function_definitions {
        judge.no_function_definitions()?;
    }
    if config.checks.indirect_execution {
        judge.arithmetic()?;
    }
    script
        .pipelines
        .iter()
        .try_for_each(|pipeline| judge.pipeline(pipeline))
}

/// Refuses a program that is not on the allowlist or is dangerous whatever the allowlist says.
fn program_name(config: &Config, program: &str) -> Result<(), String> {
    forms::check_program_name(config, base_name(program))?;
    if config.allows_program(program) {
        Ok(())
    } else if program.contains('/') {
        Err(format!(
            "program `{program}` is named by a path; list it verbatim in `programs` to allow it"
        ))
    } else if program.is_empty() {
        Err("an empty program name is refused".into())
    } else {
        Err(format!("program `{program}` is not on the allowlist"))
    }
}

/// Judges the arguments of `program` (a base name) by its tool rules, in a script or as an argv
/// kind; a program it runs in turn (`find -exec`) is judged as a command of its own.
pub fn judge_tool(config: &Config, workdir: &str, program: &str, args: &[Arg]) -> Result<(), String> {
    let nested = |program: &Arg, args: &[Arg]| -> Result<(), String> {
        let name = match program.as_text() {
            Some(name) if !program.glob && !program.open => name,
            _ => {
                return Err(format!(
                    "program `{}` is built from an expansion or a glob and is refused",
                    program.shown
                ));
            }
        };
        program_name(config, name)?;
        if let Some(rules) = config.argv_rules(base_name(name)) {
            let texts: Vec<String> = args
                .iter()
                .map(|arg| arg.as_text().unwrap_or(&arg.head).to_string())
                .collect();
            argv::check(name, rules, &texts)?;
        }
        judge_tool(config, workdir, base_name(name), args)
    };
    tools::check(&Call {
        program,
        args,
        workdir,
        checks: &config.checks,
        nested: &nested,
    })
}

/// The last path component of a program name (`/usr/bin/sudo` is `sudo`).
fn base_name(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}

fn describe(part: &WordPart) -> &'static str {
    match part {
        WordPart::Literal(_) => "literal text",
        WordPart::Glob(_) => "a glob",
        WordPart::Tilde(_) => "a tilde expansion",
        WordPart::Parameter(_) => "a parameter expansion",
        WordPart::Arithmetic(_) => "an arithmetic expansion",
        WordPart::CommandSubstitution(_) => "a command substitution",
        WordPart::ProcessSubstitution(_) => "a process substitution",
    }
}

impl Judge<'_> {
    /// Refuses the first function definition: once `ls` is a function, `ls` on the allowlist no
    /// longer names what runs.
    fn no_function_definitions(&self) -> Result<(), String> {
        match self.script.scopes.iter().find(|s| s.kind == ScopeKind::FunctionBody) {
            Some(scope) => Err(format!(
                "shell function definitions are not allowed (`{}` could shadow any program)",
                scope.name.as_deref().unwrap_or("?")
            )),
            None => Ok(()),
        }
    }

    /// The word as written in the script.
    fn source(&self, word: &Word) -> &str {
        self.text
            .get(word.span.start as usize..word.span.end as usize)
            .unwrap_or("?")
    }

    /// The programs of a pipeline, and how they are connected.
    fn programs(&self, pipeline: &Pipeline) -> Result<(), String> {
        if self.config.checks.download_to_interpreter {
            self.download_into_interpreter(pipeline)?;
        }
        for element in &pipeline.elements {
            if let Element::Simple(SimpleCommand { words, .. }) = element
                && let Some(first) = words.first()
            {
                self.program(first)?;
            }
        }
        Ok(())
    }

    /// Everything else: environment, redirections, dangerous forms and argument rules.
    fn pipeline(&self, pipeline: &Pipeline) -> Result<(), String> {
        for element in &pipeline.elements {
            match element {
                Element::Simple(command) => self.simple(command)?,
                Element::Compound(compound) => self.redirections(&compound.redirections)?,
            }
        }
        Ok(())
    }

    fn simple(&self, command: &SimpleCommand) -> Result<(), String> {
        for assignment in &command.assignments {
            env::check_name(self.config, &assignment.name)?;
        }
        self.redirections(&command.redirections)?;
        let Some((first, args)) = command.words.split_first() else {
            return Ok(());
        };
        let Some(program) = first.literal() else { return Ok(()) };
        self.forms(&program, args)?;
        self.builtin(base_name(&program), args)?;
        if let Some(rules) = self.config.argv_rules(base_name(&program)) {
            argv::check(&program, rules, &self.argument_texts(&program, args)?)?;
        }
        let args: Vec<Arg> = args.iter().map(|word| words::arg(word, self.source(word))).collect();
        judge_tool(self.config, self.workdir, base_name(&program), &args)
    }

    /// The literal name of a program, refused unless it is on the allowlist and not a dangerous
    /// program (privilege escalation, running text as code).
    fn program(&self, word: &Word) -> Result<String, String> {
        let Some(program) = word.literal() else {
            let part = word
                .parts
                .iter()
                .find(|p| !matches!(p, WordPart::Literal(_)))
                .map_or("?", describe);
            return Err(format!(
                "program `{}` is built from {part} and is refused",
                self.source(word)
            ));
        };
        self.program_name(&program)?;
        Ok(program)
    }

    fn program_name(&self, program: &str) -> Result<(), String> {
        program_name(self.config, program)
    }

    /// The text of a ruled program's arguments (expansions left out). An argument that starts
    /// with an expansion, or whose option name is built from one, could become any option.
    fn argument_texts(&self, program: &str, args: &[Word]) -> Result<Vec<String>, String> {
        let mut texts = Vec::with_capacity(args.len());
        for word in args {
            let prefix: String = word
                .parts
                .iter()
                .map_while(|part| match part {
                    WordPart::Literal(text) | WordPart::Glob(text) => Some(text.as_str()),
                    _ => None,
                })
                .collect();
            let expanded = word
                .parts
                .iter()
                .any(|p| !matches!(p, WordPart::Literal(_) | WordPart::Glob(_)));
            if expanded && (prefix.is_empty() || (prefix.starts_with('-') && !prefix.contains('='))) {
                return Err(format!(
                    "`{program}` argument `{}` is built from an expansion and could become an option",
                    self.source(word)
                ));
            }
            let text = word.parts.iter().filter_map(|part| match part {
                WordPart::Literal(text) | WordPart::Glob(text) => Some(text.as_str()),
                _ => None,
            });
            texts.push(text.collect());
        }
        Ok(texts)
    }

    fn redirections(&self, redirections: &[Redirection]) -> Result<(), String> {
        if !self.config.checks.outside_workspace {
            return Ok(());
        }
        redirections
            .iter()
            .try_for_each(|redirection| self.redirection(redirection))
    }

    fn redirection(&self, redirection: &Redirection) -> Result<(), String> {
        let target = &redirection.target;
        match redirection.operator.as_str() {
            "<<" | "<<-" | "<<<" => return Ok(()),
            "<&" | ">&"
                if target
                    .literal()
                    .is_some_and(|t| t == "-" || t.bytes().all(|b| b.is_ascii_digit())) =>
            {
                return Ok(());
            }
            _ => {}
        }
        self.path_in_workspace(target, "redirection to")
    }
}
