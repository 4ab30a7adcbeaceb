//! `{{name}}`: a command sanitizer that refuses the configured programs wherever a shell script
//! runs them — in pipelines, subshells, loops, `$(...)` — because it judges the parsed script,
//! never the text.
//!
//! Configuration: `{"refused_programs": ["rm"]}` (the default).

use rdev_plugin_sdk::shell::{self, Element};
use rdev_plugin_sdk::{Command, CommandContext, Sanitizer, Verdict};
use serde::Deserialize;

/// The plugin.
pub struct Plugin;

/// The configuration. `deny_unknown_fields`: a misspelt option is refused, not ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Programs no script may run, by name (`rm` also refuses `/bin/rm`).
    pub refused_programs: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            refused_programs: vec!["rm".into()],
        }
    }
}

impl Sanitizer for Plugin {
    type Config = Config;

    fn sanitize(config: &Config, command: &Command, _context: &CommandContext) -> Verdict {
        let (Some(script), "shell") = (&command.script, command.kind.as_str()) else {
            return Verdict::Allow;
        };
        let script = match shell::parse(script) {
            Ok(script) => script,
            // What cannot be judged is refused.
            Err(error) => return Verdict::deny(format!("the script cannot be parsed: {}", error.message)),
        };
        // `pipelines` holds the pipelines of every scope (subshells, substitutions, loops...):
        // walking it sees every command, however deeply nested.
        let programs = script
            .pipelines
            .iter()
            .flat_map(|pipeline| &pipeline.elements)
            .filter_map(|element| match element {
                Element::Simple(command) => command.words.first().and_then(|word| word.literal()),
                Element::Compound(_) => None,
            });
        for program in programs {
            let name = program.rsplit('/').next().unwrap_or_default();
            if config.refused_programs.iter().any(|refused| refused == name) {
                return Verdict::deny(format!("program `{name}` is refused"));
            }
        }
        Verdict::Allow
    }

    // `self_test` is left to the trait's default, no case. Cases returned here run against every
    // new version before it goes live, so they must hold under any configuration it accepts.
}

rdev_plugin_sdk::export_sanitizer!(Plugin);
