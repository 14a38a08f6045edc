//! The target the reference server emits (`serve --emit-target`) compiles with every shipped
//! policy, and its literal API token never reaches the plan.

use std::path::PathBuf;

use wsaudit::config::{LoadedPolicy, LoadedTarget, SourceFile};
use wsaudit::plan::inputs::compile_files;
use wsaudit::server::{self, ServerOptions};

#[tokio::test]
async fn the_emitted_target_compiles_and_its_token_is_redacted() {
    let policy = LoadedPolicy::load(std::path::Path::new("policies/reference-fast.yaml"))
        .expect("policy loads");
    let handle = server::start(ServerOptions::local(policy))
        .await
        .expect("server starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let target_path = dir.path().join("target.yaml");
    handle.write_target(&target_path).expect("target written");
    let target = LoadedTarget::load(&target_path).expect("the emitted target loads");
    assert!(
        target.ca_path().is_some_and(|p| p.is_file()),
        "the CA file sits beside it"
    );
    assert!(target.secrets.leaks(&handle.api_token));
    for policy in [
        "policies/fintech.yaml",
        "policies/reference-fast.yaml",
        "policies/baseline.yaml",
    ] {
        let plan = compile_files(
            std::path::Path::new(policy),
            &target_path,
            &[] as &[PathBuf],
            &|_| None,
        )
        .unwrap_or_else(|e| panic!("{policy}: {e}"));
        let text = plan.to_yaml();
        assert!(
            !text.contains(&handle.api_token),
            "{policy}: the API token leaked"
        );
        assert!(
            text.contains("'Bearer ***'") || text.contains("'***'"),
            "{policy}: header not shown redacted"
        );
    }
}

#[test]
fn a_token_in_the_url_is_a_secret_and_redacted() {
    let target = LoadedTarget::parse(
        SourceFile::from_text(
            "t.yaml",
            "target: t\nurl: wss://h.example/ws?token=${WSAUDIT_URL_TOKEN}\nauth:\n  accepted_when: { json: { \"/type\": welcome } }\nmessages:\n  valid: ['{\"type\":\"payment\"}']\n",
        ),
        &|n| (n == "WSAUDIT_URL_TOKEN").then(|| "url-tok-123".to_string()),
    )
    .expect("target loads");
    let policy = LoadedPolicy::load(std::path::Path::new("policies/fintech.yaml")).expect("policy");
    let suites = wsaudit::config::check::load_suites(&[]).expect("suites");
    let plan = wsaudit::plan::compile(&policy, &target, &suites).expect("compiles");
    let text = plan.to_yaml();
    assert!(!text.contains("url-tok-123"));
    assert!(
        text.contains("url: wss://h.example/ws?token=***"),
        "{}",
        &text[..400]
    );
}
