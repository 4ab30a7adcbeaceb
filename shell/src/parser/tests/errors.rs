//! Input the parser does not understand is an error with a useful message and span.

use super::{err, text};

fn rejects(script: &str, message: &str) {
    let error = err(script);
    assert!(error.message.contains(message), "{script:?}: {error}");
    assert!(
        error.span.start <= error.span.end && error.span.end as usize <= script.len(),
        "{script:?}: {error}"
    );
}

#[test]
fn rejects_unterminated_quotes() {
    rejects("echo 'abc", "unterminated single quote");
    rejects("echo \"abc", "unterminated double quote");
    rejects("echo `abc", "unterminated backquote");
    rejects("echo \"$(ls", "unterminated `$(`");
    rejects("echo ${x", "unterminated `${`");
    rejects("echo $((1", "unterminated `$((`");
    let script = "echo ok \"abc";
    assert_eq!(text(script, err(script).span), "\"");
}

#[test]
fn rejects_unterminated_compound_commands() {
    rejects("if a; then b", "unterminated `if`: expected `fi`");
    rejects("while a; do b", "unterminated `while`: expected `done`");
    rejects("for x in a; do b", "unterminated `for`");
    rejects("case x in a) b;;", "unterminated `case`");
    rejects("{ a;", "unterminated `{`");
    rejects("(a", "unterminated `(`");
    rejects("echo <(a", "unterminated `<(`");
}

#[test]
fn rejects_misplaced_operators_and_words() {
    rejects(")", "unexpected `)`");
    rejects("a )", "unexpected `)`");
    rejects(";; a", "unexpected `;;`");
    rejects("a;;", "unexpected `;;`");
    rejects("; a", "unexpected `;`");
    rejects("a | | b", "unexpected `|`");
    rejects("a &&", "unexpected end of script");
    rejects("a |", "unexpected end of script");
    rejects("& a", "unexpected `&`");
    rejects("fi", "unexpected `fi`");
    rejects("a && done", "unexpected `done`");
    rejects("echo (a)", "unexpected `(`");
    rejects("{ a; } b", "unexpected `b`");
    rejects("! ! a", "unexpected `!`");
    rejects("a | ! b", "unexpected `!`");
}

#[test]
fn rejects_empty_bodies() {
    rejects("if then fi", "expected a command after `if`");
    rejects("if a; then fi", "expected a command after `then`");
    rejects("while a; do done", "expected a command after `do`");
    rejects("{ }", "expected a command after `{`");
    rejects("( )", "empty subshell");
}

#[test]
fn rejects_malformed_compound_commands() {
    rejects("if a; b; fi", "expected `then`");
    rejects("for 1 in a; do b; done", "variable name");
    rejects("for ((i=0; i<3; i++)); do a; done", "arithmetic `for");
    rejects("case x a) b;; esac", "expected `in`");
    rejects("case x in a b) c;; esac", "expected `)` or `|`");
    rejects("case x in a) b c) d;; esac", "unexpected `)`");
    rejects("function { a; }", "function name");
}

#[test]
fn rejects_unsupported_constructs() {
    rejects("(( i++ ))", "arithmetic command");
    rejects("select x in a; do b; done", "`select` is not supported");
    rejects("coproc cat", "`coproc` is not supported");
    rejects("echo $[1+2]", "`$[...]`");
    rejects("echo \"${x:-'a'}\"", "single quote inside `${...}`");
    rejects("echo ${x:-<(ls)}", "process substitution inside `${...}`");
    rejects("echo ${ x}", "bad substitution");
    rejects("echo $(( 'a' ))", "inside `$((...))`");
    rejects("echo 99999999999>f", "file descriptor");
}

#[test]
fn rejects_nul_bytes() {
    let error = err("echo a\0b");
    assert_eq!(error.message, "NUL byte in script");
    assert_eq!((error.span.start, error.span.end), (6, 7));
}

#[test]
fn maps_errors_inside_backquotes_to_the_script() {
    let script = "echo `a \\`b )\\``";
    let error = err(script);
    assert_eq!(error.message, "unexpected `)`");
    assert_eq!(text(script, error.span), ")");
}
