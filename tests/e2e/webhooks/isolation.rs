//! One receiver cannot hold up another: a receiver that never answers keeps at most its
//! per-subscription share of the workers while a healthy one gets everything. A formatter cannot
//! make the gateway send what it did not sign: header lines smuggled into the content type, an
//! oversize body, a trap or an error fail the attempt, and nothing reaches the receiver.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Receiver, config, subscribe};
use crate::common::plugins::{default_plugin, entry, test_plugin};
use crate::common::{Db, Gateway, wait_until};

const DEADLINE: Duration = Duration::from_secs(60);

async fn send_tests(gw: &Gateway, subscription: &str, n: usize) {
    for _ in 0..n {
        let (status, body) = gw.post(&format!("/v1/webhooks/{subscription}/test"), json!({})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
}

async fn deliveries(gw: &Gateway, subscription: &str) -> Vec<Value> {
    let (_, page) = gw.get(&format!("/v1/webhooks/{subscription}/deliveries")).await;
    page["deliveries"].as_array().cloned().unwrap_or_default()
}

async fn a_receiver_that_never_answers_does_not_delay_a_healthy_one(db: Db) {
    let settings = format!(
        "{}workers = 4\nper_subscription_concurrency = 2\ntimeout_ms = 600000\n",
        config("[0.2]")
    );
    let gw = Gateway::start_with_plugins(db, &settings).await;
    let (hanging, hanging_url) = Receiver::hanging().await;
    let (healthy, healthy_url) = Receiver::start(&[]).await;
    let (stuck, _) = subscribe(&gw, json!({"url": hanging_url, "events": ["webhook.test"]})).await;
    let (fine, _) = subscribe(&gw, json!({"url": healthy_url, "events": ["webhook.test"]})).await;
    send_tests(&gw, &stuck, 8).await;
    wait_until(DEADLINE, || async { hanging.got().len() >= 2 }).await;
    send_tests(&gw, &fine, 8).await;
    wait_until(DEADLINE, || async { healthy.got().len() >= 8 }).await;
    wait_until(DEADLINE, || async {
        deliveries(&gw, &fine).await.iter().all(|d| d["state"] == "succeeded")
    })
    .await;
    assert_eq!(deliveries(&gw, &fine).await.len(), 8);
    assert_eq!(healthy.got().len(), 8, "a healthy delivery was sent twice");
    assert_eq!(
        hanging.got().len(),
        2,
        "a receiver that never answers got more than its per-subscription concurrency"
    );
    assert!(
        deliveries(&gw, &stuck).await.iter().all(|d| d["state"] != "succeeded"),
        "a delivery to a receiver that never answered is recorded as succeeded"
    );
}

/// Formatter names and the hostile formatter's mode each is configured with.
const HOSTILE: [(&str, &str); 4] = [
    ("inject-formatter", "inject"),
    ("oversize-formatter", "oversize"),
    ("trap-formatter", "trap"),
    ("error-formatter", "error"),
];

async fn a_hostile_formatter_gets_nothing_sent(db: Db) {
    let mut settings = config("[0.2, 0.2]");
    settings = format!(
        "{}{settings}",
        entry(
            "generic-formatter",
            "webhook-formatter",
            &default_plugin("generic_formatter"),
            ""
        )
    );
    for (name, mode) in HOSTILE {
        let extra = format!("config = {{ mode = {mode:?} }}");
        settings = format!(
            "{}{settings}",
            entry(name, "webhook-formatter", &test_plugin("hostile_formatter"), &extra)
        );
    }
    let gw = Gateway::start_with_plugins(db, &settings).await;
    let (receiver, url) = Receiver::start(&[]).await;
    let mut hostile = Vec::new();
    for (formatter, _) in HOSTILE {
        let (id, _) = subscribe(
            &gw,
            json!({"url": url, "events": ["webhook.test"], "formatter": formatter}),
        )
        .await;
        send_tests(&gw, &id, 1).await;
        hostile.push((formatter, id));
    }
    for (formatter, id) in &hostile {
        wait_until(DEADLINE, || async {
            deliveries(&gw, id)
                .await
                .first()
                .is_some_and(|d| d["state"] == "failed")
        })
        .await;
        let delivery = deliveries(&gw, id).await[0]["id"].as_str().unwrap().to_owned();
        let (_, detail) = gw.get(&format!("/v1/webhooks/{id}/deliveries/{delivery}")).await;
        let log = detail["attempt_log"].as_array().unwrap();
        assert_eq!(log.len(), 3, "{formatter}: a failed rendering is retried: {detail}");
        assert!(
            log.iter()
                .all(|a| a["error_class"] == "formatter" && a["status"].is_null()),
            "{formatter}: {detail}"
        );
    }
    assert!(
        receiver.got().is_empty(),
        "a hostile formatter's rendering was sent: {:?}",
        receiver.got()
    );

    let (control, _) = subscribe(&gw, json!({"url": url, "events": ["webhook.test"]})).await;
    send_tests(&gw, &control, 1).await;
    wait_until(DEADLINE, || async { !receiver.got().is_empty() }).await;
    let got = receiver.got();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].content_type, "application/json");
    assert_eq!(
        got[0].signature.split(' ').count(),
        1,
        "one signature without a rotation: {}",
        got[0].signature
    );
}

crate::on_both_databases!(
    a_receiver_that_never_answers_does_not_delay_a_healthy_one,
    a_hostile_formatter_gets_nothing_sent,
);
