//! The policy chains and their contract: validators, sanitizers and tool policies run in order, a failing
//! plugin fails closed, a rewrite is checked by the host and then judged by the whole chain again,
//! and every decision is recorded with the version that took it.

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use serde::Serialize;
use tracing::Instrument;

use super::{
    Answer, CommandSanitizer, FailureKind, FieldError, PluginCommand, PluginError, RequestValidator, SanitizeInput,
    ToolCallVerdict, ToolInput, ToolPolicy, Verdict,
};

/// Rewrites one command may go through before the chain gives up (fails closed).
const MAX_REWRITES: usize = 4;

/// Runs one plugin call in a trace span of its own, naming the plugin, the version that answered
/// and its verdict (`verdict_of` the answer, `failed` or `overloaded` for an error).
async fn traced_call<T>(
    plugin: &str,
    call: impl std::future::Future<Output = Result<Answer<T>, PluginError>>,
    verdict_of: impl Fn(&T) -> &'static str,
) -> Result<Answer<T>, PluginError> {
    let span = tracing::info_span!(
        target: crate::telemetry::traces::TARGET,
        "plugin call",
        otel.name = format!("plugin {plugin}"),
        rdev.plugin.name = plugin,
        rdev.plugin.digest = tracing::field::Empty,
        rdev.plugin.verdict = tracing::field::Empty,
    );
    let answer = call.instrument(span.clone()).await;
    match &answer {
        Ok(Answer { value, digest }) => {
            span.record("rdev.plugin.digest", digest.as_str());
            span.record("rdev.plugin.verdict", verdict_of(value));
        }
        Err(e) => {
            span.record("rdev.plugin.digest", e.digest.as_deref());
            span.record("rdev.plugin.verdict", failure_verdict(e));
        }
    }
    answer
}

/// The plugins of each chain, in order.
#[derive(Clone, Default)]
pub struct Chains {
    /// Command sanitizers.
    pub sanitizers: Vec<Arc<dyn CommandSanitizer>>,
    /// Request validators.
    pub validators: Vec<Arc<dyn RequestValidator>>,
    /// Tool policies of `claude` runs.
    pub tool_policies: Vec<Arc<dyn ToolPolicy>>,
}

/// The active policy chains, replaced as a whole when the plugin set changes.
#[derive(Clone, Default)]
pub struct Policies {
    chains: Arc<ArcSwap<Chains>>,
}

/// A plugin decision, for the command's audit trail.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Decision {
    /// Plugin name.
    pub plugin: String,
    /// Digest of the plugin version that decided (absent when none could run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// `allow`, `deny`, `rewrite`, `valid`, `invalid`, `failed`, or `overloaded` (the call never
    /// ran: no call slot was free in time).
    pub verdict: &'static str,
    /// Reason given with a denial or failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Time the call took, in microseconds.
    pub duration_us: u64,
    /// The command a rewrite made (kept out of audit rows: its env values may be secrets).
    #[serde(skip)]
    pub rewrite: Option<PluginCommand>,
}

impl Decision {
    fn new(
        plugin: &str,
        digest: Option<String>,
        verdict: &'static str,
        reason: Option<String>,
        started: Instant,
    ) -> Self {
        Self {
            plugin: plugin.to_owned(),
            digest,
            verdict,
            reason,
            duration_us: started.elapsed().as_micros() as u64,
            rewrite: None,
        }
    }

    fn failed(e: &PluginError, started: Instant) -> Self {
        Self::new(
            &e.plugin,
            e.digest.clone(),
            failure_verdict(e),
            Some(e.message.clone()),
            started,
        )
    }
}

/// The verdict recorded for a call that failed.
fn failure_verdict(e: &PluginError) -> &'static str {
    match e.kind {
        FailureKind::Overloaded => "overloaded",
        FailureKind::Failed | FailureKind::Unavailable => "failed",
    }
}

/// Why a policy refused a request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Refusal {
    /// A sanitizer denied the command.
    #[error("denied by `{plugin}`: {reason}")]
    Denied {
        /// Plugin name.
        plugin: String,
        /// Its reason.
        reason: String,
    },
    /// A validator listed field errors.
    #[error("request rejected by `{plugin}`")]
    Invalid {
        /// Plugin name.
        plugin: String,
        /// The fields.
        errors: Vec<FieldError>,
    },
    /// A plugin failed; the request is refused (fail closed).
    #[error(transparent)]
    Failed(PluginError),
    /// A plugin the request needs has no working version; the request is refused.
    #[error(transparent)]
    Unavailable(PluginError),
    /// The plugin runtime had no free call slot in time; the request may be retried.
    #[error(transparent)]
    Overloaded(PluginError),
}

impl From<PluginError> for Refusal {
    fn from(e: PluginError) -> Self {
        match e.kind {
            FailureKind::Failed => Self::Failed(e),
            FailureKind::Unavailable => Self::Unavailable(e),
            FailureKind::Overloaded => Self::Overloaded(e),
        }
    }
}

/// A refusal and the decisions taken up to it.
pub type Refused = (Refusal, Vec<Decision>);

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let chains = self.chains.load();
        f.debug_struct("Policies")
            .field("sanitizers", &chains.sanitizers.len())
            .field("validators", &chains.validators.len())
            .field("tool_policies", &chains.tool_policies.len())
            .finish()
    }
}

impl Policies {
    /// Policies with these chains.
    pub fn new(chains: Chains) -> Self {
        Self {
            chains: Arc::new(ArcSwap::from_pointee(chains)),
        }
    }

    /// Replaces the chains; calls in flight finish on the chains they started with.
    pub fn publish(&self, chains: Chains) {
        self.chains.store(Arc::new(chains));
    }

    /// Runs the validators over a request; the first one with errors refuses it.
    pub async fn validate(
        &self,
        resource: &str,
        request: &serde_json::Value,
        project: Option<&str>,
    ) -> Result<(), Refusal> {
        self.validate_recorded(resource, request, project)
            .await
            .map(drop)
            .map_err(|(r, _)| r)
    }

    /// Like [`Policies::validate`], also returning the decisions taken.
    pub async fn validate_recorded(
        &self,
        resource: &str,
        request: &serde_json::Value,
        project: Option<&str>,
    ) -> Result<Vec<Decision>, Refused> {
        let chains = self.chains.load_full();
        let mut decisions = Vec::new();
        for v in chains.validators.iter().filter(|v| v.applies_to(project)) {
            let started = Instant::now();
            let verdict_of = |errors: &Vec<FieldError>| if errors.is_empty() { "valid" } else { "invalid" };
            let call = traced_call(v.name(), v.validate(resource, request), verdict_of);
            let Answer { value: errors, digest } = match call.await {
                Ok(answer) => answer,
                Err(e) => {
                    decisions.push(Decision::failed(&e, started));
                    return Err((e.into(), decisions));
                }
            };
            let verdict = if errors.is_empty() { "valid" } else { "invalid" };
            decisions.push(Decision::new(v.name(), Some(digest), verdict, None, started));
            if !errors.is_empty() {
                let plugin = v.name().to_owned();
                return Err((Refusal::Invalid { plugin, errors }, decisions));
            }
        }
        Ok(decisions)
    }

    /// Runs the tool policies over a tool call of a `claude` run; the first denial refuses it,
    /// and a failing plugin refuses it too (fail closed).
    pub async fn judge_tool(&self, input: &ToolInput) -> Result<Vec<Decision>, Refused> {
        let chains = self.chains.load_full();
        let mut decisions = Vec::new();
        for p in chains.tool_policies.iter().filter(|p| p.applies_to(&input.project)) {
            let started = Instant::now();
            let verdict_of = |v: &ToolCallVerdict| match v {
                ToolCallVerdict::Allow => "allow",
                ToolCallVerdict::Deny(_) => "deny",
            };
            let Answer { value, digest } = match traced_call(p.name(), p.judge(input), verdict_of).await {
                Ok(answer) => answer,
                Err(e) => {
                    decisions.push(Decision::failed(&e, started));
                    return Err((e.into(), decisions));
                }
            };
            match value {
                ToolCallVerdict::Allow => decisions.push(Decision::new(p.name(), Some(digest), "allow", None, started)),
                ToolCallVerdict::Deny(reason) => {
                    let decision = Decision::new(p.name(), Some(digest), "deny", Some(reason.clone()), started);
                    decisions.push(decision);
                    let plugin = p.name().to_owned();
                    return Err((Refusal::Denied { plugin, reason }, decisions));
                }
            }
        }
        Ok(decisions)
    }

    /// Runs the sanitizer chain. A rewrite is checked by `recheck`, then the whole chain judges
    /// the new command from the start, so no plugin can rewrite past an earlier one. Returns the
    /// final command and every decision taken.
    pub async fn sanitize(
        &self,
        mut input: SanitizeInput,
        recheck: impl Fn(&PluginCommand) -> Result<(), String>,
    ) -> Result<(PluginCommand, Vec<Decision>), Refused> {
        let chains = self.chains.load_full();
        let mut decisions = Vec::new();
        let mut rewrites = 0;
        'chain: loop {
            for s in chains.sanitizers.iter().filter(|s| s.applies_to(&input.project)) {
                let started = Instant::now();
                let call = traced_call(s.name(), s.sanitize(&input), |verdict| match verdict {
                    Verdict::Allow => "allow",
                    Verdict::Deny(_) => "deny",
                    Verdict::Rewrite(spec) if *spec == input.command => "allow",
                    Verdict::Rewrite(_) => "rewrite",
                });
                let Answer { value: verdict, digest } = match call.await {
                    Ok(answer) => answer,
                    Err(e) => {
                        decisions.push(Decision::failed(&e, started));
                        return Err((e.into(), decisions));
                    }
                };
                let failed = |message: String| PluginError {
                    plugin: s.name().to_owned(),
                    digest: Some(digest.clone()),
                    message,
                    kind: FailureKind::Failed,
                };
                match verdict {
                    Verdict::Allow => decisions.push(Decision::new(s.name(), Some(digest), "allow", None, started)),
                    Verdict::Deny(reason) => {
                        let plugin = s.name().to_owned();
                        decisions.push(Decision::new(
                            s.name(),
                            Some(digest),
                            "deny",
                            Some(reason.clone()),
                            started,
                        ));
                        return Err((Refusal::Denied { plugin, reason }, decisions));
                    }
                    Verdict::Rewrite(spec) if spec == input.command => {
                        decisions.push(Decision::new(s.name(), Some(digest), "allow", None, started));
                    }
                    Verdict::Rewrite(spec) => {
                        let mut decision = Decision::new(s.name(), Some(digest.clone()), "rewrite", None, started);
                        decision.rewrite = Some(spec.clone());
                        decisions.push(decision);
                        rewrites += 1;
                        let problem = match recheck(&spec) {
                            Err(problem) => Some(format!("returned a rewrite that is not a valid command: {problem}")),
                            Ok(()) if rewrites > MAX_REWRITES => {
                                Some(format!("rewrote the command more than {MAX_REWRITES} times"))
                            }
                            Ok(()) => None,
                        };
                        if let Some(message) = problem {
                            return Err((failed(message).into(), decisions));
                        }
                        input.command = spec;
                        continue 'chain;
                    }
                }
            }
            return Ok((input.command, decisions));
        }
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;

    use super::*;

    fn shell(script: &str) -> PluginCommand {
        PluginCommand {
            kind: "shell".into(),
            script: Some(script.into()),
            args: None,
            prompt: None,
            env: std::collections::BTreeMap::new(),
        }
    }

    struct Fixed(&'static str, Result<Verdict, PluginError>);

    #[async_trait]
    impl CommandSanitizer for Fixed {
        fn name(&self) -> &str {
            self.0
        }
        async fn sanitize(&self, input: &SanitizeInput) -> Result<Answer<Verdict>, PluginError> {
            let verdict = match &self.1 {
                // A rewriter that appends to the script each time, as a smuggling plugin would.
                Ok(Verdict::Rewrite(_)) if self.0 == "appender" => {
                    let script = input.command.script.clone().unwrap_or_default();
                    Ok(Verdict::Rewrite(shell(&format!("{script};x"))))
                }
                other => other.clone(),
            }?;
            Ok(Answer {
                value: verdict,
                digest: format!("digest-of-{}", self.0),
            })
        }
    }

    fn input() -> SanitizeInput {
        SanitizeInput {
            project: "demo".into(),
            command: shell("ls"),
            key_id: "key_1".into(),
            scopes: vec![],
            workdir: "/w/demo".into(),
        }
    }

    fn chain(items: Vec<Fixed>) -> Policies {
        let sanitizers = items
            .into_iter()
            .map(|f| Arc::new(f) as Arc<dyn CommandSanitizer>)
            .collect();
        Policies::new(Chains {
            sanitizers,
            ..Chains::default()
        })
    }

    fn failure(plugin: &str, kind: FailureKind) -> PluginError {
        PluginError {
            plugin: plugin.into(),
            digest: None,
            message: "trapped".into(),
            kind,
        }
    }

    #[tokio::test]
    async fn empty_chain_passes_commands_through() {
        let (spec, decisions) = Policies::default().sanitize(input(), |_| Ok(())).await.unwrap();
        assert_eq!(spec, shell("ls"));
        assert!(decisions.is_empty());
    }

    #[tokio::test]
    async fn a_denial_stops_the_chain_and_names_the_plugin_and_version() {
        let policies = chain(vec![
            Fixed("first", Ok(Verdict::Allow)),
            Fixed("second", Ok(Verdict::Deny("no".into()))),
            Fixed("third", Ok(Verdict::Allow)),
        ]);
        let (refusal, decisions) = policies.sanitize(input(), |_| Ok(())).await.unwrap_err();
        assert!(matches!(refusal, Refusal::Denied { ref plugin, .. } if plugin == "second"));
        assert_eq!(decisions.len(), 2);
        assert_eq!(decisions[1].digest.as_deref(), Some("digest-of-second"));
        assert_eq!(decisions[1].reason.as_deref(), Some("no"));
    }

    #[tokio::test]
    async fn a_failing_plugin_fails_closed_and_a_missing_one_is_unavailable() {
        let policies = chain(vec![Fixed("broken", Err(failure("broken", FailureKind::Failed)))]);
        let (refusal, decisions) = policies.sanitize(input(), |_| Ok(())).await.unwrap_err();
        assert!(matches!(refusal, Refusal::Failed(_)));
        assert_eq!(decisions[0].verdict, "failed");
        let policies = chain(vec![Fixed("absent", Err(failure("absent", FailureKind::Unavailable)))]);
        let (refusal, _) = policies.sanitize(input(), |_| Ok(())).await.unwrap_err();
        assert!(matches!(refusal, Refusal::Unavailable(_)));
    }

    #[tokio::test]
    async fn a_call_that_found_no_slot_is_overload_not_a_policy_failure() {
        let policies = chain(vec![Fixed("busy", Err(failure("busy", FailureKind::Overloaded)))]);
        let (refusal, decisions) = policies.sanitize(input(), |_| Ok(())).await.unwrap_err();
        assert!(matches!(refusal, Refusal::Overloaded(_)));
        assert_eq!(decisions[0].verdict, "overloaded");
    }

    #[tokio::test]
    async fn a_rewrite_is_rechecked_and_judged_again_by_the_whole_chain() {
        let rewritten = shell("echo hi");
        let policies = chain(vec![
            Fixed("first", Ok(Verdict::Allow)),
            Fixed("rewriter", Ok(Verdict::Rewrite(rewritten.clone()))),
        ]);
        let (refusal, _) = policies.sanitize(input(), |_| Err("bad".into())).await.unwrap_err();
        assert!(refusal.to_string().contains("rewriter"));
        // The rewriter rewrites to the same command the second time round: that is an allow.
        let (spec, decisions) = policies.sanitize(input(), |_| Ok(())).await.unwrap();
        assert_eq!(spec, rewritten);
        let verdicts: Vec<_> = decisions.iter().map(|d| (d.plugin.as_str(), d.verdict)).collect();
        assert_eq!(
            verdicts,
            [
                ("first", "allow"),
                ("rewriter", "rewrite"),
                ("first", "allow"),
                ("rewriter", "allow")
            ]
        );
    }

    #[tokio::test]
    async fn endless_rewrites_fail_closed() {
        let policies = chain(vec![Fixed("appender", Ok(Verdict::Rewrite(shell("x"))))]);
        let (refusal, decisions) = policies.sanitize(input(), |_| Ok(())).await.unwrap_err();
        assert!(refusal.to_string().contains("more than"), "{refusal}");
        assert_eq!(decisions.len(), MAX_REWRITES + 1);
    }
}
