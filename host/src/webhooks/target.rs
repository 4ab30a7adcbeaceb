//! Where a webhook may go (the SSRF rules): a URL is checked when a subscription is written and
//! again at every connection, against the addresses its name resolves to then. Only public
//! addresses are reachable unless a network is listed in `[webhooks] allowed_targets`; the
//! connection is made to exactly the addresses that passed (the resolver below is the one the
//! HTTP client connects with), so a name cannot rebind between the check and the connect.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use url::{Host, Url};

/// Why a URL may not be a webhook target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not a URL, or not one we send to.
    #[error("{0}")]
    Invalid(String),
    /// It names (or resolves to) an address that is not public and not allowed.
    #[error("{0} is not a public address (allow it in [webhooks] allowed_targets)")]
    Refused(IpAddr),
    /// Its name does not resolve.
    #[error("cannot resolve {0}")]
    Unresolved(String),
}

/// The rules a target must pass.
#[derive(Debug, Clone)]
pub struct TargetPolicy {
    allowed: Arc<Vec<IpNet>>,
    allow_http: bool,
}

impl TargetPolicy {
    /// Public addresses, plus `allowed` networks; `https` only unless `allow_http`.
    pub fn new(allowed: Vec<IpNet>, allow_http: bool) -> Self {
        Self {
            allowed: Arc::new(allowed),
            allow_http,
        }
    }

    /// Parses and checks a URL's form and, if its host is an address, that address. A name is
    /// checked when it is resolved ([`check_resolved`](Self::check_resolved)).
    pub fn parse(&self, text: &str) -> Result<Url, TargetError> {
        let invalid = |m: &str| TargetError::Invalid(m.to_owned());
        if text.len() > 2048 {
            return Err(invalid("the URL is longer than 2048 characters"));
        }
        let url = Url::parse(text).map_err(|e| TargetError::Invalid(format!("not a URL: {e}")))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => return Err(invalid("only https URLs are allowed ([webhooks] allow_http is off)")),
            _ => return Err(invalid("the URL must be https")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("the URL must not carry user info"));
        }
        if url.fragment().is_some() {
            return Err(invalid("the URL must not have a fragment"));
        }
        match url.host() {
            None => Err(invalid("the URL has no host")),
            Some(Host::Ipv4(ip)) => self.check(IpAddr::V4(ip)).map(|()| url),
            Some(Host::Ipv6(ip)) => self.check(IpAddr::V6(ip)).map(|()| url),
            Some(Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if name.is_empty() {
                    return Err(invalid("the URL has no host"));
                }
                if name == "localhost" || name.ends_with(".localhost") {
                    return Err(TargetError::Refused(IpAddr::V4(Ipv4Addr::LOCALHOST)));
                }
                Ok(url)
            }
        }
    }

    /// Whether an address may be connected to.
    pub fn check(&self, ip: IpAddr) -> Result<(), TargetError> {
        let ip = ip.to_canonical();
        if self.allowed.iter().any(|net| net.contains(&ip)) || is_public(ip) {
            Ok(())
        } else {
            Err(TargetError::Refused(ip))
        }
    }

    /// Resolves `host` and checks every address; all must pass (a name that also resolves to an
    /// internal address is refused as a whole).
    pub async fn check_resolved(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, TargetError> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| TargetError::Unresolved(host.to_owned()))?
            .collect();
        if addrs.is_empty() {
            return Err(TargetError::Unresolved(host.to_owned()));
        }
        for addr in &addrs {
            self.check(addr.ip())?;
        }
        Ok(addrs)
    }

    /// Checks a URL as a subscription is written: its form, and the addresses its name resolves
    /// to now, if it resolves (a name that does not resolve yet is accepted; every connection
    /// checks again).
    pub async fn check_url(&self, text: &str) -> Result<Url, TargetError> {
        let url = self.parse(text)?;
        if let Some(Host::Domain(name)) = url.host() {
            let port = url.port_or_known_default().unwrap_or(443);
            match self.check_resolved(name, port).await {
                Err(TargetError::Unresolved(_)) | Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(url)
    }
}

/// The resolver the delivery client connects with: a name resolves only to addresses that pass
/// the policy, checked at that moment.
#[derive(Debug, Clone)]
pub struct CheckedResolver(pub TargetPolicy);

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let addrs = policy.check_resolved(name.as_str(), 0).await?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// Whether an address is globally reachable: not loopback, private, link-local, shared,
/// unique-local, multicast, documentation, benchmarking, reserved or unspecified, and not one
/// of those embedded in an IPv6 form (mapped, compatible, NAT64, 6to4, Teredo).
pub fn is_public(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 192 && b == 88 && c == 99)
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let embedded_v4 = || Ipv4Addr::from(((u32::from(s[6])) << 16) | u32::from(s[7]));
    if ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() {
        return false;
    }
    match s[0] {
        // IPv4-compatible (deprecated) and the other forms under ::/8.
        0 => false,
        // NAT64 (64:ff9b::/96 and the local-use 64:ff9b:1::/48): the IPv4 address inside decides.
        0x64 if s[1] == 0xff9b => s[2] == 0 && is_public_v4(embedded_v4()),
        // Discard-only 100::/64.
        0x100 if s[1..4] == [0, 0, 0] => false,
        // IETF protocol assignments (Teredo 2001::/32 among them) and documentation.
        0x2001 if s[1] < 0x200 || s[1] == 0xdb8 => false,
        // 6to4 carries an IPv4 address in its prefix.
        0x2002 => is_public_v4(Ipv4Addr::from((u32::from(s[1]) << 16) | u32::from(s[2]))),
        // Documentation 3fff::/20.
        0x3fff if s[1] < 0x1000 => false,
        // Unique-local fc00::/7 (fd00:ec2::254, the EC2 metadata service, among them),
        // link-local fe80::/10, site-local fec0::/10.
        x if (x & 0xfe00) == 0xfc00 || (x & 0xffc0) == 0xfe80 || (x & 0xffc0) == 0xfec0 => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> TargetPolicy {
        TargetPolicy::new(Vec::new(), false)
    }

    #[test]
    fn every_spelling_of_an_internal_address_is_refused() {
        for url in [
            "https://127.0.0.1/",
            "https://127.1/",
            "https://2130706433/",
            "https://0x7f000001/",
            "https://0x7f.0.0.1/",
            "https://017700000001/",
            "https://0177.0.0.1/",
            "https://0.0.0.0/",
            "https://0/",
            "https://[::1]/",
            "https://[::]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:7f00:1]/",
            "https://[::ffff:169.254.169.254]/",
            "https://[::127.0.0.1]/",
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://[2002:7f00:1::]/",
            "https://169.254.169.254/latest/meta-data/",
            "https://[fd00:ec2::254]/",
            "https://[fe80::1]/",
            "https://10.0.0.1/",
            "https://172.16.5.4/",
            "https://192.168.1.1/",
            "https://100.64.0.1/",
            "https://localhost/",
            "https://localhost./",
            "https://LOCALHOST/",
            "https://api.localhost/",
            "https://example.com@127.0.0.1/",
            "https://127.0.0.1%2e/",
            "https://127.0.0.1./",
        ] {
            assert!(policy().parse(url).is_err(), "{url} was accepted");
        }
    }

    #[test]
    fn forms_other_than_https_without_user_info_are_refused() {
        for url in [
            "http://example.com/",
            "ftp://example.com/",
            "file:///etc/passwd",
            "https://user:pw@example.com/",
            "https://user@example.com/",
            "https://example.com/#frag",
            "not a url",
        ] {
            assert!(matches!(policy().parse(url), Err(TargetError::Invalid(_))), "{url}");
        }
        assert!(policy().parse("https://example.com:8443/hook?x=1").is_ok());
        assert!(policy().parse("https://93.184.216.34/").is_ok());
        assert!(policy().parse("https://[2606:2800:220:1:248:1893:25c8:1946]/").is_ok());
    }

    #[test]
    fn allowed_networks_and_http_are_opt_in() {
        let open = TargetPolicy::new(vec!["127.0.0.1/32".parse().unwrap()], true);
        assert!(open.parse("http://127.0.0.1:9000/hook").is_ok());
        assert!(open.parse("http://[::ffff:127.0.0.1]:9000/").is_ok());
        assert!(open.parse("http://127.0.0.2/").is_err());
        assert!(open.parse("http://10.0.0.1/").is_err());
    }

    #[tokio::test]
    async fn a_name_is_checked_against_what_it_resolves_to() {
        assert_eq!(
            policy().check_resolved("localhost", 443).await.unwrap_err(),
            TargetError::Refused("127.0.0.1".parse().unwrap())
        );
        let allowed = TargetPolicy::new(vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()], true);
        assert!(allowed.check_resolved("localhost", 80).await.is_ok());
        assert!(policy().check_url("https://no-such-host.invalid/").await.is_ok());
    }
}
