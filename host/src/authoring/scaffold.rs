//! `rdev plugins new`: writes a plugin project for a world and a language — the entry file from
//! its template, the world's fixtures (the same file in every language), the WIT it was generated
//! for, the language's SDK (vendored for Rust, a shim module for Python and JavaScript), a README
//! with the three commands from nothing to live, and the project file.

use std::path::{Path, PathBuf};

use super::project::{Lang, PROJECT_FILE};
use super::{sources, vendor};
use crate::plugins::manifest::World;

/// The worlds that have templates.
pub const TEMPLATE_WORLDS: [World; 4] = [
    World::CommandSanitizer,
    World::RequestValidator,
    World::WebhookFormatter,
    World::ProjectDiscovery,
];

/// Why no project was written.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name cannot be a plugin's (nor a crate's or a file's).
    #[error("`{0}` is not a plugin name: use 1-63 lowercase letters, digits and `-`, starting with a letter")]
    Name(String),
    /// No template for the world.
    #[error(
        "there is no template for the `{0}` world (templates: command-sanitizer, request-validator, webhook-formatter, project-discovery)"
    )]
    World(&'static str),
    /// The directory holds files already: nothing is overwritten.
    #[error("{0} exists and is not empty: nothing was written")]
    NotEmpty(PathBuf),
    /// Writing failed.
    #[error("cannot write {0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// Writes the project of plugin `name` into `dir` (created; it must not hold files yet) and
/// returns the files written, relative to `dir`.
pub fn scaffold(dir: &Path, name: &str, world: World, lang: Lang) -> Result<Vec<PathBuf>, ScaffoldError> {
    if !is_project_name(name) {
        return Err(ScaffoldError::Name(name.to_owned()));
    }
    if !TEMPLATE_WORLDS.contains(&world) {
        return Err(ScaffoldError::World(world.as_str()));
    }
    if std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(ScaffoldError::NotEmpty(dir.to_owned()));
    }
    let files = project_files(name, world, lang);
    for (path, contents) in &files {
        let target = dir.join(path);
        let written = target
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&target, contents));
        written.map_err(|e| ScaffoldError::Io(target, e))?;
    }
    Ok(files.into_iter().map(|(path, _)| path).collect())
}

/// Lowercase letters, digits and `-`, starting with a letter: a plugin name, a crate name (with
/// `_`) and a file name at once.
fn is_project_name(name: &str) -> bool {
    name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
}

/// Every file of the project, with its contents.
fn project_files(name: &str, world: World, lang: Lang) -> Vec<(PathBuf, Vec<u8>)> {
    let world_name = world.as_str();
    let render = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{world}}", world_name)
            .replace("{{lang}}", lang.as_str())
            .replace(
                "{{config}}",
                sources::text(&format!("templates/config/{world_name}.toml")).trim_end(),
            )
            .into_bytes()
    };
    let template = |path: &str| render(sources::text(&format!("templates/{path}")));
    let mut files = vec![
        (PathBuf::from(PROJECT_FILE), template("rdev-plugin.toml")),
        ("README.md".into(), template(&format!("{}/README.md", lang.as_str()))),
        ("fixtures.json".into(), template(&format!("fixtures/{world_name}.json"))),
        (".gitignore".into(), b"/dist/\n/target/\n__pycache__/\n".to_vec()),
    ];
    files.extend(sources::under("wit").map(|(path, bytes)| (Path::new("wit").join(path), bytes.to_vec())));
    match lang {
        Lang::Rust => {
            files.push(("Cargo.toml".into(), template("rust/Cargo.toml")));
            files.push(("src/lib.rs".into(), template(&format!("rust/{world_name}.rs"))));
            files.push(("tests/fixtures.rs".into(), rust_test(world, &render)));
            files.extend(vendor::rust_sdk());
        }
        Lang::Python => {
            files.push(("app.py".into(), template(&format!("python/{world_name}.py"))));
            files.push((
                "rdev_plugin.py".into(),
                sources::text("sdk-python/rdev_plugin.py").into(),
            ));
        }
        Lang::Js => {
            files.push(("app.js".into(), template(&format!("js/{world_name}.js"))));
            files.push(("rdev-plugin.js".into(), sources::text("sdk-js/rdev-plugin.js").into()));
        }
    }
    files
}

/// The Rust project's native test: its fixtures through the SDK's harness for its world.
fn rust_test(world: World, render: &dyn Fn(&str) -> Vec<u8>) -> Vec<u8> {
    let runner = match world {
        World::CommandSanitizer => "run_sanitizer",
        World::RequestValidator => "run_validator",
        World::WebhookFormatter => "run_formatter",
        World::ProjectDiscovery => "run_discovery",
        World::ToolPolicy => "run_tool_policy",
    };
    render(&sources::text("templates/rust/tests/fixtures.rs").replace("{{runner}}", runner))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_suit_a_crate_and_a_file() {
        for ok in ["no-rm", "a", "guard2"] {
            assert!(is_project_name(ok), "{ok}");
        }
        for bad in ["", "No-rm", "2x", "a_b", "a/b", "-x", "x-", "a.b", &"x".repeat(64)] {
            assert!(!is_project_name(bad), "{bad}");
        }
    }

    #[test]
    fn every_language_and_world_has_its_files_and_no_placeholder_is_left() {
        for lang in [Lang::Rust, Lang::Python, Lang::Js] {
            for world in TEMPLATE_WORLDS {
                let files = project_files("no-rm", world, lang);
                for (path, contents) in &files {
                    let text = String::from_utf8_lossy(contents);
                    for placeholder in [
                        "{{name}}",
                        "{{crate}}",
                        "{{world}}",
                        "{{lang}}",
                        "{{config}}",
                        "{{runner}}",
                    ] {
                        assert!(
                            !text.contains(placeholder),
                            "{lang:?} {world:?}: {} keeps {placeholder}",
                            path.display()
                        );
                    }
                }
                let project: super::super::Project = toml::from_str(std::str::from_utf8(&files[0].1).unwrap()).unwrap();
                assert_eq!(
                    (project.name.as_str(), project.world, project.lang),
                    ("no-rm", world, lang)
                );
            }
        }
    }

    #[test]
    fn refuses_a_directory_with_files_and_bad_names() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
        let error = scaffold(dir.path(), "no-rm", World::CommandSanitizer, Lang::Python).unwrap_err();
        assert!(matches!(error, ScaffoldError::NotEmpty(_)), "{error}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let error = scaffold(&dir.path().join("x"), "No_rm", World::CommandSanitizer, Lang::Js).unwrap_err();
        assert!(error.to_string().contains("not a plugin name"), "{error}");
        let error = scaffold(&dir.path().join("y"), "tools", World::ToolPolicy, Lang::Js).unwrap_err();
        assert!(
            error.to_string().contains("no template for the `tool-policy` world"),
            "{error}"
        );
    }
}
