//! A recursive-descent parser from script text to the flat [`Script`] of `wit/shell.wit`.
//!
//! There is no separate token stream: shell lexing depends on where the parser is (reserved words
//! only count in command position, `)` may end a case pattern or a substitution, here-document
//! bodies start after the next newline), so the grammar functions read bytes directly through the
//! cursor in [`cursor`].
//!
//! Ordering: scopes and pipelines are appended when they *start*, so both tables are in source
//! order of their first byte; an enclosing pipeline therefore comes before the pipelines of the
//! scopes nested in it, and a scope's parent always has a smaller index. Operators are appended
//! as they are read, also in source order.

mod commands;
mod compound;
mod cursor;
mod expansions;
mod heredoc;
mod redirections;
mod substitutions;
mod words;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use crate::ast::{Element, ParseError, Pipeline, Redirection, Scope, ScopeKind, Script, Span};

/// How deeply constructs may nest before the parser gives up, so that hostile input cannot
/// exhaust the stack.
const MAX_DEPTH: usize = 64;

type Result<T> = std::result::Result<T, ParseError>;

/// Parses a script. Anything the parser does not fully understand is an error, never a guess.
pub fn parse(script: &str) -> Result<Script> {
    let Ok(len) = u32::try_from(script.len()) else {
        let span = Span {
            start: 0,
            end: u32::MAX,
        };
        return Err(ParseError {
            message: "script is longer than 4 GiB".into(),
            span,
        });
    };
    if let Some(nul) = script.bytes().position(|b| b == 0) {
        let at = u32::try_from(nul).unwrap_or(len);
        let span = Span {
            start: at,
            end: at.saturating_add(1),
        };
        return Err(ParseError {
            message: "NUL byte in script".into(),
            span,
        });
    }
    let mut parser = Parser::new(script, None, State::default());
    let whole = Span { start: 0, end: len };
    parser.state.script.scopes.push(Scope {
        kind: ScopeKind::Script,
        parent: None,
        name: None,
        words: vec![],
        span: whole,
    });
    parser.parse_list(0)?;
    if !parser.at_end() {
        return Err(parser.unexpected());
    }
    parser.check_heredocs_closed()?;
    Ok(parser.finish())
}

/// Everything the parser accumulates; moved into a nested parser for a backquoted body.
#[derive(Default)]
struct State {
    script: Script,
    /// Here-documents whose operator was read but whose body has not been reached yet.
    pending: Vec<heredoc::Pending>,
    /// Here-document bodies by the start offset of their redirection.
    bodies: HashMap<u32, String>,
    /// Current nesting depth.
    depth: usize,
}

struct Parser<'a> {
    text: &'a str,
    src: &'a [u8],
    pos: usize,
    /// Reading stops here; a here-document body is parsed with `end` narrowed to the body.
    end: usize,
    /// For a backquoted body, which is an unescaped copy, the script offset of each byte (and
    /// one past the end), so spans still point into the script.
    offsets: Option<Vec<u32>>,
    state: State,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, offsets: Option<Vec<u32>>, state: State) -> Self {
        Parser {
            text,
            src: text.as_bytes(),
            pos: 0,
            end: text.len(),
            offsets,
            state,
        }
    }

    /// The script offset of a position in this parser's text.
    fn origin(&self, at: usize) -> u32 {
        match &self.offsets {
            Some(offsets) => offsets.get(at).or(offsets.last()).copied().unwrap_or(0),
            None => u32::try_from(at).unwrap_or(u32::MAX),
        }
    }

    /// The script offset just past the byte before `end`: in a backquoted body, the byte at
    /// `end` may stand after an escape that the body no longer holds.
    fn origin_end(&self, end: usize) -> u32 {
        match end.checked_sub(1) {
            Some(last) if self.offsets.is_some() => self.origin(last).saturating_add(1),
            _ => self.origin(end),
        }
    }

    /// The script span of `start..end`, clamped to the text so no span points past it.
    fn span(&self, start: usize, end: usize) -> Span {
        let end = end.min(self.src.len());
        let start = start.min(end);
        if start == end {
            return Span {
                start: self.origin(start),
                end: self.origin(start),
            };
        }
        Span {
            start: self.origin(start),
            end: self.origin_end(end),
        }
    }

    fn error(&self, message: impl Into<String>, start: usize, end: usize) -> ParseError {
        ParseError {
            message: message.into(),
            span: self.span(start, end),
        }
    }

    /// Enters one nesting level, failing beyond [`MAX_DEPTH`].
    fn enter(&mut self, start: usize) -> Result<()> {
        if self.state.depth >= MAX_DEPTH {
            return Err(self.error(format!("nesting deeper than {MAX_DEPTH} levels"), start, self.pos));
        }
        self.state.depth += 1;
        Ok(())
    }

    fn leave(&mut self) {
        self.state.depth -= 1;
    }

    /// Adds a scope starting at `start`; [`Parser::close_scope`] sets its end.
    fn open_scope(&mut self, kind: ScopeKind, parent: u32, start: usize) -> Result<u32> {
        self.enter(start)?;
        let index = self.index(self.state.script.scopes.len(), start)?;
        let span = self.span(start, start);
        self.state.script.scopes.push(Scope {
            kind,
            parent: Some(parent),
            name: None,
            words: vec![],
            span,
        });
        Ok(index)
    }

    /// Sets the end of `scope` and leaves its nesting level.
    fn close_scope(&mut self, scope: u32, end: usize) {
        let end = self.origin_end(end);
        if let Some(entry) = self.state.script.scopes.get_mut(scope as usize) {
            entry.span.end = end;
        }
        self.leave();
    }

    fn scope_mut(&mut self, scope: u32) -> &mut Scope {
        &mut self.state.script.scopes[scope as usize]
    }

    fn index(&self, len: usize, at: usize) -> Result<u32> {
        u32::try_from(len).map_err(|_| self.error("too many scopes", at, at))
    }

    /// Reserves the next pipeline slot so pipelines stay in order of their start.
    fn begin_pipeline(&mut self, scope: u32) -> usize {
        let pipelines = &mut self.state.script.pipelines;
        pipelines.push(Pipeline {
            scope,
            negated: false,
            elements: vec![],
            span: Span::default(),
        });
        pipelines.len() - 1
    }

    /// Attaches here-document bodies, which are read after their redirections were stored.
    fn finish(mut self) -> Script {
        let mut bodies = std::mem::take(&mut self.state.bodies);
        for pipeline in &mut self.state.script.pipelines {
            for element in &mut pipeline.elements {
                let redirections = match element {
                    Element::Simple(command) => &mut command.redirections,
                    Element::Compound(compound) => &mut compound.redirections,
                };
                redirections.iter_mut().for_each(|r| attach_body(r, &mut bodies));
            }
        }
        self.state.script
    }
}

fn attach_body(redirection: &mut Redirection, bodies: &mut HashMap<u32, String>) {
    if matches!(redirection.operator.as_str(), "<<" | "<<-") {
        redirection.here_document = bodies.remove(&redirection.span.start);
    }
}
