//! Words: unquoted text, quotes, escapes, globs and tildes; `$` and backquotes are in
//! [`super::expansions`].

use super::cursor::is_meta;
use super::{Parser, Result};
use crate::ast::{Word, WordPart};

/// Collects a word's parts, merging adjacent literal text and adjacent glob text.
#[derive(Default)]
pub(super) struct WordBuilder {
    parts: Vec<WordPart>,
    text: String,
    /// Whether `text` is glob text rather than literal text.
    glob: bool,
    /// Whether a quote was opened, so that `""` alone still yields an (empty) literal.
    quoted: bool,
}

impl WordBuilder {
    pub(super) fn push_literal(&mut self, s: &str) {
        self.switch(false);
        self.text.push_str(s);
    }

    pub(super) fn push_char(&mut self, c: char) {
        self.switch(false);
        self.text.push(c);
    }

    fn push_glob(&mut self, s: &str) {
        self.switch(true);
        self.text.push_str(s);
    }

    /// Marks that a quote was opened, so `""` still yields an (empty) literal.
    fn quote(&mut self) {
        self.switch(false);
        self.quoted = true;
    }

    pub(super) fn push(&mut self, part: WordPart) {
        self.flush();
        self.parts.push(part);
    }

    fn switch(&mut self, glob: bool) {
        if self.glob != glob {
            self.flush();
            self.glob = glob;
        }
    }

    fn flush(&mut self) {
        if !self.text.is_empty() {
            let text = std::mem::take(&mut self.text);
            self.parts.push(if self.glob {
                WordPart::Glob(text)
            } else {
                WordPart::Literal(text)
            });
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.parts.is_empty() && self.text.is_empty() && !self.quoted
    }

    pub(super) fn finish(mut self) -> Vec<WordPart> {
        self.flush();
        if self.parts.is_empty() && self.quoted {
            self.parts.push(WordPart::Literal(String::new()));
        }
        self.parts
    }
}

/// Where a word is read, which decides what its unquoted characters mean.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Context {
    /// A command word, redirection target or pattern: a leading tilde and globs expand.
    Argument,
    /// An assignment value: a leading tilde expands, globs do not.
    Value,
    /// A name or here-document delimiter: neither expands.
    Name,
}

/// Whether `name` is a valid variable name.
pub(super) fn is_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl Parser<'_> {
    /// Reads a word; `None` if a metacharacter or the end comes first.
    pub(super) fn read_word(&mut self, scope: u32, context: Context) -> Result<Option<Word>> {
        let start = self.here();
        let mut word = WordBuilder::default();
        if context != Context::Name {
            self.read_tilde(&mut word);
        }
        while let Some(b) = self.peek() {
            match b {
                b'<' | b'>' if self.byte_at(1) == Some(b'(') => {
                    if !word.is_empty() {
                        let at = self.here();
                        return Err(self.error("process substitution inside a word is not supported", at, at + 2));
                    }
                    self.read_process_substitution(&mut word, scope)?;
                }
                _ if is_meta(b) => break,
                b'\'' => self.read_single_quoted(&mut word)?,
                b'"' => self.read_double_quoted(&mut word, scope)?,
                b'\\' => self.read_escape(&mut word),
                b'$' => self.read_dollar(&mut word, scope, false)?,
                b'`' => self.read_backquoted(&mut word, scope, false)?,
                b'*' | b'?' if context == Context::Argument => {
                    word.push_glob(if b == b'*' { "*" } else { "?" });
                    self.bump();
                }
                b'[' if context == Context::Argument => self.read_bracket(&mut word),
                _ => self.read_plain_char(&mut word),
            }
        }
        if word.is_empty() {
            return Ok(None);
        }
        Ok(Some(Word {
            span: self.span(start, self.pos),
            parts: word.finish(),
        }))
    }

    fn read_plain_char(&mut self, word: &mut WordBuilder) {
        if let Some(c) = self.peek_char() {
            word.push_char(c);
        }
        self.bump();
    }

    /// A backslash outside quotes makes the next character literal; at the very end of the
    /// script it is itself literal, as in bash.
    fn read_escape(&mut self, word: &mut WordBuilder) {
        self.bump();
        if !self.read_raw_char(word) {
            word.push_char('\\');
        }
    }

    /// Takes the character right at the cursor as literal text, without skipping line
    /// continuations: an escaped backslash must not start one.
    pub(super) fn read_raw_char(&mut self, word: &mut WordBuilder) -> bool {
        match self.text.get(self.pos..self.end).and_then(|rest| rest.chars().next()) {
            Some(c) => {
                word.push_char(c);
                self.pos += c.len_utf8();
                true
            }
            None => false,
        }
    }

    /// `~` or `~user` when followed by `/`, `:` or the end of the word; otherwise `~` is text.
    fn read_tilde(&mut self, word: &mut WordBuilder) {
        if self.peek() != Some(b'~') {
            return;
        }
        let len = 1 + self
            .logical_bytes()
            .skip(1)
            .take_while(|&b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
            .count();
        if self.byte_at(len).is_none_or(|b| is_meta(b) || b == b'/' || b == b':') {
            self.bump();
            let mut user = String::new();
            for _ in 1..len {
                user.extend(self.peek_char());
                self.bump();
            }
            word.push(WordPart::Tilde(user));
        }
    }

    /// `[...]` is a glob when it closes within the same stretch of plain text. Otherwise no
    /// `[` of that stretch closes, so the whole stretch is taken at once (keeping this linear):
    /// `[` as text, `*` and `?` as globs.
    fn read_bracket(&mut self, word: &mut WordBuilder) {
        let plain = |b: u8| !is_meta(b) && !b"'\"\\$`".contains(&b);
        let mut bytes = self.logical_bytes().skip(1).peekable();
        let mut len = 1;
        len += usize::from(bytes.next_if(|&b| b == b'!' || b == b'^').is_some());
        len += usize::from(bytes.next_if_eq(&b']').is_some());
        let closed = loop {
            match bytes.next() {
                Some(b']') => break true,
                Some(b) if plain(b) => len += 1,
                _ => break false,
            }
        };
        drop(bytes);
        let stop = self.logical_nth(len) + usize::from(closed);
        let mut glob = String::new();
        while self.here() < stop {
            match self.peek_char() {
                Some(c) if closed => glob.push(c),
                Some(c @ ('*' | '?')) => word.push_glob(c.encode_utf8(&mut [0; 4])),
                Some(c) => word.push_char(c),
                None => {}
            }
            self.bump();
        }
        if closed {
            word.push_glob(&glob);
        }
    }

    pub(super) fn read_single_quoted(&mut self, word: &mut WordBuilder) -> Result<()> {
        let open = self.here();
        let body = open + 1;
        let Some(len) = self.src[body..self.end].iter().position(|&b| b == b'\'') else {
            return Err(self.error("unterminated single quote", open, open + 1));
        };
        word.quote();
        word.push_literal(self.text.get(body..body + len).unwrap_or_default());
        self.pos = body + len + 1;
        Ok(())
    }

    /// A double-quoted string: `$` and backquotes expand, a backslash escapes only `$`, `` ` ``,
    /// `"`, `\` and newline.
    pub(super) fn read_double_quoted(&mut self, word: &mut WordBuilder, scope: u32) -> Result<()> {
        let open = self.here();
        self.bump();
        word.quote();
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated double quote", open, open + 1)),
                Some(b'"') => {
                    self.bump();
                    return Ok(());
                }
                Some(b'\\') => {
                    self.bump();
                    if !self.src[self.pos..self.end]
                        .first()
                        .is_some_and(|b| b"$`\"\\".contains(b))
                    {
                        word.push_char('\\');
                    }
                    self.read_raw_char(word);
                }
                Some(b'$') => self.read_dollar(word, scope, true)?,
                Some(b'`') => self.read_backquoted(word, scope, true)?,
                Some(_) => self.read_plain_char(word),
            }
        }
    }
}
