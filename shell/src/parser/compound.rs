//! Compound commands (subshells, groups, `if`, loops, `case`), function bodies and `[[ ]]`.
//!
//! Each compound command is a scope holding every pipeline of its conditions and bodies. A
//! function definition is a `FunctionBody` scope holding one pipeline: the body's compound
//! command, with the redirections written after it (they apply whenever the function runs).

use super::commands::is_function_name;
use super::cursor::TERMINATORS;
use super::words::Context;
use super::words::is_name;
use super::{Parser, Result};
use crate::ast::{CompoundCommand, Element, ParseError, Pipeline, ScopeKind, SimpleCommand, Word, WordPart};

impl Parser<'_> {
    /// A compound command and the redirections after it, if one starts at the cursor; and the
    /// position where it ends.
    pub(super) fn parse_compound(&mut self, scope: u32) -> Result<Option<(Element, usize)>> {
        let start = self.here();
        let body = match self.peek_keyword() {
            Some("if") => self.parse_if(scope, start)?,
            Some(keyword @ ("while" | "until")) => self.parse_while(scope, start, keyword)?,
            Some("for") => self.parse_for(scope, start)?,
            Some("case") => self.parse_case(scope, start)?,
            Some("{") => self.parse_brace_group(scope, start)?,
            Some("function") => return self.parse_function_keyword(scope, start).map(Some),
            Some("[[") => return self.parse_conditional(scope, start).map(Some),
            Some(keyword @ ("select" | "coproc")) => {
                let message = format!("`{keyword}` is not supported");
                return Err(self.error(message, start, start + keyword.len()));
            }
            Some(keyword) if TERMINATORS.contains(&keyword) || keyword == "!" => return Err(self.unexpected()),
            _ if self.peek_control() == Some("(") => self.parse_subshell(scope, start)?,
            _ => return Ok(None),
        };
        let (redirections, end) = self.read_trailing_redirections(scope)?;
        Ok(Some((
            Element::Compound(CompoundCommand {
                scope: body,
                redirections,
            }),
            end,
        )))
    }

    fn read_trailing_redirections(&mut self, scope: u32) -> Result<(Vec<crate::ast::Redirection>, usize)> {
        let mut end = self.pos;
        let mut redirections = vec![];
        loop {
            self.skip_blanks();
            match self.read_redirection(scope)? {
                Some(redirection) => redirections.push(redirection),
                None => return Ok((redirections, end)),
            }
            end = self.pos;
        }
    }

    fn parse_subshell(&mut self, scope: u32, start: usize) -> Result<u32> {
        self.bump();
        if self.peek() == Some(b'(') {
            return Err(self.error("arithmetic command `((...))` is not supported", start, start + 2));
        }
        let inner = self.open_scope(ScopeKind::Subshell, scope, start)?;
        if self.read_parenthesized(inner, start, "(")? == 0 {
            return Err(self.error("empty subshell", start, self.pos));
        }
        Ok(inner)
    }

    fn parse_brace_group(&mut self, scope: u32, start: usize) -> Result<u32> {
        self.bump();
        let inner = self.open_scope(ScopeKind::BraceGroup, scope, start)?;
        self.parse_nonempty_list(inner, "{")?;
        self.expect_keyword("}", "{", start)?;
        self.close_scope(inner, self.pos);
        Ok(inner)
    }

    /// `if list; then list; [elif list; then list;]... [else list;] fi`.
    fn parse_if(&mut self, scope: u32, start: usize) -> Result<u32> {
        self.bump_n(2);
        let inner = self.open_scope(ScopeKind::IfClause, scope, start)?;
        let mut opener = "if";
        loop {
            self.parse_nonempty_list(inner, opener)?;
            self.expect_keyword("then", opener, start)?;
            self.parse_nonempty_list(inner, "then")?;
            if !self.eat_keyword("elif") {
                break;
            }
            opener = "elif";
        }
        if self.eat_keyword("else") {
            self.parse_nonempty_list(inner, "else")?;
        }
        self.expect_keyword("fi", "if", start)?;
        self.close_scope(inner, self.pos);
        Ok(inner)
    }

    /// `while list; do list; done` or the same with `until`.
    fn parse_while(&mut self, scope: u32, start: usize, keyword: &str) -> Result<u32> {
        self.bump_n(keyword.len());
        let inner = self.open_scope(ScopeKind::LoopClause, scope, start)?;
        self.parse_nonempty_list(inner, keyword)?;
        self.parse_do_done(inner, keyword, start)?;
        Ok(inner)
    }

    fn parse_do_done(&mut self, scope: u32, opener: &str, start: usize) -> Result<()> {
        self.expect_keyword("do", opener, start)?;
        self.parse_nonempty_list(scope, "do")?;
        self.expect_keyword("done", opener, start)?;
        self.close_scope(scope, self.pos);
        Ok(())
    }

    /// `for name [in words]; do list; done`: the variable is the scope's name, the words its
    /// words.
    fn parse_for(&mut self, scope: u32, start: usize) -> Result<u32> {
        self.bump_n(3);
        self.skip_blanks();
        if self.peek() == Some(b'(') {
            return Err(self.error(
                "arithmetic `for ((...))` loops are not supported",
                start,
                self.here() + 1,
            ));
        }
        let name_start = self.here();
        let Some(name) = self
            .read_word(scope, Context::Name)?
            .and_then(|w| w.literal())
            .filter(|n| is_name(n))
        else {
            return Err(self.error(
                "expected a variable name after `for`",
                name_start,
                self.pos.max(name_start + 1),
            ));
        };
        let inner = self.open_scope(ScopeKind::LoopClause, scope, start)?;
        self.scope_mut(inner).name = Some(name);
        self.skip_blanks();
        if self.peek_control() == Some(";") {
            self.bump();
        } else {
            self.skip_linebreaks()?;
            if self.eat_keyword("in") {
                self.read_for_words(inner)?;
            }
        }
        self.parse_do_done(inner, "for", start)?;
        Ok(inner)
    }

    /// The words after `in`, up to `;` or a newline.
    fn read_for_words(&mut self, scope: u32) -> Result<()> {
        loop {
            self.skip_blanks();
            if self.peek() == Some(b'\n') {
                return self.newline();
            }
            if self.peek_control() == Some(";") {
                self.bump();
                return Ok(());
            }
            let Some(word) = self.read_word(scope, Context::Argument)? else {
                return Err(self.unexpected());
            };
            self.scope_mut(scope).words.push(word);
        }
    }

    /// `case word in [(]pattern[|pattern]...) list ;;... esac`: the subject and the patterns are
    /// the scope's words.
    fn parse_case(&mut self, scope: u32, start: usize) -> Result<u32> {
        self.bump_n(4);
        let inner = self.open_scope(ScopeKind::CaseClause, scope, start)?;
        self.skip_blanks();
        let Some(subject) = self.read_word(inner, Context::Argument)? else {
            return Err(self.unexpected());
        };
        self.scope_mut(inner).words.push(subject);
        self.expect_keyword("in", "case", start)?;
        loop {
            self.skip_linebreaks()?;
            if self.eat_keyword("esac") {
                break;
            }
            if self.at_end() {
                return Err(self.error("unterminated `case`: expected `esac`", start, start + 4));
            }
            self.read_case_patterns(inner)?;
            self.parse_list(inner)?;
            match self.peek_control() {
                Some(op @ (";;" | ";&" | ";;&")) => self.bump_n(op.len()),
                _ if self.peek_keyword() == Some("esac") => {}
                _ => return Err(self.expected("`;;` or `esac`")),
            }
        }
        self.close_scope(inner, self.pos);
        Ok(inner)
    }

    fn read_case_patterns(&mut self, scope: u32) -> Result<()> {
        if self.peek_control() == Some("(") {
            self.bump();
        }
        loop {
            self.skip_blanks();
            let Some(pattern) = self.read_word(scope, Context::Argument)? else {
                return Err(self.expected("a case pattern"));
            };
            self.scope_mut(scope).words.push(pattern);
            self.skip_blanks();
            match self.peek_control() {
                Some("|") => self.bump(),
                Some(")") => {
                    self.bump();
                    return Ok(());
                }
                _ => return Err(self.expected("`)` or `|` after a case pattern")),
            }
        }
    }

    /// An error for something other than `what` at the cursor.
    fn expected(&self, what: &str) -> ParseError {
        let found = self.unexpected();
        ParseError {
            message: format!("expected {what}; {}", found.message),
            span: found.span,
        }
    }
}

impl Parser<'_> {
    /// `function name [()] body`.
    fn parse_function_keyword(&mut self, scope: u32, start: usize) -> Result<(Element, usize)> {
        self.bump_n("function".len());
        self.skip_blanks();
        let name_start = self.here();
        let name = self
            .read_word(scope, Context::Name)?
            .and_then(|w| w.literal())
            .filter(|n| is_function_name(n));
        let Some(name) = name else {
            return Err(self.error(
                "expected a function name after `function`",
                name_start,
                self.pos.max(name_start + 1),
            ));
        };
        self.eat_function_parens();
        self.parse_function_body(scope, name, start)
    }

    /// The body of a function definition that started at `start`, after its name and `()`.
    pub(super) fn parse_function_body(&mut self, scope: u32, name: String, start: usize) -> Result<(Element, usize)> {
        self.skip_linebreaks()?;
        let inner = self.open_scope(ScopeKind::FunctionBody, scope, start)?;
        self.scope_mut(inner).name = Some(name);
        let index = self.begin_pipeline(inner);
        let body_start = self.here();
        let Some((body, end)) = self.parse_compound(inner)? else {
            return Err(self.expected("a compound command as the function body"));
        };
        let span = self.span(body_start, end);
        self.state.script.pipelines[index] = Pipeline {
            scope: inner,
            negated: false,
            elements: vec![body],
            span,
        };
        self.close_scope(inner, end);
        Ok((
            Element::Compound(CompoundCommand {
                scope: inner,
                redirections: vec![],
            }),
            end,
        ))
    }

    /// `[[ expression ]]`, read as a simple command whose words are `[[`, the operands and
    /// operators, and `]]`: it runs no program, but its words may hold substitutions. `=~`
    /// (whose right side has its own quoting rules) and bash patterns like `@(a|b)` are errors.
    fn parse_conditional(&mut self, scope: u32, start: usize) -> Result<(Element, usize)> {
        self.bump_n(2);
        let mut words = vec![literal_word("[[", self.span(start, self.pos))];
        loop {
            self.skip_blanks();
            let at = self.here();
            if self.eat_keyword("]]") {
                words.push(literal_word("]]", self.span(at, self.pos)));
                break;
            }
            let operator = match self.peek_control() {
                Some(op @ ("&&" | "||" | "(" | ")")) => Some(op),
                _ if self.at_word() => None,
                _ => match (self.peek(), self.byte_at(1)) {
                    (Some(b'<'), next) if !next.is_some_and(|b| b"<>&|".contains(&b)) => Some("<"),
                    (Some(b'>'), next) if !next.is_some_and(|b| b"<>&|".contains(&b)) => Some(">"),
                    _ if self.at_end() => return Err(self.error("unterminated `[[`: expected `]]`", start, start + 2)),
                    _ => return Err(self.expected("an operand or `]]` inside `[[ ]]`")),
                },
            };
            if let Some(op) = operator {
                self.bump_n(op.len());
                words.push(literal_word(op, self.span(at, self.pos)));
                continue;
            }
            let Some(word) = self.read_word(scope, Context::Argument)? else {
                return Err(self.unexpected());
            };
            if word.literal().as_deref() == Some("=~") {
                return Err(self.error("`=~` inside `[[ ]]` is not supported", at, self.pos));
            }
            if self.src.get(self.pos) == Some(&b'(') {
                return Err(self.error("extended patterns inside `[[ ]]` are not supported", at, self.pos + 1));
            }
            words.push(word);
        }
        let (redirections, end) = self.read_trailing_redirections(scope)?;
        let span = self.span(start, end);
        Ok((
            Element::Simple(SimpleCommand {
                assignments: vec![],
                words,
                redirections,
                span,
            }),
            end,
        ))
    }
}

fn literal_word(text: &str, span: crate::ast::Span) -> Word {
    Word {
        span,
        parts: vec![WordPart::Literal(text.into())],
    }
}
