//! Compiling from files: loads a policy, a target and the suites (every error of every file
//! reported together) and compiles the plan.

use std::path::{Path, PathBuf};

use super::{CompileError, Plan};
use crate::config::check::load_suites;
use crate::config::source::SourceFile;
use crate::config::{LoadedPolicy, LoadedTarget};

/// A compiled plan with the files it came from (the runner needs the policy's controls).
pub struct Compiled {
    /// The policy as loaded.
    pub policy: LoadedPolicy,
    /// The target as loaded (secrets interpolated and registered).
    pub target: LoadedTarget,
    /// The plan.
    pub plan: Plan,
}

/// Loads policy, target and suites and compiles the plan; every error of every file is reported.
pub fn compile_inputs(
    policy: &Path,
    target: &Path,
    suite_dirs: &[PathBuf],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Compiled, CompileError> {
    let suites = load_suites(suite_dirs)?;
    let mut errors = Vec::new();
    let policy = SourceFile::read(policy)
        .and_then(|s| LoadedPolicy::parse_with_checks(s, &suites.checks()))
        .map_err(|e| errors.push(e))
        .ok();
    let target = SourceFile::read(target)
        .and_then(|s| LoadedTarget::parse(s, env))
        .map_err(|e| errors.push(e))
        .ok();
    match (policy, target) {
        (Some(policy), Some(target)) => {
            let plan = super::compile(&policy, &target, &suites)?;
            Ok(Compiled {
                policy,
                target,
                plan,
            })
        }
        _ => Err(CompileError { errors }),
    }
}

/// Loads policy, target and suites and compiles the plan; every error of every file is reported.
pub fn compile_files(
    policy: &Path,
    target: &Path,
    suite_dirs: &[PathBuf],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, CompileError> {
    compile_inputs(policy, target, suite_dirs, env).map(|c| c.plan)
}
