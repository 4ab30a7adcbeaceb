//! The parsed form of a script. WIT has no recursive types, so nested bodies are [`Scope`]s in a
//! flat table that pipelines and words point into by index.

/// A byte range `[start, end)` of the script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

/// One piece of a word; concatenated, the pieces make the word after quote removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WordPart {
    /// Text taken literally (quotes removed, escapes resolved).
    Literal(String),
    /// Unquoted pattern characters (`*`, `?`, `[...]`).
    Glob(String),
    /// A tilde prefix at the start of the word: `~` is `""`, `~user` is `"user"`.
    Tilde(String),
    /// A parameter expansion: the parameter name (`HOME`, `1`, `@`).
    Parameter(String),
    /// An arithmetic expansion `$((...))`: the expression text.
    Arithmetic(String),
    /// `$(...)` or backticks: index of the scope holding the body.
    CommandSubstitution(u32),
    /// `<(...)` or `>(...)`: index of the scope holding the body.
    ProcessSubstitution(u32),
}

/// One word of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// Where it is in the script.
    pub span: Span,
    /// Its pieces, in order.
    pub parts: Vec<WordPart>,
}

/// A redirection such as `2>&1`, `> out.txt` or `<<EOF`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirection {
    /// The descriptor before the operator (`2` in `2>err`).
    pub fd: Option<u32>,
    /// `<`, `>`, `>>`, `>|`, `<>`, `<&`, `>&`, `&>`, `&>>`, `<<`, `<<-` or `<<<`.
    pub operator: String,
    /// File name, descriptor number or here-document delimiter.
    pub target: Word,
    /// A here-document's body, unexpanded.
    pub here_document: Option<String>,
    /// Where it is in the script.
    pub span: Span,
}

/// `NAME=value` or `NAME+=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// Variable name.
    pub name: String,
    /// Value.
    pub value: Word,
    /// Where it is in the script.
    pub span: Span,
}

/// Assignments, words (program first) and redirections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleCommand {
    /// Assignments before the program.
    pub assignments: Vec<Assignment>,
    /// Program and arguments; empty for a bare assignment or redirection.
    pub words: Vec<Word>,
    /// Redirections, wherever they appear among the words.
    pub redirections: Vec<Redirection>,
    /// Where it is in the script.
    pub span: Span,
}

/// A compound command used as a pipeline element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompoundCommand {
    /// Index of the scope holding the body.
    pub scope: u32,
    /// Redirections of the whole compound command.
    pub redirections: Vec<Redirection>,
}

/// One element of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Element {
    /// A simple command.
    Simple(SimpleCommand),
    /// A subshell, group, loop, `if`, `case` or function definition.
    Compound(CompoundCommand),
}

/// Elements joined by `|` or `|&`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    /// Scope it belongs to (0 is the script).
    pub scope: u32,
    /// Whether it starts with `!`.
    pub negated: bool,
    /// Elements, left to right.
    pub elements: Vec<Element>,
    /// Where it is in the script.
    pub span: Span,
}

/// What kind of body a scope is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeKind {
    /// The whole script (scope 0).
    Script,
    /// `( ... )`.
    Subshell,
    /// `{ ...; }`.
    BraceGroup,
    /// `if`/`elif`/`else`.
    IfClause,
    /// `for`, `while`, `until`.
    LoopClause,
    /// `case`.
    CaseClause,
    /// A function body.
    FunctionBody,
    /// `$(...)` or backticks.
    CommandSubstitution,
    /// `<(...)` or `>(...)`.
    ProcessSubstitution,
}

/// A body that holds pipelines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Its kind.
    pub kind: ScopeKind,
    /// The enclosing scope (none for the script).
    pub parent: Option<u32>,
    /// Function name, or `for` variable.
    pub name: Option<String>,
    /// Words of the construct itself: the `for` list, or the `case` subject and patterns.
    pub words: Vec<Word>,
    /// Where it is in the script.
    pub span: Span,
}

/// An operator between pipelines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOperator {
    /// `;`, `&`, `&&`, `||` or `\n`.
    pub operator: String,
    /// Where it is in the script.
    pub span: Span,
}

/// A parsed script.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script {
    /// Every scope; scope 0 is the script itself.
    pub scopes: Vec<Scope>,
    /// Every pipeline of every scope, in source order.
    pub pipelines: Vec<Pipeline>,
    /// Every list operator, in source order.
    pub operators: Vec<ListOperator>,
}

/// Why a script could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// What is wrong.
    pub message: String,
    /// Where.
    pub span: Span,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at bytes {}..{}", self.message, self.span.start, self.span.end)
    }
}

impl std::error::Error for ParseError {}

impl Word {
    /// The word's text if it is entirely literal (no expansion, glob or tilde).
    pub fn literal(&self) -> Option<String> {
        let mut text = String::new();
        for part in &self.parts {
            match part {
                WordPart::Literal(s) => text.push_str(s),
                _ => return None,
            }
        }
        Some(text)
    }
}
