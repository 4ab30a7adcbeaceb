//! What the shell may still change about a word before a tool sees it: expansions, globs and
//! bash's brace expansion (`{--to-command=x,}` becomes `--to-command=x`, which the parser,
//! following POSIX, keeps as literal text).

use super::describe;
use crate::tools::Arg;
use rdev_plugin_sdk::shell::{Word, WordPart};

/// Where bash would start a brace expansion in `source` (a word as written): an unquoted `{`
/// followed by an unquoted `,` or `..`.
pub(super) fn brace_expansion(source: &str) -> Option<usize> {
    let bytes = source.as_bytes();
    let (mut at, mut quote, mut brace) = (0, None, None);
    while at < bytes.len() {
        match (quote, bytes[at]) {
            (None | Some(b'"'), b'\\') => at += 1,
            (None, q @ (b'\'' | b'"')) => quote = Some(q),
            (Some(q), b) if b == q => quote = None,
            (None, b'$') if bytes.get(at + 1) == Some(&b'{') => {
                at += source[at..].find('}').unwrap_or(source.len() - at);
            }
            (None, b'{') => brace = brace.or(Some(at)),
            (None, b',') if brace.is_some() => return brace,
            (None, b'.') if brace.is_some() && bytes.get(at + 1) == Some(&b'.') => return brace,
            _ => {}
        }
        at += 1;
    }
    None
}

/// The [`Arg`] a tool will receive for `word`, written as `source`.
pub(super) fn arg(word: &Word, source: &str) -> Arg {
    let mut arg = Arg {
        text: None,
        depends_on: "",
        open: false,
        glob: false,
        head: String::new(),
        shown: source.to_string(),
    };
    let mut text = String::new();
    let mut first_expansion = None;
    for (index, part) in word.parts.iter().enumerate() {
        match part {
            WordPart::Literal(piece) | WordPart::Glob(piece) => {
                arg.glob |= matches!(part, WordPart::Glob(_));
                if arg.glob && index == 0 {
                    arg.open = true;
                }
                text.push_str(piece);
            }
            other => {
                first_expansion = first_expansion.or(Some((index, describe(other), text.len())));
            }
        }
    }
    let brace = brace_expansion(source);
    match (first_expansion, brace) {
        (None, None) => {
            arg.open |= arg.glob && opens_option(&text);
            arg.head = text.clone();
            arg.text = Some(text);
        }
        (Some((index, what, len)), _) => {
            arg.depends_on = what;
            arg.head = text[..len].to_string();
            let tilde = matches!(word.parts[index], WordPart::Tilde(_));
            arg.open = (!tilde && index == 0) || opens_option(&arg.head) || arg.glob && opens_option(&text);
        }
        (None, Some(at)) => {
            arg.depends_on = "a brace expansion";
            let before = &source[..at];
            let plain = !before.contains(['\'', '"', '\\']);
            arg.head = if plain { before.to_string() } else { String::new() };
            arg.open = !plain || before.is_empty() || opens_option(before);
        }
    }
    arg
}

/// Whether text that the shell may still extend starts like an option name (`-`, no `=` yet).
fn opens_option(head: &str) -> bool {
    head.starts_with('-') && !head.contains('=')
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdev_plugin_sdk::shell::{self, Element};

    fn first_arg(script: &str) -> Arg {
        let parsed = shell::parse(script).unwrap();
        let Element::Simple(command) = &parsed.pipelines[0].elements[0] else {
            panic!()
        };
        let word = &command.words[1];
        arg(word, &script[word.span.start as usize..word.span.end as usize])
    }

    #[test]
    fn finds_bash_brace_expansions_outside_quotes() {
        assert_eq!(brace_expansion("{--to-command=x,}"), Some(0));
        assert_eq!(brace_expansion("src/{a..c}"), Some(4));
        assert_eq!(brace_expansion("'{a,b}'"), None);
        assert_eq!(brace_expansion("{}"), None);
        assert_eq!(brace_expansion("${x:-a,b}"), None);
    }

    #[test]
    fn says_which_words_could_become_options() {
        assert!(first_arg("tar {--to-command=sh,x}").open);
        assert!(first_arg("tar *").open);
        assert!(first_arg("tar \"$x\"").open);
        assert!(first_arg("tar -$x").open);
        assert!(!first_arg("tar --file=$x").open);
        assert!(!first_arg("tar src/*.rs").open);
        assert!(!first_arg("tar ~/x").open);
        assert!(!first_arg("mkdir build/{a,b}").open);
        assert_eq!(first_arg("tar src/*.rs").as_text(), Some("src/*.rs"));
        assert_eq!(first_arg("tar a/$x").head, "a/");
    }
}
