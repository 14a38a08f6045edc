//! Values derived from a control's parameters for suites to iterate over: look-alike origins
//! for the origin family, schema violations for the messages family. Both are deterministic:
//! the same policy and target always give the same lists in the same order.

use serde_json::{Map, Value as Json, json};

use crate::config::values::Origin;

/// The kinds of look-alike origin derived from each allowed origin, in plan order.
pub const ORIGIN_VARIANT_KINDS: [&str; 6] = [
    "suffix",
    "prefix",
    "regex_dot",
    "subdomain",
    "scheme",
    "port",
];

/// One look-alike of an allowed origin, e.g. the suffix confusion `https://app.example.com.evil.example`.
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
/// allowed (a variant that is allowed must connect, so it is no attack).
pub fn origin_variants(allowed: &[Origin]) -> serde_yaml::Mapping {
    let mut out = serde_yaml::Mapping::new();
    for kind in ORIGIN_VARIANT_KINDS {
        let mut list = Vec::new();
        for o in allowed {
            let Some(v) = origin_variant(kind, o) else {
                continue;
            };
            let is_allowed = v.parse::<Origin>().is_ok_and(|p| allowed.contains(&p));
            if !is_allowed && !list.contains(&serde_yaml::Value::String(v.clone())) {
                list.push(serde_yaml::Value::String(v));
            }
        }
        out.insert(kind.into(), serde_yaml::Value::Sequence(list));
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
    if schema.get("additionalProperties") == Some(&Json::Bool(false)) {
        let mut field = "unexpected_field".to_string();
        while base_obj.contains_key(&field) {
            field.push('_');
        }
        let mut m = base_obj.clone();
        m.insert(field.clone(), json!(true));
        push("extra-field".into(), format!("extra field `{field}`"), m);
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
