//! Where every node of a YAML document starts, keyed by its path, so errors found after parsing
//! (typed parameters, duplicate ids, unknown checks) point at the exact offending key or value.

use std::collections::BTreeMap;
use std::fmt;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use super::source::Location;

/// One step of a path into a YAML document: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Seg {
    /// A mapping key, as written (scalar keys only).
    Key(String),
    /// A 0-based sequence index.
    Index(usize),
}

/// A path from the document root to a node, e.g. `controls[2].with.ttl_max`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct YamlPath(pub Vec<Seg>);

impl YamlPath {
    /// The document root.
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// This path extended by a mapping key.
    pub fn key(&self, key: impl Into<String>) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Key(key.into()));
        p
    }

    /// This path extended by a sequence index.
    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }

    /// This path followed by `other`.
    pub fn join(&self, other: &YamlPath) -> Self {
        let mut p = self.clone();
        p.0.extend(other.0.iter().cloned());
        p
    }

    /// The part of this path after `prefix`, or the whole path when it does not start with it.
    pub fn strip_prefix(&self, prefix: &YamlPath) -> YamlPath {
        match self.0.strip_prefix(prefix.0.as_slice()) {
            Some(rest) => YamlPath(rest.to_vec()),
            None => self.clone(),
        }
    }

    /// The path without its last step (the root stays the root).
    pub fn parent(&self) -> YamlPath {
        let mut p = self.clone();
        p.0.pop();
        p
    }

    /// Whether this is the document root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for YamlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Positions of one node: its key (inside a mapping) and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodePosition {
    /// Where the key starts, for mapping entries.
    pub key: Option<Location>,
    /// Where the value starts.
    pub value: Location,
}

/// Path → position of every node of the first document of a YAML text.
#[derive(Debug, Clone, Default)]
pub struct YamlIndex {
    nodes: BTreeMap<YamlPath, NodePosition>,
    duplicates: Vec<(YamlPath, Location)>,
}

impl YamlIndex {
    /// Indexes `text`; a text this parser rejects yields an empty index (errors then fall back to
    /// the nearest known position, or to no position at all).
    pub fn build(text: &str) -> Self {
        let mut builder = Builder {
            text: text.as_bytes(),
            ..Builder::default()
        };
        let mut parser = Parser::new_from_str(text);
        // Only the first document matters: the loaders read exactly one.
        if parser.load(&mut builder, false).is_err() {
            return Self::default();
        }
        Self {
            nodes: builder.nodes,
            duplicates: builder.duplicates,
        }
    }

    /// Keys written twice in one mapping: (path, where the second one starts).
    pub fn duplicates(&self) -> &[(YamlPath, Location)] {
        &self.duplicates
    }

    /// The position of a node, when it exists.
    pub fn get(&self, path: &YamlPath) -> Option<NodePosition> {
        self.nodes.get(path).copied()
    }

    /// Where the value at `path` starts, or that of its nearest indexed ancestor.
    pub fn value_or_ancestor(&self, path: &YamlPath) -> Option<Location> {
        self.nearest(path).map(|n| n.value)
    }

    /// Where the key of `path` starts (its value for sequence items), or the nearest ancestor's.
    pub fn key_or_ancestor(&self, path: &YamlPath) -> Option<Location> {
        self.nearest(path).map(|n| n.key.unwrap_or(n.value))
    }

    fn nearest(&self, path: &YamlPath) -> Option<NodePosition> {
        let mut p = path.clone();
        loop {
            if let Some(n) = self.nodes.get(&p) {
                return Some(*n);
            }
            p.0.pop()?;
        }
    }
}

/// A collection being walked while events arrive.
#[derive(Debug)]
enum Frame {
    Mapping {
        path: YamlPath,
        /// A block mapping's start mark is not where it starts: take its first key's.
        start_at_first_key: bool,
        /// The key just read and where it started; `None` while a key is expected.
        key: Option<(String, Marker)>,
    },
    Sequence {
        path: YamlPath,
        next: usize,
    },
    /// A complex (non-scalar) mapping key: its content is not indexed.
    Skipped,
}

#[derive(Debug, Default)]
struct Builder<'t> {
    text: &'t [u8],
    stack: Vec<Frame>,
    nodes: BTreeMap<YamlPath, NodePosition>,
    duplicates: Vec<(YamlPath, Location)>,
    done: bool,
}

fn location(m: Marker) -> Location {
    Location {
        line: m.line(),
        column: m.col() + 1,
    }
}

impl Builder<'_> {
    /// Handles the start of a node; returns the path it lives at, or `None` when it is a key.
    fn node(&mut self, scalar_key: Option<&str>, mark: Marker) -> Option<YamlPath> {
        match self.stack.last_mut() {
            None => {
                self.nodes.insert(
                    YamlPath::root(),
                    NodePosition {
                        key: None,
                        value: location(mark),
                    },
                );
                Some(YamlPath::root())
            }
            Some(Frame::Skipped) => None,
            Some(Frame::Sequence { path, next }) => {
                let p = path.index(*next);
                *next += 1;
                self.nodes.insert(
                    p.clone(),
                    NodePosition {
                        key: None,
                        value: location(mark),
                    },
                );
                Some(p)
            }
            Some(Frame::Mapping {
                path,
                key,
                start_at_first_key,
            }) => match key.take() {
                None => {
                    // This node is a key.
                    *key = Some((scalar_key.unwrap_or("").to_string(), mark));
                    if std::mem::take(start_at_first_key)
                        && let Some(n) = self.nodes.get_mut(path)
                    {
                        n.value = location(mark);
                    }
                    None
                }
                Some((k, key_mark)) => {
                    let p = path.key(k);
                    if self.nodes.contains_key(&p) {
                        self.duplicates.push((p.clone(), location(key_mark)));
                    }
                    self.nodes.insert(
                        p.clone(),
                        NodePosition {
                            key: Some(location(key_mark)),
                            value: location(mark),
                        },
                    );
                    Some(p)
                }
            },
        }
    }
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.done {
            return;
        }
        match ev {
            Event::Scalar(text, ..) => {
                self.node(Some(&text), mark);
            }
            Event::Alias(_) => {
                self.node(None, mark);
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_map = matches!(ev, Event::MappingStart(..));
                let flow = self.text.get(mark.index()) == Some(&b'{');
                let frame = match self.node(None, mark) {
                    Some(path) if is_map => Frame::Mapping {
                        path,
                        key: None,
                        start_at_first_key: !flow,
                    },
                    Some(path) => Frame::Sequence { path, next: 0 },
                    None => Frame::Skipped,
                };
                self.stack.push(frame);
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some(Frame::Skipped) = self.stack.pop() {
                    // The complex key ended: its value follows under an unnamed key.
                    if let Some(Frame::Mapping { key, .. }) = self.stack.last_mut() {
                        *key = Some((String::new(), mark));
                    }
                }
            }
            Event::DocumentEnd => self.done = true,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_keys_values_and_items() {
        let text = "a: 1\nlist:\n  - x: { y: 2 }\n  - [3, 4]\n";
        let idx = YamlIndex::build(text);
        let a = idx.get(&YamlPath::root().key("a")).expect("a indexed");
        assert_eq!(a.key, Some(Location { line: 1, column: 1 }));
        assert_eq!(a.value, Location { line: 1, column: 4 });
        let y = YamlPath::root().key("list").index(0).key("x").key("y");
        assert_eq!(
            idx.get(&y).map(|n| n.value),
            Some(Location {
                line: 3,
                column: 13
            })
        );
        let four = YamlPath::root().key("list").index(1).index(1);
        assert_eq!(
            idx.get(&four).map(|n| n.value),
            Some(Location { line: 4, column: 9 })
        );
        assert_eq!(y.to_string(), "list[0].x.y");
    }
}
