//! A tiny tool policy: a `claude` run may not push, whichever way its `Bash` call spells it,
//! because it judges the parsed command rather than the text.
//!
//! Run its fixtures with `cargo run -p rdev-plugin-sdk --example no_push`. In a plugin crate
//! (`crate-type = ["cdylib"]`) the same code plus `rdev_plugin_sdk::export_tool_policy!(NoPush);`
//! builds a component with `cargo build --target wasm32-wasip2`.

use rdev_plugin_sdk::shell::{self, Element};
use rdev_plugin_sdk::{ToolContext, ToolPolicy, ToolVerdict, testing};

/// Refuses `git push` in the `Bash` calls of `claude` runs.
struct NoPush;

impl ToolPolicy for NoPush {
    type Config = ();

    fn judge(_: &(), tool: &str, input: &serde_json::Value, _context: &ToolContext) -> ToolVerdict {
        let command = input["command"].as_str().unwrap_or_default();
        if tool != "Bash" {
            return ToolVerdict::Allow;
        }
        let parsed = match shell::parse(command) {
            Ok(parsed) => parsed,
            Err(error) => return ToolVerdict::deny(format!("the command cannot be parsed: {error}")),
        };
        let pushes = parsed
            .pipelines
            .iter()
            .flat_map(|p| &p.elements)
            .any(|element| match element {
                Element::Simple(simple) => {
                    let words: Vec<_> = simple.words.iter().filter_map(|w| w.literal()).collect();
                    words.first().is_some_and(|w| w == "git") && words.iter().any(|w| w == "push")
                }
                Element::Compound(_) => false,
            });
        match pushes {
            true => ToolVerdict::deny("pushing is for people: commit, and say what to push"),
            false => ToolVerdict::Allow,
        }
    }
}

const FIXTURE: &str = r#"{
  "tool_policy": [
    {"name": "a status", "tool": "Bash", "input": {"command": "git status"}, "expect": "allow"},
    {"name": "a push after a commit", "tool": "Bash",
     "input": {"command": "git commit -am wip && git push origin HEAD"}, "expect": "deny",
     "reason_contains": "pushing"},
    {"name": "a push in a substitution", "tool": "Bash", "input": {"command": "echo $(git push)"},
     "expect": "deny"},
    {"name": "other tools", "tool": "Write", "input": {"file_path": "push.md"}, "expect": "allow"}
  ]
}"#;

fn main() {
    let report = testing::run_tool_policy::<NoPush>(FIXTURE);
    println!("{report}");
    report.assert_passed();
}

#[test]
fn fixtures_pass() {
    testing::run_tool_policy::<NoPush>(FIXTURE).assert_passed();
}
