//! What a running case produces: its evidence as it is recorded ([`CaseLog`], shared with the
//! scheduler so a deadline keeps what was recorded) and its outcome ([`Outcome`]).

use std::sync::{Arc, Mutex};

use super::model::{Evidence, Verdict};
use crate::config::Secrets;

/// Evidence shared between a running case and the scheduler, so a deadline keeps it.
#[derive(Clone, Default)]
pub struct CaseLog {
    evidence: Arc<Mutex<Evidence>>,
    /// Secrets redacted from each line as it is recorded: evidence cuts long lines, and a cut
    /// through a secret would leave a part that no later redaction can recognise.
    secrets: Option<Arc<Mutex<Secrets>>>,
}

impl CaseLog {
    /// This transcript, redacting `secrets` (as they are at each record) from what it records.
    pub fn redacting(mut self, secrets: Arc<Mutex<Secrets>>) -> Self {
        self.secrets = Some(secrets);
        self
    }

    /// Runs `f` on the evidence (no redaction: pass only text already redacted).
    pub fn with<R>(&self, f: impl FnOnce(&mut Evidence) -> R) -> R {
        f(&mut self.evidence.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn redact(&self, what: &str) -> String {
        match &self.secrets {
            Some(s) => s.lock().unwrap_or_else(|e| e.into_inner()).redact(what),
            None => what.to_string(),
        }
    }

    /// Records something the harness sent.
    pub fn sent(&self, what: impl AsRef<str>) {
        let line = self.redact(what.as_ref());
        self.with(|e| e.sent(line));
    }

    /// Records something the target did.
    pub fn saw(&self, what: impl AsRef<str>) {
        let line = self.redact(what.as_ref());
        self.with(|e| e.saw(line));
    }

    /// Records a note.
    pub fn note(&self, what: impl AsRef<str>) {
        let line = self.redact(what.as_ref());
        self.with(|e| e.note(line));
    }

    /// A copy of what was recorded so far.
    pub fn snapshot(&self) -> Evidence {
        self.with(|e| e.clone())
    }
}

/// A case's verdict and the sentence explaining it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The verdict.
    pub verdict: Verdict,
    /// Why.
    pub reason: String,
}

impl Outcome {
    /// A pass with its reason.
    pub fn pass(reason: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::Pass,
            reason: reason.into(),
        }
    }

    /// A failure with its reason.
    pub fn fail(reason: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::Fail,
            reason: reason.into(),
        }
    }

    /// An inconclusive result with its reason.
    pub fn error(reason: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::Error,
            reason: reason.into(),
        }
    }

    /// Not applicable, with the reason.
    pub fn skipped(reason: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::Skipped,
            reason: reason.into(),
        }
    }
}
