//! Value types of the file formats that need parsing beyond serde's primitives.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A size in bytes, written in YAML as `64KiB`, `1 MiB`, `100MB` or a plain integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// The size as `usize`, saturating on 32-bit targets.
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Exact binary units when they divide evenly, so the plan round-trips byte for byte.
        const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
        for (unit, name) in UNITS {
            if self.0 >= unit && self.0.is_multiple_of(unit) {
                return write!(f, "{}{}", self.0 / unit, name);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .parse::<bytesize::ByteSize>()
            .map(|b| ByteSize(b.as_u64()))
            .map_err(|_| {
                format!(
                    "invalid size `{s}`: expected a number with a unit such as 64KiB, 1MiB or 512B"
                )
            })
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Str(String),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "invalid size: expected a number of bytes or a string such as 64KiB",
            )
        })? {
            Raw::Int(n) => Ok(ByteSize(n)),
            Raw::Str(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A web origin: scheme, host and port, compared exactly (RFC 6454 serialisation).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    /// `http` or `https`.
    pub scheme: String,
    /// Lower-case host name or IP literal.
    pub host: String,
    /// Explicit or default port.
    pub port: u16,
}

impl Origin {
    /// The default port of a scheme.
    fn default_port(scheme: &str) -> Option<u16> {
        match scheme {
            "http" | "ws" => Some(80),
            "https" | "wss" => Some(443),
            _ => None,
        }
    }
}

impl FromStr for Origin {
    type Err = String;
    /// Parses an origin as browsers send it: `scheme://host[:port]` with nothing after it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let expected = "expected an origin such as https://app.example.com (scheme, host and optional port, no path)";
        let url =
            url::Url::parse(s).map_err(|e| format!("invalid origin `{s}`: {e}; {expected}"))?;
        let scheme = url.scheme().to_string();
        let default = Self::default_port(&scheme)
            .filter(|_| scheme == "http" || scheme == "https")
            .ok_or_else(|| {
                format!("invalid origin `{s}`: scheme must be http or https; {expected}")
            })?;
        let host = url
            .host_str()
            .ok_or_else(|| format!("invalid origin `{s}`: no host; {expected}"))?
            .to_ascii_lowercase();
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "invalid origin `{s}`: contains credentials; {expected}"
            ));
        }
        // `Url` normalises an empty path to "/"; anything more is not an origin.
        let rest = &s[s.find("://").map(|i| i + 3).unwrap_or(0)..];
        if rest.contains('/') || url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "invalid origin `{s}`: has a path, query or fragment; {expected}"
            ));
        }
        Ok(Origin {
            scheme,
            host,
            port: url.port().unwrap_or(default),
        })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Self::default_port(&self.scheme) {
            Some(p) if p == self.port => write!(f, "{}://{}", self.scheme, self.host),
            _ => write!(f, "{}://{}:{}", self.scheme, self.host, self.port),
        }
    }
}

impl Serialize for Origin {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Origin {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_and_decimal_units() {
        assert_eq!("64KiB".parse::<ByteSize>().map(|b| b.0), Ok(65536));
        assert_eq!("1 MiB".parse::<ByteSize>().map(|b| b.0), Ok(1 << 20));
        assert!("lots".parse::<ByteSize>().is_err());
        assert_eq!(ByteSize(65536).to_string(), "64KiB");
        assert_eq!(ByteSize(1000).to_string(), "1000B");
    }

    #[test]
    fn origins_are_exact_and_normalised() {
        let o: Origin = "https://App.Example.com".parse().expect("valid origin");
        assert_eq!(o.to_string(), "https://app.example.com");
        assert_eq!(o.port, 443);
        let p: Origin = "https://app.example.com:8443"
            .parse()
            .expect("valid origin");
        assert_ne!(o, p);
        assert!("https://app.example.com/path".parse::<Origin>().is_err());
        assert!("ftp://x".parse::<Origin>().is_err());
        assert!("null".parse::<Origin>().is_err());
    }
}
