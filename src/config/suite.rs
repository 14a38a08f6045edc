//! Suites: the attack cases of one check family, as data. The shipped suites are embedded in
//! the binary; `--suites DIR` adds a directory of the user's own. A user suite with the same
//! `suite` name as a shipped one replaces it; any other adds cases to its check (or provides a
//! new check).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use super::deser::{At, Report, parse_document};
use super::source::{ConfigError, SourceFile};
use super::yaml_index::{YamlIndex, YamlPath};

/// Whether a case attacks a defence or shows the legitimate path works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A negative case: the server must refuse or survive it.
    Attack,
    /// A positive control: the legitimate path must work, or the family's attacks are
    /// inconclusive (`error`), never `pass`.
    Positive,
    /// A precondition of the control's attacks: the server refuses the request *without* the
    /// attack's ingredient (e.g. a message with no credential at all). When it does not, the
    /// attacks cannot tell anything, and every case of the control is inconclusive (`error`).
    Baseline,
    /// Not testable from outside: reported as skipped, with evidence.
    Attestation,
}

impl Role {
    /// Whether cases of this role gate their control's other cases (positive controls and
    /// baselines): the rule the runner selects dependencies by and gating judges by.
    pub fn is_gate(self) -> bool {
        matches!(self, Role::Positive | Role::Baseline)
    }

    /// Whether a case of this role is judged against a gate of role `gate` of its control:
    /// every case but attestations on the baselines, attacks also on the positive controls.
    pub fn gated_by(self, gate: Role) -> bool {
        match gate {
            Role::Baseline => self != Role::Attestation,
            Role::Positive => self == Role::Attack,
            Role::Attack | Role::Attestation => false,
        }
    }
}

/// The suites shipped with wsaudit, as (path, text).
pub const BUILTIN_SUITES: [(&str, &str); 12] = [
    (
        "suites/transport.yaml",
        include_str!("../../suites/transport.yaml"),
    ),
    (
        "suites/origin.yaml",
        include_str!("../../suites/origin.yaml"),
    ),
    (
        "suites/url-tokens.yaml",
        include_str!("../../suites/url-tokens.yaml"),
    ),
    (
        "suites/ticket.yaml",
        include_str!("../../suites/ticket.yaml"),
    ),
    (
        "suites/unauthenticated.yaml",
        include_str!("../../suites/unauthenticated.yaml"),
    ),
    (
        "suites/messages.yaml",
        include_str!("../../suites/messages.yaml"),
    ),
    (
        "suites/rate-limit.yaml",
        include_str!("../../suites/rate-limit.yaml"),
    ),
    ("suites/size.yaml", include_str!("../../suites/size.yaml")),
    (
        "suites/heartbeat.yaml",
        include_str!("../../suites/heartbeat.yaml"),
    ),
    (
        "suites/cookies.yaml",
        include_str!("../../suites/cookies.yaml"),
    ),
    (
        "suites/protocol.yaml",
        include_str!("../../suites/protocol.yaml"),
    ),
    (
        "suites/attestation.yaml",
        include_str!("../../suites/attestation.yaml"),
    ),
];

/// A whole suite file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// The family name shown in plans and reports, e.g. `origin`.
    pub suite: String,
    /// The policy check these cases test, e.g. `origin.allowlist`.
    pub check: String,
    /// Free text for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Example parameters of the check, used to validate the cases of a check wsaudit does not
    /// ship (shipped checks are validated with the parameters of `policies/fintech.yaml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub example: Option<Value>,
    /// The cases, in plan order.
    pub cases: Vec<SuiteCase>,
}

/// One case template; placeholders are filled per control (and per item with `for_each`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuiteCase {
    /// Stable identifier, unique within the check, e.g. `ORIGIN-SUFFIX`.
    pub id: String,
    /// What the case does, for humans; may use placeholders.
    pub name: String,
    /// Whether it attacks a defence or shows the legitimate path works.
    pub role: Role,
    /// A placeholder expression giving a list: one case per item, `{{item}}` being the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each: Option<String>,
    /// Placeholder expression → value: the case exists only when every one matches.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub when: BTreeMap<String, Value>,
    /// The steps (see suites/README.md), with placeholders.
    #[schemars(with = "Vec<serde_json::Value>")]
    pub steps: Vec<Value>,
    /// The expectations (see suites/README.md), with placeholders.
    #[schemars(with = "Vec<serde_json::Value>")]
    pub expect: Vec<Value>,
    /// The case's deadline when the target's `limits.case_timeout` does not fit.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "super::values::duration::option"
    )]
    #[schemars(schema_with = "super::values::duration_schema")]
    pub deadline: Option<Duration>,
    /// Whether the case may exhaust or crash a careless target (invalid or huge input, floods,
    /// protocol violations): such cases run last, one at a time, with a health probe before and
    /// after, so a crash is blamed on the case that caused it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub destructive: bool,
    /// What this attack changes from its positive control (same connection profile, same
    /// authentication, same valid message otherwise); shown in its evidence. May use
    /// placeholders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub differs: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A suite with its source, for located errors in expanded cases.
#[derive(Debug, Clone)]
pub struct LoadedSuite {
    /// The suite as written.
    pub suite: Suite,
    /// Where it came from.
    pub source: SourceFile,
    /// Node positions of the file.
    pub index: YamlIndex,
    /// Whether it ships with wsaudit.
    pub builtin: bool,
}

impl LoadedSuite {
    /// Loads and structurally validates a suite file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::parse(SourceFile::read(path)?, false)
    }

    /// Parses suite text: keys, types, case ids (syntax and uniqueness), at least one case.
    pub fn parse(source: SourceFile, builtin: bool) -> Result<Self, ConfigError> {
        let (doc, index) = parse_document(&source)?;
        let mut report = Report::new(&source, &index);
        let root = YamlPath::root();
        let suite: Option<Suite> = report.deserialize(&doc, &root, &root, "");
        if let Some(s) = &suite {
            if s.cases.is_empty() {
                report.error(
                    &root.key("cases"),
                    At::Value,
                    "cases: the list is empty: expected at least one case",
                );
            }
            if !is_identifier(&s.check) {
                report.error(
                    &root.key("check"),
                    At::Value,
                    format!("check: invalid check name `{}`: expected letters, digits, `.`, `_` and `-`", s.check),
                );
            }
            let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
            for (i, c) in s.cases.iter().enumerate() {
                let at = root.key("cases").index(i).key("id");
                if !is_identifier(&c.id) {
                    report.error(
                        &at,
                        At::Value,
                        format!(
                            "case {}: invalid case id: expected letters, digits, `.`, `_` and `-`",
                            c.id
                        ),
                    );
                }
                if let Some(first) = seen.insert(c.id.as_str(), i) {
                    let first = root.key("cases").index(first).key("id");
                    report.duplicate_id("case", &c.id, &first, &at);
                }
            }
        }
        let Some(suite) = suite else {
            return Err(report.into_error());
        };
        if !report.is_empty() {
            return Err(report.into_error());
        }
        Ok(Self {
            suite,
            source,
            index,
            builtin,
        })
    }

    /// Path of case `i` in the file.
    pub fn case_path(i: usize) -> YamlPath {
        YamlPath::root().key("cases").index(i)
    }
}

/// Check names and case ids: letters, digits, `.`, `_`, `-`, starting with a letter or digit.
fn is_identifier(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Every suite of a run: the shipped ones plus the user's.
#[derive(Debug, Clone, Default)]
pub struct SuiteSet {
    /// The suites, shipped ones first, then user ones by file name.
    pub suites: Vec<LoadedSuite>,
}

impl SuiteSet {
    /// The shipped suites (embedded in the binary).
    pub fn builtin() -> Result<Self, Vec<ConfigError>> {
        let mut set = SuiteSet::default();
        let mut errors = Vec::new();
        for (path, text) in BUILTIN_SUITES {
            match LoadedSuite::parse(SourceFile::from_text(path, text), true) {
                Ok(s) => set.suites.push(s),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(errors)
        }
    }

    /// Loads every `*.yaml`/`*.yml` file of `dir` (sorted by name) into the set.
    pub fn add_dir(&mut self, dir: &Path) -> Result<(), Vec<ConfigError>> {
        let entries = std::fs::read_dir(dir).map_err(|e| vec![ConfigError::io(dir, &e)])?;
        let mut files: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        files.sort();
        let mut errors = Vec::new();
        for f in files {
            match LoadedSuite::load(&f).and_then(|s| self.add(s)) {
                Ok(()) => {}
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Adds a suite: one with the name of a shipped suite replaces it; case ids must stay unique
    /// per check.
    pub fn add(&mut self, suite: LoadedSuite) -> Result<(), ConfigError> {
        self.suites
            .retain(|s| !(s.builtin && s.suite.suite == suite.suite.suite));
        let mut report = Report::new(&suite.source, &suite.index);
        for (i, case) in suite.suite.cases.iter().enumerate() {
            let clash = self.suites.iter().find(|s| {
                s.suite.check == suite.suite.check && s.suite.cases.iter().any(|c| c.id == case.id)
            });
            if let Some(other) = clash {
                report.error(
                    &LoadedSuite::case_path(i).key("id"),
                    At::Value,
                    format!(
                        "duplicate case id `{}`: {} already has it for check {}: expected ids unique per check",
                        case.id,
                        other.source.path.display(),
                        suite.suite.check
                    ),
                );
            }
        }
        if !report.is_empty() {
            return Err(report.into_error());
        }
        self.suites.push(suite);
        Ok(())
    }

    /// Every check some suite provides, shipped ones in catalogue order, then user ones.
    pub fn checks(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for s in &self.suites {
            if !out.contains(&s.suite.check.as_str()) {
                out.push(&s.suite.check);
            }
        }
        out
    }

    /// The suites serving a check, in set order.
    pub fn for_check<'s>(&'s self, check: &'s str) -> impl Iterator<Item = &'s LoadedSuite> + 's {
        self.suites.iter().filter(move |s| s.suite.check == check)
    }
}
