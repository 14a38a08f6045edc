//! The attack engine: executes compiled cases against a target.
//!
//! Suites (data) own the cases; this module owns their execution, one file per concern, each
//! serving the families named in its header: [`handshake`] (transport, origin, URL tokens),
//! [`auth`] (ticket, unauthenticated), [`messages`] (messages, rate limit), [`frames`] (size,
//! protocol), [`lifecycle`] (heartbeat, timeouts), [`transport`] (TLS, cookies) and [`health`].
//! Every step goes through the one client layer ([`crate::client`]).

mod auth;
mod frames;
mod handshake;
mod health;
mod lifecycle;
pub mod messages;
pub mod runtime;
pub mod session;
mod transport;

pub use runtime::TargetRuntime;
pub use session::run_case;
