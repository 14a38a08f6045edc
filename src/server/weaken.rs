//! The `--weaken` switches: each turns off exactly one defence, the way a careless server would,
//! so every attack can be shown to fail against a server lacking its defence.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// Declares a [`Switch`] kind: the enum (names are its variants in kebab-case), its `ALL`
/// list and `name`, `Display`, and `FromStr` with an error that lists the names that exist.
macro_rules! switch_kind {
    (
        $(#[$meta:meta])*
        pub enum $ty:ident: $what:literal {
            $($(#[$vmeta:meta])* $variant:ident,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            Hash,
            PartialOrd,
            Ord,
            strum::VariantArray,
            strum::IntoStaticStr,
        )]
        #[strum(serialize_all = "kebab-case")]
        pub enum $ty {
            $($(#[$vmeta])* $variant,)+
        }

        impl $ty {
            /// Every switch of this kind, in the order `--help` lists them.
            pub const ALL: &'static [$ty] = <$ty as strum::VariantArray>::VARIANTS;

            /// The name used on the command line.
            pub fn name(self) -> &'static str {
                self.into()
            }
        }

        impl $crate::server::weaken::Switch for $ty {
            const ALL: &'static [Self] = $ty::ALL;
            const WHAT: &'static str = $what;
            fn name(self) -> &'static str {
                $ty::name(self)
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $crate::server::weaken::parse_switch(s)
            }
        }
    };
}
pub(crate) use switch_kind;

switch_kind! {
    /// One defence of the reference server that can be switched off.
    pub enum Defence: "defence" {
        /// The plaintext listener upgrades like the TLS one instead of refusing.
        Tls,
        /// TLS is capped at 1.2 instead of offering 1.3.
        TlsVersion,
        /// The certificate names a different host.
        TlsCert,
        /// Any Origin (or none) is accepted.
        Origin,
        /// A ticket or API token in the URL query authenticates the connection.
        UrlToken,
        /// Tickets may be used more than once.
        TicketReplay,
        /// Tickets never expire.
        TicketExpiry,
        /// Any non-empty ticket is accepted without looking it up.
        TicketValidation,
        /// A ticket issued to one session is accepted on another session's connection.
        TicketBinding,
        /// Business messages are processed before authentication.
        AuthRequired,
        /// The session cookie alone authenticates the WebSocket.
        CookieAuth,
        /// Unauthenticated connections are never timed out.
        UnauthTimeout,
        /// Messages are not validated: anything that parses is acknowledged.
        Schema,
        /// No per-connection rate limit.
        RateLimit,
        /// Messages are buffered up to 100 MiB whatever the policy says.
        MaxSize,
        /// permessage-deflate is negotiated whenever a client offers it, even when the policy
        /// refuses compression.
        Deflate,
        /// No pings, no stale-connection termination.
        Heartbeat,
        /// The session cookie has no SameSite attribute.
        CookieSamesite,
        /// RFC 6455 violations are tolerated instead of closed with 1002.
        ProtocolStrict,
    }
}

/// One kind of reference-server switch (`--weaken`, `--variant`, ...): a closed set of named
/// behaviours, parsed and listed the same way.
pub trait Switch: Copy + Ord + fmt::Debug + 'static {
    /// Every switch of the kind, in the order `--help` lists them.
    const ALL: &'static [Self];
    /// What one switch is called in errors (`defence`, `variant`).
    const WHAT: &'static str;
    /// The name used on the command line.
    fn name(self) -> &'static str;
}

/// Parses one switch name, or says which names exist.
pub fn parse_switch<T: Switch>(s: &str) -> Result<T, String> {
    T::ALL
        .iter()
        .copied()
        .find(|d| d.name() == s.trim())
        .ok_or_else(|| {
            let names: Vec<_> = T::ALL.iter().map(|d| d.name()).collect();
            format!(
                "unknown {} `{s}`: expected one of {}",
                T::WHAT,
                names.join(", ")
            )
        })
}

/// A set of switches of one kind; empty for the plain hardened server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switches<T: Switch>(BTreeSet<T>);

impl<T: Switch> Default for Switches<T> {
    fn default() -> Self {
        Self(BTreeSet::new())
    }
}

impl<T: Switch> Switches<T> {
    /// No switch on.
    pub fn none() -> Self {
        Self::default()
    }

    /// The given switches on.
    pub fn of(switches: impl IntoIterator<Item = T>) -> Self {
        Self(switches.into_iter().collect())
    }

    /// Whether `d` is on.
    pub fn is(&self, d: T) -> bool {
        self.0.contains(&d)
    }

    /// The switches that are on.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        self.0.iter().copied()
    }
}

impl<T: Switch> FromStr for Switches<T> {
    type Err = String;
    /// Parses a comma-separated list such as `origin,max-size`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(parse_switch)
            .collect::<Result<BTreeSet<_>, _>>()
            .map(Self)
    }
}

/// The set of defences switched off; empty for the hardened server.
pub type Weakened = Switches<Defence>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_choices() {
        fn round_trip<T: Switch + std::str::FromStr<Err = String>>() {
            for &d in T::ALL {
                assert_eq!(d.name().parse::<T>(), Ok(d));
                assert_eq!(parse_switch::<T>(d.name()), Ok(d));
            }
        }
        round_trip::<Defence>();
        round_trip::<super::super::flaw::Flaw>();
        round_trip::<super::super::variant::Variant>();
        let err = "origin-substrng".parse::<super::super::flaw::Flaws>();
        assert!(err.is_err_and(|e| e.contains("unknown flaw")));
        let w: Weakened = "origin, max-size".parse().expect("valid list");
        assert!(w.is(Defence::Origin) && w.is(Defence::MaxSize) && !w.is(Defence::Tls));
        let err = "orign".parse::<Weakened>().expect_err("typo");
        assert!(err.contains("expected one of tls, tls-version"), "{err}");
    }
}
