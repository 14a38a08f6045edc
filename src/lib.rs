//! wsaudit: a policy-as-code conformance harness for WebSocket security.
//!
//! - [`client`] is the low-level attack client: TLS facts, raw handshakes and frames, HTTP.
//! - [`config`] loads policy, target and suite files with located errors.
//! - [`plan`] compiles them into concrete cases (steps and expectations).
//! - [`wire`] is the WebSocket framing shared by the server and the harness.
//! - [`server`] is the hardened reference server, one module per defence.
//! - [`scan`] is the page scan: WebSocket references in a page and its scripts, probed for CSWSH.
//! - [`tls`] holds the one rustls crypto provider and certificate helpers.
//! - [`fuzzing`] holds the cargo-fuzz harnesses (`fuzz/`) and live fuzzing (`wsaudit fuzz`).

pub mod attacks;
pub mod client;
pub mod config;
pub mod demo;
pub mod fuzzing;
pub mod plan;
pub mod report;
pub mod run;
pub mod scan;
pub mod server;
pub mod tls;
pub mod wire;
