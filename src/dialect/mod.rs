//! Application protocols spoken over a WebSocket, without I/O (as tungstenite keeps protocol
//! logic apart from sockets): each protocol's packets and frames ([`socketio`],
//! [`graphql_ws`], [`stomp`], [`signalr`]), the client side of a session ([`ClientCodec`]:
//! what the harness sends and how it reads the server) and the close codes each protocol
//! defines. The harness's message channel and the reference server both speak through here.

pub mod client;
pub mod graphql_ws;
pub mod signalr;
pub mod socketio;
pub mod stomp;

use std::borrow::Cow;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use client::{ClientCodec, Incoming, Opening, Signal};

/// The name of a dialect, as written in target files and on the command line.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    Serialize,
    Deserialize,
    JsonSchema,
    strum::VariantArray,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum DialectName {
    /// Business messages are the WebSocket text messages themselves.
    #[default]
    Raw,
    /// Engine.IO v4 with Socket.IO v5 packets.
    Socketio,
    /// The `graphql-transport-ws` protocol of the graphql-ws library.
    GraphqlTransportWs,
    /// STOMP 1.2 over WebSocket.
    Stomp,
    /// ASP.NET Core SignalR with its JSON hub protocol.
    SignalrJson,
}

impl DialectName {
    /// The name as written.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Every name, comma-separated, for errors and help.
    pub fn all() -> String {
        <Self as strum::VariantArray>::VARIANTS
            .iter()
            .map(|n| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for DialectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A target's dialect with its options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Dialect {
    /// Business messages are the WebSocket text messages themselves.
    #[default]
    Raw,
    /// Socket.IO: business messages are events with an acknowledgement id.
    Socketio {
        /// The event business messages are emitted as.
        event: String,
        /// The namespace (`/` by default).
        namespace: String,
    },
    /// graphql-transport-ws: business messages are the variable of a GraphQL operation.
    GraphqlTransportWs {
        /// The operation's document.
        query: String,
        /// The variable the business payload is passed as.
        variable: String,
    },
    /// STOMP 1.2: business messages are the bodies of `SEND` frames.
    Stomp {
        /// Where business messages are sent.
        destination: String,
        /// A destination subscribed to after connecting, where replies arrive.
        subscribe: Option<String>,
        /// The `heart-beat` header offered: what the client sends, what it asks for (ms).
        heart_beat: (u32, u32),
    },
    /// SignalR JSON hub protocol: business messages are the argument of a hub method.
    SignalrJson {
        /// The hub method invoked with each business message.
        method: String,
        /// Whether the client negotiates (`POST .../negotiate`) before connecting.
        negotiate: bool,
    },
}

/// What each option of [`DialectSpec`] belongs to, for errors naming where an option goes.
const OPTIONS: &[(&str, DialectName, bool)] = &[
    ("event", DialectName::Socketio, false),
    ("namespace", DialectName::Socketio, false),
    ("query", DialectName::GraphqlTransportWs, true),
    ("variable", DialectName::GraphqlTransportWs, false),
    ("destination", DialectName::Stomp, true),
    ("subscribe", DialectName::Stomp, false),
    ("heart_beat", DialectName::Stomp, false),
    ("method", DialectName::SignalrJson, true),
    ("negotiate", DialectName::SignalrJson, false),
];

/// The dialect as written in a target file: a name alone (`dialect: socketio`) or a mapping
/// with the name and the options of that dialect.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DialectSpec {
    /// The dialect.
    pub name: DialectName,
    /// socketio: the event business messages are emitted as (default `message`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// socketio: the namespace (default `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// graphql-transport-ws: the operation's document (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// graphql-transport-ws: the variable the business payload is passed as (default `input`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variable: Option<String>,
    /// stomp: where business messages are sent (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// stomp: a destination to subscribe to after connecting, where replies arrive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<String>,
    /// stomp: the `heart-beat` header offered, `cx,cy` in milliseconds (default `10000,10000`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heart_beat: Option<String>,
    /// signalr-json: the hub method invoked with each business message (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// signalr-json: negotiate before connecting (default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negotiate: Option<bool>,
}

impl DialectSpec {
    /// The options that are set, by name.
    fn set_options(&self) -> Vec<&'static str> {
        let set = [
            self.event.is_some(),
            self.namespace.is_some(),
            self.query.is_some(),
            self.variable.is_some(),
            self.destination.is_some(),
            self.subscribe.is_some(),
            self.heart_beat.is_some(),
            self.method.is_some(),
            self.negotiate.is_some(),
        ];
        OPTIONS
            .iter()
            .zip(set)
            .filter(|(_, set)| *set)
            .map(|((name, ..), _)| *name)
            .collect()
    }
}

impl TryFrom<DialectSpec> for Dialect {
    type Error = String;

    fn try_from(spec: DialectSpec) -> Result<Self, String> {
        let name = spec.name;
        for option in spec.set_options() {
            let Some((_, owner, _)) = OPTIONS.iter().find(|(o, ..)| *o == option) else {
                continue;
            };
            if *owner != name {
                return Err(format!(
                    "dialect {name}: `{option}` is an option of {owner}: expected only options of {name}{}",
                    match allowed(name) {
                        s if s.is_empty() => " (it has none)".to_string(),
                        s => format!(" ({s})"),
                    }
                ));
            }
        }
        let required = |value: Option<String>, option: &str, what: &str| {
            value
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| format!("dialect {name}: `{option}` is missing: expected {what}"))
        };
        Ok(match name {
            DialectName::Raw => Dialect::Raw,
            DialectName::Socketio => {
                let namespace = spec.namespace.unwrap_or_else(|| "/".into());
                if !namespace.starts_with('/') || namespace.contains(',') {
                    return Err(format!(
                        "dialect socketio: namespace `{namespace}` is not a namespace: expected a path such as / or /payments, without commas"
                    ));
                }
                Dialect::Socketio {
                    event: spec.event.unwrap_or_else(|| "message".into()),
                    namespace,
                }
            }
            DialectName::GraphqlTransportWs => Dialect::GraphqlTransportWs {
                query: required(
                    spec.query,
                    "query",
                    "the GraphQL document of the operation business messages are passed to, e.g. \"mutation Pay($input: PaymentInput!) { pay(input: $input) { status } }\"",
                )?,
                variable: spec.variable.unwrap_or_else(|| "input".into()),
            },
            DialectName::Stomp => Dialect::Stomp {
                destination: required(
                    spec.destination,
                    "destination",
                    "the destination business messages are sent to, e.g. /app/pay",
                )?,
                subscribe: spec.subscribe,
                heart_beat: match spec.heart_beat {
                    None => (10_000, 10_000),
                    Some(hb) => stomp::parse_heart_beat(&hb).ok_or_else(|| {
                        format!(
                            "dialect stomp: heart_beat `{hb}` is not a heart-beat: expected two numbers of milliseconds, `cx,cy`, e.g. 10000,10000"
                        )
                    })?,
                },
            },
            DialectName::SignalrJson => Dialect::SignalrJson {
                method: required(
                    spec.method,
                    "method",
                    "the hub method business messages are passed to, e.g. Pay",
                )?,
                negotiate: spec.negotiate.unwrap_or(true),
            },
        })
    }
}

/// The options of dialect `name`, comma-separated.
fn allowed(name: DialectName) -> String {
    OPTIONS
        .iter()
        .filter(|(_, owner, _)| *owner == name)
        .map(|(o, ..)| *o)
        .collect::<Vec<_>>()
        .join(", ")
}

impl From<&Dialect> for DialectSpec {
    fn from(d: &Dialect) -> Self {
        let mut spec = DialectSpec {
            name: d.name(),
            ..DialectSpec::default()
        };
        match d {
            Dialect::Raw => {}
            Dialect::Socketio { event, namespace } => {
                spec.event = Some(event.clone());
                spec.namespace = Some(namespace.clone());
            }
            Dialect::GraphqlTransportWs { query, variable } => {
                spec.query = Some(query.clone());
                spec.variable = Some(variable.clone());
            }
            Dialect::Stomp {
                destination,
                subscribe,
                heart_beat,
            } => {
                spec.destination = Some(destination.clone());
                spec.subscribe = subscribe.clone();
                spec.heart_beat = Some(format!("{},{}", heart_beat.0, heart_beat.1));
            }
            Dialect::SignalrJson { method, negotiate } => {
                spec.method = Some(method.clone());
                spec.negotiate = Some(*negotiate);
            }
        }
        spec
    }
}

impl Dialect {
    /// The dialect's name.
    pub fn name(&self) -> DialectName {
        match self {
            Dialect::Raw => DialectName::Raw,
            Dialect::Socketio { .. } => DialectName::Socketio,
            Dialect::GraphqlTransportWs { .. } => DialectName::GraphqlTransportWs,
            Dialect::Stomp { .. } => DialectName::Stomp,
            Dialect::SignalrJson { .. } => DialectName::SignalrJson,
        }
    }

    /// Whether this is the raw dialect.
    pub fn is_raw(&self) -> bool {
        matches!(self, Dialect::Raw)
    }

    /// The close codes the protocol itself defines, with their meaning: a target speaking the
    /// dialect need not declare them.
    pub fn close_codes(&self) -> &'static [(u16, CloseMeaning)] {
        match self {
            Dialect::GraphqlTransportWs { .. } => graphql_ws::CLOSE_CODES,
            _ => &[],
        }
    }

    /// Where the protocol carries the authentication payload (`auth.first_message`), for
    /// documentation and errors.
    pub fn auth_carrier(&self) -> &'static str {
        match self {
            Dialect::Raw => "a text message",
            Dialect::Socketio { .. } => {
                "the auth object of the Socket.IO CONNECT packet (a JSON object)"
            }
            Dialect::GraphqlTransportWs { .. } => "the payload of connection_init (a JSON object)",
            Dialect::Stomp { .. } => "the headers of the CONNECT frame (a JSON object of strings)",
            Dialect::SignalrJson { .. } => {
                "a hub invocation, {\"target\": METHOD, \"arguments\": [...]} (a JSON object)"
            }
        }
    }
}

impl<'de> Deserialize<'de> for Dialect {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Dialect;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "a dialect name ({}) or a mapping with `name` and the dialect's options",
                    DialectName::all()
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dialect, E> {
                let name: DialectName = v.parse().map_err(|_| {
                    E::custom(format!(
                        "unknown dialect `{v}`: expected one of {}",
                        DialectName::all()
                    ))
                })?;
                Dialect::try_from(DialectSpec {
                    name,
                    ..DialectSpec::default()
                })
                .map_err(E::custom)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Dialect, A::Error> {
                let spec =
                    DialectSpec::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Dialect::try_from(spec).map_err(serde::de::Error::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl Serialize for Dialect {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Dialect::Raw => s.serialize_str("raw"),
            d => DialectSpec::from(d).serialize(s),
        }
    }
}

impl JsonSchema for Dialect {
    fn schema_name() -> Cow<'static, str> {
        "Dialect".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let name = generator.subschema_for::<DialectName>();
        let spec = generator.subschema_for::<DialectSpec>();
        schemars::json_schema!({
            "description": "The application protocol: a name, or a mapping with `name` and that dialect's options.",
            "anyOf": [name, spec]
        })
    }
}

/// What an application close code means, for judging it like the standard code of that
/// meaning: `unauthorized`, `forbidden`, `policy_violation`, `rate_limited` and `timeout` stand
/// where 1008 does, `invalid_message` where 1003 and 1007 do, `too_big` where 1009 does,
/// `protocol_error` where 1002 does, and `internal_error` where 1011 does (a crash, never a
/// refusal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CloseMeaning {
    /// Missing or invalid credentials (graphql-ws 4401).
    Unauthorized,
    /// Authenticated but not allowed (graphql-ws 4403).
    Forbidden,
    /// Any other policy violation.
    PolicyViolation,
    /// Too many messages.
    RateLimited,
    /// The client took too long (to authenticate: graphql-ws 4408).
    Timeout,
    /// A message the service cannot accept (graphql-ws 4400).
    InvalidMessage,
    /// A message over the size limit.
    TooBig,
    /// A protocol violation.
    ProtocolError,
    /// The server failed (graphql-ws 4500): a crash, like 1011.
    InternalError,
}

impl CloseMeaning {
    /// The standard close code this meaning stands in for.
    pub fn standard_codes(self) -> &'static [u16] {
        match self {
            Self::Unauthorized
            | Self::Forbidden
            | Self::PolicyViolation
            | Self::RateLimited
            | Self::Timeout => &[1008],
            Self::InvalidMessage => &[1003, 1007],
            Self::TooBig => &[1009],
            Self::ProtocolError => &[1002],
            Self::InternalError => &[1011],
        }
    }
}

/// JSON text of `s` (a quoted, escaped string).
pub(crate) fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Dialect, String> {
        serde_yaml::from_str::<Dialect>(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn names_and_mappings_parse_with_their_options() {
        assert_eq!(parse("raw"), Ok(Dialect::Raw));
        assert_eq!(
            parse("socketio"),
            Ok(Dialect::Socketio {
                event: "message".into(),
                namespace: "/".into()
            })
        );
        assert_eq!(
            parse("{ name: stomp, destination: /app/pay, heart_beat: '500,250' }"),
            Ok(Dialect::Stomp {
                destination: "/app/pay".into(),
                subscribe: None,
                heart_beat: (500, 250)
            })
        );
        let e = parse("graphql-transport-ws").expect_err("query is required");
        assert!(e.contains("`query` is missing"), "{e}");
        let e = parse("{ name: socketio, destination: /x }").expect_err("wrong option");
        assert!(e.contains("`destination` is an option of stomp"), "{e}");
        let e = parse("socket.io").expect_err("unknown");
        assert!(e.contains("expected one of raw, socketio"), "{e}");
        let e = parse("{ name: stomp, destinaton: /x }").expect_err("typo");
        assert!(e.contains("destinaton"), "{e}");
    }

    #[test]
    fn every_dialect_round_trips_through_yaml() {
        for yaml in [
            "raw",
            "{ name: socketio, event: pay, namespace: /payments }",
            "{ name: graphql-transport-ws, query: 'mutation { pay }', variable: p }",
            "{ name: stomp, destination: /app/pay, subscribe: /user/queue/replies }",
            "{ name: signalr-json, method: Pay, negotiate: false }",
        ] {
            let d = parse(yaml).expect(yaml);
            let back = serde_yaml::to_string(&d).expect("serialize");
            assert_eq!(parse(&back), Ok(d), "{yaml} -> {back}");
        }
    }
}
