//! The calls of each world through a slot: the serving version answers, and a shadow candidate,
//! if there is one, judges a sample of the same inputs off the request path.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::Slot;
use crate::plugins::rollout::diff::Outcome;
use crate::plugins::rollout::redact;
use crate::plugins::runtime::CallError;
use crate::plugins::version::Version;
use crate::plugins::{
    Answer, CommandSanitizer, FieldError, PluginError, RequestValidator, SanitizeInput, ToolCallVerdict, ToolInput,
    ToolPolicy, Verdict, convert,
};

#[async_trait]
impl CommandSanitizer for Slot {
    fn name(&self) -> &str {
        &self.name
    }

    fn applies_to(&self, project: &str) -> bool {
        self.applies(Some(project))
    }

    async fn sanitize(&self, input: &SanitizeInput) -> Result<Answer<Verdict>, PluginError> {
        let version = self.serving()?;
        let started = Instant::now();
        let result = sanitize(&version, input).await;
        if let Some(shadow) = self.shadow() {
            let input = Arc::new(input.clone());
            let asked = input.command.clone();
            let outcome = move |v: &Verdict| verdict_outcome(v, &asked);
            let served = Self::served(started, &result, &outcome);
            let (call_input, shown) = (input.clone(), input);
            let call = move |candidate: Arc<Version>| async move {
                let verdict = sanitize(&candidate, &call_input).await?;
                Ok(outcome(&verdict))
            };
            let show = move || {
                serde_json::json!({ "project": shown.project, "key_id": shown.key_id,
                    "command": redact::command(&shown.command) })
            };
            self.judge_in_shadow(&shadow, served, call, show);
        }
        self.finish(&version, started, result, |v| match v {
            Verdict::Allow => "allow",
            Verdict::Deny(_) => "deny",
            Verdict::Rewrite(_) => "rewrite",
        })
    }
}

#[async_trait]
impl RequestValidator for Slot {
    fn name(&self) -> &str {
        &self.name
    }

    fn applies_to(&self, project: Option<&str>) -> bool {
        self.applies(project)
    }

    async fn validate(
        &self,
        resource: &str,
        request: &serde_json::Value,
    ) -> Result<Answer<Vec<FieldError>>, PluginError> {
        let version = self.serving()?;
        let started = Instant::now();
        let request = Arc::new((resource.to_owned(), request.to_string()));
        let result = validate(&version, &request).await;
        if let Some(shadow) = self.shadow() {
            let served = Self::served(started, &result, |e: &Vec<FieldError>| errors_outcome(e));
            let (call_request, shown) = (request.clone(), request);
            let call = move |candidate: Arc<Version>| async move {
                Ok(errors_outcome(&validate(&candidate, &call_request).await?))
            };
            let show = move || {
                let body = serde_json::from_str(&shown.1).unwrap_or_default();
                serde_json::json!({ "resource": shown.0, "request": redact::json(&body) })
            };
            self.judge_in_shadow(&shadow, served, call, show);
        }
        self.finish(&version, started, result, |errors| match errors.is_empty() {
            true => "valid",
            false => "invalid",
        })
    }
}

#[async_trait]
impl ToolPolicy for Slot {
    fn name(&self) -> &str {
        &self.name
    }

    fn applies_to(&self, project: &str) -> bool {
        self.applies(Some(project))
    }

    async fn judge(&self, input: &ToolInput) -> Result<Answer<ToolCallVerdict>, PluginError> {
        let version = self.serving()?;
        let started = Instant::now();
        let result = judge(&version, input).await;
        if let Some(shadow) = self.shadow() {
            let served = Self::served(started, &result, tool_outcome);
            let input = Arc::new(input.clone());
            let (call_input, shown) = (input.clone(), input);
            let call =
                move |candidate: Arc<Version>| async move { Ok(tool_outcome(&judge(&candidate, &call_input).await?)) };
            let show = move || {
                serde_json::json!({ "project": shown.project, "command_id": shown.command_id,
                    "tool_name": shown.tool_name, "input": redact::json(&shown.input) })
            };
            self.judge_in_shadow(&shadow, served, call, show);
        }
        self.finish(&version, started, result, |v| match v {
            ToolCallVerdict::Allow => "allow",
            ToolCallVerdict::Deny(_) => "deny",
        })
    }
}

async fn sanitize(version: &Version, input: &SanitizeInput) -> Result<Verdict, CallError> {
    let verdict = version
        .sanitize(&convert::command(&input.command), &convert::context(input))
        .await?;
    convert::verdict(verdict).map_err(CallError::BadOutput)
}

async fn validate(version: &Version, (resource, request): &(String, String)) -> Result<Vec<FieldError>, CallError> {
    let errors = version.validate(resource, request).await?;
    convert::field_errors(errors).map_err(CallError::BadOutput)
}

async fn judge(version: &Version, input: &ToolInput) -> Result<ToolCallVerdict, CallError> {
    let (call, context) = convert::tool_call(input);
    let verdict = version.judge_tool(&call, &context).await?;
    convert::tool_verdict(verdict).map_err(CallError::BadOutput)
}

/// A sanitizer's verdict as a diff compares it: a rewrite to the same command is an allow.
fn verdict_outcome(verdict: &Verdict, asked: &crate::plugins::PluginCommand) -> Outcome {
    match verdict {
        Verdict::Allow => Outcome::Allow,
        Verdict::Rewrite(command) if command == asked => Outcome::Allow,
        Verdict::Rewrite(command) => Outcome::Rewrite {
            command: command.clone(),
        },
        Verdict::Deny(reason) => Outcome::Deny { reason: reason.clone() },
    }
}

fn errors_outcome(errors: &[FieldError]) -> Outcome {
    match errors.is_empty() {
        true => Outcome::Allow,
        false => Outcome::Invalid {
            errors: errors.to_vec(),
        },
    }
}

fn tool_outcome(verdict: &ToolCallVerdict) -> Outcome {
    match verdict {
        ToolCallVerdict::Allow => Outcome::Allow,
        ToolCallVerdict::Deny(reason) => Outcome::Deny { reason: reason.clone() },
    }
}

impl Slot {
    /// Renders a webhook event; the rendering is checked (a content type that is a valid header
    /// value, at most `max_body` bytes), and any failure is an error, never a body.
    pub async fn format(
        &self,
        event_type: &str,
        event: &str,
        target: &crate::plugins::bindings::types::WebhookTarget,
        max_body: usize,
    ) -> Result<crate::plugins::Rendered, PluginError> {
        let version = self.serving()?;
        let started = Instant::now();
        let result = match version.format(event_type, event, target).await {
            Ok(Ok(rendered)) => convert::rendered(rendered, max_body).map_err(CallError::BadOutput),
            Ok(Err(message)) => Err(CallError::BadOutput(format!("reported an error: {message}"))),
            Err(e) => Err(e),
        };
        self.finish(&version, started, result, |_| "ok").map(|a| a.value)
    }

    /// The projects of an inventory, checked so that discovery never widens visibility.
    pub async fn discover(
        &self,
        inventory: &[crate::plugins::InventoryItem],
    ) -> Result<Vec<crate::plugins::DiscoveredProject>, PluginError> {
        let version = self.serving()?;
        let started = Instant::now();
        let result = match version.discover(&convert::inventory(inventory)).await {
            Ok(Ok(found)) => convert::projects(found, inventory).map_err(CallError::BadOutput),
            Ok(Err(message)) => Err(CallError::BadOutput(format!("reported an error: {message}"))),
            Err(e) => Err(e),
        };
        self.finish(&version, started, result, |_| "ok").map(|a| a.value)
    }
}
