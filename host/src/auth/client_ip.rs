//! The client address: the socket peer, or the `X-Forwarded-For` client when the peer is a
//! trusted proxy.

use std::net::IpAddr;

use ipnet::IpNet;

/// Resolves the client address. Walks `X-Forwarded-For` from the right, skipping trusted proxies,
/// so a client cannot choose its address by prepending entries.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let Some(header) = forwarded_for else { return peer };
    let mut client = peer;
    for hop in header.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ignores_forwarded_for_from_untrusted_peers() {
        assert_eq!(client_ip(ip("127.0.0.1"), Some("10.1.2.3"), &[]), ip("127.0.0.1"));
    }

    #[test]
    fn takes_the_first_untrusted_hop_from_the_right() {
        let trusted = ["127.0.0.0/8".parse().unwrap(), "192.168.0.0/16".parse().unwrap()];
        let header = Some("1.1.1.1, 10.9.9.9, 192.168.1.1");
        assert_eq!(client_ip(ip("127.0.0.1"), header, &trusted), ip("10.9.9.9"));
    }
}
