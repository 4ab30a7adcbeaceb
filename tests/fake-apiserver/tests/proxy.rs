//! The black-hole proxy: forwards, holds everything while partitioned without closing, and
//! delivers what it held once healed.

use std::time::Duration;

use fake_apiserver::BlackHoleProxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An upstream that echoes every connection.
async fn echo_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = socket.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    addr
}

async fn echo(client: &mut TcpStream, byte: u8) -> Result<u8, tokio::time::error::Elapsed> {
    client.write_all(&[byte]).await.unwrap();
    let mut answer = [0u8];
    tokio::time::timeout(Duration::from_millis(500), client.read_exact(&mut answer))
        .await
        .map(|read| read.map(|_| answer[0]).unwrap())
}

#[tokio::test]
async fn a_partition_holds_traffic_without_closing_and_a_heal_delivers_it() {
    let proxy = BlackHoleProxy::start(echo_server().await).await;
    let addr = proxy.url().trim_start_matches("http://").to_owned();
    let mut client = TcpStream::connect(&addr).await.unwrap();
    assert_eq!(echo(&mut client, b'a').await, Ok(b'a'));

    proxy.partition();
    assert!(echo(&mut client, b'b').await.is_err(), "nothing passes");
    let mut late = TcpStream::connect(&addr).await.expect("new connections are accepted");
    assert!(echo(&mut late, b'c').await.is_err(), "and held");

    proxy.heal();
    let mut held = [0u8];
    client.read_exact(&mut held).await.unwrap();
    assert_eq!(held[0], b'b', "the held byte arrives, the connection never closed");
    late.read_exact(&mut held).await.unwrap();
    assert_eq!(held[0], b'c');
    assert_eq!(echo(&mut client, b'd').await, Ok(b'd'));
}
