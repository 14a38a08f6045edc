//! Typed deserialisation of a parsed YAML value that reports every error it can with its exact
//! location, instead of stopping at the first one.
//!
//! serde stops at the first error. To report more, [`Report::deserialize`] records the error,
//! removes the offending key or item from a copy of the value and tries again, until the value
//! deserialises or the remaining errors are consequences of earlier repairs.

use serde::de::DeserializeOwned;
use serde_yaml::Value;

use super::source::{ConfigError, Diagnostic, SourceFile};
use super::yaml_index::{Seg, YamlIndex, YamlPath};

/// Most repairs tried on one value before giving up (a guard, far above real files).
const MAX_REPAIRS: usize = 64;

/// The tag an integer literal too large for 64 bits is kept under (as its digits), so the
/// typed read of its field reports it at its own location, with the field's context, instead
/// of the whole file failing to parse at the first one.
const OUT_OF_RANGE_TAG: &str = "!wsaudit-integer-out-of-range";

/// A YAML value read like [`Value`], except that integers past 64 bits become
/// [`OUT_OF_RANGE_TAG`]-tagged strings instead of failing the whole document.
struct Lenient(Value);

impl<'de> serde::Deserialize<'de> for Lenient {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LenientVisitor).map(Lenient)
    }
}

struct LenientVisitor;

impl LenientVisitor {
    fn out_of_range(digits: String) -> Value {
        Value::Tagged(Box::new(serde_yaml::value::TaggedValue {
            tag: serde_yaml::value::Tag::new(OUT_OF_RANGE_TAG),
            value: Value::String(digits),
        }))
    }
}

impl<'de> serde::de::Visitor<'de> for LenientVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Number(i.into()))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(Value::Number(u.into()))
    }
    fn visit_i128<E>(self, i: i128) -> Result<Value, E> {
        Ok(Self::out_of_range(i.to_string()))
    }
    fn visit_u128<E>(self, u: u128) -> Result<Value, E> {
        Ok(Self::out_of_range(u.to_string()))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Number(f.into()))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Lenient(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Sequence(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut m = serde_yaml::Mapping::new();
        while let Some((Lenient(k), Lenient(v))) = map.next_entry()? {
            m.insert(k, v);
        }
        Ok(Value::Mapping(m))
    }
    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        use serde::de::VariantAccess;
        let (tag, contents): (String, _) = data.variant()?;
        let Lenient(value) = contents.newtype_variant()?;
        Ok(Value::Tagged(Box::new(serde_yaml::value::TaggedValue {
            tag: serde_yaml::value::Tag::new(tag),
            value,
        })))
    }
}

/// The digits of the integer too large for 64 bits at `path` of `value`, if that is what it is.
fn out_of_range_at(value: &Value, path: &YamlPath) -> Option<String> {
    let parent = node(value, &path.parent())?;
    let child = match (parent, path.0.last()?) {
        (Value::Mapping(m), Seg::Key(k)) => m
            .iter()
            .find(|(key, _)| key_text(key).as_deref() == Some(k.as_str()))
            .map(|(_, v)| v)?,
        (Value::Sequence(items), Seg::Index(i)) => items.get(*i)?,
        _ => return None,
    };
    match child {
        Value::Tagged(t) if t.tag == serde_yaml::value::Tag::new(OUT_OF_RANGE_TAG) => {
            t.value.as_str().map(str::to_owned)
        }
        _ => None,
    }
}

/// Collects located diagnostics for one file.
pub struct Report<'a> {
    /// The file being checked.
    pub source: &'a SourceFile,
    /// Its node positions.
    pub index: &'a YamlIndex,
    diagnostics: Vec<Diagnostic>,
}

/// Which position of a node an error points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// The node's key (for unknown keys and mapping-level problems).
    Key,
    /// The node's value.
    Value,
}

impl<'a> Report<'a> {
    /// Starts an empty report for `source`.
    pub fn new(source: &'a SourceFile, index: &'a YamlIndex) -> Self {
        Self {
            source,
            index,
            diagnostics: Vec::new(),
        }
    }

    /// Records `message` at the key or value of `path` (or its nearest indexed ancestor).
    pub fn error(&mut self, path: &YamlPath, at: At, message: impl Into<String>) {
        let loc = match at {
            At::Key => self.index.key_or_ancestor(path),
            At::Value => self.index.value_or_ancestor(path),
        };
        let d = match loc {
            Some(l) => self.source.error_at(l.line, l.column, message),
            None => self.source.error_without_location(message),
        };
        self.diagnostics.push(d);
    }

    /// Records an already located diagnostic.
    pub fn push(&mut self, d: Diagnostic) {
        self.diagnostics.push(d);
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.diagnostics.is_empty()
    }

    /// Number of diagnostics so far.
    pub fn len(&self) -> usize {
        self.diagnostics.len()
    }

    /// Records that the id at `second` repeats the one at `first` (`what` is e.g. "control").
    pub fn duplicate_id(&mut self, what: &str, id: &str, first: &YamlPath, second: &YamlPath) {
        let line = self
            .index
            .get(first)
            .map(|n| format!(" (first used on line {})", n.value.line))
            .unwrap_or_default();
        self.error(
            second,
            At::Value,
            format!("duplicate {what} id `{id}`{line}: expected every id to be unique"),
        );
    }

    /// The diagnostics as an error (even when empty).
    pub fn into_error(self) -> ConfigError {
        ConfigError::new(self.source, self.diagnostics)
    }

    /// Deserialises the value found at `base` into `T`, recording every error as
    /// `<context><path relative to display_base>: <message>`.
    pub fn deserialize<T: DeserializeOwned>(
        &mut self,
        value: &Value,
        base: &YamlPath,
        display_base: &YamlPath,
        context: &str,
    ) -> Option<T> {
        let mut work = value.clone();
        let mut removed: Vec<(YamlPath, Seg)> = Vec::new();
        let mut seen: Vec<(YamlPath, String)> = Vec::new();
        // Original paths of the nodes removed so far.
        let mut repaired: Vec<YamlPath> = Vec::new();
        for _ in 0..MAX_REPAIRS {
            let err = match serde_path_to_error::deserialize::<_, T>(work.clone()) {
                // Errors are in the report; the repaired value still lets later checks run.
                Ok(v) => return Some(v),
                Err(e) => e,
            };
            let mut work_path = convert_path(err.path());
            let raw = err.inner().to_string();
            let problem = Problem::classify(&raw);
            if let Problem::UnknownField { field, .. } = &problem {
                // The path may end at the unknown key itself; errors are about its mapping.
                if work_path.0.last() == Some(&Seg::Key(field.clone())) {
                    work_path = work_path.parent();
                }
            }
            let original = original_path(&work_path, &removed);
            if let Problem::MissingField(field) = &problem {
                // A field we removed ourselves is missing: the real error is already reported.
                if removed.contains(&(work_path.clone(), Seg::Key(field.clone()))) {
                    return None;
                }
            }
            if seen.iter().any(|(p, m)| *p == original && *m == raw) {
                return None;
            }
            // An error above a repaired node is a consequence of the repair (its shape changed),
            // except a key that was never there (a removed key was caught just above).
            let above_repair = repaired
                .iter()
                .any(|r| r.0.len() > original.0.len() && r.0.starts_with(&original.0));
            if above_repair
                && !matches!(
                    problem,
                    Problem::UnknownField { .. } | Problem::MissingField(_)
                )
            {
                return None;
            }
            seen.push((original.clone(), raw.clone()));
            let full = base.join(&original);
            let shown = |p: &YamlPath| {
                let rel = p.strip_prefix(display_base);
                if rel.is_root() {
                    String::new()
                } else {
                    format!("{rel}: ")
                }
            };
            match &problem {
                Problem::UnknownField { field, expected } => {
                    let p = full.key(field.clone());
                    self.error(
                        &p,
                        At::Key,
                        format!("{context}{}unknown key `{field}`: {expected}", shown(&full)),
                    );
                    remove(
                        &mut work,
                        &work_path,
                        &Seg::Key(field.clone()),
                        &mut removed,
                    );
                    repaired.push(original.key(field.clone()));
                }
                Problem::MissingField(field) => {
                    self.error(
                        &full,
                        At::Key,
                        format!(
                            "{context}{}missing key `{field}`: expected `{field}: ...` in this mapping",
                            shown(&full)
                        ),
                    );
                    return None;
                }
                Problem::Other(message) => {
                    let message = match out_of_range_at(value, &original) {
                        Some(digits) => {
                            let expected = message
                                .find("expected ")
                                .map_or("expected a smaller number", |i| &message[i..]);
                            format!("integer `{digits}` is out of range: {expected}")
                        }
                        None => message.clone(),
                    };
                    self.error(
                        &full,
                        At::Value,
                        format!("{context}{}{message}", shown(&full)),
                    );
                    repaired.push(original.clone());
                    match work_path.0.last().cloned() {
                        Some(last) => remove(&mut work, &work_path.parent(), &last, &mut removed),
                        None => return None,
                    }
                }
            }
        }
        None
    }
}

/// A serde error message, classified by its standard wording.
enum Problem {
    UnknownField { field: String, expected: String },
    MissingField(String),
    Other(String),
}

impl Problem {
    fn classify(raw: &str) -> Self {
        if let Some(rest) = raw.strip_prefix("unknown field `")
            && let Some((field, tail)) = rest.split_once('`')
        {
            let expected = match tail.trim_start_matches(", ") {
                "there are no fields" => "expected no keys here".to_string(),
                t if t.starts_with("expected") => t.to_string(),
                t => format!("expected {t}"),
            };
            return Self::UnknownField {
                field: field.to_string(),
                expected,
            };
        }
        if let Some(rest) = raw.strip_prefix("missing field `")
            && let Some((field, _)) = rest.split_once('`')
        {
            return Self::MissingField(field.to_string());
        }
        if let Some(rest) = raw.strip_prefix("unknown variant `")
            && let Some((value, tail)) = rest.split_once('`')
        {
            let tail = tail.trim_start_matches(", ");
            return Self::Other(format!("unknown value `{value}`: {tail}"));
        }
        Self::Other(humane_expected(&raw.replacen(
            ", expected",
            ": expected",
            1,
        )))
    }
}

/// serde names integer types (`expected u32`); a user reads the range instead.
fn humane_expected(message: &str) -> String {
    const RANGES: [(&str, &str); 6] = [
        ("u8", "from 0 to 255"),
        ("u16", "from 0 to 65535"),
        ("u32", "from 0 to 4294967295"),
        ("u64", "from 0 to 18446744073709551615"),
        ("usize", "from 0 to 18446744073709551615"),
        ("i64", "from -9223372036854775808 to 9223372036854775807"),
    ];
    for (ty, range) in RANGES {
        if let Some(head) = message.strip_suffix(&format!("expected {ty}")) {
            return format!("{head}expected a whole number {range}");
        }
    }
    message.to_string()
}

fn convert_path(path: &serde_path_to_error::Path) -> YamlPath {
    let mut out = YamlPath::root();
    for seg in path {
        match seg {
            serde_path_to_error::Segment::Seq { index } => out.0.push(Seg::Index(*index)),
            serde_path_to_error::Segment::Map { key } => out.0.push(Seg::Key(key.clone())),
            serde_path_to_error::Segment::Enum { variant } => out.0.push(Seg::Key(variant.clone())),
            serde_path_to_error::Segment::Unknown => break,
        }
    }
    out
}

/// Maps a path in the repaired value back to the original, accounting for removed items.
fn original_path(path: &YamlPath, removed: &[(YamlPath, Seg)]) -> YamlPath {
    let mut out = YamlPath::root();
    let mut work_prefix = YamlPath::root();
    for seg in &path.0 {
        let mapped = match seg {
            Seg::Index(i) => {
                let mut removed_here: Vec<usize> = removed
                    .iter()
                    .filter(|(p, _)| *p == work_prefix)
                    .filter_map(|(_, s)| match s {
                        Seg::Index(r) => Some(*r),
                        Seg::Key(_) => None,
                    })
                    .collect();
                removed_here.sort_unstable();
                let mut orig = *i;
                for r in removed_here {
                    if r <= orig {
                        orig += 1;
                    }
                }
                Seg::Index(orig)
            }
            Seg::Key(k) => Seg::Key(k.clone()),
        };
        out.0.push(mapped);
        work_prefix.0.push(seg.clone());
    }
    out
}

/// Removes the child `seg` of the node at `parent` in `value`, remembering what was removed.
/// Sequence removals are recorded with the item's original index.
fn remove(value: &mut Value, parent: &YamlPath, seg: &Seg, removed: &mut Vec<(YamlPath, Seg)>) {
    let Some(node) = node_mut(value, parent) else {
        return;
    };
    match (node, seg) {
        (Value::Mapping(m), Seg::Key(k)) => {
            let key = m
                .keys()
                .find(|key| key_text(key).as_deref() == Some(k.as_str()))
                .cloned();
            if let Some(key) = key {
                m.remove(&key);
                removed.push((parent.clone(), seg.clone()));
            }
        }
        (Value::Sequence(s), Seg::Index(i)) if *i < s.len() => {
            s.remove(*i);
            let orig = original_path(&parent.index(*i), removed);
            if let Some(last) = orig.0.last() {
                removed.push((parent.clone(), last.clone()));
            }
        }
        _ => {}
    }
}

/// The node at `path` of a parsed value, mutably.
pub fn node_mut<'v>(value: &'v mut Value, path: &YamlPath) -> Option<&'v mut Value> {
    let mut cur = untag_mut(value);
    for seg in &path.0 {
        cur = match (cur, seg) {
            (Value::Mapping(m), Seg::Key(k)) => m
                .iter_mut()
                .find(|(key, _)| key_text(key).as_deref() == Some(k.as_str()))
                .map(|(_, v)| untag_mut(v))?,
            (Value::Sequence(s), Seg::Index(i)) => untag_mut(s.get_mut(*i)?),
            _ => return None,
        };
    }
    Some(cur)
}

/// The text of a scalar mapping key, as serde reports it in paths.
pub fn key_text(key: &Value) -> Option<String> {
    match key {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

/// The node at `path` of a parsed value.
pub fn node<'v>(value: &'v Value, path: &YamlPath) -> Option<&'v Value> {
    let mut cur = untag(value);
    for seg in &path.0 {
        cur = match (cur, seg) {
            (Value::Mapping(m), Seg::Key(k)) => m
                .iter()
                .find(|(key, _)| key_text(key).as_deref() == Some(k.as_str()))
                .map(|(_, v)| untag(v))?,
            (Value::Sequence(s), Seg::Index(i)) => untag(s.get(*i)?),
            _ => return None,
        };
    }
    Some(cur)
}

/// The value under any YAML tags (`!tag value`).
pub fn untag(mut value: &Value) -> &Value {
    while let Value::Tagged(t) = value {
        value = &t.value;
    }
    value
}

fn untag_mut(mut value: &mut Value) -> &mut Value {
    while let Value::Tagged(t) = value {
        value = &mut t.value;
    }
    value
}

/// Parses the text of a file into a YAML value and its position index; a syntax error is
/// returned located, exactly as the YAML parser found it.
pub fn parse_document(source: &SourceFile) -> Result<(Value, YamlIndex), ConfigError> {
    let ambiguous = source.ambiguous_line_breaks();
    if !ambiguous.is_empty() {
        return Err(ConfigError::new(source, ambiguous));
    }
    let index = YamlIndex::build(&source.text);
    if !index.duplicates().is_empty() {
        let diagnostics = index
            .duplicates()
            .iter()
            .map(|(path, loc)| {
                let key = match path.0.last() {
                    Some(Seg::Key(k)) => k.clone(),
                    _ => String::new(),
                };
                let parent = path.parent();
                let at = if parent.is_root() {
                    String::new()
                } else {
                    format!("{parent}: ")
                };
                source.error_at(
                    loc.line,
                    loc.column,
                    format!("{at}duplicate key `{key}`: expected each key once per mapping"),
                )
            })
            .collect();
        return Err(ConfigError::new(source, diagnostics));
    }
    let value: Value = match serde_yaml::from_str::<Lenient>(&source.text) {
        Ok(Lenient(v)) => v,
        Err(e) => {
            let d = super::source::yaml_diagnostic(source, &e);
            return Err(ConfigError::new(source, vec![d]));
        }
    };
    if value.is_null() {
        return Err(ConfigError::new(
            source,
            vec![source.error_without_location("the file is empty: expected a YAML mapping")],
        ));
    }
    Ok((value, index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_past_64_bits_are_kept_for_a_located_error_and_tags_survive() {
        let source = SourceFile::from_text(
            "t.yaml",
            "a: !t 1\nb: 99999999999999999999999\nc: [-99999999999999999999999]\n",
        );
        let (doc, _) = parse_document(&source).expect("the document parses");
        let expected: Value = serde_yaml::from_str("a: !t 1").expect("plain YAML");
        assert_eq!(doc.get("a"), expected.get("a"));
        let root = YamlPath::root();
        assert_eq!(
            out_of_range_at(&doc, &root.key("b")).as_deref(),
            Some("99999999999999999999999")
        );
        assert_eq!(
            out_of_range_at(&doc, &root.key("c").index(0)).as_deref(),
            Some("-99999999999999999999999")
        );
        assert_eq!(out_of_range_at(&doc, &root.key("a")), None);
    }
}
