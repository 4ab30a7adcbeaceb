//! Lexical path checks: where a path lands relative to the workspace, without touching a
//! filesystem (a plugin has none).

/// Where a path lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Strictly inside the workspace.
    Inside,
    /// The workspace directory itself.
    Workspace,
    /// Anywhere else, including through `..` or a relative path when the workspace is unknown.
    Outside,
}

fn components(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty() && *c != ".")
}

/// Where `path` lands when resolved (lexically) from the workspace `workdir`.
pub fn place(workdir: &str, path: &str) -> Place {
    let base: Vec<&str> = components(workdir).collect();
    if !workdir.starts_with('/') || base.contains(&"..") {
        return Place::Outside;
    }
    let mut resolved = if path.starts_with('/') {
        Vec::new()
    } else {
        base.clone()
    };
    for component in components(path) {
        if component == ".." {
            resolved.pop();
        } else {
            resolved.push(component);
        }
    }
    match resolved.strip_prefix(base.as_slice()) {
        Some([]) => Place::Workspace,
        Some(_) => Place::Inside,
        None => Place::Outside,
    }
}

/// Whether a path component is a pattern that can match `..` (such as `.*`).
pub fn can_match_parent(path: &str) -> bool {
    components(path).any(|c| c.starts_with('.') && c.contains(['*', '?', '[']))
}

/// Whether `path` resolves to the root directory.
pub fn is_root(path: &str) -> bool {
    path.starts_with('/') && components(path).all(|c| c == "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORKDIR: &str = "/workspaces/demo";

    #[test]
    fn relative_paths_inside_the_workspace_stay_inside() {
        assert_eq!(place(WORKDIR, "out.txt"), Place::Inside);
        assert_eq!(place(WORKDIR, "a/../b/./c"), Place::Inside);
        assert_eq!(place(WORKDIR, "/workspaces/demo/target"), Place::Inside);
    }

    #[test]
    fn dot_dot_escapes_and_foreign_absolute_paths_are_outside() {
        assert_eq!(place(WORKDIR, "../other"), Place::Outside);
        assert_eq!(place(WORKDIR, "a/../../../etc"), Place::Outside);
        assert_eq!(place(WORKDIR, "/etc/passwd"), Place::Outside);
        assert_eq!(place(WORKDIR, "/workspaces/demo2/x"), Place::Outside);
    }

    #[test]
    fn the_workspace_itself_is_recognised() {
        assert_eq!(place(WORKDIR, "."), Place::Workspace);
        assert_eq!(place(WORKDIR, "../demo/"), Place::Workspace);
    }

    #[test]
    fn an_unknown_workspace_makes_everything_outside() {
        assert_eq!(place("", "out.txt"), Place::Outside);
        assert_eq!(place("relative", "out.txt"), Place::Outside);
    }

    #[test]
    fn recognises_root_and_parent_matching_globs() {
        assert!(is_root("/") && is_root("//") && is_root("/./..") && !is_root("/tmp"));
        assert!(can_match_parent(".*") && can_match_parent("a/.?*") && !can_match_parent("*.txt"));
    }
}
