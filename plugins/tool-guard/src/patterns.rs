//! Name patterns with `*`, and the host of a URL.

/// A pattern where `*` matches any run of characters (none included).
pub struct Pattern<'a>(&'a str);

impl<'a> Pattern<'a> {
    /// The pattern `text`.
    pub fn new(text: &'a str) -> Self {
        Self(text)
    }

    /// Whether `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        let mut pieces = self.0.split('*');
        let first = pieces.next().unwrap_or_default();
        let Some(mut rest) = name.strip_prefix(first) else {
            return false;
        };
        let pieces: Vec<&str> = pieces.collect();
        let Some((last, middle)) = pieces.split_last() else {
            return rest.is_empty();
        };
        for piece in middle {
            match rest.find(piece) {
                Some(at) => rest = &rest[at + piece.len()..],
                None => return false,
            }
        }
        rest.ends_with(last)
    }
}

/// The lower-cased host of an `http` or `https` URL, without user info or port.
pub fn url_host(url: &str) -> Option<String> {
    let lower = url.trim().to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    let host = host.trim_end_matches('.');
    (!host.is_empty()).then(|| host.to_owned())
}

/// Whether `host` is allowed by the entry `entry` (`example.com`, or `*.example.com` for its
/// subdomains).
pub fn host_listed(entry: &str, host: &str) -> bool {
    let entry = entry.trim().to_ascii_lowercase();
    match entry.strip_prefix("*.") {
        Some(domain) => host
            .strip_suffix(domain)
            .is_some_and(|sub| sub.ends_with('.') && sub.len() > 1),
        None => entry == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_match_any_run_of_characters() {
        assert!(Pattern::new("*.pem").matches("server.pem"));
        assert!(Pattern::new("*.pem").matches(".pem"));
        assert!(!Pattern::new("*.pem").matches("server.pem.txt"));
        assert!(Pattern::new(".env.*").matches(".env.local"));
        assert!(!Pattern::new(".env.*").matches(".env"));
        assert!(Pattern::new("id_rsa*").matches("id_rsa.pub"));
        assert!(Pattern::new("a*b*c").matches("aXbYc"));
        assert!(!Pattern::new("a*b*c").matches("aXcYb"));
        assert!(Pattern::new(".env").matches(".env") && !Pattern::new(".env").matches("x.env"));
    }

    #[test]
    fn hosts_come_from_http_urls_only() {
        assert_eq!(url_host("https://Docs.rs/serde").as_deref(), Some("docs.rs"));
        assert_eq!(
            url_host("http://user:pw@example.com:8080/x").as_deref(),
            Some("example.com")
        );
        assert_eq!(url_host("https://[::1]:3000/").as_deref(), Some("::1"));
        assert_eq!(url_host("https://evil.com?@docs.rs").as_deref(), Some("evil.com"));
        assert_eq!(url_host("file:///etc/passwd"), None);
        assert_eq!(url_host("https:///path"), None);
    }

    #[test]
    fn a_wildcard_entry_covers_subdomains_only() {
        assert!(host_listed("*.python.org", "docs.python.org"));
        assert!(!host_listed("*.python.org", "python.org"));
        assert!(!host_listed("*.python.org", "evilpython.org"));
        assert!(host_listed("docs.rs", "docs.rs") && !host_listed("docs.rs", "docs.rs.evil.com"));
    }
}
