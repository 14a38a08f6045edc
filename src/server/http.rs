//! The HTTPS side: the WebSocket handshake (Origin check before the upgrade, credential and
//! cookie handling, extension negotiation) and the ticket endpoint, on one port.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::json;

use super::Shared;
use super::auth::{self, UrlCredential};
use super::connection::{self, Opened};
use super::cookies;
use super::flaw::Flaw;
use super::origin;
use super::variant::Variant;
use super::weaken::Defence;
use crate::dialect::DialectName;

/// Marks a request the flawed plaintext listener took for an internal client (flaw
/// `plain-no-origin`): its handshake skips the Origin check.
#[derive(Debug, Clone, Copy)]
pub struct InternalClient;

/// Path of the WebSocket endpoint.
pub const WS_PATH: &str = "/ws";
/// Path of the ticket endpoint.
pub const TICKET_PATH: &str = "/ws/ticket";
/// Path of the Socket.IO endpoint (served besides [`WS_PATH`] in that dialect).
pub const SOCKETIO_PATH: &str = "/socket.io/";
/// Path of SignalR's negotiation.
pub const NEGOTIATE_PATH: &str = "/ws/negotiate";

type Reply = Response<Full<Bytes>>;

fn plain(status: StatusCode, body: &'static str) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn header_has_token(req: &Request<Incoming>, name: header::HeaderName, token: &str) -> bool {
    req.headers().get_all(name).iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            .unwrap_or(false)
    })
}

/// Whether a request asks for a WebSocket upgrade.
pub fn is_upgrade(req: &Request<Incoming>) -> bool {
    header_has_token(req, header::UPGRADE, "websocket")
}

/// Routes one request on the TLS port (or the plaintext port when `tls` is weakened).
pub async fn route(req: Request<Incoming>, shared: Arc<Shared>) -> Result<Reply, Infallible> {
    let path = req.uri().path().to_string();
    let dialect = shared.dialect;
    // Socket.IO clients ask for `/socket.io/` (and append a slash to a path they are given).
    let socketio_path = dialect == DialectName::Socketio
        && matches!(path.as_str(), SOCKETIO_PATH | "/socket.io" | "/ws/");
    Ok(match (req.method(), path.as_str()) {
        (_, WS_PATH) if is_upgrade(&req) => handshake(req, shared),
        (_, _) if socketio_path && is_upgrade(&req) => handshake(req, shared),
        (&Method::POST, NEGOTIATE_PATH) if dialect == DialectName::SignalrJson => {
            negotiate(&shared)
        }
        // A careless server (`url-token` weakened) also takes a credential as a path segment.
        (_, p)
            if p.starts_with("/ws/")
                && is_upgrade(&req)
                && shared.weakened.is(Defence::UrlToken) =>
        {
            handshake(req, shared)
        }
        (&Method::POST, TICKET_PATH) => ticket(&req, &shared),
        (_, TICKET_PATH) => plain(StatusCode::METHOD_NOT_ALLOWED, "use POST\n"),
        (&Method::GET, "/healthz") => plain(StatusCode::OK, "ok\n"),
        (_, WS_PATH) => plain(
            StatusCode::UPGRADE_REQUIRED,
            "WebSocket endpoint: upgrade required\n",
        ),
        _ => plain(StatusCode::NOT_FOUND, "not found\n"),
    })
}

/// `POST /ws/ticket`: a bearer API token buys a short-lived single-use ticket and a session cookie.
fn ticket(req: &Request<Incoming>, shared: &Shared) -> Reply {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        // UTF-8, not only visible ASCII (`to_str`): a token may hold any character.
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .and_then(bearer_token)
        .unwrap_or("");
    let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    if !auth::secret_eq(bearer, &shared.api_token)
        && !auth::secret_eq(bearer, &shared.second_api_token)
    {
        shared.log.event(
            "ticket",
            id,
            json!({"ok": false, "reason": "bad_api_token"}),
        );
        let mut r = plain(
            StatusCode::UNAUTHORIZED,
            "a valid bearer token is required\n",
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    }
    let presented = cookies::session_from_cookies(
        req.headers()
            .get_all(header::COOKIE)
            .iter()
            .map(|v| v.as_bytes()),
    );
    let session = shared.tickets.session(presented.as_deref());
    let ticket = shared.tickets.issue(&session);
    shared.log.event("ticket", id, json!({"ok": true}));
    let body =
        json!({ "ticket": ticket, "expires_in": shared.tickets.ttl().as_secs_f64() }).to_string();
    let mut r = Response::new(Full::new(Bytes::from(body)));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if !shared.variants.is(Variant::NoCookie) {
        let samesite = if shared.flaws.is(Flaw::CookieLax) {
            crate::config::policy::SameSite::Lax
        } else {
            shared.settings.samesite
        };
        let cookie = cookies::set_cookie(&session, samesite, &shared.weakened);
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            h.insert(header::SET_COOKIE, v);
        }
    }
    r
}

/// The token of `Bearer <token>`; the scheme name is case-insensitive (RFC 7235 section 2.1)
/// and one or more spaces may follow it.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, rest) = authorization.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim_start_matches(' '))
}

/// Validates the upgrade request and, when every pre-upgrade defence agrees, answers 101.
/// `POST /ws/negotiate`: SignalR's negotiation, a single-use connection token for the
/// WebSocket transport.
fn negotiate(shared: &Shared) -> Reply {
    let token = shared.negotiations.issue();
    let body = json!({
        "negotiateVersion": 1,
        "connectionId": super::tickets::random_token(16),
        "connectionToken": token,
        "availableTransports": [
            {"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}
        ]
    });
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Whether an upgrade request meets the dialect's own conditions (Engine.IO version 4 over
/// the WebSocket transport; a SignalR connection token from a negotiation), or the refusal.
fn dialect_refusal(req: &Request<Incoming>, shared: &Shared) -> Option<Reply> {
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match shared.dialect {
        DialectName::Socketio => {
            if get("EIO") != Some(crate::dialect::socketio::ENGINE_IO_VERSION) {
                return Some(plain(
                    StatusCode::BAD_REQUEST,
                    "{\"code\":5,\"message\":\"Unsupported protocol version\"}\n",
                ));
            }
            if get("transport") != Some("websocket") {
                return Some(plain(
                    StatusCode::BAD_REQUEST,
                    "{\"code\":0,\"message\":\"Transport unknown\"}\n",
                ));
            }
            None
        }
        DialectName::SignalrJson => match get("id") {
            Some(token) if shared.negotiations.redeem(token) => None,
            _ => Some(plain(StatusCode::NOT_FOUND, "No Connection with that ID\n")),
        },
        _ => None,
    }
}

fn handshake(mut req: Request<Incoming>, shared: Arc<Shared>) -> Reply {
    let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    if let Some(refused) = dialect_refusal(&req, &shared) {
        shared.log.event(
            "handshake_refused",
            id,
            json!({"reason": "dialect", "dialect": shared.dialect.as_str()}),
        );
        return refused;
    }
    let headers = req.headers();
    let key = headers
        .get("sec-websocket-key")
        .map(|k| k.as_bytes().to_vec())
        .filter(|k| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(k)
                .map(|d| d.len() == 16)
                .unwrap_or(false)
        });
    let version_ok = headers
        .get("sec-websocket-version")
        .map(|v| v.as_bytes() == b"13")
        .unwrap_or(false);
    if req.method() != Method::GET
        || !header_has_token(&req, header::CONNECTION, "upgrade")
        || key.is_none()
    {
        shared.log.event(
            "handshake_refused",
            id,
            json!({"reason": "bad_upgrade_request"}),
        );
        return plain(
            StatusCode::BAD_REQUEST,
            "invalid WebSocket upgrade request\n",
        );
    }
    if !version_ok {
        let mut r = plain(
            StatusCode::UPGRADE_REQUIRED,
            "unsupported WebSocket version\n",
        );
        r.headers_mut()
            .insert("sec-websocket-version", HeaderValue::from_static("13"));
        return r;
    }
    let origin_header = headers.get(header::ORIGIN).map(|v| v.as_bytes());
    let origin_params = shared.settings.origin.as_ref();
    let all_origins: Vec<&[u8]> = headers
        .get_all(header::ORIGIN)
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    let internal = req.extensions().get::<InternalClient>().is_some();
    let decided = if internal {
        Ok(())
    } else {
        origin::check_flawed(&all_origins, origin_params, &shared.flaws).unwrap_or_else(|| {
            // A browser sends one Origin header; two are a forgery or a confused proxy, and
            // which one a check reads is exactly what an attacker plays with.
            if all_origins.len() > 1 && !shared.weakened.is(super::weaken::Defence::Origin) {
                return Err(origin::OriginRefusal::Unparseable);
            }
            origin::check(origin_header, origin_params, &shared.weakened)
        })
    };
    if let Err(refusal) = decided {
        let shown = origin_header.map(|o| super::log::clip(&String::from_utf8_lossy(o)));
        shared.log.event(
            "handshake_refused",
            id,
            json!({"reason": refusal.reason(), "origin": shown}),
        );
        let status = origin_params
            .and_then(|p| p.status)
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::FORBIDDEN);
        return plain(status, "origin not allowed\n");
    }

    let session =
        cookies::session_from_cookies(headers.get_all(header::COOKIE).iter().map(|v| v.as_bytes()))
            .filter(|s| shared.tickets.is_session(s));
    let mut url_cred = auth::url_credential(
        req.uri().query(),
        &shared.settings.url_params,
        &shared.tickets,
        &shared.api_token,
        &shared.weakened,
    );
    let segment = req.uri().path().strip_prefix("/ws/").map(|raw| {
        percent_encoding::percent_decode_str(raw)
            .decode_utf8_lossy()
            .into_owned()
    });
    if let Some(segment) = segment.as_deref()
        && shared.weakened.is(Defence::UrlToken)
        && (auth::secret_eq(segment, &shared.api_token)
            || shared
                .tickets
                .redeem(segment, None, &super::weaken::Weakened::none())
                .is_ok())
    {
        url_cred = UrlCredential::Accepted;
    }
    if url_cred == UrlCredential::Ignored {
        shared.log.event(
            "violation",
            id,
            json!({"reason": "credential_in_url_ignored"}),
        );
    }
    let cookie_auth = shared.weakened.is(Defence::CookieAuth) && session.is_some();
    // Flawed servers that read a credential where the policy's names do not look.
    let api_key = shared.flaws.is(Flaw::UrlApiKey)
        && url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .any(|(k, v)| k == "api_key" && auth::secret_eq(&v, &shared.api_token));
    let offered_protocols: Vec<String> = headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    let protocol_ticket = if shared.flaws.is(Flaw::UrlSubprotocol) {
        offered_protocols.iter().find(|p| {
            auth::secret_eq(p, &shared.api_token)
                || shared
                    .tickets
                    .redeem(p, None, &super::weaken::Weakened::none())
                    .is_ok()
        })
    } else {
        None
    };
    let authenticated = shared.settings.ticket.is_none()
        || url_cred == UrlCredential::Accepted
        || cookie_auth
        || api_key
        || protocol_ticket.is_some();

    let deflate = super::max_size::negotiate_deflate(
        shared.settings.deflate,
        headers
            .get_all("sec-websocket-extensions")
            .iter()
            .filter_map(|v| v.to_str().ok()),
        &shared.weakened,
    );

    // The dialect's subprotocol, when the client offers it.
    let wanted: &[&str] = match shared.dialect {
        DialectName::GraphqlTransportWs => &[crate::dialect::graphql_ws::SUBPROTOCOL],
        DialectName::Stomp => &crate::dialect::stomp::SUBPROTOCOLS,
        _ => &[],
    };
    let subprotocol = wanted
        .iter()
        .find(|w| offered_protocols.iter().any(|p| p == *w))
        .map(|w| w.to_string());

    // Flaw `protocol-subprotocol-copy`: an offer the server does not wholly speak, copied back.
    let copied = shared
        .flaws
        .is(Flaw::ProtocolSubprotocolCopy)
        .then(|| super::protocol::copied_offer(&offered_protocols, wanted))
        .flatten();

    let accept = tungstenite::handshake::derive_accept_key(&key.unwrap_or_default());
    let on_upgrade = hyper::upgrade::on(&mut req);
    let opened = Opened {
        id,
        session,
        authenticated,
        deflate,
        subprotocol: subprotocol.clone(),
    };
    shared.log.event(
        "connect",
        id,
        json!({
            "authenticated": authenticated,
            "via": if url_cred == UrlCredential::Accepted { "url" } else if cookie_auth { "cookie" } else { "none" },
            "deflate": deflate,
        }),
    );
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                shared.active.fetch_add(1, Ordering::Relaxed);
                connection::run(TokioIo::new(upgraded), shared.clone(), opened).await;
                shared.active.fetch_sub(1, Ordering::Relaxed);
            }
            Err(e) => shared.log.event(
                "close",
                id,
                json!({"reason": format!("upgrade failed: {e}")}),
            ),
        }
    });

    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert("sec-websocket-accept", v);
    }
    // The protocol's own subprotocol when it is offered; otherwise the one that carried the
    // credential is "chosen", as such servers do (or, flaw `protocol-subprotocol-copy`, an
    // offer with a protocol it does not speak is copied whole).
    if let Some(p) = copied
        .as_deref()
        .or(subprotocol.as_deref())
        .or(protocol_ticket.map(String::as_str))
        .and_then(|p| HeaderValue::from_str(p).ok())
    {
        h.insert("sec-websocket-protocol", p);
    }
    let mut extensions: Vec<String> = Vec::new();
    if deflate {
        extensions.push(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover".into(),
        );
    }
    if let Ok(v) = HeaderValue::from_str(&extensions.join(", "))
        && !extensions.is_empty()
    {
        h.insert("sec-websocket-extensions", v);
    }
    r
}

/// The plaintext listener: refuses upgrades with 426 and redirects everything else to https.
pub async fn refuse_plaintext(
    req: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Reply, Infallible> {
    let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    if is_upgrade(&req) {
        shared.log.event(
            "handshake_refused",
            id,
            json!({"reason": "plaintext_upgrade"}),
        );
        let mut r = plain(
            StatusCode::UPGRADE_REQUIRED,
            "plaintext WebSocket refused: use wss://\n",
        );
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Ok(r);
    }
    let Some(host) = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(redirect_host)
    else {
        // No usable host to redirect to: refuse instead of echoing the header into Location.
        shared.log.event(
            "handshake_refused",
            id,
            json!({"reason": "plaintext_bad_host"}),
        );
        return Ok(plain(
            StatusCode::UPGRADE_REQUIRED,
            "plaintext refused: use https://\n",
        ));
    };
    let location = format!("https://{host}:{}{}", shared.tls_port, req.uri().path());
    let mut r = plain(StatusCode::MOVED_PERMANENTLY, "use https\n");
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

/// The host of a `Host` header (an RFC 3986 authority without userinfo), normalised for a URL:
/// an IPv6 address in brackets, an IPv4 address, or a valid domain name; `None` otherwise.
pub fn redirect_host(host_header: &str) -> Option<String> {
    let authority: http::uri::Authority = host_header.parse().ok()?;
    // `Authority` accepts userinfo and does not check the port: a Host header has neither.
    if authority.as_str().contains('@') {
        return None;
    }
    let after_host = authority.as_str().strip_prefix(authority.host())?;
    if let Some(port) = after_host.strip_prefix(':')
        && !(port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok())
    {
        return None;
    }
    match url::Host::parse(authority.host()).ok()? {
        url::Host::Domain(d)
            if d.is_empty()
                || !d
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') =>
        {
            None
        }
        host => Some(host.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_host_keeps_ipv6_brackets_and_refuses_what_is_not_a_host() {
        for (header, host) in [
            ("example.com", Some("example.com")),
            ("Example.COM:8080", Some("example.com")),
            ("127.0.0.1:80", Some("127.0.0.1")),
            ("[::1]", Some("[::1]")),
            ("[::1]:8080", Some("[::1]")),
            ("[2001:DB8::1]:443", Some("[2001:db8::1]")),
            ("", None),
            ("evil.example/path", None),
            ("user@evil.example", None),
            ("a b", None),
            ("[::1", None),
            ("::1", None),
            ("example.com:port", None),
            ("example.com:99999", None),
            ("example.com:+80", None),
        ] {
            assert_eq!(redirect_host(header).as_deref(), host, "{header:?}");
        }
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER  abc"), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearerabc"), None);
    }
}
