//! The registries and their documentation cannot drift: every step, expectation and run-time
//! placeholder the engine knows has its row in `suites/README.md`, and every check of the check
//! table has its suite.

use strum::VariantNames;
use wsaudit::config::policy::BUILTIN_CHECKS;
use wsaudit::plan::template::RuntimePlaceholder;
use wsaudit::plan::{Expectation, Step};

fn suites_readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/suites/README.md"))
        .expect("suites/README.md")
}

/// The table rows of a README section (`## Steps`), by the name in their first cell.
fn rows(readme: &str, section: &str) -> Vec<String> {
    readme
        .split(&format!("## {section}"))
        .nth(1)
        .unwrap_or_else(|| panic!("no `## {section}` section"))
        .split("\n## ")
        .next()
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect()
}

/// Every name has its row in the README section, and every row names one of them.
#[track_caller]
fn assert_rows_match(readme: &str, section: &str, what: &str, names: &[&str]) {
    let rows = rows(readme, section);
    for name in names {
        assert!(
            rows.iter().any(|r| r == name),
            "{what} `{name}` has no row under ## {section}"
        );
    }
    for row in &rows {
        assert!(
            names.contains(&row.as_str()),
            "## {section} documents `{row}`, which is no {what}"
        );
    }
}

#[test]
fn every_step_and_expectation_has_its_row() {
    let readme = suites_readme();
    assert_rows_match(&readme, "Steps", "step", Step::VARIANTS);
    assert_rows_match(
        &readme,
        "Expectations",
        "expectation",
        Expectation::VARIANTS,
    );
}

#[test]
fn every_runtime_placeholder_is_documented_and_parsed() {
    let readme = suites_readme();
    for (written, doc) in RuntimePlaceholder::DOCS {
        let row = format!("| `{written}` | {doc} |");
        assert!(
            readme.contains(&row),
            "suites/README.md lacks the row {row}"
        );
        let expr = written
            .trim_start_matches("{{")
            .trim_end_matches("}}")
            .replace(":N", ":8");
        assert!(
            RuntimePlaceholder::parse(&expr).is_some(),
            "{written} does not parse"
        );
    }
    assert!(RuntimePlaceholder::parse("random_hex:0").is_none());
    assert!(RuntimePlaceholder::parse("random_hex:257").is_none());
    assert!(RuntimePlaceholder::parse("policy.limit").is_none());
}

#[test]
fn every_builtin_check_has_a_shipped_suite() {
    let suites = wsaudit::config::check::load_suites(&[]).expect("shipped suites");
    for check in BUILTIN_CHECKS {
        assert!(
            suites.for_check(check).next().is_some(),
            "check {check} has no shipped suite"
        );
    }
}

#[test]
fn every_shipped_attack_says_what_differs_from_its_positive_control() {
    let suites = wsaudit::config::check::load_suites(&[]).expect("shipped suites");
    for suite in &suites.suites {
        for case in &suite.suite.cases {
            if case.role == wsaudit::plan::Role::Attack {
                assert!(
                    case.differs
                        .as_deref()
                        .is_some_and(|d| !d.trim().is_empty()),
                    "{}: attack {} does not say what differs from its positive control",
                    suite.suite.suite,
                    case.id
                );
            }
        }
    }
}
