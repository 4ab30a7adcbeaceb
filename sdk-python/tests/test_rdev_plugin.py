"""Tests of the rdev_plugin shim, run natively in CPython (``python3 -m unittest``).

The bindings the shim wraps are generated for the run by ``componentize-py bindings`` from the
WIT in ``../../wit`` (or ``$RDEV_WIT_DIR``). Their import functions are stubs outside a
component, so the host's ``shell.parse`` and ``log.log`` are replaced by fakes that return the
records the host's parser makes for a few scripts.
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from typing import Any, Callable, Optional
from unittest import mock

SHIM_DIR = Path(__file__).resolve().parent.parent
WIT_DIR = Path(os.environ.get("RDEV_WIT_DIR") or SHIM_DIR.parent / "wit")
# Removed when the interpreter exits.
BINDINGS = tempfile.TemporaryDirectory(prefix="rdev-plugin-test-")


def generate_bindings(world: str) -> str:
    """Writes the Python bindings of `world` into a fresh directory and returns its path."""
    out = os.path.join(BINDINGS.name, world)
    subprocess.run(
        ["componentize-py", "-d", str(WIT_DIR), "-w", world, "bindings", out], check=True, capture_output=True
    )
    return out


# The shim and the modules it wraps can only be imported once the bindings exist.
sys.path[:0] = [generate_bindings("command-sanitizer"), str(SHIM_DIR)]

import rdev_plugin
from componentize_py_types import Err
from wit_world.imports import log as wit_log
from wit_world.imports import shell, types


# Records as the host's parser makes them. Spans are byte ranges of the script.


def span(start: int, end: int) -> shell.Span:
    return shell.Span(start=start, end=end)


def literal(start: int, text: str) -> shell.Word:
    """A word of one literal part, as written at `start`."""
    return shell.Word(span=span(start, start + len(text)), parts=[shell.WordPart_Literal(text)])


def simple(
    start: int, end: int, *words: shell.Word, assignments: tuple[shell.Assignment, ...] = ()
) -> shell.Element:
    command = shell.SimpleCommand(
        assignments=list(assignments), words=list(words), redirections=[], span=span(start, end)
    )
    return shell.Element_Simple(command)


def pipeline(scope: int, start: int, end: int, *elements: shell.Element) -> shell.Pipeline:
    return shell.Pipeline(scope=scope, negated=False, elements=list(elements), span=span(start, end))


def scope(
    kind: shell.ScopeKind,
    parent: Optional[int],
    start: int,
    end: int,
    name: Optional[str] = None,
    words: tuple[shell.Word, ...] = (),
) -> shell.Scope:
    return shell.Scope(kind=kind, parent=parent, name=name, words=list(words), span=span(start, end))


def parsed_scripts() -> dict[str, shell.Script]:
    """What the host's parser returns for the scripts the tests use."""
    kind = shell.ScopeKind
    return {
        "ls | rm -rf x": shell.Script(
            scopes=[scope(kind.SCRIPT, None, 0, 13)],
            pipelines=[
                pipeline(
                    0, 0, 13,
                    simple(0, 2, literal(0, "ls")),
                    simple(5, 13, literal(5, "rm"), literal(8, "-rf"), literal(12, "x")),
                )
            ],
            operators=[],
        ),
        # The outer pipeline comes first: the parser numbers pipelines in source order.
        "(cd sub && /bin/rm x)": shell.Script(
            scopes=[scope(kind.SCRIPT, None, 0, 21), scope(kind.SUBSHELL, 0, 0, 21)],
            pipelines=[
                pipeline(0, 0, 21, shell.Element_Compound(shell.CompoundCommand(scope=1, redirections=[]))),
                pipeline(1, 1, 7, simple(1, 7, literal(1, "cd"), literal(4, "sub"))),
                pipeline(1, 11, 20, simple(11, 20, literal(11, "/bin/rm"), literal(19, "x"))),
            ],
            operators=[shell.ListOperator(operator="&&", span=span(8, 10))],
        ),
        "echo $(for f in a; do shred $f; done)": shell.Script(
            scopes=[
                scope(kind.SCRIPT, None, 0, 37),
                scope(kind.COMMAND_SUBSTITUTION, 0, 5, 37),
                scope(kind.LOOP_CLAUSE, 1, 7, 36, name="f", words=(literal(16, "a"),)),
            ],
            pipelines=[
                pipeline(
                    0, 0, 37,
                    simple(
                        0, 37,
                        literal(0, "echo"),
                        shell.Word(span=span(5, 37), parts=[shell.WordPart_CommandSubstitution(1)]),
                    ),
                ),
                pipeline(1, 7, 36, shell.Element_Compound(shell.CompoundCommand(scope=2, redirections=[]))),
                pipeline(
                    2, 22, 30,
                    simple(
                        22, 30,
                        literal(22, "shred"),
                        shell.Word(span=span(28, 30), parts=[shell.WordPart_Parameter("f")]),
                    ),
                ),
            ],
            operators=[shell.ListOperator(operator=";", span=span(30, 31))],
        ),
        "A=1": shell.Script(
            scopes=[scope(kind.SCRIPT, None, 0, 3)],
            pipelines=[
                pipeline(
                    0, 0, 3,
                    simple(0, 3, assignments=(shell.Assignment(name="A", value=literal(2, "1"), span=span(0, 3)),)),
                )
            ],
            operators=[],
        ),
    }


def fake_parse() -> Callable[[str], shell.Script]:
    """A stand-in for `shell.parse`: known scripts parse, any other is refused as the host does."""
    scripts = parsed_scripts()

    def parse(script: str) -> shell.Script:
        if script in scripts:
            return scripts[script]
        raise Err(shell.ParseError(message="unterminated double quote", span=span(5, len(script))))

    return parse


def command_words(script: str) -> list[list[str]]:
    """The literal text of every word of every simple command of `script` ("?" if not literal)."""
    with mock.patch.object(shell, "parse", fake_parse()):
        parsed = rdev_plugin.parse_script(script)
    return [
        [rdev_plugin.word_literal(word) or "?" for word in command.words]
        for command in parsed.simple_commands()
    ]


class ParseConfigTest(unittest.TestCase):
    DEFAULTS = {"programs": ["rm"], "prefix": "rdev", "strict": False, "limit": 3}

    def refusal(self, text: str) -> str:
        with self.assertRaises(Err) as raised:
            rdev_plugin.parse_config(text, self.DEFAULTS)
        return str(raised.exception.value)

    def test_empty_text_null_and_an_empty_object_give_the_defaults(self) -> None:
        for text in ["", "  \n\t", "null", " null ", "{}", "{ }"]:
            with self.subTest(text=text):
                self.assertEqual(rdev_plugin.parse_config(text, self.DEFAULTS), self.DEFAULTS)

    def test_given_keys_replace_their_defaults_only(self) -> None:
        config = rdev_plugin.parse_config('{"programs": ["rm", "shred"], "limit": 0}', self.DEFAULTS)
        self.assertEqual(config, {"programs": ["rm", "shred"], "prefix": "rdev", "strict": False, "limit": 0})

    def test_the_defaults_are_never_shared_with_a_result(self) -> None:
        rdev_plugin.parse_config("", self.DEFAULTS)["programs"].append("ls")
        self.assertEqual(self.DEFAULTS["programs"], ["rm"])

    def test_an_unknown_key_is_refused(self) -> None:
        self.assertEqual(self.refusal('{"programs": [], "extra": 1}'), "invalid configuration: unknown field `extra`")

    def test_a_value_of_the_wrong_type_is_refused(self) -> None:
        cases = {
            '{"programs": "rm"}': "`programs` must be a list of strings",
            '{"programs": ["rm", 1]}': "`programs` must be a list of strings",
            '{"programs": null}': "`programs` must be a list of strings",
            '{"prefix": 7}': "`prefix` must be a string",
            '{"strict": 1}': "`strict` must be a boolean",
            '{"limit": true}': "`limit` must be an integer",
            '{"limit": 1.0}': "`limit` must be an integer",
        }
        for text, message in cases.items():
            with self.subTest(text=text):
                self.assertEqual(self.refusal(text), f"invalid configuration: {message}")

    def test_text_that_is_not_json_is_refused(self) -> None:
        for text in ["{not json", "{'programs': []}", '{"limit": NaN}', '{"programs": ' + "[" * 200 + "]" * 200 + "}"]:
            with self.subTest(text=text):
                self.assertTrue(self.refusal(text).startswith("invalid configuration: not JSON: "))

    def test_json_that_is_not_an_object_is_refused(self) -> None:
        for text in ["[]", '["rm"]', "3", '"rm"', "true"]:
            with self.subTest(text=text):
                self.assertEqual(self.refusal(text), "invalid configuration: expected a JSON object")

    def test_a_default_of_another_type_is_a_mistake_in_the_plugin(self) -> None:
        for default in [1.5, None, {"a": "b"}, [1]]:
            with self.subTest(default=default), self.assertRaises(TypeError):
                rdev_plugin.parse_config("", {"key": default})


class ParseJsonTest(unittest.TestCase):
    def test_json_parses(self) -> None:
        self.assertEqual(rdev_plugin.parse_json('{"a": [1, "\\ud83d\\ude00"]}'), {"a": [1, "\U0001f600"]})

    def test_what_only_python_accepts_is_not_json(self) -> None:
        for text in ["NaN", "[Infinity]", '"\\ud800"', '{"\\udc00": 1}', ""]:
            with self.subTest(text=text), self.assertRaises(rdev_plugin.NotJSON):
                rdev_plugin.parse_json(text)

    def test_nesting_is_bounded_but_brackets_in_strings_do_not_count(self) -> None:
        deepest = "[" * 128 + "]" * 128
        self.assertEqual(rdev_plugin.parse_json(deepest), json.loads(deepest))
        self.assertEqual(rdev_plugin.parse_json('["' + "[" * 500 + '\\"{"]'), ["[" * 500 + '"{'])
        with self.assertRaises(rdev_plugin.NotJSON) as raised:
            rdev_plugin.parse_json("[" * 129 + "]" * 129)
        self.assertEqual(str(raised.exception), "nested more than 128 levels deep")


class ResultsTest(unittest.TestCase):
    def test_verdicts(self) -> None:
        command = types.Command(kind="git", script=None, args=["status"], prompt=None, env=[])
        self.assertEqual(rdev_plugin.allow(), types.Verdict_Allow())
        self.assertEqual(rdev_plugin.deny("no"), types.Verdict_Deny("no"))
        self.assertEqual(rdev_plugin.rewrite(command), types.Verdict_Rewrite(command))

    def test_field_error(self) -> None:
        self.assertEqual(
            rdev_plugin.field_error("env.HOME", "no"), types.FieldError(field="env.HOME", message="no")
        )

    def test_rendered_sends_text_as_utf8(self) -> None:
        self.assertEqual(rdev_plugin.rendered("text/plain", "é").body, b"\xc3\xa9")
        self.assertEqual(
            rdev_plugin.rendered("application/octet-stream", b"\x00\xff"),
            types.Rendered(content_type="application/octet-stream", body=b"\x00\xff"),
        )

    def test_project_has_no_description_unless_given(self) -> None:
        self.assertEqual(rdev_plugin.project("web", "/w"), types.Project(name="web", workspace="/w", description=None))
        self.assertEqual(rdev_plugin.project("web", "/w", "site").description, "site")

    def test_fail_raises_the_err_an_export_returns(self) -> None:
        with self.assertRaises(Err) as raised:
            rdev_plugin.fail("the event is not JSON")
        self.assertEqual(raised.exception.value, "the event is not JSON")


class ScriptTest(unittest.TestCase):
    def test_simple_commands_walk_every_scope_in_source_order(self) -> None:
        self.assertEqual(command_words("ls | rm -rf x"), [["ls"], ["rm", "-rf", "x"]])
        self.assertEqual(command_words("(cd sub && /bin/rm x)"), [["cd", "sub"], ["/bin/rm", "x"]])
        self.assertEqual(
            command_words("echo $(for f in a; do shred $f; done)"), [["echo", "?"], ["shred", "?"]]
        )

    def test_the_record_stays_reachable(self) -> None:
        with mock.patch.object(shell, "parse", fake_parse()):
            parsed = rdev_plugin.parse_script("(cd sub && /bin/rm x)")
        self.assertEqual([s.kind for s in parsed.scopes], [shell.ScopeKind.SCRIPT, shell.ScopeKind.SUBSHELL])
        self.assertEqual(len(parsed.pipelines), 3)
        self.assertEqual(parsed.raw.operators[0].operator, "&&")

    def test_programs_are_literal_basenames(self) -> None:
        with mock.patch.object(shell, "parse", fake_parse()):
            parsed = rdev_plugin.parse_script("echo $(for f in a; do shred $f; done)")
            nested = rdev_plugin.parse_script("(cd sub && /bin/rm x)")
            bare = rdev_plugin.parse_script("A=1")
        self.assertEqual([rdev_plugin.program(c) for c in parsed.simple_commands()], ["echo", "shred"])
        self.assertEqual([rdev_plugin.program(c) for c in nested.simple_commands()], ["cd", "rm"])
        self.assertEqual([rdev_plugin.program(c) for c in bare.simple_commands()], [None])

    def test_a_word_is_literal_only_when_every_part_is(self) -> None:
        parts = shell.WordPart_Literal("r"), shell.WordPart_Literal("m")
        quoted = shell.Word(span=span(0, 4), parts=list(parts))
        tilde = shell.Word(span=span(0, 8), parts=[shell.WordPart_Tilde(""), shell.WordPart_Literal("/bin/rm")])
        glob = shell.Word(span=span(0, 2), parts=[shell.WordPart_Literal("r"), shell.WordPart_Glob("*")])
        self.assertEqual(rdev_plugin.word_literal(quoted), "rm")
        self.assertIsNone(rdev_plugin.word_literal(tilde))
        self.assertIsNone(rdev_plugin.word_literal(glob))
        command = shell.SimpleCommand(assignments=[], words=[tilde], redirections=[], span=span(0, 8))
        self.assertIsNone(rdev_plugin.program(command))

    def test_a_parse_error_is_raised_with_its_message_and_span(self) -> None:
        with mock.patch.object(shell, "parse", fake_parse()), self.assertRaises(rdev_plugin.ScriptParseError) as raised:
            rdev_plugin.parse_script('echo "unterminated')
        self.assertEqual(
            (raised.exception.message, raised.exception.start, raised.exception.end),
            ("unterminated double quote", 5, 18),
        )
        self.assertEqual(str(raised.exception), "unterminated double quote")

    def test_a_world_without_shell_refuses_to_parse(self) -> None:
        with mock.patch.object(rdev_plugin, "_shell", None), self.assertRaises(RuntimeError):
            rdev_plugin.parse_script("ls")

    def test_the_shim_imports_in_a_world_without_shell(self) -> None:
        out = generate_bindings("request-validator")
        probe = "import rdev_plugin; print(rdev_plugin.parse_config('', {'a': 'b'}), rdev_plugin._shell)"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([out, str(SHIM_DIR)])}
        run = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
        self.assertEqual(run.stdout, "{'a': 'b'} None\n")


class LogTest(unittest.TestCase):
    def test_records_carry_their_level_message_and_fields_as_text(self) -> None:
        records: list[tuple[Any, ...]] = []
        with mock.patch.object(wit_log, "log", lambda *record: records.append(record)):
            rdev_plugin.log.trace("t")
            rdev_plugin.log.debug("d", a=1)
            rdev_plugin.log.info("refused a program", program="rm", project="web")
            rdev_plugin.log.warn("w", ratio=0.5, ok=True)
            rdev_plugin.log.error("e", missing=None)
        level = wit_log.Level
        self.assertEqual(
            records,
            [
                (level.TRACE, "t", []),
                (level.DEBUG, "d", [("a", "1")]),
                (level.INFO, "refused a program", [("program", "rm"), ("project", "web")]),
                (level.WARN, "w", [("ratio", "0.5"), ("ok", "True")]),
                (level.ERROR, "e", [("missing", "None")]),
            ],
        )


if __name__ == "__main__":
    unittest.main()
