//! The five plugin traits, one per WIT world. A plugin is a type (usually a unit struct) that
//! implements one of them; its configuration is a serde type parsed from the JSON the host hands to
//! `configure`.

use crate::{
    Command, CommandContext, DiscoveryCase, FieldError, FormatterCase, InventoryItem, Project, Rendered, SanitizerCase,
    ToolCase, ToolContext, ToolVerdict, ValidatorCase, Verdict, WebhookTarget,
};
use serde::de::DeserializeOwned;

/// A command sanitizer (world `command-sanitizer`): allows, denies or rewrites a command.
pub trait Sanitizer {
    /// The configuration; `""`, `null` and `{}` give [`Default`]. Use `#[serde(deny_unknown_fields)]`
    /// so that a misspelt option is refused instead of ignored.
    type Config: DeserializeOwned + Default + 'static;

    /// Semantic checks of a parsed configuration; an error refuses it.
    fn check(_config: &Self::Config) -> Result<(), String> {
        Ok(())
    }

    /// Judges one command.
    fn sanitize(config: &Self::Config, command: &Command, context: &CommandContext) -> Verdict;

    /// Cases the host runs before a new version goes live; they must hold under any valid config.
    fn self_test() -> Vec<SanitizerCase> {
        Vec::new()
    }
}

/// A request validator (world `request-validator`): field errors of a mutating request.
pub trait Validator {
    /// The configuration; see [`Sanitizer::Config`].
    type Config: DeserializeOwned + Default + 'static;

    /// Semantic checks of a parsed configuration; an error refuses it.
    fn check(_config: &Self::Config) -> Result<(), String> {
        Ok(())
    }

    /// Every field error of `request` (a resource of kind `resource`); empty when it is valid.
    fn validate(config: &Self::Config, resource: &str, request: &serde_json::Value) -> Vec<FieldError>;

    /// Cases the host runs before a new version goes live; they must hold under any valid config.
    fn self_test() -> Vec<ValidatorCase> {
        Vec::new()
    }
}

/// A webhook formatter (world `webhook-formatter`): renders an event for a receiver.
pub trait Formatter {
    /// The configuration; see [`Sanitizer::Config`].
    type Config: DeserializeOwned + Default + 'static;

    /// Semantic checks of a parsed configuration; an error refuses it.
    fn check(_config: &Self::Config) -> Result<(), String> {
        Ok(())
    }

    /// Renders one event; an error fails the delivery attempt (it is retried later).
    fn format(
        config: &Self::Config,
        event_type: &str,
        event: &serde_json::Value,
        target: &WebhookTarget,
    ) -> Result<Rendered, String>;

    /// Cases the host runs before a new version goes live; they must hold under any valid config.
    fn self_test() -> Vec<FormatterCase> {
        Vec::new()
    }
}

/// A project discovery (world `project-discovery`): turns the inventory into the project list.
pub trait Discovery {
    /// The configuration; see [`Sanitizer::Config`].
    type Config: DeserializeOwned + Default + 'static;

    /// Semantic checks of a parsed configuration; an error refuses it.
    fn check(_config: &Self::Config) -> Result<(), String> {
        Ok(())
    }

    /// The projects of an inventory; an error keeps the host's last good list.
    fn discover(config: &Self::Config, inventory: &[InventoryItem]) -> Result<Vec<Project>, String>;

    /// Cases the host runs before a new version goes live; they must hold under any valid config.
    fn self_test() -> Vec<DiscoveryCase> {
        Vec::new()
    }
}

/// A tool policy (world `tool-policy`): allows or denies one tool call of a `claude` run, by the
/// tool's name and input, after the gateway's own rules and the sanitizers have passed it.
pub trait ToolPolicy {
    /// The configuration; see [`Sanitizer::Config`].
    type Config: DeserializeOwned + Default + 'static;

    /// Semantic checks of a parsed configuration; an error refuses it.
    fn check(_config: &Self::Config) -> Result<(), String> {
        Ok(())
    }

    /// Judges the call of `tool` with `input` (the tool's JSON input, e.g. `{"command": "ls"}`
    /// for `Bash` or `{"file_path": "…"}` for `Write`). A denial's reason is shown to the agent.
    fn judge(config: &Self::Config, tool: &str, input: &serde_json::Value, context: &ToolContext) -> ToolVerdict;

    /// Cases the host runs before a new version goes live; they must hold under any valid config.
    fn self_test() -> Vec<ToolCase> {
        Vec::new()
    }
}
