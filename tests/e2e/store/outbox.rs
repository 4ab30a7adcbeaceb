//! The webhook outbox in the store: an event writes one outbox row, only if some subscription
//! matches it; turning rows into deliveries makes one per subscription that matches and existed
//! when the event happened, once, however many workers do it at once.

use rdev::store::{AuditEntry, DeliveryQuery, DeliveryState, EventTag, Store, SubscriptionRecord, SubscriptionState};

use super::{audit, open};
use crate::common::Db;

fn subscription(id: &str, events: &[&str], state: SubscriptionState, created_at: i64) -> SubscriptionRecord {
    SubscriptionRecord {
        id: id.into(),
        url: format!("https://{id}.example/hook"),
        events: events.iter().map(|e| (*e).to_owned()).collect(),
        projects: None,
        formatter: "generic-formatter".into(),
        description: String::new(),
        output_tail_bytes: 0,
        secret: vec![1, 2, 3],
        previous_secret: None,
        state,
        disabled_reason: None,
        failing_since: None,
        created_at,
        updated_at: created_at,
    }
}

fn event(kind: &str, project: Option<&str>, at: i64) -> AuditEntry {
    AuditEntry {
        event: Some(EventTag::new(kind, project)),
        ..audit(kind, "cmd_1", at)
    }
}

async fn deliveries(store: &dyn Store, subscription: &str) -> Vec<rdev::store::DeliveryRecord> {
    let query = DeliveryQuery {
        subscription_id: subscription.into(),
        limit: 1000,
        ..DeliveryQuery::default()
    };
    store.list_deliveries(&query).await.unwrap()
}

async fn an_event_reaches_the_subscriptions_that_match_and_existed(db: Db) {
    let opened = open(db).await;
    let s = opened.store.as_ref();
    let subs = [
        subscription("whk_commands", &["command.*"], SubscriptionState::Active, 10),
        subscription("whk_exact", &["command.succeeded"], SubscriptionState::Active, 10),
        subscription("whk_keys", &["key.*"], SubscriptionState::Active, 10),
        subscription("whk_paused", &["*"], SubscriptionState::Paused, 10),
        subscription("whk_disabled", &["*"], SubscriptionState::Disabled, 10),
        {
            let mut other = subscription("whk_other_project", &["*"], SubscriptionState::Active, 10);
            other.projects = Some(vec!["other".into()]);
            other
        },
    ];
    for sub in &subs {
        s.insert_subscription(sub, &audit("webhook.created", &sub.id, 10))
            .await
            .unwrap();
    }
    s.append_audit(&event("command.succeeded", Some("demo"), 1000))
        .await
        .unwrap();
    // Created after the event, before it was turned into deliveries: not one of its receivers.
    let late = subscription("whk_late", &["*"], SubscriptionState::Active, 1001);
    s.insert_subscription(&late, &audit("webhook.created", &late.id, 1001))
        .await
        .unwrap();
    assert_eq!(s.outbox_depth(2000).await.unwrap().oldest_due_at, Some(1000));

    assert_eq!(s.expand_events(10).await.unwrap(), 1);
    assert_eq!(
        s.expand_events(10).await.unwrap(),
        0,
        "an outbox row is turned into deliveries once"
    );
    for (id, expected) in [
        ("whk_commands", 1),
        ("whk_exact", 1),
        ("whk_paused", 1),
        ("whk_keys", 0),
        ("whk_disabled", 0),
        ("whk_other_project", 0),
        ("whk_late", 0),
    ] {
        let got = deliveries(s, id).await;
        assert_eq!(got.len(), expected, "{id}: {got:?}");
        for d in got {
            assert_eq!(
                (d.event_type.as_str(), d.state, d.due_at),
                ("command.succeeded", DeliveryState::Pending, 1000)
            );
            assert_eq!(d.project.as_deref(), Some("demo"));
        }
    }
}

async fn an_event_no_subscription_matches_leaves_no_outbox_row(db: Db) {
    let opened = open(db).await;
    let s = opened.store.as_ref();
    let keys = subscription("whk_keys", &["key.*"], SubscriptionState::Active, 10);
    s.insert_subscription(&keys, &audit("webhook.created", &keys.id, 10))
        .await
        .unwrap();
    s.append_audit(&event("command.accepted", Some("demo"), 1000))
        .await
        .unwrap();
    assert_eq!(s.outbox_depth(2000).await.unwrap().oldest_due_at, None);
    // Matching it now does not bring back an event that was not recorded for anyone.
    let all = subscription("whk_all", &["*"], SubscriptionState::Active, 20);
    s.insert_subscription(&all, &audit("webhook.created", &all.id, 20))
        .await
        .unwrap();
    assert_eq!(s.expand_events(10).await.unwrap(), 0);
    assert!(deliveries(s, "whk_all").await.is_empty());
}

async fn concurrent_workers_expand_each_event_once(db: Db) {
    let opened = open(db).await;
    let s = opened.store.clone();
    for id in ["whk_a", "whk_b", "whk_c"] {
        let sub = subscription(id, &["command.*"], SubscriptionState::Active, 10);
        s.insert_subscription(&sub, &audit("webhook.created", id, 10))
            .await
            .unwrap();
    }
    for i in 0..60 {
        s.append_audit(&event("command.started", Some("demo"), 1000 + i))
            .await
            .unwrap();
    }
    let worker = |s: std::sync::Arc<dyn Store>| async move {
        let mut done = 0;
        loop {
            match s.expand_events(7).await.unwrap() {
                0 => return done,
                n => done += n,
            }
        }
    };
    let done: Vec<i64> = futures::future::join_all((0..4).map(|_| worker(s.clone()))).await;
    assert_eq!(done.iter().sum::<i64>(), 60, "{done:?}");
    for id in ["whk_a", "whk_b", "whk_c"] {
        let got = deliveries(s.as_ref(), id).await;
        let mut events: Vec<i64> = got.iter().map(|d| d.event_id).collect();
        events.sort_unstable();
        events.dedup();
        assert_eq!((got.len(), events.len()), (60, 60), "{id}");
    }
}

crate::on_both_databases!(
    an_event_reaches_the_subscriptions_that_match_and_existed,
    an_event_no_subscription_matches_leaves_no_outbox_row,
    concurrent_workers_expand_each_event_once,
);
