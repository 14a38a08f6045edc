//! Synthetic reports for tests and for previewing the report formats without a target: every
//! verdict appears, and the target-controlled text is as hostile as a server could make it.

use std::time::Duration;

use super::model::{CaseResult, ControlResult, Evidence, Role, RunReport, Summary, Verdict};
use super::waivers::{Waiver, Waivers, apply};
use crate::config::Severity;

/// Text a hostile target could put in a reply: characters XML forbids, a CDATA terminator,
/// closing tags, quotes, a script, a right-to-left override and non-ASCII letters.
pub const HOSTILE_TEXT: &str = "nul\u{0} bel\u{7} esc\u{1b}[31m del\u{7f} c1\u{85} \
nonchar\u{fffe}\u{ffff} ]]> </failure></testcase></testsuites> <![CDATA[x]]> \"dq\" 'sq' \
<script>alert(1)</script> <img src=x onerror=alert(2)> &amp; \u{202e}gnp.exe ünïcødé 🦀";

fn control(
    id: &str,
    title: &str,
    check: &str,
    severity: Severity,
    line: Option<usize>,
) -> ControlResult {
    ControlResult {
        id: id.into(),
        title: title.into(),
        check: check.into(),
        severity,
        refs: vec!["pci-dss-4.0:4.2.1".into(), "cwe:1385".into()],
        line,
        verdict: Verdict::Pass,
    }
}

#[allow(clippy::too_many_arguments)] // a table row, read positionally
fn case(
    control_id: &str,
    case_id: &str,
    family: &str,
    role: Role,
    verdict: Verdict,
    reason: &str,
    transcript: &[&str],
    started_ms: u64,
    duration_ms: u64,
) -> CaseResult {
    CaseResult {
        control_id: control_id.into(),
        case_id: case_id.into(),
        family: family.into(),
        name: case_id.replace(['-', '.'], " "),
        role,
        verdict,
        reason: reason.into(),
        // Built directly, not through `Evidence::saw`, so reporters are tested on text the
        // model's own filter would have cleaned.
        evidence: Evidence::from_lines(transcript.iter().map(|l| (*l).to_string()).collect()),
        started: Duration::from_millis(started_ms),
        duration: Duration::from_millis(duration_ms),
    }
}

/// A finished report with at least one case of every verdict (the waived one through a real
/// [`apply`]) and [`HOSTILE_TEXT`] in reasons, names and evidence.
pub fn hostile_report() -> RunReport {
    let hostile_reply = format!("< text {HOSTILE_TEXT}");
    let mut report = RunReport {
        wsaudit_version: env!("CARGO_PKG_VERSION").into(),
        policy: "fintech-websocket".into(),
        policy_file: "policies/fintech.yaml".into(),
        target: "staging-payments".into(),
        target_url: "wss://staging.example.com/ws".into(),
        started_at: "2025-01-02T03:04:05Z".into(),
        wall_time: Duration::from_millis(4_250),
        controls: vec![
            control(
                "WS-TLS-01",
                "WebSocket traffic uses TLS; plaintext upgrades are refused",
                "transport.tls",
                Severity::Critical,
                Some(6),
            ),
            control(
                "WS-ORIGIN-01",
                "Handshakes from origins outside the allowlist are refused before upgrade",
                "origin.allowlist",
                Severity::High,
                Some(12),
            ),
            control(
                "WS-MSG-03",
                "Messages above the size limit close the connection",
                "messages.max_size",
                Severity::Medium,
                None,
            ),
            control(
                "WS-HB-01",
                "Stale connections are closed after missed heartbeats",
                "heartbeat",
                Severity::Low,
                Some(30),
            ),
            control(
                "WS-LOG-01",
                "Lifecycle events are logged",
                "attestation",
                Severity::Low,
                Some(40),
            ),
        ],
        cases: vec![
            case(
                "WS-TLS-01",
                "transport.plaintext-upgrade",
                "transport",
                Role::Attack,
                Verdict::Pass,
                "plaintext upgrade refused with 426",
                &["> GET /ws (ws://)", "< HTTP/1.1 426 Upgrade Required"],
                0,
                120,
            ),
            case(
                "WS-TLS-01",
                "transport.tls-version",
                "transport",
                Role::Attack,
                Verdict::Pass,
                "TLS 1.3 negotiated",
                &[],
                10,
                200,
            ),
            case(
                "WS-ORIGIN-01",
                "origin.allowed-positive",
                "origin",
                Role::Positive,
                Verdict::Pass,
                "allowed origin upgraded (101)",
                &[
                    "> Origin: https://app.example.com",
                    "< 101 Switching Protocols",
                ],
                150,
                300,
            ),
            case(
                "WS-ORIGIN-01",
                "origin.suffix-confusion",
                "origin",
                Role::Attack,
                Verdict::Fail,
                &format!("foreign origin was upgraded (101): {HOSTILE_TEXT}"),
                &[
                    "> Origin: https://app.example.com.evil.example",
                    "< 101 Switching Protocols",
                    &hostile_reply,
                    "# decided after 0.3s",
                ],
                450,
                900,
            ),
            case(
                "WS-ORIGIN-01",
                "origin.null",
                "origin",
                Role::Attack,
                Verdict::Error,
                &format!("target unreachable: {HOSTILE_TEXT}"),
                &[
                    "> Origin: null",
                    &hostile_reply,
                    "# connect timed out after 5s",
                ],
                500,
                2_000,
            ),
            case(
                "WS-MSG-03",
                "messages.deflate-bomb",
                "messages",
                Role::Attack,
                Verdict::Skipped,
                "permessage-deflate was not negotiated",
                &[],
                2_600,
                50,
            ),
            case(
                "WS-MSG-03",
                "messages.fragmented",
                "messages",
                Role::Attack,
                Verdict::Skipped,
                "not run: target down after messages.deep-json",
                &[],
                2_650,
                0,
            ),
            case(
                "WS-HB-01",
                "heartbeat.stale-connection",
                "heartbeat",
                Role::Attack,
                Verdict::Fail,
                "connection still open 95s after the last pong",
                &["# stopped answering pings", "< ping", "< ping"],
                2_700,
                1_400,
            ),
            case(
                "WS-LOG-01",
                "attestation.lifecycle-logging",
                "attestation",
                Role::Attestation,
                Verdict::Skipped,
                "not black-box testable: attest in the deployment review",
                &["# attestation control: reported as skipped, never as pass"],
                4_100,
                0,
            ),
        ],
        summary: Summary::default(),
        not_run: vec!["protocol.reserved-opcode".into()],
        target_down_after: Some("messages.deep-json".into()),
    };
    report.finish();
    let waivers = Waivers {
        path: "waivers.yaml".into(),
        waivers: vec![Waiver {
            id: "WS-HB-01".into(),
            justification: "load balancer closes idle connections; tracked in SEC-42".into(),
            expires: Some(time::macros::date!(2099 - 12 - 31)),
        }],
    };
    // The waiver is live on that day, so there is no warning to surface.
    let _warnings = apply(&mut report, &waivers, time::macros::date!(2025 - 01 - 02));
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incomplete_run_exits_130_whatever_finished() {
        let mut r = hostile_report();
        assert!(r.summary.failed > 0 && r.summary.errors > 0 && !r.not_run.is_empty());
        assert_eq!(r.exit_code(), crate::report::model::EXIT_INTERRUPTED);
        r.not_run.clear();
        assert_eq!(r.exit_code(), 1);
        r.cases.retain(|c| c.verdict != Verdict::Fail);
        r.finish();
        assert_eq!(r.exit_code(), 3);
        r.cases.retain(|c| c.verdict != Verdict::Error);
        r.finish();
        assert_eq!(r.exit_code(), 0);
    }

    #[test]
    fn hostile_report_has_every_verdict() {
        let report = hostile_report();
        for verdict in [
            Verdict::Pass,
            Verdict::Fail,
            Verdict::Error,
            Verdict::Skipped,
            Verdict::Waived,
        ] {
            assert!(
                report.cases.iter().any(|c| c.verdict == verdict),
                "no {verdict:?} case"
            );
        }
        assert_eq!(report.summary.waived, 1);
    }
}
