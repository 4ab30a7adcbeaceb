//! The offline harness, in the spirit of `opa test`: run a plugin's fixtures (see [`crate::fixtures`])
//! natively, in a plain `#[test]`, and get a [`Report`] that says which cases failed and why.
//!
//! ```ignore
//! #[test]
//! fn fixtures_pass() {
//!     rdev_plugin_sdk::testing::run_sanitizer::<MySanitizer>("fixtures.json").assert_passed();
//! }
//! ```
//!
//! How a case's outcome is obtained is kept apart from how it is judged: a [`Subject`] answers the
//! calls (natively here, or a compiled component under wasmtime), [`run`] drives any subject
//! through a fixture, and each fixture case judges an outcome with its `evaluate` method.
//! [`run_component`] runs a fixture against the compiled component, through `rdev plugins test`.

mod component;
mod evaluate;
mod native;
mod report;

pub use component::{run_component, run_component_with};
pub use native::{NativeDiscovery, NativeFormatter, NativeSanitizer, NativeToolPolicy, NativeValidator};
pub use report::{CaseReport, Report};

use crate::fixtures::{self, Cases, Fixture};
use crate::{
    Command, CommandContext, Discovery, FieldError, Formatter, InventoryItem, Project, Rendered, Sanitizer, ToolCall,
    ToolContext, ToolPolicy, ToolVerdict, Validator, Verdict, WebhookTarget,
};

/// Something fixture cases run against. Every call returns `Err` when the call itself failed (a
/// trap, a missing export); a plugin's own errors are the inner `Result`s.
pub trait Subject {
    /// Hands the plugin its configuration (empty text for the default).
    fn configure(&mut self, config: &str) -> Result<(), String>;

    /// Judges one command.
    fn sanitize(&mut self, _command: &Command, _context: &CommandContext) -> Result<Verdict, String> {
        Err(not_exported("command-sanitizer"))
    }

    /// Validates one request (the JSON text).
    fn validate(&mut self, _resource: &str, _request: &str) -> Result<Vec<FieldError>, String> {
        Err(not_exported("request-validator"))
    }

    /// Renders one event (the JSON text).
    fn format(
        &mut self,
        _event_type: &str,
        _event: &str,
        _target: &WebhookTarget,
    ) -> Result<Result<Rendered, String>, String> {
        Err(not_exported("webhook-formatter"))
    }

    /// Discovers the projects of an inventory.
    fn discover(&mut self, _inventory: &[InventoryItem]) -> Result<Result<Vec<Project>, String>, String> {
        Err(not_exported("project-discovery"))
    }

    /// Judges one tool call.
    fn judge_tool(&mut self, _call: &ToolCall, _context: &ToolContext) -> Result<ToolVerdict, String> {
        Err(not_exported("tool-policy"))
    }
}

fn not_exported(world: &str) -> String {
    format!("the plugin does not implement the {world} world")
}

/// Runs every case of `fixture` against `subject`, after configuring it with the fixture's config.
/// `source` names the fixture in the report (a path, or "bundled self-test").
pub fn run(source: &str, fixture: &Fixture, subject: &mut impl Subject) -> Report {
    let mut report = Report::new(source);
    if let Err(error) = subject.configure(&fixture.config_json()) {
        report.push(CaseReport::failed("configure", "the configuration is accepted", error));
        return report;
    }
    match &fixture.cases {
        Cases::Sanitizer(cases) => {
            for case in cases {
                report.push(case.evaluate(subject.sanitize(&case.command, &case.context)));
            }
        }
        Cases::Validator(cases) => {
            for case in cases {
                report.push(case.evaluate(subject.validate(&case.resource, &case.request)));
            }
        }
        Cases::Formatter(cases) => {
            for case in cases {
                report.push(case.evaluate(subject.format(&case.event_type, &case.event, &case.target)));
            }
        }
        Cases::Discovery(cases) => {
            for case in cases {
                report.push(case.evaluate(subject.discover(&case.inventory)));
            }
        }
        Cases::Tool(cases) => {
            for case in cases {
                report.push(case.evaluate(subject.judge_tool(&case.call, &case.context)));
            }
        }
    }
    report
}

/// Reads a fixture from `source`: JSON text if it starts with `{`, else a file path (relative
/// paths are relative to the crate directory under `cargo test`).
///
/// # Panics
/// If the file cannot be read or is not a valid fixture.
pub fn load(source: &str) -> Fixture {
    let text = if source.trim_start().starts_with('{') {
        source.to_string()
    } else {
        std::fs::read_to_string(source).unwrap_or_else(|e| panic!("cannot read fixture {source}: {e}"))
    };
    Fixture::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", label(source)))
}

fn label(source: &str) -> &str {
    if source.trim_start().starts_with('{') {
        "inline fixture"
    } else {
        source
    }
}

/// A fixture holding the cases a plugin bundles, to be run under `config` (JSON text).
///
/// # Panics
/// If `config` is neither empty nor JSON.
pub fn bundled(config: &str, cases: Cases) -> Fixture {
    let config = (!config.trim().is_empty())
        .then(|| serde_json::from_str(config).unwrap_or_else(|e| panic!("the config is not JSON: {e}")));
    Fixture { config, cases }
}

/// Runs a sanitizer's fixture (a path or JSON text, see [`load`]).
pub fn run_sanitizer<P: Sanitizer>(source: &str) -> Report {
    run(label(source), &load(source), &mut NativeSanitizer::<P>::default())
}

/// Runs a validator's fixture (a path or JSON text, see [`load`]).
pub fn run_validator<P: Validator>(source: &str) -> Report {
    run(label(source), &load(source), &mut NativeValidator::<P>::default())
}

/// Runs a formatter's fixture (a path or JSON text, see [`load`]).
pub fn run_formatter<P: Formatter>(source: &str) -> Report {
    run(label(source), &load(source), &mut NativeFormatter::<P>::default())
}

/// Runs a discovery's fixture (a path or JSON text, see [`load`]).
pub fn run_discovery<P: Discovery>(source: &str) -> Report {
    run(label(source), &load(source), &mut NativeDiscovery::<P>::default())
}

/// Runs a tool policy's fixture (a path or JSON text, see [`load`]).
pub fn run_tool_policy<P: ToolPolicy>(source: &str) -> Report {
    run(label(source), &load(source), &mut NativeToolPolicy::<P>::default())
}

/// Runs a sanitizer's bundled self-test under `config` (JSON text; empty for the default).
pub fn self_test_sanitizer<P: Sanitizer>(config: &str) -> Report {
    let cases = Cases::Sanitizer(
        P::self_test()
            .into_iter()
            .map(fixtures::sanitizer::Case::from)
            .collect(),
    );
    run(
        "bundled self-test",
        &bundled(config, cases),
        &mut NativeSanitizer::<P>::default(),
    )
}

/// Runs a validator's bundled self-test under `config` (JSON text; empty for the default).
pub fn self_test_validator<P: Validator>(config: &str) -> Report {
    let cases = Cases::Validator(
        P::self_test()
            .into_iter()
            .map(fixtures::validator::Case::from)
            .collect(),
    );
    run(
        "bundled self-test",
        &bundled(config, cases),
        &mut NativeValidator::<P>::default(),
    )
}

/// Runs a formatter's bundled self-test under `config` (JSON text; empty for the default).
pub fn self_test_formatter<P: Formatter>(config: &str) -> Report {
    let cases = Cases::Formatter(
        P::self_test()
            .into_iter()
            .map(fixtures::formatter::Case::from)
            .collect(),
    );
    run(
        "bundled self-test",
        &bundled(config, cases),
        &mut NativeFormatter::<P>::default(),
    )
}

/// Runs a discovery's bundled self-test under `config` (JSON text; empty for the default).
pub fn self_test_discovery<P: Discovery>(config: &str) -> Report {
    let cases = Cases::Discovery(
        P::self_test()
            .into_iter()
            .map(fixtures::discovery::Case::from)
            .collect(),
    );
    run(
        "bundled self-test",
        &bundled(config, cases),
        &mut NativeDiscovery::<P>::default(),
    )
}

/// Runs a tool policy's bundled self-test under `config` (JSON text; empty for the default).
pub fn self_test_tool_policy<P: ToolPolicy>(config: &str) -> Report {
    let cases = Cases::Tool(P::self_test().into_iter().map(fixtures::tool::Case::from).collect());
    run(
        "bundled self-test",
        &bundled(config, cases),
        &mut NativeToolPolicy::<P>::default(),
    )
}
