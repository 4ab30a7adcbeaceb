//! One exec session on an upgraded websocket: channel-prefixed binary frames between the client and
//! the local process, then the exit Status on channel 3.
//!
//! As in a real cluster the process does not depend on the connection: if the client goes away its
//! stdin is closed and its output discarded, but it runs on until it exits or its pod is deleted.

use std::io;
use std::time::Duration;

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::status;

type Ws = WebSocketStream<TokioIo<Upgraded>>;

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const STATUS: u8 = 3;
/// v5 only: `[CLOSE, STDIN]` means the client has no more stdin.
const CLOSE: u8 = 255;

/// Reads of this size at most; each read becomes one frame, so output is never held back.
const CHUNK: usize = 32 * 1024;
/// How long a finished session waits for the client's side of the close handshake.
const LINGER: Duration = Duration::from_secs(2);

/// Which standard streams the client asked for.
#[derive(Clone, Copy)]
pub(crate) struct Streams {
    pub(crate) stdin: bool,
    pub(crate) stdout: bool,
    pub(crate) stderr: bool,
}

/// A started (or failed) exec, ready to be attached to its websocket.
pub(crate) struct Exec {
    pub(crate) command: Vec<String>,
    pub(crate) streams: Streams,
    pub(crate) v5: bool,
    /// Cancelled when the pod is deleted: the websocket is then dropped without a status frame.
    pub(crate) killed: CancellationToken,
    pub(crate) child: io::Result<Child>,
}

/// The client side of a session; dropping it drops the socket, without a close handshake.
struct Client {
    sink: SplitSink<Ws, Message>,
    reader: JoinHandle<()>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Runs the session to its end: the process has exited (status sent) or the pod was deleted (none).
pub(crate) async fn run(ws: Ws, exec: Exec) {
    let (sink, stream) = ws.split();
    let (mut child, stdin) = match exec.child {
        Ok(mut child) => {
            let stdin = child.stdin.take();
            (child, stdin)
        }
        Err(error) => {
            let client = Client {
                sink,
                reader: tokio::spawn(read_client(stream, None, exec.v5)),
            };
            return spawn_failed(client, &exec.command, &error).await;
        }
    };
    let reader = tokio::spawn(read_client(stream, stdin, exec.v5));
    let mut client = Some(Client { sink, reader });
    // The real kubelet's "connection established" signal: an empty frame on the lowest writable channel.
    send(&mut client, vec![first_writable(exec.streams)], &exec.killed).await;
    pump_output(&mut child, &mut client, &exec.killed).await;
    // Waiting also reaps the child, so it does not linger as a zombie.
    let status = match child.wait().await {
        Ok(exit) => exit_status(&exec.command, exit),
        Err(error) => status::failure(500, "InternalError", format!("waiting for the command: {error}")),
    };
    // A deleted pod's exec ends without a status, even if its pipes had closed before the kill.
    if let Some(client) = client.filter(|_| !exec.killed.is_cancelled()) {
        finish(client, &status).await;
    }
}

/// Sends the exit status and closes the websocket normally: the close handshake is waited for
/// (briefly), reading what the client still sends. Dropping a socket with unread input (stdin
/// the command never read) makes the kernel reset the connection, and a reset can destroy the
/// status frame before the client reads it.
async fn finish(mut client: Client, status: &Status) {
    let mut frame = vec![STATUS];
    frame.extend(serde_json::to_vec(status).expect("Status serializes"));
    // The client may be gone already; there is no one left to tell.
    let _ = client.sink.send(Message::binary(frame)).await;
    let _ = client.sink.close().await;
    let _ = tokio::time::timeout(LINGER, &mut client.reader).await;
}

/// The process could not be started: the real server reports this as an internal error on the
/// status channel, with no exit code.
async fn spawn_failed(client: Client, command: &[String], error: &io::Error) {
    let program = &command[0];
    let cause = match error.kind() {
        io::ErrorKind::NotFound => format!("exec: {program:?}: executable file not found in $PATH"),
        _ => format!("exec: {program:?}: {error}"),
    };
    let message = format!(
        "error executing command in container: failed to exec in container: failed to start exec: \
         OCI runtime exec failed: exec failed: unable to start container process: {cause}: unknown"
    );
    finish(client, &status::internal_error(message)).await;
}

fn first_writable(streams: Streams) -> u8 {
    match streams {
        Streams { stdout: true, .. } => STDOUT,
        Streams { stderr: true, .. } => STDERR,
        _ => STATUS,
    }
}

/// Forwards stdout and stderr until both reach EOF; from a pod deletion on, output is discarded.
async fn pump_output(child: &mut Child, client: &mut Option<Client>, killed: &CancellationToken) {
    let (mut stdout, mut stderr) = (child.stdout.take(), child.stderr.take());
    let (mut out_buf, mut err_buf) = (vec![0; CHUNK + 1], vec![0; CHUNK + 1]);
    while stdout.is_some() || stderr.is_some() {
        let frame = tokio::select! {
            () = killed.cancelled(), if client.is_some() => {
                *client = None;
                continue;
            }
            frame = read_frame(&mut stdout, STDOUT, &mut out_buf) => frame,
            frame = read_frame(&mut stderr, STDERR, &mut err_buf) => frame,
        };
        if let Some(frame) = frame {
            send(client, frame, killed).await;
        }
    }
}

/// One read from a pipe as a frame for `channel`; `None` (and the pipe dropped) at EOF.
async fn read_frame<R: AsyncRead + Unpin>(pipe: &mut Option<R>, channel: u8, buf: &mut [u8]) -> Option<Vec<u8>> {
    let Some(reader) = pipe.as_mut() else {
        return std::future::pending().await;
    };
    match reader.read(&mut buf[1..]).await {
        Ok(n) if n > 0 => {
            buf[0] = channel;
            Some(buf[..=n].to_vec())
        }
        _ => {
            *pipe = None;
            None
        }
    }
}

/// Sends a frame unless the client is gone; a failed send or a pod deletion means it is gone now.
async fn send(client: &mut Option<Client>, frame: Vec<u8>, killed: &CancellationToken) {
    let Some(connected) = client else { return };
    let sent = tokio::select! {
        sent = connected.sink.send(Message::binary(frame)) => sent.is_ok(),
        () = killed.cancelled() => false,
    };
    if !sent {
        *client = None;
    }
}

/// Feeds stdin frames to the process until the client closes stdin (v5) or goes away.
async fn read_client(mut stream: SplitStream<Ws>, mut stdin: Option<ChildStdin>, v5: bool) {
    while let Some(Ok(message)) = stream.next().await {
        let Message::Binary(data) = message else { continue };
        match data.as_ref() {
            [CLOSE, STDIN] if v5 => stdin = None,
            [STDIN, bytes @ ..] => {
                if let Some(pipe) = stdin.as_mut()
                    && pipe.write_all(bytes).await.is_err()
                {
                    stdin = None;
                }
            }
            // Resize requests and anything else: there is no terminal to resize.
            _ => {}
        }
    }
}

/// The status-channel Status for an exit; a signal death counts as exit code 128 + signal.
fn exit_status(command: &[String], exit: std::process::ExitStatus) -> Status {
    use std::os::unix::process::ExitStatusExt;
    match exit.code().or_else(|| exit.signal().map(|s| 128 + s)) {
        Some(0) => status::exec_success(),
        Some(code) => status::exec_exit_code(command, code),
        None => status::internal_error(format!("command ended without an exit status: {exit}")),
    }
}
