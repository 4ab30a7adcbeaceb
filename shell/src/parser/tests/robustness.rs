//! No input makes the parser panic, overflow its stack or take quadratic time.

use super::{err, ok};
use crate::parse;

/// A deterministic xorshift generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Fragments that exercise every construct, to be glued together at random.
const FRAGMENTS: &[&str] = &[
    " ",
    "\n",
    "\t",
    ";",
    ";;",
    "&",
    "&&",
    "|",
    "||",
    "|&",
    "(",
    ")",
    "{",
    "}",
    "<",
    ">",
    ">>",
    "<<",
    "<<-",
    "<<<",
    "2>&1",
    "&>",
    "<(",
    ">(",
    "$(",
    "$((",
    "))",
    "${",
    "${x:-",
    "}",
    "`",
    "'",
    "\"",
    "$'",
    "\\",
    "\\\n",
    "#",
    "$",
    "$x",
    "$1",
    "*",
    "?",
    "[",
    "]",
    "[[",
    "]]",
    "~",
    "=",
    "x=",
    "a[1]=",
    "if",
    "then",
    "elif",
    "else",
    "fi",
    "for",
    "in",
    "do",
    "done",
    "while",
    "until",
    "case",
    "esac",
    "function",
    "f()",
    "!",
    "EOF",
    "\nEOF\n",
    "ls",
    "rm -rf /",
    "é",
    "\u{1F600}",
    "\r",
    "=~",
    "{fd}",
    "0",
    "99999999999",
];

#[test]
fn never_panics_on_random_fragments() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let mut script = String::new();
        for _ in 0..rng.below(24) {
            script.push_str(FRAGMENTS[rng.below(FRAGMENTS.len())]);
        }
        check(&script);
    }
}

#[test]
fn never_panics_on_random_bytes() {
    let mut rng = Rng(42);
    let alphabet = b" \t\n;&|()<>{}[]'\"`$\\#*?~=!-0123456789abcxyzEOF";
    for _ in 0..20_000 {
        let bytes: Vec<u8> = (0..rng.below(40))
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect();
        check(&String::from_utf8_lossy(&bytes));
    }
}

/// Parses `script`; if it parses, every span and index must be in range.
fn check(script: &str) {
    let Ok(parsed) = parse(script).map_err(|e| {
        assert!(
            e.span.start <= e.span.end && e.span.end as usize <= script.len(),
            "{script:?}: {e}"
        )
    }) else {
        return;
    };
    let scopes = parsed.scopes.len() as u32;
    assert!(
        parsed
            .pipelines
            .iter()
            .all(|p| p.scope < scopes && p.span.end as usize <= script.len()),
        "{script:?}"
    );
    assert!(
        parsed
            .scopes
            .iter()
            .enumerate()
            .skip(1)
            .all(|(i, s)| s.parent.is_some_and(|p| (p as usize) < i)),
        "{script:?}"
    );
    assert!(
        parsed.pipelines.windows(2).all(|w| w[0].span.start <= w[1].span.start),
        "{script:?}"
    );
}

#[test]
fn rejects_nesting_beyond_the_limit_without_overflowing() {
    for (open, close) in [
        ("( ", " )"),
        ("$(", ")"),
        ("{ ", "; }"),
        ("${x:-", "}"),
        ("$(( ", " ))"),
        ("\"$(", ")\""),
    ] {
        let nested = |depth: usize| format!("{}a{}", open.repeat(depth), close.repeat(depth));
        let shallow = nested(60);
        let shallow = if open.starts_with("$((") {
            shallow.replace('a', "1")
        } else {
            shallow
        };
        let shallow = if open.starts_with('(') || open.starts_with('{') {
            shallow
        } else {
            format!("echo {shallow}")
        };
        ok(&shallow);
        let deep = if open.starts_with('(') || open.starts_with('{') {
            nested(100_000)
        } else {
            format!("echo {}", nested(100_000))
        };
        assert!(err(&deep).message.contains("nesting deeper"), "{open}");
    }
    assert_eq!(ok(&format!("echo {}", "``".repeat(100))).scopes.len(), 101);
}

#[test]
fn handles_long_scripts_in_linear_time() {
    let script = "echo \"a $b\" 'c' > /dev/null && ls *.rs | wc -l\n".repeat(20_000);
    let parsed = ok(&script);
    assert_eq!(parsed.pipelines.len(), 40_000);
    let long_word = "a".repeat(1_000_000);
    ok(&long_word);
    let many_heredocs = "cat <<EOF\nx\nEOF\n".repeat(10_000);
    assert_eq!(ok(&many_heredocs).pipelines.len(), 10_000);
}

#[test]
fn survives_the_deepest_allowed_nesting_of_the_heaviest_constructs() {
    let depth = crate::parser::MAX_DEPTH - 1;
    let quoted = format!("{}a{}", "echo \"$(".repeat(depth), ")\"".repeat(depth));
    assert_eq!(ok(&quoted).scopes.len(), depth + 1);
    let levels = depth / 3;
    let mixed = format!("{}a{}", "f() { x=$(".repeat(levels), "); }".repeat(levels));
    assert_eq!(ok(&mixed).scopes.len(), 3 * levels + 1);
}
