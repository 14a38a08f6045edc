//! The one redaction point: every value read from the environment (`${VAR}`) and every
//! `Authorization` header value is registered here, and every output (plan, reports, logs)
//! passes through [`Secrets::redact`] before it is printed.

use std::collections::BTreeSet;

/// What a secret is replaced with in output.
pub const REDACTED: &str = "***";

/// The secret values of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    values: BTreeSet<String>,
}

impl Secrets {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks `value` as secret; empty values are ignored (they cannot be found in text).
    pub fn register(&mut self, value: impl Into<String>) {
        let value = value.into();
        if !value.is_empty() && value != REDACTED {
            self.values.insert(value);
        }
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
    }

    /// The registered values (to hand them to a client that redacts its own errors).
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.values.iter().map(String::as_str)
    }

    /// Whether no secret is registered.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Number of registered secrets.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether `text` contains any registered secret.
    pub fn leaks(&self, text: &str) -> bool {
        self.values.iter().any(|v| text.contains(v.as_str()))
    }

    /// `text` with every occurrence of every secret replaced by `***`. Longer secrets are
    /// replaced first so a secret containing another is hidden whole.
    pub fn redact(&self, text: &str) -> String {
        let mut ordered: Vec<&String> = self.values.iter().collect();
        ordered.sort_by_key(|v| std::cmp::Reverse(v.len()));
        let mut out = text.to_string();
        for v in ordered {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), REDACTED);
            }
        }
        out
    }

    /// A preview of `bytes` (lossy, escaped, at most `max_chars` characters) with secrets
    /// replaced before truncation, so a secret cut by the truncation cannot leak its first half.
    pub fn preview(&self, bytes: &[u8], max_chars: usize) -> String {
        let longest = self.values.iter().map(String::len).max().unwrap_or(0);
        // A char is at most 4 bytes, so this window holds every char that can be shown, plus
        // the whole of any secret starting among them.
        let window = max_chars.saturating_mul(4).saturating_add(longest);
        let shown = &bytes[..bytes.len().min(window)];
        let text = self.redact(&String::from_utf8_lossy(shown));
        crate::client::evidence::clip(&text, max_chars, bytes.len() > shown.len())
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
}
