//! Redirections: `[n]op target`, including here-document operators.

use super::heredoc::Pending;
use super::words::Context;
use super::{Parser, Result};
use crate::ast::{ParseError, Redirection, Word, WordPart};

/// Redirection operators, longest first so a prefix never wins.
const OPERATORS: [&str; 12] = ["<<<", "<<-", "<<", "<>", "<&", "<", ">>", ">|", ">&", ">", "&>>", "&>"];

impl Parser<'_> {
    /// Reads a redirection if one starts at the cursor.
    pub(super) fn read_redirection(&mut self, scope: u32) -> Result<Option<Redirection>> {
        let start = self.here();
        let digits = self.logical_bytes().take_while(u8::is_ascii_digit).count();
        let Some(operator) = OPERATORS.into_iter().find(|op| self.operator_at(digits, op)) else {
            return Ok(None);
        };
        // Digits before `&>` are a word of their own; `<(` and `>(` are process substitutions.
        let substitution = operator.len() == 1 && self.byte_at(digits + 1) == Some(b'(');
        if substitution || (digits > 0 && operator.starts_with('&')) {
            return Ok(None);
        }
        let fd = match digits {
            0 => None,
            _ => {
                let number = self.take_while(digits, |b| b.is_ascii_digit());
                let fd = number
                    .parse()
                    .map_err(|_| self.error("file descriptor number too large", start, self.pos))?;
                Some(fd)
            }
        };
        self.bump_n(operator.len());
        self.skip_blanks();
        let target = if matches!(operator, "<<" | "<<-") {
            self.read_heredoc_delimiter(scope, start, operator)?
        } else {
            match self.read_word(scope, Context::Argument)? {
                Some(word) => word,
                None => return Err(self.expected_word_after(operator)),
            }
        };
        let span = self.span(start, self.pos);
        Ok(Some(Redirection {
            fd,
            operator: operator.into(),
            target,
            here_document: None,
            span,
        }))
    }

    fn operator_at(&self, offset: usize, operator: &str) -> bool {
        operator
            .bytes()
            .enumerate()
            .all(|(n, b)| self.byte_at(offset + n) == Some(b))
    }

    fn expected_word_after(&self, operator: &str) -> ParseError {
        let found = self.unexpected();
        let message = format!("expected a word after `{operator}`, {}", found.message);
        ParseError {
            message,
            span: found.span,
        }
    }

    /// The delimiter of a here-document: quote removal only, no expansion. Registers the body
    /// to be read after the next newline.
    fn read_heredoc_delimiter(&mut self, scope: u32, start: usize, operator: &str) -> Result<Word> {
        let word_start = self.here();
        let Some(word) = self.read_word(scope, Context::Name)? else {
            return Err(self.expected_word_after(operator));
        };
        let Some(delimiter) = word.literal() else {
            let message = "here-document delimiter with an expansion or pattern is not supported";
            return Err(self.error(message, word_start, self.pos));
        };
        let raw = &self.src[word_start..self.pos];
        let quoted = raw
            .iter()
            .enumerate()
            .any(|(n, &b)| b == b'\'' || b == b'"' || (b == b'\\' && raw.get(n + 1) != Some(&b'\n')));
        self.state.pending.push(Pending {
            key: self.origin(start),
            delimiter: delimiter.clone(),
            strip_tabs: operator == "<<-",
            expand: !quoted,
            scope,
            span: self.span(start, self.pos),
        });
        Ok(Word {
            span: word.span,
            parts: vec![WordPart::Literal(delimiter)],
        })
    }
}
