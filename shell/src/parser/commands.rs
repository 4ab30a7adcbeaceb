//! Lists, and-or lists, pipelines and simple commands.

use super::cursor::{TERMINATORS, is_meta};
use super::words::Context;
use super::{Parser, Result};
use crate::ast::{Assignment, Element, ListOperator, ParseError, Pipeline, SimpleCommand, Word};

impl Parser<'_> {
    /// Parses and-or lists into `scope` until something that cannot start one (a closing word or
    /// operator, or the end); returns how many pipelines it read. A newline counts as an
    /// operator only between two pipelines.
    pub(super) fn parse_list(&mut self, scope: u32) -> Result<usize> {
        let mut count = 0;
        self.skip_linebreaks()?;
        while !self.at_list_end() {
            count += self.parse_and_or(scope)?;
            self.skip_blanks();
            let at = self.here();
            match self.peek_control() {
                Some(op @ (";" | "&")) => {
                    self.bump();
                    self.push_operator(op, at);
                    self.skip_linebreaks()?;
                }
                _ if self.peek() == Some(b'\n') => {
                    self.skip_linebreaks()?;
                    if !self.at_list_end() {
                        self.push_operator("\n", at);
                    }
                }
                _ => break,
            }
        }
        Ok(count)
    }

    /// Like [`Parser::parse_list`], but at least one command must follow `after`.
    pub(super) fn parse_nonempty_list(&mut self, scope: u32, after: &str) -> Result<()> {
        if self.parse_list(scope)? > 0 {
            return Ok(());
        }
        let found = self.unexpected();
        Err(ParseError {
            message: format!("expected a command after `{after}`; {}", found.message),
            span: found.span,
        })
    }

    fn at_list_end(&self) -> bool {
        self.at_end()
            || matches!(self.peek_control(), Some(")" | ";;" | ";&" | ";;&"))
            || self.peek_keyword().is_some_and(|k| TERMINATORS.contains(&k))
    }

    fn push_operator(&mut self, operator: &str, at: usize) {
        let span = self.span(at, at + operator.len());
        self.state.script.operators.push(ListOperator {
            operator: operator.into(),
            span,
        });
    }

    /// Pipelines joined by `&&` and `||`; returns how many.
    fn parse_and_or(&mut self, scope: u32) -> Result<usize> {
        self.parse_pipeline(scope)?;
        let mut count = 1;
        loop {
            self.skip_blanks();
            let at = self.here();
            let Some(op @ ("&&" | "||")) = self.peek_control() else {
                return Ok(count);
            };
            self.bump_n(2);
            self.push_operator(op, at);
            self.skip_linebreaks()?;
            self.parse_pipeline(scope)?;
            count += 1;
        }
    }

    /// `[!] command [| command]...`; `|&` is read like `|`.
    fn parse_pipeline(&mut self, scope: u32) -> Result<()> {
        self.skip_blanks();
        let start = self.here();
        let index = self.begin_pipeline(scope);
        let negated = self.eat_keyword("!");
        let (first, mut end) = self.parse_command(scope)?;
        let mut elements = vec![first];
        loop {
            self.skip_blanks();
            let Some(op @ ("|" | "|&")) = self.peek_control() else {
                break;
            };
            self.bump_n(op.len());
            self.skip_linebreaks()?;
            let (element, element_end) = self.parse_command(scope)?;
            elements.push(element);
            end = element_end;
        }
        let span = self.span(start, end);
        self.state.script.pipelines[index] = Pipeline {
            scope,
            negated,
            elements,
            span,
        };
        Ok(())
    }

    /// One pipeline element and the position where it ends.
    fn parse_command(&mut self, scope: u32) -> Result<(Element, usize)> {
        self.skip_blanks();
        match self.parse_compound(scope)? {
            Some(compound) => Ok(compound),
            None => self.parse_simple(scope),
        }
    }

    /// Assignments, words and redirections, or a function definition `name() body`.
    fn parse_simple(&mut self, scope: u32) -> Result<(Element, usize)> {
        let start = self.here();
        let mut command = SimpleCommand {
            assignments: vec![],
            words: vec![],
            redirections: vec![],
            span: self.span(start, start),
        };
        let mut end = start;
        loop {
            self.skip_blanks();
            if let Some(redirection) = self.read_redirection(scope)? {
                command.redirections.push(redirection);
            } else if !self.at_word() {
                break;
            } else if let Some(assignment) = self.read_assignment(scope, command.words.is_empty())? {
                command.assignments.push(assignment);
            } else {
                let word_start = self.here();
                let Some(word) = self.read_word(scope, Context::Argument)? else {
                    break;
                };
                self.reject_named_descriptor(&word, word_start)?;
                let first = command.assignments.is_empty() && command.redirections.is_empty();
                if first && command.words.is_empty() && self.eat_function_parens() {
                    return self.parse_function_definition(scope, word, start);
                }
                command.words.push(word);
            }
            end = self.pos;
        }
        if command.assignments.is_empty() && command.words.is_empty() && command.redirections.is_empty() {
            let found = self.unexpected();
            return Err(ParseError {
                message: format!("expected a command; {}", found.message),
                span: found.span,
            });
        }
        command.span = self.span(start, end);
        Ok((Element::Simple(command), end))
    }

    /// Whether a word starts at the cursor (a process substitution starts with a metacharacter).
    pub(super) fn at_word(&self) -> bool {
        match self.peek() {
            Some(b'<' | b'>') => self.byte_at(1) == Some(b'('),
            Some(b) => !is_meta(b),
            None => false,
        }
    }

    /// `NAME=value` or `NAME+=value`, if `allowed` (no program word yet) and one is next.
    fn read_assignment(&mut self, scope: u32, allowed: bool) -> Result<Option<Assignment>> {
        let start = self.here();
        if !allowed || !self.peek().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_') {
            return Ok(None);
        }
        let len = 1 + self
            .logical_bytes()
            .skip(1)
            .take_while(|&b| b.is_ascii_alphanumeric() || b == b'_')
            .count();
        let operator = match self.byte_at(len) {
            Some(b'=') => 1,
            Some(b'+') if self.byte_at(len + 1) == Some(b'=') => 2,
            Some(b'[') => return self.reject_array_element(len).map(|()| None),
            _ => return Ok(None),
        };
        let name = self.take_while(len, |_| true);
        self.bump_n(operator);
        let value_start = self.here();
        if self.peek_control() == Some("(") {
            return Err(self.error("array assignment is not supported", start, value_start + 1));
        }
        let value = match self.read_word(scope, Context::Value)? {
            Some(value) => value,
            None => Word {
                span: self.span(value_start, value_start),
                parts: vec![],
            },
        };
        Ok(Some(Assignment {
            name,
            value,
            span: self.span(start, self.pos),
        }))
    }

    /// `name[index]=value` assigns rather than runs `name[index]=value`; not modelled.
    fn reject_array_element(&self, len: usize) -> Result<()> {
        let rest: Vec<u8> = self.logical_bytes().skip(len).take_while(|&b| !is_meta(b)).collect();
        if rest.windows(2).any(|w| w == b"]=") || rest.windows(3).any(|w| w == b"]+=") {
            let start = self.here();
            return Err(self.error(
                "array element assignment is not supported",
                start,
                start + len + rest.len(),
            ));
        }
        Ok(())
    }

    /// `{name}>file` allocates a descriptor in bash; it is not a word.
    fn reject_named_descriptor(&self, word: &Word, start: usize) -> Result<()> {
        let named = word
            .literal()
            .is_some_and(|w| w.len() > 2 && w.starts_with('{') && w.ends_with('}'));
        if named && matches!(self.src.get(self.pos), Some(b'<' | b'>')) {
            return Err(self.error("named file descriptors (`{name}>`) are not supported", start, self.pos));
        }
        Ok(())
    }

    /// Consumes `( )` of a function definition if it is next.
    pub(super) fn eat_function_parens(&mut self) -> bool {
        let save = self.pos;
        self.skip_blanks();
        if self.peek() == Some(b'(') {
            self.bump();
            self.skip_blanks();
            if self.peek() == Some(b')') {
                self.bump();
                return true;
            }
        }
        self.pos = save;
        false
    }

    fn parse_function_definition(&mut self, scope: u32, name: Word, start: usize) -> Result<(Element, usize)> {
        match name.literal().filter(|n| is_function_name(n)) {
            Some(name) => self.parse_function_body(scope, name, start),
            None => Err(ParseError {
                message: "invalid function name".into(),
                span: name.span,
            }),
        }
    }
}

/// Names bash accepts for functions, minus anything that needs quoting.
pub(super) fn is_function_name(name: &str) -> bool {
    !name.bytes().all(|b| b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:+-@".contains(&b))
}
