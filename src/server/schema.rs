//! Business-message validation: malformed JSON and schema violations get an error reply and the
//! connection stays usable; binary where text is expected closes 1003, invalid UTF-8 closes 1007.
//! With `schema` weakened, anything that parses as JSON is acknowledged and the rest is ignored.

use serde_json::{Value, json};

use super::weaken::{Defence, Weakened};

/// What the server does with one business message.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Reply with this JSON and keep the connection.
    Reply(Value),
    /// Say nothing (a careless server ignoring what it cannot parse).
    Ignore,
    /// Close with this code and reason.
    Close(u16, &'static str),
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

/// Validates a business message; `validator` is the policy's compiled schema, if any.
pub fn judge(
    text: &str,
    validator: Option<&jsonschema::Validator>,
    weakened: &Weakened,
) -> Verdict {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) if weakened.is(Defence::Schema) => return Verdict::Ignore,
        Err(e) => {
            return Verdict::Reply(json!({
                "type": "error",
                "reason": "malformed_json",
                "detail": format!("line {} column {}", e.line(), e.column()),
            }));
        }
    };
    if !weakened.is(Defence::Schema)
        && let Some(v) = validator
        && let Some(err) = v.iter_errors(&value).next()
    {
        return Verdict::Reply(json!({
            "type": "error",
            "reason": "schema",
            "path": err.instance_path().to_string(),
        }));
    }
    let mut ack = json!({ "type": "ack" });
    if let Some(r) = value.get("reference").and_then(Value::as_str) {
        ack["reference"] = Value::String(r.chars().take(64).collect());
    }
    Verdict::Reply(ack)
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

    #[test]
    fn valid_is_acked_invalid_is_an_error_reply() {
        let v = validator();
        let w = Weakened::none();
        let ok = judge(
            r#"{"type":"payment","amount":5,"reference":"TX-1"}"#,
            Some(&v),
            &w,
        );
        assert_eq!(
            ok,
            Verdict::Reply(json!({"type":"error","reason":"schema","path":""}))
        );
        let ok = judge(r#"{"type":"payment","amount":5}"#, Some(&v), &w);
        assert_eq!(ok, Verdict::Reply(json!({"type":"ack"})));
        let big = judge(r#"{"type":"payment","amount":500}"#, Some(&v), &w);
        assert!(matches!(big, Verdict::Reply(ref r) if r["reason"] == "schema"));
        let bad = judge("{", Some(&v), &w);
        assert!(matches!(bad, Verdict::Reply(ref r) if r["reason"] == "malformed_json"));
        let lax = Weakened::of([Defence::Schema]);
        assert!(
            matches!(judge(r#"{"type":"payment","amount":500}"#, Some(&v), &lax), Verdict::Reply(ref r) if r["type"] == "ack")
        );
        assert_eq!(judge("{", Some(&v), &lax), Verdict::Ignore);
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
