//! The plugin's fixtures and bundled invariants, run natively (`cargo test`).

use no_force_push::NoForcePush;
use rdev_plugin_sdk::testing;

#[test]
fn fixtures_pass() {
    testing::run_sanitizer::<NoForcePush>("fixtures.json").assert_passed();
}

#[test]
fn invariants_hold_under_any_config() {
    for config in [
        "",
        r#"{"protected_branches": ["main"]}"#,
        r#"{"protected_branches": ["feature"]}"#,
    ] {
        testing::self_test_sanitizer::<NoForcePush>(config).assert_passed();
    }
}

#[test]
fn refuses_a_misspelt_or_empty_configuration() {
    for (config, error) in [
        (
            r#"{"protected_branch": ["main"]}"#,
            "unknown field `protected_branch`",
        ),
        (
            r#"{"protected_branches": []}"#,
            "protect at least one branch",
        ),
    ] {
        let report = testing::run_sanitizer::<NoForcePush>(&format!(
            r#"{{"config": {config}, "sanitizer": []}}"#
        ));
        assert!(report.cases[0].actual.contains(error), "{report}");
    }
}
