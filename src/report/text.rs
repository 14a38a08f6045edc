//! Text hygiene shared by the markup reporters (JUnit XML, HTML): any text that may come from a
//! target is made representable before it reaches a document, so no byte a server sends can
//! break a report or smuggle markup into it.

use std::borrow::Cow;

/// Whether `c` is shown as it is in a report.
///
/// XML 1.0 allows tab, newline, carriage return, `U+0020..=U+D7FF`, `U+E000..=U+FFFD` and the
/// supplementary planes. DEL and the C1 controls are allowed by XML but are terminal escapes in a
/// CI log and parse errors in HTML, and the bidirectional formatting characters would let a
/// target reorder what a reader sees (`\u{202e}gnp.exe` displays as `exe.png`), so those are
/// escaped too.
fn is_shown_as_is(c: char) -> bool {
    match c {
        '\t' | '\n' | '\r' => true,
        '\u{FFFE}' | '\u{FFFF}' => false,
        '\u{061C}'
        | '\u{200E}'
        | '\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}' => false,
        c => !c.is_control(),
    }
}

/// Replaces every character XML 1.0 or HTML cannot carry, and every bidirectional override, with
/// a visible escape such as `\x1b` or `\u{202e}`, so the evidence still shows what the target sent.
pub fn printable(text: &str) -> Cow<'_, str> {
    if text.chars().all(is_shown_as_is) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_shown_as_is(c) {
            out.push(c);
        } else if (c as u32) <= 0xFF {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// [`printable`] text escaped for HTML element content and double- or single-quoted attributes.
pub fn html_escape(text: &str) -> String {
    let text = printable(text);
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Cuts `text` to at most `max` bytes on a character boundary, marking the cut with `...`.
pub fn truncate(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}...", &text[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_what_xml_forbids_and_keeps_the_rest() {
        assert_eq!(printable("plain ü 🦀\t\r\n"), "plain ü 🦀\t\r\n");
        assert!(matches!(printable("plain"), Cow::Borrowed(_)));
        assert_eq!(
            printable("a\u{0}b\u{1b}[31m\u{7f}\u{85}\u{fffe}\u{ffff}"),
            "a\\x00b\\x1b[31m\\x7f\\x85\\u{fffe}\\u{ffff}"
        );
        assert_eq!(
            printable("\u{202e}gnp.exe\u{2066}"),
            "\\u{202e}gnp.exe\\u{2066}"
        );
    }

    #[test]
    fn html_escape_neutralises_markup_and_quotes() {
        assert_eq!(
            html_escape("<script>alert('x&y')</script>\"\u{8}"),
            "&lt;script&gt;alert(&#39;x&amp;y&#39;)&lt;/script&gt;&quot;\\x08"
        );
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("aüü", 2), "a...");
        assert_eq!(truncate("abcdef", 3), "abc...");
    }
}
