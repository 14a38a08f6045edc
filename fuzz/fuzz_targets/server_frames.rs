#![no_main]
//! `server_frames`: invariant and input format in `wsaudit::fuzzing::targets::server_frames`.
wsaudit_fuzz::target!(server_frames);
