//! Secure servers that do things differently are never failed: the reference server with each
//! `--variant` (application close codes, user-bound tickets, no cookie, close on every
//! violation, unsolicited updates) passes every control of reference-fast, or skips it with the
//! reason, and its audit exits 0.

use wsaudit::config::{LoadedPolicy, SourceFile};
use wsaudit::demo::audit_server;
use wsaudit::report::{Exit, Role, Verdict};
use wsaudit::server::ServerOptions;
use wsaudit::server::variant::{Variant, Variants};

fn policy() -> LoadedPolicy {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/reference-fast.yaml");
    LoadedPolicy::parse(SourceFile::read(std::path::Path::new(path)).expect("read"))
        .expect("reference-fast loads")
}

/// Audits the reference server with `variant` and asserts no case failed or erred, every
/// skipped case says why, and returns the report.
async fn audit(variant: Variant) -> wsaudit::report::RunReport {
    wsaudit::crypto::install_crypto_provider();
    let mut opts = ServerOptions::local(policy());
    opts.variants = Variants::of([variant]);
    let (report, _) = audit_server(opts).await.expect("audit runs");
    let troubles: Vec<String> = report
        .cases
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Fail | Verdict::Error))
        .map(|c| format!("  {:?} {}: {}", c.verdict, c.case_id, c.reason))
        .collect();
    assert!(
        troubles.is_empty(),
        "--variant {variant}: a secure server was not passed:\n{}",
        troubles.join("\n")
    );
    for c in &report.cases {
        if c.verdict == Verdict::Skipped && c.role != Role::Attestation {
            assert!(
                c.reason.starts_with("not applicable: "),
                "--variant {variant}: {} skipped without a reason: {}",
                c.case_id,
                c.reason
            );
        }
    }
    assert_eq!(report.exit(), Exit::Passed, "--variant {variant}");
    report
}

fn case<'a>(r: &'a wsaudit::report::RunReport, id: &str) -> &'a wsaudit::report::CaseResult {
    r.cases
        .iter()
        .find(|c| c.case_id == id)
        .unwrap_or_else(|| panic!("no case {id}"))
}

/// What each variant's audit must show besides passing: the variant really was in force and
/// was read the way it should be. A new variant must be added here (the match is complete).
fn check_variant(variant: Variant, r: &wsaudit::report::RunReport) {
    match variant {
        Variant::AppCloseCodes => {
            // The refusals came as application codes, read as the target declares them.
            let replay = case(r, "WS-AUTH-01/TICKET-REPLAY");
            assert!(replay.reason.contains("4401"), "{}", replay.reason);
            let flood = case(r, "WS-MSG-02/RATE-FLOOD");
            assert!(flood.reason.contains("4429"), "{}", flood.reason);
        }
        Variant::UserBoundTickets => {
            let other = case(r, "WS-AUTH-01/TICKET-OTHER-SESSION");
            assert_eq!(other.verdict, Verdict::Skipped, "{}", other.reason);
            assert!(other.reason.contains("second identity"), "{}", other.reason);
        }
        Variant::NoCookie => {
            for id in ["WS-COOKIE-01/COOKIE-SET", "WS-COOKIE-01/COOKIE-ATTRIBUTES"] {
                let c = case(r, id);
                assert_eq!(c.verdict, Verdict::Skipped, "{id}: {}", c.reason);
                assert!(c.reason.contains("sets no cookie"), "{id}: {}", c.reason);
            }
            let control = r
                .controls
                .iter()
                .find(|c| c.id == "WS-COOKIE-01")
                .expect("cookie control");
            assert_eq!(control.verdict, Verdict::Skipped);
        }
        Variant::Strict => {
            let violation = r
                .cases
                .iter()
                .find(|c| c.case_id.starts_with("WS-MSG-01/MSG-SCHEMA["))
                .expect("a schema case");
            assert!(
                violation.reason.contains("closed with 1008"),
                "{}",
                violation.reason
            );
        }
        Variant::UnsolicitedUpdates => {
            // Updates flowed (the flood's connection saw data besides the warning) and were
            // taken for neither an acknowledgement nor the warning.
            let flood = case(r, "WS-MSG-02/RATE-FLOOD");
            assert_eq!(flood.verdict, Verdict::Pass, "{}", flood.reason);
            let updates = r
                .cases
                .iter()
                .flat_map(|c| &c.evidence.transcript)
                .any(|l| l.contains(r#""type":"update""#));
            assert!(
                updates,
                "no update was seen anywhere: the variant was not in force"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_secure_variant_passes_or_skips_every_control() {
    for &variant in Variant::ALL {
        let report = audit(variant).await;
        check_variant(variant, &report);
    }
}
