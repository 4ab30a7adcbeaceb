//! The shell parser, so that sanitizers judge what a script runs rather than how it is spelled.
//! In a component [`parse`] calls the host's `shell` import; natively (tests) it calls the very
//! same parser (`rdev-shell`) directly, so a plugin behaves the same in both places.

#[cfg(any(target_arch = "wasm32", test))]
mod convert;

pub use rdev_shell::{
    Assignment, CompoundCommand, Element, ListOperator, ParseError, Pipeline, Redirection, Scope, ScopeKind, Script,
    SimpleCommand, Span, Word, WordPart,
};

/// Parses a POSIX shell script. Input the parser does not understand is an error, never a guess.
pub fn parse(script: &str) -> Result<Script, ParseError> {
    #[cfg(target_arch = "wasm32")]
    {
        crate::bindings::shell::parse(script)
            .map(convert::script)
            .map_err(convert::parse_error)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        rdev_shell::parse(script)
    }
}
