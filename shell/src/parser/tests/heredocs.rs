//! Here-documents and here-strings.

use super::{err, ok, programs};
use crate::ast::{Element, Redirection, ScopeKind, Script};

fn redirections(parsed: &Script) -> Vec<Redirection> {
    parsed
        .pipelines
        .iter()
        .flat_map(|p| &p.elements)
        .flat_map(|e| match e {
            Element::Simple(c) => c.redirections.clone(),
            Element::Compound(c) => c.redirections.clone(),
        })
        .collect()
}

#[test]
fn reads_here_document_bodies() {
    let parsed = ok("cat <<EOF; rm x\nhello $USER\nEOF\necho done");
    assert_eq!(
        programs("cat <<EOF; rm x\nhello $USER\nEOF\necho done"),
        ["cat", "rm", "echo"]
    );
    let redirection = &redirections(&parsed)[0];
    assert_eq!(redirection.operator, "<<");
    assert_eq!(redirection.target.literal().as_deref(), Some("EOF"));
    assert_eq!(redirection.here_document.as_deref(), Some("hello $USER\n"));
    assert_eq!(
        parsed.operators.iter().map(|o| o.operator.as_str()).collect::<Vec<_>>(),
        [";", "\n"]
    );
}

#[test]
fn reads_several_bodies_in_order() {
    let parsed = ok("cat <<A <<'B'\na\nA\nb\nB\n");
    let bodies: Vec<_> = redirections(&parsed)
        .into_iter()
        .map(|r| r.here_document.unwrap())
        .collect();
    assert_eq!(bodies, ["a\n", "b\n"]);
}

#[test]
fn strips_tabs_for_the_dash_form() {
    let parsed = ok("cat <<-EOF\n\t\tx\n\ty\n\tEOF\n");
    assert_eq!(redirections(&parsed)[0].here_document.as_deref(), Some("x\ny\n"));
}

#[test]
fn finds_substitutions_in_unquoted_bodies_only() {
    let script = "cat <<EOF\n$(rm -rf /) `id`\nEOF\ncat <<'EOF'\n$(not run)\nEOF\ncat <<\"E\"\n`nor`\nE";
    assert_eq!(programs(script), ["cat", "rm", "id", "cat", "cat"]);
    let parsed = ok(script);
    assert_eq!(parsed.scopes[1].kind, ScopeKind::CommandSubstitution);
    assert_eq!(parsed.scopes[1].parent, Some(0));
}

#[test]
fn accepts_a_delimiter_at_the_very_end() {
    let parsed = ok("cat <<EOF\nx\nEOF");
    assert_eq!(redirections(&parsed)[0].here_document.as_deref(), Some("x\n"));
    assert_eq!(redirections(&ok("cat <<E\nE\n"))[0].here_document.as_deref(), Some(""));
}

#[test]
fn joins_continued_lines_before_matching_the_delimiter_when_expanding() {
    let parsed = ok("cat <<EOF\nfoo\\\nEOF\nEOF\necho after");
    assert_eq!(redirections(&parsed)[0].here_document.as_deref(), Some("foo\\\nEOF\n"));
    assert_eq!(programs("cat <<'EOF'\nfoo\\\nEOF\necho after"), ["cat", "echo"]);
}

#[test]
fn starts_a_body_after_the_line_that_holds_a_substitution() {
    let script = "cat <<EOF; echo $(\nEOF\necho inner)\nbody\nEOF\necho after";
    assert_eq!(programs(script), ["cat", "echo", "EOF", "echo", "echo"]);
    assert_eq!(redirections(&ok(script))[0].here_document.as_deref(), Some("body\n"));
}

#[test]
fn reads_bodies_inside_substitutions_and_compound_commands() {
    assert_eq!(programs("x=$(cat <<EOF\n)\nEOF\n)"), ["cat"]);
    assert_eq!(
        programs("cat <<EOF | while read l; do\nbody\nEOF\necho \"$l\"; done"),
        ["cat", "read", "echo"]
    );
}

#[test]
fn reads_here_strings_as_a_word() {
    let parsed = ok("cat <<< \"$(id)\"");
    let redirection = &redirections(&parsed)[0];
    assert_eq!(redirection.operator, "<<<");
    assert_eq!(redirection.here_document, None);
    assert_eq!(programs("cat <<< \"$(id)\""), ["cat", "id"]);
}

#[test]
fn rejects_unterminated_here_documents() {
    assert!(err("cat <<EOF\nbody").message.contains("unterminated here-document"));
    assert!(err("cat <<EOF").message.contains("unterminated here-document"));
    assert!(
        err("echo $(cat <<EOF)\nx\nEOF")
            .message
            .contains("unterminated here-document")
    );
    assert!(err("cat <<$(x)\n").message.contains("delimiter"));
    assert!(err("cat <<\n").message.contains("expected a word"));
}
