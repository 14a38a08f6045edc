#![no_main]
//! `config_load`: invariant and input format in `wsaudit::fuzzing::targets::config_load`.
wsaudit_fuzz::target!(config_load);
