//! Fuzzing: the invariants the cargo-fuzz targets check, and live fuzzing of any target.
//!
//! - `targets` (feature `fuzz-harness`, off in the default build) holds one sans-IO harness function per cargo-fuzz target (`fuzz/`): each
//!   drives our own parsers or the reference server's decisions with arbitrary bytes and panics
//!   when its stated invariant breaks. The same functions replay the seed corpus and back the
//!   proptest properties of `cargo test`, so the fuzz targets and the test suite cannot drift.
//! - `alloc` (same feature) is the allocator cap those harnesses run under ("no unbounded allocation").
//! - [`rng`], [`mutate`] and [`oracle`] generate reproducible structure-aware mutations of a
//!   target's valid messages and frames, and decide which ones are invalid.
//! - [`live`] runs them against a target after authentication (`wsaudit fuzz`) and [`report`]
//!   turns the findings into the same report model as `wsaudit run`.

#[cfg(feature = "fuzz-harness")]
pub mod alloc;
pub mod live;
pub mod mutate;
pub mod options;
pub mod oracle;
pub mod report;
pub mod rng;
#[cfg(feature = "fuzz-harness")]
pub mod targets;

pub use live::run;
pub use options::FuzzOptions;
