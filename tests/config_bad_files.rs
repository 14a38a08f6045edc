//! The corpus of bad files: each `tests/bad_files/NAME.yaml` must produce exactly the error
//! text in `NAME.err` (file, line, column, caret and what was expected). Run with
//! `WSAUDIT_BLESS=1` to rewrite the `.err` files after a deliberate change, then review them.

use std::path::{Path, PathBuf};

use wsaudit::config::check::{check_file, load_suites};

fn env(name: &str) -> Option<String> {
    (name == "WSAUDIT_TEST_TOKEN").then(|| "tok-123".to_string())
}

fn bad_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir("tests/bad_files")
        .expect("tests/bad_files exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| Path::new("tests/bad_files").join(p.file_name().expect("file name")))
        .collect();
    files.sort();
    files
}

#[test]
fn every_bad_file_produces_its_exact_error() {
    let suites = load_suites(&[]).expect("shipped suites are valid");
    let bless = std::env::var_os("WSAUDIT_BLESS").is_some();
    let files = bad_files();
    assert!(
        files.len() >= 30,
        "the corpus has only {} files",
        files.len()
    );
    let mut mismatches = Vec::new();
    for file in &files {
        let actual = match check_file(file, &suites, &env) {
            Ok(kind) => format!("unexpectedly valid ({kind:?})"),
            Err(e) => e.to_string(),
        };
        let expected_path = file.with_extension("err");
        if bless {
            std::fs::write(&expected_path, format!("{actual}\n")).expect("write .err");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| format!("missing {}", expected_path.display()));
        if expected.trim_end() != actual {
            mismatches.push(format!(
                "{}:\n--- expected\n{}\n--- actual\n{}",
                file.display(),
                expected.trim_end(),
                actual
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}

#[test]
fn every_error_names_file_line_and_column() {
    let suites = load_suites(&[]).expect("shipped suites are valid");
    for file in bad_files() {
        let Err(e) = check_file(&file, &suites, &env) else {
            panic!("{} is valid", file.display());
        };
        for config_error in &e.errors {
            for d in &config_error.diagnostics {
                // An empty file has no position to point at; everything else must.
                if file.ends_with("policy_empty_file.yaml") {
                    continue;
                }
                assert!(
                    d.location.is_some() && d.snippet.is_some(),
                    "{}: unlocated diagnostic: {}",
                    file.display(),
                    d.message
                );
                assert!(
                    d.message.contains("expected"),
                    "{}: says nothing about what was expected: {}",
                    file.display(),
                    d.message
                );
            }
        }
    }
}
