//! Run-time values: the one place the engine fills run-time placeholders
//! ([`RuntimePlaceholder`]) in what it sends, at every send.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use super::StepError;
use crate::plan::template::{RuntimePlaceholder, runtime_placeholders};

/// What run-time placeholders are filled from at one moment of a case.
#[derive(Debug, Clone, Default)]
pub struct Values<'a> {
    /// The case's last fetched ticket.
    pub ticket: Option<&'a str>,
    /// The target's API credential.
    pub credential: Option<&'a str>,
    /// The run-wide counter behind `{{seq}}`.
    pub seq: Option<&'a AtomicU64>,
    /// What the case's setup requests extracted.
    pub setup: Option<&'a super::setup_state::SetupState>,
}

impl Values<'_> {
    /// `text` with every run-time placeholder filled.
    ///
    /// A placeholder without a value (no ticket fetched, a target with no API credential)
    /// makes the step not applicable: sending it empty (`?token=`) would be refused whatever
    /// the server does, a pass that proves nothing.
    pub fn render(&self, text: &str) -> Result<String, StepError> {
        let found = runtime_placeholders(text);
        if found.is_empty() {
            return Ok(text.to_string());
        }
        let mut out = String::with_capacity(text.len() + 32);
        let mut last = 0;
        for (range, p) in found {
            out.push_str(&text[last..range.start]);
            out.push_str(&self.value(&p).map_err(|why| {
                StepError::NotApplicable(format!("{} has no value: {why}", &text[range.clone()]))
            })?);
            last = range.end;
        }
        out.push_str(&text[last..]);
        Ok(out)
    }

    fn value(&self, p: &RuntimePlaceholder) -> Result<String, &'static str> {
        let given =
            |v: Option<&str>, why| v.filter(|v| !v.is_empty()).map(str::to_string).ok_or(why);
        match p {
            RuntimePlaceholder::Ticket => {
                given(self.ticket, "no ticket was fetched before this step")
            }
            RuntimePlaceholder::Credential => given(
                self.credential,
                "the target has no API credential (no Authorization header on its ticket \
                 request) to put there",
            ),
            RuntimePlaceholder::Uuid => Ok(uuid::Uuid::new_v4().to_string()),
            RuntimePlaceholder::Seq => Ok(self
                .seq
                .map_or(0, |s| s.fetch_add(1, Ordering::Relaxed) + 1)
                .to_string()),
            RuntimePlaceholder::NowMs => Ok(std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis())
                .to_string()),
            RuntimePlaceholder::RandomHex(n) => {
                let n = *n;
                let mut hex = String::with_capacity(n + 1);
                for _ in 0..n.div_ceil(2) {
                    let _ = write!(hex, "{:02x}", rand::random::<u8>());
                }
                hex.truncate(n);
                Ok(hex)
            }
            RuntimePlaceholder::Setup(name) => self
                .setup
                .and_then(|s| s.value(name))
                .map(str::to_string)
                .ok_or("the target's setup requests extracted no such value for this case"),
        }
    }
}

/// Whether `text` holds a placeholder whose value changes at every send.
pub fn per_message(text: &str) -> bool {
    runtime_placeholders(text)
        .iter()
        .any(|(_, p)| p.per_message())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_values_change_at_every_render() {
        let seq = AtomicU64::new(0);
        let v = Values {
            ticket: Some("t1"),
            credential: None,
            seq: Some(&seq),
            setup: None,
        };
        let template = r#"{"id":"{{uuid}}","n":{{seq}},"h":"{{random_hex:5}}","t":"{{ticket}}"}"#;
        let a: serde_json::Value =
            serde_json::from_str(&v.render(template).expect("a")).expect("json");
        let b: serde_json::Value =
            serde_json::from_str(&v.render(template).expect("b")).expect("json");
        assert_ne!(a["id"], b["id"]);
        assert_eq!((a["n"].as_u64(), b["n"].as_u64()), (Some(1), Some(2)));
        assert_eq!(a["h"].as_str().map(str::len), Some(5));
        assert_eq!(a["t"], "t1");
        assert!(per_message(template));
        assert!(!per_message("{{ticket}} {{credential}}"));
        match v.render("?k={{credential}}") {
            Err(StepError::NotApplicable(why)) => assert!(why.contains("{{credential}}"), "{why}"),
            other => panic!("an empty credential was sent: {other:?}"),
        }
        assert_eq!(
            v.render("{{not_runtime}} {{").expect("plain"),
            "{{not_runtime}} {{"
        );
    }
}
