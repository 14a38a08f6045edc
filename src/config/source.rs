//! Source files and located errors: every problem in a policy, target or suite file is reported
//! with the file, line and column, the offending line and a caret, and what was expected.

use std::fmt;
use std::path::{Path, PathBuf};

/// A file's text kept beside its path so errors can quote the offending line.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path as the user gave it (shown in errors).
    pub path: PathBuf,
    /// Full text of the file.
    pub text: String,
}

impl SourceFile {
    /// Reads a file, turning I/O failures into a located [`ConfigError`].
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Self {
                path: path.to_path_buf(),
                text,
            }),
            Err(e) => Err(ConfigError::io(path, &e)),
        }
    }

    /// Wraps text that did not come from disk (tests, fuzzing, embedded policies).
    pub fn from_text(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            text: text.into(),
        }
    }

    /// Builds an error at a 1-based line and column of this file.
    pub fn error_at(&self, line: usize, column: usize, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            location: Some(Location { line, column }),
            message: message.into(),
            snippet: self.line_text(line).map(str::to_owned),
        }
    }

    /// Builds an error that has no position in the file (e.g. an empty file).
    pub fn error_without_location(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            location: None,
            message: message.into(),
            snippet: None,
        }
    }

    /// The text of a 1-based line, without its line ending.
    pub fn line_text(&self, line: usize) -> Option<&str> {
        line.checked_sub(1)
            .and_then(|i| self.text.lines().nth(i))
            .map(|l| l.trim_end_matches('\r'))
    }

    /// One error per character that YAML 1.1 parsers read as a line break and YAML 1.2 parsers
    /// do not (NEL U+0085, LINE SEPARATOR U+2028, PARAGRAPH SEPARATOR U+2029).
    ///
    /// Our two parsers disagree on them (libyaml breaks lines there, yaml-rust2 does not), so a
    /// file holding one would get errors pointing at the wrong line; and a reader's editor may
    /// not show them at all. Lines here are counted at CR, LF and CRLF, as every editor does.
    pub fn ambiguous_line_breaks(&self) -> Vec<Diagnostic> {
        let mut found = Vec::new();
        for (i, line) in self.text.split('\n').enumerate() {
            for (col, c) in line.chars().enumerate() {
                let name = match c {
                    '\u{85}' => "NEXT LINE",
                    '\u{2028}' => "LINE SEPARATOR",
                    '\u{2029}' => "PARAGRAPH SEPARATOR",
                    _ => continue,
                };
                found.push(self.error_at(
                    i + 1,
                    col + 1,
                    format!(
                        "character U+{:04X} ({name}) is a line break to some YAML parsers and \
                         not to others: expected it only escaped, as \"\\u{:04X}\" in a \
                         double-quoted string",
                        c as u32, c as u32
                    ),
                ));
            }
        }
        found
    }

    /// Location of the first line matching `pred`, column of its first non-blank character.
    pub fn find_line(&self, pred: impl Fn(&str) -> bool) -> Option<Location> {
        self.text.lines().enumerate().find_map(|(i, l)| {
            pred(l).then(|| Location {
                line: i + 1,
                column: l.len() - l.trim_start().len() + 1,
            })
        })
    }
}

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column number.
    pub column: usize,
}

/// One problem found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where in the file, when known.
    pub location: Option<Location>,
    /// What is wrong and what was expected.
    pub message: String,
    /// The offending line, for the caret display.
    pub snippet: Option<String>,
}

/// Every problem found in one file; loading reports all of them, not only the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the problems are in.
    pub path: PathBuf,
    /// The problems, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigError {
    /// A file that could not be read at all.
    pub fn io(path: &Path, err: &std::io::Error) -> Self {
        Self {
            path: path.to_path_buf(),
            diagnostics: vec![Diagnostic {
                location: None,
                message: format!("cannot read file: {err}"),
                snippet: None,
            }],
        }
    }

    /// Collects diagnostics of one file.
    pub fn new(file: &SourceFile, mut diagnostics: Vec<Diagnostic>) -> Self {
        diagnostics.sort_by_key(|d| d.location);
        diagnostics.dedup();
        Self {
            path: file.path.clone(),
            diagnostics,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match d.location {
                Some(loc) => write!(
                    f,
                    "error: {}:{}:{}: {}",
                    self.path.display(),
                    loc.line,
                    loc.column,
                    d.message
                )?,
                None => write!(f, "error: {}: {}", self.path.display(), d.message)?,
            }
            if let (Some(loc), Some(snippet)) = (d.location, &d.snippet) {
                let gutter = loc.line.to_string();
                write!(
                    f,
                    "\n{pad} |\n{gutter} | {snippet}\n{pad} | {caret:>col$}",
                    pad = " ".repeat(gutter.len()),
                    caret = "^",
                    col = loc.column,
                )?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Converts a serde_yaml error into a located diagnostic of `file`.
pub fn yaml_diagnostic(file: &SourceFile, err: &serde_yaml::Error) -> Diagnostic {
    // serde_yaml appends " at line L column C" to its message; we show the location ourselves.
    let message = err.to_string();
    let message = match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message,
    };
    match err.location() {
        Some(loc) => file.error_at(loc.line(), loc.column(), message),
        None => file.error_without_location(message),
    }
}

/// Everything wrong with the inputs of a compilation, file by file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// One error per file that has problems.
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CompileError {}

impl From<ConfigError> for CompileError {
    fn from(e: ConfigError) -> Self {
        Self { errors: vec![e] }
    }
}

impl From<Vec<ConfigError>> for CompileError {
    fn from(errors: Vec<ConfigError>) -> Self {
        Self { errors }
    }
}
