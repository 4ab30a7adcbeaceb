//! Converts the shell parser's Rust types into the WIT types of the `shell` import. The two
//! mirror each other field by field.

use super::bindings::shell as wit;

fn span(s: rdev_shell::Span) -> wit::Span {
    wit::Span {
        start: s.start,
        end: s.end,
    }
}

fn word(w: rdev_shell::Word) -> wit::Word {
    use rdev_shell::WordPart as P;
    let parts = w
        .parts
        .into_iter()
        .map(|part| match part {
            P::Literal(s) => wit::WordPart::Literal(s),
            P::Glob(s) => wit::WordPart::Glob(s),
            P::Tilde(s) => wit::WordPart::Tilde(s),
            P::Parameter(s) => wit::WordPart::Parameter(s),
            P::Arithmetic(s) => wit::WordPart::Arithmetic(s),
            P::CommandSubstitution(i) => wit::WordPart::CommandSubstitution(i),
            P::ProcessSubstitution(i) => wit::WordPart::ProcessSubstitution(i),
        })
        .collect();
    wit::Word {
        span: span(w.span),
        parts,
    }
}

fn words(ws: Vec<rdev_shell::Word>) -> Vec<wit::Word> {
    ws.into_iter().map(word).collect()
}

fn redirections(rs: Vec<rdev_shell::Redirection>) -> Vec<wit::Redirection> {
    rs.into_iter()
        .map(|r| wit::Redirection {
            fd: r.fd,
            operator: r.operator,
            target: word(r.target),
            here_document: r.here_document,
            span: span(r.span),
        })
        .collect()
}

fn simple(c: rdev_shell::SimpleCommand) -> wit::SimpleCommand {
    let assignments = c
        .assignments
        .into_iter()
        .map(|a| wit::Assignment {
            name: a.name,
            value: word(a.value),
            span: span(a.span),
        })
        .collect();
    wit::SimpleCommand {
        assignments,
        words: words(c.words),
        redirections: redirections(c.redirections),
        span: span(c.span),
    }
}

fn pipeline(p: rdev_shell::Pipeline) -> wit::Pipeline {
    let elements = p
        .elements
        .into_iter()
        .map(|e| match e {
            rdev_shell::Element::Simple(c) => wit::Element::Simple(simple(c)),
            rdev_shell::Element::Compound(c) => wit::Element::Compound(wit::CompoundCommand {
                scope: c.scope,
                redirections: redirections(c.redirections),
            }),
        })
        .collect();
    wit::Pipeline {
        scope: p.scope,
        negated: p.negated,
        elements,
        span: span(p.span),
    }
}

fn scope_kind(k: rdev_shell::ScopeKind) -> wit::ScopeKind {
    use rdev_shell::ScopeKind as K;
    match k {
        K::Script => wit::ScopeKind::Script,
        K::Subshell => wit::ScopeKind::Subshell,
        K::BraceGroup => wit::ScopeKind::BraceGroup,
        K::IfClause => wit::ScopeKind::IfClause,
        K::LoopClause => wit::ScopeKind::LoopClause,
        K::CaseClause => wit::ScopeKind::CaseClause,
        K::FunctionBody => wit::ScopeKind::FunctionBody,
        K::CommandSubstitution => wit::ScopeKind::CommandSubstitution,
        K::ProcessSubstitution => wit::ScopeKind::ProcessSubstitution,
    }
}

/// A parsed script in WIT form.
pub fn script(s: rdev_shell::Script) -> wit::Script {
    wit::Script {
        scopes: s
            .scopes
            .into_iter()
            .map(|sc| wit::Scope {
                kind: scope_kind(sc.kind),
                parent: sc.parent,
                name: sc.name,
                words: words(sc.words),
                span: span(sc.span),
            })
            .collect(),
        pipelines: s.pipelines.into_iter().map(pipeline).collect(),
        operators: s
            .operators
            .into_iter()
            .map(|o| wit::ListOperator {
                operator: o.operator,
                span: span(o.span),
            })
            .collect(),
    }
}

/// A parse error in WIT form.
pub fn error(e: rdev_shell::ParseError) -> wit::ParseError {
    wit::ParseError {
        message: e.message,
        span: span(e.span),
    }
}
