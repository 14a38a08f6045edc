//! Reporting: one result model ([`model::RunReport`]) redacted once ([`model::Redacted`]) and
//! rendered by one reporter per format.

pub mod model;
pub mod terminal;

pub use model::{CaseResult, ControlResult, Evidence, Redacted, Role, RunReport, Summary, Verdict};
