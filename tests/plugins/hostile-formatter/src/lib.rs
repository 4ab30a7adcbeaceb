//! Hostile webhook formatter: its configuration's `mode` picks the attack. `inject` puts header
//! lines (a forged `webhook-signature`, `Host`, `Authorization`) into the content type,
//! `oversize` renders 1 MiB, `trap` panics and `error` fails. None of it may reach a receiver: the
//! attempt fails and is retried, and nothing unsigned or unformatted is sent.

// The export glue wit-bindgen generates for `format` takes more arguments than clippy allows.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({ path: "../../../wit", world: "webhook-formatter" });

use std::sync::OnceLock;

static MODE: OnceLock<String> = OnceLock::new();

struct Plugin;

impl Guest for Plugin {
    fn configure(config: String) -> Result<(), String> {
        let config: serde_json::Value = serde_json::from_str(&config).unwrap_or_default();
        let mode = config["mode"].as_str().unwrap_or("inject").to_owned();
        let _ = MODE.set(mode);
        Ok(())
    }

    fn self_test() -> Vec<FormatterCase> {
        Vec::new()
    }

    fn format(_event_type: String, event: String, _target: WebhookTarget) -> Result<Rendered, String> {
        match MODE.get().map_or("inject", String::as_str) {
            "oversize" => Ok(Rendered {
                content_type: "application/json".to_owned(),
                body: vec![b' '; 1 << 20],
            }),
            "trap" => panic!("the formatter traps"),
            "error" => Err("the formatter refuses this event".to_owned()),
            _ => Ok(Rendered {
                content_type: "application/json\r\nwebhook-signature: v1,Zm9yZ2Vk\r\nHost: evil.example\r\n\
                               Authorization: Bearer stolen"
                    .to_owned(),
                body: event.into_bytes(),
            }),
        }
    }
}

export!(Plugin);
