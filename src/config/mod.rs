//! Loading and validating the product's files (policy, target, suite), with file:line:column
//! in every error. Everything that reads a user's file goes through here.

pub mod policy;
pub mod source;
pub mod values;

pub use policy::{CheckParams, Control, LoadedPolicy, Policy, Severity};
pub use source::{ConfigError, Diagnostic, Location, SourceFile};
