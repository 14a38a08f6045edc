//! The `--flaw` switches: each makes one defence subtly wrong, the way real servers get it
//! wrong (a partial implementation, not a defence switched off), so tests can prove the attack
//! variants of each family catch it. Each is honoured in the module of its defence.

use super::weaken::Switches;

super::weaken::switch_kind! {
    /// One realistic partial implementation of a defence.
    pub enum Flaw: "flaw" {
        /// The plaintext listener upgrades a handshake that carries no Origin (it takes it for an
        /// internal, non-browser client).
        PlainNoOrigin,
        /// The allowlist is checked by substring: an Origin that is part of an allowed one
        /// (`https://app.example.co`, `https://app.e`) connects.
        OriginSubstring,
        /// Every Origin header (and every comma-separated part of one) is looked at, and any allowed
        /// one lets the handshake through.
        OriginAnyHeader,
        /// Only the host of the Origin is compared: another scheme or port connects.
        OriginHostOnly,
        /// The API token authenticates when passed as `?api_key=` (a parameter the policy's list does
        /// not name).
        UrlApiKey,
        /// A ticket offered as a `Sec-WebSocket-Protocol` value authenticates.
        UrlSubprotocol,
        /// Tickets are JWTs whose signature is never verified (the claims are decoded and trusted).
        TicketJwtUnverified,
        /// Single use is not atomic: a ticket is checked, then marked used a moment later, so two
        /// concurrent redemptions both succeed.
        TicketRace,
        /// Refusals say why (`ticket_unknown`, `ticket_replayed`, `ticket_expired`), telling a
        /// thief whether a stolen ticket was genuine.
        TicketVerbose,
        /// Tickets expire after three times the policy's TTL.
        TicketTtlLoose,
        /// A ticket is looked up by prefix: a truncated ticket redeems the real one.
        TicketPrefix,
        /// The authentication deadline is an idle timer: any frame (a ping, a pong) resets it, so a
        /// client that keeps sending stays unauthenticated forever.
        UnauthIdleTimer,
        /// A business message before authentication gets no reply (it is silently dropped, or
        /// executed); the connection is closed only at the authentication deadline.
        UnauthSilent,
        /// `true`/`false` pass for numbers (`isinstance(x, (int, float))`).
        SchemaBoolNumber,
        /// Patterns are searched, not matched: without the end anchor, trailing junk passes.
        SchemaUnanchored,
        /// The rate limiter sits behind validation: invalid messages are never counted.
        RateAfterValidation,
        /// The limit enforced is three times the policy's.
        RateLoose,
        /// A fixed window that starts at a connection's first message and resets every second: a
        /// burst straddling the reset gets twice the limit through.
        RateFixedWindow,
        /// Pings are not counted: a ping flood is answered forever.
        RatePingsFree,
        /// The size limit is checked per frame, not per message: a fragmented message may exceed it.
        SizePerFrame,
        /// The compressed size of a message is checked, not what it inflates to.
        SizeInflatedUnchecked,
        /// Pings are sent on time, but a client that stops answering is never dropped.
        HeartbeatNoTerminate,
        /// Pings are sent at four times the policy's interval.
        HeartbeatSlow,
        /// The session cookie is `SameSite=Lax` where the policy requires `Strict`.
        CookieLax,
        /// Any close code is accepted (1005, 999, 5000 answered with a normal close).
        ProtocolCloseCodes,
        /// A `Sec-WebSocket-Protocol` offer holding a protocol the server does not speak is copied
        /// whole into the 101 (`if offered: response[header] = request[header]`), instead of one
        /// protocol it speaks being chosen, or none.
        ProtocolSubprotocolCopy,
        /// After answering a client's close, one more queued message goes out (a broadcast
        /// racing the close).
        ProtocolDataAfterClose,
    }
}

/// The flaws a server runs with; empty for the reference behaviour.
pub type Flaws = Switches<Flaw>;
