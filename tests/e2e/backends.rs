//! The behaviour every execution backend must share, run against `local` and `kubernetes`
//! (the fake API server's pods): streamed output and exit codes, git, request environment,
//! cancel and timeout killing the whole process tree, and Claude items with their rules.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::backends::{Backend, Site};
use crate::common::read_pid;
use crate::common::sse::{SseStream, output_text};
use crate::on_both_backends;

async fn output_of(site: &Site, id: &str) -> Vec<crate::common::sse::SseEvent> {
    let url = format!("{}/v1/commands/{id}/stream", site.gw.url);
    SseStream::open(&url, &site.gw.admin_token, None).await.collect().await
}

async fn run_to_end(site: &Site, project: &str, body: Value) -> (Value, String) {
    let id = site.gw.run(project, body).await["id"].as_str().unwrap().to_owned();
    let done = site.gw.wait_done(&id).await;
    (done, output_text(&output_of(site, &id).await))
}

async fn output_streams_by_kind_with_the_exit_code(backend: Backend) {
    let site = Site::start(backend, "").await;
    site.project("web").await;
    let script = "echo out; echo err >&2; printf 'no newline'; exit 3";
    let id = site.gw.shell("web", script).await;
    let done = site.gw.wait_done(&id).await;
    assert_eq!(done["state"], "failed", "{done}");
    assert_eq!(done["exit_code"], 3, "{done}");
    let events = output_of(&site, &id).await;
    let text = |stream: &str| -> String {
        let of_stream = events
            .iter()
            .filter(|e| e.event == "output" && e.data["stream"] == stream);
        of_stream.map(|e| e.data["text"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(text("stdout"), "out\nno newline");
    assert_eq!(text("stderr"), "err\n");

    let (ok, _) = run_to_end(&site, "web", json!({"kind": "shell", "script": "true"})).await;
    assert_eq!(
        (ok["state"].as_str(), ok["exit_code"].as_i64()),
        (Some("succeeded"), Some(0))
    );
}

async fn output_arrives_while_the_command_runs(backend: Backend) {
    let site = Site::start(backend, "").await;
    let workspace = site.project("web").await;
    let id = site
        .gw
        .shell(
            "web",
            "echo first; while [ ! -e release ]; do sleep 0.05; done; echo second",
        )
        .await;
    let url = format!("{}/v1/commands/{id}/stream", site.gw.url);
    let mut stream = SseStream::open(&url, &site.gw.admin_token, None).await;
    let first = loop {
        let event = stream.next().await.expect("output before the end");
        if event.event == "output" {
            break event;
        }
    };
    assert_eq!(first.data["text"], "first\n");
    assert_eq!(site.gw.command(&id).await["state"], "running");
    std::fs::write(workspace.join("release"), "").unwrap();
    let rest = stream.collect().await;
    assert_eq!(output_text(&rest), "second\n");
    assert_eq!(rest.last().unwrap().data["state"], "succeeded");
}

async fn git_runs_in_the_workspace(backend: Backend) {
    let site = Site::start(backend, "").await;
    site.project("web").await;
    let (log, text) = run_to_end(&site, "web", json!({"kind": "git", "args": ["log", "--format=%s"]})).await;
    assert_eq!(log["state"], "succeeded", "{log}");
    assert_eq!(text, "Initial commit\n");
    let (bad, text) = run_to_end(
        &site,
        "web",
        json!({"kind": "git", "args": ["checkout", "no-such-branch"]}),
    )
    .await;
    assert_eq!(bad["state"], "failed");
    assert_eq!(bad["exit_code"], 1, "{bad}");
    assert!(text.contains("no-such-branch"), "{text}");
}

async fn the_request_environment_reaches_the_command(backend: Backend) {
    let site = Site::start(backend, "").await;
    site.project("web").await;
    let body = json!({"kind": "shell", "script": "printf '%s|%s' \"$CI\" \"$PWD\"", "env": {"CI": "it's \"quoted\""}});
    let (done, text) = run_to_end(&site, "web", body).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let (ci, pwd) = text.split_once('|').unwrap();
    assert_eq!(ci, "it's \"quoted\"");
    assert!(pwd.ends_with("/web"), "{pwd}");
}

async fn cancel_kills_the_whole_process_tree(backend: Backend) {
    let site = Site::start(backend, "").await;
    let workspace = site.project("web").await;
    let script = "echo started; sh -c 'sleep 300 & echo $! > child.pid; wait' & wait; echo not-cancelled";
    let id = site.gw.shell("web", script).await;
    let pid = read_pid(&workspace.join("child.pid")).await;
    assert!(crate::common::process_alive(pid));
    let (status, cancelled) = site.gw.post(&format!("/v1/commands/{id}/cancel"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    site.wait_processes_gone("web", pid).await;
    assert_eq!(output_text(&output_of(&site, &id).await), "started\n");
}

async fn timeout_kills_the_command(backend: Backend) {
    let site = Site::start(backend, "").await;
    let workspace = site.project("web").await;
    let body = json!({"kind": "shell", "script": "echo $$ > main.pid; sleep 300", "timeout_secs": 1});
    let id = site.gw.run("web", body).await["id"].as_str().unwrap().to_owned();
    let pid = read_pid(&workspace.join("main.pid")).await;
    let done = site.gw.wait_done(&id).await;
    assert_eq!(done["state"], "timed_out", "{done}");
    assert!(done["reason"].as_str().unwrap().contains("timed out"), "{done}");
    site.wait_processes_gone("web", pid).await;
}

async fn claude_items_round_trip(backend: Backend) {
    let site = Site::start(backend, "").await;
    let workspace = site.project("web").await;
    let gw = &site.gw;
    let path = "/v1/projects/web/claude/skills/review";
    let put = |content: &'static str| gw.call(Method::PUT, path, &gw.admin_token, Some(json!({"content": content})));
    let (status, created) = put("# first\n").await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let file = workspace.join(".claude/skills/review.md");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "# first\n");
    let replacement = "# second ✓\n\n'quotes' \"and\" $(no expansion)\n";
    let (status, _) = put(replacement).await;
    assert_eq!(status, StatusCode::OK);
    let (status, empty) = gw
        .call(
            Method::PUT,
            "/v1/projects/web/claude/skills/empty",
            &gw.admin_token,
            Some(json!({"content": ""})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{empty}");
    std::fs::write(workspace.join(".claude/skills/notes.txt"), "not an item").unwrap();

    let (status, item) = gw.get(path).await;
    assert_eq!(status, StatusCode::OK, "{item}");
    assert_eq!(item["content"], replacement);
    let (_, list) = gw.get("/v1/projects/web/claude/skills").await;
    let names: Vec<_> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].clone())
        .collect();
    assert_eq!(names, [json!("empty"), json!("review")], "{list}");
    assert_eq!(list["items"][1]["size"], replacement.len());
    assert!(list["items"][1]["modified_at"].as_str().is_some(), "{list}");
    let (_, agents) = gw.get("/v1/projects/web/claude/agents").await;
    assert_eq!(agents["items"], json!([]));

    let (status, _) = gw.call(Method::DELETE, path, &gw.admin_token, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!file.exists());
    for (method, body) in [(Method::DELETE, None), (Method::GET, None)] {
        let (status, answer) = gw.call(method, path, &gw.admin_token, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
        assert_eq!(answer["error"]["code"], "not_found");
    }
}

async fn claude_items_never_follow_symlinks(backend: Backend) {
    let site = Site::start(backend, "").await;
    let workspace = site.project("web").await;
    let outside = site.gw.dir.join("outside");
    std::fs::create_dir_all(outside.join("commands")).unwrap();
    std::os::unix::fs::symlink(&outside, workspace.join(".claude")).unwrap();
    let gw = &site.gw;
    let put = gw
        .call(
            Method::PUT,
            "/v1/projects/web/claude/commands/evil",
            &gw.admin_token,
            Some(json!({"content": "x"})),
        )
        .await;
    assert_eq!(put.0, StatusCode::CONFLICT, "{}", put.1);
    assert_eq!(put.1["error"]["code"], "unsafe_workspace");
    assert!(
        put.1["error"]["message"].as_str().unwrap().contains(".claude"),
        "{}",
        put.1
    );
    let (status, _) = gw.get("/v1/projects/web/claude/commands").await;
    assert_eq!(status, StatusCode::CONFLICT);

    std::fs::remove_file(workspace.join(".claude")).unwrap();
    std::fs::create_dir_all(workspace.join(".claude/commands")).unwrap();
    std::fs::write(outside.join("secret.md"), "secret").unwrap();
    std::os::unix::fs::symlink(outside.join("secret.md"), workspace.join(".claude/commands/leak.md")).unwrap();
    let (status, answer) = gw.get("/v1/projects/web/claude/commands/leak").await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    let (_, list) = gw.get("/v1/projects/web/claude/commands").await;
    assert_eq!(list["items"], json!([]), "a linked file is not an item");
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        2,
        "nothing written outside"
    );
}

async fn claude_items_are_checked_before_the_backend_sees_them(backend: Backend) {
    let site = Site::start(backend, "max_body_bytes = 1048576\n").await;
    let workspace = site.project("web").await;
    let gw = &site.gw;
    let execs_before = site.cluster.as_ref().map(|c| c.execs().len());
    for name in [".hidden", "a..b", "-dash", "a%2Fb", &"n".repeat(65)] {
        let path = format!("/v1/projects/web/claude/commands/{name}");
        let (status, answer) = gw
            .call(Method::PUT, &path, &gw.admin_token, Some(json!({"content": "x"})))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_name");
    }
    let limit = 256 * 1024;
    let path = "/v1/projects/web/claude/skills/huge";
    let (status, answer) = gw
        .call(
            Method::PUT,
            path,
            &gw.admin_token,
            Some(json!({"content": "z".repeat(limit + 1)})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(
        site.cluster.as_ref().map(|c| c.execs().len()),
        execs_before,
        "no exec for refused input"
    );
    assert!(!workspace.join(".claude").exists());
    let (status, answer) = gw
        .call(
            Method::PUT,
            path,
            &gw.admin_token,
            Some(json!({"content": "z".repeat(limit)})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "exactly 256 KiB is allowed: {answer}");
    assert_eq!(
        std::fs::metadata(workspace.join(".claude/skills/huge.md"))
            .unwrap()
            .len(),
        limit as u64
    );
}

async fn projects_carry_their_workspace(backend: Backend) {
    let site = Site::start(backend, "").await;
    site.project("web").await;
    let (status, project) = site.gw.get("/v1/projects/web").await;
    assert_eq!(status, StatusCode::OK, "{project}");
    assert_eq!(project["name"], "web");
    let expected = match backend {
        Backend::Local => json!({"backend": "local", "pod": null}),
        Backend::Kubernetes => json!({"backend": "kubernetes", "pod": "web-0"}),
    };
    assert_eq!(
        (&project["backend"], &project["pod"]),
        (&expected["backend"], &expected["pod"]),
        "{project}"
    );
    let (_, list) = site.gw.get("/v1/projects").await;
    assert!(
        list["projects"].as_array().unwrap().iter().any(|p| p["name"] == "web"),
        "{list}"
    );
}

on_both_backends!(
    output_streams_by_kind_with_the_exit_code,
    output_arrives_while_the_command_runs,
    git_runs_in_the_workspace,
    the_request_environment_reaches_the_command,
    cancel_kills_the_whole_process_tree,
    timeout_kills_the_command,
    claude_items_round_trip,
    claude_items_never_follow_symlinks,
    claude_items_are_checked_before_the_backend_sees_them,
    projects_carry_their_workspace,
);
