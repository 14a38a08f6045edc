//! Values derived from a control's parameters for suites to iterate over: look-alike origins
//! for the origin family, schema violations for the messages family. Both are deterministic:
//! the same policy and target always give the same lists in the same order.

use serde_json::{Map, Value as Json, json};

use crate::config::policy::UrlTokenParams;
use crate::config::values::Origin;

/// The kinds of look-alike origin derived from each allowed origin, in plan order.
pub const ORIGIN_VARIANT_KINDS: [&str; 9] = [
    "suffix",
    "prefix",
    "regex_dot",
    "subdomain",
    "scheme",
    "port",
    "truncation",
    "userinfo",
    "trailing_dot",
];

/// The URL credential parameter names tried: the policy's, then every common one it lacks
/// ([`UrlTokenParams::COMMON_PARAMS`]).
pub fn url_params(policy: &[String]) -> Vec<String> {
    UrlTokenParams {
        params: policy.to_vec(),
    }
    .tried()
}

/// One look-alike of an allowed origin, e.g. the suffix confusion `https://app.example.com.evil.example`.
///
/// Only what a browser can send: the RFC 6454 serialisation of some origin an attacker may
/// hold (lower case, default port omitted). Non-serialised spellings of an allowed origin
/// (`:443`, upper case) are neither attacks nor controls.
pub fn origin_variant(kind: &str, o: &Origin) -> Option<String> {
    let port = |o: &Origin| match (o.scheme.as_str(), o.port) {
        ("https", 443) | ("http", 80) => String::new(),
        (_, p) => format!(":{p}"),
    };
    let host = &o.host;
    Some(match kind {
        "suffix" => format!("{}://{host}.evil.example{}", o.scheme, port(o)),
        "prefix" => format!("{}://evil{host}{}", o.scheme, port(o)),
        "regex_dot" => {
            // The first dot read as a regex wildcard: app.example.com -> appXexample.com.
            let i = host.find('.')?;
            format!(
                "{}://{}X{}{}",
                o.scheme,
                &host[..i],
                &host[i + 1..],
                port(o)
            )
        }
        "subdomain" => format!("{}://evil.{host}{}", o.scheme, port(o)),
        "scheme" => {
            let other = if o.scheme == "https" { "http" } else { "https" };
            let same_port = match (o.scheme.as_str(), o.port) {
                ("https", 443) | ("http", 80) => String::new(),
                (_, p) => format!(":{p}"),
            };
            format!("{other}://{host}{same_port}")
        }
        // A part of the allowed origin (an allowlist checked by substring accepts it):
        // `https://app.example.co`.
        "truncation" => format!(
            "{}://{}{}",
            o.scheme,
            &host[..host.len().checked_sub(1)?],
            port(o)
        ),
        // The allowed origin as the user part of another (`https://app.example.com@evil.example`).
        "userinfo" => format!("{}://{host}{}@evil.example", o.scheme, port(o)),
        "trailing_dot" => format!("{}://{host}.{}", o.scheme, port(o)),
        "port" => {
            let changed = match o.port {
                443 | 80 => 8443,
                65535 => 1,
                p => p + 1,
            };
            format!("{}://{host}:{changed}", o.scheme)
        }
        _ => return None,
    })
}

/// Every look-alike of every allowed origin, by kind, leaving out those that are themselves
/// allowed (a variant that is allowed must connect, so it is no attack). Truncations are
/// several (a letter cut, the host cut after the first letter of its second label, the first
/// label alone); fragments join parts of two allowed origins (the scheme and host of one with
/// the port of another, the first label of one with the rest of another's host).
pub fn origin_variants(allowed: &[Origin]) -> serde_yaml::Mapping {
    let mut out = serde_yaml::Mapping::new();
    let mut kinds: Vec<&str> = ORIGIN_VARIANT_KINDS.to_vec();
    kinds.push("fragment");
    for kind in kinds {
        let mut list = Vec::new();
        for (i, o) in allowed.iter().enumerate() {
            let candidates: Vec<String> = match kind {
                "truncation" => truncations(o),
                "fragment" => allowed
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .flat_map(|(_, other)| fragments(o, other))
                    .collect(),
                _ => origin_variant(kind, o).into_iter().collect(),
            };
            for v in candidates {
                let is_allowed = v.parse::<Origin>().is_ok_and(|p| allowed.contains(&p))
                    || allowed.iter().any(|a| a.to_string() == v);
                if !is_allowed && !list.contains(&serde_yaml::Value::String(v.clone())) {
                    list.push(serde_yaml::Value::String(v));
                }
            }
        }
        out.insert(kind.into(), serde_yaml::Value::Sequence(list));
    }
    out
}

/// Parts of an allowed origin an allowlist checked by substring would accept:
/// `https://app.example.co`, `https://app.e`, `https://app`.
fn truncations(o: &Origin) -> Vec<String> {
    let mut out = Vec::new();
    let host = &o.host;
    let mut cut = |h: &str| {
        if !h.is_empty() && h != host.as_str() {
            let v = format!("{}://{h}", o.scheme);
            if !out.contains(&v) {
                out.push(v);
            }
        }
    };
    if let Some(last) = host.char_indices().last() {
        cut(&host[..last.0]);
    }
    if let Some(dot) = host.find('.') {
        if let Some(next) = host[dot + 1..].chars().next() {
            cut(&host[..dot + 1 + next.len_utf8()]);
        }
        cut(&host[..dot]);
    }
    out
}

/// Origins joining parts of `a` and `b`: `a`'s scheme and host with `b`'s port, and `a`'s first
/// host label in `b`'s domain.
fn fragments(a: &Origin, b: &Origin) -> Vec<String> {
    let default = |o: &Origin| matches!((o.scheme.as_str(), o.port), ("https", 443) | ("http", 80));
    let mut out = Vec::new();
    if a.port != b.port {
        let port = if default(b) && a.scheme == b.scheme {
            String::new()
        } else {
            format!(":{}", b.port)
        };
        out.push(format!("{}://{}{port}", a.scheme, a.host));
    }
    if let (Some(a_label), Some((_, b_rest))) = (a.host.split('.').next(), b.host.split_once('.')) {
        let port = if default(b) {
            String::new()
        } else {
            format!(":{}", b.port)
        };
        out.push(format!("{}://{a_label}.{b_rest}{port}", b.scheme));
    }
    out
}

/// One message generated to break the policy's schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// Stable identifier, e.g. `missing-amount`.
    pub id: String,
    /// What was changed.
    pub description: String,
    /// The message text (compact JSON).
    pub message: String,
}

/// Schema violations derived from `schema` by mutating the valid message `base` (a JSON object):
/// each required field missing, each property of the wrong type, each bound crossed, each
/// pattern and enum broken, an extra field when additional properties are forbidden. Only
/// mutations the schema really rejects are kept, so no generated case can be wrong.
pub fn schema_violations(schema: &Json, base: &Json) -> Vec<Violation> {
    let Json::Object(base_obj) = base else {
        return Vec::new();
    };
    let validator = jsonschema::validator_for(schema).ok();
    let mut out: Vec<Violation> = Vec::new();
    let mut push = |id: String, description: String, obj: Map<String, Json>| {
        let value = Json::Object(obj);
        let rejected = validator.as_ref().is_none_or(|v| !v.is_valid(&value));
        if rejected && !out.iter().any(|x| x.id == id) {
            out.push(Violation {
                id,
                description,
                message: value.to_string(),
            });
        }
    };
    if let Some(required) = schema.get("required").and_then(Json::as_array) {
        for field in required.iter().filter_map(Json::as_str) {
            let mut m = base_obj.clone();
            m.remove(field);
            push(
                format!("missing-{field}"),
                format!("required field `{field}` missing"),
                m,
            );
        }
    }
    let empty = Map::new();
    let props = schema
        .get("properties")
        .and_then(Json::as_object)
        .unwrap_or(&empty);
    for (name, prop) in props {
        let with = |v: Json| {
            let mut m = base_obj.clone();
            m.insert(name.clone(), v);
            m
        };
        let current = base_obj.get(name);
        push(
            format!("wrong-type-{name}"),
            format!("`{name}` of the wrong type"),
            with(wrong_type(prop, current)),
        );
        for (key, delta, label) in [
            ("minimum", -1.0, "below its minimum"),
            ("exclusiveMinimum", 0.0, "at its exclusive minimum"),
            ("maximum", 1.0, "above its maximum"),
            ("exclusiveMaximum", 0.0, "at its exclusive maximum"),
        ] {
            if let Some(bound) = prop.get(key).and_then(Json::as_f64) {
                let v = bound + delta;
                let n = if v.fract() == 0.0 && v.abs() < 1e15 {
                    json!(v as i64)
                } else {
                    json!(v)
                };
                push(
                    format!("{}-{name}", kebab(key)),
                    format!("`{name}` {label} ({n})"),
                    with(n),
                );
            }
        }
        if let Some(min) = prop.get("minLength").and_then(Json::as_u64)
            && min > 0
        {
            let s = "a".repeat((min - 1) as usize);
            push(
                format!("min-length-{name}"),
                format!("`{name}` shorter than {min}"),
                with(json!(s)),
            );
        }
        if let Some(max) = prop.get("maxLength").and_then(Json::as_u64) {
            let s = "a".repeat((max.min(1 << 16) + 1) as usize);
            push(
                format!("max-length-{name}"),
                format!("`{name}` longer than {max}"),
                with(json!(s)),
            );
        }
        if prop.get("pattern").is_some() {
            push(
                format!("pattern-{name}"),
                format!("`{name}` not matching its pattern"),
                with(json!("!does-not-match!")),
            );
        }
        if let Some(values) = prop.get("enum").and_then(Json::as_array) {
            let mut candidate = "NOT-IN-ENUM".to_string();
            while values.contains(&json!(candidate)) {
                candidate.push('X');
            }
            push(
                format!("enum-{name}"),
                format!("`{name}` outside its enum"),
                with(json!(candidate)),
            );
        }
        if let Some(c) = prop.get("const") {
            let other = match c {
                Json::String(s) => json!(format!("not-{s}")),
                Json::Number(_) => json!(-1),
                _ => json!("not-the-constant"),
            };
            push(
                format!("const-{name}"),
                format!("`{name}` not its constant"),
                with(other),
            );
        }
    }
    for (name, _) in props {
        for (i, value) in generated_values(schema, base_obj, name)
            .into_iter()
            .enumerate()
        {
            let shown = crate::config::secrets::preview(value.to_string().as_bytes(), 40);
            let mut m = base_obj.clone();
            m.insert(name.clone(), value);
            push(
                format!("generated-{name}-{}", i + 1),
                format!("`{name}` = {shown} (generated)"),
                m,
            );
        }
    }
    for (name, prop) in props {
        let with = |v: Json| {
            let mut m = base_obj.clone();
            m.insert(name.clone(), v);
            m
        };
        let declared = prop.get("type").and_then(Json::as_str);
        let current = base_obj.get(name);
        // Type confusion: what loose type checks let through.
        if matches!(declared, Some("number" | "integer")) {
            push(
                format!("bool-{name}"),
                format!("`{name}` a boolean (true) where a number is required"),
                with(json!(true)),
            );
            push(
                format!("numeric-string-{name}"),
                format!("`{name}` a numeric string where a number is required"),
                with(json!(current.map_or("1".to_string(), |c| c.to_string()))),
            );
            push(
                format!("object-{name}"),
                format!("`{name}` an object where a number is required"),
                with(json!({})),
            );
            push(
                format!("array-{name}"),
                format!("`{name}` an array where a number is required"),
                with(json!([])),
            );
        }
        if declared == Some("integer") {
            push(
                format!("float-{name}"),
                format!("`{name}` a float where an integer is required"),
                with(json!(current.and_then(Json::as_f64).unwrap_or(1.0) + 0.5)),
            );
        }
        if declared == Some("string") {
            push(
                format!("bool-{name}"),
                format!("`{name}` a boolean where a string is required"),
                with(json!(false)),
            );
            push(
                format!("array-{name}"),
                format!("`{name}` an array where a string is required"),
                with(json!([current.cloned().unwrap_or(Json::Null)])),
            );
        }
        // Pattern anchoring: the valid value with junk around it, a newline, other digits.
        if prop.get("pattern").is_some()
            && let Some(Json::String(valid)) = current
        {
            let arabic: String = valid
                .chars()
                .map(|c| match c.to_digit(10) {
                    Some(d) => char::from_u32(0x0660 + d).unwrap_or(c),
                    None => c,
                })
                .collect();
            for (id, label, v) in [
                (
                    "pattern-trailing",
                    "with trailing junk",
                    format!("{valid}X"),
                ),
                ("pattern-leading", "with leading junk", format!("X{valid}")),
                (
                    "pattern-newline",
                    "followed by a newline",
                    format!("{valid}\n"),
                ),
                ("pattern-unicode-digits", "with Arabic-Indic digits", arabic),
            ] {
                push(
                    format!("{id}-{name}"),
                    format!("`{name}` the valid value {label}"),
                    with(json!(v)),
                );
            }
        }
        // The edges of float precision: the next representable numbers past the inclusive
        // bounds (an exclusive bound itself is the edge, already tried above).
        for (key, up) in [("maximum", true), ("minimum", false)] {
            let Some(bound) = prop.get(key).and_then(Json::as_f64) else {
                continue;
            };
            let v = next_after(bound, up);
            push(
                format!("precision-{key}-{name}"),
                format!("`{name}` {v:?}, just past its {key} at float precision"),
                with(json!(v)),
            );
        }
        if prop.get("exclusiveMinimum").and_then(Json::as_f64) == Some(0.0) {
            push(
                format!("negative-zero-{name}"),
                format!("`{name}` -0.0, not above its exclusive minimum 0"),
                with(json!(-0.0)),
            );
        }
    }
    if schema.get("additionalProperties") == Some(&Json::Bool(false)) {
        let mut field = "unexpected_field".to_string();
        while base_obj.contains_key(&field) {
            field.push('_');
        }
        let mut m = base_obj.clone();
        m.insert(field.clone(), json!(true));
        push("extra-field".into(), format!("extra field `{field}`"), m);
    }
    // Duplicate keys: the last value (which most parsers keep) invalid, the first valid.
    for name in props.keys() {
        let Some(valid) = base_obj.get(name) else {
            continue;
        };
        let bad = wrong_type(&props[name], Some(valid));
        let mut parsed = base_obj.clone();
        parsed.insert(name.clone(), bad.clone());
        let rejected = validator
            .as_ref()
            .is_none_or(|v| !v.is_valid(&Json::Object(parsed)));
        let id = format!("duplicate-key-{name}");
        if rejected && !out.iter().any(|x| x.id == id) {
            let mut text = Json::Object(base_obj.clone()).to_string();
            text.pop();
            text.push_str(&format!(",{}:{bad}}}", Json::String(name.clone())));
            out.push(Violation {
                id,
                description: format!("`{name}` twice: valid first, then {bad}"),
                message: text,
            });
        }
    }
    out
}

/// Generated values per property kept in a plan: enough variety, few cases.
const GENERATED_PER_PROPERTY: usize = 2;

/// Values for `name` that the schema rejects, drawn from proptest strategies (unicode and
/// control characters, direction overrides, extreme and non-integral numbers, wrong types,
/// nested values). The RNG is seeded from the property name, so a plan is byte-identical for
/// the same inputs, and each value is kept only if the schema really rejects the message.
fn generated_values(schema: &Json, base: &Map<String, Json>, name: &str) -> Vec<Json> {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    let Ok(validator) = jsonschema::validator_for(schema) else {
        return Vec::new();
    };
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::from),
        any::<i64>().prop_map(Json::from),
        prop_oneof![
            Just(-1e300),
            Just(1e300),
            Just(0.5),
            Just(-0.0),
            -1e9..1e9f64
        ]
        .prop_map(Json::from),
        "\\PC{0,24}".prop_map(Json::from),
        "[\\x00-\\x1f\\u{202e}\\u{feff}\\u{fffd}]{1,6}".prop_map(Json::from),
    ];
    let value = leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Json::from),
            proptest::collection::btree_map("[a-z]{1,6}", inner, 0..3)
                .prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    });
    let mut seed = [0u8; 32];
    for (i, b) in name.bytes().enumerate() {
        seed[i % 32] ^= b.rotate_left((i / 32) as u32);
    }
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
    );
    let mut out: Vec<Json> = Vec::new();
    // Bounded tries: a property that accepts almost anything yields fewer (or no) values.
    for _ in 0..64 {
        if out.len() >= GENERATED_PER_PROPERTY {
            break;
        }
        let Ok(tree) = value.new_tree(&mut runner) else {
            break;
        };
        let candidate = tree.current();
        let mut m = base.clone();
        m.insert(name.to_string(), candidate.clone());
        if !validator.is_valid(&Json::Object(m)) && !out.contains(&candidate) {
            out.push(candidate);
        }
    }
    out
}

/// A value of a type the property does not allow.
fn wrong_type(prop: &Json, current: Option<&Json>) -> Json {
    let declared = prop.get("type").and_then(Json::as_str);
    let current_is_string = matches!(current, Some(Json::String(_)));
    match declared {
        Some("string") => json!(12345),
        Some("number" | "integer") => json!("not-a-number"),
        Some("boolean") => json!("not-a-boolean"),
        Some("array") => json!({ "not": "an array" }),
        Some("object") => json!(["not", "an", "object"]),
        _ if current_is_string => json!({ "not": "a string" }),
        _ => json!(["wrong", "type"]),
    }
}

/// The next representable `f64` after `x`, upwards or downwards.
fn next_after(x: f64, up: bool) -> f64 {
    if x == 0.0 {
        let tiny = f64::from_bits(1);
        return if up { tiny } else { -tiny };
    }
    let bits = x.to_bits();
    let bigger = (x > 0.0) == up;
    f64::from_bits(if bigger { bits + 1 } else { bits - 1 })
}

fn kebab(camel: &str) -> String {
    let mut out = String::new();
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('-');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_variants_match_the_catalogue() {
        let o: Origin = "https://app.example.com".parse().expect("origin");
        let v = |k| origin_variant(k, &o).expect("variant");
        assert_eq!(v("suffix"), "https://app.example.com.evil.example");
        assert_eq!(v("prefix"), "https://evilapp.example.com");
        assert_eq!(v("regex_dot"), "https://appXexample.com");
        assert_eq!(v("subdomain"), "https://evil.app.example.com");
        assert_eq!(v("scheme"), "http://app.example.com");
        assert_eq!(v("port"), "https://app.example.com:8443");
    }

    #[test]
    fn allowed_variants_are_left_out() {
        let a: Origin = "https://app.example.com".parse().expect("origin");
        let b: Origin = "http://app.example.com".parse().expect("origin");
        let m = origin_variants(&[a, b]);
        assert_eq!(
            m.get("scheme").and_then(|v| v.as_sequence()).map(Vec::len),
            Some(0)
        );
    }

    #[test]
    fn violations_are_really_invalid() {
        let schema = json!({
            "type": "object", "required": ["type", "amount"], "additionalProperties": false,
            "properties": {
                "type": { "const": "payment" },
                "amount": { "type": "number", "exclusiveMinimum": 0, "maximum": 100 },
                "currency": { "enum": ["USD"] }
            }
        });
        let base = json!({ "type": "payment", "amount": 1, "currency": "USD" });
        let ids: Vec<String> = schema_violations(&schema, &base)
            .into_iter()
            .map(|v| v.id)
            .collect();
        assert!(ids.contains(&"missing-amount".to_string()), "{ids:?}");
        assert!(
            ids.contains(&"exclusive-minimum-amount".to_string()),
            "{ids:?}"
        );
        assert!(ids.contains(&"maximum-amount".to_string()), "{ids:?}");
        assert!(ids.contains(&"enum-currency".to_string()), "{ids:?}");
        assert!(ids.contains(&"extra-field".to_string()), "{ids:?}");
    }
}
