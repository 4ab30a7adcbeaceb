//! Text hygiene before anything is judged: control and invisible format characters are refused
//! (they hide what a command really says), and text is NFKC-normalised so that look-alikes such as
//! fullwidth `ｒｍ` are judged as what they resemble.

use unicode_normalization::UnicodeNormalization;

/// Format characters (general category Cf): zero-width characters, bidirectional controls, soft
/// hyphen, tags and the like, as ranges of code points.
const FORMAT: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

fn is_format(c: char) -> bool {
    let code = u32::from(c);
    FORMAT.iter().any(|&(low, high)| (low..=high).contains(&code))
}

/// Refuses control characters other than newline and tab, and format characters, in `text`
/// (described as `what` in the reason).
pub fn check_characters(what: &str, text: &str) -> Result<(), String> {
    match text
        .chars()
        .find(|&c| (c.is_control() && c != '\n' && c != '\t') || is_format(c))
    {
        Some(c) => Err(format!(
            "{what} contains the invisible or control character U+{:04X}",
            u32::from(c)
        )),
        None => Ok(()),
    }
}

/// The NFKC normal form of `text`.
pub fn normalize(text: &str) -> String {
    if text.is_ascii() {
        text.to_string()
    } else {
        text.nfkc().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_zero_width_and_bidi_characters() {
        assert!(check_characters("the script", "ls\u{200B}").is_err());
        let error = check_characters("the script", "echo \u{202E}txt.exe").unwrap_err();
        assert_eq!(error, "the script contains the invisible or control character U+202E");
    }

    #[test]
    fn refuses_control_characters_but_newline_and_tab() {
        assert!(check_characters("x", "a\u{1B}[2J").is_err());
        assert!(check_characters("x", "a\rb").is_err());
        assert!(check_characters("x", "a\n\tb").is_ok());
    }

    #[test]
    fn normalizes_fullwidth_look_alikes() {
        assert_eq!(normalize("ｒｍ －ｒｆ ／"), "rm -rf /");
        assert_eq!(normalize("café"), "café");
    }
}
