//! The probes of `wsaudit init`: a few handshakes and opening messages, each under a deadline,
//! that tell which application protocol an endpoint speaks and whether it asks for credentials.
//! Nothing is sent that a legitimate client of that protocol would not send first.

use std::time::Duration;

use url::Url;

use super::{Credential, Findings};
use crate::client::{
    ClientError, Connection, Event, Handshake, HttpClient, HttpOptions, HttpRequestSpec, TlsClient,
    UpgradeRequest, connect,
};
use crate::dialect::{DialectName, graphql_ws, signalr, socketio, stomp};

/// Subprotocols offered by the first handshake: the dialects that a server chooses by name.
const OFFERED: [&str; 4] = [
    "graphql-transport-ws",
    "v12.stomp",
    "v11.stomp",
    "v10.stomp",
];

/// How long the probes wait for a server that speaks first (an Engine.IO open packet, a
/// greeting) or for the answer to an opening message.
const LISTEN: Duration = Duration::from_millis(1500);

/// What the probes need.
pub struct Prober {
    /// The WebSocket URL as given (`ws`/`wss`).
    pub url: Url,
    /// The Origin sent.
    pub origin: String,
    /// TLS trust for `wss://` and `https://`.
    pub tls: TlsClient,
    /// Limit of each handshake and request.
    pub timeout: Duration,
}

/// The first handshake's outcome, shared by the later probes.
struct First {
    status: Option<u16>,
    upgraded: bool,
}

impl Prober {
    /// Runs the probes in order until one identifies the dialect.
    pub async fn run(&self) -> Findings {
        let mut f = Findings::new(self.url.clone(), self.origin.clone());
        let first = self.plain(&mut f).await;
        if f.dialect.is_none() && first.status.is_some() {
            self.engine_io(&mut f).await;
        }
        if f.dialect.is_none() && first.status.is_some() && !first.upgraded {
            self.signalr(&mut f).await;
        }
        if f.dialect.is_none() && first.upgraded {
            self.stomp_without_subprotocol(&mut f).await;
        }
        if f.dialect.is_none() && first.upgraded {
            f.dialect = Some(DialectName::Raw);
            f.fact(
                "no protocol answered its opening: raw (business messages are the text messages)",
            );
        }
        f
    }

    async fn upgrade(&self, url: &Url, protocols: &[&str]) -> Result<Handshake, ClientError> {
        let mut req = UpgradeRequest::new(url.as_str())?.origin(self.origin.as_str());
        if !protocols.is_empty() {
            req = req.protocols(protocols);
        }
        connect(&req, &self.tls, self.timeout).await
    }

    /// A handshake offering the named subprotocols; the chosen one settles graphql and STOMP.
    async fn plain(&self, f: &mut Findings) -> First {
        let h = match self.upgrade(&self.url, &OFFERED).await {
            Ok(h) => h,
            Err(e) => {
                f.fact(format!("handshake with {}: {e}", f.shown_url()));
                f.unreachable = Some(e.to_string());
                return First {
                    status: None,
                    upgraded: false,
                };
            }
        };
        let status = h.response.status;
        let chosen = h
            .response
            .header("sec-websocket-protocol")
            .map(str::to_string);
        f.fact(format!(
            "handshake offering {}: HTTP {status} {}{}",
            OFFERED.join(", "),
            h.response.reason,
            chosen
                .as_deref()
                .map(|p| format!(", subprotocol {p} chosen"))
                .unwrap_or_else(|| ", no subprotocol chosen".into())
        ));
        let Some(mut conn) = h.connection else {
            if matches!(status, 401 | 403) {
                let scheme = h
                    .response
                    .header("www-authenticate")
                    .map(|w| w.split_whitespace().next().unwrap_or("").to_string());
                f.credential = Credential::OnHandshake { status, scheme };
            }
            return First {
                status: Some(status),
                upgraded: false,
            };
        };
        match chosen.as_deref() {
            Some("graphql-transport-ws") => self.graphql(f, &mut conn).await,
            Some(p) if p.ends_with(".stomp") => self.stomp(f, &mut conn, Some(p)).await,
            _ => {
                match first_text(&mut conn, LISTEN).await {
                    Heard::Text(t) => f.fact(format!("the server spoke first: {}", preview(&t))),
                    Heard::Closed(code) => {
                        f.fact(format!(
                            "the server closed the idle connection within {:.1}s ({})",
                            LISTEN.as_secs_f64(),
                            code.map_or("no status code".into(), |c| format!("close {c}"))
                        ));
                        if matches!(code, Some(1008 | 4001 | 4003 | 4401 | 4403)) {
                            f.credential = Credential::InProtocol {
                                how: format!(
                                    "an idle connection is closed {} at once: the server \
                                     probably expects a credential in its first message",
                                    code.unwrap_or_default()
                                ),
                            };
                        }
                    }
                    Heard::Nothing => {}
                }
                leave(&conn).await;
            }
        }
        First {
            status: Some(status),
            upgraded: true,
        }
    }

    /// graphql-transport-ws: `connection_init` without a payload. Only the protocol's answer
    /// (`connection_ack`, or a close with one of its 44xx codes) settles it: some servers
    /// choose whatever subprotocol is offered first.
    async fn graphql(&self, f: &mut Findings, conn: &mut Connection) {
        if conn
            .send_text(&graphql_ws::connection_init(None))
            .await
            .is_err()
        {
            f.fact("connection_init could not be sent");
            return;
        }
        match first_text(conn, LISTEN).await {
            Heard::Text(t) => match graphql_ws::parse(&t).map(|m| m.kind.into_owned()) {
                Some(k) if k == "connection_ack" => {
                    f.dialect = Some(DialectName::GraphqlTransportWs);
                    f.fact(
                        "connection_init without a payload: connection_ack (no credential asked)",
                    );
                    f.credential = Credential::NoneAsked;
                }
                _ => f.fact(format!(
                    "connection_init answered {}: not graphql-transport-ws, whatever the chosen \
                     subprotocol says",
                    preview(&t)
                )),
            },
            Heard::Closed(code) => {
                f.fact(format!(
                    "connection_init without a payload: closed {}",
                    code.map_or("without a status code".into(), |c| c.to_string())
                ));
                if let Some(c @ 4400..=4499) = code {
                    f.dialect = Some(DialectName::GraphqlTransportWs);
                    if matches!(c, 4401 | 4403) {
                        f.credential = Credential::InProtocol {
                            how: "connection_init without a payload is refused: the credential \
                                  goes in its payload (auth.first_message)"
                                .into(),
                        };
                    }
                }
            }
            Heard::Nothing => f.fact(format!(
                "connection_init without a payload: no answer within {:.1}s",
                LISTEN.as_secs_f64()
            )),
        }
        leave(conn).await;
    }

    /// STOMP: `CONNECT` without credential headers.
    async fn stomp(&self, f: &mut Findings, conn: &mut Connection, chosen: Option<&str>) {
        let host = self.url.host_str().unwrap_or("localhost").to_string();
        let connect = stomp::connect_frame(&host, (0, 0)).encode();
        if conn.send_text(&connect).await.is_err() {
            return;
        }
        if let Heard::Text(t) = first_text(conn, LISTEN).await {
            let parsed = stomp::parse(&t);
            if let Some(frame) = parsed.frames.first() {
                match frame.command.as_str() {
                    "CONNECTED" => {
                        f.dialect = Some(DialectName::Stomp);
                        f.subprotocol = chosen.map(str::to_string);
                        f.credential = Credential::NoneAsked;
                        f.fact(format!(
                            "CONNECT without credentials: CONNECTED (version {}, heart-beat {})",
                            frame.get("version").unwrap_or("1.0"),
                            frame.get("heart-beat").unwrap_or("0,0")
                        ));
                    }
                    "ERROR" => {
                        f.dialect = Some(DialectName::Stomp);
                        f.subprotocol = chosen.map(str::to_string);
                        f.credential = Credential::InProtocol {
                            how: format!(
                                "CONNECT without credentials is refused (ERROR: {}): the \
                                 credential goes in CONNECT headers (auth.first_message)",
                                frame.get("message").unwrap_or("no message header")
                            ),
                        };
                        f.fact(format!(
                            "CONNECT without credentials: ERROR {}",
                            preview(frame.get("message").unwrap_or(""))
                        ));
                    }
                    _ => {}
                }
            }
        }
        leave(conn).await;
    }

    /// STOMP on a connection that chose no subprotocol (Spring accepts both).
    async fn stomp_without_subprotocol(&self, f: &mut Findings) {
        if let Ok(Handshake {
            connection: Some(mut conn),
            ..
        }) = self.upgrade(&self.url, &[]).await
        {
            self.stomp(f, &mut conn, None).await;
        }
    }

    /// Engine.IO v4: the URL (and `/socket.io/` under a bare host) with `EIO=4`.
    async fn engine_io(&self, f: &mut Findings) {
        let mut paths = vec![self.url.path().to_string()];
        if matches!(self.url.path(), "" | "/") {
            paths.push("/socket.io/".into());
        }
        for path in paths {
            let mut url = self.url.clone();
            url.set_path(&path);
            let mut probe = url.clone();
            probe
                .query_pairs_mut()
                .append_pair("EIO", socketio::ENGINE_IO_VERSION)
                .append_pair("transport", "websocket");
            let Ok(Handshake {
                connection: Some(mut conn),
                ..
            }) = self.upgrade(&probe, &[]).await
            else {
                continue;
            };
            let open = match first_text(&mut conn, LISTEN).await {
                Heard::Text(t) => match socketio::parse_engine(&t) {
                    Some(socketio::EnginePacket::Open(data)) => socketio::parse_open(data),
                    _ => None,
                },
                _ => None,
            };
            let Some(open) = open else {
                leave(&conn).await;
                continue;
            };
            f.dialect = Some(DialectName::Socketio);
            f.url = url;
            f.fact(format!(
                "Engine.IO v4 open packet with EIO=4&transport=websocket on {path}: pingInterval \
                 {} ms, pingTimeout {} ms",
                open.ping_interval, open.ping_timeout
            ));
            if conn.send_text("40").await.is_ok() {
                match first_text(&mut conn, LISTEN).await {
                    Heard::Text(t) if t.starts_with("40") => {
                        f.fact("CONNECT 40 without auth: connected (no credential asked)");
                        f.credential = Credential::NoneAsked;
                    }
                    Heard::Text(t) if t.starts_with("44") => {
                        f.fact(format!(
                            "CONNECT 40 without auth: CONNECT_ERROR {}",
                            preview(&t)
                        ));
                        f.credential = Credential::InProtocol {
                            how: "CONNECT without an auth object is refused (CONNECT_ERROR): \
                                  the credential goes in the CONNECT packet's auth object \
                                  (auth.first_message)"
                                .into(),
                        };
                    }
                    Heard::Text(t) => f.fact(format!("CONNECT 40 answered: {}", preview(&t))),
                    _ => {}
                }
            }
            leave(&conn).await;
            return;
        }
    }

    /// SignalR: `POST <url>/negotiate?negotiateVersion=1`, then its JSON handshake.
    async fn signalr(&self, f: &mut Findings) {
        let Some(hub) = crate::client::http_url(&self.url) else {
            return;
        };
        let negotiate = signalr::negotiate_url(&hub);
        let path = negotiate.path().to_string();
        let Ok(http) = HttpClient::new(&self.tls, HttpOptions::default()) else {
            return;
        };
        let spec = HttpRequestSpec::new("POST", negotiate.as_str()).header("Origin", &self.origin);
        let Ok(response) = http.send(&spec, self.timeout).await else {
            return;
        };
        let body = String::from_utf8_lossy(&response.body).into_owned();
        let transports = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("availableTransports").cloned());
        let token = match (response.status, transports) {
            (200, Some(_)) => match signalr::negotiated_token(&body) {
                Ok(t) => t,
                Err(e) => {
                    f.fact(format!("POST {path}: {e}"));
                    return;
                }
            },
            (401 | 403, _) => {
                f.fact(format!(
                    "POST {path}?negotiateVersion=1: HTTP {} (a SignalR hub that demands \
                     credentials answers so; so does any protected path)",
                    response.status
                ));
                return;
            }
            _ => return,
        };
        f.dialect = Some(DialectName::SignalrJson);
        f.fact(format!(
            "POST {path}?negotiateVersion=1: a SignalR negotiate response with a connection token"
        ));
        let mut url = self.url.clone();
        url.query_pairs_mut().append_pair("id", &token);
        let Ok(Handshake {
            connection: Some(mut conn),
            ..
        }) = self.upgrade(&url, &[]).await
        else {
            f.fact("the upgrade with the negotiated id failed");
            return;
        };
        conn.add_secret(&token);
        if conn.send_text(signalr::HANDSHAKE).await.is_ok() {
            match first_text(&mut conn, LISTEN).await {
                Heard::Text(t) => {
                    let ok = signalr::records(&t)
                        .first()
                        .and_then(|r| signalr::parse(r))
                        .is_some_and(|r| r.error.is_none() && r.kind.is_none());
                    f.fact(if ok {
                        "the JSON hub protocol handshake is accepted ({})".to_string()
                    } else {
                        format!("the JSON hub protocol handshake answered: {}", preview(&t))
                    });
                }
                _ => f.fact("the JSON hub protocol handshake got no answer"),
            }
        }
        leave(&conn).await;
    }
}

/// What a connection said first.
enum Heard {
    Text(String),
    Closed(Option<u16>),
    Nothing,
}

/// The first text message within `wait` (pings answered and skipped).
async fn first_text(conn: &mut Connection, wait: Duration) -> Heard {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Heard::Nothing;
        }
        match conn.read_event(left).await {
            Event::Text(t) => return Heard::Text(t),
            Event::Close { code, .. } => return Heard::Closed(code),
            Event::Dropped { .. } | Event::ReaderFailed { .. } | Event::Violation(_) => {
                return Heard::Closed(None);
            }
            Event::Timeout => return Heard::Nothing,
            Event::Ping(_) | Event::Pong(_) | Event::Binary(_) | Event::Skipped { .. } => {}
        }
    }
}

/// Closes politely, within a second.
async fn leave(conn: &Connection) {
    let _ = tokio::time::timeout(Duration::from_secs(1), conn.close(1000, "wsaudit init")).await;
}

/// A short, printable preview of what a server sent (it goes into a comment of the file).
fn preview(text: &str) -> String {
    crate::config::secrets::preview(text.as_bytes(), 80)
}
