//! Bash arithmetic that can run commands. Bash evaluates an array subscript, command
//! substitutions included, wherever it evaluates arithmetic: `$(( x[$(id)] ))`, `${a[...]}`,
//! `${a:off:len}`, `${!name}`, and — recursively — the *value* of a variable named in an
//! expression (`x='a[$(id)]'; echo $((x))`). So an expression may hold numbers, operators and
//! variables the script itself sets to numbers, nothing else. (dash has no arrays; the rule is
//! for bash.)

use super::Judge;
use rdev_plugin_sdk::shell::{Element, ScopeKind, Word, WordPart};
use std::collections::BTreeSet;

/// Builtins that set the variables named in their arguments to text.
const SETTERS: &[&str] = &["read", "printf", "wait", "export", "getopts"];

impl Judge<'_> {
    /// Refuses the first expression that could run a command.
    pub(super) fn arithmetic(&self) -> Result<(), String> {
        let numeric = self.numeric_names();
        let refuse = |shown: &str, why: String| {
            Err(format!(
                "arithmetic `{shown}` is refused ({why}; bash evaluates subscripts and variable values, commands included)"
            ))
        };
        for word in self.words() {
            for part in &word.parts {
                if let WordPart::Arithmetic(expression) = part
                    && let Err(why) = check_expression(expression, &numeric)
                {
                    return refuse(expression, why);
                }
            }
            if word.parts.iter().any(|p| matches!(p, WordPart::Parameter(_))) {
                scan_text(self.source(word), &numeric).or_else(|(shown, why)| refuse(&shown, why))?;
            }
        }
        for body in self.expanded_here_documents() {
            scan_text(body, &numeric).or_else(|(shown, why)| refuse(&shown, why))?;
        }
        Ok(())
    }

    /// Every word of the script: commands, assignments, redirections, `for` lists, `case`.
    fn words(&self) -> Vec<&Word> {
        let mut words: Vec<&Word> = self.script.scopes.iter().flat_map(|s| &s.words).collect();
        for element in self.script.pipelines.iter().flat_map(|p| &p.elements) {
            match element {
                Element::Simple(command) => {
                    words.extend(&command.words);
                    words.extend(command.assignments.iter().map(|a| &a.value));
                    words.extend(command.redirections.iter().map(|r| &r.target));
                }
                Element::Compound(compound) => words.extend(compound.redirections.iter().map(|r| &r.target)),
            }
        }
        words
    }

    /// Bodies of here-documents whose delimiter is unquoted (so that they expand).
    fn expanded_here_documents(&self) -> Vec<&str> {
        let redirections = self
            .script
            .pipelines
            .iter()
            .flat_map(|p| &p.elements)
            .flat_map(|e| match e {
                Element::Simple(command) => &command.redirections,
                Element::Compound(compound) => &compound.redirections,
            });
        redirections
            .filter(|r| !self.source(&r.target).contains(['\'', '"', '\\']))
            .filter_map(|r| r.here_document.as_deref())
            .collect()
    }

    /// Variables the script only ever sets to numbers (integer literals, arithmetic of such
    /// variables, `for` over integers or `$(seq ...)` of integers), and that the command's
    /// environment does not set.
    fn numeric_names(&self) -> BTreeSet<String> {
        let mut values: Vec<(&str, &Word)> = Vec::new();
        let mut unsafe_names: BTreeSet<String> = self.env_names.iter().cloned().collect();
        for element in self.script.pipelines.iter().flat_map(|p| &p.elements) {
            let Element::Simple(command) = element else { continue };
            values.extend(command.assignments.iter().map(|a| (a.name.as_str(), &a.value)));
            let program = command.words.first().and_then(Word::literal);
            if program.is_some_and(|p| SETTERS.contains(&p.as_str())) {
                let names = command.words[1..].iter().filter_map(Word::literal);
                unsafe_names.extend(names.map(|n| n.split('=').next().unwrap_or_default().to_string()));
            }
        }
        for scope in self.script.scopes.iter().filter(|s| s.kind == ScopeKind::LoopClause) {
            if let Some(name) = &scope.name
                && !scope.words.iter().all(|w| self.numeric_list_word(w))
            {
                unsafe_names.insert(name.clone());
            }
        }
        let mut numeric: BTreeSet<String> = values.iter().map(|(name, _)| name.to_string()).collect();
        numeric.extend(
            self.script
                .scopes
                .iter()
                .filter(|s| s.kind == ScopeKind::LoopClause)
                .filter_map(|s| s.name.clone()),
        );
        numeric.retain(|name| {
            !unsafe_names.contains(name)
                && !self.text.contains(&format!("{{{name}="))
                && !self.text.contains(&format!("{{{name}:="))
        });
        loop {
            let before = numeric.len();
            let snapshot = numeric.clone();
            numeric.retain(|name| {
                values
                    .iter()
                    .filter(|(n, _)| n == name)
                    .all(|(_, value)| numeric_value(value, &snapshot))
            });
            if numeric.len() == before {
                return numeric;
            }
        }
    }

    /// A `for` list word that expands to integers: a literal, or `$(seq N M)` of literals.
    fn numeric_list_word(&self, word: &Word) -> bool {
        match word.parts.as_slice() {
            [WordPart::Literal(text)] => is_integer(text),
            [WordPart::CommandSubstitution(scope)] => {
                let mut pipelines = self.script.pipelines.iter().filter(|p| p.scope == *scope);
                match (pipelines.next().map(|p| p.elements.as_slice()), pipelines.next()) {
                    (Some([Element::Simple(command)]), None) => {
                        let words: Vec<Option<String>> = command.words.iter().map(Word::literal).collect();
                        words.first().is_some_and(|w| w.as_deref() == Some("seq"))
                            && command.redirections.is_empty()
                            && words[1..].iter().all(|w| w.as_deref().is_some_and(is_integer))
                    }
                    _ => false,
                }
            }
            _ => false,
        }
    }
}

fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// An assigned value that is a number: an integer literal or a safe arithmetic expansion.
fn numeric_value(word: &Word, numeric: &BTreeSet<String>) -> bool {
    match word.parts.as_slice() {
        [WordPart::Literal(text)] => is_integer(text),
        [WordPart::Arithmetic(expression)] => check_expression(expression, numeric).is_ok(),
        _ => false,
    }
}

/// Refuses an expression holding anything but numbers, operators and numeric variables.
fn check_expression(expression: &str, numeric: &BTreeSet<String>) -> Result<(), String> {
    let bytes = expression.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        let b = bytes[at];
        if b == b'[' {
            return Err("it holds a subscript".into());
        } else if b == b'`' || (b == b'$' && bytes.get(at + 1) == Some(&b'(')) {
            return Err("it holds a command substitution".into());
        } else if b.is_ascii_digit() {
            at += expression[at..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '#' || c == '_'))
                .unwrap_or(expression.len() - at);
            continue;
        } else if b == b'$' {
            match bytes.get(at + 1) {
                Some(b'#' | b'?' | b'$' | b'!') => at += 2,
                Some(b'{') => {
                    let end = expression[at..].find('}').map_or(expression.len(), |e| at + e);
                    let name = &expression[at + 2..end];
                    numeric_name(name, numeric)?;
                    at = end + 1;
                }
                Some(c) if c.is_ascii_alphabetic() || *c == b'_' => at += 1,
                _ => return Err("it holds a positional or special parameter".into()),
            }
            continue;
        } else if b.is_ascii_alphabetic() || b == b'_' {
            let end = expression[at..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(expression.len(), |e| at + e);
            numeric_name(&expression[at..end], numeric)?;
            at = end;
            continue;
        }
        at += 1;
    }
    Ok(())
}

fn numeric_name(name: &str, numeric: &BTreeSet<String>) -> Result<(), String> {
    match numeric.contains(name) {
        true => Ok(()),
        false => Err(format!("variable `{name}` is not set to a number by the script")),
    }
}

/// `${...}` forms that evaluate arithmetic (subscripts, offsets), indirection, and `$((...))`,
/// in text as written (a word's source, a here-document body). Single-quoted text is skipped.
fn scan_text(text: &str, numeric: &BTreeSet<String>) -> Result<(), (String, String)> {
    let (mut single, mut double, mut escaped) = (false, false, false);
    for (at, c) in text.char_indices() {
        if std::mem::take(&mut escaped) {
            continue;
        }
        match c {
            '\\' if !single => escaped = true,
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '$' if !single => {
                let rest = &text[at + 1..];
                if let Some(inner) = rest.strip_prefix("((") {
                    let expression = inner.find("))").map_or(inner, |end| &inner[..end]);
                    check_expression(expression, numeric).map_err(|why| (expression.to_string(), why))?;
                } else if let Some(inner) = rest.strip_prefix('{') {
                    let body = inner.find('}').map_or(inner, |end| &inner[..end]);
                    braced(body, numeric).map_err(|why| (format!("${{{body}}}"), why))?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The inside of one `${...}`.
fn braced(body: &str, numeric: &BTreeSet<String>) -> Result<(), String> {
    if body.len() > 1 && body.starts_with('!') {
        return Err("it is an indirection".into());
    }
    let body = body.strip_prefix('#').filter(|b| !b.is_empty()).unwrap_or(body);
    let name_end = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    let rest = &body[name_end.max(1).min(body.len())..];
    if let Some(subscript) = rest.strip_prefix('[') {
        let subscript = subscript.split(']').next().unwrap_or_default();
        if subscript != "@" && subscript != "*" {
            check_expression(subscript, numeric)?;
        }
    } else if let Some(offsets) = rest.strip_prefix(':')
        && !offsets.starts_with(['-', '=', '?', '+'])
    {
        offsets
            .split(':')
            .try_for_each(|offset| check_expression(offset, numeric))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::tools::testing::{allows, refuses};

    #[test]
    fn allows_arithmetic_on_numbers_the_script_sets() {
        allows(&[
            "echo $((1 + 2 * 3))",
            "i=0; while test $i -lt 3; do i=$((i + 1)); done",
            "for n in 1 2 3; do echo $((n * 2)); done",
            "for n in $(seq 1 5); do echo $(( $n + $# )); done",
            "n=4; echo ${n} $((n))",
            "echo ${x:-default} ${#x} ${x%.rs} ${x:2}",
        ]);
    }

    #[test]
    fn refuses_arithmetic_that_can_run_commands() {
        refuses("echo $(( x[$(ls)] ))", "arithmetic `x[$(ls)]` is refused");
        refuses("n=1; echo $(( n[1] ))", "it holds a subscript");
        refuses("x='a[$(id)]'; echo $((x))", "variable `x` is not set to a number");
        refuses("read x; echo $((x + 1))", "variable `x`");
        refuses("echo $(( $(cat n) ))", "command substitution");
        refuses("set -- 'a[$(id)]'; echo $(($1))", "positional");
        refuses("echo ${y[x]}", "variable `x`");
        refuses("echo \"it's\" ${y:x}", "variable `x`");
        refuses("echo ${!x}", "indirection");
        refuses("for f in *; do echo $((f)); done", "variable `f`");
        refuses("cat <<EOF\n$((x))\nEOF", "variable `x`");
    }

    #[test]
    fn arithmetic_of_environment_variables_is_refused() {
        use rdev_plugin_sdk::{Command, CommandContext, Sanitizer, Verdict};
        let mut command = Command::shell("n=1; echo $((n))");
        command.env.push(rdev_plugin_sdk::EnvVar {
            name: "n".into(),
            value: "a[$(id)]".into(),
        });
        let context = CommandContext::new("demo", "/workspaces/demo");
        let verdict = crate::ShellSanitizer::sanitize(&crate::config::Config::default(), &command, &context);
        assert!(matches!(verdict, Verdict::Deny(reason) if reason.contains("variable `n`")));
    }
}
