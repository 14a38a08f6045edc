//! The one redaction point: every value read from the environment (`${VAR}`) and every
//! `Authorization` header value is registered here, and every output (plan, reports, logs)
//! passes through [`Secrets::redact`] before it is printed.
//!
//! A secret can reach output encoded rather than as written: a `${VAR}` placed in a URL is
//! percent-encoded by the URL parser, a query parameter is form-encoded (`+` for a space), and a
//! hostile server can echo a bearer token base64-encoded, as hex, as `%XX` of every byte or as
//! JSON `\u` escapes. So every registered value is searched for in each of those forms too
//! (see [`encoded_forms`]); docs/robustness.md lists them.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use base64::Engine as _;

/// The shortest encoded form searched for: the base64 of a two-byte secret (`eA`) would
/// otherwise hide every `ea` of a report. The value itself is always searched for.
pub const MIN_FORM: usize = 6;

/// What a secret is replaced with in output.
pub const REDACTED: &str = "***";

/// The secret values of one run.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// Each value as registered, with its forms; longest value first (so a secret containing
    /// another is replaced whole). Shared between copies: a run copies its registry for every
    /// connection.
    entries: BTreeMap<(Reverse<usize>, String), Arc<Forms>>,
}

impl PartialEq for Secrets {
    fn eq(&self, other: &Self) -> bool {
        self.entries.keys().eq(other.entries.keys())
    }
}

impl Eq for Secrets {}

/// One value's forms (itself and [`encoded_forms`]) and the automaton finding them, built
/// once per value: a run holds hundreds of tickets and cookies in some thirty forms each.
#[derive(Debug)]
struct Forms {
    /// Longest first.
    forms: Vec<String>,
    /// Finds the leftmost, longest form; `None` only if it could not be built.
    matcher: Option<aho_corasick::AhoCorasick>,
}

impl Forms {
    /// The forms of `value`, shared by every registry holding it: the client copies a run's
    /// secrets into each request and connection it makes, so each value's automaton is built
    /// once while any registry still holds it.
    fn of(value: &str) -> Arc<Self> {
        static CACHE: OnceLock<Mutex<HashMap<String, Weak<Forms>>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Mutex::default);
        let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(forms) = cache.get(value).and_then(Weak::upgrade) {
            return forms;
        }
        let mut forms = encoded_forms(value);
        forms.push(value.to_string());
        forms.sort_by_key(|f| Reverse(f.len()));
        // A contiguous NFA without prefilter or dense states: quick to build and about 11 KiB
        // for a 43-character ticket (a run holds hundreds; a DFA would cost far more). ASCII
        // case is ignored, so hex and escapes match in either case from one form each (a
        // secret's other-case spelling is redacted too: more, never less).
        let matcher = aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA))
            .ascii_case_insensitive(true)
            .prefilter(false)
            .dense_depth(0)
            .build(&forms)
            .ok();
        let built = Arc::new(Self { forms, matcher });
        if cache.len() >= 4096 {
            cache.retain(|_, w| w.strong_count() > 0);
        }
        cache.insert(value.to_string(), Arc::downgrade(&built));
        built
    }

    fn longest(&self) -> usize {
        self.forms.first().map_or(0, String::len)
    }

    fn found_in(&self, text: &str) -> bool {
        match &self.matcher {
            Some(m) => m.is_match(text),
            None => self.forms.iter().any(|f| text.contains(f.as_str())),
        }
    }

    fn replaced_in(&self, text: &str) -> String {
        match &self.matcher {
            Some(m) => {
                let mut out = String::with_capacity(text.len());
                m.replace_all_with(text, &mut out, |_, _, dst| {
                    dst.push_str(REDACTED);
                    true
                });
                out
            }
            None => {
                let mut out = text.to_string();
                for f in &self.forms {
                    out = out.replace(f.as_str(), REDACTED);
                }
                out
            }
        }
    }
}

/// The forms `value` takes once encoded, other than itself:
///
/// - for a URL or a form: the `application/x-www-form-urlencoded` form (space as `+`), the
///   RFC 3986 component form (everything but unreserved characters escaped), and the forms the
///   `url` crate gives it in a query, a path, user information and a fragment;
/// - as a server may echo it: `%XX` of every byte, hex, JSON `\uXXXX` escapes of every
///   character (each in either case: matching ignores ASCII case), its JSON string escaping, and base64
///   and base64url at each of the three byte alignments it can have inside a longer encoded
///   blob (the characters that depend on the secret alone, and, for a secret ending the blob,
///   the rest with and without padding).
///
/// A form shorter than the value (a path's dot segments removed, the base64 of a secret of a
/// few bytes at an odd alignment), or than [`MIN_FORM`] characters, is left out: it could match
/// unrelated text.
pub fn encoded_forms(value: &str) -> Vec<String> {
    /// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`).
    const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let bytes = value.as_bytes();
    let mut forms = vec![
        url::form_urlencoded::byte_serialize(bytes).collect::<String>(),
        percent_encoding::utf8_percent_encode(value, COMPONENT).to_string(),
    ];
    if let Ok(base) = url::Url::parse("wss://h/") {
        let mut u = base.clone();
        u.set_query(Some(value));
        forms.extend(u.query().map(str::to_owned));
        let mut u = base.clone();
        u.set_path(&format!("/{value}"));
        forms.push(u.path().trim_start_matches('/').to_owned());
        let mut u = base.clone();
        if u.set_password(Some(value)).is_ok() {
            forms.extend(u.password().map(str::to_owned));
        }
        let mut u = base;
        u.set_fragment(Some(value));
        forms.extend(u.fragment().map(str::to_owned));
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let every_byte: String = bytes.iter().map(|b| format!("%{b:02X}")).collect();
    let json_u: String = value
        .encode_utf16()
        .map(|u| format!("\\u{u:04x}"))
        .collect();
    // One case of each: the matcher ignores ASCII case.
    forms.extend([hex, every_byte, json_u]);
    if let Ok(quoted) = serde_json::to_string(value) {
        forms.push(quoted[1..quoted.len() - 1].to_string());
    }
    for engine in [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::URL_SAFE,
    ] {
        forms.extend(base64_forms(bytes, engine));
    }
    forms.retain(|f| f.len() >= value.len().max(MIN_FORM) && f != value);
    forms.sort();
    forms.dedup();
    forms
}

/// The base64 text `bytes` leave inside any longer base64 blob, with `engine`'s alphabet: for
/// each alignment `a` (the secret starting `a` bytes into a 3-byte group), the characters whose
/// six bits all come from the secret, and, for a blob the secret ends, those to the end with
/// and without padding.
fn base64_forms(bytes: &[u8], engine: &base64::engine::GeneralPurpose) -> Vec<String> {
    let mut out = Vec::new();
    for a in 0..3usize {
        let mut blob = vec![0u8; a];
        blob.extend_from_slice(bytes);
        let padded = engine.encode(&blob);
        // Character i holds bits [6i, 6i + 6) of the blob; the secret holds [8a, 8(a + n)).
        let first = (8 * a).div_ceil(6);
        let end = 8 * (a + bytes.len()) / 6;
        if let Some(core) = padded.get(first..end) {
            out.push(core.to_string());
        }
        if let Some(tail) = padded.get(first..) {
            out.push(tail.to_string());
            out.push(tail.trim_end_matches('=').to_string());
        }
    }
    out
}

/// A lossy UTF-8 preview of at most `max_chars` characters, control characters escaped, with
/// `…` when cut.
pub fn preview(bytes: &[u8], max_chars: usize) -> String {
    Secrets::new().preview(bytes, max_chars)
}

/// Cuts `text` to `max_chars` characters, escaping control characters; `…` marks a cut.
fn clip(text: &str, max_chars: usize, more: bool) -> String {
    let mut out = String::new();
    let mut cut = more;
    for (i, c) in text.chars().enumerate() {
        if i == max_chars {
            cut = true;
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if cut {
        out.push('…');
    }
    out
}

impl Secrets {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks `value` as secret, in every encoded form it can take in a URL, a form or a
    /// server's echo (see [`encoded_forms`]); empty values are ignored (they cannot be found
    /// in text).
    pub fn register(&mut self, value: impl Into<String>) {
        let value = value.into();
        if value.is_empty() || value == REDACTED {
            return;
        }
        self.entries
            .entry((Reverse(value.len()), value))
            .or_insert_with_key(|(_, v)| Forms::of(v));
    }

    /// Marks an `Authorization` header value secret, and its credential part too
    /// (`Bearer abc` registers both `Bearer abc` and `abc`) so either form is redacted.
    pub fn register_authorization(&mut self, header_value: &str) {
        self.register(header_value);
        if let Some((_, credential)) = header_value.trim().split_once(' ') {
            self.register(credential.trim());
        }
    }

    /// Adds every secret of `other`.
    pub fn extend(&mut self, other: &Secrets) {
        for (key, forms) in &other.entries {
            self.entries
                .entry(key.clone())
                .or_insert_with(|| forms.clone());
        }
    }

    /// The registered values, as registered, longest first (to hand them to a client that
    /// redacts its own errors: registering them there finds the same forms).
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(|(_, v)| v.as_str())
    }

    /// Whether no secret is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of registered secrets (not counting their encoded forms).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether `text` contains any registered secret, in any of its forms.
    pub fn leaks(&self, text: &str) -> bool {
        self.entries.values().any(|f| f.found_in(text))
    }

    /// `text` with every occurrence of every secret, in any of its forms, replaced by `***`.
    /// Longer secrets are replaced first, and each secret's longest form, so a secret
    /// containing another is hidden whole.
    pub fn redact(&self, text: &str) -> String {
        let mut out = std::borrow::Cow::Borrowed(text);
        for f in self.entries.values() {
            if f.found_in(&out) {
                out = std::borrow::Cow::Owned(f.replaced_in(&out));
            }
        }
        out.into_owned()
    }

    /// A preview of `bytes` (lossy, escaped, at most `max_chars` characters) with secrets
    /// replaced before truncation, so a secret cut by the truncation cannot leak its first half.
    pub fn preview(&self, bytes: &[u8], max_chars: usize) -> String {
        // A char is at most 4 bytes, so this window holds every char that can be shown, plus
        // the whole of any secret starting among them.
        let longest = self
            .entries
            .values()
            .map(|f| f.longest())
            .max()
            .unwrap_or(0);
        let window = max_chars.saturating_mul(4).saturating_add(longest);
        let shown = &bytes[..bytes.len().min(window)];
        let text = self.redact(&String::from_utf8_lossy(shown));
        clip(&text, max_chars, bytes.len() > shown.len())
    }

    /// Redacts every string (keys included) of a YAML value in place; used before
    /// serialising, so quoting or escaping by the emitter cannot hide a secret from redaction.
    pub fn redact_yaml(&self, value: &mut serde_yaml::Value) {
        use serde_yaml::Value;
        match value {
            Value::String(s) => *s = self.redact(s),
            Value::Sequence(items) => items.iter_mut().for_each(|v| self.redact_yaml(v)),
            Value::Mapping(m) => {
                let entries = std::mem::take(m);
                for (mut k, mut v) in entries {
                    self.redact_yaml(&mut k);
                    self.redact_yaml(&mut v);
                    m.insert(k, v);
                }
            }
            Value::Tagged(t) => self.redact_yaml(&mut t.value),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_longest_first_and_ignores_empty() {
        let mut s = Secrets::new();
        s.register("");
        s.register_authorization("Bearer tok123");
        assert_eq!(s.len(), 2);
        assert_eq!(
            s.redact("Authorization: Bearer tok123, again tok123"),
            "Authorization: ***, again ***"
        );
        assert!(s.leaks("x tok123"));
        assert!(!s.leaks(&s.redact("x tok123")));
    }

    #[test]
    fn redacts_inside_yaml_values() {
        let mut s = Secrets::new();
        s.register("p\"w");
        let mut v: serde_yaml::Value =
            serde_yaml::from_str("a: 'x p\"w'\nb: [\"p\\\"w\"]").expect("yaml");
        s.redact_yaml(&mut v);
        let text = serde_yaml::to_string(&v).expect("yaml");
        assert!(!text.contains("p\"w") && !text.contains("p\\\"w"), "{text}");
    }

    /// A secret with characters every encoding treats differently: `+`, `/`, `=`, a space,
    /// `?`, `#`, `'`, `@` and a non-ASCII letter.
    const TRICKY: &str = "ab+c/d=e f?g#h'i@jü";

    fn tricky() -> Secrets {
        let mut s = Secrets::new();
        s.register(TRICKY);
        s
    }

    #[test]
    fn redacts_the_form_urlencoded_form() {
        let pair = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", TRICKY)
            .finish();
        assert_eq!(pair, "token=ab%2Bc%2Fd%3De+f%3Fg%23h%27i%40j%C3%BC");
        assert_eq!(
            tricky().redact(&format!("GET /ws?{pair} HTTP/1.1")),
            "GET /ws?token=*** HTTP/1.1"
        );
    }

    #[test]
    fn redacts_the_rfc3986_component_form() {
        let text = "x=ab%2Bc%2Fd%3De%20f%3Fg%23h%27i%40j%C3%BC;";
        assert_eq!(tricky().redact(text), "x=***;");
    }

    #[test]
    fn redacts_the_forms_a_url_gives_a_query_path_userinfo_and_fragment() {
        let s = tricky();
        let cases = [
            (format!("wss://h/ws?token={TRICKY}"), "wss://h/ws?token=***"),
            (format!("wss://h/{TRICKY}/ws"), "wss://h/***/ws"),
            (format!("wss://h/ws#{TRICKY}"), "wss://h/ws#***"),
        ];
        for (written, expected) in cases {
            let parsed = url::Url::parse(&written).expect("url parses");
            assert_ne!(
                parsed.as_str(),
                written,
                "the url crate encoded nothing in {written}"
            );
            assert_eq!(s.redact(parsed.as_str()), expected, "{written}");
            assert!(s.leaks(parsed.as_str()));
        }
        let mut u = url::Url::parse("wss://h/ws").expect("url");
        u.set_password(Some(TRICKY)).expect("has a host");
        assert_eq!(s.redact(u.as_str()), "wss://:***@h/ws");
    }

    #[test]
    fn run_time_secrets_get_their_encoded_forms_and_values_stay_as_registered() {
        let mut run = Secrets::new();
        run.extend(&tricky());
        run.register("cookie value+1");
        assert_eq!(run.len(), 2);
        assert_eq!(
            run.values().collect::<Vec<_>>(),
            vec![TRICKY, "cookie value+1"]
        );
        assert_eq!(
            run.redact("c=cookie+value%2B1 d=cookie%20value+1"),
            "c=*** d=***"
        );
    }

    #[test]
    fn base64_of_the_secret_is_redacted_at_every_alignment_and_padding() {
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        let s = tricky();
        for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
            for before in 0..6usize {
                for after in 0..4usize {
                    let mut blob = vec![b'<'; before];
                    blob.extend_from_slice(TRICKY.as_bytes());
                    blob.extend(std::iter::repeat_n(b'>', after));
                    let text = engine.encode(&blob);
                    let redacted = s.redact(&text);
                    // What stays is what the bytes around the secret, plus one character on
                    // each side shared with it, encode to: never a run of the secret's own.
                    let kept = redacted.len() - REDACTED.len();
                    let around = (before + after) * 4 / 3 + 4;
                    assert!(
                        redacted.contains(REDACTED) && kept <= around,
                        "{before}+{after}: {text} -> {redacted}"
                    );
                }
            }
        }
    }

    #[test]
    fn hex_every_byte_escapes_and_json_escapes_are_redacted_in_both_cases() {
        let s = tricky();
        let hex: String = TRICKY.bytes().map(|b| format!("{b:02x}")).collect();
        let pct: String = TRICKY.bytes().map(|b| format!("%{b:02X}")).collect();
        let json_u: String = TRICKY
            .encode_utf16()
            .map(|u| format!("\\u{u:04x}"))
            .collect();
        for form in [
            hex.clone(),
            hex.to_uppercase(),
            pct.clone(),
            pct.to_lowercase(),
            json_u.clone(),
            json_u.to_uppercase().replace("\\U", "\\u"),
        ] {
            assert_eq!(s.redact(&format!("[{form}]")), "[***]", "{form}");
        }
        let mut quoted = Secrets::new();
        quoted.register("a\"b\\c");
        assert_eq!(quoted.redact(r#"{"t":"a\"b\\c"}"#), r#"{"t":"***"}"#);
    }

    #[test]
    fn a_path_form_shorter_than_the_secret_is_not_registered() {
        // `/../x` normalises to `/x`: redacting every `x` would wreck the output.
        assert!(encoded_forms("a/../x").iter().all(|f| f.len() >= 6));
    }
}
