//! The test environments provision themselves (issue: `cargo test` on a fresh machine): the venv
//! and `node_modules` the helper installs really hold the pinned packages, and a second call
//! reuses them instead of reinstalling.

#[path = "common/provision.rs"]
mod provision;

use std::process::Command;

/// Runs `command` and asserts it succeeds printing `expected` (the installed version of `name`).
#[track_caller]
fn assert_prints(mut command: Command, name: &str, expected: &str) {
    let out = command.output().expect("run the interpreter");
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        expected,
        "{name}"
    );
}

#[test]
fn the_venv_holds_the_pinned_python_packages() {
    let python = provision::python();
    let pins = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/env/requirements.txt"
    ))
    .expect("requirements");
    let stamp_before = std::fs::metadata(provision::env_dir().join("venv/.wsaudit-installed-from"))
        .and_then(|m| m.modified())
        .expect("stamp written");
    for pin in pins
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (name, version) = pin.split_once("==").expect("every pin is exact (==)");
        let mut command = Command::new(&python);
        command.args([
            "-c",
            "import sys, importlib.metadata as m; print(m.version(sys.argv[1]))",
            name,
        ]);
        assert_prints(command, name, version);
    }
    // Reused, not reinstalled.
    assert_eq!(provision::python(), python);
    let stamp_after = std::fs::metadata(provision::env_dir().join("venv/.wsaudit-installed-from"))
        .and_then(|m| m.modified())
        .expect("stamp kept");
    assert_eq!(stamp_before, stamp_after, "the venv was installed again");
}

#[test]
fn node_modules_hold_the_locked_packages() {
    let modules = provision::node_modules();
    let lock: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/env/package-lock.json"
        ))
        .expect("lockfile"),
    )
    .expect("lockfile is JSON");
    let direct = lock["packages"][""]["dependencies"]
        .as_object()
        .expect("dependencies");
    assert!(!direct.is_empty());
    for (name, _) in direct {
        let locked = lock["packages"][format!("node_modules/{name}")]["version"]
            .as_str()
            .expect("locked version");
        // Read from the file: packages with an `exports` map (@stomp/stompjs) do not let
        // `require` reach their package.json.
        let manifest: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(modules.join(name).join("package.json"))
                .unwrap_or_else(|e| panic!("{name}: {e}")),
        )
        .unwrap_or_else(|e| panic!("{name}/package.json: {e}"));
        assert_eq!(manifest["version"].as_str(), Some(locked), "{name}");
        // And Node resolves it from NODE_PATH.
        let mut command = provision::node();
        command.args([
            "-e",
            "require.resolve(process.argv[1]); console.log('ok')",
            name,
        ]);
        assert_prints(command, name, "ok");
    }
}

#[test]
fn a_bad_document_is_refused_with_its_errors() {
    let schema =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas/junit-10.xsd");
    let errors = provision::validate_xsd(&schema, "<testsuites><bogus/></testsuites>")
        .expect_err("an element the schema does not know");
    assert!(errors.contains("bogus"), "{errors}");
    provision::validate_xsd(&schema, "<testsuites/>").expect("an empty report is valid");
}
