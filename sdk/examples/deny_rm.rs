//! A tiny sanitizer: refuses every script that runs `rm`, anywhere in it (pipelines, subshells,
//! command substitutions...), because it judges the parsed script rather than the text.
//!
//! Run its fixtures with `cargo run -p rdev-plugin-sdk --example deny_rm`. In a plugin crate
//! (`crate-type = ["cdylib"]`) the same code plus `rdev_plugin_sdk::export_sanitizer!(DenyRm);`
//! builds a component with `cargo build --target wasm32-wasip2`.

use rdev_plugin_sdk::shell::{self, Element};
use rdev_plugin_sdk::{Command, CommandContext, Sanitizer, Verdict, testing};
use serde::Deserialize;

/// Refuses `rm` (and any configured program) in shell scripts.
struct DenyRm;

/// Programs refused besides `rm`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    also: Vec<String>,
}

impl Sanitizer for DenyRm {
    type Config = Config;

    fn sanitize(config: &Config, command: &Command, _context: &CommandContext) -> Verdict {
        let Some(script) = &command.script else {
            return Verdict::Allow;
        };
        let parsed = match shell::parse(script) {
            Ok(parsed) => parsed,
            Err(error) => return Verdict::deny(format!("the script cannot be parsed: {error}")),
        };
        let programs = parsed
            .pipelines
            .iter()
            .flat_map(|p| &p.elements)
            .filter_map(|element| match element {
                Element::Simple(simple) => simple.words.first().and_then(|word| word.literal()),
                Element::Compound(_) => None,
            });
        for program in programs {
            if program == "rm" || config.also.contains(&program) {
                return Verdict::deny(format!("program `{program}` is refused"));
            }
        }
        Verdict::Allow
    }
}

const FIXTURE: &str = r#"{
  "config": {"also": ["shred"]},
  "sanitizer": [
    {"name": "ls", "command": {"kind": "shell", "script": "ls -l"}, "expect": "allow"},
    {"name": "rm in a substitution", "command": {"kind": "shell", "script": "echo $(rm -f x)"},
     "expect": "deny", "reason_contains": "`rm`"},
    {"name": "a configured program", "command": {"kind": "shell", "script": "shred x"}, "expect": "deny"},
    {"name": "git is not a script", "command": {"kind": "git", "args": ["rm", "x"]}, "expect": "allow"}
  ]
}"#;

fn main() {
    let report = testing::run_sanitizer::<DenyRm>(FIXTURE);
    println!("{report}");
    report.assert_passed();
}

#[test]
fn fixtures_pass() {
    testing::run_sanitizer::<DenyRm>(FIXTURE).assert_passed();
}
