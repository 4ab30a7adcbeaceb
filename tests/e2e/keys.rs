//! API keys: creation (token shown once), listing without secrets, revocation, expiry, validation,
//! admin-only management, the `rdev keys create` CLI, and refusal of missing or malformed credentials.

use std::process::Command;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::common::{self, Db, Gateway, send, wait_until};

fn rfc3339_in(seconds: i64) -> String {
    (OffsetDateTime::now_utc() + time::Duration::seconds(seconds))
        .format(&Rfc3339)
        .unwrap()
}

/// Every object key anywhere in a JSON value.
fn field_names(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                field_names(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| field_names(v, out)),
        _ => {}
    }
}

async fn key_ids(gw: &Gateway) -> Vec<String> {
    let (status, list) = gw.get("/v1/keys").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_no_secret(value: &Value, token: &str) {
    let mut names = Vec::new();
    field_names(value, &mut names);
    assert!(
        !names.iter().any(|n| n.contains("token") || n.contains("hash")),
        "secret field in {value}"
    );
    let secret = token.rsplit_once('_').unwrap().1;
    assert!(!value.to_string().contains(secret), "token in {value}");
}

async fn created_key_token_is_shown_once_and_works_until_revoked(db: Db) {
    let gw = Gateway::start(db, "").await;
    let (status, created) = gw
        .post("/v1/keys", json!({"name": "reader", "scopes": ["projects:read"]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(token.starts_with("rdev_"), "{token}");
    assert_eq!(created["name"], "reader");
    assert_eq!(created["scopes"], json!(["projects:read"]));
    assert_eq!(created["revoked_at"], Value::Null);

    let (status, list) = gw.get("/v1/keys").await;
    assert_eq!(status, StatusCode::OK);
    assert!(list["keys"].as_array().unwrap().iter().any(|k| k["id"] == id), "{list}");
    assert_no_secret(&list, &token);
    assert_no_secret(&list, &gw.admin_token);
    let (status, one) = gw.get(&format!("/v1/keys/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["name"], "reader");
    assert_no_secret(&one, &token);

    let (status, projects) = gw.call(Method::GET, "/v1/projects", &token, None).await;
    assert_eq!(status, StatusCode::OK, "{projects}");

    let (status, body) = gw
        .call(Method::DELETE, &format!("/v1/keys/{id}"), &gw.admin_token, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = gw.call(Method::GET, "/v1/projects", &token, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");
    let (_, one) = gw.get(&format!("/v1/keys/{id}")).await;
    assert!(one["revoked_at"].is_string(), "{one}");
}

async fn unknown_key_id_is_not_found(db: Db) {
    let gw = Gateway::start(db, "").await;
    for method in [Method::GET, Method::DELETE] {
        let (status, body) = gw
            .call(method.clone(), "/v1/keys/key_0000000000000000", &gw.admin_token, None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
}

async fn non_admin_key_cannot_manage_keys(db: Db) {
    let gw = Gateway::start(db, "").await;
    let scopes = [
        "projects:read",
        "commands:run",
        "commands:read",
        "config:write",
        "audit:read",
    ];
    let (id, token) = gw.key(json!({"name": "almost", "scopes": scopes})).await;
    let before = key_ids(&gw).await;
    let calls = [
        (
            Method::POST,
            "/v1/keys".to_owned(),
            Some(json!({"name": "x", "scopes": ["admin"]})),
        ),
        (Method::GET, "/v1/keys".to_owned(), None),
        (Method::GET, format!("/v1/keys/{id}"), None),
        (Method::DELETE, format!("/v1/keys/{id}"), None),
    ];
    for (method, path, body) in calls {
        let (status, answer) = gw.call(method.clone(), &path, &token, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
        assert_eq!(answer["error"]["code"], "forbidden");
    }
    assert_eq!(before, key_ids(&gw).await, "a refused request changed the keys");
    let (_, key) = gw.get(&format!("/v1/keys/{id}")).await;
    assert_eq!(key["revoked_at"], Value::Null, "{key}");
}

async fn key_stops_working_after_it_expires(db: Db) {
    let gw = Gateway::start(db, "").await;
    let expires_at = rfc3339_in(3);
    let (_, token) = gw
        .key(json!({"name": "brief", "scopes": ["projects:read"], "expires_at": expires_at}))
        .await;
    let (status, body) = gw.call(Method::GET, "/v1/projects", &token, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    wait_until(Duration::from_secs(15), || async {
        gw.call(Method::GET, "/v1/projects", &token, None).await.0 == StatusCode::UNAUTHORIZED
    })
    .await;
    let (_, body) = gw.call(Method::GET, "/v1/projects", &token, None).await;
    assert_eq!(body["error"]["code"], "unauthorized");
}

async fn invalid_key_requests_are_rejected_with_422(db: Db) {
    let gw = Gateway::start(db, "").await;
    let before = key_ids(&gw).await;
    let bodies = [
        json!({"name": "past", "scopes": ["projects:read"], "expires_at": rfc3339_in(-60)}),
        json!({"name": "words", "scopes": ["projects:read"], "expires_at": "tomorrow"}),
        json!({"name": "date", "scopes": ["projects:read"], "expires_at": "2099-01-01"}),
        json!({"name": "scope", "scopes": ["projects:delete"]}),
        json!({"name": "none", "scopes": []}),
        json!({"name": "", "scopes": ["projects:read"]}),
    ];
    for body in bodies {
        let (status, answer) = gw.post("/v1/keys", body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_request", "{answer}");
        assert!(!answer["error"]["request_id"].as_str().unwrap().is_empty());
    }
    assert_eq!(before, key_ids(&gw).await, "a rejected request created a key");
}

async fn cli_prints_only_a_token_that_works_against_the_running_gateway(db: Db) {
    let gw = Gateway::start(db, "").await;
    let output = Command::new(common::binary())
        .arg("--config")
        .arg(gw.config_file())
        .args(["keys", "create", "--name", "x", "--scope", "projects:read"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "stdout: {stdout:?}");
    let token = lines[0];
    assert!(token.starts_with("rdev_"), "{token}");
    assert_eq!(token.trim(), token);
    let (status, body) = gw.call(Method::GET, "/v1/projects", token, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = gw.call(Method::GET, "/v1/keys", token, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a projects:read key is not an admin");
    let (_, list) = gw.get("/v1/keys").await;
    let id = common::key_id_of(token);
    let key = list["keys"].as_array().unwrap().iter().find(|k| k["id"] == id.as_str());
    assert_eq!(key.unwrap()["scopes"], json!(["projects:read"]), "{list}");
}

async fn missing_or_malformed_authorization_gets_401_with_challenge(db: Db) {
    let gw = Gateway::start(db, "").await;
    let (_, token) = gw.key(json!({"name": "real", "scopes": ["projects:read"]})).await;
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('0') { '1' } else { '0' });
    let headers = [
        None,
        Some("".to_owned()),
        Some("Bearer".to_owned()),
        Some("Bearer ".to_owned()),
        Some("Basic dXNlcjpwYXNz".to_owned()),
        Some(format!("Token {token}")),
        Some("Bearer not-a-token".to_owned()),
        Some("Bearer rdev_key_0011223344556677_".to_owned() + &"a".repeat(64)),
        Some(format!("Bearer {tampered}")),
    ];
    for header in headers {
        let mut req = gw.request(Method::GET, "/v1/projects");
        if let Some(value) = &header {
            req = req.header("authorization", value);
        }
        let reply = send(req).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{header:?}: {:?}", reply.body);
        assert_eq!(reply.header("www-authenticate"), "Bearer", "{header:?}");
        assert_eq!(reply.body["error"]["code"], "unauthorized", "{header:?}");
        assert!(!reply.body.to_string().contains(&token));
    }
}

async fn the_key_hash_secret_file_can_be_shared(db: Db) {
    let shared = tempfile::tempdir().unwrap();
    let file = shared.path().join("shared.secret");
    let gw = Gateway::start(db, &format!("[auth]\nkey_hash_secret_file = {file:?}\n")).await;
    assert_eq!(
        std::fs::read(&file).unwrap().len(),
        32,
        "the secret is created where configured"
    );
    assert!(!gw.dir.join("data/key-hash.secret").exists());
    let (status, _) = gw.get("/v1/projects").await;
    assert_eq!(status, StatusCode::OK);
}

crate::on_both_databases!(
    created_key_token_is_shown_once_and_works_until_revoked,
    unknown_key_id_is_not_found,
    non_admin_key_cannot_manage_keys,
    key_stops_working_after_it_expires,
    invalid_key_requests_are_rejected_with_422,
    cli_prints_only_a_token_that_works_against_the_running_gateway,
    missing_or_malformed_authorization_gets_401_with_challenge,
    the_key_hash_secret_file_can_be_shared,
);
