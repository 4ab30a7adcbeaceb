//! Authorization: project allowlists hide other projects entirely (404), client networks are
//! enforced (X-Forwarded-For only from trusted proxies), and scopes gate each operation (403).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Db, Gateway, send};

const ALL_BUT_ADMIN: [&str; 5] = [
    "projects:read",
    "commands:run",
    "commands:read",
    "config:write",
    "audit:read",
];

fn assert_not_found(status: StatusCode, body: &Value, what: &str) {
    assert_eq!(status, StatusCode::NOT_FOUND, "{what}: {body}");
    assert_eq!(body["error"]["code"], "not_found", "{what}: {body}");
}

async fn key_limited_to_a_project_gets_404_for_another(db: Db) {
    let gw = Gateway::start(db, "").await;
    gw.project("a");
    gw.project("b");
    gw.wait_for_project("a").await;
    gw.wait_for_project("b").await;
    let in_b = gw.shell("b", "echo secret-b").await;
    gw.wait_done(&in_b).await;
    let running_in_b = gw.shell("b", "sleep 30").await;
    let (_, token) = gw
        .key(json!({"name": "only-a", "scopes": ALL_BUT_ADMIN, "projects": ["a"]}))
        .await;

    let (status, list) = gw.call(Method::GET, "/v1/projects", &token, None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let names: Vec<&str> = list["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a"]);
    let (status, body) = gw.call(Method::GET, "/v1/projects/a", &token, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let shell = json!({"kind": "shell", "script": "echo sneaky > sneaky.txt"});
    let item = json!({"content": "x"});
    let calls = [
        (Method::GET, "/v1/projects/b".to_owned(), None),
        (Method::POST, "/v1/projects/b/commands".to_owned(), Some(shell)),
        (Method::GET, "/v1/projects/b/commands".to_owned(), None),
        (Method::GET, format!("/v1/commands/{in_b}"), None),
        (Method::GET, format!("/v1/commands/{in_b}/stream"), None),
        (Method::POST, format!("/v1/commands/{running_in_b}/cancel"), None),
        (Method::GET, "/v1/projects/b/claude/commands".to_owned(), None),
        (Method::GET, "/v1/projects/b/claude/commands/x".to_owned(), None),
        (Method::PUT, "/v1/projects/b/claude/commands/x".to_owned(), Some(item)),
        (Method::DELETE, "/v1/projects/b/claude/commands/x".to_owned(), None),
    ];
    for (method, path, body) in calls {
        let (status, answer) = gw.call(method.clone(), &path, &token, body).await;
        assert_not_found(status, &answer, &format!("{method} {path}"));
    }

    let (_, listed) = gw.get("/v1/projects/b/commands").await;
    assert_eq!(listed["commands"].as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(gw.command(&running_in_b).await["state"], "running");
    assert!(!gw.workspaces().join("b/sneaky.txt").exists());
    assert!(!gw.workspaces().join("b/.claude").exists());
    let (status, body) = gw
        .call(
            Method::POST,
            &format!("/v1/commands/{running_in_b}/cancel"),
            &gw.admin_token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn allowed_cidrs_are_enforced_on_the_peer_address(db: Db) {
    let gw = Gateway::start(db, "").await;
    let (_, elsewhere) = gw
        .key(json!({"name": "ten", "scopes": ["projects:read"], "allowed_cidrs": ["10.0.0.0/8"]}))
        .await;
    let (_, local) = gw
        .key(json!({"name": "loopback", "scopes": ["projects:read"], "allowed_cidrs": ["127.0.0.0/8"]}))
        .await;
    let (status, body) = gw.call(Method::GET, "/v1/projects", &elsewhere, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, body) = gw.call(Method::GET, "/v1/projects", &local, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let forwarded = send(
        gw.request(Method::GET, "/v1/projects")
            .bearer_auth(&elsewhere)
            .header("x-forwarded-for", "10.1.2.3"),
    )
    .await;
    assert_eq!(
        forwarded.status,
        StatusCode::FORBIDDEN,
        "X-Forwarded-For from an untrusted peer must be ignored: {:?}",
        forwarded.body
    );
}

async fn forwarded_for_is_believed_from_a_trusted_proxy(db: Db) {
    let gw = Gateway::start(db, "[auth]\ntrusted_proxies = [\"127.0.0.1/32\"]\n").await;
    let (id, token) = gw
        .key(json!({"name": "ten", "scopes": ["projects:read", "commands:run"], "allowed_cidrs": ["10.0.0.0/8"]}))
        .await;
    let reply = send(
        gw.request(Method::GET, "/v1/projects")
            .bearer_auth(&token)
            .header("x-forwarded-for", "10.1.2.3"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let (status, _) = gw.call(Method::GET, "/v1/projects", &token, None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "without the header the peer 127.0.0.1 is the client"
    );
    let outside = send(
        gw.request(Method::GET, "/v1/projects")
            .bearer_auth(&token)
            .header("x-forwarded-for", "192.0.2.7"),
    )
    .await;
    assert_eq!(outside.status, StatusCode::FORBIDDEN);

    let started = send(
        gw.request(Method::POST, "/v1/projects/demo/commands")
            .bearer_auth(&token)
            .header("x-forwarded-for", "10.1.2.3")
            .json(&json!({"kind": "shell", "script": "true"})),
    )
    .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{:?}", started.body);
    let events = gw
        .audit(&format!(
            "key_id={id}&action=POST%20/v1/projects/%7Bproject%7D/commands"
        ))
        .await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["client_ip"], "10.1.2.3");
}

async fn scopes_gate_each_operation(db: Db) {
    let gw = Gateway::start(db, "").await;
    let running = gw.shell("demo", "sleep 30").await;
    gw.wait_state(&running, "running").await;
    let (_, reader) = gw.key(json!({"name": "projects", "scopes": ["projects:read"]})).await;
    let (_, watcher) = gw.key(json!({"name": "watcher", "scopes": ["commands:read"]})).await;

    let (status, body) = gw.call(Method::GET, "/v1/projects/demo", &reader, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let shell = json!({"kind": "shell", "script": "touch made-by-reader"});
    let (status, body) = gw
        .call(Method::POST, "/v1/projects/demo/commands", &reader, Some(shell))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, _) = gw.call(Method::GET, "/v1/projects/demo/commands", &reader, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "projects:read does not read commands");

    let (status, body) = gw
        .call(Method::GET, &format!("/v1/commands/{running}"), &watcher, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = gw.call(Method::GET, "/v1/projects/demo/commands", &watcher, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = gw
        .call(Method::POST, &format!("/v1/commands/{running}/cancel"), &watcher, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, body) = gw.call(Method::GET, "/v1/audit", &watcher, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    assert_eq!(gw.command(&running).await["state"], "running");
    let (_, listed) = gw.get("/v1/projects/demo/commands").await;
    assert_eq!(listed["commands"].as_array().unwrap().len(), 1, "{listed}");
    assert!(!gw.workspaces().join("demo/made-by-reader").exists());
    let (status, _) = gw
        .call(
            Method::POST,
            &format!("/v1/commands/{running}/cancel"),
            &gw.admin_token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

crate::on_both_databases!(
    key_limited_to_a_project_gets_404_for_another,
    allowed_cidrs_are_enforced_on_the_peer_address,
    forwarded_for_is_believed_from_a_trusted_proxy,
    scopes_gate_each_operation,
);
