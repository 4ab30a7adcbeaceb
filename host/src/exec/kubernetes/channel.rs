//! The exec websocket (the `v5.channel.k8s.io` / `v4.channel.k8s.io` channel protocol), spoken
//! here rather than through kube's `AttachedProcess`, for two reasons:
//! - every way a session ends reaches its reader: the output channels always close and the end
//!   says why (exit status, closed, broken, lost). `AttachedProcess` leaves its output pipes
//!   open when its loop fails (a write to a server that already hung up), so a reader waits for
//!   an EOF that never comes;
//! - the connection has a liveness bound: a websocket ping every third of the bound, and the
//!   session is given up as lost when nothing at all (no frame, no pong) arrived for the bound.
//!   kube pings every 60 s and never looks for the pong, so a partitioned API server left an
//!   exec waiting for ever. This is client-go's own heartbeat for exec websockets; TCP
//!   keepalive would not do, as a proxy or load balancer in the path acknowledges for the
//!   server it can no longer reach.

use std::collections::VecDeque;
use std::time::Duration;

use futures::{Sink, SinkExt, Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::cluster::Cluster;
use super::target::Target;
use crate::exec::ExecError;

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const STATUS: u8 = 3;
/// v5 only: `[CLOSE, STDIN]` tells the server stdin has ended.
const CLOSE: u8 = 255;
/// Stdin is sent in frames of at most this many bytes.
const STDIN_FRAME: usize = 32 * 1024;
/// Frames buffered per output stream between the socket and its reader.
const OUTPUT_FRAMES: usize = 16;

/// How a session ended.
#[derive(Debug, Clone)]
pub(super) enum End {
    /// The status channel's message: the command's exit, or why it could not run.
    Status(Box<Status>),
    /// The server closed the websocket without a status (the pod went away, say).
    Closed,
    /// The websocket failed.
    Broken(String),
    /// Nothing arrived for the liveness bound, not even a pong: the API server is unreachable
    /// and what happened to the command is unknown.
    Lost(Duration),
}

/// A running exec: its output as it arrives, and its end.
pub(super) struct Session {
    stdout: mpsc::Receiver<Vec<u8>>,
    stderr: mpsc::Receiver<Vec<u8>>,
    end: oneshot::Receiver<End>,
    task: JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        // Dropping the socket does not stop the remote process; only a kill does.
        self.task.abort();
    }
}

impl Session {
    /// Standard output and standard error, each closed when the session ends. Taken once: later
    /// calls get streams that have ended.
    pub fn streams(&mut self) -> (mpsc::Receiver<Vec<u8>>, mpsc::Receiver<Vec<u8>>) {
        let ended = || mpsc::channel(1).1;
        (
            std::mem::replace(&mut self.stdout, ended()),
            std::mem::replace(&mut self.stderr, ended()),
        )
    }

    /// Resolves once the session has ended; cancel-safe.
    pub async fn end(&mut self) -> End {
        (&mut self.end)
            .await
            .unwrap_or_else(|_| End::Broken("the exec session stopped".into()))
    }
}

/// Starts `argv` in the target's pod (the start goes through the breaker, within the API
/// timeout), feeding it `stdin` if given; the session then runs on its own task.
pub(super) async fn open(
    cluster: &Cluster,
    target: &Target,
    argv: Vec<String>,
    stdin: Option<Vec<u8>>,
) -> Result<Session, ExecError> {
    let params = target.attach_params(stdin.is_some());
    let url = <Pod as kube::Resource>::url_path(&(), Some(cluster.namespace()));
    let request = kube::core::Request::new(url)
        .exec(&target.pod, argv, &params)
        .map_err(|e| ExecError::Remote(format!("cannot build the exec request: {e}")))?;
    let connection = cluster.call(cluster.client().connect(request)).await?;
    let v5 = connection.supports_stream_close();
    let (stdout_tx, stdout) = mpsc::channel(OUTPUT_FRAMES);
    let (stderr_tx, stderr) = mpsc::channel(OUTPUT_FRAMES);
    let (end_tx, end) = oneshot::channel();
    let io = Io {
        stdin: stdin_frames(stdin, v5),
        stdout: Some(stdout_tx),
        stderr: Some(stderr_tx),
    };
    let liveness = cluster.liveness();
    let cluster = cluster.clone();
    let pod = target.pod.clone();
    let task = tokio::spawn(async move {
        let end = converse(connection.into_stream(), io, liveness).await;
        if let End::Lost(silent) = &end {
            cluster.connection_lost(format!(
                "an exec connection to pod {pod} was silent for {}s",
                silent.as_secs()
            ));
        }
        let _ = end_tx.send(end);
    });
    Ok(Session {
        stdout,
        stderr,
        end,
        task,
    })
}

/// What a session reads and writes.
struct Io {
    stdin: VecDeque<Vec<u8>>,
    stdout: Option<mpsc::Sender<Vec<u8>>>,
    stderr: Option<mpsc::Sender<Vec<u8>>>,
}

/// Stdin as channel frames, then its end where the protocol can say so (under v4 the only way
/// is closing the whole websocket, which would end the session before its status).
fn stdin_frames(stdin: Option<Vec<u8>>, v5: bool) -> VecDeque<Vec<u8>> {
    let Some(bytes) = stdin else {
        return VecDeque::new();
    };
    let mut frames: VecDeque<Vec<u8>> = bytes
        .chunks(STDIN_FRAME)
        .map(|chunk| [&[STDIN][..], chunk].concat())
        .collect();
    if v5 {
        frames.push_back(vec![CLOSE, STDIN]);
    }
    frames
}

/// Runs a session on its socket until it ends. Frames are handed to their readers (a reader
/// that went away has the rest of its stream discarded); the silence clock only runs while
/// the socket is being listened to, so a slow reader never makes a live connection look lost.
async fn converse<S>(socket: S, mut io: Io, liveness: Duration) -> End
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    let (mut sink, mut stream) = socket.split();
    let period = liveness / 3;
    let mut pings = tokio::time::interval_at(Instant::now() + period, period);
    pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut heard = Instant::now();
    loop {
        let silent_until = heard + liveness;
        tokio::select! {
            message = stream.next() => {
                match message {
                    None => return End::Closed,
                    Some(Err(e)) => return End::Broken(e.to_string()),
                    Some(Ok(Message::Binary(data))) => {
                        if let Some(end) = receive(&data, &mut io).await {
                            return end;
                        }
                    }
                    // Pongs prove the path; pings are answered by the websocket layer.
                    Some(Ok(_)) => {}
                }
                heard = Instant::now();
            }
            () = next_outgoing(&io.stdin, &mut pings) => {
                let message = match io.stdin.pop_front() {
                    Some(frame) => Message::binary(frame),
                    None => Message::Ping(Default::default()),
                };
                match tokio::time::timeout_at(silent_until, sink.send(message)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return End::Broken(e.to_string()),
                    Err(_) => return End::Lost(liveness),
                }
            }
            () = tokio::time::sleep_until(silent_until) => return End::Lost(liveness),
        }
    }
}

/// Resolves when something should be sent: stdin at once, otherwise the next ping.
async fn next_outgoing(stdin: &VecDeque<Vec<u8>>, pings: &mut tokio::time::Interval) {
    if stdin.is_empty() {
        pings.tick().await;
    }
}

/// Handles one binary frame; the session's end if it was the status.
async fn receive(data: &[u8], io: &mut Io) -> Option<End> {
    let (&channel, payload) = data.split_first()?;
    let reader = match channel {
        STDOUT => &mut io.stdout,
        STDERR => &mut io.stderr,
        STATUS => {
            return Some(match serde_json::from_slice::<Status>(payload) {
                Ok(status) => End::Status(Box::new(status)),
                Err(e) => End::Broken(format!("unreadable exec status: {e}")),
            });
        }
        // The empty "connection established" frame, and channels a client never reads.
        _ => return None,
    };
    if let Some(tx) = reader.as_ref()
        && !payload.is_empty()
        && tx.send(payload.to_vec()).await.is_err()
    {
        *reader = None;
    }
    None
}

/// The exit status a status-channel message carries; `None` if it reports a failure to run.
pub(super) fn exit_code(status: &Status) -> Option<i32> {
    if status.status.as_deref() == Some("Success") {
        return Some(0);
    }
    let causes = status
        .details
        .as_ref()
        .and_then(|d| d.causes.as_deref())
        .unwrap_or_default();
    causes
        .iter()
        .find(|c| c.reason.as_deref() == Some("ExitCode"))
        .and_then(|c| c.message.as_deref()?.parse().ok())
}

pub(super) fn message(status: &Status) -> String {
    status.message.clone().unwrap_or_else(|| "the exec failed".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::protocol::Role;

    /// A client and a server websocket over an in-memory pipe.
    async fn pair() -> (
        WebSocketStream<tokio::io::DuplexStream>,
        WebSocketStream<tokio::io::DuplexStream>,
    ) {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let client = WebSocketStream::from_raw_socket(a, Role::Client, None).await;
        let server = WebSocketStream::from_raw_socket(b, Role::Server, None).await;
        (client, server)
    }

    fn io(stdin: Option<&[u8]>) -> (Io, mpsc::Receiver<Vec<u8>>, mpsc::Receiver<Vec<u8>>) {
        let (stdout_tx, stdout) = mpsc::channel(OUTPUT_FRAMES);
        let (stderr_tx, stderr) = mpsc::channel(OUTPUT_FRAMES);
        let io = Io {
            stdin: stdin_frames(stdin.map(<[u8]>::to_vec), true),
            stdout: Some(stdout_tx),
            stderr: Some(stderr_tx),
        };
        (io, stdout, stderr)
    }

    fn frame(channel: u8, payload: &[u8]) -> Message {
        Message::binary([&[channel][..], payload].concat())
    }

    #[tokio::test]
    async fn a_server_that_answers_nothing_is_lost_after_the_bound() {
        let (client, _silent_server) = pair().await;
        let (io, mut stdout, _stderr) = io(None);
        let bound = Duration::from_millis(600);
        let started = Instant::now();
        let end = converse(client, io, bound).await;
        assert!(matches!(end, End::Lost(silent) if silent == bound), "{end:?}");
        assert!(started.elapsed() >= bound);
        assert!(stdout.recv().await.is_none(), "the output ends with the session");
    }

    #[tokio::test]
    async fn pongs_keep_a_quiet_session_alive_and_the_status_ends_it() {
        let (client, mut server) = pair().await;
        let (io, _stdout, _stderr) = io(None);
        let bound = Duration::from_secs(3);
        let session = tokio::spawn(converse(client, io, bound));
        // Reading is what makes the server answer pings; it says nothing else for over twice
        // the bound.
        let quiet_until = Instant::now() + bound * 2 + Duration::from_secs(1);
        while let Ok(Some(Ok(_))) = tokio::time::timeout_at(quiet_until, server.next()).await {}
        server.send(frame(STATUS, br#"{"status":"Success"}"#)).await.unwrap();
        let end = session.await.unwrap();
        assert!(
            matches!(&end, End::Status(s) if s.status.as_deref() == Some("Success")),
            "{end:?}"
        );
    }

    #[tokio::test]
    async fn output_reaches_its_readers_and_stdin_reaches_the_server() {
        let (client, mut server) = pair().await;
        let (io, mut stdout, mut stderr) = io(Some(b"input"));
        let session = tokio::spawn(converse(client, io, Duration::from_secs(30)));
        let Some(Ok(first)) = server.next().await else {
            panic!("stdin frame")
        };
        assert_eq!(first.into_data().as_ref(), b"\0input");
        let Some(Ok(close)) = server.next().await else {
            panic!("close frame")
        };
        assert_eq!(close.into_data().as_ref(), [CLOSE, STDIN]);
        server.send(frame(STDOUT, b"")).await.unwrap();
        server.send(frame(STDOUT, b"out")).await.unwrap();
        server.send(frame(STDERR, b"err")).await.unwrap();
        assert_eq!(stdout.recv().await.unwrap(), b"out");
        assert_eq!(stderr.recv().await.unwrap(), b"err");
        drop(server);
        assert!(matches!(session.await.unwrap(), End::Closed | End::Broken(_)));
        assert!(stdout.recv().await.is_none() && stderr.recv().await.is_none());
    }

    #[tokio::test]
    async fn a_reader_that_left_does_not_stall_the_session() {
        let (client, mut server) = pair().await;
        let (io, stdout, _stderr) = io(None);
        drop(stdout);
        let session = tokio::spawn(converse(client, io, Duration::from_secs(30)));
        for _ in 0..OUTPUT_FRAMES * 4 {
            server.send(frame(STDOUT, b"ignored")).await.unwrap();
        }
        server.send(frame(STATUS, br#"{"status":"Success"}"#)).await.unwrap();
        assert!(matches!(session.await.unwrap(), End::Status(_)));
    }
}
