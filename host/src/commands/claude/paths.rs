//! Where a tool call may touch files: inside the project's workspace, never in `.git/`
//! internals (for writes), and never through a symlink that leads out of it.

use std::path::{Component, Path, PathBuf};

/// Whether a path is read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    Read,
    Write,
}

/// `path` resolved against `workspace` and normalized without touching the file system, or
/// why it is refused.
fn lexical(workspace: &Path, path: &str) -> Result<PathBuf, String> {
    if path.is_empty() || path.contains('\0') {
        return Err("the path is empty or contains NUL".into());
    }
    let joined = workspace.join(path);
    let mut normal = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::ParentDir => {
                if !normal.pop() {
                    return Err(format!("`{path}` leads above the file system's root"));
                }
            }
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    if !normal.starts_with(workspace) {
        return Err(format!("`{path}` is outside the project's workspace"));
    }
    Ok(normal)
}

/// Checks a path a tool call names. `local` says whether the workspace is on this machine, so
/// that symlinks can be followed; in a pod only the lexical rules apply.
pub(super) fn check(workspace: &Path, path: &str, access: Access, local: bool) -> Result<(), String> {
    let resolved = lexical(workspace, path)?;
    let inside = resolved.strip_prefix(workspace).unwrap_or(&resolved);
    if access == Access::Write && inside.components().any(|c| c.as_os_str() == ".git") {
        return Err(format!("`{path}` is inside the repository's `.git` internals"));
    }
    if local {
        follow_symlinks(workspace, &resolved, path)?;
    }
    Ok(())
}

/// Refuses a path whose deepest existing ancestor (or the file itself, when it exists)
/// resolves outside the workspace.
fn follow_symlinks(workspace: &Path, resolved: &Path, path: &str) -> Result<(), String> {
    let root = workspace
        .canonicalize()
        .map_err(|e| format!("the workspace cannot be resolved: {e}"))?;
    let existing = resolved
        .ancestors()
        .find(|p| p.symlink_metadata().is_ok())
        .unwrap_or(workspace);
    // A dangling symlink resolves nowhere: where a write through it would land is unknown.
    let real = existing
        .canonicalize()
        .map_err(|_| format!("`{path}` goes through a symlink that cannot be resolved"))?;
    if !real.starts_with(&root) {
        return Err(format!("`{path}` leads out of the workspace through a symlink"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_rules_hold_without_the_file_system() {
        let ws = Path::new("/w/demo");
        for ok in ["src/main.rs", "/w/demo/a.txt", "./a/../b", "a/.gitignore"] {
            check(ws, ok, Access::Write, false).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "../outside.txt",
            "/etc/passwd",
            "a/../../x",
            "",
            "/w/demo2/x",
            "/w/demo/.git/config",
        ] {
            assert!(check(ws, bad, Access::Write, false).is_err(), "{bad}");
        }
        check(ws, ".git/HEAD", Access::Read, false).unwrap();
        assert!(check(ws, "sub/.git/hooks/pre-commit", Access::Write, false).is_err());
    }

    #[test]
    fn symlinks_out_of_the_workspace_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        let ws = tempfile::tempdir().unwrap();
        let root = ws.path();
        std::fs::create_dir(root.join("dir")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("escape")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("f"), root.join("link-file")).unwrap();
        std::os::unix::fs::symlink(root.join("dir"), root.join("inner")).unwrap();
        check(root, "dir/new.txt", Access::Write, true).unwrap();
        check(root, "inner/new.txt", Access::Write, true).unwrap();
        check(root, "not/yet/there.txt", Access::Write, true).unwrap();
        for bad in ["escape/x.txt", "escape", "link-file"] {
            let err = check(root, bad, Access::Write, true).unwrap_err();
            assert!(err.contains("symlink"), "{bad}: {err}");
        }
    }
}
