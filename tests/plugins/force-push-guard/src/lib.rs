//! Helper sanitizer, a rollout candidate: denies force pushes (`git push --force` or `-f`, as a
//! `git` command or in a shell script) and allows everything else. Beside a serving version that
//! allows everything, its decision diff is exactly the force pushes, as allow→deny.

wit_bindgen::generate!({ path: "../../../wit", world: "command-sanitizer" });

struct Plugin;

fn forces(words: &[&str]) -> bool {
    words.first() == Some(&"push") && words.iter().any(|w| *w == "--force" || *w == "-f")
}

impl Guest for Plugin {
    fn configure(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn self_test() -> Vec<SanitizerCase> {
        Vec::new()
    }

    fn sanitize(command: Command, _context: CommandContext) -> Verdict {
        let denied = match (command.kind.as_str(), &command.args, &command.script) {
            ("git", Some(args), _) => forces(&args.iter().map(String::as_str).collect::<Vec<_>>()),
            ("shell", _, Some(script)) => script.split([';', '&', '|', '\n']).any(|part| {
                let words: Vec<&str> = part.split_whitespace().collect();
                words.first() == Some(&"git") && forces(&words[1..])
            }),
            _ => false,
        };
        match denied {
            true => Verdict::Deny("force pushes are not allowed".into()),
            false => Verdict::Allow,
        }
    }
}

export!(Plugin);
