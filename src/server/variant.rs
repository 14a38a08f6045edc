//! The `--variant` switches: secure behaviours that differ from the reference server's own
//! choices (another way to reject, to bind tickets, to answer), which a correct harness must
//! never fail. Each is honoured where its behaviour lives (tickets, cookies, the connection);
//! the emitted target file describes it (its close codes, its second identity).

use super::weaken::Switches;

super::weaken::switch_kind! {
    /// One secure variation of the reference server.
    pub enum Variant: "variant" {
        /// Rejects with application close codes, graphql-ws style: 4401 for a refused or missing
        /// authentication, 4408 for the authentication timeout, 4429 for the rate limit, 4400 for a
        /// message of the wrong type or encoding (the target file declares them).
        AppCloseCodes,
        /// Tickets are bound to the API user who fetched them, not to a browser session cookie: any
        /// connection may redeem a ticket once (the emitted target declares no second identity).
        UserBoundTickets,
        /// The ticket endpoint sets no cookie at all.
        NoCookie,
        /// Every invalid business message closes the connection (1008) instead of an error reply.
        Strict,
        /// Authenticated clients also receive unsolicited updates (`{"type":"update"}`) every 50 ms.
        UnsolicitedUpdates,
    }
}

/// The variants a server runs with; empty for the reference behaviour.
pub type Variants = Switches<Variant>;

/// The application close codes of [`Variant::AppCloseCodes`].
pub mod app_codes {
    /// A message of the wrong type or encoding.
    pub const INVALID_MESSAGE: u16 = 4400;
    /// Authentication refused or missing.
    pub const UNAUTHORIZED: u16 = 4401;
    /// No authentication in time.
    pub const TIMEOUT: u16 = 4408;
    /// Over the rate limit.
    pub const RATE_LIMITED: u16 = 4429;
}

impl Variants {
    /// The close code for a refusal whose standard code is `code` and whose kind is `kind`
    /// (`unauthorized`, `timeout`, `rate_limited`, `invalid_message`), under these variants.
    pub fn close_code(&self, code: u16, kind: Refusal) -> u16 {
        if !self.is(Variant::AppCloseCodes) {
            return code;
        }
        match kind {
            Refusal::Unauthorized => app_codes::UNAUTHORIZED,
            Refusal::Timeout => app_codes::TIMEOUT,
            Refusal::RateLimited => app_codes::RATE_LIMITED,
            Refusal::InvalidMessage => app_codes::INVALID_MESSAGE,
            Refusal::Other => code,
        }
    }
}

/// Why the server closes, for [`Variants::close_code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Authentication refused or missing.
    Unauthorized,
    /// No authentication in time.
    Timeout,
    /// Over the rate limit.
    RateLimited,
    /// A message of the wrong type or encoding.
    InvalidMessage,
    /// Anything else (size, protocol): the standard code stays.
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_variant() {
        let err = "strcit".parse::<Variants>().expect_err("typo");
        assert!(err.contains("unknown variant `strcit`"), "{err}");
        let plain = Variants::none();
        assert_eq!(plain.close_code(1008, Refusal::Unauthorized), 1008);
        let app: Variants = "app-close-codes".parse().expect("variant");
        assert_eq!(app.close_code(1008, Refusal::Unauthorized), 4401);
        assert_eq!(app.close_code(1009, Refusal::Other), 1009);
    }
}
