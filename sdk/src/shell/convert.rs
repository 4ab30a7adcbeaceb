//! Conversion of the host's parse result (generated WIT types) into `rdev-shell`'s types, which
//! mirror them one to one.

use crate::bindings::shell as wit;
use rdev_shell as ast;

pub(super) fn script(script: wit::Script) -> ast::Script {
    ast::Script {
        scopes: script.scopes.into_iter().map(scope).collect(),
        pipelines: script.pipelines.into_iter().map(pipeline).collect(),
        operators: script.operators.into_iter().map(operator).collect(),
    }
}

pub(super) fn parse_error(error: wit::ParseError) -> ast::ParseError {
    ast::ParseError {
        message: error.message,
        span: span(error.span),
    }
}

fn span(span: wit::Span) -> ast::Span {
    ast::Span {
        start: span.start,
        end: span.end,
    }
}

fn scope(scope: wit::Scope) -> ast::Scope {
    let kind = match scope.kind {
        wit::ScopeKind::Script => ast::ScopeKind::Script,
        wit::ScopeKind::Subshell => ast::ScopeKind::Subshell,
        wit::ScopeKind::BraceGroup => ast::ScopeKind::BraceGroup,
        wit::ScopeKind::IfClause => ast::ScopeKind::IfClause,
        wit::ScopeKind::LoopClause => ast::ScopeKind::LoopClause,
        wit::ScopeKind::CaseClause => ast::ScopeKind::CaseClause,
        wit::ScopeKind::FunctionBody => ast::ScopeKind::FunctionBody,
        wit::ScopeKind::CommandSubstitution => ast::ScopeKind::CommandSubstitution,
        wit::ScopeKind::ProcessSubstitution => ast::ScopeKind::ProcessSubstitution,
    };
    ast::Scope {
        kind,
        parent: scope.parent,
        name: scope.name,
        words: scope.words.into_iter().map(word).collect(),
        span: span(scope.span),
    }
}

fn pipeline(pipeline: wit::Pipeline) -> ast::Pipeline {
    ast::Pipeline {
        scope: pipeline.scope,
        negated: pipeline.negated,
        elements: pipeline.elements.into_iter().map(element).collect(),
        span: span(pipeline.span),
    }
}

fn operator(operator: wit::ListOperator) -> ast::ListOperator {
    ast::ListOperator {
        operator: operator.operator,
        span: span(operator.span),
    }
}

fn element(element: wit::Element) -> ast::Element {
    match element {
        wit::Element::Simple(simple) => ast::Element::Simple(ast::SimpleCommand {
            assignments: simple.assignments.into_iter().map(assignment).collect(),
            words: simple.words.into_iter().map(word).collect(),
            redirections: simple.redirections.into_iter().map(redirection).collect(),
            span: span(simple.span),
        }),
        wit::Element::Compound(compound) => ast::Element::Compound(ast::CompoundCommand {
            scope: compound.scope,
            redirections: compound.redirections.into_iter().map(redirection).collect(),
        }),
    }
}

fn assignment(assignment: wit::Assignment) -> ast::Assignment {
    ast::Assignment {
        name: assignment.name,
        value: word(assignment.value),
        span: span(assignment.span),
    }
}

fn redirection(redirection: wit::Redirection) -> ast::Redirection {
    ast::Redirection {
        fd: redirection.fd,
        operator: redirection.operator,
        target: word(redirection.target),
        here_document: redirection.here_document,
        span: span(redirection.span),
    }
}

fn word(word: wit::Word) -> ast::Word {
    ast::Word {
        span: span(word.span),
        parts: word.parts.into_iter().map(word_part).collect(),
    }
}

fn word_part(part: wit::WordPart) -> ast::WordPart {
    match part {
        wit::WordPart::Literal(text) => ast::WordPart::Literal(text),
        wit::WordPart::Glob(text) => ast::WordPart::Glob(text),
        wit::WordPart::Tilde(user) => ast::WordPart::Tilde(user),
        wit::WordPart::Parameter(name) => ast::WordPart::Parameter(name),
        wit::WordPart::Arithmetic(expression) => ast::WordPart::Arithmetic(expression),
        wit::WordPart::CommandSubstitution(scope) => ast::WordPart::CommandSubstitution(scope),
        wit::WordPart::ProcessSubstitution(scope) => ast::WordPart::ProcessSubstitution(scope),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wit_word(start: u32, parts: Vec<wit::WordPart>) -> wit::Word {
        wit::Word {
            span: wit::Span { start, end: start + 1 },
            parts,
        }
    }

    #[test]
    fn converts_every_scope_pipeline_word_and_redirection() {
        let parsed = wit::Script {
            scopes: vec![
                wit::Scope {
                    kind: wit::ScopeKind::Script,
                    parent: None,
                    name: None,
                    words: vec![],
                    span: wit::Span { start: 0, end: 20 },
                },
                wit::Scope {
                    kind: wit::ScopeKind::CommandSubstitution,
                    parent: Some(0),
                    name: None,
                    words: vec![],
                    span: wit::Span { start: 5, end: 9 },
                },
            ],
            pipelines: vec![wit::Pipeline {
                scope: 0,
                negated: true,
                elements: vec![wit::Element::Simple(wit::SimpleCommand {
                    assignments: vec![wit::Assignment {
                        name: "A".into(),
                        value: wit_word(0, vec![wit::WordPart::Parameter("HOME".into())]),
                        span: wit::Span { start: 0, end: 4 },
                    }],
                    words: vec![wit_word(5, vec![wit::WordPart::CommandSubstitution(1)])],
                    redirections: vec![wit::Redirection {
                        fd: Some(2),
                        operator: ">".into(),
                        target: wit_word(12, vec![wit::WordPart::Glob("*".into())]),
                        here_document: None,
                        span: wit::Span { start: 10, end: 13 },
                    }],
                    span: wit::Span { start: 0, end: 13 },
                })],
                span: wit::Span { start: 0, end: 13 },
            }],
            operators: vec![wit::ListOperator {
                operator: ";".into(),
                span: wit::Span { start: 13, end: 14 },
            }],
        };
        let converted = script(parsed);
        assert_eq!(converted.scopes[1].kind, ast::ScopeKind::CommandSubstitution);
        assert_eq!(converted.scopes[1].parent, Some(0));
        let ast::Element::Simple(simple) = &converted.pipelines[0].elements[0] else {
            panic!("not simple")
        };
        assert!(converted.pipelines[0].negated);
        assert_eq!(
            simple.assignments[0].value.parts,
            vec![ast::WordPart::Parameter("HOME".into())]
        );
        assert_eq!(simple.words[0].parts, vec![ast::WordPart::CommandSubstitution(1)]);
        assert_eq!(simple.redirections[0].fd, Some(2));
        assert_eq!(simple.redirections[0].target.span, ast::Span { start: 12, end: 13 });
        assert_eq!(converted.operators[0].operator, ";");
    }

    #[test]
    fn converts_the_parse_error_message_and_span() {
        let error = parse_error(wit::ParseError {
            message: "unterminated double quote".into(),
            span: wit::Span { start: 3, end: 9 },
        });
        assert_eq!(error.to_string(), "unterminated double quote at bytes 3..9");
    }
}
