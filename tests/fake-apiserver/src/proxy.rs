//! A TCP proxy that can black-hole its traffic: while partitioned it forwards nothing in either
//! direction and closes nothing (open connections stay open, new ones are accepted and held), as
//! a real network partition between a client and the API server looks to both ends; healed, it
//! forwards again whatever was held.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A running proxy; dropping it closes every connection it holds.
pub struct BlackHoleProxy {
    addr: SocketAddr,
    partitioned: watch::Sender<bool>,
    shutdown: CancellationToken,
}

impl Drop for BlackHoleProxy {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl BlackHoleProxy {
    /// Starts a proxy to `upstream` on 127.0.0.1 and an ephemeral port, forwarding.
    pub async fn start(upstream: SocketAddr) -> BlackHoleProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("listener address");
        let (partitioned, _) = watch::channel(false);
        let shutdown = CancellationToken::new();
        tokio::spawn(accept(listener, upstream, partitioned.subscribe(), shutdown.clone()));
        BlackHoleProxy {
            addr,
            partitioned,
            shutdown,
        }
    }

    /// The proxy's URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops forwarding in both directions, closing nothing.
    pub fn partition(&self) {
        self.partitioned.send_replace(true);
    }

    /// Forwards again, held data first.
    pub fn heal(&self) {
        self.partitioned.send_replace(false);
    }
}

async fn accept(
    listener: TcpListener,
    upstream: SocketAddr,
    partitioned: watch::Receiver<bool>,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => return,
        };
        let Ok((client, _)) = accepted else { continue };
        let (partitioned, shutdown) = (partitioned.clone(), shutdown.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = connection(client, upstream, partitioned) => {}
                () = shutdown.cancelled() => {}
            }
        });
    }
}

/// One proxied connection: connects upstream once the path is open, then pipes both ways.
async fn connection(client: TcpStream, upstream: SocketAddr, mut partitioned: watch::Receiver<bool>) {
    if open(&mut partitioned).await.is_err() {
        return;
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::join!(
        pipe(client_read, server_write, partitioned.clone()),
        pipe(server_read, client_write, partitioned),
    );
}

/// Waits until the path is open; an error means the proxy is gone.
async fn open(partitioned: &mut watch::Receiver<bool>) -> Result<(), watch::error::RecvError> {
    partitioned.wait_for(|blocked| !blocked).await.map(drop)
}

/// Copies one direction. While partitioned nothing is read (so the sender's buffers fill as they
/// would with no path) and nothing already read is written; EOF is passed on only once open.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut partitioned: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if open(&mut partitioned).await.is_err() {
            return;
        }
        let n = tokio::select! {
            // A failed read ends the direction like EOF.
            read = from.read(&mut buf) => read.unwrap_or(0),
            // Reading is cancel-safe: a partition that starts mid-wait stops the read at once.
            _ = partitioned.wait_for(|blocked| *blocked) => continue,
        };
        if open(&mut partitioned).await.is_err() {
            return;
        }
        if n == 0 {
            let _ = to.shutdown().await;
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
