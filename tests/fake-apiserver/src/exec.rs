//! The `pods/{name}/exec` endpoint: validation as the real server does it, the websocket handshake,
//! and spawning the local process that stands in for the container's.

use std::process::Stdio;
use std::sync::Arc;

use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::header::{CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use tokio::process::Command;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::ExecRecord;
use crate::http::{Body, Query, status_response};
use crate::objects::Kind;
use crate::session::{self, Exec, Streams};
use crate::shared::Shared;
use crate::status;

/// Why an exec is refused before the upgrade; boxed, as a Status is large.
type Refusal = Box<Status>;

/// A validated exec request.
struct Plan {
    command: Vec<String>,
    container: String,
    streams: Streams,
    protocol: &'static str,
    accept_key: String,
}

/// Answers an exec request: an error Status, or 101 with the session continuing on the upgraded socket.
pub(crate) fn handle(
    shared: Arc<Shared>,
    mut request: Request<Incoming>,
    namespace: &str,
    pod: &str,
    query: &Query,
) -> Response<Body> {
    let plan = match plan(&shared, &request, namespace, pod, query) {
        Ok(plan) => plan,
        Err(status) => return status_response(&status),
    };
    let response = switching_protocols(&plan);
    // Spawned before answering, so the exec is recorded by the time the client holds the connection.
    let exec = launch(&shared, namespace, pod, plan);
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => {
                let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
                session::run(ws, exec).await;
            }
            // The process keeps running, as it would if the client vanished mid-session.
            Err(error) => tracing::debug!(%error, "fake API server: exec upgrade failed"),
        }
    });
    response
}

fn plan(
    shared: &Shared,
    request: &Request<Incoming>,
    namespace: &str,
    pod: &str,
    query: &Query,
) -> Result<Plan, Refusal> {
    let command = query.all("command");
    let streams = Streams {
        stdin: query.flag("stdin"),
        stdout: query.flag("stdout"),
        stderr: query.flag("stderr"),
    };
    if command.is_empty() {
        return Err(status::bad_request("you must specify at least one command for the container").into());
    }
    if !(streams.stdin || streams.stdout || streams.stderr) {
        return Err(status::bad_request("you must specify at least 1 of stdin, stdout, stderr").into());
    }
    let container = container(shared, namespace, pod, query.get("container"))?;
    let accept_key = websocket_key(request).ok_or_else(|| status::bad_request("Upgrade request required"))?;
    let protocol = negotiate(&shared.options.exec_protocols, request)?;
    Ok(Plan {
        command,
        container,
        streams,
        protocol,
        accept_key,
    })
}

/// The container to run in: the one named, or the pod's only one.
fn container(shared: &Shared, namespace: &str, pod: &str, wanted: Option<&str>) -> Result<String, Refusal> {
    let object = shared
        .store
        .lock()
        .get(Kind::Pod, namespace, pod)
        .ok_or_else(|| status::not_found("pods", pod))?;
    let containers = object.json["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: Vec<String> = containers
        .iter()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    match (wanted, names.as_slice()) {
        (Some(wanted), _) if names.iter().any(|n| n == wanted) => Ok(wanted.to_string()),
        (Some(wanted), _) => Err(status::bad_request(format!("container {wanted} is not valid for pod {pod}")).into()),
        (None, [only]) => Ok(only.clone()),
        (None, _) => Err(status::bad_request(format!(
            "a container name must be specified for pod {pod}, choose one of: [{}]",
            names.join(" ")
        ))
        .into()),
    }
}

/// The `Sec-WebSocket-Accept` value, if this is a websocket upgrade request.
fn websocket_key(request: &Request<Incoming>) -> Option<String> {
    let upgrade = request.headers().get(UPGRADE)?.to_str().ok()?;
    let key = request.headers().get(SEC_WEBSOCKET_KEY)?;
    upgrade
        .eq_ignore_ascii_case("websocket")
        .then(|| derive_accept_key(key.as_bytes()))
}

/// The first of the server's protocols that the client offered (comma-separated, possibly over
/// several headers).
fn negotiate(supported: &[&'static str], request: &Request<Incoming>) -> Result<&'static str, Refusal> {
    let headers = request.headers().get_all(SEC_WEBSOCKET_PROTOCOL);
    let offered: Vec<&str> = headers
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(','))
        .collect();
    let offered: Vec<&str> = offered.into_iter().map(str::trim).collect();
    let chosen = supported.iter().find(|p| offered.contains(p)).copied();
    chosen.ok_or_else(|| {
        let message = format!("requested protocol(s) are not supported: {offered:?}; supports {supported:?}");
        status::failure(403, "Forbidden", message).into()
    })
}

fn switching_protocols(plan: &Plan) -> Response<Body> {
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(UPGRADE, "websocket")
        .header(CONNECTION, "Upgrade")
        .header(SEC_WEBSOCKET_ACCEPT, &plan.accept_key)
        .header(SEC_WEBSOCKET_PROTOCOL, plan.protocol)
        .body(Empty::new().boxed_unsync())
        .expect("valid 101 response")
}

/// Spawns the process in its own process group and records the exec.
fn launch(shared: &Shared, namespace: &str, pod: &str, plan: Plan) -> Exec {
    let mut command = Command::new(&plan.command[0]);
    command.args(&plan.command[1..]).process_group(0);
    command
        .stdin(piped_if(plan.streams.stdin))
        .stdout(piped_if(plan.streams.stdout));
    command.stderr(piped_if(plan.streams.stderr));
    // Under the lock, so that a concurrent delete_pod either sees this group or comes before it.
    let mut processes = shared.processes();
    let killed = processes.killed_token(namespace, pod);
    let child = command.spawn();
    let pid = child.as_ref().ok().and_then(|c| c.id()).unwrap_or(0);
    if let Ok(pgid) = i32::try_from(pid)
        && pid != 0
    {
        processes.add_group(namespace, pod, pgid);
    }
    drop(processes);
    let record = ExecRecord {
        pod: pod.into(),
        container: plan.container,
        command: plan.command.clone(),
        protocol: plan.protocol.into(),
        pid,
    };
    shared.execs().push(record);
    Exec {
        command: plan.command,
        streams: plan.streams,
        v5: plan.protocol.starts_with("v5."),
        killed,
        child,
    }
}

fn piped_if(wanted: bool) -> Stdio {
    if wanted { Stdio::piped() } else { Stdio::null() }
}
