//! Command substitutions (`$(...)`, backquotes) and process substitutions (`<(...)`, `>(...)`):
//! each body is parsed as a list in a scope of its own.

use super::words::WordBuilder;
use super::{Parser, Result};
use crate::ast::{ScopeKind, WordPart};

impl Parser<'_> {
    /// `$(list)`.
    pub(super) fn read_command_substitution(&mut self, word: &mut WordBuilder, scope: u32) -> Result<()> {
        let start = self.here();
        self.bump_n(2);
        let inner = self.open_scope(ScopeKind::CommandSubstitution, scope, start)?;
        self.apart_from_heredocs(|parser| parser.read_parenthesized(inner, start, "$("))?;
        word.push(WordPart::CommandSubstitution(inner));
        Ok(())
    }

    /// `<(list)` or `>(list)`.
    pub(super) fn read_process_substitution(&mut self, word: &mut WordBuilder, scope: u32) -> Result<()> {
        let start = self.here();
        let opener = if self.peek() == Some(b'<') { "<(" } else { ">(" };
        self.bump_n(2);
        let inner = self.open_scope(ScopeKind::ProcessSubstitution, scope, start)?;
        self.apart_from_heredocs(|parser| parser.read_parenthesized(inner, start, opener))?;
        word.push(WordPart::ProcessSubstitution(inner));
        Ok(())
    }

    /// Parses the list of `scope` up to and including its `)`, then closes the scope; returns
    /// how many pipelines it held.
    pub(super) fn read_parenthesized(&mut self, scope: u32, open: usize, opener: &str) -> Result<usize> {
        let pipelines = self.parse_list(scope)?;
        if self.peek_control() != Some(")") {
            if self.at_end() {
                return Err(self.error(
                    format!("unterminated `{opener}`: expected `)`"),
                    open,
                    open + opener.len(),
                ));
            }
            return Err(self.unexpected());
        }
        self.bump();
        self.close_scope(scope, self.pos);
        Ok(pipelines)
    }

    /// `` `list` ``: the body is unescaped and parsed by a nested parser whose spans map back
    /// into the script. `quoted` is true inside double quotes, where `\"` is unescaped too.
    pub(super) fn read_backquoted(&mut self, word: &mut WordBuilder, scope: u32, quoted: bool) -> Result<()> {
        let open = self.here();
        let (body, offsets, close) = self.unescape_backquoted(open, quoted)?;
        let inner = self.open_scope(ScopeKind::CommandSubstitution, scope, open)?;
        let outer = std::mem::take(&mut self.state.pending);
        let mut nested = Parser::new(&body, Some(offsets), std::mem::take(&mut self.state));
        nested.parse_list(inner)?;
        if !nested.at_end() {
            return Err(nested.unexpected());
        }
        nested.check_heredocs_closed()?;
        self.state = nested.state;
        self.state.pending = outer;
        self.pos = close + 1;
        self.close_scope(inner, self.pos);
        word.push(WordPart::CommandSubstitution(inner));
        Ok(())
    }

    /// The body between the backquote at `open` and its closing one, with `\$`, `` \` ``, `\\`
    /// (and `\"` if `quoted`) unescaped; the script offset of each byte; the closing position.
    fn unescape_backquoted(&self, open: usize, quoted: bool) -> Result<(String, Vec<u32>, usize)> {
        let mut body = Vec::new();
        let mut offsets = Vec::new();
        let mut at = open + 1;
        while at < self.end {
            let byte = self.src[at];
            if byte == b'`' {
                offsets.push(self.origin(at));
                let Ok(body) = String::from_utf8(body) else {
                    return Err(self.error("invalid UTF-8 inside backquotes", open, at + 1));
                };
                return Ok((body, offsets, at));
            }
            let escaped = self.src.get(at + 1).filter(|_| at + 1 < self.end);
            if byte == b'\\' && escaped.is_some_and(|&b| b"$`\\".contains(&b) || (quoted && b == b'"')) {
                at += 1;
            }
            body.push(self.src[at]);
            offsets.push(self.origin(at));
            at += 1;
        }
        Err(self.error("unterminated backquote", open, open + 1))
    }
}
