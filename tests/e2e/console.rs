//! The web console: served from the binary under a strict Content-Security-Policy and small, its
//! stream cookie accepted on output streams only, and the whole console driven in headless
//! Chromium through WebDriver (`console/drive.py`, Python selenium; `scripts/test.sh` installs
//! Debian's `chromium` and `chromium-driver` and selenium).

use std::path::Path;
use std::time::Duration;

use reqwest::{Method, StatusCode};

use crate::common::{Db, Gateway, send};

/// How long the browser run may take on a loaded machine.
const BROWSER_BOUND: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_embedded_small_and_under_a_strict_policy() {
    let gw = Gateway::start(Db::Sqlite, "").await;
    let mut total = 0;
    for (path, kind) in [
        ("/console", "text/html"),
        ("/console/app.js", "text/javascript"),
        ("/console/app.css", "text/css"),
    ] {
        let reply = send(gw.request(Method::GET, path)).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert!(
            reply.header("content-type").starts_with(kind),
            "{path}: {}",
            reply.header("content-type")
        );
        let policy = reply.header("content-security-policy");
        assert!(
            policy.contains("script-src 'self'") && policy.contains("default-src 'none'"),
            "{policy}"
        );
        assert!(!policy.contains("unsafe"), "no inline script or style: {policy}");
        total += reply.body.as_str().unwrap().len();
    }
    assert!(total <= 200 * 1024, "the first load transfers {total} bytes");
    let page = send(gw.request(Method::GET, "/console"))
        .await
        .body
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !page.contains("http://") && !page.contains("https://") && !page.contains("<script>"),
        "no external or inline assets"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_opens_output_streams_and_nothing_else() {
    let gw = Gateway::start(Db::Sqlite, "").await;
    let refused = send(gw.request(Method::POST, "/console/session")).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{:?}", refused.body);
    let signed_in = send(
        gw.request(Method::POST, "/console/session")
            .bearer_auth(&gw.admin_token),
    )
    .await;
    assert_eq!(signed_in.status, StatusCode::NO_CONTENT);
    let cookie = signed_in.header("set-cookie").to_owned();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/v1/commands"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    let pair = cookie.split(';').next().unwrap().to_owned();
    let id = gw.shell("demo", "echo via-cookie").await;
    gw.wait_done(&id).await;
    let stream = send(
        gw.request(Method::GET, &format!("/v1/commands/{id}/stream"))
            .header("cookie", &pair),
    )
    .await;
    assert_eq!(stream.status, StatusCode::OK);
    assert!(stream.body.as_str().unwrap().contains("via-cookie"));
    let other = send(gw.request(Method::GET, "/v1/projects").header("cookie", &pair)).await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED, "the cookie is for streams only");
    let cancel = send(
        gw.request(Method::POST, &format!("/v1/commands/{id}/cancel"))
            .header("cookie", &pair),
    )
    .await;
    assert_eq!(cancel.status, StatusCode::UNAUTHORIZED, "never for a change");
    let out = send(gw.request(Method::DELETE, "/console/session")).await;
    assert!(out.header("set-cookie").contains("Max-Age=0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_runs_follows_cancels_and_shows_refusals_in_chromium() {
    let gw = Gateway::start_with_plugins(Db::Sqlite, "").await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/console/drive.py");
    let mut command = tokio::process::Command::new("python3");
    command
        .arg(&script)
        .env("RDEV_URL", &gw.url)
        .env("RDEV_TOKEN", &gw.admin_token);
    if let Ok(shot) = std::env::var("RDEV_CONSOLE_SCREENSHOT") {
        command.arg(shot);
    }
    let out = tokio::time::timeout(BROWSER_BOUND, command.output())
        .await
        .expect("the browser run ends")
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("ok"), "{text}");
    let (_, page) = gw.get("/v1/projects/demo/commands?state=cancelled").await;
    assert_eq!(
        page["commands"].as_array().unwrap().len(),
        1,
        "the long command was cancelled: {page}"
    );
}
