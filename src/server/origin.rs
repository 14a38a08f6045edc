//! Origin allowlist (CSWSH defence): checked during the handshake, refused with 403 before the
//! upgrade. Matching is exact on scheme, host and port.

use crate::config::policy::{MissingOrigin, OriginParams};
use crate::config::values::Origin;

use super::flaw::{Flaw, Flaws};
use super::weaken::{Defence, Weakened};

/// Why a handshake's Origin was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginRefusal {
    /// No Origin header and the policy rejects that.
    Missing,
    /// The header is not a serialised origin (e.g. `null`, a path, bad bytes).
    Unparseable,
    /// A well-formed origin that is not on the allowlist.
    NotAllowed,
}

impl OriginRefusal {
    /// Short reason for the log.
    pub fn reason(&self) -> &'static str {
        match self {
            OriginRefusal::Missing => "origin_missing",
            OriginRefusal::Unparseable => "origin_unparseable",
            OriginRefusal::NotAllowed => "origin_not_allowed",
        }
    }
}

/// Decides whether a handshake's Origin header value may open a WebSocket.
///
/// Invariant (fuzzed): an accepted header is byte-equal to the serialisation of an allowed origin.
pub fn check(
    header: Option<&[u8]>,
    params: Option<&OriginParams>,
    weakened: &Weakened,
) -> Result<(), OriginRefusal> {
    let Some(params) = params else { return Ok(()) };
    if weakened.is(Defence::Origin) {
        // A careless server: whatever the browser sent is fine.
        return Ok(());
    }
    let Some(raw) = header else {
        return match params.missing_origin {
            MissingOrigin::Allow => Ok(()),
            MissingOrigin::Reject => Err(OriginRefusal::Missing),
        };
    };
    // Browsers send the RFC 6454 serialisation exactly (lower case, no default port), so the
    // header must equal an allowed origin's serialisation byte for byte: no parsing, hence no
    // parser differential, and no substring, prefix, suffix or pattern match can ever accept.
    if params
        .allowed
        .iter()
        .any(|o| o.to_string().as_bytes() == raw)
    {
        return Ok(());
    }
    let parses = std::str::from_utf8(raw)
        .ok()
        .and_then(|t| t.parse::<Origin>().ok())
        .is_some();
    Err(if parses {
        OriginRefusal::NotAllowed
    } else {
        OriginRefusal::Unparseable
    })
}

/// The decision of an origin check made subtly wrong by `flaws`, when one of the origin flaws
/// is on; `headers` holds every Origin header of the request.
pub fn check_flawed(
    headers: &[&[u8]],
    params: Option<&OriginParams>,
    flaws: &Flaws,
) -> Option<Result<(), OriginRefusal>> {
    let params = params?;
    let allowed: Vec<String> = params.allowed.iter().map(ToString::to_string).collect();
    let text = |raw: &[u8]| String::from_utf8_lossy(raw).into_owned();
    let verdict = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(OriginRefusal::NotAllowed)
        }
    };
    if flaws.is(Flaw::OriginSubstring) {
        // `if origin in allowed_origin`: a part of an allowed origin passes.
        let first = headers.first().map(|h| text(h))?;
        return Some(verdict(
            !first.is_empty() && allowed.iter().any(|a| a.contains(first.as_str())),
        ));
    }
    if flaws.is(Flaw::OriginAnyHeader) {
        // Every header, and every comma-separated part, looked at; one allowed is enough.
        let any = headers.iter().any(|h| {
            text(h)
                .split(',')
                .any(|part| allowed.iter().any(|a| a == part.trim()))
        });
        return Some(verdict(any));
    }
    if flaws.is(Flaw::OriginHostOnly) {
        // The host compared, the scheme and the port forgotten.
        let first = headers.first().map(|h| text(h))?;
        let host = |o: &str| {
            url::Url::parse(o)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
        };
        let got = host(&first);
        return Some(verdict(
            got.is_some() && params.allowed.iter().any(|a| Some(a.host.clone()) == got),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> OriginParams {
        OriginParams {
            allowed: vec!["https://app.example.com".parse().expect("origin")],
            missing_origin: MissingOrigin::Reject,
            status: None,
        }
    }

    #[test]
    fn only_exact_origins_pass() {
        let p = params();
        let w = Weakened::none();
        assert_eq!(
            check(Some(b"https://app.example.com"), Some(&p), &w),
            Ok(())
        );
        // Not what a browser sends for this origin, so not accepted either.
        assert!(check(Some(b"https://app.example.com:443"), Some(&p), &w).is_err());
        assert!(check(Some(b"https://APP.example.com"), Some(&p), &w).is_err());
        for bad in [
            "https://app.example.com.evil.example",
            "https://evilapp.example.com",
            "https://appXexample.com",
            "https://sub.app.example.com",
            "http://app.example.com",
            "https://app.example.com:8443",
            "null",
            "https://app.example.com/",
        ] {
            assert!(
                check(Some(bad.as_bytes()), Some(&p), &w).is_err(),
                "{bad} accepted"
            );
        }
        assert_eq!(check(None, Some(&p), &w), Err(OriginRefusal::Missing));
        assert_eq!(
            check(Some(b"null"), Some(&p), &Weakened::of([Defence::Origin])),
            Ok(())
        );
    }
}
