//! Reads a tool's arguments the way `getopt_long` does: bundled short options, values attached
//! or separate, long options by any unambiguous abbreviation (`--to-comm` is `--to-command`),
//! options after operands, and `--` ending them.

use super::{Arg, Call};

/// What a tool's options look like; only options that take a value, or that share a prefix
/// with one, need listing.
pub struct Spec {
    /// Short options that take a value (`-o FILE`, `-oFILE`).
    pub short_values: &'static str,
    /// Short options whose value, if any, is attached (`sed -i.bak`).
    pub short_optional: &'static str,
    /// Long options that take a value (`--output FILE`, `--output=FILE`).
    pub long_values: &'static [&'static str],
    /// Long options whose value, if any, follows `=` (`--in-place=.bak`).
    pub long_optional: &'static [&'static str],
    /// Long options without a value, listed so that abbreviations resolve as the tool does.
    pub long_flags: &'static [&'static str],
    /// Whether the first operand ends the options (`python3 script.py -c` passes `-c` on).
    pub stop_at_operand: bool,
    /// Short options whose value ends the options too: what follows is for the code they name
    /// (`python3 -m pytest -c pytest.ini` passes `-c` on to pytest).
    pub ending_values: &'static str,
    /// Whether a glob is harmless even if it expands to options (every option of the tool is,
    /// and every file a relative glob matches is in the workspace).
    pub harmless_options: bool,
}

impl Spec {
    /// A tool with no option that takes a value.
    pub const NONE: Spec = Spec {
        short_values: "",
        short_optional: "",
        long_values: &[],
        long_optional: &[],
        long_flags: &[],
        stop_at_operand: false,
        ending_values: "",
        harmless_options: false,
    };
}

/// An option or an operand.
#[derive(Debug)]
pub enum Item<'a> {
    /// An option, named `-o` or `--output` (an abbreviation resolved), and its value.
    Opt { name: String, value: Option<Arg> },
    /// An operand (a file, a script, a subcommand...).
    Operand(&'a Arg),
}

impl Item<'_> {
    /// The name and value of an option given a value; `None` for operands and bare options.
    pub fn valued(&self) -> Option<(&str, &Arg)> {
        match self {
            Item::Opt {
                name,
                value: Some(value),
            } => Some((name, value)),
            _ => None,
        }
    }

    /// Whether this is the option `name` (`-o`, `--output`).
    pub fn is(&self, name: &str) -> bool {
        matches!(self, Item::Opt { name: n, .. } if n == name)
    }

    /// Whether this is one of the options `names`.
    pub fn is_any(&self, names: &[&str]) -> bool {
        names.iter().any(|name| self.is(name))
    }
}

/// The value text after an option inside one argument, as an [`Arg`] of its own.
pub(super) fn attached(arg: &Arg, head: &str, at: usize) -> Arg {
    Arg {
        text: arg.as_text().map(|text| text[at..].to_string()),
        depends_on: arg.depends_on,
        open: false,
        glob: arg.glob,
        head: head.get(at..).unwrap_or_default().to_string(),
        shown: arg.shown.clone(),
    }
}

/// Resolves a long option name (without `--`) the way `getopt_long` does.
fn resolve(spec: &Spec, name: &str) -> String {
    let all = || spec.long_values.iter().chain(spec.long_optional).chain(spec.long_flags);
    if all().any(|long| *long == name) {
        return format!("--{name}");
    }
    let candidates: Vec<&&str> = all().filter(|long| long.starts_with(name)).collect();
    match candidates.as_slice() {
        [only] if !name.is_empty() => format!("--{only}"),
        _ => format!("--{name}"),
    }
}

/// Reads `args` under `spec`; an argument whose start the shell decides is refused before
/// `--`, since it could become any option.
pub fn scan<'a>(call: &Call, spec: &Spec, args: &'a [Arg]) -> Result<Vec<Item<'a>>, String> {
    let mut items = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if !(spec.harmless_options && arg.text.is_some()) {
            call.closed(arg)?;
        }
        let head = arg.as_text().unwrap_or(&arg.head);
        if head == "--" {
            items.extend(rest.by_ref().map(Item::Operand));
        } else if let Some(long) = head.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((name, _)) => (resolve(spec, name), Some(attached(arg, head, name.len() + 3))),
                None => (resolve(spec, long), None),
            };
            let takes_value = spec.long_values.iter().any(|v| name[2..] == **v);
            let value = match value {
                None if takes_value => rest.next().cloned(),
                value => value,
            };
            items.push(Item::Opt { name, value });
        } else if head.len() > 1 && head.starts_with('-') {
            short_bundle(spec, arg, head, &mut rest, &mut items);
            if items.last().is_some_and(|item| ends_options(spec, item)) {
                items.extend(rest.by_ref().map(Item::Operand));
            }
        } else {
            items.push(Item::Operand(arg));
            if spec.stop_at_operand {
                items.extend(rest.by_ref().map(Item::Operand));
            }
        }
    }
    Ok(items)
}

/// Whether `item` is one of `spec`'s `ending_values` given its value.
fn ends_options(spec: &Spec, item: &Item) -> bool {
    let letter = item.valued().and_then(|(name, _)| name.strip_prefix('-'));
    letter.is_some_and(|letter| !letter.is_empty() && spec.ending_values.contains(letter))
}

/// `-abc`, `-ofile`, `-o file`.
fn short_bundle<'a>(
    spec: &Spec,
    arg: &Arg,
    head: &str,
    rest: &mut std::slice::Iter<'a, Arg>,
    items: &mut Vec<Item<'a>>,
) {
    for (at, letter) in head.char_indices().skip(1) {
        let name = format!("-{letter}");
        let after = at + letter.len_utf8();
        if spec.short_values.contains(letter) {
            let value = match after < head.len() || arg.as_text().is_none() {
                true => Some(attached(arg, head, after)),
                false => rest.next().cloned(),
            };
            items.push(Item::Opt { name, value });
            return;
        }
        if spec.short_optional.contains(letter) {
            let value = (after < head.len() || arg.as_text().is_none()).then(|| attached(arg, head, after));
            items.push(Item::Opt { name, value });
            return;
        }
        items.push(Item::Opt { name, value: None });
    }
}
