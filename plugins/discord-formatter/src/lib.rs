//! Renders rdev events as Discord webhook messages: `content` plus one embed coloured by outcome.
//! Event text can never ping anyone: `@everyone`, `@here` and `<@...>` are broken with a zero-width
//! space, and `allowed_mentions` admits only the configured mention.

use rdev_plugin_sdk::{FormatterCase, Rendered, WebhookTarget, fixtures};
use serde::Deserialize;
use serde_json::{Value, json};
use webhook_text::{Outcome, Summary, truncate};

/// The formatter's configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Overrides the webhook's user name.
    pub username: Option<String>,
    /// Overrides the webhook's avatar.
    pub avatar_url: Option<String>,
    /// A user (`<@123>`) or role (`<@&456>`) mention put before failures.
    pub mention_on_failure: Option<String>,
    /// Longest `content`, in characters (Discord allows 2000).
    pub max_length: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            username: None,
            avatar_url: None,
            mention_on_failure: None,
            max_length: 2000,
        }
    }
}

/// Breaks every mention in user text.
fn neutralize(text: &str) -> String {
    text.replace('@', "@\u{200B}")
}

fn colour(outcome: Outcome) -> u32 {
    match outcome {
        Outcome::Success => 0x2E_CC_71,
        Outcome::Failure => 0xE7_4C_3C,
        Outcome::Cancelled => 0x95_A5_A6,
        Outcome::Info => 0x34_98_DB,
    }
}

/// The `allowed_mentions` object: nothing, or exactly the configured user or role.
fn allowed_mentions(mention: Option<&str>) -> Value {
    let id = |prefix: &str| mention.and_then(|m| m.strip_prefix(prefix)?.strip_suffix('>').map(str::to_string));
    match (id("<@&"), id("<@!").or(id("<@"))) {
        (Some(role), _) => json!({"parse": [], "roles": [role]}),
        (None, Some(user)) => json!({"parse": [], "users": [user]}),
        _ => json!({"parse": []}),
    }
}

/// Whether a mention is a user or role mention with a numeric id.
fn is_mention(mention: &str) -> bool {
    let id = mention
        .strip_prefix("<@")
        .and_then(|m| m.strip_suffix('>'))
        .unwrap_or_default();
    let id = id.strip_prefix(['&', '!']).unwrap_or(id);
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())
}

/// The formatter.
pub struct DiscordFormatter;

impl rdev_plugin_sdk::Formatter for DiscordFormatter {
    type Config = Config;

    fn check(config: &Config) -> Result<(), String> {
        if !(100..=2000).contains(&config.max_length) {
            return Err("`max_length` must be between 100 and 2000".into());
        }
        match &config.mention_on_failure {
            Some(mention) if !is_mention(mention) => {
                Err("`mention_on_failure` must be a user (<@123>) or role (<@&123>) mention".into())
            }
            _ => Ok(()),
        }
    }

    fn format(config: &Config, event_type: &str, event: &Value, _target: &WebhookTarget) -> Result<Rendered, String> {
        let summary = Summary::of(event_type, event);
        let mention = match summary.outcome {
            Outcome::Failure => config.mention_on_failure.as_deref(),
            _ => None,
        };
        let title = neutralize(&summary.title);
        let content = match mention {
            Some(mention) => format!("{mention} {title}"),
            None => title.clone(),
        };
        let fields: Vec<Value> = summary
            .fields
            .iter()
            .map(|(name, value)| json!({"name": name, "value": truncate(&neutralize(value), 1024), "inline": true}))
            .collect();
        let embed = json!({"title": truncate(&title, 256), "color": colour(summary.outcome), "fields": fields});
        let mut message = json!({
            "content": truncate(&content, config.max_length),
            "embeds": [embed],
            "allowed_mentions": allowed_mentions(mention),
        });
        if let Some(username) = &config.username {
            message["username"] = json!(username);
        }
        if let Some(avatar) = &config.avatar_url {
            message["avatar_url"] = json!(avatar);
        }
        Ok(Rendered::json(&message))
    }

    fn self_test() -> Vec<FormatterCase> {
        fixtures::formatter_cases(include_str!("../invariants.json"))
    }
}

rdev_plugin_sdk::export_formatter!(DiscordFormatter);

#[cfg(test)]
mod tests {
    use super::*;
    use rdev_plugin_sdk::testing;

    #[test]
    fn fixtures_pass() {
        testing::run_formatter::<DiscordFormatter>("fixtures.json").assert_passed();
    }

    #[test]
    fn invariants_hold_under_default_and_configured_settings() {
        for config in [
            "",
            r#"{"mention_on_failure": "<@&42>", "max_length": 100, "username": "rdev"}"#,
        ] {
            testing::self_test_formatter::<DiscordFormatter>(config).assert_passed();
        }
    }

    #[test]
    fn admits_only_the_configured_mention() {
        assert_eq!(allowed_mentions(Some("<@&42>")), json!({"parse": [], "roles": ["42"]}));
        assert_eq!(allowed_mentions(Some("<@!7>")), json!({"parse": [], "users": ["7"]}));
        assert_eq!(allowed_mentions(None), json!({"parse": []}));
    }

    #[test]
    fn refuses_a_mention_that_is_not_a_user_or_role() {
        let report = testing::run_formatter::<DiscordFormatter>(
            r#"{"config": {"mention_on_failure": "@everyone"}, "formatter": []}"#,
        );
        assert!(report.cases[0].actual.contains("must be a user"), "{report}");
    }
}
