//! The one redaction point: every value read from the environment (`${VAR}`) and every
//! `Authorization` header value is registered here, and every output (plan, reports, logs)
//! passes through [`Secrets::redact`] before it is printed.
//!
//! A secret can reach output encoded rather than as written: a `${VAR}` placed in a URL is
//! percent-encoded by the URL parser, a query parameter is form-encoded (`+` for a space). So
//! every registered value is searched for in each of those forms too.

use std::cmp::Reverse;
use std::collections::BTreeSet;

/// What a secret is replaced with in output.
pub const REDACTED: &str = "***";

/// The secret values of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// The values as registered.
    values: BTreeSet<String>,
    /// What output is searched for: every value and each of its encoded forms, longest first
    /// (so a secret containing another is replaced whole), kept in that order as they arrive.
    forms: BTreeSet<(Reverse<usize>, String)>,
}

/// The forms `value` takes once encoded for a URL or a form, other than itself: the
/// `application/x-www-form-urlencoded` form (space as `+`), the RFC 3986 component form
/// (everything but unreserved characters escaped), and the forms the `url` crate gives it in a
/// query, a path, user information and a fragment. A form shorter than the value (a path's dot
/// segments removed) is left out: it could match unrelated text.
pub fn encoded_forms(value: &str) -> Vec<String> {
    /// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`).
    const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let mut forms = vec![
        url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>(),
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
    forms.retain(|f| f.len() >= value.len() && f != value);
    forms.sort();
    forms.dedup();
    forms
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

    /// Marks `value` as secret, in every encoded form it can take in a URL or a form (see
    /// [`encoded_forms`]); empty values are ignored (they cannot be found in text).
    pub fn register(&mut self, value: impl Into<String>) {
        let value = value.into();
        if value.is_empty() || value == REDACTED || self.values.contains(&value) {
            return;
        }
        for form in encoded_forms(&value).into_iter().chain([value.clone()]) {
            self.forms.insert((Reverse(form.len()), form));
        }
        self.values.insert(value);
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
        self.values.extend(other.values.iter().cloned());
        self.forms.extend(other.forms.iter().cloned());
    }

    /// The registered values, as registered (to hand them to a client that redacts its own
    /// errors: registering them there derives the encoded forms again).
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.values.iter().map(String::as_str)
    }

    /// Whether no secret is registered.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Number of registered secrets (not counting their encoded forms).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether `text` contains any registered secret.
    pub fn leaks(&self, text: &str) -> bool {
        self.forms.iter().any(|(_, v)| text.contains(v.as_str()))
    }

    /// `text` with every occurrence of every secret, in any of its forms, replaced by `***`.
    /// Longer forms are replaced first so a secret containing another is hidden whole.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (_, v) in &self.forms {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), REDACTED);
            }
        }
        out
    }

    /// A preview of `bytes` (lossy, escaped, at most `max_chars` characters) with secrets
    /// replaced before truncation, so a secret cut by the truncation cannot leak its first half.
    pub fn preview(&self, bytes: &[u8], max_chars: usize) -> String {
        let longest = self.forms.first().map_or(0, |(Reverse(len), _)| *len);
        // A char is at most 4 bytes, so this window holds every char that can be shown, plus
        // the whole of any secret starting among them.
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
    fn a_path_form_shorter_than_the_secret_is_not_registered() {
        // `/../x` normalises to `/x`: redacting every `x` would wreck the output.
        assert!(encoded_forms("a/../x").iter().all(|f| f.len() >= 6));
    }
}
