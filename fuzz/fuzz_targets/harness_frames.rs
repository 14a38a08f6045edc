#![no_main]
//! `harness_frames`: invariant and input format in `wsaudit::fuzzing::targets::harness_frames`.
wsaudit_fuzz::target!(harness_frames);
