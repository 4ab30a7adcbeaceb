"""{{name}}: a webhook formatter that renders each event as one line of plain text.

    [PREFIX] EVENT_TYPE ID in PROJECT, exit code N (SUBSCRIPTION)

The command's id, project and exit code appear when the event carries them, so the same line
works for every event type: `[ci] command.failed cmd_2 in web, exit code 1 (sub_test)`.

Configuration: {"prefix": "..."}; the default prefix is `rdev`.
"""

import wit_world
from wit_world.imports import types

from rdev_plugin import NotJSON, fail, parse_config, parse_json, rendered

DEFAULTS = {"prefix": "rdev"}


class WitWorld(wit_world.WitWorld):
    # componentize-py makes a new `WitWorld` object for every call, so the configuration lives
    # on the class. The host runs `configure` once when a version loads and snapshots the
    # configured instance: every call starts from that snapshot, configured.
    config = parse_config("", DEFAULTS)

    def configure(self, config: str) -> None:
        WitWorld.config = parse_config(config, DEFAULTS)

    def self_test(self) -> list[types.FormatterCase]:
        # May be empty; cases returned here must hold under ANY configuration the plugin
        # accepts, since the host runs them against the configuration it is about to use.
        return []

    def format(self, event_type: str, event: str, target: types.WebhookTarget) -> types.Rendered:
        try:
            body = parse_json(event)
        except NotJSON:
            fail("the event is not JSON")
        line = f"[{WitWorld.config['prefix']}] {event_type}"
        command = body.get("command") if isinstance(body, dict) else None
        if isinstance(command, dict):
            if isinstance(command.get("id"), str):
                line += f" {command['id']}"
            if isinstance(command.get("project"), str):
                line += f" in {command['project']}"
            exit_code = command.get("exit_code")
            # JSON true/false are not exit codes, though Python's bool is an int.
            if isinstance(exit_code, (int, float)) and not isinstance(exit_code, bool):
                line += f", exit code {exit_code}"
        line += f" ({target.subscription})"
        return rendered("text/plain; charset=utf-8", line)
