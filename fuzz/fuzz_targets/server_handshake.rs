#![no_main]
//! `server_handshake`: invariant and input format in `wsaudit::fuzzing::targets::server_handshake`.
wsaudit_fuzz::target!(server_handshake);
