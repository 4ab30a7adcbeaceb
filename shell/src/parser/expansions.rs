//! `$` expansions: parameters, `${...}`, `$((...))` and `$'...'`; substitutions are in
//! [`super::substitutions`].
//!
//! `${...}` and `$((...))` can hide command substitutions (`${x:-$(cmd)}`, `$(( $(cmd) + 1 ))`)
//! that run when the word expands. Their text is not modelled, but every substitution inside is
//! parsed into its own scope and its part is appended right after the `Parameter` or
//! `Arithmetic` part, so no command goes unseen.

use super::words::WordBuilder;
use super::{Parser, Result};
use crate::ast::WordPart;

/// Special parameters that are a single character after `$`.
const SPECIAL: &[u8] = b"@*#?-$!";

impl Parser<'_> {
    /// Reads an expansion starting at `$`; a `$` that starts none is literal. `quoted` is true
    /// inside double quotes and here-documents.
    pub(super) fn read_dollar(&mut self, word: &mut WordBuilder, scope: u32, quoted: bool) -> Result<()> {
        let start = self.here();
        match self.byte_at(1) {
            Some(b'(') if self.byte_at(2) == Some(b'(') => self.read_arithmetic(word, scope),
            Some(b'(') => self.read_command_substitution(word, scope),
            Some(b'{') => self.read_braced(word, scope, quoted),
            Some(b'\'') if !quoted => {
                self.bump();
                self.read_ansi_c(word, start)
            }
            Some(b'"') if !quoted => {
                self.bump();
                self.read_double_quoted(word, scope)
            }
            Some(b'[') => Err(self.error("`$[...]` arithmetic is not supported", start, start + 2)),
            Some(b) if b.is_ascii_alphanumeric() || b == b'_' || SPECIAL.contains(&b) => {
                self.bump();
                let name = if b.is_ascii_digit() {
                    self.take_while(1, |b| b.is_ascii_digit())
                } else {
                    self.read_name()
                };
                word.push(WordPart::Parameter(name));
                Ok(())
            }
            _ => {
                word.push_char('$');
                self.bump();
                Ok(())
            }
        }
    }

    /// A parameter name: a variable name, digits (only one after a bare `$`) or one special
    /// character; empty if none is next.
    fn read_name(&mut self) -> String {
        match self.peek() {
            Some(b) if b.is_ascii_alphabetic() || b == b'_' => {
                self.take_while(usize::MAX, |b| b.is_ascii_alphanumeric() || b == b'_')
            }
            Some(b) if b.is_ascii_digit() => self.take_while(usize::MAX, |b| b.is_ascii_digit()),
            Some(b) if SPECIAL.contains(&b) => self.take_while(1, |_| true),
            _ => String::new(),
        }
    }

    /// Consumes up to `max` ASCII bytes that satisfy `keep`.
    pub(super) fn take_while(&mut self, max: usize, keep: impl Fn(u8) -> bool) -> String {
        let mut taken = String::new();
        while taken.len() < max
            && let Some(b) = self.peek().filter(|&b| b.is_ascii() && keep(b))
        {
            taken.push(char::from(b));
            self.bump();
        }
        taken
    }

    /// `${name}`, `${#name}`, `${!name}` or `${name<op>word}`: the part names the parameter.
    fn read_braced(&mut self, word: &mut WordBuilder, scope: u32, quoted: bool) -> Result<()> {
        let start = self.here();
        self.enter(start)?;
        self.bump_n(2);
        // `${#name}` is a length and `${!name}` an indirection; `${#}` and `${!}` are parameters.
        if matches!(self.peek(), Some(b'#' | b'!')) && self.byte_at(1) != Some(b'}') {
            self.bump();
        }
        let name = self.read_name();
        if name.is_empty() {
            return Err(self.error(
                "bad substitution: expected a parameter name after `${`",
                start,
                self.here() + 1,
            ));
        }
        let mut inner = WordBuilder::default();
        self.read_brace_rest(&mut inner, scope, quoted, start)?;
        word.push(WordPart::Parameter(name));
        push_substitutions(word, inner);
        self.leave();
        Ok(())
    }

    /// Skips to the `}` closing a `${`, parsing the expansions on the way into `inner`.
    fn read_brace_rest(&mut self, inner: &mut WordBuilder, scope: u32, quoted: bool, start: usize) -> Result<()> {
        loop {
            let at = self.here();
            match self.peek() {
                None => return Err(self.error("unterminated `${`", start, start + 2)),
                Some(b'}') => {
                    self.bump();
                    return Ok(());
                }
                Some(b'\\') => {
                    self.bump();
                    self.read_raw_char(inner);
                }
                // Bash expands inside these quotes yet lets them hide a `}`; too subtle to trust.
                Some(b'\'') if quoted => {
                    let message = "single quote inside `${...}` within double quotes is not supported";
                    return Err(self.error(message, at, at + 1));
                }
                Some(b'\'') => self.read_single_quoted(inner)?,
                Some(b'"') => self.read_double_quoted(inner, scope)?,
                Some(b'$') => self.read_dollar(inner, scope, quoted)?,
                Some(b'`') => self.read_backquoted(inner, scope, quoted)?,
                Some(b'<' | b'>') if self.byte_at(1) == Some(b'(') => {
                    let message = "process substitution inside `${...}` is not supported";
                    return Err(self.error(message, at, at + 2));
                }
                Some(_) => self.bump(),
            }
        }
    }

    /// `$((expression))`: the part holds the expression text.
    fn read_arithmetic(&mut self, word: &mut WordBuilder, scope: u32) -> Result<()> {
        let start = self.here();
        self.enter(start)?;
        self.bump_n(3);
        let mut expression = String::new();
        let mut inner = WordBuilder::default();
        let mut depth = 0usize;
        loop {
            let at = self.here();
            match self.peek() {
                None => return Err(self.error("unterminated `$((`", start, start + 3)),
                Some(b')') if depth == 0 => {
                    if self.byte_at(1) != Some(b')') {
                        let message = "`$((` must end with `))`; write `$( (` for a command substitution of a subshell";
                        return Err(self.error(message, start, start + 3));
                    }
                    self.bump_n(2);
                    break;
                }
                Some(b'$' | b'`') => {
                    if self.peek() == Some(b'$') {
                        self.read_dollar(&mut inner, scope, true)?;
                    } else {
                        self.read_backquoted(&mut inner, scope, true)?;
                    }
                    expression.push_str(self.text.get(at..self.pos).unwrap_or_default());
                    continue;
                }
                Some(b'\'' | b'\\') => {
                    let message = "quote or backslash inside `$((...))` is not supported";
                    return Err(self.error(message, at, at + 1));
                }
                Some(b'(') => depth += 1,
                Some(b')') => depth -= 1,
                Some(_) => {}
            }
            expression.extend(self.peek_char());
            self.bump();
        }
        word.push(WordPart::Arithmetic(expression.trim().to_owned()));
        push_substitutions(word, inner);
        self.leave();
        Ok(())
    }

    /// `$'...'` with its escapes resolved; `start` is the `$`, the cursor is on the quote.
    fn read_ansi_c(&mut self, word: &mut WordBuilder, start: usize) -> Result<()> {
        let mut bytes = Vec::new();
        let mut at = self.here() + 1;
        loop {
            match self.src.get(at).filter(|_| at < self.end) {
                None => return Err(self.error("unterminated `$'`", start, start + 2)),
                Some(b'\'') => break,
                Some(b'\\') => {
                    let rest = self.src.get(at + 1..self.end).unwrap_or_default();
                    let Some((decoded, used)) = ansi_c_escape(rest) else {
                        return Err(self.error("unsupported escape in `$'...'`", at, at + 2));
                    };
                    bytes.extend(decoded);
                    at += 1 + used;
                }
                Some(&b) => {
                    bytes.push(b);
                    at += 1;
                }
            }
        }
        let Ok(text) = String::from_utf8(bytes) else {
            return Err(self.error("`$'...'` escapes that are not UTF-8 are not supported", start, at + 1));
        };
        word.push_literal(&text);
        self.pos = at + 1;
        Ok(())
    }
}

/// Appends the substitutions found inside a `${...}` or `$((...))`.
fn push_substitutions(word: &mut WordBuilder, inner: WordBuilder) {
    for part in inner.finish() {
        if matches!(
            part,
            WordPart::CommandSubstitution(_) | WordPart::ProcessSubstitution(_)
        ) {
            word.push(part);
        }
    }
}

/// Decodes the escape after a backslash in `$'...'`: the bytes it stands for and how many bytes
/// of `rest` it used. `None` for escapes whose result would be cut short (NUL) or is unclear.
fn ansi_c_escape(rest: &[u8]) -> Option<(Vec<u8>, usize)> {
    let (&first, tail) = rest.split_first()?;
    let byte = match first {
        b'a' => 7,
        b'b' => 8,
        b'e' | b'E' => 27,
        b'f' => 12,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'v' => 11,
        b'\\' | b'\'' | b'"' | b'?' => first,
        b'0'..=b'7' => {
            let (value, used) = number(rest, 8, 3);
            return nonzero(value & 0xFF, used);
        }
        b'x' => {
            let (value, used) = number(tail, 16, 2);
            return if used == 0 {
                Some((b"\\x".to_vec(), 1))
            } else {
                nonzero(value, used + 1)
            };
        }
        b'u' | b'U' => {
            let (value, used) = number(tail, 16, if first == b'u' { 4 } else { 8 });
            if used == 0 {
                return Some((vec![b'\\', first], 1));
            }
            let c = char::from_u32(value).filter(|&c| c != '\0')?;
            return Some((c.to_string().into_bytes(), used + 1));
        }
        b'c' => {
            let control = tail.first()?.to_ascii_uppercase();
            return (b'A'..=b'_').contains(&control).then(|| (vec![control & 0x1F], 2));
        }
        // Unknown escapes keep their backslash; the next byte is read as ordinary text.
        _ => return Some((vec![b'\\'], 0)),
    };
    Some((vec![byte], 1))
}

fn nonzero(value: u32, used: usize) -> Option<(Vec<u8>, usize)> {
    let byte = u8::try_from(value).ok().filter(|&b| b != 0)?;
    Some((vec![byte], used))
}

/// Parses up to `max` digits of `radix` at the start of `bytes`: the value and the digit count.
fn number(bytes: &[u8], radix: u32, max: usize) -> (u32, usize) {
    let digits: Vec<u32> = bytes
        .iter()
        .take(max)
        .map_while(|&b| char::from(b).to_digit(radix))
        .collect();
    (digits.iter().fold(0, |value, d| value * radix + d), digits.len())
}
