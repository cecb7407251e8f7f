//! Problems found in a manifest, each pointing at the line and column where it was written.

use crate::node::Pos;
use std::fmt;

/// One problem: `hanzo.yaml:LINE:COL: what is wrong — how to fix it`, followed by
/// the offending line and a caret under the offending text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// The file name as given to [`crate::parse`] (normally `hanzo.yaml`).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it (may be empty).
    pub help: String,
    /// The text of the offending line, when there is one.
    pub source_line: Option<String>,
    /// How many characters to underline from `column` (at least 1).
    pub length: usize,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )?;
        if !self.help.is_empty() {
            write!(f, " — {}", self.help)?;
        }
        if let Some(src) = &self.source_line {
            let gutter = self.line.to_string();
            let pad = " ".repeat(gutter.len());
            writeln!(f)?;
            writeln!(f, "{pad} |")?;
            writeln!(f, "{gutter} | {src}")?;
            // Keep tabs in the prefix so the caret lines up under the text.
            let prefix: String = src
                .chars()
                .take(self.column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let available = src
                .chars()
                .count()
                .saturating_sub(self.column.saturating_sub(1));
            let len = self.length.min(available).max(1);
            write!(f, "{pad} | {prefix}{}", "^".repeat(len))?;
        }
        Ok(())
    }
}

/// Every problem found in one pass, in the order they appear in the file.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
#[serde(transparent)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.items.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                write!(f, "\n\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

/// Collects diagnostics while validation walks the document.
pub(crate) struct Sink<'a> {
    pub file: &'a str,
    pub text: &'a str,
    pub items: Vec<Diagnostic>,
}

impl<'a> Sink<'a> {
    pub(crate) fn new(file: &'a str, text: &'a str) -> Self {
        Sink {
            file,
            text,
            items: Vec::new(),
        }
    }

    pub(crate) fn report(&mut self, pos: Pos, message: impl Into<String>, help: impl Into<String>) {
        let line = pos.line.max(1);
        let column = pos.column.max(1);
        let source_line = self
            .text
            .lines()
            .nth(line - 1)
            .map(|l| l.trim_end_matches('\r').to_string());
        let length = pos
            .source(self.text)
            .map(|s| s.lines().next().unwrap_or("").chars().count())
            .unwrap_or(1)
            .max(1);
        self.items.push(Diagnostic {
            file: self.file.to_string(),
            line,
            column,
            message: message.into(),
            help: help.into(),
            source_line,
            length,
        });
    }

    pub(crate) fn finish(mut self) -> Diagnostics {
        // Stable: problems found at the same place keep the order they were found in.
        self.items.sort_by_key(|d| (d.line, d.column));
        Diagnostics { items: self.items }
    }
}

/// The closest candidate to `word`, if it is close enough to be a plausible typo.
pub(crate) fn did_you_mean<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let lower = word.to_ascii_lowercase().replace('-', "_");
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = distance(&lower, c);
        let limit = (c.chars().count().max(word.chars().count()) / 3).max(1);
        let close = d <= limit
            || (c.len() >= 3
                && (lower.starts_with(c) || c.starts_with(&lower))
                && lower.len() >= 3);
        if close && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len() > 64 || b.len() > 64 {
        return usize::MAX;
    }
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(b.len() + 1) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let keys = ["instances", "memory", "cpu", "strategy", "max_surge"];
        assert_eq!(did_you_mean("memroy", keys), Some("memory"));
        assert_eq!(did_you_mean("instance", keys), Some("instances"));
        assert_eq!(did_you_mean("max-surge", keys), Some("max_surge"));
        assert_eq!(did_you_mean("CPU", keys), Some("cpu"));
        assert_eq!(did_you_mean("banana", keys), None);
    }

    #[test]
    fn display_has_caret_under_the_text() {
        let text = "deploy:\n  memory: 512MB\n";
        let mut sink = Sink::new("hanzo.yaml", text);
        let pos = Pos {
            line: 2,
            column: 11,
            byte_offset: Some(18),
            byte_len: 5,
        };
        sink.report(pos, "memory \"512MB\" has an unknown unit", "write 512Mi");
        let shown = sink.finish().to_string();
        assert_eq!(
            shown,
            "hanzo.yaml:2:11: memory \"512MB\" has an unknown unit — write 512Mi\n  |\n2 |   memory: 512MB\n  |           ^^^^^"
        );
    }
}
