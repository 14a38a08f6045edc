#![no_main]
//! `plan_compile`: invariant and input format in `wsaudit::fuzzing::targets::plan_compile`.
wsaudit_fuzz::target!(plan_compile);
