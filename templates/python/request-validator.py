"""{{name}}: a request validator that refuses commands setting forbidden environment variables.

Only `command` requests are judged (other resources, such as `key`, pass). Each forbidden name
in the request's `env` object is one field error, so a client sees all of them at once.

Configuration: {"forbidden_env": ["LD_PRELOAD", ...]}; the default forbids `LD_PRELOAD`.
"""

import wit_world
from wit_world.imports import types

from rdev_plugin import NotJSON, field_error, parse_config, parse_json

DEFAULTS = {"forbidden_env": ["LD_PRELOAD"]}


class WitWorld(wit_world.WitWorld):
    # componentize-py makes a new `WitWorld` object for every call, so the configuration lives
    # on the class. The host runs `configure` once when a version loads and snapshots the
    # configured instance: every call starts from that snapshot, configured.
    config = parse_config("", DEFAULTS)

    def configure(self, config: str) -> None:
        WitWorld.config = parse_config(config, DEFAULTS)

    def self_test(self) -> list[types.ValidatorCase]:
        # May be empty; cases returned here must hold under ANY configuration the plugin
        # accepts, since the host runs them against the configuration it is about to use.
        return []

    def validate(self, resource: str, request: str) -> list[types.FieldError]:
        if resource != "command":
            return []
        try:
            body = parse_json(request)
        except NotJSON:
            body = None
        if not isinstance(body, dict):
            return [field_error("", "the request is not a JSON object")]
        env = body.get("env")
        if env is None:
            return []
        if not isinstance(env, dict):
            return [field_error("env", "must be an object")]
        forbidden = set(WitWorld.config["forbidden_env"])
        return [field_error(f"env.{key}", f"`{key}` may not be set") for key in env if key in forbidden]
