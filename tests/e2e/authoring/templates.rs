//! Every template builds with its language's tool and passes its world's fixtures against the
//! component (the same fixture file in each language: the same rules); the Rust ones pass them
//! natively too (`cargo test`, as their README says).

use super::run;

/// The worlds besides the command sanitizer, which the three-command tests cover.
const WORLDS: [&str; 3] = ["request-validator", "webhook-formatter", "project-discovery"];

/// `new`, `build` and `test` for each world in `lang`, in one fresh directory.
fn every_world(lang: &str) -> tempfile::TempDir {
    let work = tempfile::tempdir().unwrap();
    for world in WORLDS {
        let name = format!("my-{world}");
        run(
            work.path(),
            &["plugins", "new", &name, "--world", world, "--lang", lang],
            &[],
        );
        run(work.path(), &["plugins", "build", &name], &[]);
        let report = run(work.path(), &["plugins", "test", &name], &[]);
        assert!(report.contains("cases passed"), "{lang} {world}: {report}");
    }
    work
}

#[test]
fn the_python_templates_of_every_world_pass_their_fixtures() {
    every_world("python");
}

#[test]
fn the_javascript_templates_of_every_world_pass_their_fixtures() {
    every_world("js");
}

#[test]
fn the_rust_templates_of_every_world_pass_their_fixtures_as_components_and_natively() {
    let work = every_world("rust");
    for world in WORLDS {
        let dir = work.path().join(format!("my-{world}"));
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cargo = super::user_command(cargo, &dir, "authoring-native");
        cargo.args(["test", "--quiet"]);
        let output = cargo.output().unwrap();
        assert!(
            output.status.success(),
            "{world}: cargo test failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
