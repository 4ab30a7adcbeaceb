//! The audit log: every authenticated mutating request (successful or not) with its caller,
//! address, outcome and request id; command lifecycle events in order; filters; pagination;
//! the `audit:read` scope; and the absence of any token value.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::common::{self, Db, Gateway, Reply, send};

/// Sends an authenticated request with an optional JSON body.
async fn request(gw: &Gateway, method: Method, path: &str, token: &str, body: Option<Value>) -> Reply {
    let mut req = gw.request(method, path).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    send(req).await
}

/// Every audit event, newest first.
async fn all_events(gw: &Gateway) -> Vec<Value> {
    gw.audit("limit=500").await
}

fn ids(events: &[Value]) -> Vec<i64> {
    events.iter().map(|e| e["id"].as_i64().unwrap()).collect()
}

fn at_of(event: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(event["at"].as_str().unwrap(), &Rfc3339).unwrap()
}

fn with_request_id<'a>(events: &'a [Value], request_id: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["request_id"] == request_id).collect()
}

/// The one event of a request with `action`.
fn request_event<'a>(events: &'a [Value], reply: &Reply, action: &str) -> &'a Value {
    let request_id = reply.header("x-request-id");
    assert!(!request_id.is_empty());
    let found: Vec<_> = with_request_id(events, request_id)
        .into_iter()
        .filter(|e| e["action"] == action)
        .collect();
    assert_eq!(found.len(), 1, "{action} with request id {request_id}: {events:?}");
    found[0]
}

async fn mutating_requests_are_audited_with_caller_and_outcome(db: Db) {
    let gw = Gateway::start(db, "").await;
    let admin = common::key_id_of(&gw.admin_token);
    let created = request(
        &gw,
        Method::POST,
        "/v1/keys",
        &gw.admin_token,
        Some(json!({"name": "audited", "scopes": ["projects:read"]})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let new_id = created.body["id"].as_str().unwrap().to_owned();
    let new_token = created.body["token"].as_str().unwrap().to_owned();
    let rejected = send(
        gw.request(Method::POST, "/v1/keys")
            .bearer_auth(&gw.admin_token)
            .header("x-request-id", "client-chosen-id")
            .json(&json!({"name": "bad", "scopes": ["everything"]})),
    )
    .await;
    assert_eq!(rejected.status, StatusCode::UNPROCESSABLE_ENTITY);
    let forbidden = request(
        &gw,
        Method::POST,
        "/v1/keys",
        &new_token,
        Some(json!({"name": "escalate", "scopes": ["admin"]})),
    )
    .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let item = request(
        &gw,
        Method::PUT,
        "/v1/projects/demo/claude/commands/audited",
        &gw.admin_token,
        Some(json!({"content": "hello"})),
    )
    .await;
    assert_eq!(item.status, StatusCode::CREATED);
    let revoked = request(
        &gw,
        Method::DELETE,
        &format!("/v1/keys/{new_id}"),
        &gw.admin_token,
        None,
    )
    .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);

    let mut get_ids = Vec::new();
    for path in [
        "/v1/keys",
        "/v1/projects",
        "/v1/projects/demo/claude/commands/audited",
        "/v1/audit",
    ] {
        let reply = request(&gw, Method::GET, path, &gw.admin_token, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        get_ids.push(reply.header("x-request-id").to_owned());
    }

    let events = all_events(&gw).await;
    let expected = [
        (&created, "POST /v1/keys", "/v1/keys".to_owned(), "201", &admin),
        (&rejected, "POST /v1/keys", "/v1/keys".to_owned(), "422", &admin),
        (&forbidden, "POST /v1/keys", "/v1/keys".to_owned(), "403", &new_id),
        (
            &item,
            "PUT /v1/projects/{project}/claude/{type}/{name}",
            "/v1/projects/demo/claude/commands/audited".to_owned(),
            "201",
            &admin,
        ),
        (
            &revoked,
            "DELETE /v1/keys/{id}",
            format!("/v1/keys/{new_id}"),
            "204",
            &admin,
        ),
    ];
    for (reply, action, target, outcome, key_id) in expected {
        let event = request_event(&events, reply, action);
        assert_eq!(event["target"], target.as_str(), "{event}");
        assert_eq!(event["outcome"], outcome, "{event}");
        assert_eq!(event["key_id"], key_id.as_str(), "{event}");
        assert_eq!(event["client_ip"], "127.0.0.1", "{event}");
    }
    assert_eq!(rejected.header("x-request-id"), "client-chosen-id");
    let key_create = request_event(&events, &created, "key.create");
    assert_eq!(key_create["target"], new_id.as_str());

    for id in &get_ids {
        assert!(with_request_id(&events, id).is_empty(), "a GET was audited: {id}");
    }
    assert!(
        !events.iter().any(|e| e["action"].as_str().unwrap().starts_with("GET ")),
        "{events:?}"
    );
}

async fn command_lifecycle_is_audited_in_order(db: Db) {
    let gw = Gateway::start(db, "").await;
    let admin = common::key_id_of(&gw.admin_token);
    for (script, ending) in [("echo fine", "command.succeeded"), ("exit 4", "command.failed")] {
        let reply = request(
            &gw,
            Method::POST,
            "/v1/projects/demo/commands",
            &gw.admin_token,
            Some(json!({"kind": "shell", "script": script})),
        )
        .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
        let id = reply.body["id"].as_str().unwrap().to_owned();
        gw.wait_done(&id).await;
        let mut events = gw.audit(&format!("target={id}")).await;
        events.reverse();
        let actions: Vec<&str> = events.iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(actions, ["command.accepted", "command.started", ending], "{events:?}");
        let outcomes: Vec<&str> = events.iter().map(|e| e["outcome"].as_str().unwrap()).collect();
        assert_eq!(outcomes, ["queued", "running", &ending["command.".len()..]]);
        let ids = ids(&events);
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert_eq!(events[0]["key_id"], admin.as_str());
        assert_eq!(events[0]["request_id"], reply.header("x-request-id"));
        assert!(events.iter().all(|e| e["target"] == id.as_str()));
        let posted = request_event(&all_events(&gw).await, &reply, "POST /v1/projects/{project}/commands").clone();
        assert_eq!(posted["outcome"], "202");
        assert_eq!(posted["target"], "/v1/projects/demo/commands");
    }
}

/// Asserts that `query` returns exactly the events of the full log that satisfy `keep`, and some.
async fn assert_filter(gw: &Gateway, all: &[Value], query: &str, keep: impl Fn(&Value) -> bool) {
    let expected: Vec<i64> = ids(&all.iter().filter(|e| keep(e)).cloned().collect::<Vec<_>>());
    assert!(!expected.is_empty(), "{query} selects nothing to compare with");
    let got = ids(&gw.audit(&format!("{query}&limit=500")).await);
    assert_eq!(got, expected, "{query}");
}

async fn audit_filters_select_matching_events(db: Db) {
    let gw = Gateway::start(db, "").await;
    let (runner_id, runner) = gw
        .key(json!({"name": "runner", "scopes": ["commands:run", "commands:read"]}))
        .await;
    let mut commands = Vec::new();
    for script in ["echo one", "echo two"] {
        let reply = request(
            &gw,
            Method::POST,
            "/v1/projects/demo/commands",
            &runner,
            Some(json!({"kind": "shell", "script": script})),
        )
        .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED);
        let id = reply.body["id"].as_str().unwrap().to_owned();
        gw.wait_done(&id).await;
        commands.push(id);
    }
    gw.key(json!({"name": "other", "scopes": ["projects:read"]})).await;
    let all = all_events(&gw).await;

    assert_filter(&gw, &all, &format!("key_id={runner_id}"), |e| {
        e["key_id"] == runner_id.as_str()
    })
    .await;
    assert_filter(&gw, &all, "action=POST%20/v1/keys", |e| e["action"] == "POST /v1/keys").await;
    assert_filter(&gw, &all, "action=command.started", |e| {
        e["action"] == "command.started"
    })
    .await;
    assert_filter(&gw, &all, &format!("target={}", commands[0]), |e| {
        e["target"] == commands[0].as_str()
    })
    .await;
    assert_filter(&gw, &all, &format!("key_id={runner_id}&action=command.accepted"), |e| {
        e["key_id"] == runner_id.as_str() && e["action"] == "command.accepted"
    })
    .await;
    let (status, none) = gw.get("/v1/audit?key_id=key_0000000000000000").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(none["events"], json!([]));

    let times: BTreeSet<OffsetDateTime> = all.iter().map(at_of).collect();
    let times: Vec<OffsetDateTime> = times.into_iter().collect();
    assert!(times.len() >= 3, "events should span several instants: {all:?}");
    let (low, high) = (times[1], times[times.len() - 1]);
    let text = |t: OffsetDateTime| t.format(&Rfc3339).unwrap();
    assert_filter(&gw, &all, &format!("since={}", text(low)), |e| at_of(e) >= low).await;
    assert_filter(&gw, &all, &format!("until={}", text(low)), |e| at_of(e) < low).await;
    assert_filter(&gw, &all, &format!("since={}&until={}", text(low), text(high)), |e| {
        at_of(e) >= low && at_of(e) < high
    })
    .await;
}

async fn pagination_walks_every_event_exactly_once(db: Db) {
    let gw = Gateway::start(db, "").await;
    for i in 0..6 {
        gw.key(json!({"name": format!("k{i}"), "scopes": ["projects:read"]}))
            .await;
        let (status, _) = gw.post("/v1/keys", json!({"name": "bad", "scopes": []})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let all = ids(&all_events(&gw).await);
    assert!(all.len() >= 18, "{all:?}");
    let mut walked = Vec::new();
    let mut cursor: Option<i64> = None;
    let mut pages = 0;
    loop {
        let query = match cursor {
            Some(before) => format!("/v1/audit?limit=5&before={before}"),
            None => "/v1/audit?limit=5".to_owned(),
        };
        let (status, page) = gw.get(&query).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let events = page["events"].as_array().unwrap();
        assert!(events.len() <= 5);
        walked.extend(ids(events));
        pages += 1;
        assert!(pages <= all.len(), "pagination does not end");
        match page["next_cursor"].as_i64() {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(walked, all, "pages must cover every event once, newest first");
    assert!(pages >= 4);
}

async fn reading_the_audit_log_needs_audit_read(db: Db) {
    let gw = Gateway::start(db, "").await;
    let others = ["projects:read", "commands:run", "commands:read", "config:write"];
    let (_, without) = gw.key(json!({"name": "no-audit", "scopes": others})).await;
    let (_, with) = gw.key(json!({"name": "auditor", "scopes": ["audit:read"]})).await;
    let (status, body) = gw.call(Method::GET, "/v1/audit", &without, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, body) = gw.call(Method::GET, "/v1/audit", &with, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!body["events"].as_array().unwrap().is_empty());
}

async fn no_token_appears_in_the_audit_log(db: Db) {
    let gw = Gateway::start(db, "").await;
    let mut tokens = vec![gw.admin_token.clone()];
    for i in 0..3 {
        let (id, token) = gw
            .key(json!({"name": format!("k{i}"), "scopes": ["projects:read", "commands:run", "config:write"]}))
            .await;
        let reply = request(
            &gw,
            Method::PUT,
            "/v1/projects/demo/claude/agents/a",
            &token,
            Some(json!({"content": "x"})),
        )
        .await;
        assert!(reply.status.is_success(), "{}", reply.body);
        let escalate = json!({"name": "x", "scopes": ["admin"]});
        let reply = request(&gw, Method::POST, "/v1/keys", &token, Some(escalate)).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        let incomplete = json!({"kind": "shell"});
        let reply = request(
            &gw,
            Method::POST,
            "/v1/projects/demo/commands",
            &token,
            Some(incomplete),
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.body);
        let (status, _) = gw
            .call(Method::DELETE, &format!("/v1/keys/{id}"), &gw.admin_token, None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        tokens.push(token);
    }
    let raw = send(
        gw.request(Method::GET, "/v1/audit?limit=500")
            .bearer_auth(&gw.admin_token),
    )
    .await;
    assert_eq!(raw.status, StatusCode::OK);
    let text = raw.body.to_string();
    assert!(raw.body["events"].as_array().unwrap().len() >= 10, "{text}");
    for token in &tokens {
        let secret = token.rsplit_once('_').unwrap().1;
        assert!(!text.contains(token.as_str()), "a token is in the audit log");
        assert!(!text.contains(secret), "a token's secret is in the audit log");
    }
}

crate::on_both_databases!(
    mutating_requests_are_audited_with_caller_and_outcome,
    command_lifecycle_is_audited_in_order,
    audit_filters_select_matching_events,
    pagination_walks_every_event_exactly_once,
    reading_the_audit_log_needs_audit_read,
    no_token_appears_in_the_audit_log,
);
