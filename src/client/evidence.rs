//! Evidence: short, lossy, redacted previews of what was sent and received, and a bounded
//! transcript of one connection, so reports can show what happened without leaking a secret.

use std::fmt;
use std::time::{Duration, Instant};

/// Characters a preview keeps by default.
pub const PREVIEW_CHARS: usize = 120;
/// Entries a transcript keeps; later ones are counted, not stored.
pub const TRANSCRIPT_ENTRIES: usize = 200;

use crate::config::Secrets;

pub use crate::config::secrets::preview;

/// Who produced a transcript entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The client sent it.
    Sent,
    /// The peer sent it.
    Received,
    /// A fact about the connection (answered ping, stopped stream).
    Note,
}

/// One transcript line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Time since the transcript started.
    pub at: Duration,
    /// Who produced it.
    pub direction: Direction,
    /// What happened, redacted and short.
    pub what: String,
}

/// What happened on one connection, bounded to [`TRANSCRIPT_ENTRIES`] and redacted.
#[derive(Debug, Clone)]
pub struct ConnectionLog {
    started: Instant,
    entries: Vec<Entry>,
    omitted: usize,
    redactor: Secrets,
}

impl Default for ConnectionLog {
    fn default() -> Self {
        Self::new()
    }
}

impl ConnectionLog {
    /// An empty transcript starting now.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            entries: Vec::new(),
            omitted: 0,
            redactor: Secrets::new(),
        }
    }

    /// Registers a secret to redact from entries recorded from now on.
    pub fn add_secret(&mut self, secret: impl Into<String>) {
        self.redactor.register(secret);
    }

    /// The redactor entries go through.
    pub fn redactor(&self) -> &Secrets {
        &self.redactor
    }

    /// The redactor, to register several secrets at once.
    pub fn redactor_mut(&mut self) -> &mut Secrets {
        &mut self.redactor
    }

    /// Records an entry (redacted); past the bound it is only counted.
    pub fn push(&mut self, direction: Direction, what: impl AsRef<str>) {
        if self.entries.len() >= TRANSCRIPT_ENTRIES {
            self.omitted += 1;
            return;
        }
        self.entries.push(Entry {
            at: self.started.elapsed(),
            direction,
            what: self.redactor.redact(what.as_ref()),
        });
    }

    /// The recorded entries, oldest first.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// How many entries were dropped past the bound.
    pub fn omitted(&self) -> usize {
        self.omitted
    }
}

impl fmt::Display for ConnectionLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.entries {
            let arrow = match e.direction {
                Direction::Sent => ">",
                Direction::Received => "<",
                Direction::Note => "*",
            };
            writeln!(f, "+{}ms {arrow} {}", e.at.as_millis(), e.what)?;
        }
        if self.omitted > 0 {
            writeln!(f, "... {} more entries omitted", self.omitted)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_are_lossy_escaped_and_cut() {
        assert_eq!(preview(b"ok\r\n", 10), "ok\\r\\n");
        assert_eq!(preview(b"abcdef", 3), "abc…");
        assert_eq!(preview(&[0xff, b'a'], 10), "\u{fffd}a");
        assert_eq!(preview(&[], 10), "");
    }

    #[test]
    fn secrets_never_leak_even_when_cut() {
        let mut r = Secrets::new();
        r.register("SECRETTICKET");
        r.register("");
        let msg = br#"{"type":"auth","ticket":"SECRETTICKET"}"#;
        let p = r.preview(msg, 30);
        assert!(!p.contains("SECRET"), "{p}");
        // The cut falls inside the secret: nothing of it may show.
        let p = r.preview(msg, 27);
        assert!(!p.contains('S'), "{p}");
        let mut t = ConnectionLog::new();
        t.add_secret("tok");
        t.push(Direction::Sent, "Bearer tok");
        assert_eq!(t.entries()[0].what, "Bearer ***");
        assert!(t.to_string().contains("> Bearer ***"));
    }

    #[test]
    fn transcripts_are_bounded() {
        let mut t = ConnectionLog::new();
        for i in 0..TRANSCRIPT_ENTRIES + 5 {
            t.push(Direction::Note, format!("{i}"));
        }
        assert_eq!(t.entries().len(), TRANSCRIPT_ENTRIES);
        assert_eq!(t.omitted(), 5);
    }
}
