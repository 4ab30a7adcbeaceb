#!/usr/bin/env bash
# Runs the whole test suite, against SQLite and PostgreSQL. Unless RDEV_TEST_DATABASE_URL points
# at a server already, it starts a throwaway PostgreSQL cluster in a temporary directory on a free
# port (installing Debian's postgresql package first if needed) and removes it afterwards.
# Extra arguments go to `cargo test` (for the gateway workspace and for the plugins workspace).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/postgres.sh
. scripts/postgres.sh

# Makes sure program $1 is on PATH, installing Debian package $2 when it is not (as root only).
need_program() {
  command -v "$1" >/dev/null && return
  if [ "$(id -u)" != 0 ]; then
    echo "$1 is not installed: run 'sudo apt-get install -y $2'" >&2
    exit 1
  fi
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
}

# The sanitizer's differential test runs scripts in real dash and bash.
need_program dash dash
need_program bash bash

# The alert rules and the dashboard's queries are checked by promtool (tests/e2e/observability.rs),
# which Debian ships in its prometheus package.
need_program promtool prometheus

# The web console is tested in a real browser: Debian's Chromium driven through WebDriver
# (chromedriver) by Python's selenium (tests/e2e/console.rs).
need_program chromium chromium
need_program chromedriver chromium-driver
if ! python3 -c 'import selenium' 2>/dev/null; then
  python3 -m pip install --quiet selenium
fi

# The OpenAPI document is checked by the reference validator.
if ! command -v openapi-spec-validator >/dev/null; then
  python3 -m pip install --quiet openapi-spec-validator
fi

# Webhook signatures are checked by the reference Standard Webhooks verifier.
if ! python3 -c 'import standardwebhooks' 2>/dev/null; then
  python3 -m pip install --quiet standardwebhooks
fi

# The real Claude Code CLI (npm) takes every flag the gateway passes to `claude` runs
# (tests/e2e/claude_cli.rs); installed once per machine, in the user's cache.
CLAUDE_CLI_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/rdev-test/claude-code"
if [ ! -x "$CLAUDE_CLI_DIR/node_modules/.bin/claude" ]; then
  need_program npm npm
  npm install --silent --no-audit --no-fund --prefix "$CLAUDE_CLI_DIR" @anthropic-ai/claude-code >/dev/null
fi
export RDEV_TEST_CLAUDE_CLI="$CLAUDE_CLI_DIR/node_modules/.bin/claude"

# Plugins in Python and JavaScript are built by their languages' own tools (tests/e2e/authoring.rs):
# componentize-py from PyPI, ComponentizeJS from npm (once per machine, in the user's cache).
if [ "$(componentize-py --version 2>/dev/null)" != "componentize-py 0.25.1" ]; then
  python3 -m pip install --quiet componentize-py==0.25.1
fi
COMPONENTIZE_JS_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/rdev-test/componentize-js"
if [ ! -x "$COMPONENTIZE_JS_DIR/node_modules/.bin/componentize-js" ]; then
  need_program npm npm
  npm install --silent --no-audit --no-fund --prefix "$COMPONENTIZE_JS_DIR" @bytecodealliance/componentize-js@0.23.0 >/dev/null
fi
export PATH="$COMPONENTIZE_JS_DIR/node_modules/.bin:$PATH"

if [ -z "${RDEV_TEST_DATABASE_URL:-}" ]; then
  start_postgres
  export RDEV_TEST_DATABASE_URL="$PG_URL"
fi
cargo test --workspace "$@"
# The default plugins' and the plugin guide's tutorial plugin's own tests: their fixtures through
# the SDK's native harness.
cargo test --manifest-path plugins/Cargo.toml "$@"
cargo test --manifest-path docs/plugin-tutorial/Cargo.toml "$@"
