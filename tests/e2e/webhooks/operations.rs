//! Running webhooks: a rotated secret signs beside the new one for its overlap window (both
//! verify with the reference library), a subscription failing for longer than its period is
//! disabled and then left alone, the attempt metrics count what was sent, replicas on one
//! PostgreSQL database send each delivery once, also after one of them lost its lease, and
//! retention deletes old finished deliveries only.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Receiver, config, reference_verify, subscribe};
use crate::common::{Db, Gateway, send, wait_until};
use rdev::webhooks::secrets::Secret;
use rdev::webhooks::signing;

const DEADLINE: Duration = Duration::from_secs(60);

async fn a_rotated_secret_signs_beside_the_new_one_until_its_overlap_ends(db: Db) {
    let gw = Gateway::start_with_plugins(db, &config("[0.2]")).await;
    let (receiver, url) = Receiver::start(&[]).await;
    let (id, old) = subscribe(&gw, json!({"url": url, "events": ["webhook.test"]})).await;
    let (status, rotated) = gw.post(&format!("/v1/webhooks/{id}/rotate-secret"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_owned();
    gw.logs.secret(new.clone());
    assert_ne!(new, old);
    gw.post(&format!("/v1/webhooks/{id}/test"), json!({})).await;
    wait_until(DEADLINE, || async { receiver.got().len() == 1 }).await;
    let during = receiver.got();
    assert_eq!(
        during[0].signature.split(' ').count(),
        2,
        "two signatures during the overlap: {}",
        during[0].signature
    );
    reference_verify(&old, &during);
    reference_verify(&new, &during);

    let (status, rotated) = gw
        .post(&format!("/v1/webhooks/{id}/rotate-secret"), json!({"overlap_secs": 0}))
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let newest = rotated["secret"].as_str().unwrap().to_owned();
    gw.logs.secret(newest.clone());
    gw.post(&format!("/v1/webhooks/{id}/test"), json!({})).await;
    wait_until(DEADLINE, || async { receiver.got().len() == 2 }).await;
    let after = receiver.got().split_off(1);
    assert_eq!(after[0].signature.split(' ').count(), 1, "{}", after[0].signature);
    reference_verify(&newest, &after);
    let m = &after[0];
    for retired in [&old, &new] {
        let secret = Secret::parse(retired).unwrap();
        assert!(
            signing::verify(&secret, &m.id, m.timestamp, &m.signature, &m.body, m.timestamp).is_err(),
            "a secret past its overlap still signs"
        );
    }
}

/// The sum of `rdev_webhook_attempts_total` over its outcomes.
async fn attempts_counted(gw: &Gateway) -> f64 {
    let (_, text) = gw.get("/metrics").await;
    text.as_str()
        .expect("metrics are text")
        .lines()
        .filter(|l| l.starts_with("rdev_webhook_attempts_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn a_subscription_failing_past_its_period_is_disabled_and_left_alone(db: Db) {
    let settings = format!(
        "{}disable_after_secs = 1\n",
        config(&format!("[{}]", ["0.3"; 20].join(", ")))
    );
    let gw = Gateway::start_with_plugins(db, &settings).await;
    let (receiver, url) = Receiver::start(&[500; 64]).await;
    let (id, _) = subscribe(&gw, json!({"url": url, "events": ["webhook.test"]})).await;
    gw.post(&format!("/v1/webhooks/{id}/test"), json!({})).await;
    wait_until(DEADLINE, || async {
        gw.get(&format!("/v1/webhooks/{id}")).await.1["state"] == "disabled"
    })
    .await;
    let events = gw.audit("action=webhook.disabled").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0]["detail"].to_string().contains("failed for more than 1 s"),
        "{events:?}"
    );
    let sent = receiver.got().len();
    assert!(sent >= 3, "disabled before the period ran out: {sent} attempts");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.got().len(), sent, "a disabled subscription is still attempted");
    wait_until(DEADLINE, || async { attempts_counted(&gw).await == sent as f64 }).await;

    let (status, resumed) = gw.post(&format!("/v1/webhooks/{id}/resume"), json!({})).await;
    assert_eq!(
        (status, resumed["state"].as_str()),
        (StatusCode::OK, Some("active")),
        "{resumed}"
    );
}

async fn live_replicas(gw: &Gateway) -> Value {
    send(gw.client.get(format!("{}/ready", gw.url))).await.body["replicas_live"].clone()
}

async fn two_replicas() -> (Gateway, Gateway) {
    let first = Gateway::start_with_plugins(Db::Postgres, &config("[0.2]")).await;
    let second = first.start_replica().await;
    for gw in [&first, &second] {
        wait_until(DEADLINE, || async { live_replicas(gw).await == json!(2) }).await;
    }
    (first, second)
}

/// Test events posted alternately to both replicas: each delivery is sent exactly once, and the
/// replicas' attempt counters add up to the number of events.
async fn each_delivery_is_sent_once(first: &Gateway, second: &Gateway) {
    let (receiver, url) = Receiver::start(&[]).await;
    let (id, _) = subscribe(first, json!({"url": url, "events": ["webhook.test"]})).await;
    const EVENTS: usize = 40;
    for i in 0..EVENTS {
        let gw = if i % 2 == 0 { first } else { second };
        let (status, body) = gw.post(&format!("/v1/webhooks/{id}/test"), json!({})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    wait_until(DEADLINE, || async { receiver.got().len() >= EVENTS }).await;
    wait_until(DEADLINE, || async {
        let (_, page) = first
            .get(&format!("/v1/webhooks/{id}/deliveries?state=succeeded&limit=100"))
            .await;
        page["deliveries"].as_array().map(Vec::len) == Some(EVENTS)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut sent: HashMap<String, usize> = HashMap::new();
    for m in receiver.got() {
        *sent.entry(m.id).or_default() += 1;
    }
    assert_eq!(sent.len(), EVENTS);
    let twice: Vec<_> = sent.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    let both = attempts_counted(first).await + attempts_counted(second).await;
    assert_eq!(both, EVENTS as f64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_send_each_delivery_once() {
    let (first, second) = two_replicas().await;
    each_delivery_is_sent_once(&first, &second).await;
}

/// A replica stopped past its lease is taken as dead and comes back under a new id. Its workers
/// must claim under that id: under the old one, every delivery they claim looks like a dead
/// replica's, and the other replica (or the next round of its own) sends it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_back_from_a_lost_lease_still_sends_each_delivery_once() {
    let (first, second) = two_replicas().await;
    let pid = second.pid().unwrap().to_string();
    let signal = |sig: &str| {
        assert!(
            std::process::Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap()
                .success()
        )
    };
    signal("-STOP");
    wait_until(DEADLINE, || async { live_replicas(&first).await == json!(1) }).await;
    signal("-CONT");
    wait_until(DEADLINE, || async {
        second.logs.lines().iter().any(|l| l.contains("registering again"))
    })
    .await;
    for gw in [&first, &second] {
        wait_until(DEADLINE, || async { live_replicas(gw).await == json!(2) }).await;
    }
    each_delivery_is_sent_once(&first, &second).await;
}

/// Retention deletes a finished delivery past `retention.deliveries_max_age_secs`, never one
/// still waiting to be sent.
async fn finished_deliveries_go_after_their_age_and_waiting_ones_stay(db: Db) {
    let retention = "retention.interval_secs = 1\nretention.deliveries_max_age_secs = 5\n";
    let gw = Gateway::start_with_plugins(db, &format!("{retention}{}", config("[3600]"))).await;
    let (_ok, ok_url) = Receiver::start(&[]).await;
    let (_failing, failing_url) = Receiver::start(&[500]).await;
    let (sent, _) = subscribe(&gw, json!({"url": ok_url, "events": ["webhook.test"]})).await;
    let (waiting, _) = subscribe(&gw, json!({"url": failing_url, "events": ["webhook.test"]})).await;
    for id in [&sent, &waiting] {
        let (status, _) = gw.post(&format!("/v1/webhooks/{id}/test"), json!({})).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let deliveries = |id: &str| {
        let url = format!("/v1/webhooks/{id}/deliveries");
        let gw = &gw;
        async move {
            gw.get(&url).await.1["deliveries"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        }
    };
    wait_until(DEADLINE, || async {
        deliveries(&sent).await.iter().any(|d| d["state"] == "succeeded")
    })
    .await;
    wait_until(DEADLINE, || async {
        deliveries(&waiting)
            .await
            .iter()
            .any(|d| d["attempts"].as_i64() >= Some(1))
    })
    .await;
    wait_until(DEADLINE, || async { deliveries(&sent).await.is_empty() }).await;
    let left = deliveries(&waiting).await;
    assert_eq!(
        left.len(),
        1,
        "the delivery waiting for its retry was deleted: {left:?}"
    );
    assert_eq!(left[0]["state"], "pending", "{left:?}");
}

crate::on_both_databases!(
    finished_deliveries_go_after_their_age_and_waiting_ones_stay,
    a_rotated_secret_signs_beside_the_new_one_until_its_overlap_ends,
    a_subscription_failing_past_its_period_is_disabled_and_left_alone,
);
