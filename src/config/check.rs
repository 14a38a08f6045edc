//! `wsaudit check`: validates any mix of policy, target and suite files, telling them apart by
//! their top-level key (`policy:`, `target:` or `suite:`).

use std::path::{Path, PathBuf};

use super::deser::parse_document;
use super::policy::LoadedPolicy;
use super::source::{CompileError, ConfigError, SourceFile};
use super::suite::{LoadedSuite, SuiteSet};
use super::target::LoadedTarget;

/// The three kinds of file wsaudit reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Has a top-level `policy:` key.
    Policy,
    /// Has a top-level `target:` key.
    Target,
    /// Has a top-level `suite:` key.
    Suite,
}

impl FileKind {
    /// The kind of a file, from its top-level keys; located error when it is none of them.
    pub fn detect(source: &SourceFile) -> Result<Self, ConfigError> {
        let (doc, _) = parse_document(source)?;
        let has = |k: &str| doc.as_mapping().is_some_and(|m| m.contains_key(k));
        match (has("policy"), has("target"), has("suite")) {
            (true, false, false) => Ok(Self::Policy),
            (false, true, false) => Ok(Self::Target),
            (false, false, true) => Ok(Self::Suite),
            _ => Err(ConfigError::new(
                source,
                vec![source.error_at(
                    1,
                    1,
                    "cannot tell what file this is: expected exactly one of the top-level keys `policy` (a policy), `target` (a target) or `suite` (a suite)",
                )],
            )),
        }
    }
}

/// Checks one file against the suites of `suites` (the shipped ones plus `--suites`).
/// `env` answers `${VAR}` look-ups in targets.
pub fn check_file(
    path: &Path,
    suites: &SuiteSet,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<FileKind, CompileError> {
    let source = SourceFile::read(path)?;
    let kind = FileKind::detect(&source)?;
    match kind {
        FileKind::Policy => {
            LoadedPolicy::parse_with_checks(source, &suites.checks())?;
        }
        FileKind::Target => {
            LoadedTarget::parse(source, env)?;
        }
        FileKind::Suite => {
            let suite = LoadedSuite::parse(source, false)?;
            let mut set = suites.clone();
            // Checking a shipped suite's own file replaces the embedded copy, not clashes with it.
            set.suites.retain(|s| s.suite.suite != suite.suite.suite);
            let own = suite.source.path.clone();
            set.add(suite)?;
            if let Err(e) = set.validate() {
                let mine: Vec<ConfigError> =
                    e.errors.into_iter().filter(|x| x.path == own).collect();
                if !mine.is_empty() {
                    return Err(CompileError { errors: mine });
                }
            }
        }
    }
    Ok(kind)
}

/// The shipped suites plus every `--suites` directory, validated.
pub fn load_suites(dirs: &[PathBuf]) -> Result<SuiteSet, CompileError> {
    let mut set = SuiteSet::builtin()?;
    let mut errors = Vec::new();
    for d in dirs {
        if let Err(e) = set.add_dir(d) {
            errors.extend(e);
        }
    }
    if !errors.is_empty() {
        return Err(CompileError { errors });
    }
    set.validate()?;
    Ok(set)
}
