//! One JSON line per lifecycle event (connection, handshake refusal, auth, violation, close).
//! Values that could be credentials are never passed in: callers log reasons, not tickets.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

/// Where lifecycle events go: stderr by default, a shared buffer in tests.
#[derive(Clone)]
pub struct EventLog {
    sink: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl EventLog {
    /// Logs to standard error.
    pub fn stderr() -> Self {
        Self::to(Box::new(std::io::stderr()))
    }

    /// Logs to any writer.
    pub fn to(sink: Box<dyn Write + Send>) -> Self {
        Self {
            sink: Arc::new(Mutex::new(sink)),
        }
    }

    /// Discards events.
    pub fn discard() -> Self {
        Self::to(Box::new(std::io::sink()))
    }

    /// Writes one event line: `{"ts":..,"event":..,"conn":..,...fields}`.
    pub fn event(&self, event: &str, conn: u64, fields: Value) {
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let mut line =
            json!({ "ts": (ts * 1000.0).round() / 1000.0, "event": event, "conn": conn });
        if let (Value::Object(dst), Value::Object(src)) = (&mut line, fields) {
            dst.extend(src);
        }
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        // Logging must never take the server down; a full disk loses log lines, not connections.
        let _ = writeln!(sink, "{line}");
        let _ = sink.flush();
    }
}

/// Target-controlled text, shortened for the log (JSON escaping is serde's).
pub fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}
