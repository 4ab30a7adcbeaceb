//! Allowed builtins that bash lets run code through their arguments: a variable name with a
//! subscript (`read 'a[$(id)]'`, `printf -v 'a[$(id)]' x`, `test -v 'a[$(id)]'`, `unset`,
//! `wait -p`) has its subscript evaluated, command substitutions included; and `set -k` turns
//! any later argument such as `PATH=/tmp` into an environment assignment the rules never saw.

use super::Judge;
use rdev_plugin_sdk::shell::Word;

/// Options of `read` that take a value (the value is not a variable name).
const READ_VALUES: &[&str] = &["-d", "-i", "-n", "-N", "-p", "-t", "-u"];

fn is_name(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Judge<'_> {
    /// Judges the arguments of the builtins that take variable names, and `set`.
    pub(super) fn builtin(&self, program: &str, args: &[Word]) -> Result<(), String> {
        if !self.config.checks.indirect_execution {
            return Ok(());
        }
        match program {
            "read" => self.read_names(args),
            "printf" => self.option_names(program, "-v", args),
            "wait" => self.option_names(program, "-p", args),
            "test" | "[" => self.option_names(program, "-v", args),
            "unset" => args
                .iter()
                .filter(|w| !w.literal().is_some_and(|t| t.starts_with('-')))
                .try_for_each(|word| self.variable_name(program, word)),
            "set" => self.set_options(args),
            _ => Ok(()),
        }
    }

    fn variable_name(&self, program: &str, word: &Word) -> Result<(), String> {
        match word.literal() {
            Some(name) if is_name(&name) => Ok(()),
            _ => Err(format!(
                "`{program}` variable name `{}` is refused (only plain names: bash evaluates a subscript, commands included)",
                self.source(word)
            )),
        }
    }

    /// `read [-options] NAME...`: every operand, and the value of `-a`, is a name.
    fn read_names(&self, args: &[Word]) -> Result<(), String> {
        let mut words = args.iter();
        while let Some(word) = words.next() {
            let text = word.literal().unwrap_or_default();
            if READ_VALUES.iter().any(|option| text == *option) {
                words.next();
            } else if text == "-a" {
                words.next().map_or(Ok(()), |name| self.variable_name("read", name))?;
            } else if !(text.starts_with('-') && text.len() > 1) {
                self.variable_name("read", word)?;
            }
        }
        Ok(())
    }

    /// The value of `option` (`-v NAME` or `-vNAME`) is a name.
    fn option_names(&self, program: &str, option: &str, args: &[Word]) -> Result<(), String> {
        let mut words = args.iter();
        while let Some(word) = words.next() {
            let text = word.literal();
            if text.as_deref() == Some(option) {
                words.next().map_or(Ok(()), |name| self.variable_name(program, name))?;
            } else if program == "printf" && text.as_deref().is_some_and(|t| t.starts_with(option)) {
                return Err(format!(
                    "`printf` option `{}` is refused (give the name separately)",
                    self.source(word)
                ));
            } else if program == "printf" && !text.is_some_and(|t| t.starts_with('-')) {
                return Ok(());
            }
        }
        Ok(())
    }

    /// `set -k` (or `-o keyword`) makes `NAME=value` anywhere on a command line an assignment.
    fn set_options(&self, args: &[Word]) -> Result<(), String> {
        let mut words = args.iter().map_while(Word::literal).take_while(|t| t != "--");
        while let Some(text) = words.next() {
            let keyword = match text.as_bytes().first() {
                Some(b'-' | b'+') if &text[1..] == "o" => words.next().is_some_and(|o| o == "keyword"),
                Some(b'-' | b'+') => text[1..].contains('k'),
                _ => false,
            };
            if keyword {
                return Err("`set -k` is refused (it turns any argument like `PATH=x` into an assignment)".into());
            }
        }
        let options = args.iter().take_while(|word| word.literal().is_none_or(|t| t != "--"));
        if options.into_iter().any(|word| word.literal().is_none()) {
            return Err("`set` with an option built from an expansion is refused".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::tools::testing::{allows, refuses};

    #[test]
    fn allows_plain_variable_names() {
        allows(&[
            "read -r line < notes.txt; echo $line",
            "printf -v out '%s' x; printf '%s\\n' a b",
            "test -v HOME && [ -n \"$x\" ]",
            "unset x y",
            "set -euo pipefail; set -x; set -- a b",
            "sleep 0 & wait",
        ]);
    }

    #[test]
    fn refuses_names_with_subscripts() {
        refuses(
            "printf -v 'a[$(id)]' x",
            "`printf` variable name `'a[$(id)]'` is refused",
        );
        refuses("read 'a[$(id)]' < f", "`read` variable name");
        refuses("read -a 'a[$(id)]' < f", "`read` variable name");
        refuses("test -v 'a[$(id)]'", "`test` variable name");
        refuses("[ -v 'a[$(id)]' ]", "`[` variable name");
        refuses("unset 'a[$(id)]'", "`unset` variable name");
        refuses("sleep 0 & wait -n -p 'a[$(id)]'", "`wait` variable name");
        refuses("read \"$name\"", "`read` variable name");
    }

    #[test]
    fn refuses_keyword_mode_and_code_running_builtins() {
        refuses("set -k; git fetch GIT_SSH_COMMAND=id origin", "`set -k` is refused");
        refuses("set -o keyword", "`set -k`");
        refuses("set -ek", "`set -k`");
        refuses("set $opts", "built from an expansion");
        refuses("trap 'id' EXIT", "program `trap` is refused");
        refuses("alias ls=id", "program `alias` is refused");
        refuses("let 'x=a[$(id)]'", "program `let` is refused");
        refuses("export -f x; CDPATH=/ cd etc", "`CDPATH`");
    }
}
