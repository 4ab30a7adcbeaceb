//! Names that end up in paths and pod names (projects, command kinds, plugin and Claude item
//! names): one rule, so that none of them can be hidden or reach outside its directory.

/// Whether `name` is a usable project (or command kind) name: 1–63 characters of
/// `[A-Za-z0-9._-]`, starting with a letter or digit.
pub fn is_valid_name(name: &str) -> bool {
    is_safe_name(name, 63)
}

/// Whether `name` has 1–`max_len` characters of `[A-Za-z0-9._-]` and starts with a letter or
/// digit: never hidden, never a path.
pub fn is_safe_name(name: &str, max_len: usize) -> bool {
    let mut chars = name.chars();
    name.len() <= max_len
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_names() {
        for ok in ["demo", "a", "my-proj_1.2"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", ".hidden", "-x", "a/b", "..", "a b", &"x".repeat(64)] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }
}
