//! The store contract, run against SQLite and PostgreSQL: keys, the command queue and its
//! transitions, claims by replicas and their leases, output paging, the audit log and the
//! webhook outbox.

mod outbox;

use rdev::store::{
    AuditEntry, AuditQuery, Claim, CommandRecord, CommandState, Inserted, KeyRecord, OutputChunk, ReplicaRecord, Store,
    Transition,
};

use crate::common::Db;

struct Opened {
    store: std::sync::Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

async fn open(db: Db) -> Opened {
    let dir = tempfile::tempdir().unwrap();
    let url = match db {
        Db::Sqlite => rdev::store::sqlite_url(dir.path()),
        Db::Postgres => crate::common::postgres::fresh_database().await,
    };
    // Opening twice proves migrations are idempotent.
    drop(rdev::store::open(&url).await.unwrap());
    Opened {
        store: rdev::store::open(&url).await.unwrap(),
        _dir: dir,
    }
}

fn audit(action: &str, target: &str, at: i64) -> AuditEntry {
    AuditEntry {
        at,
        action: action.into(),
        target: target.into(),
        outcome: "ok".into(),
        ..AuditEntry::default()
    }
}

fn command(id: &str, project: &str, priority: i32, queue_seq: i64) -> CommandRecord {
    CommandRecord {
        id: id.into(),
        project: project.into(),
        kind: "shell".into(),
        spec: r#"{"kind":"shell","script":"true"}"#.into(),
        state: CommandState::Queued,
        priority,
        timeout_secs: 60,
        exit_code: None,
        reason: None,
        key_id: "key_a".into(),
        idempotency_key: None,
        request_hash: None,
        queue_seq,
        pgid: None,
        runner: None,
        created_at: queue_seq,
        started_at: None,
        finished_at: None,
        owner: None,
        session_id: None,
        run_summary: None,
    }
}

async fn keys_round_trip_and_revoke(db: Db) {
    let opened = open(db).await;
    let s = &opened.store;
    let key = KeyRecord {
        id: "key_1".into(),
        name: "ci".into(),
        hash: "abc".into(),
        scopes: vec!["projects:read".into()],
        projects: Some(vec!["demo".into()]),
        allowed_cidrs: Some(vec!["10.0.0.0/8".parse().unwrap()]),
        expires_at: Some(99),
        created_at: 1,
        last_used_at: None,
        revoked_at: None,
        rate_limit_tier: Some("batch".into()),
    };
    s.insert_key(&key, Some(&audit("key.create", "key_1", 1)))
        .await
        .unwrap();
    assert_eq!(s.get_key("key_1").await.unwrap(), Some(key.clone()));
    assert_eq!(s.count_keys().await.unwrap(), 1);
    s.touch_key("key_1", 5).await.unwrap();
    assert_eq!(s.get_key("key_1").await.unwrap().unwrap().last_used_at, Some(5));
    assert!(s.revoke_key("key_1", 7, None).await.unwrap());
    assert!(
        !s.revoke_key("key_1", 8, None).await.unwrap(),
        "a second revoke changes nothing"
    );
    assert_eq!(s.get_key("key_1").await.unwrap().unwrap().revoked_at, Some(7));
    assert_eq!(s.count_keys().await.unwrap(), 1, "revoked keys still count");
    assert_eq!(s.list_keys().await.unwrap().len(), 1);
    assert_eq!(s.get_key("nope").await.unwrap(), None);
    assert_eq!(
        s.list_audit(&AuditQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .len(),
        1
    );
}

async fn idempotency_key_returns_the_existing_command(db: Db) {
    let opened = open(db).await;
    let s = &opened.store;
    let mut first = command("cmd_1", "demo", 0, 1);
    first.idempotency_key = Some("k".into());
    first.request_hash = Some("h1".into());
    assert!(matches!(
        s.insert_command(&first, &[audit("command.accepted", "cmd_1", 1)])
            .await
            .unwrap(),
        Inserted::New
    ));
    let mut again = command("cmd_2", "demo", 0, 2);
    again.idempotency_key = Some("k".into());
    again.request_hash = Some("h2".into());
    match s
        .insert_command(&again, &[audit("command.accepted", "cmd_2", 2)])
        .await
        .unwrap()
    {
        Inserted::Existing(existing) => assert_eq!(*existing, first),
        Inserted::New => panic!("duplicate idempotency key inserted"),
    }
    assert_eq!(s.get_command("cmd_2").await.unwrap(), None);
    assert_eq!(s.find_idempotent("key_a", "k").await.unwrap(), Some(first.clone()));
    assert_eq!(
        s.find_idempotent("key_b", "k").await.unwrap(),
        None,
        "idempotency keys are per API key"
    );
    let accepted = AuditQuery {
        action: Some("command.accepted".into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        s.list_audit(&accepted).await.unwrap().len(),
        1,
        "no audit event for the rejected duplicate"
    );
    let mut other_key = again.clone();
    other_key.key_id = "key_b".into();
    assert!(matches!(
        s.insert_command(&other_key, &[audit("a", "t", 3)]).await.unwrap(),
        Inserted::New
    ));
}

async fn queue_orders_by_priority_then_fifo(db: Db) {
    let opened = open(db).await;
    let s = &opened.store;
    for (id, priority, seq) in [("low", 0, 1), ("high1", 5, 2), ("high2", 5, 3), ("other", 9, 4)] {
        let project = if id == "other" { "elsewhere" } else { "demo" };
        s.insert_command(
            &command(id, project, priority, seq),
            &[audit("command.accepted", id, seq)],
        )
        .await
        .unwrap();
    }
    let mut order = Vec::new();
    while let Some(next) = s.next_queued("demo").await.unwrap() {
        let change = Transition {
            id: &next.id,
            from: &[CommandState::Queued],
            to: CommandState::Running,
            exit_code: None,
            reason: None,
            at: 10,
            audit: audit("command.started", &next.id, 10),
        };
        assert!(s.transition(&change).await.unwrap());
        order.push(next.id);
    }
    assert_eq!(order, ["high1", "high2", "low"]);
    assert_eq!(s.count_running("demo").await.unwrap(), 3);
    assert_eq!(s.projects_with_queued().await.unwrap(), ["elsewhere"]);
}

async fn transitions_apply_only_from_expected_states(db: Db) {
    let opened = open(db).await;
    let s = &opened.store;
    s.insert_command(&command("c", "demo", 0, 1), &[audit("command.accepted", "c", 1)])
        .await
        .unwrap();
    let to = |to, from: &'static [CommandState], exit_code| Transition {
        id: "c",
        from,
        to,
        exit_code,
        reason: Some("why"),
        at: 20,
        audit: audit(&format!("command.{to}"), "c", 20),
    };
    assert!(
        !s.transition(&to(CommandState::Succeeded, &[CommandState::Running], Some(0)))
            .await
            .unwrap()
    );
    assert!(
        s.transition(&to(CommandState::Running, &[CommandState::Queued], None))
            .await
            .unwrap()
    );
    s.set_process_group("c", "local:host:boot", 4242).await.unwrap();
    assert!(
        s.transition(&to(CommandState::Failed, &[CommandState::Running], Some(3)))
            .await
            .unwrap()
    );
    assert!(
        !s.transition(&to(
            CommandState::Cancelled,
            &[CommandState::Queued, CommandState::Running],
            None
        ))
        .await
        .unwrap()
    );
    let c = s.get_command("c").await.unwrap().unwrap();
    assert_eq!(c.runner.as_deref(), Some("local:host:boot"));
    assert_eq!(
        (c.state, c.exit_code, c.pgid, c.reason.as_deref()),
        (CommandState::Failed, Some(3), Some(4242), Some("why"))
    );
    assert_eq!((c.started_at, c.finished_at), (Some(20), Some(20)));
    let events = s
        .list_audit(&AuditQuery {
            target: Some("c".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: Vec<_> = events.iter().rev().map(|e| e.entry.action.as_str()).collect();
    assert_eq!(
        actions,
        ["command.accepted", "command.running", "command.failed"],
        "refused transitions leave no audit"
    );
}

async fn output_pages_in_order(db: Db) {
    let opened = open(db).await;
    let s = &opened.store;
    s.insert_command(&command("c", "demo", 0, 1), &[audit("a", "c", 1)])
        .await
        .unwrap();
    let chunks: Vec<_> = (1..=2500)
        .map(|seq| OutputChunk {
            command_id: "c".into(),
            seq,
            stream: if seq % 2 == 0 { "stderr" } else { "stdout" }.into(),
            text: format!("line {seq}\n\u{1F600}\0"),
        })
        .collect();
    s.append_output(std::sync::Arc::new(chunks.clone())).await.unwrap();
    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let page = s.output_after("c", after, 1000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        seen.extend(page);
    }
    assert_eq!(seen, chunks);
    assert!(s.output_after("other", 0, 10).await.unwrap().is_empty());
}

async fn audit_filters_and_pages(db: Db) {
    let opened = open(db).await;
    let s = &opened.store;
    for i in 0..25 {
        let mut e = audit(
            if i % 2 == 0 { "even" } else { "odd" },
            &format!("t{}", i % 3),
            1000 + i,
        );
        e.key_id = Some(if i < 10 { "key_a" } else { "key_b" }.into());
        s.append_audit(&e).await.unwrap();
    }
    let q = |f: fn(&mut AuditQuery)| {
        let mut q = AuditQuery {
            limit: 100,
            ..Default::default()
        };
        f(&mut q);
        q
    };
    assert_eq!(
        s.list_audit(&q(|q| q.action = Some("even".into())))
            .await
            .unwrap()
            .len(),
        13
    );
    assert_eq!(
        s.list_audit(&q(|q| q.key_id = Some("key_a".into())))
            .await
            .unwrap()
            .len(),
        10
    );
    assert_eq!(
        s.list_audit(&q(|q| q.target = Some("t0".into()))).await.unwrap().len(),
        9
    );
    assert_eq!(
        s.list_audit(&q(|q| (q.since, q.until) = (Some(1005), Some(1010))))
            .await
            .unwrap()
            .len(),
        5
    );
    let mut ids = Vec::new();
    let mut before = None;
    loop {
        let page = s
            .list_audit(&AuditQuery {
                limit: 7,
                before,
                ..Default::default()
            })
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        ids.extend(page.iter().map(|r| r.id));
    }
    assert_eq!(ids.len(), 25);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first, no duplicates");
}

fn replica(id: &str, lease_expires_at: i64) -> ReplicaRecord {
    ReplicaRecord {
        id: id.into(),
        host: "h".into(),
        started_at: 1,
        heartbeat_at: 1,
        lease_expires_at,
    }
}

fn claim(owner: &str, limit: i64, at: i64) -> Claim {
    Claim {
        project: "demo".into(),
        limit,
        owner: owner.into(),
        at,
        audit: audit("command.started", "", at),
    }
}

async fn claims_keep_the_limit_and_order_and_need_a_live_owner(db: Db) {
    let opened = open(db).await;
    let s = &opened.store;
    for (id, priority, seq) in [("low", 0, 1), ("high1", 5, 2), ("high2", 5, 3)] {
        let accepted = audit("command.accepted", id, seq);
        s.insert_command(&command(id, "demo", priority, seq), &[accepted])
            .await
            .unwrap();
    }
    assert!(
        s.claim_next(&claim("rep_a", 2, 10)).await.unwrap().is_none(),
        "no row, no claim"
    );
    s.register_replica(&replica("rep_a", 1_000)).await.unwrap();
    s.register_replica(&replica("rep_b", 1_000)).await.unwrap();
    let first = s.claim_next(&claim("rep_a", 2, 10)).await.unwrap().expect("a claim");
    assert_eq!(
        (first.id.as_str(), first.state, first.owner.as_deref()),
        ("high1", CommandState::Running, Some("rep_a"))
    );
    let second = s.claim_next(&claim("rep_b", 2, 11)).await.unwrap().expect("a claim");
    assert_eq!((second.id.as_str(), second.started_at), ("high2", Some(11)));
    assert!(
        s.claim_next(&claim("rep_b", 2, 12)).await.unwrap().is_none(),
        "both slots are taken"
    );
    let stored = s.get_command("high2").await.unwrap().unwrap();
    assert_eq!(
        (stored.state, stored.owner.as_deref()),
        (CommandState::Running, Some("rep_b"))
    );
    let started = s
        .list_audit(&AuditQuery {
            action: Some("command.started".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let targets: Vec<&str> = started.iter().map(|r| r.entry.target.as_str()).collect();
    assert_eq!(targets, ["high2", "high1"], "each claim writes its audit row");
}

async fn expired_replicas_are_removed_once_and_leave_orphans(db: Db) {
    let opened = open(db).await;
    let s = &opened.store;
    s.register_replica(&replica("rep_live", 1_000)).await.unwrap();
    s.register_replica(&replica("rep_dead", 100)).await.unwrap();
    s.insert_command(&command("c", "demo", 0, 1), &[audit("command.accepted", "c", 1)])
        .await
        .unwrap();
    assert_eq!(s.claim_next(&claim("rep_dead", 5, 2)).await.unwrap().unwrap().id, "c");
    assert!(
        s.orphaned_commands().await.unwrap().is_empty(),
        "its owner is registered"
    );
    assert!(s.renew_lease("rep_live", 500, 1_500).await.unwrap());
    let expired: Vec<String> = s
        .expired_replicas(600)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(expired, ["rep_dead"]);
    assert!(
        !s.remove_replica("rep_live", Some(600)).await.unwrap(),
        "a live lease is not removed"
    );
    assert!(s.remove_replica("rep_dead", Some(600)).await.unwrap());
    assert!(
        !s.remove_replica("rep_dead", Some(600)).await.unwrap(),
        "only one peer removes it"
    );
    assert!(
        !s.renew_lease("rep_dead", 700, 1_700).await.unwrap(),
        "its renewal finds the row gone"
    );
    let orphans: Vec<String> = s.orphaned_commands().await.unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(orphans, ["c"]);
    assert!(
        s.remove_replica("rep_live", None).await.unwrap(),
        "a clean stop removes its own row"
    );
}

async fn a_cancel_asked_elsewhere_reaches_the_owner(db: Db) {
    let opened = open(db).await;
    let s = &opened.store;
    s.register_replica(&replica("rep_a", 1_000)).await.unwrap();
    s.insert_command(&command("c", "demo", 0, 1), &[audit("command.accepted", "c", 1)])
        .await
        .unwrap();
    assert!(
        !s.request_cancel("c", 2).await.unwrap(),
        "a queued command is cancelled directly"
    );
    s.claim_next(&claim("rep_a", 1, 3)).await.unwrap().expect("a claim");
    assert!(s.cancels_requested("rep_a").await.unwrap().is_empty());
    assert!(s.request_cancel("c", 4).await.unwrap());
    assert_eq!(s.cancels_requested("rep_a").await.unwrap(), ["c"]);
    assert!(s.cancels_requested("rep_b").await.unwrap().is_empty());
}

async fn of_concurrent_first_keys_one_is_stored(db: Db) {
    let opened = open(db).await;
    let s = &opened.store;
    let key = |i: usize| KeyRecord {
        id: format!("key_{i}"),
        name: "bootstrap-admin".into(),
        hash: format!("h{i}"),
        scopes: vec!["admin".into()],
        projects: None,
        allowed_cidrs: None,
        expires_at: None,
        created_at: 1,
        last_used_at: None,
        revoked_at: None,
        rate_limit_tier: None,
    };
    let keys: Vec<KeyRecord> = (0..6).map(key).collect();
    let created = futures::future::join_all(keys.iter().map(|k| s.insert_first_key(k, None))).await;
    let created = created.into_iter().map(Result::unwrap).filter(|c| *c).count();
    assert_eq!(created, 1);
    assert_eq!(s.count_keys().await.unwrap(), 1);
}

crate::on_both_databases!(
    of_concurrent_first_keys_one_is_stored,
    claims_keep_the_limit_and_order_and_need_a_live_owner,
    expired_replicas_are_removed_once_and_leave_orphans,
    a_cancel_asked_elsewhere_reaches_the_owner,
    keys_round_trip_and_revoke,
    idempotency_key_returns_the_existing_command,
    queue_orders_by_priority_then_fifo,
    transitions_apply_only_from_expected_states,
    output_pages_in_order,
    audit_filters_and_pages,
);
