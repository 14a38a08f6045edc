//! Application protocols spoken over the WebSocket: how a business message is wrapped on the
//! wire and how what the server sends is unwrapped into application messages. A dialect plugs
//! in here, behind the [`super::channel::Channel`]; frame-level attacks (size, RFC 6455) never
//! go through it.

use std::borrow::Cow;

/// The application protocol of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// Business messages are the WebSocket text messages themselves (JSON or any text).
    #[default]
    Raw,
}

impl Dialect {
    /// The dialect's name as written in target files.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Raw => "raw",
        }
    }

    /// The text sent on the wire for one business (or authentication) message.
    pub fn wrap(self, message: &str) -> Cow<'_, str> {
        match self {
            Dialect::Raw => Cow::Borrowed(message),
        }
    }

    /// The application messages one received text message carries.
    pub fn unwrap(self, text: String) -> Vec<String> {
        match self {
            Dialect::Raw => vec![text],
        }
    }
}
