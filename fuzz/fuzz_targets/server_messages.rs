#![no_main]
//! `server_messages`: invariant and input format in `wsaudit::fuzzing::targets::server_messages`.
wsaudit_fuzz::target!(server_messages);
