//! Structure-aware mutations of a target's valid messages, and frame-level mutations of how
//! they are sent. Every case is a pure function of its [`Rng`], so a seed reproduces it byte
//! for byte (frame masks included).
//!
//! Message level: type confusion, boundary numbers, huge strings, arrays and objects, deep
//! nesting, unicode edge cases, JSON escape edge cases, missing, extra and renamed fields,
//! string edits, a wrong root, and syntax damage (truncation, trailing garbage, quotes,
//! non-JSON literals, comments, BOM, invalid UTF-8, byte flips). Frame level: fragmentation
//! (with interleaved pings and empty fragments), RSV bits, reserved opcodes, unmasked frames,
//! binary opcode, orphan continuations, interleaved data frames, oversized and fragmented
//! control frames, bad close frames, and lengths that lie.

use serde_json::{Map, Value, json};

use super::oracle::Delivered;
use super::rng::Rng;
use crate::client::conn::opcode;
use crate::client::{FrameSpec, Mask};

/// Placeholder replaced by raw JSON text after serialisation (boundary numbers, escapes).
const RAW_MARK: &str = "\u{1}wsaudit-raw\u{1}";
/// The placeholder as serde_json writes it.
const RAW_MARK_JSON: &str = "\"\\u0001wsaudit-raw\\u0001\"";

/// One fuzz case: the frames to send and what the target should see as a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuzzCase {
    /// What was done, for humans (`type confusion at /amount (number → string); fragmented`).
    pub name: String,
    /// The frames, exactly (masks fixed, so the bytes are reproducible).
    pub frames: Vec<FrameSpec>,
    /// The one message a conforming server assembles from the frames; `None` when the frame
    /// sequence is malformed and no message is defined.
    pub delivered: Option<Delivered>,
    /// Whether a ping fence may follow: `false` when the frames lie about lengths (the target
    /// would rightly read the fence as payload) or close the connection.
    pub fenced: bool,
}

impl FuzzCase {
    /// The bytes on the wire, frame after frame.
    pub fn wire_bytes(&self) -> Vec<u8> {
        self.frames.iter().flat_map(FrameSpec::encode).collect()
    }
}

/// Generates fuzz cases from a target's valid messages.
pub struct Mutator {
    templates: Vec<Template>,
    max_len: usize,
}

struct Template {
    raw: String,
    json: Option<Value>,
}

/// A message under construction: its bytes and the steps that made it.
struct Msg {
    bytes: Vec<u8>,
    steps: Vec<String>,
}

/// A path to a JSON node.
#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

impl Mutator {
    /// A mutator for `valid` messages (at least one is needed for message-level mutations; with
    /// none, `{}` is used), keeping each message at most `max_len` bytes.
    pub fn new(valid: &[String], max_len: usize) -> Self {
        let mut templates: Vec<Template> = valid
            .iter()
            .map(|raw| Template {
                raw: raw.clone(),
                json: serde_json::from_str(raw).ok(),
            })
            .collect();
        if templates.is_empty() {
            templates.push(Template {
                raw: "{}".into(),
                json: Some(json!({})),
            });
        }
        Self {
            templates,
            max_len: max_len.max(64),
        }
    }

    /// The largest message generated.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The next case drawn from `rng`.
    pub fn case(&self, rng: &mut Rng) -> FuzzCase {
        let msg = self.message(rng);
        frame_level(rng, msg)
    }

    fn message(&self, rng: &mut Rng) -> Msg {
        let Some(t) = rng.pick(&self.templates) else {
            return Msg {
                bytes: Vec::new(),
                steps: vec!["empty message".into()],
            };
        };
        let mut msg = match &t.json {
            Some(v) if !rng.chance(1, 5) => self.value_level(rng, v.clone()),
            _ => Msg {
                bytes: t.raw.as_bytes().to_vec(),
                steps: Vec::new(),
            },
        };
        // Syntax damage alone, or on top of a value-level change.
        if msg.steps.is_empty() || rng.chance(1, 4) {
            syntax_level(rng, &mut msg);
        }
        msg.bytes.truncate(self.max_len);
        msg
    }

    /// One or two value-level mutations, serialised (raw placeholders filled in).
    fn value_level(&self, rng: &mut Rng, mut v: Value) -> Msg {
        let mut steps = Vec::new();
        let mut raw: Option<String> = None;
        let rounds = if rng.chance(1, 4) { 2 } else { 1 };
        for _ in 0..rounds {
            let budget = self.max_len.saturating_sub(v.to_string().len() + 64);
            let (step, r) = mutate_value(rng, &mut v, budget);
            steps.push(step);
            if r.is_some() {
                // One raw placeholder per message: a later round could copy or bury it.
                raw = r;
                break;
            }
        }
        let mut text = v.to_string();
        if let Some(r) = raw {
            text = text.replacen(RAW_MARK_JSON, &r, 1);
        }
        Msg {
            bytes: text.into_bytes(),
            steps,
        }
    }
}

/// Every node path of `v` (root first), up to a bound.
fn paths(v: &Value) -> Vec<Vec<Seg>> {
    fn walk(v: &Value, at: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
        if out.len() >= 256 {
            return;
        }
        out.push(at.clone());
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    at.push(Seg::Key(k.clone()));
                    walk(child, at, out);
                    at.pop();
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    at.push(Seg::Index(i));
                    walk(child, at, out);
                    at.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

fn node_mut<'v>(v: &'v mut Value, path: &[Seg]) -> Option<&'v mut Value> {
    let mut cur = v;
    for seg in path {
        cur = match (seg, cur) {
            (Seg::Key(k), Value::Object(m)) => m.get_mut(k)?,
            (Seg::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn pointer(path: &[Seg]) -> String {
    if path.is_empty() {
        return "the root".into();
    }
    path.iter()
        .map(|s| match s {
            Seg::Key(k) => format!("/{}", k.replace('~', "~0").replace('/', "~1")),
            Seg::Index(i) => format!("/{i}"),
        })
        .collect()
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Picks a node, preferring non-root leaves satisfying `want` when there are any.
fn pick_node(rng: &mut Rng, v: &Value, want: fn(&Value) -> bool) -> Vec<Seg> {
    let all = paths(v);
    let preferred: Vec<&Vec<Seg>> = all
        .iter()
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let mut probe = v.clone();
            node_mut(&mut probe, p).is_some_and(|n| want(n))
        })
        .collect();
    if let Some(p) = rng.pick(&preferred) {
        return (*p).clone();
    }
    let non_root: Vec<&Vec<Seg>> = all.iter().filter(|p| !p.is_empty()).collect();
    rng.pick(&non_root)
        .map(|p| (*p).clone())
        .unwrap_or_default()
}

/// Boundary and awkward numbers, as raw JSON text.
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "-0.0",
    "-1",
    "1",
    "0.1",
    "1000000",
    "1000000.000001",
    "1000001",
    "999999.99",
    "2147483647",
    "2147483648",
    "-2147483649",
    "4294967296",
    "9007199254740993",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551616",
    "-9223372036854775809",
    "1e308",
    "-1e308",
    "1.7976931348623157e308",
    "5e-324",
    "1e-7",
    "1E2",
    "1e+2",
    "12.50000000000000000001",
];

/// Strings that are not what any field expects.
const ODD_STRINGS: &[&str] = &[
    "",
    " ",
    "null",
    "true",
    "0",
    "-1",
    "NaN",
    "12.5",
    "USD ",
    "usd",
    "<script>alert(1)</script>",
    "' OR '1'='1",
    "../../etc/passwd",
    "${jndi:ldap://x}",
    "{{7*7}}",
    "%00",
    "\\u0000",
];

/// Unicode edge cases spliced into strings.
const UNICODE: &[&str] = &[
    "\u{0}",
    "\u{202E}",
    "\u{200B}",
    "\u{FEFF}",
    "\u{FFFF}",
    "\u{FFFE}",
    "\u{10FFFF}",
    "\u{0301}",
    "\u{2028}",
    "\u{1F4A9}",
    "\u{E000}",
    "\u{1D7CE}",
    "İ",
    "ß",
    "Ω",
];

/// JSON escapes at the edge of the grammar, as raw JSON string literals.
const ESCAPES: &[&str] = &[
    r#""\u0000""#,
    r#""\ud800""#,
    r#""\udc00\ud800""#,
    r#""\ud83d\ude00""#,
    r#""\u00e9""#,
    r#""\/\/""#,
    r#""\u0041\u0042""#,
    r#""a\u202eb""#,
    r#""\uFFFF""#,
];

/// Keys an over-trusting server might act on.
const EXTRA_KEYS: &[&str] = &[
    "__proto__",
    "constructor",
    "$where",
    "admin",
    "",
    "type ",
    "TYPE",
    "amount\u{0}",
    "id",
];

/// Applies one value-level mutation; returns its description and, when the mutation needs
/// raw JSON text, the text replacing the placeholder.
fn mutate_value(rng: &mut Rng, v: &mut Value, budget: usize) -> (String, Option<String>) {
    match rng.below(13) {
        0 => {
            let path = pick_node(rng, v, |_| true);
            let Some(node) = node_mut(v, &path) else {
                return ("unchanged".into(), None);
            };
            let before = type_name(node);
            let candidates = [
                Value::Null,
                json!(true),
                json!(0),
                json!(-1),
                json!(""),
                json!("0"),
                json!("12.5"),
                json!([]),
                json!({}),
                json!([node.clone()]),
                json!({ "value": node.clone() }),
                json!("true"),
            ];
            let other: Vec<&Value> = candidates
                .iter()
                .filter(|c| type_name(c) != before)
                .collect();
            let Some(new) = rng.pick(&other).map(|c| (*c).clone()) else {
                return ("unchanged".into(), None);
            };
            let after = type_name(&new);
            *node = new;
            (
                format!("type confusion at {} ({before} → {after})", pointer(&path)),
                None,
            )
        }
        1 | 2 => {
            let path = pick_node(rng, v, Value::is_number);
            let n = rng.pick(NUMBERS).copied().unwrap_or("0");
            set_raw(
                v,
                &path,
                format!("boundary number {n} at {}", pointer(&path)),
                n,
            )
        }
        3 => {
            let path = pick_node(rng, v, Value::is_string);
            let len = huge_len(rng, budget);
            let unit = rng
                .pick(&["A", "é", "\u{1F4A9}", "\\"])
                .copied()
                .unwrap_or("A");
            let s: String = unit.repeat(len / unit.len().max(1));
            if let Some(node) = node_mut(v, &path) {
                *node = Value::String(s);
            }
            (
                format!("huge string ({len} B of {unit:?}) at {}", pointer(&path)),
                None,
            )
        }
        4 => {
            let path = pick_node(rng, v, |_| true);
            let count = (huge_len(rng, budget) / 2).max(1);
            if let Some(node) = node_mut(v, &path) {
                *node = if rng.chance(1, 2) {
                    Value::Array(vec![json!(0); count])
                } else {
                    let fields = (count / 8).max(1);
                    Value::Object((0..fields).map(|i| (format!("f{i}"), json!(i))).collect())
                };
            }
            (
                format!("huge array or object ({count} B) at {}", pointer(&path)),
                None,
            )
        }
        5 => {
            let path = pick_node(rng, v, |_| true);
            let depths = [32usize, 127, 128, 129, 255, 256, 1000, 5000, 20000];
            let want = rng.pick(&depths).copied().unwrap_or(128);
            let array = rng.chance(1, 2);
            // "[" + "]" or `{"a":` + "}" per level; stay within the size budget.
            let per_level = if array { 2 } else { 6 };
            let depth = want.min(budget / per_level).max(1);
            let raw = if array {
                format!("{}{}", "[".repeat(depth), "]".repeat(depth))
            } else {
                format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
            };
            set_raw(
                v,
                &path,
                format!("deep JSON (depth {depth}) at {}", pointer(&path)),
                &raw,
            )
        }
        6 => {
            let path = pick_node(rng, v, Value::is_string);
            let u = rng.pick(UNICODE).copied().unwrap_or("\u{0}");
            let Some(node) = node_mut(v, &path) else {
                return ("unchanged".into(), None);
            };
            let mut s = node.as_str().map(str::to_string).unwrap_or_default();
            let at = char_boundary(&s, rng.below(s.len() + 1));
            s.insert_str(at, u);
            *node = Value::String(s);
            (
                format!(
                    "unicode {} inserted at {}",
                    u.escape_unicode(),
                    pointer(&path)
                ),
                None,
            )
        }
        7 => {
            let path = pick_node(rng, v, Value::is_string);
            let e = rng.pick(ESCAPES).copied().unwrap_or(r#""\u0000""#);
            set_raw(v, &path, format!("escape {e} at {}", pointer(&path)), e)
        }
        8 => {
            let path = pick_node(rng, v, |_| true);
            let Some((last, parent)) = path.split_last() else {
                return ("unchanged".into(), None);
            };
            match (node_mut(v, parent), last) {
                (Some(Value::Object(m)), Seg::Key(k)) => {
                    m.remove(k);
                }
                (Some(Value::Array(a)), Seg::Index(i)) if *i < a.len() => {
                    a.remove(*i);
                }
                _ => {}
            }
            (format!("removed {}", pointer(&path)), None)
        }
        9 => {
            let key = rng.pick(EXTRA_KEYS).copied().unwrap_or("admin");
            let value = rng
                .pick(&[json!(true), json!(1), json!("x"), json!(null), json!({})])
                .cloned()
                .unwrap_or(Value::Null);
            match v {
                Value::Object(m) => {
                    m.insert(key.to_string(), value);
                }
                other => {
                    let mut m = Map::new();
                    m.insert(key.to_string(), value);
                    m.insert("value".into(), other.take());
                    *other = Value::Object(m);
                }
            }
            (format!("extra field {key:?}"), None)
        }
        10 => {
            let path = pick_node(rng, v, |_| true);
            let Some((Seg::Key(k), parent)) = path.split_last() else {
                return ("unchanged".into(), None);
            };
            let renamed = match rng.below(4) {
                0 => k.to_uppercase(),
                1 => format!("{k} "),
                2 => format!("{k}\u{200B}"),
                _ => k.replacen('e', "е", 1), // Cyrillic е
            };
            if let Some(Value::Object(m)) = node_mut(v, parent)
                && let Some(val) = m.remove(k)
            {
                m.insert(renamed.clone(), val);
            }
            (format!("renamed key {k:?} to {renamed:?}"), None)
        }
        11 => {
            let path = pick_node(rng, v, Value::is_string);
            let Some(node) = node_mut(v, &path) else {
                return ("unchanged".into(), None);
            };
            let s = node.as_str().map(str::to_string).unwrap_or_default();
            let (what, new) = match rng.below(8) {
                0 => ("lower case", s.to_lowercase()),
                1 => ("upper case", s.to_uppercase()),
                2 => ("padded", format!(" {s} ")),
                3 => ("fullwidth digits", fullwidth_digits(&s)),
                4 => ("last character dropped", {
                    let mut t = s.clone();
                    t.pop();
                    t
                }),
                5 => ("doubled", format!("{s}{s}")),
                6 => ("newline appended", format!("{s}\n")),
                _ => {
                    let odd = rng.pick(ODD_STRINGS).copied().unwrap_or("");
                    ("replaced by an odd string", odd.to_string())
                }
            };
            *node = Value::String(new);
            (format!("string {what} at {}", pointer(&path)), None)
        }
        _ => {
            let old = v.take();
            let (what, new) = match rng.below(5) {
                0 => ("an array of the message", json!([old])),
                1 => ("a string", json!(old.to_string())),
                2 => ("a number", json!(42)),
                3 => ("null", Value::Null),
                _ => ("an empty object", json!({})),
            };
            *v = new;
            (format!("root replaced by {what}"), None)
        }
    }
}

fn set_raw(v: &mut Value, path: &[Seg], step: String, raw: &str) -> (String, Option<String>) {
    match node_mut(v, path) {
        Some(node) => {
            *node = Value::String(RAW_MARK.into());
            (step, Some(raw.to_string()))
        }
        None => ("unchanged".into(), None),
    }
}

fn huge_len(rng: &mut Rng, budget: usize) -> usize {
    let sizes = [256, 4096, budget / 2, budget];
    rng.pick(&sizes).copied().unwrap_or(256).min(budget).max(1)
}

fn char_boundary(s: &str, mut at: usize) -> usize {
    at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn fullwidth_digits(s: &str) -> String {
    s.chars()
        .map(|c| match c.to_digit(10) {
            Some(d) => char::from_u32(0xFF10 + d).unwrap_or(c),
            None => c,
        })
        .collect()
}

/// Invalid UTF-8 sequences: stray byte, overlong, UTF-16 surrogate, beyond U+10FFFF,
/// truncated, lone continuation.
const BAD_UTF8: &[&[u8]] = &[
    &[0xFF],
    &[0xC0, 0xAF],
    &[0xED, 0xA0, 0x80],
    &[0xF4, 0x90, 0x80, 0x80],
    &[0xE2, 0x82],
    &[0x80],
    &[0xF8, 0x88, 0x80, 0x80, 0x80],
];

/// Damages the message's syntax or encoding.
fn syntax_level(rng: &mut Rng, msg: &mut Msg) {
    let b = &mut msg.bytes;
    let step = match rng.below(14) {
        0 => {
            let at = rng.below(b.len());
            b.truncate(at);
            format!("truncated to {at} B")
        }
        1 => {
            let junk = rng
                .pick(&[&b","[..], b"}", b"x", b" \0", b"{}", b"\n\n"])
                .copied()
                .unwrap_or(b"x");
            b.extend_from_slice(junk);
            format!("trailing {:?}", String::from_utf8_lossy(junk))
        }
        2 => match b.iter().rposition(|&c| c == b'}' || c == b']') {
            Some(i) => {
                b.insert(i, b',');
                "trailing comma".into()
            }
            None => {
                b.push(b',');
                "trailing comma".into()
            }
        },
        3 => {
            for c in b.iter_mut() {
                if *c == b'"' {
                    *c = b'\'';
                }
            }
            "single quotes".into()
        }
        4 => {
            let lit = rng
                .pick(&[
                    "NaN",
                    "Infinity",
                    "-Infinity",
                    "undefined",
                    "012",
                    "+1",
                    ".5",
                    "0x10",
                ])
                .copied()
                .unwrap_or("NaN");
            match find_value_after_colon(b) {
                Some((start, end)) => {
                    b.splice(start..end, lit.bytes());
                }
                None => *b = lit.as_bytes().to_vec(),
            }
            format!("non-JSON literal {lit}")
        }
        5 => {
            b.splice(0..0, b"/* c */".iter().copied());
            "leading comment".into()
        }
        6 => {
            b.splice(0..0, "\u{FEFF}".bytes());
            "byte order mark".into()
        }
        7 => {
            let ws = rng.pick(&["", " ", "\n", "\t\r\n "]).copied().unwrap_or("");
            *b = ws.as_bytes().to_vec();
            "empty or whitespace only".into()
        }
        8 => {
            let copy = b.clone();
            b.extend_from_slice(&copy);
            "two documents".into()
        }
        9 | 10 => {
            let seq = rng.pick(BAD_UTF8).copied().unwrap_or(&[0xFF]);
            // Inside a string when there is one, else anywhere.
            let quotes: Vec<usize> = b
                .iter()
                .enumerate()
                .filter(|(_, c)| **c == b'"')
                .map(|(i, _)| i + 1)
                .collect();
            let at = rng
                .pick(&quotes)
                .copied()
                .unwrap_or_else(|| rng.below(b.len() + 1))
                .min(b.len());
            b.splice(at..at, seq.iter().copied());
            format!("invalid UTF-8 {} at byte {at}", hex(seq))
        }
        11 => {
            if b.is_empty() {
                b.push(0);
            }
            let at = rng.below(b.len());
            let new = (rng.next_u64() & 0xFF) as u8;
            b[at] = new;
            format!("byte {at} set to {new:#04x}")
        }
        12 => {
            let at = rng.below(b.len() + 1);
            b.insert(at, 0);
            format!("NUL byte at {at}")
        }
        _ => {
            let at = rng.below(b.len() + 1);
            let ws = "\u{A0}\u{2028}";
            b.splice(at..at, ws.bytes());
            format!("non-ASCII whitespace at byte {at}")
        }
    };
    msg.steps.push(step);
}

/// The byte range of the first value after a `:` (up to `,` or `}`), if any.
fn find_value_after_colon(b: &[u8]) -> Option<(usize, usize)> {
    let colon = b.iter().position(|&c| c == b':')?;
    let start = colon + 1;
    let end = b[start..]
        .iter()
        .position(|&c| c == b',' || c == b'}')
        .map_or(b.len(), |i| start + i);
    Some((start, end))
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn frame(rng: &mut Rng, op: u8, payload: &[u8]) -> FrameSpec {
    FrameSpec::new(op, payload.to_vec()).mask(Mask::Fixed(rng.bytes4()))
}

/// Splits `bytes` into `n` parts (some may be empty).
fn split(rng: &mut Rng, bytes: &[u8], n: usize) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = (1..n).map(|_| rng.below(bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut parts = Vec::with_capacity(n);
    let mut prev = 0;
    for c in cuts.into_iter().chain([bytes.len()]) {
        parts.push(bytes[prev..c].to_vec());
        prev = c;
    }
    parts
}

/// Chooses how the message goes on the wire.
fn frame_level(rng: &mut Rng, msg: Msg) -> FuzzCase {
    let text_msg = |bytes: &[u8]| {
        Some(Delivered {
            text: true,
            bytes: bytes.to_vec(),
        })
    };
    let Msg { bytes, mut steps } = msg;
    let choice = if rng.chance(13, 20) {
        0
    } else {
        1 + rng.below(11)
    };
    let (frames, delivered, fenced, how): (Vec<FrameSpec>, Option<Delivered>, bool, String) =
        match choice {
            1 => {
                let n = rng.range(2, 8);
                let parts = split(rng, &bytes, n);
                let ping_at = rng.chance(1, 2).then(|| rng.range(1, n - 1));
                let mut frames = Vec::new();
                for (i, p) in parts.iter().enumerate() {
                    if ping_at == Some(i) {
                        frames.push(frame(rng, opcode::PING, b"fz"));
                    }
                    let op = if i == 0 {
                        opcode::TEXT
                    } else {
                        opcode::CONTINUATION
                    };
                    frames.push(frame(rng, op, p).fin(i + 1 == n));
                }
                let how = match ping_at {
                    Some(_) => format!("fragmented into {n} frames with a ping between"),
                    None => format!("fragmented into {n} frames"),
                };
                (frames, text_msg(&bytes), true, how)
            }
            2 => {
                let bits = rng.range(1, 7) as u8;
                let f = frame(rng, opcode::TEXT, &bytes).rsv(
                    bits & 4 != 0,
                    bits & 2 != 0,
                    bits & 1 != 0,
                );
                (
                    vec![f],
                    text_msg(&bytes),
                    true,
                    format!("RSV bits {bits:03b}"),
                )
            }
            3 => {
                let op = rng
                    .pick(&[3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
                    .copied()
                    .unwrap_or(3);
                let payload: Vec<u8> = if op >= 0xB {
                    bytes.iter().copied().take(125).collect()
                } else {
                    bytes.clone()
                };
                (
                    vec![frame(rng, op, &payload)],
                    text_msg(&payload),
                    true,
                    format!("reserved opcode {op:#x}"),
                )
            }
            4 => (
                vec![FrameSpec::new(opcode::TEXT, bytes.clone()).mask(Mask::Unmasked)],
                text_msg(&bytes),
                true,
                "unmasked frame".into(),
            ),
            5 => (
                vec![frame(rng, opcode::BINARY, &bytes)],
                Some(Delivered {
                    text: false,
                    bytes: bytes.clone(),
                }),
                true,
                "binary frame".into(),
            ),
            6 => (
                vec![frame(rng, opcode::CONTINUATION, &bytes)],
                None,
                true,
                "continuation without a message to continue".into(),
            ),
            7 => {
                let parts = split(rng, &bytes, 2);
                let first = parts.first().cloned().unwrap_or_default();
                let second = parts.get(1).cloned().unwrap_or_default();
                (
                    vec![
                        frame(rng, opcode::TEXT, &first).fin(false),
                        frame(rng, opcode::TEXT, &second),
                    ],
                    None,
                    true,
                    "new data frame inside a fragmented message".into(),
                )
            }
            8 => {
                let (control, what) = match rng.below(3) {
                    0 => {
                        let len = rng.range(126, 300);
                        (
                            frame(rng, opcode::PING, &vec![b'p'; len]),
                            format!("ping of {len} B"),
                        )
                    }
                    1 => (
                        frame(rng, opcode::PING, b"frag").fin(false),
                        "fragmented ping".into(),
                    ),
                    _ => (
                        frame(rng, opcode::PONG, b"unsolicited"),
                        "unsolicited pong".into(),
                    ),
                };
                (
                    vec![control, frame(rng, opcode::TEXT, &bytes)],
                    text_msg(&bytes),
                    true,
                    format!("{what} before the message"),
                )
            }
            9 => {
                let payload: Vec<u8> = match rng.below(4) {
                    0 => vec![0x03],
                    1 => vec![0x03, 0xE8, 0xFF, 0xFE],
                    _ => {
                        let code = rng
                            .pick(&[0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
                            .copied()
                            .unwrap_or(1005);
                        code.to_be_bytes().to_vec()
                    }
                };
                let shown = hex(&payload);
                (
                    vec![frame(rng, opcode::CLOSE, &payload)],
                    None,
                    false,
                    format!("close frame with payload {shown}"),
                )
            }
            10 => {
                let declared = rng
                    .pick(&[1u64 << 31, (1 << 63) - 1, 1 << 63, u64::MAX, 100 << 20])
                    .copied()
                    .unwrap_or(1 << 31);
                let f = frame(rng, opcode::TEXT, &bytes[..bytes.len().min(16)]).declaring(declared);
                (
                    vec![f],
                    None,
                    false,
                    format!("header declaring {declared} B"),
                )
            }
            11 => {
                let declared = (bytes.len() / 2) as u64;
                let f = frame(rng, opcode::TEXT, &bytes).declaring(declared);
                (
                    vec![f],
                    None,
                    false,
                    format!("header declaring {declared} B of {} B", bytes.len()),
                )
            }
            _ => (
                vec![frame(rng, opcode::TEXT, &bytes)],
                text_msg(&bytes),
                true,
                String::new(),
            ),
        };
    if !how.is_empty() {
        steps.push(format!("sent as {how}"));
    }
    if steps.is_empty() {
        steps.push("the valid message, unchanged".into());
    }
    FuzzCase {
        name: steps.join("; "),
        frames,
        delivered,
        fenced,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str =
        r#"{"type":"payment","amount":12.5,"reference":"TX-123456","currency":"USD"}"#;

    #[test]
    fn cases_are_reproducible_bounded_and_varied() {
        let m = Mutator::new(&[VALID.to_string()], 4096);
        let mut names = std::collections::BTreeSet::new();
        for i in 0..400 {
            let a = m.case(&mut Rng::for_case(1, 0, i));
            let b = m.case(&mut Rng::for_case(1, 0, i));
            assert_eq!(a, b, "case {i} is not reproducible");
            assert_eq!(a.wire_bytes(), b.wire_bytes());
            if let Some(d) = &a.delivered {
                assert!(d.bytes.len() <= 4096, "{}: {} B", a.name, d.bytes.len());
            }
            assert!(!a.frames.is_empty());
            names.insert(a.name.split(' ').next().unwrap_or("").to_string());
        }
        assert!(names.len() > 15, "too few kinds of mutation: {names:?}");
    }

    #[test]
    fn raw_placeholders_are_filled() {
        let m = Mutator::new(&[VALID.to_string()], 4096);
        for i in 0..400 {
            let c = m.case(&mut Rng::for_case(2, 1, i));
            let bytes = c.wire_bytes();
            assert!(
                !String::from_utf8_lossy(&bytes).contains("wsaudit-raw"),
                "{}",
                c.name
            );
            if let Some(d) = &c.delivered {
                assert!(!String::from_utf8_lossy(&d.bytes).contains("wsaudit-raw"));
            }
        }
    }
}
