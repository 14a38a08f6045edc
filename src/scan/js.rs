//! Just enough of JavaScript's expression syntax to read a URL argument without running it:
//! string and template literals (with escapes and `${...}`), `+` concatenation, parentheses,
//! and member chains such as `window.location.host`. Anything else becomes an opaque part, so
//! the caller knows which pieces are literal and which are computed at run time.
//!
//! Everything is bounded (bytes, terms, nesting) and works on any text: a page or a minified
//! bundle is never trusted to be valid JavaScript.

/// Bytes of source one expression may span; longer arguments are cut there.
const MAX_EXPR_BYTES: usize = 4096;
/// `+`-joined terms read per expression.
const MAX_TERMS: usize = 16;
/// Nesting of templates and parentheses followed; deeper ones are opaque.
const MAX_DEPTH: usize = 4;
/// Characters of an opaque expression kept for display.
const OPAQUE_CHARS: usize = 40;

/// A property of the page's `location`, known to the scanner because it fetched the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocationField {
    /// `location.host`: host and non-default port.
    Host,
    /// `location.hostname`.
    Hostname,
    /// `location.port` (empty for the default port).
    Port,
    /// `location.origin`.
    Origin,
    /// `location.protocol` (`https:`).
    Protocol,
}

impl LocationField {
    fn from_chain(chain: &str) -> Option<Self> {
        let mut rest = chain;
        for prefix in ["window.", "self.", "globalThis.", "document."] {
            if let Some(r) = rest.strip_prefix(prefix) {
                rest = r;
            }
        }
        match rest {
            "location.host" => Some(Self::Host),
            "location.hostname" => Some(Self::Hostname),
            "location.port" => Some(Self::Port),
            "location.origin" => Some(Self::Origin),
            "location.protocol" => Some(Self::Protocol),
            _ => None,
        }
    }

    /// The JavaScript spelling, for showing the reference as written.
    pub fn name(self) -> &'static str {
        match self {
            Self::Host => "location.host",
            Self::Hostname => "location.hostname",
            Self::Port => "location.port",
            Self::Origin => "location.origin",
            Self::Protocol => "location.protocol",
        }
    }

    /// The value for a page at `url`, as a browser computes it.
    pub fn value(self, url: &url::Url) -> String {
        let hostname = url.host_str().unwrap_or_default().to_string();
        let port = url.port().map(|p| p.to_string()).unwrap_or_default();
        match self {
            Self::Host if port.is_empty() => hostname,
            Self::Host => format!("{hostname}:{port}"),
            Self::Hostname => hostname,
            Self::Port => port,
            Self::Origin => url.origin().ascii_serialization(),
            Self::Protocol => format!("{}:", url.scheme()),
        }
    }
}

/// One piece of an evaluated expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Literal text (escapes decoded).
    Lit(String),
    /// A `location` property of the page.
    Location(LocationField),
    /// A choice between the plaintext and TLS scheme made at run time, the usual
    /// `location.protocol === "https:" ? "wss:" : "ws:"`; holds the two literals as written.
    SchemeSwitch {
        /// The TLS branch (`wss:`, `wss://` or `wss`).
        tls: String,
        /// The plaintext branch.
        plain: String,
    },
    /// Anything else: a variable, a call, an operator the scanner does not evaluate.
    Opaque(String),
}

/// An expression read from source: its parts and the byte offset just past it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    /// The `+`-joined parts, in order.
    pub parts: Vec<Part>,
    /// Where the expression ended.
    pub end: usize,
}

/// Reads the `+`-joined expression starting at `start` (whitespace first is skipped).
pub fn parse_expr(text: &str, start: usize) -> Expr {
    let limit = start.saturating_add(MAX_EXPR_BYTES).min(text.len());
    parse_concat(text, start, limit, 0)
}

fn parse_concat(text: &str, start: usize, limit: usize, depth: usize) -> Expr {
    let bytes = text.as_bytes();
    let mut parts = Vec::new();
    let mut pos = start;
    for _ in 0..MAX_TERMS {
        let at = skip_ws(bytes, pos, limit);
        let Some(next) = parse_term(text, at, limit, depth, &mut parts) else {
            break;
        };
        pos = next;
        let after = skip_ws(bytes, pos, limit);
        let plus = after < limit
            && bytes[after] == b'+'
            && !matches!(bytes.get(after + 1), Some(b'+' | b'='));
        if !plus {
            break;
        }
        pos = after + 1;
    }
    Expr { parts, end: pos }
}

/// Skips whitespace and comments.
pub fn skip_ws(bytes: &[u8], mut pos: usize, limit: usize) -> usize {
    while pos < limit {
        match bytes[pos] {
            b' ' | b'\t' | b'\r' | b'\n' => pos += 1,
            b'/' if bytes.get(pos + 1) == Some(&b'*') => {
                pos = find(bytes, b"*/", pos + 2, limit).map_or(limit, |e| e + 2);
            }
            b'/' if bytes.get(pos + 1) == Some(&b'/') => {
                pos = find(bytes, b"\n", pos + 2, limit).map_or(limit, |e| e + 1);
            }
            _ => break,
        }
    }
    pos.min(limit)
}

fn find(bytes: &[u8], needle: &[u8], from: usize, limit: usize) -> Option<usize> {
    let hay = bytes.get(from..limit)?;
    hay.windows(needle.len())
        .position(|w| w == needle)
        .map(|i| from + i)
}

/// Reads one term at `pos`, appending its parts; `None` when no term starts there.
fn parse_term(
    text: &str,
    pos: usize,
    limit: usize,
    depth: usize,
    parts: &mut Vec<Part>,
) -> Option<usize> {
    let bytes = text.as_bytes();
    let first = *bytes.get(pos).filter(|_| pos < limit)?;
    match first {
        b'"' | b'\'' => {
            let (lit, end) = quoted(text, pos, limit)?;
            parts.push(Part::Lit(lit));
            Some(end)
        }
        b'`' => template(text, pos, limit, depth, parts),
        b'(' => {
            let end = skip_balanced(bytes, pos, limit)?;
            parts.push(grouped(text, pos + 1, end - 1, depth));
            Some(end)
        }
        c if c == b'_' || c == b'$' || c.is_ascii_alphabetic() => {
            let (chain, mut end) = member_chain(bytes, pos, limit);
            let chain_text = &text[pos..end];
            let after = skip_ws(bytes, end, limit);
            if after < limit && matches!(bytes[after], b'(' | b'[') {
                end = skip_balanced(bytes, after, limit)?;
                parts.push(Part::Opaque(opaque(&text[pos..end])));
                return Some(end);
            }
            parts.push(
                LocationField::from_chain(&chain)
                    .map_or_else(|| Part::Opaque(opaque(chain_text)), Part::Location),
            );
            Some(end)
        }
        _ => None,
    }
}

/// An identifier with `.name` / `?.name` members; returns it without spaces and its end.
fn member_chain(bytes: &[u8], start: usize, limit: usize) -> (String, usize) {
    let ident_end = |mut p: usize| {
        while p < limit
            && (bytes[p] == b'_' || bytes[p] == b'$' || bytes[p].is_ascii_alphanumeric())
        {
            p += 1;
        }
        p
    };
    let mut end = ident_end(start);
    let mut chain = String::from_utf8_lossy(&bytes[start..end]).into_owned();
    loop {
        let mut p = skip_ws(bytes, end, limit);
        if bytes.get(p) == Some(&b'?') && bytes.get(p + 1) == Some(&b'.') {
            p += 1;
        }
        if p >= limit || bytes[p] != b'.' {
            break;
        }
        let name_start = skip_ws(bytes, p + 1, limit);
        let name_end = ident_end(name_start);
        if name_end == name_start || bytes.get(name_start).is_some_and(|b| b.is_ascii_digit()) {
            break;
        }
        chain.push('.');
        chain.push_str(&String::from_utf8_lossy(&bytes[name_start..name_end]));
        end = name_end;
    }
    (chain, end)
}

/// The part a parenthesised group (or `${...}` body) between `start` and `end` stands for.
fn grouped(text: &str, start: usize, end: usize, depth: usize) -> Part {
    let inner = text.get(start..end).unwrap_or_default();
    if let Some(switch) = scheme_switch(inner) {
        return switch;
    }
    if depth < MAX_DEPTH {
        let expr = parse_concat(text, start, end, depth + 1);
        let rest = skip_ws(text.as_bytes(), expr.end, end);
        if rest == end
            && expr.parts.len() == 1
            && let Some(part) = expr.parts.into_iter().next()
        {
            return part;
        }
    }
    Part::Opaque(opaque(inner))
}

/// Recognises a conditional choosing between a `wss` and a `ws` literal.
fn scheme_switch(inner: &str) -> Option<Part> {
    if !inner.contains('?') || !inner.contains(':') {
        return None;
    }
    let mut tls = None;
    let mut plain = None;
    let bytes = inner.as_bytes();
    let mut pos = 0;
    while pos < bytes.len() {
        if matches!(bytes[pos], b'"' | b'\'' | b'`') {
            match quoted_any(inner, pos, bytes.len()) {
                Some((lit, end)) => {
                    let lower = lit.to_ascii_lowercase();
                    match lower.as_str() {
                        "wss" | "wss:" | "wss://" => tls = Some(lit),
                        "ws" | "ws:" | "ws://" => plain = Some(lit),
                        _ => {}
                    }
                    pos = end;
                    continue;
                }
                None => break,
            }
        }
        pos += 1;
    }
    Some(Part::SchemeSwitch {
        tls: tls?,
        plain: plain?,
    })
}

/// A quoted literal of any quote kind, templates read without their `${}` parts.
fn quoted_any(text: &str, pos: usize, limit: usize) -> Option<(String, usize)> {
    if text.as_bytes().get(pos) == Some(&b'`') {
        let mut parts = Vec::new();
        let end = template(text, pos, limit, MAX_DEPTH, &mut parts)?;
        let lit = parts
            .into_iter()
            .filter_map(|p| match p {
                Part::Lit(s) => Some(s),
                _ => None,
            })
            .collect();
        return Some((lit, end));
    }
    quoted(text, pos, limit)
}

fn opaque(text: &str) -> String {
    let compact: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = compact.chars().take(OPAQUE_CHARS).collect();
    if compact.chars().count() > OPAQUE_CHARS {
        out.push('…');
    }
    out
}

/// A `'...'` or `"..."` literal at `pos`: its decoded text and the offset after the quote.
fn quoted(text: &str, pos: usize, limit: usize) -> Option<(String, usize)> {
    let quote = char::from(*text.as_bytes().get(pos)?);
    let mut out = String::new();
    let mut chars = text.get(pos + 1..limit)?.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => unescape(&mut chars, &mut out),
            '\n' => return None,
            c if c == quote => return Some((out, pos + 1 + i + 1)),
            c => out.push(c),
        }
    }
    None
}

/// A template literal at `pos`: literal runs and the parts of its `${...}` substitutions.
fn template(
    text: &str,
    pos: usize,
    limit: usize,
    depth: usize,
    parts: &mut Vec<Part>,
) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut lit = String::new();
    let mut at = pos + 1;
    loop {
        let rest = text.get(at..limit)?;
        let c = rest.chars().next()?;
        match c {
            '\\' => {
                let mut chars = rest.char_indices();
                chars.next();
                unescape(&mut chars, &mut lit);
                at += chars.offset();
            }
            '`' => {
                if !lit.is_empty() {
                    parts.push(Part::Lit(lit));
                }
                return Some(at + 1);
            }
            '$' if bytes.get(at + 1) == Some(&b'{') => {
                let close = skip_balanced(bytes, at + 1, limit)?;
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit)));
                }
                let body = (at + 2, close - 1);
                parts.push(if depth < MAX_DEPTH {
                    grouped(text, body.0, body.1, depth + 1)
                } else {
                    Part::Opaque(opaque(text.get(body.0..body.1).unwrap_or_default()))
                });
                at = close;
            }
            c => {
                lit.push(c);
                at += c.len_utf8();
            }
        }
    }
}

/// Decodes the escape after a backslash into `out`.
fn unescape(chars: &mut std::str::CharIndices<'_>, out: &mut String) {
    let Some((_, c)) = chars.next() else {
        return;
    };
    let hex = |chars: &mut std::str::CharIndices<'_>, n: usize| {
        let mut v = 0u32;
        for _ in 0..n {
            let d = chars.next()?.1.to_digit(16)?;
            v = v * 16 + d;
        }
        char::from_u32(v)
    };
    match c {
        'n' => out.push('\n'),
        't' => out.push('\t'),
        'r' => out.push('\r'),
        '0' => out.push('\0'),
        'b' | 'f' | 'v' => out.push(' '),
        'x' => out.extend(hex(chars, 2)),
        'u' => {
            let mut peek = chars.clone();
            if peek.next().map(|(_, c)| c) == Some('{') {
                let mut v = 0u32;
                let mut ok = false;
                for (_, d) in peek.by_ref().take(7) {
                    if d == '}' {
                        ok = true;
                        break;
                    }
                    match d.to_digit(16) {
                        Some(d) => v = v.saturating_mul(16).saturating_add(d),
                        None => break,
                    }
                }
                if ok {
                    *chars = peek;
                    out.extend(char::from_u32(v));
                }
            } else {
                out.extend(hex(chars, 4));
            }
        }
        '\r' | '\n' => {}
        c => out.push(c),
    }
}

/// The offset just past the bracket matching the one at `open` (`(`, `[`, `{`), skipping
/// quoted strings; `None` when it does not close before `limit`.
pub fn skip_balanced(bytes: &[u8], open: usize, limit: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut pos = open;
    while pos < limit {
        match bytes[pos] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(pos + 1);
                }
            }
            q @ (b'"' | b'\'' | b'`') => {
                pos += 1;
                while pos < limit && bytes[pos] != q {
                    if bytes[pos] == b'\\' {
                        pos += 1;
                    } else if bytes[pos] == b'\n' && q != b'`' {
                        break;
                    }
                    pos += 1;
                }
            }
            _ => {}
        }
        pos += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(src: &str) -> Vec<Part> {
        parse_expr(src, 0).parts
    }

    fn lit(s: &str) -> Part {
        Part::Lit(s.into())
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(parts(r#""wss:\/\/h\x2Fws""#), [lit("wss://h/ws")]);
        assert_eq!(parts(r"'a\u0062\u{63}'"), [lit("abc")]);
        assert_eq!(parts("\"unterminated\nx\""), []);
    }

    #[test]
    fn concatenation_with_location() {
        let p = parts(r#""wss://" + window.location.host + '/ws' ;"#);
        assert_eq!(
            p,
            [
                lit("wss://"),
                Part::Location(LocationField::Host),
                lit("/ws")
            ]
        );
        let p = parts(r#"proto + "//" + location.host"#);
        assert_eq!(p[0], Part::Opaque("proto".into()));
        assert_eq!(parts("a ++ b").len(), 1);
    }

    #[test]
    fn templates_with_substitutions() {
        let p = parts("`wss://${location.host}/ws/${room}?v=1`");
        assert_eq!(
            p,
            [
                lit("wss://"),
                Part::Location(LocationField::Host),
                lit("/ws/"),
                Part::Opaque("room".into()),
                lit("?v=1"),
            ]
        );
        let p = parts(
            "`${location.protocol === 'https:' ? 'wss' : 'ws'}://${document.location.host}/x`",
        );
        assert!(
            matches!(&p[0], Part::SchemeSwitch { tls, plain } if tls == "wss" && plain == "ws")
        );
        assert_eq!(p[1], lit("://"));
    }

    #[test]
    fn parenthesised_switch_and_calls() {
        let p = parts(
            r#"(location.protocol == "https:" ? "wss://" : "ws://") + location.host + "/ws""#,
        );
        assert!(matches!(&p[0], Part::SchemeSwitch { .. }));
        assert_eq!(p.len(), 3);
        let p = parts("getUrl('x') + '/ws'");
        assert_eq!(p[0], Part::Opaque("getUrl('x')".into()));
        assert_eq!(p[1], lit("/ws"));
    }

    #[test]
    fn location_values() {
        let u = url::Url::parse("https://app.example.com:8443/p").expect("url");
        assert_eq!(LocationField::Host.value(&u), "app.example.com:8443");
        assert_eq!(
            LocationField::Origin.value(&u),
            "https://app.example.com:8443"
        );
        assert_eq!(LocationField::Protocol.value(&u), "https:");
        let u = url::Url::parse("https://app.example.com/").expect("url");
        assert_eq!(LocationField::Host.value(&u), "app.example.com");
        assert_eq!(LocationField::Port.value(&u), "");
    }

    #[test]
    fn balanced_brackets_skip_strings() {
        let src = br#"(a, ")", '(', [1, {b: 2}]) tail"#;
        assert_eq!(skip_balanced(src, 0, src.len()), Some(26));
        assert_eq!(skip_balanced(b"((", 0, 2), None);
        assert_eq!(skip_balanced(b")", 0, 1), None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,300}", start in 0usize..310) {
            let start = (0..=start.min(s.len())).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
            let e = parse_expr(&s, start);
            proptest::prop_assert!(e.end <= s.len());
        }
    }
}
