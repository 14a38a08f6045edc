//! Where a run's reports go (`--junit`, `--json`, `--sarif`, `--html`): checked before any
//! attack runs, so an unwritable path is an error up front, and written from one redacted
//! report at the end.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use super::Redacted;

/// The report files a command was asked to write.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ReportOutputs {
    /// Write a JUnit XML report (one test case per attack) to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write the full result model as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a SARIF 2.1.0 log (for code-scanning dashboards) to FILE.
    #[arg(long, value_name = "FILE")]
    pub sarif: Option<PathBuf>,
    /// Write a self-contained HTML report to DIR/index.html.
    #[arg(long, value_name = "DIR")]
    pub html: Option<PathBuf>,
}

/// A report file that cannot be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the {kind} report to {}: {source}", path.display())]
pub struct OutputError {
    /// Which report.
    pub kind: &'static str,
    /// Where.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

impl ReportOutputs {
    fn files(&self) -> Vec<(&'static str, PathBuf)> {
        let mut out = Vec::new();
        if let Some(p) = &self.junit {
            out.push(("JUnit", p.clone()));
        }
        if let Some(p) = &self.json {
            out.push(("JSON", p.clone()));
        }
        if let Some(p) = &self.sarif {
            out.push(("SARIF", p.clone()));
        }
        if let Some(d) = &self.html {
            out.push(("HTML", d.join("index.html")));
        }
        out
    }

    /// Checks every report path can be written (creating the HTML directory), without
    /// truncating an existing report: a run that cannot save its verdicts must not start.
    pub fn check_writable(&self) -> Result<(), OutputError> {
        if let Some(d) = &self.html {
            std::fs::create_dir_all(d).map_err(|source| OutputError {
                kind: "HTML",
                path: d.clone(),
                source,
            })?;
        }
        for (kind, path) in self.files() {
            OpenOptions::new()
                .append(true)
                .create(true)
                .open(&path)
                .map_err(|source| OutputError { kind, path, source })?;
        }
        Ok(())
    }

    /// Renders and writes every requested report; returns the first failure, after trying all.
    pub fn write_all(&self, report: &Redacted) -> Result<(), OutputError> {
        let mut first_error = None;
        for (kind, path) in self.files() {
            let text = match kind {
                "JUnit" => super::junit::render(report),
                "JSON" => super::json::render(report),
                "SARIF" => super::sarif::render(report),
                _ => super::html::render(report),
            };
            if let Err(source) = write(&path, &text) {
                first_error.get_or_insert(OutputError { kind, path, source });
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

fn write(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}
