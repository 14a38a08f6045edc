//! The `graphql-transport-ws` protocol (the graphql-ws library): JSON messages
//! `connection_init` / `connection_ack`, `ping` / `pong`, `subscribe`, `next`, `error`,
//! `complete`, under the subprotocol `graphql-transport-ws`, with its own close codes.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{CloseMeaning, json_string};

/// The subprotocol.
pub const SUBPROTOCOL: &str = "graphql-transport-ws";

/// The close codes the protocol defines.
pub const CLOSE_CODES: &[(u16, CloseMeaning)] = &[
    (4400, CloseMeaning::InvalidMessage),
    (4401, CloseMeaning::Unauthorized),
    (4403, CloseMeaning::Forbidden),
    (4406, CloseMeaning::ProtocolError),
    (4408, CloseMeaning::Timeout),
    (4409, CloseMeaning::ProtocolError),
    (4429, CloseMeaning::ProtocolError),
    (4500, CloseMeaning::InternalError),
];

/// One message, its parts as written (payloads are not re-encoded).
#[derive(Debug, Deserialize)]
pub struct Message<'a> {
    /// Its `type`.
    #[serde(rename = "type", borrow)]
    pub kind: std::borrow::Cow<'a, str>,
    /// Its operation id.
    #[serde(default, borrow)]
    pub id: Option<std::borrow::Cow<'a, str>>,
    /// Its payload as written.
    #[serde(default, borrow)]
    pub payload: Option<&'a RawValue>,
}

/// Reads one message; `None` when it is not a JSON object with a string `type`.
pub fn parse(text: &str) -> Option<Message<'_>> {
    serde_json::from_str(text).ok()
}

/// `connection_init`, with `payload` as written when given.
pub fn connection_init(payload: Option<&str>) -> String {
    match payload {
        Some(p) => format!(r#"{{"type":"connection_init","payload":{p}}}"#),
        None => r#"{"type":"connection_init"}"#.to_string(),
    }
}

/// `subscribe` of operation `id`: `query`, with the business `payload` (as written, so a
/// malformed payload makes a malformed message) as variable `variable`.
pub fn subscribe(id: &str, query: &str, variable: &str, payload: &str) -> String {
    format!(
        r#"{{"id":{},"type":"subscribe","payload":{{"query":{},"variables":{{{}:{payload}}}}}}}"#,
        json_string(id),
        json_string(query),
        json_string(variable)
    )
}

/// Whether a `next` payload carries GraphQL `errors`.
pub fn has_errors(payload: Option<&RawValue>) -> bool {
    #[derive(Deserialize)]
    struct Result<'a> {
        #[serde(default, borrow)]
        errors: Option<&'a RawValue>,
    }
    payload
        .and_then(|p| serde_json::from_str::<Result<'_>>(p.get()).ok())
        .and_then(|r| r.errors)
        .is_some_and(|e| !matches!(e.get().trim(), "null" | "[]"))
}

/// The value of variable `name` in a `subscribe` payload, as written.
pub fn variable<'a>(payload: &'a RawValue, name: &str) -> Option<&'a str> {
    #[derive(Deserialize)]
    struct Operation<'a> {
        #[serde(default, borrow)]
        variables: Option<std::collections::HashMap<std::borrow::Cow<'a, str>, &'a RawValue>>,
    }
    let op: Operation<'a> = serde_json::from_str(payload.get()).ok()?;
    op.variables?.get(name).map(|v| v.get())
}

/// A string field of a JSON object payload (`connection_init`'s `ticket`).
pub fn string_field(payload: Option<&RawValue>, field: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(payload?.get()).ok()?;
    v.get(field)?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_payloads_as_written() {
        let s = subscribe("7", "mutation { pay }", "input", r#"{"a":1,"a":2}"#);
        let m = parse(&s).expect("subscribe");
        assert_eq!((m.kind.as_ref(), m.id.as_deref()), ("subscribe", Some("7")));
        assert_eq!(
            variable(m.payload.expect("payload"), "input"),
            Some(r#"{"a":1,"a":2}"#)
        );
        assert!(parse(&subscribe("1", "q", "input", r#"{"a":"#)).is_none());
        let next =
            parse(r#"{"id":"1","type":"next","payload":{"data":null,"errors":[{"message":"x"}]}}"#)
                .expect("next");
        assert!(has_errors(next.payload));
        let ok = parse(r#"{"id":"1","type":"next","payload":{"data":{"pay":{}}}}"#).expect("next");
        assert!(!has_errors(ok.payload));
        let init = connection_init(Some(r#"{"ticket":"t"}"#));
        assert_eq!(
            string_field(parse(&init).and_then(|m| m.payload), "ticket").as_deref(),
            Some("t")
        );
        assert!(parse("[1]").is_none());
    }
}
