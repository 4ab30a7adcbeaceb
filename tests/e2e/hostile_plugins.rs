//! Hostile plugins: each one misbehaves in its own project, and the gateway must stay up, refuse
//! (fail closed, naming the plugin) and keep serving everything else.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::plugins::{default_plugin, sanitizer, test_plugin};
use crate::common::{Db, Gateway, send};

/// One gateway with every hostile plugin confined to a project of its own, behind the default
/// shell sanitizer (so a smuggled rewrite meets it again).
async fn gateway() -> Gateway {
    let hostile = [
        ("endless-loop", "endless_loop", ""),
        ("out-of-fuel", "endless_loop", "fuel = 1000000\ndeadline_ms = 5000"),
        ("memory-bomb", "memory_bomb", "deadline_ms = 5000"),
        ("trap-in-call", "trap_in_call", ""),
        ("trap-in-configure", "trap_in_configure", ""),
        ("wrong-world", "wrong_world", ""),
        ("huge-deny", "huge_output", "deadline_ms = 5000"),
        (
            "huge-rewrite",
            "huge_output",
            "config = { mode = \"rewrite\" }\ndeadline_ms = 5000",
        ),
        ("smuggling-rewrite", "smuggling_rewrite", ""),
        ("failing-self-test", "failing_self_test", ""),
        ("deny-configure", "deny_configure", "config = { reject = true }"),
        ("sleeper", "sleeper", ""),
    ];
    let mut config = String::from("plugins_dir = \"/nonexistent\"\n");
    config += &sanitizer("shell-sanitizer", &default_plugin("shell_sanitizer"), "order = -1");
    for (name, file, extra) in hostile {
        config += &sanitizer(name, &test_plugin(file), &format!("projects = [{name:?}]\n{extra}"));
    }
    let gw = Gateway::start_with_plugins(Db::Sqlite, &config).await;
    for (name, _, _) in hostile {
        gw.project(name);
    }
    for (name, _, _) in hostile {
        gw.wait_for_project(name).await;
    }
    gw
}

async fn attempt(gw: &Gateway, project: &str) -> (StatusCode, Value) {
    let body = json!({"kind": "shell", "script": "echo hello"});
    gw.post(&format!("/v1/projects/{project}/commands"), body).await
}

fn plugin<'a>(list: &'a Value, name: &str) -> &'a Value {
    let plugins = list["plugins"].as_array().unwrap();
    plugins.iter().find(|p| p["name"] == name).unwrap()
}

async fn assert_still_serving(gw: &Gateway) {
    let id = gw.shell("demo", "echo still here").await;
    assert_eq!(gw.wait_done(&id).await["state"], "succeeded");
    assert_eq!(gw.get("/health").await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_calls_fail_closed_and_name_the_plugin() {
    let gw = gateway().await;
    let cases = [
        ("endless-loop", "exceeded its 20 ms deadline"),
        ("out-of-fuel", "ran out of fuel"),
        ("memory-bomb", "exceeded its memory limit"),
        ("trap-in-call", "trapped"),
        ("huge-deny", "deny reason of"),
        ("sleeper", "was still blocked after 1000 ms"),
    ];
    for (project, expected) in cases {
        let (status, body) = attempt(&gw, project).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{project}: {body}");
        assert_eq!(body["error"]["code"], "policy_failed", "{project}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(&format!("`{project}`")), "{project}: {message}");
        assert!(message.contains(expected), "{project}: {message}");
        let last = body["error"]["decisions"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["verdict"], "failed", "{project}: {body}");
        assert_eq!(last["plugin"], project);
    }
    let (_, list) = gw.get("/v1/plugins").await;
    assert_eq!(plugin(&list, "endless-loop")["traps"], 1, "{list}");
    assert_still_serving(&gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_loop_is_cut_off_at_its_deadline_every_time() {
    let gw = gateway().await;
    for _ in 0..5 {
        let started = std::time::Instant::now();
        let (status, _) = attempt(&gw, "endless-loop").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        // Generous bound: this proves the loop is interrupted, not how fast (see benchmarks).
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
    assert_still_serving(&gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrites_are_judged_again_so_smuggled_commands_are_refused() {
    let gw = gateway().await;
    let (status, body) = attempt(&gw, "smuggling-rewrite").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "denied_by_policy", "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("`shell-sanitizer`"),
        "{body}"
    );
    let verdicts: Vec<_> = body["error"]["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| format!("{}:{}", d["plugin"].as_str().unwrap(), d["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(
        verdicts,
        [
            "shell-sanitizer:allow",
            "smuggling-rewrite:rewrite",
            "shell-sanitizer:deny"
        ]
    );
    let (status, body) = attempt(&gw, "huge-rewrite").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "policy_failed", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a valid command"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_that_cannot_load_refuse_their_requests_with_503() {
    let gw = gateway().await;
    let (_, list) = gw.get("/v1/plugins").await;
    let expected = [
        ("trap-in-configure", "trapped"),
        ("wrong-world", "does not implement the command-sanitizer world"),
        ("failing-self-test", "self-test"),
        ("deny-configure", "refused its configuration"),
    ];
    for (name, error) in expected {
        let status = plugin(&list, name);
        assert_eq!(status["state"], "failed", "{status}");
        assert!(status["digest"].is_null(), "{status}");
        assert!(
            status["last_error"].as_str().unwrap().contains(error),
            "{name}: {status}"
        );
        let (code, body) = attempt(&gw, name).await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{name}: {body}");
        assert_eq!(body["error"]["code"], "policy_unavailable");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("`{name}`"))
        );
    }
    let failures = gw.audit("action=plugin.load_failed").await;
    assert!(failures.iter().any(|e| e["target"] == "wrong-world"), "{failures:?}");
    assert_still_serving(&gw).await;
}

/// Observed: under load a request answered 422 `policy_failed`, as if a plugin had misbehaved,
/// when the plugin runtime was only busy. With one call slot held by an endless loop, requests
/// that find no free slot in time are answered 503 `overloaded` with `Retry-After` — never 422 —
/// and are served again once the slot is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_plugin_runtime_answers_503_not_a_policy_failure() {
    let mut config = String::from("plugins_dir = \"/nonexistent\"\n");
    config += &sanitizer("shell-sanitizer", &default_plugin("shell_sanitizer"), "");
    config += &sanitizer(
        "endless-loop",
        &test_plugin("endless_loop"),
        "projects = [\"slow\"]\ndeadline_ms = 3000",
    );
    config += "\n[plugin_runtime]\ncall_slots = 1\nslot_wait_ms = 50\n";
    let gw = Gateway::start_with_plugins(Db::Sqlite, &config).await;
    gw.project("slow");
    gw.wait_for_project("slow").await;

    let hog = {
        let (client, url, token) = (gw.client.clone(), gw.url.clone(), gw.admin_token.clone());
        tokio::spawn(async move {
            let body = json!({"kind": "shell", "script": "echo hello"});
            let reply = client
                .post(format!("{url}/v1/projects/slow/commands"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            reply.status()
        })
    };
    let mut overloaded = 0;
    while !hog.is_finished() {
        let reply = send(
            gw.request(Method::POST, "/v1/projects/demo/commands")
                .bearer_auth(&gw.admin_token)
                .json(&json!({"kind": "shell", "script": "echo hello"})),
        )
        .await;
        match reply.status {
            StatusCode::ACCEPTED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(reply.body["error"]["code"], "overloaded", "{:?}", reply.body);
                assert!(!reply.header("retry-after").is_empty(), "{reply:?}");
                overloaded += 1;
            }
            other => panic!("overload answered {other}: {:?}", reply.body),
        }
    }
    assert!(overloaded > 0, "the held slot made some request wait past slot_wait_ms");
    assert_eq!(
        hog.await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "the loop itself fails closed"
    );
    let id = gw.shell("demo", "echo served").await;
    assert_eq!(gw.wait_done(&id).await["state"], "succeeded");
}
