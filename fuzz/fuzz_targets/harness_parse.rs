#![no_main]
//! `harness_parse`: invariant and input format in `wsaudit::fuzzing::targets::harness_parse`.
wsaudit_fuzz::target!(harness_parse);
