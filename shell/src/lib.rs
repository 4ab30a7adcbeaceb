//! Parses POSIX shell scripts into the flat structure of `wit/shell.wit`, so that sanitizers judge
//! what a script runs rather than how it is spelled. The host serves this parser to plugins as an
//! import; the plugin SDK calls it directly when a plugin is tested natively.
//!
//! Every type mirrors the WIT type of the same name. Input the parser does not understand is an
//! error with a span, never a guess.

mod ast;
mod parser;

pub use ast::*;
pub use parser::parse;
