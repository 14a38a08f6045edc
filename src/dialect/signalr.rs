//! ASP.NET Core SignalR's JSON hub protocol: records ended by the record separator `0x1E`, a
//! handshake (`{"protocol":"json","version":1}` answered `{}`), and messages typed by number:
//! 1 invocation, 2 stream item, 3 completion, 4 stream invocation, 5 cancel, 6 ping, 7 close.
//! Before connecting, a client negotiates (`POST <hub>/negotiate?negotiateVersion=1`) and
//! connects with the `connectionToken` it got as `?id=`.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::json_string;

/// The record separator ending every record.
pub const RS: char = '\u{1e}';

/// The handshake a JSON-protocol client sends first.
pub const HANDSHAKE: &str = "{\"protocol\":\"json\",\"version\":1}\u{1e}";

/// The ping record.
pub const PING: &str = "{\"type\":6}\u{1e}";

/// Message types.
pub mod kind {
    /// A call of a method on the other side.
    pub const INVOCATION: u64 = 1;
    /// One item of a stream.
    pub const STREAM_ITEM: u64 = 2;
    /// The result (or error) of an invocation.
    pub const COMPLETION: u64 = 3;
    /// A heartbeat.
    pub const PING: u64 = 6;
    /// The end of the connection, maybe with an error.
    pub const CLOSE: u64 = 7;
}

/// The records of one WebSocket message (without their separators); text after the last
/// separator is an incomplete record and is returned last.
pub fn records(text: &str) -> Vec<&str> {
    text.split(RS).filter(|r| !r.is_empty()).collect()
}

/// One record, its parts as written.
#[derive(Debug, Deserialize)]
pub struct Record<'a> {
    /// Its type (absent in handshake records).
    #[serde(rename = "type", default)]
    pub kind: Option<u64>,
    /// Its invocation id.
    #[serde(rename = "invocationId", default, borrow)]
    pub invocation_id: Option<std::borrow::Cow<'a, str>>,
    /// An invocation's target method.
    #[serde(default, borrow)]
    pub target: Option<std::borrow::Cow<'a, str>>,
    /// An invocation's arguments as written.
    #[serde(default, borrow)]
    pub arguments: Option<&'a RawValue>,
    /// A completion's result as written.
    #[serde(default, borrow)]
    pub result: Option<&'a RawValue>,
    /// A completion's or close message's error.
    #[serde(default, borrow)]
    pub error: Option<std::borrow::Cow<'a, str>>,
    /// A handshake request's protocol.
    #[serde(default, borrow)]
    pub protocol: Option<std::borrow::Cow<'a, str>>,
}

/// Reads one record; `None` when it is not a JSON object of the protocol.
pub fn parse(record: &str) -> Option<Record<'_>> {
    serde_json::from_str(record).ok()
}

/// An invocation of `target` with `arguments` written as given (a malformed argument makes a
/// malformed record), with an invocation id when a completion is wanted.
pub fn invocation(id: Option<&str>, target: &str, arguments: &str) -> String {
    match id {
        Some(id) => format!(
            r#"{{"type":1,"invocationId":{},"target":{},"arguments":[{arguments}]}}{RS}"#,
            json_string(id),
            json_string(target)
        ),
        None => format!(
            r#"{{"type":1,"target":{},"arguments":[{arguments}]}}{RS}"#,
            json_string(target)
        ),
    }
}

/// The invocation an authentication payload describes (`{"target":..,"arguments":[..]}`),
/// with id `id` added; `None` when the payload is not such an object.
pub fn invocation_from(id: &str, payload: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Call<'a> {
        #[serde(borrow)]
        target: std::borrow::Cow<'a, str>,
        #[serde(default, borrow)]
        arguments: Option<&'a RawValue>,
    }
    let call: Call<'_> = serde_json::from_str(payload).ok()?;
    let arguments = call.arguments.map_or("[]", |a| a.get());
    let inner = arguments.trim().strip_prefix('[')?.strip_suffix(']')?;
    Some(invocation(Some(id), &call.target, inner))
}

/// A completion of invocation `id` with `result` (JSON as written).
pub fn completion_result(id: &str, result: &str) -> String {
    format!(
        r#"{{"type":3,"invocationId":{},"result":{result}}}{RS}"#,
        json_string(id)
    )
}

/// A completion of invocation `id` with an error.
pub fn completion_error(id: &str, error: &str) -> String {
    format!(
        r#"{{"type":3,"invocationId":{},"error":{}}}{RS}"#,
        json_string(id),
        json_string(error)
    )
}

/// A close message with `error`.
pub fn close(error: &str) -> String {
    format!(
        r#"{{"type":7,"error":{},"allowReconnect":false}}{RS}"#,
        json_string(error)
    )
}

/// The first argument of an invocation, as written.
pub fn first_argument(arguments: Option<&RawValue>) -> Option<&str> {
    let args: Vec<&RawValue> = serde_json::from_str(arguments?.get()).ok()?;
    args.first().map(|a| a.get())
}

/// The connection token of a negotiate response (v1 `connectionToken`, v0 `connectionId`).
pub fn negotiated_token(body: &str) -> Result<String, String> {
    let v: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| format!("the negotiate response is not JSON: {e}"))?;
    if let Some(url) = v.get("url").and_then(|u| u.as_str()) {
        return Err(format!(
            "the negotiate response redirects to another service ({url}): not followed"
        ));
    }
    if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
        return Err(format!("the negotiate response is an error: {e}"));
    }
    v.get("connectionToken")
        .or_else(|| v.get("connectionId"))
        .and_then(|t| t.as_str())
        .map(str::to_string)
        .ok_or_else(|| "the negotiate response has no connectionToken".to_string())
}

/// The negotiate URL of a hub at `hub` (its `http`/`https` URL, query included):
/// `<path>/negotiate?negotiateVersion=1&<the hub's query>`.
pub fn negotiate_url(hub: &url::Url) -> url::Url {
    let mut u = hub.clone();
    let path = format!("{}/negotiate", hub.path().trim_end_matches('/'));
    u.set_path(&path);
    let query = match hub.query() {
        Some(q) if !q.is_empty() => format!("negotiateVersion=1&{q}"),
        _ => "negotiateVersion=1".to_string(),
    };
    u.set_query(Some(&query));
    u
}

/// Whether a WebSocket message is nothing but ping records.
pub fn is_ping_only(text: &str) -> bool {
    let recs = records(text);
    !recs.is_empty()
        && text.ends_with(RS)
        && recs
            .iter()
            .all(|r| parse(r).is_some_and(|m| m.kind == Some(kind::PING)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_invocations() {
        let inv = invocation(Some("1"), "Pay", r#"{"a":1,"a":2}"#);
        let recs = records(&inv);
        assert_eq!(recs.len(), 1);
        let r = parse(recs[0]).expect("record");
        assert_eq!((r.kind, r.target.as_deref()), (Some(1), Some("Pay")));
        assert_eq!(first_argument(r.arguments), Some(r#"{"a":1,"a":2}"#));
        let auth =
            invocation_from("0", r#"{"target":"Authenticate","arguments":["t"]}"#).expect("auth");
        assert_eq!(
            auth,
            format!(
                "{{\"type\":1,\"invocationId\":\"0\",\"target\":\"Authenticate\",\"arguments\":[\"t\"]}}{RS}"
            )
        );
        assert!(invocation_from("0", "[1]").is_none());
        assert!(is_ping_only(&format!("{PING}{PING}")));
        assert!(!is_ping_only(&format!(
            "{PING}{}",
            completion_error("1", "x")
        )));
        assert_eq!(
            negotiated_token(r#"{"connectionToken":"abc"}"#),
            Ok("abc".into())
        );
        assert!(negotiated_token(r#"{"url":"https://elsewhere"}"#).is_err());
    }
}
