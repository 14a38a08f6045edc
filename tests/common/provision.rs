//! What tests need from package registries, provisioned by the tests themselves: a Python venv
//! from `tests/env/requirements.txt` (exact `==` pins) and `node_modules` from
//! `tests/env/package-lock.json` (`npm ci`), installed once into `target/test-env/` and reused
//! without network afterwards. A file lock keeps concurrent test binaries from installing at
//! the same time; a stamp holding the exact pin file reinstalls only when the pins change.
//!
//! What no registry gives without root (Chromium) is a [`SystemTool`]: a test that needs one
//! says what is missing and how to install it, and is skipped only where `CI` is unset.
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where provisioned environments live: `target/test-env/`.
pub fn env_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target>/tmp` for integration tests.
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(&tmp).join("test-env")
}

fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/env")
}

/// Holds `target/test-env/.lock` exclusively while installing or checking an environment.
fn exclusive() -> File {
    let dir = env_dir();
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let lock = File::create(dir.join(".lock")).expect("create the provisioning lock file");
    lock.lock().expect("lock the provisioning lock file");
    lock
}

/// A line on the terminal even when the test harness captures output (`eprintln!` is
/// captured for passing tests; a direct write to stderr is not).
pub fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Runs an install command, failing the test with its output when it fails.
fn run(what: &str, command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Installs into `dir` unless its stamp already holds exactly `pins`; `install` does the work.
fn provision(dir: &Path, pins: &str, announce: &str, install: impl FnOnce(&Path)) {
    let _lock = exclusive();
    let stamp = dir.join(".wsaudit-installed-from");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == pins) {
        return;
    }
    say(announce);
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .unwrap_or_else(|e| panic!("cannot remove stale {}: {e}", dir.display()));
    }
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    install(dir);
    std::fs::write(&stamp, pins).expect("write the provisioning stamp");
}

/// The Python interpreter of the tests' venv (`target/test-env/venv`), with every package of
/// `tests/env/requirements.txt` installed. The base interpreter is `$WSAUDIT_PYTHON` or
/// `python3`.
pub fn python() -> PathBuf {
    let requirements = source_dir().join("requirements.txt");
    let pins = std::fs::read_to_string(&requirements).expect("read tests/env/requirements.txt");
    let packages: Vec<&str> = pins
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let venv = env_dir().join("venv");
    let base = std::env::var("WSAUDIT_PYTHON").unwrap_or_else(|_| "python3".into());
    provision(
        &venv,
        &pins,
        &format!(
            "provisioning: installing {} into {} from PyPI (tests/env/requirements.txt: \
             XSD validation and the Python interop servers), once",
            packages.join(" "),
            venv.display()
        ),
        |dir| {
            run(
                "creating the test venv",
                Command::new(&base).arg("-m").arg("venv").arg(dir),
            );
            run(
                "pip install -r tests/env/requirements.txt",
                Command::new(dir.join("bin/python"))
                    .args([
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                    ])
                    .args(["--no-input", "-r"])
                    .arg(&requirements),
            );
        },
    );
    venv.join("bin/python")
}

/// The `node_modules` directory of `tests/env/package-lock.json`, installed with `npm ci`.
/// Scripts find the packages through `NODE_PATH` (see [`node`]).
pub fn node_modules() -> PathBuf {
    let src = source_dir();
    let lock = std::fs::read_to_string(src.join("package-lock.json"))
        .expect("read tests/env/package-lock.json");
    let dir = env_dir().join("node");
    provision(
        &dir,
        &lock,
        &format!(
            "provisioning: npm ci of tests/env/package-lock.json into {} (the Node interop \
             servers and the official protocol clients), once",
            dir.display()
        ),
        |dir| {
            for f in ["package.json", "package-lock.json"] {
                std::fs::copy(src.join(f), dir.join(f)).expect("copy the npm manifest");
            }
            run(
                "npm ci",
                Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                    .current_dir(dir),
            );
        },
    );
    dir.join("node_modules")
}

/// A `node` command that resolves `require()` from the provisioned `node_modules`.
pub fn node() -> Command {
    let modules = node_modules();
    let mut command = Command::new("node");
    command.env("NODE_PATH", modules);
    command
}

/// Validates `xml` against the XSD at `schema` with lxml from the provisioned venv; `Err`
/// holds every schema error.
pub fn validate_xsd(schema: &Path, xml: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("document.xml");
    std::fs::write(&file, xml).expect("write the document");
    let output = Command::new(python())
        .arg(source_dir().join("validate_xsd.py"))
        .arg(schema)
        .arg(&file)
        .output()
        .expect("run validate_xsd.py");
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// Asserts `xml` is valid JUnit: `tests/schemas/junit-10.xsd` (the Jenkins xunit schema).
#[track_caller]
pub fn assert_valid_junit(xml: &str) {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas/junit-10.xsd");
    if let Err(errors) = validate_xsd(&schema, xml) {
        panic!(
            "the JUnit report is not valid against junit-10.xsd:\n{errors}\n--- report ---\n{xml}"
        );
    }
}

/// A program a test needs that no package registry provides without root.
pub struct SystemTool {
    /// The command to run.
    pub program: String,
    /// What the test checks with it.
    pub purpose: &'static str,
    /// How to install it.
    pub install: &'static str,
}

impl SystemTool {
    /// Whether the program runs (`PROGRAM --version` succeeds).
    pub fn present(&self) -> bool {
        Command::new(&self.program)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// `true` when the test can go on. Without the tool: where `CI` is set the test fails,
    /// saying what is missing; elsewhere it prints why it is skipped and returns `false`.
    #[track_caller]
    pub fn available_or_skip(&self, test: &str) -> bool {
        if self.present() {
            return true;
        }
        let why = format!(
            "`{}` is not installed or does not run; {test} needs it to {}. Install it with \
             `{}`.",
            self.program, self.purpose, self.install
        );
        if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
            panic!("CI is set, so this test is mandatory: {why}");
        }
        say(&format!(
            "SKIPPED {test}: {why} (mandatory where CI is set)"
        ));
        false
    }
}
