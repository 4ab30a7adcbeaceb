//! Judging one case given the outcome a subject produced, whoever produced it. An `Err` outcome
//! means the call itself failed (a trap, a missing export), which fails any case.

use super::CaseReport;
use crate::fixtures::{discovery, formatter, sanitizer, tool, validator};
use crate::{FieldError, Project, Rendered, ToolVerdict, Verdict};
use std::collections::BTreeSet;

fn call_failed(name: &str, expected: String, error: String) -> CaseReport {
    CaseReport::failed(name, expected, format!("call failed: {error}"))
}

/// What a case expects, with the text its reason must contain.
fn with_reason(expected: String, reason_contains: &Option<String>) -> String {
    match reason_contains {
        Some(text) => format!("{expected} (reason contains {text:?})"),
        None => expected,
    }
}

/// Whether a denial's reason holds the text a case asks for (any reason, if it asks for none).
fn reason_holds(reason_contains: &Option<String>, reason: Option<&str>) -> bool {
    match (reason_contains, reason) {
        (None, _) => true,
        (Some(text), Some(reason)) => reason.contains(text.as_str()),
        (Some(_), None) => false,
    }
}

impl sanitizer::Case {
    /// Judges the verdict the plugin gave this case's command.
    pub fn evaluate(&self, actual: Result<Verdict, String>) -> CaseReport {
        let expected = with_reason(self.expect.to_string(), &self.reason_contains);
        let verdict = match actual {
            Ok(verdict) => verdict,
            Err(error) => return call_failed(&self.name, expected, error),
        };
        let reason_ok = reason_holds(&self.reason_contains, verdict.reason());
        CaseReport::new(
            &self.name,
            self.expect.matches(&verdict) && reason_ok,
            expected,
            verdict.to_string(),
        )
    }
}

impl validator::Case {
    /// Judges the field errors the plugin reported for this case's request.
    pub fn evaluate(&self, actual: Result<Vec<FieldError>, String>) -> CaseReport {
        let expected = match (self.valid, self.fields.is_empty()) {
            (true, _) => "valid".to_string(),
            (false, true) => "invalid".to_string(),
            (false, false) => format!("invalid (fields {})", self.fields.join(", ")),
        };
        let errors = match actual {
            Ok(errors) => errors,
            Err(error) => return call_failed(&self.name, expected, error),
        };
        let passed = if self.valid {
            errors.is_empty()
        } else {
            !errors.is_empty() && self.fields.iter().all(|field| errors.iter().any(|e| &e.field == field))
        };
        let actual = if errors.is_empty() {
            "valid".to_string()
        } else {
            let errors: Vec<String> = errors.iter().map(FieldError::to_string).collect();
            format!("invalid: {}", errors.join("; "))
        };
        CaseReport::new(&self.name, passed, expected, actual)
    }
}

impl formatter::Case {
    /// Judges the rendering the plugin produced for this case's event.
    pub fn evaluate(&self, actual: Result<Result<Rendered, String>, String>) -> CaseReport {
        let mut expected = self.content_type.clone();
        if !self.body_contains.is_empty() {
            expected.push_str(&format!(" containing {:?}", self.body_contains));
        }
        let rendered = match actual {
            Ok(Ok(rendered)) => rendered,
            Ok(Err(error)) => return CaseReport::failed(&self.name, expected, format!("error: {error}")),
            Err(error) => return call_failed(&self.name, expected, error),
        };
        let body = String::from_utf8_lossy(&rendered.body);
        let passed = rendered.content_type == self.content_type
            && self.body_contains.iter().all(|text| body.contains(text.as_str()));
        CaseReport::new(
            &self.name,
            passed,
            expected,
            format!("{}: {body}", rendered.content_type),
        )
    }
}

impl discovery::Case {
    /// Judges the projects the plugin discovered in this case's inventory.
    pub fn evaluate(&self, actual: Result<Result<Vec<Project>, String>, String>) -> CaseReport {
        let wanted: BTreeSet<&str> = self.projects.iter().map(String::as_str).collect();
        let expected = format!("{wanted:?}");
        let projects = match actual {
            Ok(Ok(projects)) => projects,
            Ok(Err(error)) => return CaseReport::failed(&self.name, expected, format!("error: {error}")),
            Err(error) => return call_failed(&self.name, expected, error),
        };
        let names: Vec<&str> = projects.iter().map(|project| project.name.as_str()).collect();
        let found: BTreeSet<&str> = names.iter().copied().collect();
        let passed = found == wanted && found.len() == names.len();
        CaseReport::new(&self.name, passed, expected, format!("{names:?}"))
    }
}

impl tool::Case {
    /// Judges the verdict the plugin gave this case's tool call.
    pub fn evaluate(&self, actual: Result<ToolVerdict, String>) -> CaseReport {
        let decision = if self.allow { "allow" } else { "deny" };
        let expected = with_reason(decision.to_string(), &self.reason_contains);
        let verdict = match actual {
            Ok(verdict) => verdict,
            Err(error) => return call_failed(&self.name, expected, error),
        };
        let passed = verdict.is_allow() == self.allow && reason_holds(&self.reason_contains, verdict.reason());
        CaseReport::new(&self.name, passed, expected, verdict.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Command, CommandContext, ExpectedVerdict, WebhookTarget};

    fn deny_case(reason_contains: Option<&str>) -> sanitizer::Case {
        sanitizer::Case {
            name: "rm root".into(),
            command: Command::shell("rm -rf /"),
            context: CommandContext::new("demo", "/w"),
            expect: ExpectedVerdict::Deny,
            reason_contains: reason_contains.map(Into::into),
        }
    }

    #[test]
    fn a_deny_case_passes_on_any_denial_and_fails_on_allow() {
        assert!(deny_case(None).evaluate(Ok(Verdict::deny("no"))).passed);
        let report = deny_case(None).evaluate(Ok(Verdict::Allow));
        assert!(!report.passed);
        assert_eq!((report.expected.as_str(), report.actual.as_str()), ("deny", "allow"));
    }

    #[test]
    fn a_tool_case_checks_the_decision_and_the_reason_text() {
        let case = tool::Case {
            name: "env".into(),
            call: crate::ToolCall {
                tool_name: "Read".into(),
                input: r#"{"file_path":".env"}"#.into(),
            },
            context: crate::ToolContext::new("demo", "/w", "cmd_1"),
            allow: false,
            reason_contains: Some("secret".into()),
        };
        assert!(case.evaluate(Ok(ToolVerdict::deny("a secret file"))).passed);
        assert!(!case.evaluate(Ok(ToolVerdict::deny("no"))).passed);
        let report = case.evaluate(Ok(ToolVerdict::Allow));
        assert_eq!((report.passed, report.actual.as_str()), (false, "allow"));
        assert!(!case.evaluate(Err("trap".into())).passed);
    }

    #[test]
    fn a_deny_case_checks_the_reason_text() {
        let case = deny_case(Some("`rm`"));
        assert!(case.evaluate(Ok(Verdict::deny("program `rm` is refused"))).passed);
        assert!(!case.evaluate(Ok(Verdict::deny("something else"))).passed);
    }

    #[test]
    fn a_failed_call_fails_the_case_with_its_error() {
        let report = deny_case(None).evaluate(Err("wasm trap: unreachable".into()));
        assert!(!report.passed);
        assert_eq!(report.actual, "call failed: wasm trap: unreachable");
    }

    #[test]
    fn an_invalid_request_must_report_every_named_field() {
        let case = validator::Case {
            name: "bad key".into(),
            resource: "key".into(),
            request: "{}".into(),
            valid: false,
            fields: vec!["name".into(), "scopes[0]".into()],
        };
        assert!(!case.evaluate(Ok(vec![FieldError::new("name", "empty")])).passed);
        let both = vec![
            FieldError::new("name", "empty"),
            FieldError::new("scopes[0]", "unknown"),
        ];
        assert!(case.evaluate(Ok(both)).passed);
        assert!(!case.evaluate(Ok(vec![])).passed);
    }

    #[test]
    fn a_rendering_must_have_the_content_type_and_the_text() {
        let case = formatter::Case {
            name: "slack".into(),
            event_type: "command.failed".into(),
            event: "{}".into(),
            target: WebhookTarget::new("sub", "https://x"),
            content_type: "application/json".into(),
            body_contains: vec!["failed".into()],
        };
        assert!(
            case.evaluate(Ok(Ok(Rendered::json(&serde_json::json!({"text": "failed"})))))
                .passed
        );
        assert!(
            !case
                .evaluate(Ok(Ok(Rendered::json(&serde_json::json!({"text": "ok"})))))
                .passed
        );
        assert_eq!(case.evaluate(Ok(Err("boom".into()))).actual, "error: boom");
    }

    #[test]
    fn discovery_must_return_exactly_the_named_projects_once() {
        let case = discovery::Case {
            name: "dirs".into(),
            inventory: vec![],
            projects: vec!["a".into(), "b".into()],
        };
        let project = |name: &str| Project::new(name, "/w");
        assert!(case.evaluate(Ok(Ok(vec![project("b"), project("a")]))).passed);
        assert!(!case.evaluate(Ok(Ok(vec![project("a")]))).passed);
        assert!(
            !case
                .evaluate(Ok(Ok(vec![project("a"), project("b"), project("a")])))
                .passed
        );
    }
}
