//! wsaudit: a policy-as-code conformance harness for WebSocket security.
//!
//! The modules, lowest layer first (each uses only those before it; `tests/architecture.rs`
//! checks it):
//! - [`crypto`] holds the one rustls crypto provider and certificate helpers; [`wire`] is the
//!   WebSocket framing shared by the server and the harness; [`dialect`] holds the application
//!   protocols spoken over it (Socket.IO, graphql-transport-ws, STOMP, SignalR), without I/O.
//! - [`config`] loads policy, target and suite files with located errors, and keeps the one
//!   secret registry.
//! - [`plan`] compiles them into concrete cases (steps and expectations).
//! - [`client`] is the low-level attack client: TLS facts, raw handshakes and frames, HTTP.
//! - [`report`] is the one result model, its redaction point and a reporter per format.
//! - [`server`] is the hardened reference server, one module per defence.
//! - [`attacks`] executes cases: the legitimate client's profile, the message channel (where
//!   protocol dialects plug in), and one file per concern.
//! - [`run`] schedules cases with deadlines and gates them on their positive controls.
//! - [`scan`] is the page scan: WebSocket references in a page and its scripts, probed for CSWSH.
//! - [`fuzzing`] holds live fuzzing (`wsaudit fuzz`) and, with the `fuzz-harness` feature, the
//!   cargo-fuzz harnesses (`fuzz/`).
//! - [`init`] probes an endpoint and writes a starter target file (`wsaudit init`).
//! - [`demo`] is the one-command tour.

pub mod attacks;
pub mod client;
pub mod config;
pub mod crypto;
pub mod demo;
pub mod dialect;
pub mod fuzzing;
pub mod init;
pub mod plan;
pub mod report;
pub mod run;
pub mod scan;
pub mod server;
pub mod wire;
