//! Reading bytes: line continuations, blanks, comments, operators and reserved words.
//!
//! Outside single quotes, comments and here-document bodies, a backslash-newline vanishes before
//! anything else sees the text, so the "logical" readers here skip it wherever it appears, even
//! inside an operator or a reserved word.

use super::{Parser, Result};
use crate::ast::ParseError;

/// Operators that separate or group commands, longest first so a prefix never wins.
const CONTROL: [&str; 11] = [";;&", ";;", ";&", ";", "&&", "&", "||", "|&", "|", "(", ")"];

/// Words that are reserved in command position.
const KEYWORDS: [&str; 21] = [
    "if", "then", "elif", "else", "fi", "while", "until", "for", "do", "done", "case", "esac", "in", "function",
    "select", "coproc", "{", "}", "!", "[[", "]]",
];

/// Reserved words that end a list; in any other place they are an error.
pub(super) const TERMINATORS: [&str; 8] = ["then", "elif", "else", "fi", "do", "done", "esac", "}"];

/// Bytes that end an unquoted word.
pub(super) fn is_meta(byte: u8) -> bool {
    matches!(
        byte,
        b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'<' | b'>' | b'(' | b')'
    )
}

/// Length of the UTF-8 sequence that starts with `lead`.
fn char_len(lead: u8) -> usize {
    match lead {
        0xF0.. => 4,
        0xE0.. => 3,
        0xC0.. => 2,
        _ => 1,
    }
}

impl Parser<'_> {
    /// `at` moved past any line continuations.
    pub(super) fn logical(&self, mut at: usize) -> usize {
        while at + 1 < self.end && self.src[at] == b'\\' && self.src[at + 1] == b'\n' {
            at += 2;
        }
        at
    }

    /// The position of the `n`th logical byte from the cursor.
    pub(super) fn logical_nth(&self, n: usize) -> usize {
        let mut at = self.logical(self.pos);
        for _ in 0..n {
            at = self.logical(at + 1);
        }
        at
    }

    /// The logical bytes from the cursor on; scanning a run with this is linear, with
    /// [`Parser::byte_at`] quadratic.
    pub(super) fn logical_bytes(&self) -> impl Iterator<Item = u8> + '_ {
        let mut at = self.logical(self.pos);
        std::iter::from_fn(move || {
            let byte = *self.src.get(at).filter(|_| at < self.end)?;
            at = self.logical(at + 1);
            Some(byte)
        })
    }

    /// The `n`th logical byte from the cursor.
    pub(super) fn byte_at(&self, n: usize) -> Option<u8> {
        let at = self.logical_nth(n);
        (at < self.end).then(|| self.src[at])
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.byte_at(0)
    }

    /// The character under the cursor.
    pub(super) fn peek_char(&self) -> Option<char> {
        let at = self.logical(self.pos);
        self.text.get(at..self.end).and_then(|rest| rest.chars().next())
    }

    /// Moves past one logical character.
    pub(super) fn bump(&mut self) {
        let at = self.logical(self.pos);
        if at < self.end {
            self.pos = (at + char_len(self.src[at])).min(self.end);
        }
    }

    pub(super) fn bump_n(&mut self, n: usize) {
        (0..n).for_each(|_| self.bump());
    }

    pub(super) fn at_end(&self) -> bool {
        self.peek().is_none()
    }

    /// Whether the logical text at the cursor starts with `s`.
    pub(super) fn looking_at(&self, s: &str) -> bool {
        s.bytes().enumerate().all(|(n, b)| self.byte_at(n) == Some(b))
    }

    /// The start of the next logical byte, for spans.
    pub(super) fn here(&self) -> usize {
        self.logical(self.pos)
    }

    /// Skips spaces, tabs, line continuations and comments, but not newlines.
    pub(super) fn skip_blanks(&mut self) {
        loop {
            match self.peek() {
                Some(b' ' | b'\t') => self.bump(),
                Some(b'#') => {
                    let at = self.here();
                    let rest = &self.src[at..self.end];
                    self.pos = at + rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
                }
                _ => return,
            }
        }
    }

    /// Skips blanks, comments and newlines, reading any here-documents the newlines release.
    pub(super) fn skip_linebreaks(&mut self) -> Result<()> {
        loop {
            self.skip_blanks();
            if self.peek() != Some(b'\n') {
                return Ok(());
            }
            self.newline()?;
        }
    }

    /// Consumes a newline; pending here-document bodies start right after it.
    pub(super) fn newline(&mut self) -> Result<()> {
        self.bump();
        self.read_pending_heredocs()
    }

    /// The control operator at the cursor.
    pub(super) fn peek_control(&self) -> Option<&'static str> {
        CONTROL.into_iter().find(|op| self.looking_at(op))
    }

    /// The reserved word at the cursor, if the whole next word is one; and its length in
    /// logical bytes.
    pub(super) fn peek_keyword(&self) -> Option<&'static str> {
        let mut word = [0u8; 8];
        let mut len = 0;
        while let Some(b) = self.byte_at(len) {
            if is_meta(b) {
                break;
            }
            if len == word.len() {
                return None;
            }
            word[len] = b;
            len += 1;
        }
        KEYWORDS.into_iter().find(|k| k.as_bytes() == &word[..len])
    }

    /// Consumes the reserved word `keyword` if it is next.
    pub(super) fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.peek_keyword() == Some(keyword);
        if found {
            self.bump_n(keyword.len());
        }
        found
    }

    /// Consumes the reserved word `keyword`, which must come next, closing what opened at `open`.
    pub(super) fn expect_keyword(&mut self, keyword: &str, opener: &str, open: usize) -> Result<()> {
        self.skip_linebreaks()?;
        if self.eat_keyword(keyword) {
            return Ok(());
        }
        if self.at_end() {
            let message = format!("unterminated `{opener}`: expected `{keyword}`");
            return Err(self.error(message, open, open + opener.len()));
        }
        let found = self.unexpected();
        Err(ParseError {
            message: format!("expected `{keyword}`, {}", found.message),
            span: found.span,
        })
    }

    /// An error naming whatever is at the cursor.
    pub(super) fn unexpected(&self) -> ParseError {
        let at = self.here();
        if let Some(op) = self.peek_control() {
            return self.error(format!("unexpected `{op}`"), at, at + op.len());
        }
        if let Some(keyword) = self.peek_keyword() {
            return self.error(format!("unexpected `{keyword}`"), at, at + keyword.len());
        }
        match self.peek_char() {
            None => self.error("unexpected end of script", at, at),
            Some('\n') => self.error("unexpected newline", at, at + 1),
            Some(c) => self.error(format!("unexpected `{c}`"), at, at + c.len_utf8()),
        }
    }
}
