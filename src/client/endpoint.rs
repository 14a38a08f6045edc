//! Where a URL points: parsing and checking it, resolving its host and opening TCP to it
//! under a deadline. Shared by the TLS probe, the handshake and HTTP.

use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use url::{Host, Url};

use super::{ClientError, Deadline, Phase, display_url};
use crate::config::secrets::preview;

/// Parses a URL and checks it names a host with a scheme the client speaks.
pub fn parse_url(text: &str) -> Result<Url, ClientError> {
    let invalid = |reason: String| ClientError::InvalidUrl {
        url: Url::parse(text).map_or_else(|_| preview(text.as_bytes(), 80), |u| display_url(&u)),
        reason,
    };
    let url = Url::parse(text).map_err(|e| invalid(e.to_string()))?;
    if !matches!(url.scheme(), "ws" | "wss" | "http" | "https") {
        return Err(invalid(format!(
            "scheme `{}` is not ws, wss, http or https",
            url.scheme()
        )));
    }
    if url.host().is_none() {
        return Err(invalid("no host".into()));
    }
    Ok(url)
}

/// `url` as the HTTP URL of the same host, port, path and query: `ws` as `http`, `wss` as
/// `https` (`http`/`https` as they are); `None` for any other scheme. A login, a SignalR
/// negotiation or a cookie's domain and path match go to this URL of a WebSocket endpoint.
pub fn http_url(url: &Url) -> Option<Url> {
    let scheme = match url.scheme() {
        "ws" => "http",
        "wss" => "https",
        "http" | "https" => return Some(url.clone()),
        _ => return None,
    };
    let mut u = url.clone();
    // `set_scheme` keeps an explicit port; a default port of the old scheme stays implicit.
    let port = u.port();
    u.set_scheme(scheme).ok()?;
    u.set_port(port).ok()?;
    Some(u)
}

/// Where to connect: host, port, and whether TLS is spoken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The host as written in the URL.
    pub host: Host<String>,
    /// The port (the scheme's default when the URL has none).
    pub port: u16,
    /// Whether the scheme is `wss` or `https`.
    pub tls: bool,
}

impl Endpoint {
    /// The endpoint a URL names.
    pub fn of(url: &Url) -> Result<Self, ClientError> {
        let tls = matches!(url.scheme(), "wss" | "https");
        let host = url
            .host()
            .map(|h| h.to_owned())
            .ok_or_else(|| ClientError::InvalidUrl {
                url: display_url(url),
                reason: "no host".into(),
            })?;
        let port = url
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 });
        Ok(Self { host, port, tls })
    }

    /// The name the server certificate must match.
    pub fn server_name(&self) -> Result<ServerName<'static>, ClientError> {
        match &self.host {
            Host::Domain(d) => {
                ServerName::try_from(d.clone()).map_err(|e| ClientError::InvalidUrl {
                    url: d.clone(),
                    reason: format!("not a valid TLS server name: {e}"),
                })
            }
            Host::Ipv4(ip) => Ok(ServerName::IpAddress(std::net::IpAddr::V4(*ip).into())),
            Host::Ipv6(ip) => Ok(ServerName::IpAddress(std::net::IpAddr::V6(*ip).into())),
        }
    }

    /// Resolves the host (when it is a name) and connects to the first address that answers.
    pub async fn connect_tcp(&self, deadline: &Deadline) -> Result<TcpStream, ClientError> {
        let addrs: Vec<std::net::SocketAddr> = match &self.host {
            Host::Ipv4(ip) => vec![(*ip, self.port).into()],
            Host::Ipv6(ip) => vec![(*ip, self.port).into()],
            Host::Domain(d) => {
                let resolve_err = |reason: String| ClientError::Resolve {
                    host: d.clone(),
                    reason,
                };
                let found = deadline
                    .run(Phase::Resolve, async {
                        tokio::net::lookup_host((d.as_str(), self.port))
                            .await
                            .map_err(|e| resolve_err(e.to_string()))
                    })
                    .await?
                    .collect::<Vec<_>>();
                if found.is_empty() {
                    return Err(resolve_err("no addresses".into()));
                }
                found
            }
        };
        let mut last = None;
        for addr in addrs {
            let attempt = deadline
                .run(Phase::Connect, async {
                    TcpStream::connect(addr).await.map_err(|e| {
                        if e.kind() == std::io::ErrorKind::ConnectionRefused {
                            ClientError::ConnectRefused {
                                addr: addr.to_string(),
                            }
                        } else {
                            ClientError::Io {
                                step: Phase::Connect,
                                reason: format!("{addr}: {e}"),
                            }
                        }
                    })
                })
                .await;
            match attempt {
                Ok(tcp) => {
                    // Frames are small and latency-sensitive (pongs, close replies).
                    let _ = tcp.set_nodelay(true);
                    return Ok(tcp);
                }
                Err(e @ ClientError::Timeout { .. }) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(ClientError::Io {
            step: Phase::Connect,
            reason: "no address to connect to".into(),
        }))
    }
}
