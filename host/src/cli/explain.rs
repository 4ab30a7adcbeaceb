//! `rdev plugins test FILE --command BODY`: a command body judged through a chain of the one
//! component by the same code as the gateway's intake and `POST …/explain`, with the default
//! `[commands]` and project settings; prints each decision, and the command as the chain leaves
//! it or why it is refused. Exits non-zero when it is refused.

use std::path::Path;

use anyhow::Context;

use crate::commands::{Asker, CommandRequest, CommandsConfig, Judged, Judgement, judge};
use crate::plugins::rollout::redact;
use crate::plugins::{Decision, PluginCommand, compat, harness};
use crate::projects::{Project, ProjectSettings};

pub(super) async fn explain(
    file: &Path,
    body: &str,
    config: Option<&str>,
    project: &str,
    json: bool,
) -> anyhow::Result<()> {
    let wasm = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let built = compat::inspect(&wasm).map_err(|e| anyhow::anyhow!("the component {e}"))?;
    let world = built.world.context("the component implements no rdev:plugin world")?;
    let config = match config {
        Some(text) => serde_json::from_str(text).context("--plugin-config is not JSON")?,
        None => serde_json::json!({}),
    };
    let policies = harness::chain_of(file, world, config).await?;
    let request: CommandRequest = serde_json::from_str(body).context("--command is not a command body")?;
    let project = Project {
        name: project.to_owned(),
        description: None,
        workspace: Path::new("/workspaces").join(project),
        placement: Default::default(),
        settings: ProjectSettings::default(),
    };
    let scopes = ["commands:run".to_owned()];
    let asker = Asker {
        key_id: "key_local",
        scopes: &scopes,
    };
    let Judgement {
        mut validators,
        sanitizers,
        outcome,
    } = judge(&policies, &CommandsConfig::default(), &asker, &project, &request).await;
    validators.extend(sanitizers);
    let (command, refusal) = match outcome {
        Ok(spec) => (Some(redact::command(&PluginCommand::from(&spec))), None),
        Err(Judged::Invalid(e)) => (None, Some(format!("{}: {}", e.field, e.message))),
        Err(Judged::Refused(refusal)) => (None, Some(refusal.to_string())),
    };
    if json {
        let report = serde_json::json!({
            "decisions": validators.iter().map(shown).collect::<Vec<_>>(),
            "command": command,
            "refused": refusal,
        });
        println!("{report}");
    } else {
        for d in &validators {
            println!("{}", line(d));
        }
        match (&command, &refusal) {
            (Some(command), _) => println!("would queue: {}", serde_json::to_string(command)?),
            (_, Some(why)) => println!("would be refused: {why}"),
            _ => {}
        }
    }
    anyhow::ensure!(refusal.is_none(), "the command would be refused");
    Ok(())
}

fn shown(d: &Decision) -> serde_json::Value {
    let mut value = serde_json::to_value(d).unwrap_or_default();
    if let Some(rewrite) = &d.rewrite {
        value["rewrite"] = serde_json::to_value(redact::command(rewrite)).unwrap_or_default();
    }
    value
}

fn line(d: &Decision) -> String {
    let mut text = format!("{:<24} {:<9} {:>6} µs", d.plugin, d.verdict, d.duration_us);
    if let Some(reason) = &d.reason {
        text.push_str(&format!("  {reason}"));
    }
    if let Some(rewrite) = &d.rewrite {
        text.push_str(&format!(
            "  → {}",
            serde_json::to_string(&redact::command(rewrite)).unwrap_or_default()
        ));
    }
    text
}
