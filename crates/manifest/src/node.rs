//! A YAML document as a tree of nodes that remember where they were written.
//!
//! serde-saphyr parses (with its budget against hostile input) and hands every
//! node to us wrapped in [`serde_saphyr::Spanned`]; validation then walks this
//! tree by hand so that it can report *every* problem, not only the first one.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};
use std::fmt;

/// Where a node was written: 1-based line and column (in characters), and the
/// byte range of its text when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Pos {
    pub line: usize,
    pub column: usize,
    pub byte_offset: Option<usize>,
    pub byte_len: usize,
}

impl Pos {
    pub(crate) fn from_location(loc: &Location) -> Pos {
        let span = loc.span();
        Pos {
            line: usize::try_from(loc.line()).unwrap_or(0),
            column: usize::try_from(loc.column()).unwrap_or(0),
            byte_offset: span.byte_offset().and_then(|o| usize::try_from(o).ok()),
            byte_len: span
                .byte_len()
                .and_then(|l| usize::try_from(l).ok())
                .unwrap_or(0),
        }
    }

    /// The text of the node as written, when the parser gave its byte range.
    pub(crate) fn source<'a>(&self, text: &'a str) -> Option<&'a str> {
        let start = self.byte_offset?;
        text.get(start..start.checked_add(self.byte_len)?)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub kind: Kind,
    pub pos: Pos,
}

impl Node {
    /// What the node is, in the words of an error message ("a string", "a list", …).
    pub(crate) fn describe(&self) -> &'static str {
        match self.kind {
            Kind::Null => "empty (null)",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "a number",
            Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self.kind, Kind::Null)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Kind>::deserialize(deserializer)?;
        Ok(Node {
            kind: spanned.value,
            pos: Pos::from_location(&spanned.referenced),
        })
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Kind, E> {
        Ok(Kind::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Kind, E> {
        Ok(Kind::Int(v.into()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Kind, E> {
        Ok(Kind::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Kind, E> {
        Ok(Kind::Int(v.into()))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Kind, E> {
        Ok(i128::try_from(v)
            .map(Kind::Int)
            .unwrap_or(Kind::Float(v as f64)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Kind, E> {
        Ok(Kind::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Kind, E> {
        Ok(Kind::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Kind, E> {
        Ok(Kind::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Kind, E> {
        Ok(Kind::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_none<E: de::Error>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        Kind::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        Kind::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Kind::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Kind::Map(entries))
    }
}

/// Limits against hostile input (a manifest comes from any repository).
pub(crate) const MAX_BYTES: usize = 256 * 1024;
pub(crate) const MAX_DEPTH: usize = 32;

/// Parser options: one document, bounded depth, nodes, aliases and scalar bytes.
pub(crate) fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            flow_nesting_limit: MAX_DEPTH,
            max_documents: 1,
            max_nodes: 20_000,
            max_events: 100_000,
            max_aliases: 200,
            max_anchors: 200,
            max_merge_keys: 100,
            max_recorded_anchor_events: 20_000,
            max_recorded_anchor_bytes: 1024 * 1024,
            max_total_scalar_bytes: MAX_BYTES,
            max_inclusion_depth: 0,
            alias_anchor_min_aliases: 20,
            alias_anchor_ratio_multiplier: 10,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 20_000,
            max_replay_stack_depth: 16,
            max_alias_expansions_per_anchor: 100,
        },
        with_snippet: false,
        // YAML 1.2: only true/false are booleans (`country: no` stays a string).
        strict_booleans: true,
        // Repeated keys reach the validator, which reports all of them at once.
        duplicate_keys: serde_saphyr::options::DuplicateKeyPolicy::PassThrough,
    }
}
