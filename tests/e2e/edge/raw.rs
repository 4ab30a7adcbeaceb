//! Raw HTTP/1.1 over a socket: what the test clients of the edge speak.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::Gateway;

/// The `host:port` a gateway listens on.
pub fn addr(gw: &Gateway) -> String {
    gw.url.strip_prefix("http://").expect("http URL").to_owned()
}

/// Everything the server sent until it closed the connection (or went quiet after a whole
/// response), parsed.
#[derive(Debug)]
pub struct RawReply {
    pub raw: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawReply {
    /// A header's value ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or("", |(_, v)| v.as_str())
    }

    fn parse(raw: String) -> RawReply {
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let body = body.to_owned();
        RawReply {
            raw,
            status,
            headers,
            body,
        }
    }
}

/// Reads until the server closes the connection, or panics after `limit` (tests of a
/// keep-alive connection set an idle timeout that closes it).
pub async fn read_reply<R: AsyncRead + Unpin>(reader: &mut R, limit: Duration) -> RawReply {
    let mut raw = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 8192];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    assert!(
        read.is_ok(),
        "the server did not close the connection within {limit:?}; got {text:?}"
    );
    RawReply::parse(text)
}

/// Sends `request` on a new connection and reads the answer until the server closes it.
pub async fn exchange(addr: &str, request: &[u8]) -> RawReply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before it has read all of an oversized request.
    let _ = stream.write_all(request).await;
    read_reply(&mut stream, Duration::from_secs(30)).await
}
