//! Where a run's reports go (`--junit`, `--json`, `--sarif`, `--html`): checked before any
//! attack runs, so an unwritable path is an error up front, and written from one redacted
//! report at the end.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use super::Redacted;
use super::partition::Partition;

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
    /// Category of the SARIF run (its `automationDetails.id`; a `/` is appended), which code
    /// scanning groups uploads by [default: wsaudit/POLICY/TARGET/, plus partition-K-of-N/ for
    /// a --partition share].
    #[arg(long, value_name = "CATEGORY", requires = "sarif")]
    pub sarif_category: Option<String>,
    /// The share a partitioned run covered (set by `run --partition`, not an option of its
    /// own): part of the default SARIF category, so the shares' uploads do not replace each
    /// other.
    #[arg(skip)]
    pub partition: Option<Partition>,
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
    /// truncating an existing report: a run that cannot save its verdicts must not start. A
    /// report file that did not exist is created and removed again, so no empty report is left
    /// behind when the run does not get to write it (an unwritable sibling, a second Ctrl-C).
    pub fn check_writable(&self) -> Result<(), OutputError> {
        if let Some(d) = &self.html {
            std::fs::create_dir_all(d).map_err(|source| OutputError {
                kind: "HTML",
                path: d.clone(),
                source,
            })?;
        }
        for (kind, path) in self.files() {
            let error = |source| OutputError {
                kind,
                path: path.clone(),
                source,
            };
            match OpenOptions::new().append(true).open(&path) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&path)
                        .map_err(error)?;
                    std::fs::remove_file(&path).map_err(error)?;
                }
                Err(e) => return Err(error(e)),
            }
        }
        Ok(())
    }

    /// The `automationDetails.id` of the SARIF run: `--sarif-category`, else the default.
    pub fn sarif_automation_id(&self, report: &Redacted) -> String {
        match &self.sarif_category {
            Some(category) => super::sarif::category_id(category),
            None => super::sarif::automation_id(report, self.partition.as_ref()),
        }
    }

    /// Renders and writes every requested report; returns the first failure, after trying all.
    pub fn write_all(&self, report: &Redacted) -> Result<(), OutputError> {
        let mut first_error = None;
        for (kind, path) in self.files() {
            let text = match kind {
                "JUnit" => super::junit::render(report),
                "JSON" => super::json::render(report),
                "SARIF" => super::sarif::render_as(report, &self.sarif_automation_id(report)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checking_leaves_no_file_behind_and_keeps_existing_reports() {
        let dir = tempfile::tempdir().expect("tempdir");
        let existing = dir.path().join("old.json");
        std::fs::write(&existing, "previous report").expect("write");
        let outputs = ReportOutputs {
            junit: Some(dir.path().join("new.xml")),
            json: Some(existing.clone()),
            ..Default::default()
        };
        outputs.check_writable().expect("writable");
        assert!(!dir.path().join("new.xml").exists());
        assert_eq!(
            std::fs::read_to_string(&existing).expect("read"),
            "previous report"
        );

        let unwritable = ReportOutputs {
            junit: Some(dir.path().join("new.xml")),
            sarif: Some(dir.path().join("missing-dir/r.sarif")),
            ..Default::default()
        };
        let err = unwritable.check_writable().expect_err("missing directory");
        assert_eq!(err.kind, "SARIF");
        assert!(!dir.path().join("new.xml").exists());
    }
}
