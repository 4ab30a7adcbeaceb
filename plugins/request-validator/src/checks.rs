//! Format checks of single values: names, CIDR blocks, timestamps.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Scopes an API key may carry.
pub const SCOPES: &[&str] = &[
    "projects:read",
    "commands:run",
    "commands:read",
    "config:write",
    "audit:read",
    "metrics:read",
    "webhooks:read",
    "webhooks:write",
    "admin",
];

/// A project name: 1–63 characters of `[A-Za-z0-9._-]`, starting with a letter or digit.
pub fn is_project_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A key name: characters of `[A-Za-z0-9._ -]`.
pub fn is_key_name_text(name: &str) -> bool {
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ' ' | '-'))
}

/// A command kind: 1–32 characters of `[a-z0-9-]`.
pub fn is_kind(kind: &str) -> bool {
    (1..=32).contains(&kind.len())
        && kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// An environment variable name: `[A-Z_][A-Z0-9_]*`.
pub fn is_env_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// A Claude item name: 1–64 characters of `[A-Za-z0-9._-]`, not starting with `.`.
pub fn is_item_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A CIDR block such as `10.0.0.0/8` or `2001:db8::/32`.
pub fn is_cidr(text: &str) -> bool {
    let Some((address, prefix)) = text.split_once('/') else {
        return false;
    };
    if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let Ok(prefix) = prefix.parse::<u8>() else { return false };
    if address.parse::<Ipv4Addr>().is_ok() {
        prefix <= 32
    } else {
        address.parse::<Ipv6Addr>().is_ok() && prefix <= 128
    }
}

fn number(text: &str, range: std::ops::RangeInclusive<u32>) -> bool {
    text.bytes().all(|b| b.is_ascii_digit()) && text.parse().is_ok_and(|n| range.contains(&n))
}

/// An RFC 3339 timestamp such as `2030-01-31T12:00:00Z` or `2030-01-31T12:00:00.5+02:00`.
pub fn is_rfc3339(text: &str) -> bool {
    let Some((date, time)) = text.split_once(['T', 't']) else {
        return false;
    };
    let date: Vec<&str> = date.split('-').collect();
    let date_ok = matches!(date.as_slice(), [y, m, d] if y.len() == 4 && number(y, 0..=9999)
        && m.len() == 2 && number(m, 1..=12) && d.len() == 2 && number(d, 1..=31));
    let (clock, offset) = match time.find(['Z', 'z', '+', '-']) {
        Some(at) => time.split_at(at),
        None => return false,
    };
    let offset_ok = match offset {
        "Z" | "z" => true,
        _ => matches!(offset[1..].split_once(':'), Some((h, m)) if h.len() == 2 && number(h, 0..=23)
            && m.len() == 2 && number(m, 0..=59)),
    };
    let (clock, fraction) = clock.split_once('.').unwrap_or((clock, "0"));
    let clock: Vec<&str> = clock.split(':').collect();
    let clock_ok = matches!(clock.as_slice(), [h, m, s] if h.len() == 2 && number(h, 0..=23)
        && m.len() == 2 && number(m, 0..=59) && s.len() == 2 && number(s, 0..=60));
    date_ok && clock_ok && offset_ok && !fraction.is_empty() && fraction.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ipv4_and_ipv6_blocks_only_with_a_valid_prefix() {
        assert!(is_cidr("10.0.0.0/8") && is_cidr("2001:db8::/32") && is_cidr("0.0.0.0/0"));
        assert!(!is_cidr("10.0.0.0") && !is_cidr("10.0.0.0/33") && !is_cidr("::/129"));
        assert!(!is_cidr("10.0.0/8") && !is_cidr("10.0.0.0/+8") && !is_cidr("x/8"));
    }

    #[test]
    fn accepts_rfc3339_timestamps() {
        for text in [
            "2030-01-31T12:00:00Z",
            "2030-01-31t12:00:00.123+02:00",
            "2030-12-01T00:00:60-05:30",
        ] {
            assert!(is_rfc3339(text), "{text}");
        }
        for text in [
            "2030-01-31",
            "2030-13-01T00:00:00Z",
            "2030-01-31T12:00:00",
            "tomorrow",
            "2030-01-31T1:00:00Z",
        ] {
            assert!(!is_rfc3339(text), "{text}");
        }
    }

    #[test]
    fn checks_names() {
        assert!(is_project_name("web-1.api_v2") && !is_project_name("-web") && !is_project_name(""));
        assert!(is_item_name("review.md") && !is_item_name(".hidden") && !is_item_name("a/b"));
        assert!(is_env_name("RUST_LOG") && !is_env_name("rust_log") && !is_env_name("1X"));
        assert!(is_kind("git") && !is_kind("Git") && !is_kind(""));
    }
}
