//! Tests of the parser, by construct; `programs` is what a sanitizer would look at.

mod commands;
mod compound;
mod errors;
mod heredocs;
mod robustness;
mod words;

use crate::ast::{Element, ParseError, ScopeKind, Script, Word, WordPart};
use crate::parse;

/// Parses a script that must be valid.
fn ok(script: &str) -> Script {
    parse(script).unwrap_or_else(|e| panic!("{script:?} did not parse: {e}"))
}

/// Parses a script that must be rejected.
fn err(script: &str) -> ParseError {
    match parse(script) {
        Ok(parsed) => panic!("{script:?} parsed: {parsed:#?}"),
        Err(e) => e,
    }
}

/// The program of every simple command of every scope, in pipeline order: its literal text, or
/// its parts in debug form when it is not literal.
fn programs(script: &str) -> Vec<String> {
    let parsed = ok(script);
    let mut found = vec![];
    for pipeline in &parsed.pipelines {
        for element in &pipeline.elements {
            if let Element::Simple(command) = element
                && let Some(word) = command.words.first()
            {
                found.push(word.literal().unwrap_or_else(|| format!("{:?}", word.parts)));
            }
        }
    }
    found
}

/// The kinds of all scopes, in order.
fn kinds(script: &Script) -> Vec<ScopeKind> {
    script.scopes.iter().map(|s| s.kind).collect()
}

/// The operators, in order.
fn operators(script: &str) -> Vec<String> {
    ok(script).operators.into_iter().map(|o| o.operator).collect()
}

/// The words of the first simple command.
fn first_command_words(script: &Script) -> Vec<Word> {
    script
        .pipelines
        .iter()
        .flat_map(|p| &p.elements)
        .find_map(|e| match e {
            Element::Simple(c) => Some(c.words.clone()),
            Element::Compound(_) => None,
        })
        .unwrap_or_default()
}

/// The parts of the `n`th word of the first simple command.
fn parts(script: &str, n: usize) -> Vec<WordPart> {
    first_command_words(&ok(script))
        .get(n)
        .map(|w| w.parts.clone())
        .unwrap_or_default()
}

fn lit(s: &str) -> WordPart {
    WordPart::Literal(s.into())
}

/// The text a span covers.
fn text(script: &str, span: crate::ast::Span) -> &str {
    &script[span.start as usize..span.end as usize]
}
