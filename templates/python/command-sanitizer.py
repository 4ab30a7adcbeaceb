"""{{name}}: a command sanitizer that refuses scripts running a refused program.

A `shell` command is parsed with the gateway's shell parser and every simple command is judged,
wherever it is nested (subshells, `$(...)`, loops, functions...). A program is matched by the
basename of its literal name, so `rm`, `'rm'` and `/bin/rm` are the same program; a program whose
name is only known when the script runs (`$tool`) is not matched. Other kinds of commands (argv
kinds such as `git`, `claude` prompts) are not scripts and are allowed.

Configuration: {"refused_programs": ["rm", ...]}; the default refuses `rm`.
"""

import wit_world
from wit_world.imports import types

from rdev_plugin import ScriptParseError, allow, deny, log, parse_config, parse_script, program

DEFAULTS = {"refused_programs": ["rm"]}


class WitWorld(wit_world.WitWorld):
    # componentize-py makes a new `WitWorld` object for every call, so the configuration lives
    # on the class. The host runs `configure` once when a version loads and snapshots the
    # configured instance: every call starts from that snapshot, configured.
    config = parse_config("", DEFAULTS)

    def configure(self, config: str) -> None:
        WitWorld.config = parse_config(config, DEFAULTS)

    def self_test(self) -> list[types.SanitizerCase]:
        # May be empty; cases returned here must hold under ANY configuration the plugin
        # accepts, since the host runs them against the configuration it is about to use.
        return []

    def sanitize(self, command: types.Command, context: types.CommandContext) -> types.Verdict:
        if command.kind != "shell" or command.script is None:
            return allow()
        try:
            script = parse_script(command.script)
        except ScriptParseError as error:
            return deny(f"the script cannot be parsed: {error.message}")
        refused = set(WitWorld.config["refused_programs"])
        for simple in script.simple_commands():
            name = program(simple)
            if name in refused:
                log.info("refused a program", program=name, project=context.project)
                return deny(f"program `{name}` is refused")
        return allow()
