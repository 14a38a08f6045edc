//! Reporting: one result model ([`model::RunReport`]) redacted once ([`model::Redacted`]) and
//! rendered by one reporter per format.

pub mod case;
pub mod exit;
pub mod html;
pub mod json;
pub mod junit;
pub mod model;
pub mod outputs;
pub mod partition;
pub mod sample;
pub mod sarif;
pub mod terminal;
pub mod text;
pub mod waivers;

pub use case::{CaseLog, Outcome};
pub use exit::Exit;
pub use model::{CaseResult, ControlResult, Evidence, Redacted, Role, RunReport, Summary, Verdict};
