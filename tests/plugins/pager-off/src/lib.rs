//! Helper sanitizer that rewrites: a `git` command runs as `git --no-pager …`; one that already
//! does, and every other kind, is allowed. Explain shows the rewritten form.

wit_bindgen::generate!({ path: "../../../wit", world: "command-sanitizer" });

struct Plugin;

impl Guest for Plugin {
    fn configure(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn self_test() -> Vec<SanitizerCase> {
        Vec::new()
    }

    fn sanitize(command: Command, _context: CommandContext) -> Verdict {
        match (&command.kind[..], &command.args) {
            ("git", Some(args)) if args.first().map(String::as_str) != Some("--no-pager") => {
                let mut args = args.clone();
                args.insert(0, "--no-pager".into());
                Verdict::Rewrite(Command {
                    args: Some(args),
                    ..command
                })
            }
            _ => Verdict::Allow,
        }
    }
}

export!(Plugin);
