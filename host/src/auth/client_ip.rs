//! The client address: the socket peer, or the `X-Forwarded-For` client when the peer is a
//! trusted proxy. Addresses are canonical (an IPv4-mapped IPv6 address such as
//! `::ffff:127.0.0.1` is the IPv4 address it maps), so that a gateway listening on `[::]`
//! matches IPv4 rules, logs and audits the same address as one listening on `0.0.0.0`.

use std::net::IpAddr;

use ipnet::IpNet;

/// Resolves the client address. Walks `X-Forwarded-For` from the right, skipping trusted proxies,
/// so a client cannot choose its address by prepending entries.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net_contains(net, ip));
    if !is_trusted(peer) {
        return peer;
    }
    let Some(header) = forwarded_for else { return peer };
    let mut client = peer;
    for hop in header.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip.to_canonical();
                if !is_trusted(client) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

/// Whether `net` contains `ip`, whichever way either is written: an IPv4 address also matches
/// a network written in IPv4-mapped IPv6 form (`::ffff:10.0.0.0/104`), and the reverse.
pub fn net_contains(net: &IpNet, ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => net.contains(&IpAddr::V4(v4)) || net.contains(&IpAddr::V6(v4.to_ipv6_mapped())),
        v6 @ IpAddr::V6(_) => net.contains(&v6),
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn ignores_forwarded_for_from_untrusted_peers() {
        assert_eq!(client_ip(ip("127.0.0.1"), Some("10.1.2.3"), &[]), ip("127.0.0.1"));
    }

    #[test]
    fn takes_the_first_untrusted_hop_from_the_right() {
        let trusted = [net("127.0.0.0/8"), net("192.168.0.0/16")];
        let header = Some("1.1.1.1, 10.9.9.9, 192.168.1.1");
        assert_eq!(client_ip(ip("127.0.0.1"), header, &trusted), ip("10.9.9.9"));
    }

    #[test]
    fn mapped_peers_match_ipv4_proxies_and_are_reported_as_ipv4() {
        let trusted = [net("127.0.0.1/32")];
        let mapped = ip("::ffff:127.0.0.1");
        assert_eq!(client_ip(mapped, Some("10.1.2.3"), &trusted), ip("10.1.2.3"));
        assert_eq!(client_ip(mapped, None, &[]), ip("127.0.0.1"));
        assert_eq!(
            client_ip(ip("127.0.0.1"), Some("::ffff:10.1.2.3"), &trusted),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn networks_match_either_spelling_of_an_ipv4_address() {
        assert!(net_contains(&net("10.0.0.0/8"), ip("::ffff:10.1.2.3")));
        assert!(net_contains(&net("::ffff:10.0.0.0/104"), ip("10.1.2.3")));
        assert!(!net_contains(&net("10.0.0.0/8"), ip("::1")));
        assert!(net_contains(&net("::1/128"), IpAddr::V6(Ipv6Addr::LOCALHOST)));
    }
}
