//! Loading and validating the product's files (policy, target, suite), with file:line:column
//! in every error. Everything that reads a user's file goes through here.

pub mod check;
pub mod deser;
pub mod policy;
pub mod schema;
pub mod secrets;
pub mod source;
pub mod suite;
pub mod target;
pub mod values;
pub mod yaml_index;

pub use policy::{CheckParams, Control, LoadedPolicy, Policy, Severity};
pub use secrets::Secrets;
pub use source::{CompileError, ConfigError, Diagnostic, Location, SourceFile};
pub use suite::{LoadedSuite, Suite, SuiteSet};
pub use target::{LoadedTarget, Target};
