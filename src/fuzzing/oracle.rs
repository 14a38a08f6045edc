//! Which fuzzed messages are invalid: the judge that makes an acknowledgement a finding.
//!
//! A message is invalid when it is binary (the target's messages are text), not UTF-8, not JSON
//! (when the target's valid messages are JSON), or violates the policy's `messages.schema`.
//! Anything the oracle cannot decide honestly stays unjudged, and an ack of it is never reported:
//! JSON that our parser refuses for reasons the grammar does not (nesting deeper than serde's
//! recursion limit, numbers outside f64, lone UTF-16 surrogate escapes), and every well-formed
//! JSON message when no schema is known.

use serde_json::Value;

/// A message as the target receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Text (opcode 1) or binary (opcode 2).
    pub text: bool,
    /// The payload bytes, reassembled.
    pub bytes: Vec<u8>,
}

/// The validity judge of one run.
pub struct Oracle {
    validator: Option<jsonschema::Validator>,
    json_messages: bool,
}

/// What the oracle says about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validity {
    /// Valid per everything the oracle knows.
    Valid,
    /// Invalid, with the reason (shown in the finding).
    Invalid(String),
    /// The oracle cannot decide; an ack of it is not a finding.
    Unjudged(&'static str),
}

impl Oracle {
    /// An oracle for a target whose valid messages are `valid`, with the policy's JSON Schema
    /// (`None` without a policy or a `messages.schema` control).
    pub fn new(
        schema: Option<&Value>,
        valid: &[String],
    ) -> Result<Self, jsonschema::ValidationError<'static>> {
        let validator = schema.map(jsonschema::validator_for).transpose()?;
        let json_messages = !valid.is_empty()
            && valid
                .iter()
                .all(|m| serde_json::from_str::<Value>(m).is_ok());
        Ok(Self {
            validator,
            json_messages,
        })
    }

    /// Whether a JSON Schema judges messages (otherwise only wire-level invalidity counts).
    pub fn has_schema(&self) -> bool {
        self.validator.is_some()
    }

    /// Judges one message.
    pub fn judge(&self, m: &Delivered) -> Validity {
        if !m.text {
            return Validity::Invalid("a binary message where the target expects text".into());
        }
        let Ok(text) = std::str::from_utf8(&m.bytes) else {
            return Validity::Invalid("a text message that is not valid UTF-8".into());
        };
        if !self.json_messages {
            return Validity::Unjudged("the target's valid messages are not JSON");
        }
        if has_surrogate_escape(text) {
            // Parsers disagree on `\ud800`-style escapes (refuse, replace, keep); so may schemas.
            return Validity::Unjudged("a UTF-16 surrogate escape");
        }
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                let msg = e.to_string();
                // Refusals of serde's own, not of the JSON grammar: another parser may accept.
                if msg.contains("recursion limit") || msg.contains("out of range") {
                    return Validity::Unjudged("JSON our parser cannot represent");
                }
                return Validity::Invalid(format!("malformed JSON ({msg})"));
            }
        };
        match &self.validator {
            None => Validity::Unjudged("no messages.schema to judge JSON messages by"),
            Some(v) => match v.iter_errors(&value).next() {
                Some(err) => Validity::Invalid(format!(
                    "violates the policy's schema at `{}`: {}",
                    err.instance_path(),
                    clip(&err.to_string(), 120)
                )),
                None => Validity::Valid,
            },
        }
    }
}

/// Whether the text has a `\uD800`-`\uDFFF` escape (paired or not).
fn has_surrogate_escape(text: &str) -> bool {
    text.as_bytes().windows(4).any(|w| {
        w[0] == b'\\' && (w[1] | 0x20) == b'u' && (w[2] | 0x20) == b'd' && {
            let c = w[3] | 0x20;
            (b'8'..=b'9').contains(&c) || (b'a'..=b'f').contains(&c)
        }
    })
}

/// Cuts a diagnostic to `max` characters (a schema error can quote a 60 KiB value).
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn oracle() -> Oracle {
        let schema = json!({
            "type": "object", "required": ["amount"], "additionalProperties": false,
            "properties": { "amount": { "type": "number", "maximum": 10 } }
        });
        Oracle::new(Some(&schema), &[r#"{"amount":1}"#.to_string()]).expect("schema compiles")
    }

    fn text(s: &str) -> Delivered {
        Delivered {
            text: true,
            bytes: s.as_bytes().to_vec(),
        }
    }

    #[test]
    fn judges_wire_json_and_schema_invalidity_and_leaves_the_rest_unjudged() {
        let o = oracle();
        assert_eq!(o.judge(&text(r#"{"amount":1}"#)), Validity::Valid);
        assert!(
            matches!(o.judge(&text(r#"{"amount":11}"#)), Validity::Invalid(r) if r.contains("/amount"))
        );
        assert!(matches!(o.judge(&text("{")), Validity::Invalid(r) if r.contains("malformed")));
        assert!(matches!(
            o.judge(&Delivered {
                text: false,
                bytes: b"{\"amount\":1}".to_vec()
            }),
            Validity::Invalid(_)
        ));
        assert!(matches!(
            o.judge(&Delivered { text: true, bytes: vec![b'"', 0xff, b'"'] }),
            Validity::Invalid(r) if r.contains("UTF-8")
        ));
        let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
        assert!(matches!(o.judge(&text(&deep)), Validity::Unjudged(_)));
        assert!(matches!(
            o.judge(&text(r#"{"amount":1e400}"#)),
            Validity::Unjudged(_)
        ));
        assert!(matches!(
            o.judge(&text(r#"{"amount":"\ud800"}"#)),
            Validity::Unjudged(_)
        ));
        let no_schema = Oracle::new(None, &["{}".into()]).expect("no schema");
        assert!(matches!(
            no_schema.judge(&text(r#"{"x":1}"#)),
            Validity::Unjudged(_)
        ));
        assert!(matches!(no_schema.judge(&text("{")), Validity::Invalid(_)));
        let not_json = Oracle::new(None, &["hello".into()]).expect("no schema");
        assert!(matches!(not_json.judge(&text("{")), Validity::Unjudged(_)));
    }
}
