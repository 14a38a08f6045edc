//! The CSWSH probe of one discovered `wss://` endpoint: a handshake with a deliberately foreign
//! Origin (the attack), and one with the page's own origin (the positive control). A refusal of
//! the foreign origin only counts when the page's origin is accepted: an endpoint that refuses
//! everyone (authentication, another app's endpoint) proves nothing about Origin checks.

use std::time::Duration;

use url::Url;

use crate::attacks::profile::{ConnectProfile, Variation};
use crate::client::{TlsClient, connect, display_url};
use crate::config::Secrets;
use crate::report::Evidence;

/// How long a courtesy close frame may take after an accepted probe.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// What a handshake with one Origin came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// 101 Switching Protocols: the connection was open.
    Upgraded,
    /// Any other status, before the upgrade.
    Refused {
        /// The status code.
        status: u16,
    },
    /// No HTTP answer (connect, TLS, timeout...).
    Failed(String),
}

/// Attempts one handshake to `url` with `origin`, recording what was sent and seen.
pub async fn handshake(
    url: &Url,
    origin: &str,
    tls: &TlsClient,
    timeout: Duration,
    ev: &mut Evidence,
) -> Seen {
    // The legitimate client's handshake (the engine's one builder) for an endpoint found on
    // a page: no credentials, the given Origin.
    let profile = ConnectProfile::for_url(url, Some(origin));
    let req = match profile.request(&Variation::legitimate(), &Secrets::new(), None) {
        Ok(r) => r,
        Err(e) => return Seen::Failed(e.to_string()),
    };
    ev.sent(req.summary());
    if timeout.is_zero() {
        return Seen::Failed("not attempted: the scan's time budget ran out".into());
    }
    match connect(&req, tls, timeout).await {
        Ok(h) => {
            ev.saw(format!(
                "{} {}",
                h.response.status_line(),
                h.response.body_preview()
            ));
            match h.connection {
                Some(conn) => {
                    // Leave politely; the probe's answer is already known.
                    let _ =
                        tokio::time::timeout(CLOSE_GRACE, conn.close(1000, "wsaudit probe")).await;
                    Seen::Upgraded
                }
                None => Seen::Refused {
                    status: h.response.status,
                },
            }
        }
        Err(e) => {
            ev.saw(format!("no handshake answer: {e}"));
            Seen::Failed(e.to_string())
        }
    }
}

/// The verdict and reason of the positive control (the page's own origin).
pub fn judge_positive(seen: &Seen, url: &Url, origin: &str) -> (crate::report::Verdict, String) {
    use crate::report::Verdict;
    let shown = display_url(url);
    match seen {
        Seen::Upgraded => (
            Verdict::Pass,
            format!("{shown} accepts the page's origin {origin} (101)"),
        ),
        Seen::Refused { status } => (
            Verdict::Error,
            format!(
                "{shown} refuses the page's own origin {origin} too (HTTP {status}): it may need \
                 credentials or serve another origin (see --origin), so its Origin check cannot be judged"
            ),
        ),
        Seen::Failed(e) => (Verdict::Error, format!("{shown} could not be reached: {e}")),
    }
}

/// The verdict and reason of the attack (a foreign origin).
pub fn judge_foreign(seen: &Seen, url: &Url, origin: &str) -> (crate::report::Verdict, String) {
    use crate::report::Verdict;
    let shown = display_url(url);
    match seen {
        Seen::Upgraded => (
            Verdict::Fail,
            format!(
                "{shown} accepted a handshake from the foreign origin {origin} (101): any web page \
                 can open it with the visitor's cookies and read the stream (CSWSH)"
            ),
        ),
        Seen::Refused { status } => (
            Verdict::Pass,
            format!(
                "{shown} refused the foreign origin {origin} with HTTP {status} before the upgrade"
            ),
        ),
        Seen::Failed(e) => (Verdict::Error, format!("{shown} could not be reached: {e}")),
    }
}
