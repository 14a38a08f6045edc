//! Transport: the TLS listener (rustls, TLS 1.3 and 1.2 or what the policy requires) and the
//! plaintext listener that refuses upgrades. Weaken switches: `tls` (the plaintext listener serves
//! the app), `tls-version` (TLS 1.2 only), `tls-cert` (certificate for another host).

use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::Shared;
use super::flaw::Flaw;
use super::http;
use super::weaken::{Defence, Weakened};
use crate::config::policy::TlsVersion;
use crate::crypto::{CertifiedKey, TlsError, provider};

/// Deadline for a TLS handshake and for reading request headers (slowloris guard).
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);

/// Builds the server's rustls configuration.
pub fn server_config(
    cert: CertifiedKey,
    min: TlsVersion,
    weakened: &Weakened,
) -> Result<rustls::ServerConfig, TlsError> {
    let versions: &[&rustls::SupportedProtocolVersion] = if weakened.is(Defence::TlsVersion) {
        &[&rustls::version::TLS12]
    } else if min == TlsVersion::V1_3 {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)?
        .with_no_client_auth()
        .with_single_cert(cert.chain, cert.key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn http1() -> hyper::server::conn::http1::Builder {
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_DEADLINE)
        .max_buf_size(16 * 1024);
    b
}

/// Accepts TLS connections forever, serving the app on each.
pub async fn serve_tls(listener: TcpListener, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    loop {
        let Ok((tcp, _peer)) = listener.accept().await else {
            // Out of file descriptors or similar: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_DEADLINE, acceptor.accept(tcp)).await
            else {
                return;
            };
            let svc = service_fn(move |req| http::route(req, shared.clone()));
            let _ = http1()
                .serve_connection(TokioIo::new(tls), svc)
                .with_upgrades()
                .await;
        });
    }
}

/// Accepts plaintext connections: refuses upgrades, unless `tls` is weakened.
pub async fn serve_plain(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((tcp, _peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let io = TokioIo::new(tcp);
            if shared.weakened.is(Defence::Tls) {
                let svc = service_fn(move |req| http::route(req, shared.clone()));
                let _ = http1().serve_connection(io, svc).with_upgrades().await;
            } else if shared.flaws.is(Flaw::PlainNoOrigin) {
                // Refuses browsers (they send an Origin) but serves "internal" clients.
                let svc = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                    let shared = shared.clone();
                    async move {
                        if !req.headers().contains_key("origin") {
                            // Taken for an internal client (any request, a SignalR negotiation
                            // as much as an upgrade): served, and not asked for an Origin.
                            req.extensions_mut().insert(http::InternalClient);
                            http::route(req, shared).await
                        } else {
                            http::refuse_plaintext(req, shared).await
                        }
                    }
                });
                let _ = http1().serve_connection(io, svc).with_upgrades().await;
            } else {
                let svc = service_fn(move |req| http::refuse_plaintext(req, shared.clone()));
                let _ = http1().serve_connection(io, svc).await;
            }
        });
    }
}
