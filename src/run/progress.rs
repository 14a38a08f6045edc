//! Progress while a plan runs: a bar on a terminal, one plain line per finished case otherwise
//! (CI logs), on stderr so stdout stays the report.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// Shows how far a run is.
pub enum Progress {
    /// An interactive bar.
    Bar(ProgressBar),
    /// Plain lines, for logs.
    Lines {
        /// Cases in the run.
        total: usize,
        /// Cases finished so far.
        done: usize,
    },
    /// Nothing (tests, embedding).
    Silent,
}

impl Progress {
    /// A bar when stderr is a terminal, else plain lines.
    pub fn for_stderr(total: usize) -> Self {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total as u64);
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            Progress::Bar(bar)
        } else {
            // A case's line is its own result; the report then gates attacks on their positive
            // controls, so a PASS here can still end as ERROR there.
            eprintln!(
                "{total} cases; each line below is a case's own result as it finishes, and the \
                 report is final (an attack whose positive control failed is ERROR there)"
            );
            Progress::Lines { total, done: 0 }
        }
    }

    /// Reports one finished case (its label is already redacted).
    pub fn finished(&mut self, verdict: &str, label: &str) {
        match self {
            Progress::Bar(bar) => {
                // The case's own result, before gating: the report below is final.
                bar.set_message(format!("last: {verdict} {label}"));
                bar.inc(1);
            }
            Progress::Lines { total, done } => {
                *done += 1;
                eprintln!("[{done}/{total}] {verdict} {label}");
            }
            Progress::Silent => {}
        }
    }

    /// Clears the bar before the report is printed.
    pub fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}
