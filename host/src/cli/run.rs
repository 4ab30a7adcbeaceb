//! `rdev run PROJECT …`: starts a command and prints its output as it arrives (stdout to stdout,
//! stderr to stderr), resumes by itself with `Last-Event-ID` when the connection drops, and exits
//! with the command's exit code. Ctrl-C cancels the command (a second one detaches); `--detach`
//! prints the id and returns. Exit codes for commands that did not exit by themselves are below.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::signal::unix::{SignalKind, signal};

use super::client::{CallFailed, Client, ClientArgs};
use super::sse;

/// The command was refused (by a policy, or as invalid) and never ran.
pub(super) const EXIT_REJECTED: u8 = 126;
/// It ran past its timeout (as `timeout(1)` exits).
pub(super) const EXIT_TIMED_OUT: u8 = 124;
/// It was cancelled (as a shell reports Ctrl-C).
pub(super) const EXIT_CANCELLED: u8 = 130;
/// The gateway lost it (a crash of the replica that ran it).
pub(super) const EXIT_INTERRUPTED: u8 = 125;
/// Anything else that went wrong: the gateway unreachable for too long, a refused key, a command
/// that failed without an exit code of its own.
const EXIT_ERROR: u8 = 1;

/// How long the gateway may stay unreachable before `rdev run` gives up (the command goes on).
const GIVE_UP_AFTER: Duration = Duration::from_secs(120);
const FIRST_RETRY: Duration = Duration::from_millis(200);
const LONGEST_RETRY: Duration = Duration::from_secs(2);

#[derive(Debug, Args)]
pub(super) struct RunArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The project.
    project: String,
    /// A shell script to run (`sh -c`).
    #[arg(long, conflicts_with_all = ["claude", "argv"])]
    shell: Option<String>,
    /// A prompt for `claude`.
    #[arg(long, conflicts_with = "argv")]
    claude: Option<String>,
    /// Priority (higher runs first).
    #[arg(long, allow_negative_numbers = true)]
    priority: Option<i32>,
    /// Timeout, in seconds.
    #[arg(long)]
    timeout: Option<u64>,
    /// An environment variable `NAME=VALUE` (repeatable; the gateway allows only some names).
    #[arg(long = "env", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// Prints the command's id and returns without following it.
    #[arg(long)]
    detach: bool,
    /// The program (an argv kind such as `git`) and its arguments, after `--`.
    #[arg(last = true)]
    argv: Vec<String>,
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{text}` is not NAME=VALUE"))
}

/// Runs the command; the process exits with what this returns.
pub(super) fn main(args: RunArgs) -> ExitCode {
    let run = async {
        let client = Client::new(&args.client)?;
        start_and_follow(&client, &args).await
    };
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(run));
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("rdev: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn body(args: &RunArgs) -> anyhow::Result<Value> {
    let mut body = match (&args.shell, &args.claude, args.argv.split_first()) {
        (Some(script), _, _) => json!({"kind": "shell", "script": script}),
        (_, Some(prompt), _) => json!({"kind": "claude", "prompt": prompt}),
        (_, _, Some((program, rest))) => json!({"kind": program, "args": rest}),
        _ => anyhow::bail!("give --shell SCRIPT, --claude PROMPT or -- PROGRAM ARGS…"),
    };
    if let Some(priority) = args.priority {
        body["priority"] = json!(priority);
    }
    if let Some(timeout) = args.timeout {
        body["timeout_secs"] = json!(timeout);
    }
    if !args.env.is_empty() {
        body["env"] = args.env.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    }
    Ok(body)
}

async fn start_and_follow(client: &Client, args: &RunArgs) -> anyhow::Result<u8> {
    let body = body(args)?;
    // The same key on every attempt: a retry after a lost answer returns the first command.
    let idempotency_key = uuid::Uuid::new_v4().to_string();
    let path = format!("/v1/projects/{}/commands", args.project);
    let started = retrying(|| {
        let request = client
            .request(Method::POST, &path)
            .header("idempotency-key", &idempotency_key)
            .json(&body);
        client.send(request)
    })
    .await;
    let command = match started {
        Ok(command) => command,
        Err(e @ CallFailed::Api { status, .. }) if refused(status) => {
            eprintln!("rdev: refused: {e}");
            return Ok(EXIT_REJECTED);
        }
        Err(e) => anyhow::bail!(e),
    };
    let id = command["id"].as_str().unwrap_or_default().to_owned();
    if args.detach {
        println!("{id}");
        return Ok(0);
    }
    follow(client, &id, command["state"] == "queued").await
}

/// An answer that says to come back later.
fn retry_later(status: StatusCode) -> bool {
    status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS
}

/// A refusal of the command itself rather than of the caller.
fn refused(status: StatusCode) -> bool {
    status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::CONFLICT
}

/// Calls `call` until it succeeds, fails for good, or the gateway stays unreachable too long.
async fn retrying<F, Fut>(mut call: F) -> Result<Value, CallFailed>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Value, CallFailed>>,
{
    let mut backoff = Backoff::new();
    loop {
        match call().await {
            Err(e) if e.retryable() && backoff.wait().await => {}
            outcome => return outcome,
        }
    }
}

/// Waits between attempts, longer each time, until [`GIVE_UP_AFTER`].
struct Backoff {
    since: Instant,
    next: Duration,
}

impl Backoff {
    fn new() -> Self {
        Self {
            since: Instant::now(),
            next: FIRST_RETRY,
        }
    }

    /// Waits before the next attempt; false when it is time to give up.
    async fn wait(&mut self) -> bool {
        if self.since.elapsed() > GIVE_UP_AFTER {
            return false;
        }
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(LONGEST_RETRY);
        true
    }
}

/// What one connection to the stream ended with.
enum Ended {
    /// The command ended: exit with this.
    Exit(u8),
    /// The connection dropped or the gateway asked to come back later.
    Reconnect,
}

/// Follows the command's stream to its end, reconnecting after the last event seen.
async fn follow(client: &Client, id: &str, queued: bool) -> anyhow::Result<u8> {
    let mut status = StatusLine::new(queued, id);
    let mut interrupts = signal(SignalKind::interrupt())?;
    let mut last: Option<String> = None;
    let mut cancelling = false;
    let mut backoff = Backoff::new();
    loop {
        let mut request = client.request(Method::GET, &format!("/v1/commands/{id}/stream"));
        if let Some(seen) = &last {
            request = request.header("last-event-id", seen);
        }
        let connected = tokio::select! {
            response = request.send() => response,
            _ = interrupts.recv() => {
                if let Some(code) = interrupt(client, id, &mut cancelling).await { return Ok(code) }
                continue;
            }
        };
        let ended = match connected {
            Ok(response) if response.status().is_success() => {
                backoff = Backoff::new();
                let mut events = std::pin::pin!(sse::events(response));
                loop {
                    tokio::select! {
                        event = events.next() => match event {
                            Some(Ok(event)) => {
                                status.clear();
                                if let Some(ended) = handle(&event, &mut last)? { break ended; }
                            }
                            Some(Err(_)) | None => break Ended::Reconnect,
                        },
                        _ = interrupts.recv() => {
                            if let Some(code) = interrupt(client, id, &mut cancelling).await { return Ok(code) }
                        }
                    }
                }
            }
            Ok(response) if retry_later(response.status()) => Ended::Reconnect,
            Ok(response) => {
                let code = response.status();
                let text = response.text().await.unwrap_or_default();
                let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                let message = body["error"]["message"].as_str().unwrap_or(&text);
                anyhow::bail!("the stream answered {code}: {message}");
            }
            Err(_) => Ended::Reconnect,
        };
        match ended {
            Ended::Exit(code) => return Ok(code),
            Ended::Reconnect if backoff.wait().await => {}
            Ended::Reconnect => anyhow::bail!(
                "lost the gateway for {} s; the command {id} goes on",
                GIVE_UP_AFTER.as_secs()
            ),
        }
    }
}

/// How long `rdev commands logs` without `--follow` waits for more of a running command's output
/// once the stored output has arrived.
const LOGS_QUIET: Duration = Duration::from_millis(500);

/// `rdev commands logs ID [--follow]`: the command's output so far, or (following) to its end.
pub(super) async fn logs(client: &Client, id: &str, follow_it: bool) -> anyhow::Result<()> {
    if follow_it {
        follow(client, id, false).await?;
        return Ok(());
    }
    let response = client
        .request(Method::GET, &format!("/v1/commands/{id}/stream"))
        .send()
        .await?;
    if !response.status().is_success() {
        let code = response.status();
        let body: Value = serde_json::from_str(&response.text().await.unwrap_or_default()).unwrap_or(Value::Null);
        anyhow::bail!(
            "{} (HTTP {code})",
            body["error"]["message"].as_str().unwrap_or("the stream failed")
        );
    }
    let mut events = std::pin::pin!(sse::events(response));
    let mut last = None;
    // The stored output comes at once; a running command's live output after it is not waited for.
    while let Ok(Some(event)) = tokio::time::timeout(LOGS_QUIET, events.next()).await {
        if handle(&event?, &mut last)?.is_some() {
            break;
        }
    }
    Ok(())
}

/// One event: output is written out, the end gives the exit code.
fn handle(event: &sse::Event, last: &mut Option<String>) -> anyhow::Result<Option<Ended>> {
    let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
    if event.id.is_some() {
        last.clone_from(&event.id);
    }
    match event.name.as_str() {
        "output" => {
            let text = data["text"].as_str().unwrap_or_default();
            if data["stream"] == "stderr" {
                let mut err = std::io::stderr().lock();
                err.write_all(text.as_bytes())?;
                err.flush()?;
            } else {
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())?;
                out.flush()?;
            }
            Ok(None)
        }
        "end" => Ok(Some(Ended::Exit(exit_code(&data)))),
        "error" => match data["code"].as_str() {
            Some("unavailable" | "shutting_down") => Ok(Some(Ended::Reconnect)),
            _ => anyhow::bail!("{}", data["message"].as_str().unwrap_or("the stream failed")),
        },
        // The typed events of `claude` runs (tool calls and their decisions) are for clients
        // that show them; the text of the run comes as output.
        _ => Ok(None),
    }
}

/// The exit code for a command's end, saying why on stderr when it did not succeed.
fn exit_code(end: &Value) -> u8 {
    let state = end["state"].as_str().unwrap_or_default();
    let code = match state {
        "succeeded" => return 0,
        "failed" => end["exit_code"]
            .as_i64()
            .and_then(|c| u8::try_from(c).ok())
            .filter(|c| *c != 0)
            .unwrap_or(EXIT_ERROR),
        "timed_out" => EXIT_TIMED_OUT,
        "cancelled" => EXIT_CANCELLED,
        "interrupted" => EXIT_INTERRUPTED,
        _ => EXIT_ERROR,
    };
    if let Some(reason) = end["reason"].as_str() {
        eprintln!("rdev: {state}: {reason}");
    }
    code
}

/// Ctrl-C: the first cancels the command (its end then arrives as usual), the second detaches.
async fn interrupt(client: &Client, id: &str, cancelling: &mut bool) -> Option<u8> {
    if *cancelling {
        eprintln!("rdev: detached; the command {id} goes on");
        return Some(EXIT_CANCELLED);
    }
    *cancelling = true;
    eprintln!("rdev: cancelling {id} (Ctrl-C again to detach)");
    let cancel = client.request(Method::POST, &format!("/v1/commands/{id}/cancel"));
    if let Err(e) = client.send(cancel).await {
        eprintln!("rdev: the cancel failed: {e}");
    }
    None
}

/// "queued" on stderr while the command waits, on a terminal only; cleared by the first event.
struct StatusLine {
    shown: bool,
}

impl StatusLine {
    fn new(queued: bool, id: &str) -> Self {
        let shown = queued && std::io::stderr().is_terminal();
        if shown {
            eprint!("rdev: {id} queued…");
        }
        Self { shown }
    }

    fn clear(&mut self) {
        if std::mem::take(&mut self.shown) {
            eprint!("\r\x1b[K");
        }
    }
}
