//! Compound commands, their scopes, and function definitions.

use super::{err, kinds, ok, programs, text};
use crate::ast::{Element, ScopeKind, WordPart};

#[test]
fn puts_loop_bodies_and_words_in_a_loop_scope() {
    let script = "for f in *.rs $(ls); do cat \"$f\"; done";
    assert_eq!(programs(script), ["ls", "cat"]);
    let parsed = ok(script);
    assert_eq!(
        kinds(&parsed),
        [ScopeKind::Script, ScopeKind::LoopClause, ScopeKind::CommandSubstitution]
    );
    let loop_scope = &parsed.scopes[1];
    assert_eq!(loop_scope.name.as_deref(), Some("f"));
    assert_eq!(loop_scope.words.len(), 2);
    assert_eq!(loop_scope.span, parsed.scopes[0].span);
    assert_eq!(parsed.scopes[2].parent, Some(1));
    let Element::Compound(compound) = &parsed.pipelines[0].elements[0] else {
        panic!()
    };
    assert_eq!(compound.scope, 1);
    assert_eq!(parsed.pipelines[2].scope, 1);
}

#[test]
fn reads_every_form_of_for() {
    assert_eq!(ok("for x; do a; done").scopes[1].words.len(), 0);
    assert_eq!(ok("for x do a; done").scopes[1].words.len(), 0);
    assert_eq!(ok("for x\nin a b\ndo\n c\ndone").scopes[1].words.len(), 2);
    assert_eq!(ok("for x in; do a; done").scopes[1].words.len(), 0);
}

#[test]
fn puts_conditions_and_branches_in_one_if_scope() {
    let script = "if a; then b; elif c\nthen d; else e; fi";
    assert_eq!(programs(script), ["a", "b", "c", "d", "e"]);
    let parsed = ok(script);
    assert!(parsed.pipelines[1..].iter().all(|p| p.scope == 1));
    assert_eq!(parsed.scopes[1].kind, ScopeKind::IfClause);
}

#[test]
fn reads_while_and_until_loops_with_redirections() {
    let script = "while read l; do echo \"$l\"; done < input | until false; do :; done";
    assert_eq!(programs(script), ["read", "echo", "false", ":"]);
    let parsed = ok(script);
    let Element::Compound(first) = &parsed.pipelines[0].elements[0] else {
        panic!()
    };
    assert_eq!(first.redirections[0].operator, "<");
    assert_eq!(parsed.pipelines[0].elements.len(), 2);
    assert_eq!(text(script, parsed.pipelines[0].span), script);
}

#[test]
fn reads_subshells_and_brace_groups() {
    let parsed = ok("(cd x && make) ; { a; b\n} > log 2>&1");
    assert_eq!(kinds(&parsed)[1..], [ScopeKind::Subshell, ScopeKind::BraceGroup]);
    assert_eq!(
        programs("(cd x && make) ; { a; b\n} > log 2>&1"),
        ["cd", "make", "a", "b"]
    );
    assert_eq!(programs("( ( a ) )"), ["a"]);
    assert_eq!(programs("echo { }"), ["echo"]);
}

#[test]
fn treats_reserved_words_as_words_outside_command_position() {
    assert_eq!(programs("echo if then fi done }"), ["echo"]);
    assert_eq!(programs("\"if\" x"), ["if"]);
    assert_eq!(programs("{ echo }; }"), ["echo"]);
}

#[test]
fn puts_case_subject_and_patterns_in_the_scope_words() {
    let script = "case $1 in\n  a|b) x;;\n  (*.rs) y ;&\n  c) ;;& d) z\nesac";
    assert_eq!(programs(script), ["x", "y", "z"]);
    let parsed = ok(script);
    let words: Vec<_> = parsed.scopes[1].words.iter().map(|w| w.parts.clone()).collect();
    assert_eq!(words[0], [WordPart::Parameter("1".into())]);
    assert_eq!(words.len(), 6);
    assert_eq!(ok("case x in esac").scopes[1].words.len(), 1);
    assert_eq!(programs("case x in a) b; esac"), ["b"]);
}

#[test]
fn records_function_definitions_with_their_bodies() {
    let script = "f() { eval x; }; f";
    assert_eq!(programs(script), ["eval", "f"]);
    let parsed = ok(script);
    assert_eq!(kinds(&parsed)[1..], [ScopeKind::FunctionBody, ScopeKind::BraceGroup]);
    assert_eq!(parsed.scopes[1].name.as_deref(), Some("f"));
    assert_eq!(text(script, parsed.scopes[1].span), "f() { eval x; }");
    assert_eq!(parsed.pipelines[1].scope, 1);
    let Element::Compound(body) = &parsed.pipelines[1].elements[0] else {
        panic!()
    };
    assert_eq!(body.scope, 2);
}

#[test]
fn reads_every_form_of_function_definition() {
    assert_eq!(programs("function g { a; }"), ["a"]);
    assert_eq!(programs("function g() ( b )"), ["b"]);
    assert_eq!(programs("h ()\n{\n c\n} > out"), ["c"]);
    assert_eq!(programs("k() if a; then b; fi"), ["a", "b"]);
    let parsed = ok("h () { c; } > out");
    let Element::Compound(body) = &parsed.pipelines[1].elements[0] else {
        panic!()
    };
    assert_eq!(body.redirections.len(), 1);
    assert!(err("f() echo").message.contains("compound command"));
    assert!(err("'$x'() { a; }").message.contains("function name"));
}

#[test]
fn reads_double_bracket_tests_as_a_command_of_words() {
    let script = "[[ -n $(id) && ( $a == *.rs || ! -f x ) ]] && [[ a < b ]]";
    assert_eq!(programs(script), ["[[", "id", "[["]);
    let parsed = ok(script);
    let words = super::first_command_words(&parsed);
    assert_eq!(words.len(), 14);
    assert_eq!(words.last().and_then(|w| w.literal()).as_deref(), Some("]]"));
    assert!(err("[[ $x =~ ^a ]]").message.contains("=~"));
    assert!(err("[[ $x == @(a|b) ]]").message.contains("extended patterns"));
    assert!(err("[[ a\n]]").message.contains("newline"));
    assert!(err("[[ a").message.contains("unterminated"));
}

#[test]
fn nests_scopes_with_parents_before_children() {
    let parsed = ok("if a; then (b | $(c)); fi");
    assert_eq!(
        kinds(&parsed)[1..],
        [ScopeKind::IfClause, ScopeKind::Subshell, ScopeKind::CommandSubstitution]
    );
    assert_eq!(parsed.scopes[2].parent, Some(1));
    assert_eq!(parsed.scopes[3].parent, Some(2));
    let starts: Vec<_> = parsed.pipelines.iter().map(|p| p.span.start).collect();
    assert!(starts.is_sorted());
    assert!(
        parsed
            .scopes
            .iter()
            .skip(1)
            .all(|s| s.parent.is_some_and(|p| p < parsed.scopes.len() as u32))
    );
}
