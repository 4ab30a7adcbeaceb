//! Word parts: quotes, escapes, globs, tildes and expansions.

use super::{err, lit, ok, parts, programs};
use crate::ast::{ScopeKind, WordPart};

fn param(name: &str) -> WordPart {
    WordPart::Parameter(name.into())
}

fn glob(text: &str) -> WordPart {
    WordPart::Glob(text.into())
}

#[test]
fn merges_adjacent_quoted_text_into_one_literal() {
    assert_eq!(programs("\"r\"\"m\" -rf /"), ["rm"]);
    assert_eq!(programs("'r'm"), ["rm"]);
    assert_eq!(programs("\\rm"), ["rm"]);
    assert_eq!(parts("echo a'b c'\"d\"", 1), [lit("ab cd")]);
}

#[test]
fn keeps_an_empty_quoted_word() {
    assert_eq!(parts("echo ''", 1), [lit("")]);
    assert_eq!(parts("echo \"\"", 1), [lit("")]);
}

#[test]
fn resolves_escapes_in_double_quotes() {
    assert_eq!(parts(r#"echo "a\$b\"c\\d\e\`""#, 1), [lit(r#"a$b"c\d\e`"#)]);
    assert_eq!(parts("echo \"a\\\nb\"", 1), [lit("ab")]);
    assert_eq!(parts("echo 'a\\\nb'", 1), [lit("a\\\nb")]);
}

#[test]
fn resolves_ansi_c_quotes() {
    assert_eq!(
        parts(r"echo $'a\tb\n\x41\101\u00e9\'\\\q'", 1),
        [lit("a\tb\nAA\u{e9}'\\\\q")]
    );
    assert_eq!(programs(r"$'\x72\x6d' -rf /"), ["rm"]);
    assert_eq!(parts("echo \"$'x'\"", 1), [lit("$'x'")]);
}

#[test]
fn rejects_ansi_c_escapes_that_would_truncate_or_break_text() {
    assert!(err(r"$'r\0m'").message.contains("unsupported escape"));
    assert!(err(r"echo $'\xff'").message.contains("UTF-8"));
    assert!(err("echo $'abc").message.contains("unterminated"));
}

#[test]
fn separates_globs_from_literal_text() {
    assert_eq!(parts("ls *.rs", 1), [glob("*"), lit(".rs")]);
    assert_eq!(parts("ls a?[!x]b", 1), [lit("a"), glob("?[!x]"), lit("b")]);
    assert_eq!(parts("ls '*'\\?", 1), [lit("*?")]);
    assert_eq!(parts("echo [ a", 1), [lit("[")]);
    assert_eq!(parts("echo [é]", 1), [glob("[é]")]);
}

#[test]
fn reads_a_tilde_only_unquoted_at_the_start() {
    assert_eq!(parts("cd ~", 1), [WordPart::Tilde(String::new())]);
    assert_eq!(parts("cd ~bob/x", 1), [WordPart::Tilde("bob".into()), lit("/x")]);
    assert_eq!(parts("cd a~", 1), [lit("a~")]);
    assert_eq!(parts("cd '~'", 1), [lit("~")]);
    assert_eq!(parts("cd ~\"x\"", 1), [lit("~x")]);
}

#[test]
fn names_parameters() {
    assert_eq!(
        parts("echo $HOME$1$@$?$$$#$!$-$*$0$12", 1),
        [
            param("HOME"),
            param("1"),
            param("@"),
            param("?"),
            param("$"),
            param("#"),
            param("!"),
            param("-"),
            param("*"),
            param("0"),
            param("1"),
            lit("2")
        ]
    );
    assert_eq!(
        parts("echo ${x}${#y}${!z}${10}${#}${x:-d}${x%%.*}", 1),
        [
            param("x"),
            param("y"),
            param("z"),
            param("10"),
            param("#"),
            param("x"),
            param("x")
        ]
    );
    assert_eq!(parts("echo \"$x-${y}\"", 1), [param("x"), lit("-"), param("y")]);
}

#[test]
fn treats_a_lone_dollar_as_text() {
    assert_eq!(parts("echo $ a$ \"$\"", 1), [lit("$")]);
    assert_eq!(parts("echo a$", 1), [lit("a$")]);
}

#[test]
fn finds_programs_inside_command_substitutions() {
    assert_eq!(programs("echo $(rm -rf ~)"), ["echo", "rm"]);
    assert_eq!(programs("echo \"$(id -u)\" `whoami`"), ["echo", "id", "whoami"]);
    assert_eq!(programs("echo $(a $(b `c`))"), ["echo", "a", "b", "c"]);
    let parsed = ok("echo $(ls)");
    assert_eq!(parsed.scopes[1].kind, ScopeKind::CommandSubstitution);
    assert_eq!(parsed.scopes[1].parent, Some(0));
    assert_eq!(parsed.pipelines[1].scope, 1);
}

#[test]
fn the_program_itself_may_be_dynamic() {
    let parsed = ok("$cmd arg");
    assert_eq!(super::first_command_words(&parsed)[0].parts, [param("cmd")]);
    assert_eq!(super::first_command_words(&parsed)[0].literal(), None);
    assert_eq!(parts("$(which rm) -rf /", 0), [WordPart::CommandSubstitution(1)]);
}

#[test]
fn finds_substitutions_inside_parameter_defaults() {
    assert_eq!(
        parts("echo ${x:-$(rm -rf /)}", 1),
        [param("x"), WordPart::CommandSubstitution(1)]
    );
    assert_eq!(programs("echo \"${x:-`id`}\" ${y:=${z:-$(a)}}"), ["echo", "id", "a"]);
    assert_eq!(programs("echo ${x:-'$(not)'} ${y:-\"$(yes)\"}"), ["echo", "yes"]);
    assert_eq!(parts("echo ${x:-'}'}", 1), [param("x")]);
}

#[test]
fn reads_arithmetic_text_and_its_substitutions() {
    assert_eq!(
        parts("echo $(( 1 + (2 * x) ))", 1),
        [WordPart::Arithmetic("1 + (2 * x)".into())]
    );
    assert_eq!(
        parts("echo $(( $(id -u) + $y ))", 1),
        [
            WordPart::Arithmetic("$(id -u) + $y".into()),
            WordPart::CommandSubstitution(1)
        ]
    );
    assert_eq!(programs("echo $(( `id -u` + 1 ))"), ["echo", "id"]);
}

#[test]
fn tells_command_substitution_of_a_subshell_from_arithmetic() {
    assert_eq!(programs("echo $( (ls) )"), ["echo", "ls"]);
    assert!(err("echo $((ls) )").message.contains("$( ("));
}

#[test]
fn unescapes_backquoted_bodies_and_maps_their_spans() {
    let script = "echo `echo \\`id\\` \\$HOME`";
    assert_eq!(programs(script), ["echo", "echo", "id"]);
    let parsed = ok(script);
    let inner = &parsed.pipelines[1];
    assert_eq!(
        &script[inner.span.start as usize..inner.span.end as usize],
        "echo \\`id\\` \\$HOME"
    );
    let innermost = &parsed.pipelines[2];
    assert_eq!(
        &script[innermost.span.start as usize..innermost.span.end as usize],
        "id"
    );
    assert_eq!(programs("echo \"`echo \\\"a\\\"`\""), ["echo", "echo"]);
}

#[test]
fn reads_process_substitutions() {
    let parsed = ok("diff <(ls a) >(tee b)");
    assert_eq!(programs("diff <(ls a) >(tee b)"), ["diff", "ls", "tee"]);
    assert_eq!(parsed.scopes[2].kind, ScopeKind::ProcessSubstitution);
    assert!(
        err("echo a<(ls)")
            .message
            .contains("process substitution inside a word")
    );
}

#[test]
fn finds_case_patterns_inside_substitutions() {
    assert_eq!(programs("echo $(case x in a) rm;; esac)"), ["echo", "rm"]);
}

#[test]
fn leaves_globs_in_assignment_values_unexpanded() {
    let parsed = super::ok("x=*.rs y=[ab] ls *");
    let crate::ast::Element::Simple(command) = &parsed.pipelines[0].elements[0] else {
        panic!()
    };
    assert_eq!(command.assignments[0].value.parts, [lit("*.rs")]);
    assert_eq!(command.assignments[1].value.parts, [lit("[ab]")]);
    assert_eq!(command.words[1].parts, [glob("*")]);
}

#[test]
fn takes_a_stretch_of_unclosed_brackets_at_once() {
    assert_eq!(parts("echo [a*[b?", 1), [lit("[a"), glob("*"), lit("[b"), glob("?")]);
    assert_eq!(parts("echo [a\\\nb]", 1), [glob("[ab]")]);
}
