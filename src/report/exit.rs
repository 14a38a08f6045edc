//! wsaudit's process exit codes: one type for every command, as the README's table lists them.

/// How a wsaudit command ends, as its process exit code ([`Exit::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: every selected control passed (or was waived or skipped); a valid file; a tour that
    /// showed what it claims.
    Passed,
    /// 1: a control failed.
    Failed,
    /// 2: an invalid invocation or file (the error names file:line:column and what was
    /// expected), or a report path that cannot be written.
    Invalid,
    /// 3: no failure, but some case was inconclusive (`error`); also a demo whose audits do
    /// not show what it claims.
    Inconclusive,
    /// 130 (128 + SIGINT, the shell's convention): the run was interrupted before every case
    /// finished, whatever the verdicts of those that did.
    Interrupted,
}

impl Exit {
    /// The numeric exit code.
    pub const fn code(self) -> u8 {
        match self {
            Exit::Passed => 0,
            Exit::Failed => 1,
            Exit::Invalid => 2,
            Exit::Inconclusive => 3,
            Exit::Interrupted => 130,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}
