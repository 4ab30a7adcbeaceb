//! Runs a new version's bundled self-test cases through its real entry points before it may go
//! live. Cases are invariants the author promises under any configuration; one failure keeps
//! the version out.

use std::collections::BTreeSet;

use super::Version;
use crate::plugins::bindings::{tools, types};

fn verdict_name(v: &types::Verdict) -> &'static str {
    match v {
        types::Verdict::Allow => "allow",
        types::Verdict::Deny(_) => "deny",
        types::Verdict::Rewrite(_) => "rewrite",
    }
}

fn failure(case: &str, expected: &str, actual: impl std::fmt::Display) -> String {
    format!("self-test `{case}` failed: expected {expected}, got {actual}")
}

/// Sanitizer cases: each verdict must match.
pub async fn sanitizer(version: &Version, cases: Vec<types::SanitizerCase>) -> Result<(), String> {
    for case in cases {
        let verdict = version
            .sanitize(&case.command, &case.context)
            .await
            .map_err(|e| failure(&case.name, "a verdict", e))?;
        let matches = match (&case.expect, &verdict) {
            (types::ExpectedVerdict::Allow, types::Verdict::Allow) => true,
            (types::ExpectedVerdict::Deny, types::Verdict::Deny(_)) => true,
            (types::ExpectedVerdict::Rewrite(want), types::Verdict::Rewrite(got)) => want == got,
            _ => false,
        };
        if !matches {
            let expected = match case.expect {
                types::ExpectedVerdict::Allow => "allow",
                types::ExpectedVerdict::Deny => "deny",
                types::ExpectedVerdict::Rewrite(_) => "a rewrite",
            };
            return Err(failure(&case.name, expected, verdict_name(&verdict)));
        }
    }
    Ok(())
}

/// Validator cases: valid requests get no field errors, invalid ones some.
pub async fn validator(version: &Version, cases: Vec<types::ValidatorCase>) -> Result<(), String> {
    for case in cases {
        let errors = version
            .validate(&case.resource, &case.request)
            .await
            .map_err(|e| failure(&case.name, "field errors", e))?;
        if errors.is_empty() != case.valid {
            let (expected, actual) = match case.valid {
                true => ("a valid request", format!("{} field errors", errors.len())),
                false => ("field errors", "none".to_owned()),
            };
            return Err(failure(&case.name, expected, actual));
        }
    }
    Ok(())
}

/// Formatter cases: the event renders, with the expected content type.
pub async fn formatter(version: &Version, cases: Vec<types::FormatterCase>) -> Result<(), String> {
    for case in cases {
        let rendered = version
            .format(&case.event_type, &case.event, &case.target)
            .await
            .map_err(|e| failure(&case.name, "a rendering", e))?
            .map_err(|e| failure(&case.name, "a rendering", format!("error `{e}`")))?;
        if rendered.content_type != case.content_type {
            return Err(failure(&case.name, &case.content_type, &rendered.content_type));
        }
    }
    Ok(())
}

/// Discovery cases: exactly the expected project names.
pub async fn discovery(version: &Version, cases: Vec<types::DiscoveryCase>) -> Result<(), String> {
    for case in cases {
        let projects = version
            .discover(&case.inventory)
            .await
            .map_err(|e| failure(&case.name, "projects", e))?
            .map_err(|e| failure(&case.name, "projects", format!("error `{e}`")))?;
        let got: BTreeSet<_> = projects.into_iter().map(|p| p.name).collect();
        let want: BTreeSet<_> = case.projects.into_iter().collect();
        if got != want {
            return Err(failure(&case.name, &format!("{want:?}"), format!("{got:?}")));
        }
    }
    Ok(())
}

/// Tool-policy cases: each call must be allowed or denied as the case says.
pub async fn tool(version: &Version, cases: Vec<tools::ToolCase>) -> Result<(), String> {
    for case in cases {
        let verdict = version
            .judge_tool(&case.call, &case.context)
            .await
            .map_err(|e| failure(&case.name, "a verdict", e))?;
        let allowed = matches!(verdict, tools::ToolVerdict::Allow);
        if allowed != case.allow {
            let name = |allow| if allow { "allow" } else { "deny" };
            return Err(failure(&case.name, name(case.allow), name(allowed)));
        }
    }
    Ok(())
}
