//! `sed`: the script is read the way GNU sed reads it, so that its `e` command and the `e` flag
//! of `s` (both run shell commands) are refused, and its `w`/`W` commands, the `w` flag of `s`
//! and `-i` are confined to the workspace. A script from a file (`-f`) cannot be read here and
//! is refused; so is a script that does not parse, since sed might read it otherwise.

use super::{Arg, Call, Item, Spec};

const SED: Spec = Spec {
    short_values: "efl",
    short_optional: "i",
    long_values: &["expression", "file", "line-length"],
    long_optional: &["in-place"],
    long_flags: &[
        "quiet",
        "silent",
        "regexp-extended",
        "separate",
        "sandbox",
        "null-data",
        "zero-terminated",
        "unbuffered",
        "posix",
        "debug",
        "follow-symlinks",
        "binary",
        "help",
        "version",
    ],
    ..Spec::NONE
};

pub(super) fn check(call: &Call) -> Result<(), String> {
    let items = call.items(&SED)?;
    let mut scripts = Vec::new();
    let mut in_place = false;
    for item in &items {
        match item {
            Item::Opt { name, value } if name == "-e" || name == "--expression" => scripts.extend(value.as_ref()),
            Item::Opt { name, .. } if name == "-f" || name == "--file" => {
                return call.refuse("option `-f` reads its script from a file, which cannot be judged");
            }
            Item::Opt { name, value } if name == "-i" || name == "--in-place" => {
                in_place = true;
                if let Some(suffix) = value.as_ref().filter(|s| s.as_text().is_none_or(|s| s.contains('/'))) {
                    return call.refuse(format_args!(
                        "`-i` suffix `{}` could name another directory",
                        suffix.shown
                    ));
                }
            }
            _ => {}
        }
    }
    let mut operands = items.iter().filter_map(|item| match item {
        Item::Operand(arg) => Some(*arg),
        Item::Opt { .. } => None,
    });
    if scripts.is_empty() {
        scripts.extend(operands.next());
    }
    script(call, &scripts)?;
    if in_place {
        operands.try_for_each(|file| call.write_target(file, "option `-i`"))?;
    }
    Ok(())
}

/// Judges the script made of `parts` (sed joins `-e` scripts with newlines).
fn script(call: &Call, parts: &[&Arg]) -> Result<(), String> {
    let mut text = String::new();
    for part in parts {
        match part.as_text() {
            Some(piece) => text.extend([piece, "\n"]),
            None => return call.refuse(format_args!("script `{}` is built from an expansion", part.shown)),
        }
    }
    let mut reader = Reader { call, rest: &text };
    reader.commands().map_err(|error| match error {
        Stop::Refused(reason) => reason,
        Stop::Unreadable => format!("`sed` script `{}` cannot be read here and is refused", text.trim_end()),
    })
}

enum Stop {
    Refused(String),
    Unreadable,
}

/// A cursor over a sed script.
struct Reader<'a> {
    call: &'a Call<'a>,
    rest: &'a str,
}

impl Reader<'_> {
    fn next(&mut self) -> Option<char> {
        let c = self.rest.chars().next()?;
        self.rest = &self.rest[c.len_utf8()..];
        Some(c)
    }

    fn skip(&mut self, set: &[char]) {
        self.rest = self.rest.trim_start_matches(set);
    }

    /// Up to (not including) the first of `ends`; labels and numbers stop at the earliest place
    /// sed could end them, so that nothing after them goes unread.
    fn until(&mut self, ends: &[char]) -> &str {
        let at = self.rest.find(ends).unwrap_or(self.rest.len());
        let (taken, rest) = self.rest.split_at(at);
        self.rest = rest;
        taken
    }

    /// The text up to an unescaped `delimiter`, which is consumed (an escaped newline is part
    /// of it, as in a replacement).
    fn delimited(&mut self, delimiter: char) -> Result<(), Stop> {
        loop {
            match self.next() {
                Some('\\') => {
                    self.next().ok_or(Stop::Unreadable)?;
                }
                Some('\n') | None => return Err(Stop::Unreadable),
                Some(c) if c == delimiter => return Ok(()),
                Some(_) => {}
            }
        }
    }

    fn commands(&mut self) -> Result<(), Stop> {
        loop {
            self.skip(&[' ', '\t', '\n', ';']);
            if self.rest.is_empty() {
                return Ok(());
            }
            self.address()?;
            self.skip(&[' ', '\t', '!']);
            let command = self.next().ok_or(Stop::Unreadable)?;
            self.command(command)?;
        }
    }

    /// An optional address or range: `3`, `$`, `/re/I`, `\%re%`, `first~step`, `a,+N`.
    fn address(&mut self) -> Result<(), Stop> {
        for _ in 0..2 {
            match self.rest.chars().next() {
                Some('/') => {
                    self.next();
                    self.delimited('/')?;
                }
                Some('\\') => {
                    self.next();
                    let delimiter = self.next().ok_or(Stop::Unreadable)?;
                    self.delimited(delimiter)?;
                }
                Some(c) if c.is_ascii_digit() || matches!(c, '$' | '+' | '~') => {
                    self.skip(&['$', '+', '~', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
                }
                _ => return Ok(()),
            }
            self.skip(&['I', 'M', ' ']);
            if !self.rest.starts_with(',') {
                return Ok(());
            }
            self.next();
            self.skip(&[' ']);
        }
        Ok(())
    }

    fn command(&mut self, command: char) -> Result<(), Stop> {
        match command {
            '{' | '}' | '=' | 'd' | 'D' | 'g' | 'G' | 'h' | 'H' | 'n' | 'N' | 'p' | 'P' | 'x' | 'z' | 'F' => Ok(()),
            ':' | 'b' | 't' | 'T' | 'q' | 'Q' | 'l' | 'L' | 'v' => {
                self.until(&[';', '\n', ' ', '\t', '}']);
                Ok(())
            }
            '#' | 'a' | 'i' | 'c' | 'r' | 'R' => {
                self.line();
                Ok(())
            }
            'w' | 'W' => self.write(&format!("command `{command}`")),
            'e' => {
                self.refused("command `e` runs a shell command")?;
                self.line();
                Ok(())
            }
            's' => self.substitute(),
            'y' => {
                let delimiter = self.next().ok_or(Stop::Unreadable)?;
                self.delimited(delimiter)?;
                self.delimited(delimiter)
            }
            _ => Err(Stop::Unreadable),
        }
    }

    /// Skips the rest of the line, with backslash-newline continuing it (text of `a`, `i`, `c`).
    fn line(&mut self) {
        let mut end = 0;
        let bytes = self.rest.as_bytes();
        while end < bytes.len() && bytes[end] != b'\n' {
            end += if bytes[end] == b'\\' { 2 } else { 1 };
        }
        self.rest = &self.rest[end.min(self.rest.len())..];
    }

    /// `s/re/replacement/flags`: `e` runs the result as a command, `w FILE` writes.
    fn substitute(&mut self) -> Result<(), Stop> {
        let delimiter = self
            .next()
            .filter(|c| *c != '\n' && *c != '\\')
            .ok_or(Stop::Unreadable)?;
        self.delimited(delimiter)?;
        self.delimited(delimiter)?;
        loop {
            match self.rest.chars().next() {
                Some('e') => {
                    self.refused("flag `e` of `s` runs the result as a shell command")?;
                    self.next();
                }
                Some('w') => {
                    self.next();
                    return self.write("flag `w` of `s`");
                }
                Some(c) if c.is_ascii_digit() || "gpiImM".contains(c) => {
                    self.next();
                }
                _ => return Ok(()),
            }
        }
    }

    /// The file name of `w` (to the end of the line) must stay in the workspace.
    fn write(&mut self, what: &str) -> Result<(), Stop> {
        self.skip(&[' ', '\t']);
        let file = Arg::literal(self.until(&['\n']));
        self.call.write_target(&file, what).map_err(Stop::Refused)
    }

    /// Refuses a form that runs a command, unless that check is off.
    fn refused(&self, what: &str) -> Result<(), Stop> {
        match self.call.checks.indirect_execution {
            true => Err(Stop::Refused(format!("`sed` {what}"))),
            false => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::tools::testing::{allows, refuses};

    #[test]
    fn allows_ordinary_edits_and_prints() {
        allows(&[
            "sed -n 1,10p file",
            "sed -i 's/a/b/' src/x.rs",
            "sed -i.bak -e 's/a/b/g' -e '/^#/d' src/x.rs",
            "sed -E 's/([a-z]+)/\\1/2;y/abc/xyz/' a",
            "sed -n '/start/,/end/{p;q}' a",
            "sed '1a\\\nnew line' a",
            "sed '$a echo e w' a",
            "sed -n '/x/w out.txt' a",
            "sed 's/x/y/w /dev/stdout' a",
            "sed 's|/usr|/opt|g' /etc/hosts",
            "find . -name '*.rs' -exec sed -i 's/a/b/' {} +",
        ]);
    }

    #[test]
    fn refuses_commands_that_run_programs() {
        refuses("sed 1e id a", "`sed` command `e` runs a shell command");
        refuses(
            "sed -n 's/.*/id/ep' a",
            "`sed` flag `e` of `s` runs the result as a shell command",
        );
        refuses("sed --expression='p;e id' a", "command `e`");
        refuses("sed -e 's/x/\\' -e '/e' a", "flag `e`");
        refuses("sed -e '/x/!{e id' -e '}' a", "command `e`");
        refuses("sed -f script.sed a", "`sed` option `-f` reads its script from a file");
        refuses("sed \"$script\" a", "built from an expansion");
        refuses("find . -exec sed -n 1e {} +", "`find -exec`: `sed` command `e`");
    }

    #[test]
    fn confines_what_sed_writes() {
        refuses(
            "sed -n 'w /tmp/x' a",
            "`sed` command `w` writing to `/tmp/x` is refused",
        );
        refuses("sed 's/a/b/gw /root/x' a", "flag `w` of `s` writing to `/root/x`");
        refuses(
            "sed -i 's/a/b/' /etc/hosts",
            "`sed` option `-i` writing to `/etc/hosts`",
        );
        refuses("sed --in-place=.b 's/a/b/' ../x", "option `-i` writing to `../x`");
        refuses("sed -ni p /etc/x", "option `-i`");
        refuses("sed -i'/tmp/*' 's/a/b/' a", "`-i` suffix");
        refuses("sed -n 'p;Q;W /etc/x' a", "command `W`");
    }
}
