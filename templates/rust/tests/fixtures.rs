//! The plugin's fixtures, run natively through the SDK's harness (`cargo test`); `rdev plugins
//! test {{name}}` runs the same file against the built component.

use rdev_plugin_sdk::testing;

#[test]
fn fixtures_pass() {
    testing::{{runner}}::<{{crate}}::Plugin>("fixtures.json").assert_passed();
}
