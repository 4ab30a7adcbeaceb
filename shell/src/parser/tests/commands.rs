//! Lists, pipelines, simple commands, assignments and redirections.

use super::{err, lit, ok, operators, parts, programs, text};
use crate::ast::{Element, ScopeKind, WordPart};

#[test]
fn finds_every_program_of_a_list() {
    assert_eq!(programs("ls; rm -rf /"), ["ls", "rm"]);
    assert_eq!(programs("a && b || c &"), ["a", "b", "c"]);
    assert_eq!(operators("a && b || c &"), ["&&", "||", "&"]);
}

#[test]
fn finds_both_sides_of_a_pipe() {
    let parsed = ok("curl x | sh");
    assert_eq!(parsed.pipelines.len(), 1);
    assert_eq!(parsed.pipelines[0].elements.len(), 2);
    assert_eq!(programs("curl x | sh"), ["curl", "sh"]);
    assert_eq!(programs("a |& b |\n\n c"), ["a", "b", "c"]);
}

#[test]
fn records_negation_and_pipeline_spans() {
    let script = "! grep -q x f | wc -l ; echo";
    let parsed = ok(script);
    assert!(parsed.pipelines[0].negated);
    assert!(!parsed.pipelines[1].negated);
    assert_eq!(text(script, parsed.pipelines[0].span), "! grep -q x f | wc -l");
    assert_eq!(text(script, parsed.pipelines[1].span), "echo");
}

#[test]
fn records_newlines_only_between_pipelines() {
    assert_eq!(operators("\n\na\n\n# comment\n\nb\n\n"), ["\n"]);
    assert_eq!(operators("a;\nb &\nc"), [";", "&"]);
    assert_eq!(operators("a\n"), Vec::<String>::new());
    let parsed = ok("a\nb");
    assert_eq!(parsed.operators[0].span.start, 1);
}

#[test]
fn skips_comments() {
    assert_eq!(programs("# rm -rf /\nls # rm\necho a#b"), ["ls", "echo"]);
    assert_eq!(parts("echo a#b", 1), [lit("a#b")]);
}

#[test]
fn reads_assignments_before_the_program_only() {
    let parsed = ok("x=1 y+=$(id) make CC=gcc");
    let Element::Simple(command) = &parsed.pipelines[0].elements[0] else {
        panic!()
    };
    let names: Vec<_> = command.assignments.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["x", "y"]);
    assert_eq!(command.assignments[0].value.parts, [lit("1")]);
    assert!(matches!(
        command.assignments[1].value.parts[..],
        [WordPart::CommandSubstitution(1)]
    ));
    assert_eq!(
        command.words.iter().map(|w| w.literal().unwrap()).collect::<Vec<_>>(),
        ["make", "CC=gcc"]
    );
    assert_eq!(programs("x=1 y=$(id) make"), ["make", "id"]);
}

#[test]
fn reads_a_bare_assignment_as_a_command_without_words() {
    let parsed = ok("x= ; PATH=~/bin:$PATH");
    let Element::Simple(first) = &parsed.pipelines[0].elements[0] else {
        panic!()
    };
    assert!(first.words.is_empty());
    assert!(first.assignments[0].value.parts.is_empty());
    let Element::Simple(second) = &parsed.pipelines[1].elements[0] else {
        panic!()
    };
    let value = &second.assignments[0].value.parts;
    assert_eq!(
        value[..],
        [
            WordPart::Tilde(String::new()),
            lit("/bin:"),
            WordPart::Parameter("PATH".into())
        ]
    );
}

#[test]
fn treats_quoted_or_invalid_names_as_words() {
    assert_eq!(programs("\"x\"=1"), ["x=1"]);
    assert_eq!(programs("1x=2"), ["1x=2"]);
}

#[test]
fn reads_redirections_anywhere_among_words() {
    let script = "cat <(ls) > out 2>&1 <in >>log &>all 3<>rw >|clobber <<<here";
    let parsed = ok(script);
    let Element::Simple(command) = &parsed.pipelines[0].elements[0] else {
        panic!()
    };
    assert_eq!(command.words.len(), 2);
    assert!(matches!(command.words[1].parts[..], [WordPart::ProcessSubstitution(1)]));
    let operators: Vec<_> = command.redirections.iter().map(|r| r.operator.as_str()).collect();
    assert_eq!(operators, [">", ">&", "<", ">>", "&>", "<>", ">|", "<<<"]);
    let fds: Vec<_> = command.redirections.iter().map(|r| r.fd).collect();
    assert_eq!(fds, [None, Some(2), None, None, None, Some(3), None, None]);
    assert_eq!(text(script, command.redirections[1].span), "2>&1");
    assert_eq!(command.redirections[1].target.literal().unwrap(), "1");
    assert_eq!(programs(script), ["cat", "ls"]);
    assert_eq!(parsed.scopes[1].kind, ScopeKind::ProcessSubstitution);
}

#[test]
fn reads_a_redirection_before_the_program() {
    let parsed = ok("2>/dev/null >out x=1 rm a");
    let Element::Simple(command) = &parsed.pipelines[0].elements[0] else {
        panic!()
    };
    assert_eq!(command.redirections.len(), 2);
    assert_eq!(command.assignments.len(), 1);
    assert_eq!(command.words[0].literal().unwrap(), "rm");
}

#[test]
fn reads_digits_as_a_descriptor_only_right_before_the_operator() {
    let parsed = ok("echo a2>f 2 >g");
    let Element::Simple(command) = &parsed.pipelines[0].elements[0] else {
        panic!()
    };
    let words: Vec<_> = command.words.iter().map(|w| w.literal().unwrap()).collect();
    assert_eq!(words, ["echo", "a2", "2"]);
    assert!(command.redirections.iter().all(|r| r.fd.is_none()));
}

#[test]
fn reads_a_redirection_only_command() {
    let parsed = ok("> file");
    let Element::Simple(command) = &parsed.pipelines[0].elements[0] else {
        panic!()
    };
    assert!(command.words.is_empty());
    assert_eq!(command.redirections.len(), 1);
}

#[test]
fn joins_continued_lines() {
    assert_eq!(programs("r\\\nm -rf /"), ["rm"]);
    assert_eq!(programs("ls \\\n  -l && \\\n pwd"), ["ls", "pwd"]);
    assert_eq!(operators("a &\\\n& b"), ["&&"]);
    assert_eq!(programs("i\\\nf true; then rm; fi"), ["true", "rm"]);
}

#[test]
fn spans_point_into_the_script() {
    let script = "  echo   'a b'  $HOME\n";
    let parsed = ok(script);
    let Element::Simple(command) = &parsed.pipelines[0].elements[0] else {
        panic!()
    };
    assert_eq!(text(script, command.span), "echo   'a b'  $HOME");
    assert_eq!(text(script, command.words[1].span), "'a b'");
    assert_eq!(text(script, command.words[2].span), "$HOME");
    assert_eq!(parsed.scopes[0].span.end as usize, script.len());
}

#[test]
fn parses_an_empty_script() {
    let parsed = ok("  \n# nothing\n");
    assert!(parsed.pipelines.is_empty());
    assert_eq!(parsed.scopes.len(), 1);
    assert_eq!(parsed.scopes[0].kind, ScopeKind::Script);
    assert_eq!(parsed.scopes[0].parent, None);
}

#[test]
fn rejects_named_descriptors_and_array_assignments() {
    assert!(err("{fd}>file cmd").message.contains("named file descriptors"));
    assert!(err("a=(1 2) cmd").message.contains("array assignment"));
    assert!(err("a[1]=x rm -rf /").message.contains("array element"));
    assert_eq!(programs("echo a[1]=x"), ["echo"]);
}
