//! Running a compiled plan against a target: scheduling, deadlines, positive-control gating.

pub mod gate;
pub mod progress;
pub mod scheduler;

pub use scheduler::{CaseFuture, Finished, Job, Outcome, Transcript, run_jobs};
