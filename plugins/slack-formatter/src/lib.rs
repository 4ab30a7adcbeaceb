//! Renders rdev events as Slack incoming-webhook messages: a plain `text` fallback and `blocks`
//! (a section with the title, fields as a context line). User text is escaped (`&`, `<`, `>`), so an
//! event can never mention a channel or inject a link; only the configured mention is raw.

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
    /// Overrides the webhook's icon, e.g. `:robot_face:`.
    pub icon_emoji: Option<String>,
    /// Slack markup put before the title of failures, e.g. `<!here>` or `<@U024BE7LH>`.
    pub mention_on_failure: Option<String>,
    /// Longest text of a block, in characters (Slack allows 3000).
    pub max_length: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            username: None,
            icon_emoji: None,
            mention_on_failure: None,
            max_length: 3000,
        }
    }
}

/// Escapes text for Slack's mrkdwn, where `<...>` is a link or a mention.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn emoji(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Success => ":white_check_mark:",
        Outcome::Failure => ":x:",
        Outcome::Cancelled => ":heavy_minus_sign:",
        Outcome::Info => ":information_source:",
    }
}

/// The formatter.
pub struct SlackFormatter;

impl rdev_plugin_sdk::Formatter for SlackFormatter {
    type Config = Config;

    fn check(config: &Config) -> Result<(), String> {
        match config.max_length {
            100..=3000 => Ok(()),
            _ => Err("`max_length` must be between 100 and 3000".into()),
        }
    }

    fn format(config: &Config, event_type: &str, event: &Value, _target: &WebhookTarget) -> Result<Rendered, String> {
        let summary = Summary::of(event_type, event);
        let mention = match (&config.mention_on_failure, summary.outcome) {
            (Some(mention), Outcome::Failure) => format!("{mention} "),
            _ => String::new(),
        };
        let title = format!("{mention}{} *{}*", emoji(summary.outcome), escape(&summary.title));
        let details: Vec<String> = summary
            .fields
            .iter()
            .map(|(name, value)| format!("*{name}:* {}", escape(value)))
            .collect();
        let mut blocks =
            vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&title, config.max_length)}})];
        if !details.is_empty() {
            let context = truncate(&details.join("  ·  "), config.max_length);
            blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]}));
        }
        let text = truncate(&format!("{mention}{}", escape(&summary.title)), config.max_length);
        let mut message = json!({"text": text, "blocks": blocks});
        if let Some(username) = &config.username {
            message["username"] = json!(username);
        }
        if let Some(icon) = &config.icon_emoji {
            message["icon_emoji"] = json!(icon);
        }
        Ok(Rendered::json(&message))
    }

    fn self_test() -> Vec<FormatterCase> {
        fixtures::formatter_cases(include_str!("../invariants.json"))
    }
}

rdev_plugin_sdk::export_formatter!(SlackFormatter);

#[cfg(test)]
mod tests {
    use super::*;
    use rdev_plugin_sdk::testing;

    #[test]
    fn fixtures_pass() {
        testing::run_formatter::<SlackFormatter>("fixtures.json").assert_passed();
    }

    #[test]
    fn invariants_hold_under_default_and_configured_settings() {
        for config in [
            "",
            r#"{"username": "rdev", "mention_on_failure": "<!here>", "max_length": 100}"#,
        ] {
            testing::self_test_formatter::<SlackFormatter>(config).assert_passed();
        }
    }

    #[test]
    fn a_malformed_event_is_an_error_not_a_trap() {
        use testing::Subject;
        let target = WebhookTarget::new("sub", "https://hooks.slack.com/x");
        let rendered = testing::NativeFormatter::<SlackFormatter>::default().format("command.failed", "{oops", &target);
        assert!(matches!(rendered, Ok(Err(error)) if error.starts_with("the event is not valid JSON")));
    }

    #[test]
    fn escapes_mentions_and_links_in_event_text() {
        assert_eq!(
            escape("<!channel> & <http://x|y>"),
            "&lt;!channel&gt; &amp; &lt;http://x|y&gt;"
        );
    }
}
