//! The words of a `Bash` command that could name files, from the parsed script.

use rdev_plugin_sdk::shell::{self, Script, Word, WordPart};

/// The text of every word, redirection target and assignment value of `command`, its
/// expansions left as written (`$HOME/.env` is `$HOME/.env`). A script that does not parse
/// is refused: what cannot be read cannot be judged.
pub fn words(command: &str) -> Result<Vec<String>, String> {
    let script = shell::parse(command).map_err(|e| format!("the command cannot be parsed: {e}"))?;
    Ok(all_words(&script).map(text).collect())
}

fn all_words(script: &Script) -> impl Iterator<Item = &Word> {
    let scope_words = script.scopes.iter().flat_map(|s| &s.words);
    let command_words = script
        .pipelines
        .iter()
        .flat_map(|p| &p.elements)
        .flat_map(|element| match element {
            shell::Element::Simple(simple) => {
                let assigned = simple.assignments.iter().map(|a| &a.value);
                let redirected = simple.redirections.iter().map(|r| &r.target);
                simple
                    .words
                    .iter()
                    .chain(assigned)
                    .chain(redirected)
                    .collect::<Vec<_>>()
            }
            shell::Element::Compound(compound) => compound.redirections.iter().map(|r| &r.target).collect(),
        });
    scope_words.chain(command_words)
}

fn text(word: &Word) -> String {
    word.parts
        .iter()
        .map(|part| match part {
            WordPart::Literal(s) | WordPart::Glob(s) => s.clone(),
            WordPart::Tilde(user) => format!("~{user}"),
            WordPart::Parameter(name) => format!("${name}"),
            WordPart::Arithmetic(_) | WordPart::CommandSubstitution(_) | WordPart::ProcessSubstitution(_) => {
                String::new()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_of_every_command_and_redirection_are_seen_in_substitutions_too() {
        let got = words("FOO=.env cat a > 'b c' && echo $(cat ~/.ssh/id_rsa)").unwrap();
        for want in [".env", "cat", "a", "b c", "echo", "~/.ssh/id_rsa"] {
            assert!(got.iter().any(|w| w == want), "{want} not in {got:?}");
        }
    }

    #[test]
    fn a_script_that_does_not_parse_is_refused() {
        assert!(words("echo \"unterminated").unwrap_err().contains("cannot be parsed"));
    }
}
