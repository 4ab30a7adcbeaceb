//! The plugin's fixtures and bundled invariants, run natively.

use super::ShellSanitizer;
use rdev_plugin_sdk::testing;

#[test]
fn fixtures_pass() {
    testing::run_sanitizer::<ShellSanitizer>("fixtures.json").assert_passed();
}

#[test]
fn configured_fixtures_pass() {
    testing::run_sanitizer::<ShellSanitizer>("fixtures-configured.json").assert_passed();
}

#[test]
fn invariants_hold_under_default_permissive_and_strict_configs() {
    for config in [
        "",
        r#"{"programs": ["sh", "eval", "curl", "sudo"], "extra_programs": ["bash"], "allow_claude": false}"#,
        r#"{"checks": {"recursive_delete": false, "download_to_interpreter": false, "privilege": false,
            "indirect_execution": false, "inline_code": false, "outside_workspace": false}, "argv_kinds": {"git": null, "npm": {}}}"#,
    ] {
        testing::self_test_sanitizer::<ShellSanitizer>(config).assert_passed();
    }
}

#[test]
fn refuses_unknown_configuration_fields() {
    let report = testing::run_sanitizer::<ShellSanitizer>(r#"{"config": {"program": ["ls"]}, "sanitizer": []}"#);
    assert!(!report.passed());
    assert!(report.cases[0].actual.contains("unknown field `program`"), "{report}");
}

#[test]
fn refuses_argv_rules_for_shell_and_claude() {
    let report =
        testing::run_sanitizer::<ShellSanitizer>(r#"{"config": {"argv_kinds": {"shell": {}}}, "sanitizer": []}"#);
    assert!(
        report.cases[0].actual.contains("`shell` is not an argv kind"),
        "{report}"
    );
}
