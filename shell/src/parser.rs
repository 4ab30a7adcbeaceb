//! The parser.

use crate::ast::{ParseError, Script};

/// Parses a script.
pub fn parse(_script: &str) -> Result<Script, ParseError> {
    unimplemented!()
}
