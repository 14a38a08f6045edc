//! Placeholders in suite files: `{{policy.limit}}`, `{{target.origin}}`, `{{item}}`, with
//! left-to-right arithmetic on numbers, sizes and durations (`{{policy.limit + 1}}`,
//! `{{policy.interval_max * policy.missed_max}}`).
//!
//! A string that is exactly one placeholder takes the placeholder's value with its type (a
//! number stays a number, a list a list); placeholders inside longer text are rendered as text.
//! Run-time placeholders ([`RuntimePlaceholder`]: `{{ticket}}`, `{{credential}}`, `{{uuid}}`,
//! `{{seq}}`, `{{now_ms}}`, `{{random_hex:N}}`) are filled by the engine at every send and left
//! as written here.

use std::time::Duration;

use serde_yaml::Value;

use crate::config::deser::key_text;
use crate::config::values::{ByteSize, duration};
use crate::config::yaml_index::YamlPath;

/// A placeholder the engine fills while running a case, each time the text holding it is sent
/// (so every message of a flood gets its own `{{uuid}}`). The one table of run-time
/// placeholders: the compiler leaves them as written, the engine fills them
/// (`attacks::values`), and [`RuntimePlaceholder::DOCS`] documents them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimePlaceholder {
    /// `{{ticket}}`: the case's last fetched ticket.
    Ticket,
    /// `{{credential}}`: the target's API credential (its ticket request's `Authorization`
    /// value without the scheme).
    Credential,
    /// `{{uuid}}`: a random UUID (version 4), new at every send.
    Uuid,
    /// `{{seq}}`: a number counting up across the run, new at every send.
    Seq,
    /// `{{now_ms}}`: milliseconds since the Unix epoch at the send.
    NowMs,
    /// `{{random_hex:N}}`: N random hex digits (1 to 256), new at every send.
    RandomHex(usize),
    /// `{{setup.NAME}}`: a value the target's setup requests extracted for the case.
    Setup(String),
}

impl RuntimePlaceholder {
    /// Each placeholder as written, and what it holds (suites' README lists them).
    pub const DOCS: [(&'static str, &'static str); 7] = [
        ("{{ticket}}", "the case's last fetched ticket"),
        (
            "{{credential}}",
            "the target's API credential (its ticket request's `Authorization` value without the scheme)",
        ),
        ("{{uuid}}", "a random UUID (version 4), new at every send"),
        (
            "{{seq}}",
            "a number counting up across the run, new at every send",
        ),
        (
            "{{now_ms}}",
            "milliseconds since the Unix epoch at the send",
        ),
        (
            "{{random_hex:N}}",
            "N random hex digits (1 to 256), new at every send",
        ),
        (
            "{{setup.NAME}}",
            "a value the target's setup requests extracted for the case (`setup[].extract`)",
        ),
    ];

    /// The placeholder an expression names (`uuid`, `random_hex:16`), if it is one.
    pub fn parse(expr: &str) -> Option<Self> {
        Some(match expr.trim() {
            "ticket" => Self::Ticket,
            "credential" => Self::Credential,
            "uuid" => Self::Uuid,
            "seq" => Self::Seq,
            "now_ms" => Self::NowMs,
            other if other.starts_with("setup.") => {
                let name = other["setup.".len()..].trim();
                if name.is_empty() {
                    return None;
                }
                Self::Setup(name.to_string())
            }
            other => {
                let n: usize = other.strip_prefix("random_hex:")?.trim().parse().ok()?;
                if !(1..=256).contains(&n) {
                    return None;
                }
                Self::RandomHex(n)
            }
        })
    }

    /// Whether the value changes at every send (a flood must render each message).
    pub fn per_message(&self) -> bool {
        !matches!(self, Self::Ticket | Self::Credential | Self::Setup(_))
    }
}

/// Every run-time placeholder in `text`, in order, with the byte range it occupies.
pub fn runtime_placeholders(text: &str) -> Vec<(std::ops::Range<usize>, RuntimePlaceholder)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(start) = text[from..].find("{{").map(|i| i + from) {
        let Some(len) = text[start + 2..].find("}}") else {
            break;
        };
        let end = start + 2 + len + 2;
        if let Some(p) = RuntimePlaceholder::parse(&text[start + 2..start + 2 + len]) {
            out.push((start..end, p));
        }
        from = end;
    }
    out
}

/// A placeholder that could not be filled, with the path of the string holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// Path of the offending string, relative to the filled value.
    pub path: YamlPath,
    /// What is wrong and what was expected.
    pub message: String,
    /// The variable whose value was missing (null), when that is the problem.
    pub missing: Option<String>,
}

/// Fills every placeholder of `template` (keys and values) from `context`.
pub fn fill(template: &Value, context: &Value) -> Result<Value, TemplateError> {
    fill_at(template, context, &YamlPath::root())
}

fn fill_at(template: &Value, context: &Value, path: &YamlPath) -> Result<Value, TemplateError> {
    Ok(match template {
        Value::String(s) => {
            fill_string(s, context).map_err(|(message, missing)| TemplateError {
                path: path.clone(),
                message,
                missing,
            })?
        }
        Value::Sequence(items) => Value::Sequence(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| fill_at(v, context, &path.index(i)))
                .collect::<Result<_, _>>()?,
        ),
        Value::Mapping(m) => {
            let mut out = serde_yaml::Mapping::new();
            for (k, v) in m {
                let key_name = key_text(k).unwrap_or_default();
                let at = path.key(key_name);
                let key = fill_at(k, context, &at)?;
                out.insert(key, fill_at(v, context, &at)?);
            }
            Value::Mapping(out)
        }
        Value::Tagged(t) => fill_at(&t.value, context, path)?,
        other => other.clone(),
    })
}

type FillError = (String, Option<String>);

/// Fills one string; a string that is a single placeholder keeps the value's type.
pub fn fill_string(s: &str, context: &Value) -> Result<Value, FillError> {
    let trimmed = s.trim();
    if let Some(inner) = trimmed
        .strip_prefix("{{")
        .and_then(|r| r.strip_suffix("}}"))
        .filter(|inner| !inner.contains("{{") && !inner.contains("}}"))
    {
        let expr = inner.trim();
        if RuntimePlaceholder::parse(expr).is_some() {
            return Ok(Value::String(s.to_string()));
        }
        return evaluate(expr, context);
    }
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err((
                format!("unterminated placeholder in \"{s}\": expected {{{{name}}}}"),
                None,
            ));
        };
        let expr = after[..end].trim();
        if RuntimePlaceholder::parse(expr).is_some() {
            out.push_str(&rest[start..start + 2 + end + 2]);
        } else {
            let v = evaluate(expr, context)?;
            out.push_str(&render(&v, expr)?);
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(Value::String(out))
}

fn render(v: &Value, expr: &str) -> Result<String, FillError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Err((
            format!("placeholder `{expr}` has no value here: it cannot be used inside text"),
            Some(expr.to_string()),
        )),
        _ => Err((
            format!(
                "placeholder `{expr}` is a list or mapping: expected it alone in the string, not inside text"
            ),
            None,
        )),
    }
}

/// A value taking part in arithmetic.
#[derive(Debug, Clone, Copy)]
enum Operand {
    Int(i64),
    Dur(Duration),
    Size(u64),
}

/// Evaluates `operand (op operand)*` left to right.
pub fn evaluate(expr: &str, context: &Value) -> Result<Value, FillError> {
    let tokens = tokenize(expr);
    let Some((first, rest)) = tokens.split_first() else {
        return Err((
            "empty placeholder {{}}: expected a name such as {{policy.limit}}".into(),
            None,
        ));
    };
    let first_value = operand_value(first, context)?;
    if rest.is_empty() {
        return Ok(first_value);
    }
    let mut acc = to_operand(&first_value, first)?;
    let mut i = 0;
    while i < rest.len() {
        let op = rest[i].as_str();
        let Some(rhs_token) = rest.get(i + 1) else {
            return Err((
                format!("placeholder `{expr}` ends with `{op}`: expected a value after it"),
                None,
            ));
        };
        let rhs = to_operand(&operand_value(rhs_token, context)?, rhs_token)?;
        acc = apply(acc, op, rhs).map_err(|m| (format!("placeholder `{expr}`: {m}"), None))?;
        i += 2;
    }
    Ok(match acc {
        Operand::Int(n) => Value::Number(n.into()),
        Operand::Dur(d) => Value::String(humantime::format_duration(d).to_string()),
        Operand::Size(b) => Value::String(ByteSize(b).to_string()),
    })
}

fn tokenize(expr: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut cur = String::new();
    for c in expr.chars() {
        if matches!(c, '+' | '*' | '/') || (c == '-' && cur.is_empty() && !tokens.is_empty()) {
            if !cur.trim().is_empty() {
                tokens.push(cur.trim().to_string());
            }
            cur.clear();
            tokens.push(c.to_string());
        } else if c.is_whitespace() {
            if !cur.trim().is_empty() {
                tokens.push(cur.trim().to_string());
            }
            cur.clear();
        } else {
            cur.push(c);
        }
    }
    if !cur.trim().is_empty() {
        tokens.push(cur.trim().to_string());
    }
    tokens
}

/// A literal (`1`, `500ms`, `64KiB`) or a variable looked up in the context.
fn operand_value(token: &str, context: &Value) -> Result<Value, FillError> {
    if token.starts_with(|c: char| c.is_ascii_digit()) {
        if let Ok(n) = token.parse::<i64>() {
            return Ok(Value::Number(n.into()));
        }
        return Ok(Value::String(token.to_string()));
    }
    lookup(token, context)
}

/// Looks a dotted name up in the context, listing what exists when it does not.
pub fn lookup(name: &str, context: &Value) -> Result<Value, FillError> {
    let mut cur = context;
    let mut walked = Vec::new();
    for part in name.split('.') {
        let next = match cur {
            Value::Mapping(m) => m.get(part),
            Value::Sequence(s) => part.parse::<usize>().ok().and_then(|i| s.get(i)),
            _ => None,
        };
        match next {
            Some(v) => cur = v,
            None => {
                let prefix = walked.join(".");
                let options: Vec<String> = match cur {
                    Value::Mapping(m) => m
                        .keys()
                        .filter_map(key_text)
                        .map(|k| {
                            if prefix.is_empty() {
                                k
                            } else {
                                format!("{prefix}.{k}")
                            }
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                let expected = if options.is_empty() {
                    format!("`{prefix}` has no fields")
                } else {
                    format!("expected one of {}", options.join(", "))
                };
                return Err((format!("unknown placeholder `{name}`: {expected}"), None));
            }
        }
        walked.push(part);
    }
    Ok(cur.clone())
}

fn to_operand(v: &Value, token: &str) -> Result<Operand, FillError> {
    let bad = || {
        (
            format!("`{token}` is not a number, size or duration: it cannot be used in arithmetic"),
            None,
        )
    };
    match v {
        Value::Number(n) => n.as_i64().map(Operand::Int).ok_or_else(bad),
        Value::String(s) => {
            if let Ok(n) = s.trim().parse::<i64>() {
                Ok(Operand::Int(n))
            } else if let Ok(d) = duration::parse(s) {
                Ok(Operand::Dur(d))
            } else if let Ok(b) = s.parse::<ByteSize>() {
                Ok(Operand::Size(b.0))
            } else {
                Err(bad())
            }
        }
        _ => Err(bad()),
    }
}

fn apply(a: Operand, op: &str, b: Operand) -> Result<Operand, String> {
    use Operand::*;
    let ratio = |n: i64| u32::try_from(n).map_err(|_| format!("{n} is out of range"));
    let count = |n: i64| u64::try_from(n).map_err(|_| format!("{n} is negative"));
    Ok(match (a, op, b) {
        (Int(x), "+", Int(y)) => Int(x.saturating_add(y)),
        (Int(x), "-", Int(y)) => Int(x.saturating_sub(y)),
        (Int(x), "*", Int(y)) => Int(x.saturating_mul(y)),
        (Int(_), "/", Int(0)) | (Dur(_), "/", Int(0)) | (Size(_), "/", Int(0)) => {
            return Err("division by zero".into());
        }
        (Int(x), "/", Int(y)) => Int(x / y),
        (Dur(x), "+", Dur(y)) => Dur(x.saturating_add(y)),
        (Dur(x), "-", Dur(y)) => Dur(x.saturating_sub(y)),
        (Dur(x), "*", Int(n)) | (Int(n), "*", Dur(x)) => Dur(x.saturating_mul(ratio(n)?)),
        (Dur(x), "/", Int(n)) => Dur(x / ratio(n)?),
        (Size(x), "+", Int(n)) => Size(x.saturating_add(count(n)?)),
        (Size(x), "-", Int(n)) => Size(x.saturating_sub(count(n)?)),
        (Size(x), "+", Size(y)) => Size(x.saturating_add(y)),
        (Size(x), "-", Size(y)) => Size(x.saturating_sub(y)),
        (Size(x), "*", Int(n)) | (Int(n), "*", Size(x)) => Size(x.saturating_mul(count(n)?)),
        (Size(x), "/", Int(n)) => Size(x / count(n)?),
        (_, op, _) if !matches!(op, "+" | "-" | "*" | "/") => {
            return Err(format!("unknown operator `{op}`: expected + - * or /"));
        }
        _ => return Err(format!("cannot combine these values with `{op}`")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Value {
        serde_yaml::from_str(
            "policy: { limit: 64KiB, ttl_max: 30s, missed_max: 3, allowed: [a, b], n: 50 }\ntarget: { origin: null }",
        )
        .expect("context")
    }

    #[test]
    fn whole_placeholders_keep_their_type() {
        let v = fill(&Value::String("{{policy.allowed}}".into()), &ctx()).expect("filled");
        assert!(v.is_sequence());
        let n = fill(&Value::String("{{ policy.n / 2 }}".into()), &ctx()).expect("filled");
        assert_eq!(n, Value::Number(25.into()));
        let o = fill(&Value::String("{{target.origin}}".into()), &ctx()).expect("filled");
        assert!(o.is_null());
    }

    #[test]
    fn arithmetic_on_sizes_and_durations() {
        let c = ctx();
        assert_eq!(
            evaluate("policy.limit + 1", &c),
            Ok(Value::String("65537B".into()))
        );
        assert_eq!(
            evaluate("policy.ttl_max * policy.missed_max + 500ms", &c),
            Ok(Value::String("1m 30s 500ms".into()))
        );
        assert!(evaluate("policy.limit + policy.ttl_max", &c).is_err());
    }

    #[test]
    fn text_runtime_and_errors() {
        let c = ctx();
        assert_eq!(
            fill_string("n={{policy.n}} t={{ticket}}", &c),
            Ok(Value::String("n=50 t={{ticket}}".into()))
        );
        let err = fill_string("{{policy.nope}}", &c).expect_err("unknown");
        assert!(err.0.contains("expected one of policy.limit"), "{}", err.0);
        assert!(fill_string("x {{policy.n", &c).is_err());
    }
}
