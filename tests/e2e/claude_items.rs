//! Claude configuration items (`.claude/{commands,skills,agents}/<name>.md`): create, replace,
//! read, list and delete on disk; refusal of unknown types, unsafe names, symlinked directories
//! and keys without `config:write`. The size limit is in the shared backend suite
//! (`backends.rs`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{Db, Gateway};

/// Every path under `root`, recursively (symbolic links are not followed).
fn tree(root: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            if std::fs::symlink_metadata(&path).unwrap().is_dir() {
                pending.push(path.clone());
            }
            out.insert(path);
        }
    }
    out
}

/// Sends a request with the path exactly as given (no client-side normalisation of `..`) and
/// returns the status and JSON body.
async fn raw_request(gw: &Gateway, method: &str, path: &str, body: &str) -> (StatusCode, Value) {
    let addr = gw.url.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        gw.admin_token,
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.split(' ').nth(1).unwrap().parse::<u16>().unwrap();
    let (_, body) = response.split_once("\r\n\r\n").unwrap();
    let json = body
        .find('{')
        .and_then(|start| {
            let mut values = serde_json::Deserializer::from_str(&body[start..]).into_iter::<Value>();
            values.next().and_then(Result::ok)
        })
        .unwrap_or(Value::String(body.to_owned()));
    (StatusCode::from_u16(status).unwrap(), json)
}

async fn items_are_created_replaced_read_listed_and_deleted_on_disk(db: Db) {
    let gw = Gateway::start(db, "").await;
    for kind in ["commands", "skills", "agents"] {
        let path = format!("/v1/projects/demo/claude/{kind}/review");
        let file = gw.workspaces().join(format!("demo/.claude/{kind}/review.md"));

        let (status, created) = gw
            .call(
                Method::PUT,
                &path,
                &gw.admin_token,
                Some(json!({"content": "# first\n"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{kind}: {created}");
        assert_eq!(created["name"], "review");
        assert_eq!(created["type"], kind);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "# first\n");

        let replacement = "# second\n\nLonger content.\n";
        let (status, replaced) = gw
            .call(
                Method::PUT,
                &path,
                &gw.admin_token,
                Some(json!({"content": replacement})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{kind}: {replaced}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), replacement);

        let (status, item) = gw.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{item}");
        assert_eq!(item["content"], replacement);
        assert_eq!(item["type"], kind);

        let (status, list) = gw.get(&format!("/v1/projects/demo/claude/{kind}")).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{list}");
        assert_eq!(items[0]["name"], "review");
        assert_eq!(items[0]["size"], replacement.len());

        let (status, body) = gw.call(Method::DELETE, &path, &gw.admin_token, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        assert!(!file.exists());
        let (status, body) = gw.call(Method::DELETE, &path, &gw.admin_token, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["error"]["code"], "not_found");
        let (status, _) = gw.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, list) = gw.get(&format!("/v1/projects/demo/claude/{kind}")).await;
        assert_eq!(list["items"], json!([]));
    }
}

async fn unknown_item_type_is_not_found(db: Db) {
    let gw = Gateway::start(db, "").await;
    let before = tree(&gw.workspaces());
    for (method, path, body) in [
        (Method::GET, "/v1/projects/demo/claude/widgets", None),
        (Method::GET, "/v1/projects/demo/claude/widgets/x", None),
        (
            Method::PUT,
            "/v1/projects/demo/claude/widgets/x",
            Some(json!({"content": "x"})),
        ),
        (Method::DELETE, "/v1/projects/demo/claude/widgets/x", None),
    ] {
        let (status, answer) = gw.call(method.clone(), path, &gw.admin_token, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
        assert_eq!(answer["error"]["code"], "not_found");
    }
    assert_eq!(tree(&gw.workspaces()), before);
}

async fn unsafe_item_names_are_refused_and_nothing_is_written(db: Db) {
    let gw = Gateway::start(db, "").await;
    let before = tree(&gw.dir);
    let body = json!({"content": "pwned"}).to_string();
    let long = "n".repeat(65);
    let names = [
        ".hidden",
        "..",
        "%2E%2E",
        ".%2E",
        "a..b",
        "..%2F..%2Fescape",
        "a%2Fb",
        "-leading-dash",
        "sp%20ace",
        long.as_str(),
    ];
    for name in names {
        for kind in ["commands", "skills", "agents"] {
            let path = format!("/v1/projects/demo/claude/{kind}/{name}");
            for method in ["PUT", "GET", "DELETE"] {
                let (status, answer) = raw_request(&gw, method, &path, &body).await;
                assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path}: {answer}");
                assert_eq!(answer["error"]["code"], "invalid_name", "{method} {path}: {answer}");
            }
        }
    }
    let (status, _) = raw_request(
        &gw,
        "PUT",
        &format!("/v1/projects/demo/claude/commands/{}", &long[1..]),
        &body,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "64 characters is the longest valid name");
    let after: BTreeSet<PathBuf> = tree(&gw.dir)
        .into_iter()
        .filter(|p| !p.starts_with(gw.dir.join("data")))
        .collect();
    let before: BTreeSet<PathBuf> = before
        .into_iter()
        .filter(|p| !p.starts_with(gw.dir.join("data")))
        .collect();
    let claude = gw.workspaces().join("demo/.claude");
    let expected: BTreeSet<PathBuf> = [
        claude.clone(),
        claude.join("commands"),
        claude.join(format!("commands/{}.md", &long[1..])),
    ]
    .into_iter()
    .chain(before)
    .collect();
    assert_eq!(after, expected, "only the valid item may have been written");
}

async fn symlinked_claude_directory_is_refused(db: Db) {
    let gw = Gateway::start(db, "").await;
    let outside = gw.dir.join("outside");
    std::fs::create_dir_all(outside.join("commands")).unwrap();
    let demo = gw.workspaces().join("demo");
    std::os::unix::fs::symlink(&outside, demo.join(".claude")).unwrap();
    let item = json!({"content": "escaped"});
    let put = gw
        .call(
            Method::PUT,
            "/v1/projects/demo/claude/commands/evil",
            &gw.admin_token,
            Some(item.clone()),
        )
        .await;
    assert_eq!(put.0, StatusCode::CONFLICT, "{}", put.1);
    assert_eq!(put.1["error"]["code"], "unsafe_workspace");
    let (status, _) = gw.get("/v1/projects/demo/claude/commands").await;
    assert_eq!(status, StatusCode::CONFLICT);
    let put = gw
        .call(
            Method::PUT,
            "/v1/projects/demo/claude/agents/evil",
            &gw.admin_token,
            Some(item.clone()),
        )
        .await;
    assert_eq!(put.0, StatusCode::CONFLICT, "{}", put.1);

    std::fs::remove_file(demo.join(".claude")).unwrap();
    std::fs::create_dir(demo.join(".claude")).unwrap();
    std::os::unix::fs::symlink(outside.join("commands"), demo.join(".claude/commands")).unwrap();
    let put = gw
        .call(
            Method::PUT,
            "/v1/projects/demo/claude/commands/evil",
            &gw.admin_token,
            Some(item),
        )
        .await;
    assert_eq!(put.0, StatusCode::CONFLICT, "{}", put.1);
    assert_eq!(
        tree(&outside),
        BTreeSet::from([outside.join("commands")]),
        "nothing may be written outside the workspace"
    );
}

async fn writing_items_needs_config_write(db: Db) {
    let gw = Gateway::start(db, "").await;
    let path = "/v1/projects/demo/claude/commands/keep";
    let (status, _) = gw
        .call(Method::PUT, path, &gw.admin_token, Some(json!({"content": "kept"})))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, reader) = gw.key(json!({"name": "reader", "scopes": ["projects:read"]})).await;
    let (status, item) = gw.call(Method::GET, path, &reader, None).await;
    assert_eq!(status, StatusCode::OK, "projects:read may read items: {item}");
    for (method, path, body) in [
        (Method::PUT, path, Some(json!({"content": "overwritten"}))),
        (
            Method::PUT,
            "/v1/projects/demo/claude/commands/new",
            Some(json!({"content": "new"})),
        ),
        (Method::DELETE, path, None),
    ] {
        let (status, answer) = gw.call(method.clone(), path, &reader, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
        assert_eq!(answer["error"]["code"], "forbidden");
    }
    let commands = gw.workspaces().join("demo/.claude/commands");
    assert_eq!(std::fs::read_to_string(commands.join("keep.md")).unwrap(), "kept");
    assert!(!commands.join("new.md").exists());
}

crate::on_both_databases!(
    items_are_created_replaced_read_listed_and_deleted_on_disk,
    unknown_item_type_is_not_found,
    unsafe_item_names_are_refused_and_nothing_is_written,
    symlinked_claude_directory_is_refused,
    writing_items_needs_config_write,
);
