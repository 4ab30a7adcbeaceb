"""{{name}}: project discovery that turns every inventory item into a project, unless hidden.

An item is hidden when its label `HIDDEN_LABEL` is "true" (any other value shows it). Projects
keep the inventory's order, name and workspace.

Configuration: {"hidden_label": "..."}; the default label is `rdev.hidden`.
"""

import wit_world
from wit_world.imports import types

from rdev_plugin import parse_config, project

DEFAULTS = {"hidden_label": "rdev.hidden"}


class WitWorld(wit_world.WitWorld):
    # componentize-py makes a new `WitWorld` object for every call, so the configuration lives
    # on the class. The host runs `configure` once when a version loads and snapshots the
    # configured instance: every call starts from that snapshot, configured.
    config = parse_config("", DEFAULTS)

    def configure(self, config: str) -> None:
        WitWorld.config = parse_config(config, DEFAULTS)

    def self_test(self) -> list[types.DiscoveryCase]:
        # May be empty; cases returned here must hold under ANY configuration the plugin
        # accepts, since the host runs them against the configuration it is about to use.
        return []

    def discover(self, inventory: list[types.InventoryItem]) -> list[types.Project]:
        hidden_label = WitWorld.config["hidden_label"]
        return [
            project(item.name, item.workspace)
            for item in inventory
            if dict(item.labels).get(hidden_label) != "true"
        ]
