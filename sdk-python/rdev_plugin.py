"""Helpers for writing rdev plugins in Python with componentize-py.

A plugin is the module ``app`` (``app.py``) defining ``class WitWorld(wit_world.WitWorld)``;
componentize-py generates ``wit_world`` from the project's ``wit/`` when it builds. This module
is copied into every project next to ``app.py`` and wraps the generated bindings so that the
entry file reads as policy, not plumbing::

    import wit_world
    from rdev_plugin import allow, deny, parse_config, parse_script, program

    DEFAULTS = {"refused_programs": ["rm"]}

    class WitWorld(wit_world.WitWorld):
        def configure(self, config: str) -> None:
            WitWorld.config = parse_config(config, DEFAULTS)  # raises configure's `err`

What is here:

- results: :func:`allow`, :func:`deny`, :func:`rewrite` (sanitizer verdicts),
  :func:`field_error` (validators), :func:`rendered` (formatters), :func:`project` (discovery),
  and :func:`fail`, which raises the ``err`` of an export that returns a ``result``;
- configuration: :func:`parse_config`, the JSON rules every rdev plugin follows;
- JSON input: :func:`parse_json`, which never raises anything but :class:`NotJSON`;
- shell scripts (worlds that import ``shell``): :func:`parse_script` and the :class:`Script`
  it returns, :func:`word_literal` and :func:`program`;
- logging into the gateway's log: ``log.debug("message", key=value)`` and its siblings.

An uncaught exception traps the component and the gateway then fails closed, so every helper
documents what it raises, and none raises on any input besides what it documents.
"""

import json
import re
from typing import Any, Callable, Iterator, NoReturn, Optional, Union

from componentize_py_types import Err
from wit_world.imports import log as _wit_log
from wit_world.imports import types

# Only the worlds that import `shell` (command-sanitizer, tool-policy) have these bindings;
# importing here, not on first use, keeps the import in the build-time snapshot. The ignores
# are for type checkers, which see one world's bindings at a time; annotations name its types
# in quotes since `_shell` is None in the other worlds.
try:
    from wit_world.imports import shell as _shell  # type: ignore[attr-defined, unused-ignore]
except ImportError:
    _shell = None  # type: ignore[assignment, unused-ignore]

__all__ = [
    "NotJSON",
    "Script",
    "ScriptParseError",
    "allow",
    "deny",
    "fail",
    "field_error",
    "log",
    "parse_config",
    "parse_json",
    "parse_script",
    "program",
    "project",
    "rendered",
    "rewrite",
    "word_literal",
]


def allow() -> types.Verdict:
    """The sanitizer verdict that lets the command through unchanged."""
    return types.Verdict_Allow()


def deny(reason: str) -> types.Verdict:
    """The sanitizer verdict that refuses the command; ``reason`` is shown to the client."""
    return types.Verdict_Deny(reason)


def rewrite(command: types.Command) -> types.Verdict:
    """The sanitizer verdict that replaces the command by ``command`` (judged again by the host)."""
    return types.Verdict_Rewrite(command)


def field_error(field: str, message: str) -> types.FieldError:
    """One validator objection: ``field`` is a JSON path such as ``env.HOME`` ("" for the whole)."""
    return types.FieldError(field=field, message=message)


def rendered(content_type: str, body: Union[str, bytes]) -> types.Rendered:
    """A formatted webhook body; a ``str`` body is sent as UTF-8.

    Raises ``UnicodeEncodeError`` for a ``str`` holding an unpaired surrogate (text from the host
    or from :func:`parse_json` never does).
    """
    data = body.encode("utf-8") if isinstance(body, str) else body
    return types.Rendered(content_type=content_type, body=data)


def project(name: str, workspace: str, description: Optional[str] = None) -> types.Project:
    """A discovered project; ``workspace`` must be one the inventory offered."""
    return types.Project(name=name, workspace=workspace, description=description)


def fail(message: str) -> NoReturn:
    """Ends the current export with ``err(message)`` (for exports returning a ``result``)."""
    raise Err(message)


class NotJSON(ValueError):
    """Raised by :func:`parse_json` for text that is not JSON; ``str()`` says why."""


# The limit of the Rust side of rdev (serde_json): Python's parser recurses, and a few thousand
# levels exhaust the WebAssembly stack, which traps instead of raising.
_MAX_DEPTH = 128

# A string (possibly unterminated, so that the scan stays linear) or a bracket.
_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]++|\\.)*+"?|[\[\]{}]', re.DOTALL)


def _too_deep(text: str) -> bool:
    if text.count("[") + text.count("{") <= _MAX_DEPTH:
        return False
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > _MAX_DEPTH:
                return True
        elif token in ("]", "}"):
            depth -= 1
    return False


def _refuse_constant(name: str) -> NoReturn:
    # Python reads NaN and Infinity; JSON (and the Rust side of rdev) does not.
    raise NotJSON(f"`{name}` is not a JSON value")


def parse_json(text: str) -> Any:
    """Parses JSON text as strictly as the Rust side of rdev does.

    Raises :class:`NotJSON` for anything else, and for what Python alone would accept: NaN and
    Infinity, unpaired surrogates in ``\\u`` escapes (they are no text, and returning one to the
    host would trap), and more than 128 nested arrays and objects.
    """
    if _too_deep(text):
        raise NotJSON(f"nested more than {_MAX_DEPTH} levels deep")
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as error:
        raise NotJSON(str(error)) from None
    if "\\u" in text:
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise NotJSON("an unpaired surrogate in a \\u escape") from None
    return value


def _is_int(value: Any) -> bool:
    # Python's bool is an int; JSON's true is not a number.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


# The types a configuration key may have, as named in refusals, each with its check.
_CONFIG_TYPES: list[tuple[str, Callable[[Any], bool]]] = [
    ("a boolean", lambda value: isinstance(value, bool)),
    ("an integer", _is_int),
    ("a string", lambda value: isinstance(value, str)),
    ("a list of strings", _is_strings),
]


def _config_type(key: str, default: Any) -> tuple[str, Callable[[Any], bool]]:
    for config_type in _CONFIG_TYPES:
        if config_type[1](default):
            return config_type
    raise TypeError(f"the default of `{key}` is none of a list of strings, a string, a bool or an int")


def parse_config(text: str, defaults: dict[str, Any]) -> dict[str, Any]:
    """Parses the JSON handed to ``configure``, the same way in every rdev plugin.

    ``defaults`` names every key the plugin accepts with its default value, whose type (list of
    strings, string, bool or int) is the type the key must have. "" (or whitespace), ``null``
    and ``{}`` give the defaults; otherwise the text must be a JSON object whose keys are among
    the defaults', and the result is the defaults updated with it (lists are fresh copies).

    Raises ``Err(message)`` on a refusal, so that calling it from ``configure`` refuses the
    configuration with that message: ``invalid configuration: not JSON: ...``, ``...: expected
    a JSON object``, ``...: unknown field `KEY``` or ``...: `KEY` must be a list of strings``
    (or ``a string``, ``a boolean``, ``an integer``).
    Raises ``TypeError`` if a default has none of those types (a mistake in the plugin).
    """
    types_by_key = {key: _config_type(key, default) for key, default in defaults.items()}
    config = {key: list(value) if isinstance(value, list) else value for key, value in defaults.items()}
    if not text.strip():
        return config
    try:
        given = parse_json(text)
    except NotJSON as error:
        fail(f"invalid configuration: not JSON: {error}")
    if given is None:
        return config
    if not isinstance(given, dict):
        fail("invalid configuration: expected a JSON object")
    for key, value in given.items():
        if key not in types_by_key:
            fail(f"invalid configuration: unknown field `{key}`")
        type_name, has_type = types_by_key[key]
        if not has_type(value):
            fail(f"invalid configuration: `{key}` must be {type_name}")
        config[key] = value
    return config


class ScriptParseError(Exception):
    """Raised by :func:`parse_script` when the host's parser refuses a script.

    ``message`` says what is wrong (e.g. "unterminated double quote"); ``start`` and ``end`` are
    the byte range of the script it is about.
    """

    def __init__(self, message: str, start: int, end: int) -> None:
        super().__init__(message)
        self.message = message
        self.start = start
        self.end = end


class Script:
    """A parsed shell script: the host's ``shell.script`` record with walking helpers.

    The record itself is :attr:`raw`; its ``scopes`` (scope 0 is the whole script) and
    ``pipelines`` (those of every scope, in source order) are also attributes here.
    """

    def __init__(self, raw: "_shell.Script") -> None:
        self.raw = raw
        self.scopes = raw.scopes
        self.pipelines = raw.pipelines

    def simple_commands(self) -> Iterator["_shell.SimpleCommand"]:
        """Every simple command (``shell.SimpleCommand``) of every pipeline of every scope.

        Subshells, groups, loops, substitutions and function bodies included, in source order.
        A bare assignment or redirection is a simple command without words.
        """
        for pipeline in self.pipelines:
            for element in pipeline.elements:
                if isinstance(element, _shell.Element_Simple):
                    yield element.value


def parse_script(script: str) -> Script:
    """Parses a shell script with the host's parser (the ``shell`` import).

    Raises :class:`ScriptParseError` when the script does not parse, and ``RuntimeError`` in a
    world that does not import ``shell``.
    """
    if _shell is None:
        raise RuntimeError("this plugin's world does not import `shell`")
    try:
        return Script(_shell.parse(script))
    except Err as error:
        raise ScriptParseError(error.value.message, error.value.span.start, error.value.span.end) from None


def word_literal(word: "_shell.Word") -> Optional[str]:
    """The text of a ``shell.Word`` if all its parts are literal, else ``None``.

    ``'rm'`` and ``r"m"`` are ``rm``; ``$x``, ``~``, ``*.txt`` or ``$(...)`` make it ``None``,
    since their text is only known when the shell runs.
    """
    text = []
    for part in word.parts:
        if not isinstance(part, _shell.WordPart_Literal):
            return None
        text.append(part.value)
    return "".join(text)


def program(command: "_shell.SimpleCommand") -> Optional[str]:
    """The basename of a ``shell.SimpleCommand``'s program (``/bin/rm`` gives ``rm``).

    ``None`` when the command has no words or its first word is not literal (see
    :func:`word_literal`).
    """
    if not command.words:
        return None
    name = word_literal(command.words[0])
    return None if name is None else name.rsplit("/", 1)[-1]


class _Log:
    """Structured records into the gateway's log, tagged by the host with the plugin's name.

    Each method takes a message and keyword fields, whose values are written with ``str()``:
    ``log.info("denied", program="rm")``. The host bounds sizes and rate and drops the excess.
    """

    def _write(self, level: _wit_log.Level, message: str, fields: dict[str, object]) -> None:
        _wit_log.log(level, message, [(key, str(value)) for key, value in fields.items()])

    def trace(self, message: str, **fields: object) -> None:
        """Writes a record at level ``trace`` (very detailed tracing)."""
        self._write(_wit_log.Level.TRACE, message, fields)

    def debug(self, message: str, **fields: object) -> None:
        """Writes a record at level ``debug``."""
        self._write(_wit_log.Level.DEBUG, message, fields)

    def info(self, message: str, **fields: object) -> None:
        """Writes a record at level ``info`` (normal operation)."""
        self._write(_wit_log.Level.INFO, message, fields)

    def warn(self, message: str, **fields: object) -> None:
        """Writes a record at level ``warn`` (something looks wrong)."""
        self._write(_wit_log.Level.WARN, message, fields)

    def error(self, message: str, **fields: object) -> None:
        """Writes a record at level ``error`` (something failed)."""
        self._write(_wit_log.Level.ERROR, message, fields)


log = _Log()
"""The plugin's logger: ``log.debug/info/warn/error(message, **fields)`` (and ``trace``)."""
