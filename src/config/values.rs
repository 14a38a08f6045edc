//! Value types of the file formats that need parsing beyond serde's primitives.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Serde through the type's `Display` and `FromStr`: the YAML form is the text a user writes,
/// and a value that does not parse is the parser's own error.
macro_rules! serde_as_text {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

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
        let text = s.trim();
        // `bytesize` saturates at u64::MAX; compute the product first to refuse what overflows.
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let number = text[..split].parse::<f64>();
        let unit = format!("1{}", text[split..].trim()).parse::<bytesize::ByteSize>();
        // u64::MAX + 1, exactly representable as f64: anything at or past it does not fit.
        const LIMIT: f64 = 18_446_744_073_709_551_616.0;
        if let (Ok(number), Ok(unit)) = (number, unit)
            && number * unit.as_u64() as f64 >= LIMIT
        {
            return Err(format!(
                "invalid size \"{s}\": too large to count in bytes: expected a size below 16EiB"
            ));
        }
        text.parse::<bytesize::ByteSize>()
            .map(|b| ByteSize(b.as_u64()))
            .map_err(|_| {
                format!("invalid size \"{s}\": expected a number with a unit such as 64KiB, 1MiB or 512B")
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
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of bytes or a size such as 64KiB")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v).map(ByteSize).map_err(|_| {
                    E::custom(format!(
                        "invalid size {v}: expected a positive size such as 64KiB"
                    ))
                })
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
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
            url::Url::parse(s).map_err(|e| format!("invalid origin \"{s}\": {e}; {expected}"))?;
        let scheme = url.scheme().to_string();
        let default = Self::default_port(&scheme)
            .filter(|_| scheme == "http" || scheme == "https")
            .ok_or_else(|| {
                format!("invalid origin \"{s}\": scheme must be http or https; {expected}")
            })?;
        let host = url
            .host_str()
            .ok_or_else(|| format!("invalid origin \"{s}\": no host; {expected}"))?
            .to_ascii_lowercase();
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "invalid origin \"{s}\": contains credentials; {expected}"
            ));
        }
        // `Url` normalises an empty path to "/"; anything more is not an origin.
        let rest = &s[s.find("://").map(|i| i + 3).unwrap_or(0)..];
        if rest.contains('/') || url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "invalid origin \"{s}\": has a path, query or fragment; {expected}"
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

serde_as_text!(Origin);

impl schemars::JsonSchema for ByteSize {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ByteSize".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A size: a number of bytes or a string such as 64KiB, 1MiB or 512B.",
            "anyOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string", "pattern": "^\\s*[0-9]+(\\.[0-9]+)?\\s*([KkMmGgTtPpEe]i?)?[Bb]?\\s*$" }
            ]
        })
    }
}

impl schemars::JsonSchema for Origin {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Origin".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A web origin: scheme (http or https), host and optional port, no path.",
            "type": "string",
            "pattern": "^https?://[^/?#]+$"
        })
    }
}

/// Serde adapter for durations written as `30s`, `500ms` or `1m 30s` (humantime syntax), with an
/// error that says what was expected. Use with `#[serde(with = "crate::config::values::duration")]`.
pub mod duration {
    use std::fmt;
    use std::time::Duration;

    use serde::{Deserializer, Serializer, de};

    /// Writes a duration in humantime syntax (`500ms`, `1m 30s`).
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    /// Reads a duration string; numbers without a unit are refused (seconds or milliseconds?).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(Visitor)
    }

    /// Parses a duration string with the same error text as the deserialiser.
    pub fn parse(text: &str) -> Result<Duration, String> {
        humantime::parse_duration(text.trim()).map_err(|_| {
            format!("invalid duration \"{text}\": expected a duration such as 30s or 500ms")
        })
    }

    struct Visitor;

    impl de::Visitor<'_> for Visitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration such as 30s or 500ms")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            parse(v).map_err(E::custom)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            Err(E::custom(format!(
                "invalid duration {v}: expected a duration with a unit such as {v}s or {v}ms"
            )))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
            Err(E::custom(format!(
                "invalid duration {v}: expected a duration with a unit such as 30s or 500ms"
            )))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
            Err(E::custom(format!(
                "invalid duration {v}: expected a duration with a unit such as 30s or 500ms"
            )))
        }
    }

    /// Serde adapter for `Option<Duration>`.
    pub mod option {
        use std::time::Duration;

        use serde::{Deserialize, Deserializer, Serializer};

        /// Writes `Some` as a humantime string and `None` as null.
        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => super::serialize(d, s),
                None => s.serialize_none(),
            }
        }

        /// Reads an optional duration string.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            #[derive(Deserialize)]
            struct Wrap(#[serde(deserialize_with = "super::deserialize")] Duration);
            Option::<Wrap>::deserialize(d).map(|o| o.map(|w| w.0))
        }
    }
}

/// JSON Schema of a duration string, for `#[schemars(schema_with = ...)]`.
pub fn duration_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "A duration such as 30s, 500ms or 1m 30s.",
        "type": "string",
        "pattern": "^\\s*([0-9]+\\s*[a-zA-Zµ]+\\s*)+$"
    })
}

/// A JSON pointer (RFC 6901) such as `/ticket` or `/data/0/type`, checked when read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JsonPointer(pub String);

impl JsonPointer {
    /// The pointer text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Looks the pointer up in a JSON document.
    pub fn get<'v>(&self, doc: &'v serde_json::Value) -> Option<&'v serde_json::Value> {
        doc.pointer(&self.0)
    }
}

impl FromStr for JsonPointer {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let expected = "expected a JSON pointer such as /ticket (empty, or starting with `/`; `~` only as ~0 or ~1)";
        if !s.is_empty() && !s.starts_with('/') {
            return Err(format!("invalid JSON pointer \"{s}\": {expected}"));
        }
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
                return Err(format!("invalid JSON pointer \"{s}\": {expected}"));
            }
        }
        Ok(Self(s.to_string()))
    }
}

impl fmt::Display for JsonPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

serde_as_text!(JsonPointer);

impl schemars::JsonSchema for JsonPointer {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "JsonPointer".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A JSON pointer (RFC 6901) such as /ticket.",
            "type": "string",
            "pattern": "^(/([^~]|~[01])*)*$"
        })
    }
}

/// A URL restricted to a set of schemes (`ws`/`wss` for WebSocket endpoints, `http`/`https` for
/// the ticket endpoint), with a host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CheckedUrl<const WEB: bool>(pub url::Url);

/// A `ws://` or `wss://` URL.
pub type WsUrl = CheckedUrl<false>;
/// An `http://` or `https://` URL.
pub type HttpUrl = CheckedUrl<true>;

impl<const WEB: bool> CheckedUrl<WEB> {
    fn schemes() -> (&'static str, &'static str) {
        if WEB {
            ("http", "https")
        } else {
            ("ws", "wss")
        }
    }

    /// The URL text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl<const WEB: bool> FromStr for CheckedUrl<WEB> {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (plain, secure) = Self::schemes();
        let expected = format!(
            "expected an absolute {plain}:// or {secure}:// URL such as {secure}://example.com/ws"
        );
        let url =
            url::Url::parse(s).map_err(|e| format!("invalid URL \"{s}\": {e}; {expected}"))?;
        if url.scheme() != plain && url.scheme() != secure {
            return Err(format!(
                "invalid URL \"{s}\": scheme `{}` is not {plain} or {secure}; {expected}",
                url.scheme()
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("invalid URL \"{s}\": no host; {expected}"));
        }
        Ok(Self(url))
    }
}

impl<const WEB: bool> fmt::Display for CheckedUrl<WEB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl<const WEB: bool> Serialize for CheckedUrl<WEB> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl<'de, const WEB: bool> Deserialize<'de> for CheckedUrl<WEB> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl<const WEB: bool> schemars::JsonSchema for CheckedUrl<WEB> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        if WEB {
            "HttpUrl".into()
        } else {
            "WsUrl".into()
        }
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        if WEB {
            schemars::json_schema!({
                "description": "An http:// or https:// URL.",
                "type": "string",
                "pattern": "^https?://"
            })
        } else {
            schemars::json_schema!({
                "description": "A ws:// or wss:// URL.",
                "type": "string",
                "pattern": "^wss?://"
            })
        }
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
        assert_eq!("15EiB".parse::<ByteSize>().map(|b| b.0), Ok(15 << 60));
        assert_eq!("1024".parse::<ByteSize>().map(|b| b.0), Ok(1024));
        assert_eq!("1.5KiB".parse::<ByteSize>().map(|b| b.0), Ok(1536));
    }

    #[test]
    fn sizes_past_u64_are_refused_not_saturated() {
        for text in [
            "16EiB",
            "18446744073709551616EiB",
            "18446744073709551616",
            "99999PiB",
        ] {
            let err = text.parse::<ByteSize>().expect_err(text);
            assert!(
                err.contains("too large") && err.contains("expected"),
                "{text}: {err}"
            );
        }
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

    #[test]
    fn pointers_and_urls_are_checked() {
        assert!("/ticket".parse::<JsonPointer>().is_ok());
        assert!("".parse::<JsonPointer>().is_ok());
        assert!("/a~1b/~0".parse::<JsonPointer>().is_ok());
        assert!("ticket".parse::<JsonPointer>().is_err());
        assert!("/a~2".parse::<JsonPointer>().is_err());
        assert!("wss://h/ws".parse::<WsUrl>().is_ok());
        assert!("https://h/ws".parse::<WsUrl>().is_err());
        assert!("https://h/t".parse::<HttpUrl>().is_ok());
        assert!("not a url".parse::<HttpUrl>().is_err());
        assert_eq!(
            duration::parse("500ms"),
            Ok(std::time::Duration::from_millis(500))
        );
        assert!(duration::parse("30 parsecs").is_err());
    }
}
