//! Business-message validation: malformed JSON and schema violations get an error reply and the
//! connection stays usable; binary where text is expected closes 1003, invalid UTF-8 closes 1007.
//! With `schema` weakened, anything that parses as JSON is acknowledged and the rest is ignored.

use serde_json::{Value, json};

use super::weaken::{Defence, Weakened};

/// What the server does with one business message.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Accepted: reply with this JSON text and keep the connection.
    Reply(String),
    /// Refused: reply with this JSON error text (the connection stays usable); `reason` is logged.
    Rejected {
        /// The `{"type":"error",...}` reply.
        reply: String,
        /// Short reason for the log.
        reason: &'static str,
    },
    /// Say nothing (a careless server ignoring what it cannot parse).
    Ignore,
    /// Close with this code and reason.
    Close(u16, &'static str),
}

/// The policy's schema as a flawed server compiles it: flaw `schema-unanchored` drops the end
/// anchor of every pattern (`^TX-[0-9]{6}` lets trailing junk through).
pub fn as_flawed(schema: &Value, flaws: &super::flaw::Flaws) -> Value {
    fn unanchor(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, inner) in m.iter_mut() {
                    match inner {
                        Value::String(p) if k == "pattern" => {
                            if let Some(stripped) = p.strip_suffix('$') {
                                *p = stripped.to_string();
                            }
                        }
                        other => unanchor(other),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(unanchor),
            _ => {}
        }
    }
    let mut out = schema.clone();
    if flaws.is(super::flaw::Flaw::SchemaUnanchored) {
        unanchor(&mut out);
    }
    out
}

/// The message as a flawed validator sees it: flaw `schema-bool-number` reads `true`/`false`
/// as the numbers 1 and 0 (`isinstance(x, (int, float))` lets booleans through).
pub fn as_validated(value: &Value, flaws: &super::flaw::Flaws) -> Value {
    match value {
        Value::Bool(b) if flaws.is(super::flaw::Flaw::SchemaBoolNumber) => json!(u8::from(*b)),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), as_validated(v, flaws)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Decodes a data message to text, applying the text-frame rules.
pub fn decode(
    text: bool,
    data: Vec<u8>,
    weakened: &Weakened,
) -> Result<String, (u16, &'static str)> {
    let lax = weakened.is(Defence::Schema);
    if !text && !lax {
        return Err((1003, "binary messages are not accepted"));
    }
    match String::from_utf8(data) {
        Ok(s) => Ok(s),
        Err(e) if lax => Ok(String::from_utf8_lossy(e.as_bytes()).into_owned()),
        Err(_) => Err((1007, "text message is not valid UTF-8")),
    }
}

/// The acknowledgement of a valid message, echoing its reference (bounded) when it has one.
#[derive(serde::Serialize)]
struct Ack<'a> {
    r#type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reference: Option<&'a str>,
}

/// Validates a business message; `validator` is the policy's compiled schema, if any.
pub fn judge(
    text: &str,
    validator: Option<&jsonschema::Validator>,
    weakened: &Weakened,
) -> Decision {
    judge_with(text, validator, weakened, &super::flaw::Flaws::none())
}

/// [`judge`] with the schema `flaws` of the reference server in force.
pub fn judge_with(
    text: &str,
    validator: Option<&jsonschema::Validator>,
    weakened: &Weakened,
    flaws: &super::flaw::Flaws,
) -> Decision {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) if weakened.is(Defence::Schema) => return Decision::Ignore,
        Err(e) => {
            let reply = json!({
                "type": "error",
                "reason": "malformed_json",
                "detail": format!("line {} column {}", e.line(), e.column()),
            });
            return Decision::Rejected {
                reply: reply.to_string(),
                reason: "malformed_json",
            };
        }
    };
    // `is_valid` stops at the first failing keyword and builds no errors, so a valid message
    // (the common case) pays only for that; the first error is looked up for a rejection.
    let seen = if flaws.is(super::flaw::Flaw::SchemaBoolNumber) {
        std::borrow::Cow::Owned(as_validated(&value, flaws))
    } else {
        std::borrow::Cow::Borrowed(&value)
    };
    if !weakened.is(Defence::Schema)
        && let Some(v) = validator
        && !v.is_valid(&seen)
    {
        let path = v
            .iter_errors(&seen)
            .next()
            .map(|e| e.instance_path().to_string())
            .unwrap_or_default();
        let reply = json!({
            "type": "error",
            "reason": "schema",
            "path": path,
        });
        return Decision::Rejected {
            reply: reply.to_string(),
            reason: "schema",
        };
    }
    let reference = value.get("reference").and_then(Value::as_str).map(|r| {
        let mut end = r.len().min(64);
        while !r.is_char_boundary(end) {
            end -= 1;
        }
        &r[..end]
    });
    let ack = Ack {
        r#type: "ack",
        reference,
    };
    // Serialising a struct of strings cannot fail; fall back to a bare ack all the same.
    Decision::Reply(serde_json::to_string(&ack).unwrap_or_else(|_| r#"{"type":"ack"}"#.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validator() -> jsonschema::Validator {
        jsonschema::validator_for(&json!({
            "type": "object",
            "required": ["type", "amount"],
            "properties": { "type": { "const": "payment" }, "amount": { "type": "number", "maximum": 100 } },
            "additionalProperties": false
        }))
        .expect("schema")
    }

    /// The reply a verdict sends, as JSON, and whether it is an acceptance.
    fn reply(v: &Decision) -> (serde_json::Value, bool) {
        match v {
            Decision::Reply(r) => (serde_json::from_str(r).expect("JSON reply"), true),
            Decision::Rejected { reply, .. } => {
                (serde_json::from_str(reply).expect("JSON reply"), false)
            }
            other => panic!("no reply: {other:?}"),
        }
    }

    #[test]
    fn valid_is_acked_invalid_is_an_error_reply() {
        let v = validator();
        let w = Weakened::none();
        let extra = judge(
            r#"{"type":"payment","amount":5,"reference":"TX-1"}"#,
            Some(&v),
            &w,
        );
        assert_eq!(
            reply(&extra),
            (json!({"type":"error","reason":"schema","path":""}), false)
        );
        let ok = judge(r#"{"type":"payment","amount":5}"#, Some(&v), &w);
        assert_eq!(reply(&ok), (json!({"type":"ack"}), true));
        let big = judge(r#"{"type":"payment","amount":500}"#, Some(&v), &w);
        assert_eq!(reply(&big).0["reason"], "schema");
        let bad = judge("{", Some(&v), &w);
        assert_eq!(reply(&bad).0["reason"], "malformed_json");
        let lax = Weakened::of([Defence::Schema]);
        assert_eq!(
            reply(&judge(r#"{"type":"payment","amount":500}"#, Some(&v), &lax)).0["type"],
            "ack"
        );
        assert_eq!(judge("{", Some(&v), &lax), Decision::Ignore);
        assert_eq!(
            decode(false, vec![1], &w),
            Err((1003, "binary messages are not accepted"))
        );
        assert_eq!(
            decode(true, vec![0xff], &w),
            Err((1007, "text message is not valid UTF-8"))
        );
    }
}
