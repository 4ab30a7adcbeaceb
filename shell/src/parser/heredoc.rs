//! Here-document bodies, which start on the line after their operator.
//!
//! As in bash, a body starts after the next newline the parser reads at the level of its
//! operator: newlines inside a `$(...)`, `<(...)` or backquotes opened later do not count, and
//! a here-document opened inside one must end inside it.
//!
//! The body is stored as written (only `<<-` strips leading tabs). When the delimiter is not
//! quoted the shell expands the body, so its `$(...)` and backquotes run: they are parsed into
//! command-substitution scopes whose parent is the scope of the redirection. No word refers to
//! them (a redirection has no place for it), but they are in the scope table and their
//! pipelines in the pipeline list like any others.

use super::words::WordBuilder;
use super::{Parser, Result};
use crate::ast::{ParseError, Span};

/// A here-document whose operator was read but whose body has not been reached yet.
pub(super) struct Pending {
    /// Start offset of the redirection, which keys its body.
    pub(super) key: u32,
    pub(super) delimiter: String,
    /// `<<-`: leading tabs are removed from each line.
    pub(super) strip_tabs: bool,
    /// Unquoted delimiter: the body is expanded.
    pub(super) expand: bool,
    /// The scope of the redirection.
    pub(super) scope: u32,
    /// The redirection, for errors.
    pub(super) span: Span,
}

impl Parser<'_> {
    /// Reads the bodies of all pending here-documents, which start at the cursor.
    pub(super) fn read_pending_heredocs(&mut self) -> Result<()> {
        for heredoc in std::mem::take(&mut self.state.pending) {
            let start = self.pos;
            let (body, body_end, next) = self.heredoc_body(&heredoc)?;
            if heredoc.expand {
                self.parse_heredoc_expansions(&heredoc, start, body_end)?;
            }
            self.pos = next;
            self.state.bodies.insert(heredoc.key, body);
        }
        Ok(())
    }

    /// Runs `parse` on a substitution body with the pending here-documents set aside, since
    /// their bodies come after the line that holds the whole substitution.
    pub(super) fn apart_from_heredocs<T>(&mut self, parse: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let outer = std::mem::take(&mut self.state.pending);
        let value = parse(self)?;
        self.check_heredocs_closed()?;
        self.state.pending = outer;
        Ok(value)
    }

    /// Fails if a here-document is still waiting for its body.
    pub(super) fn check_heredocs_closed(&self) -> Result<()> {
        match self.state.pending.first() {
            Some(heredoc) => Err(unterminated(heredoc)),
            None => Ok(()),
        }
    }

    /// The body starting at the cursor, where it ends, and where the line after its delimiter
    /// starts.
    fn heredoc_body(&self, heredoc: &Pending) -> Result<(String, usize, usize)> {
        let mut body = String::new();
        let mut at = self.pos;
        while at < self.end {
            let (line, next) = self.heredoc_line(at, heredoc);
            if line == heredoc.delimiter {
                return Ok((body, at, next));
            }
            let text = self.text.get(at..next).unwrap_or_default();
            if heredoc.strip_tabs {
                text.split_inclusive('\n')
                    .for_each(|l| body.push_str(l.trim_start_matches('\t')));
            } else {
                body.push_str(text);
            }
            at = next;
        }
        Err(unterminated(heredoc))
    }

    /// The line at `at` as compared with the delimiter (tabs stripped for `<<-`, continued
    /// lines joined when the body is expanded), and where the following line starts.
    fn heredoc_line(&self, mut at: usize, heredoc: &Pending) -> (String, usize) {
        let mut line = String::new();
        loop {
            let rest = self.text.get(at..self.end).unwrap_or_default();
            let len = rest.find('\n').unwrap_or(rest.len());
            let next = (at + len + 1).min(self.end);
            let mut text = &rest[..len];
            if heredoc.strip_tabs {
                text = text.trim_start_matches('\t');
            }
            let continued = text.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1;
            if heredoc.expand && continued && at + len < self.end {
                line.push_str(&text[..text.len() - 1]);
                at = next;
                continue;
            }
            line.push_str(text);
            return (line, next);
        }
    }

    /// Parses the substitutions of an expanded body, between `start` and `end`.
    fn parse_heredoc_expansions(&mut self, heredoc: &Pending, start: usize, end: usize) -> Result<()> {
        let outer_end = self.end;
        self.pos = start;
        self.end = end;
        let mut scratch = WordBuilder::default();
        while let Some(b) = self.peek() {
            match b {
                b'\\' => {
                    self.bump();
                    self.read_raw_char(&mut scratch);
                }
                b'$' => self.read_dollar(&mut scratch, heredoc.scope, true)?,
                b'`' => self.read_backquoted(&mut scratch, heredoc.scope, false)?,
                _ => self.bump(),
            }
        }
        self.end = outer_end;
        Ok(())
    }
}

fn unterminated(heredoc: &Pending) -> ParseError {
    let message = format!("unterminated here-document: expected a line `{}`", heredoc.delimiter);
    ParseError {
        message,
        span: heredoc.span,
    }
}
