//! Streaming secret scrubber for build logs (HIP-14 "Security", point 4).
//!
//! Two stages:
//! 1. exact secret values, matched on the raw stream with Aho-Corasick; the last
//!    `longest secret − 1` bytes are held back so a value split across chunks is still caught;
//! 2. well-known secret formats, matched per line (partial lines are held back until their
//!    newline, [`MAX_PENDING_LINE`] bytes at most); private key blocks are tracked across lines.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::Regex;
use secrecy::{ExposeSecret, SecretString};

pub const REDACTED: &str = "[REDACTED]";

/// Secret values shorter than this are not matched exactly (they would redact ordinary words);
/// formats are still matched.
pub const MIN_SECRET_LEN: usize = 4;

/// A line longer than this without a newline is scrubbed and emitted as it is.
pub const MAX_PENDING_LINE: usize = 16 * 1024;

struct Format {
    re: Regex,
}

/// Formats; the named group `s` (or the whole match) is replaced.
static FORMATS: LazyLock<Vec<Format>> = LazyLock::new(|| {
    let patterns = [
        // AWS access key ids.
        r"\b(?P<s>(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16})\b",
        // AWS secret access keys, by their variable name.
        r#"(?i)(?:aws_?secret_?(?:access_?)?key|secret_?access_?key)["']?\s*[:=]\s*["']?(?P<s>[A-Za-z0-9/+=]{40})"#,
        // GitHub tokens.
        r"\b(?P<s>(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255})\b",
        r"\b(?P<s>github_pat_[A-Za-z0-9_]{22,255})\b",
        // GitLab tokens.
        r"\b(?P<s>gl(?:pat|dt|rt|ptt|ft|soat|cbt|imt|agent)-[A-Za-z0-9_\-]{20,})",
        // Slack tokens and webhooks.
        r"\b(?P<s>xox[abposre]-[A-Za-z0-9\-]{10,})",
        r"(?P<s>https://hooks\.slack\.com/services/[A-Za-z0-9_/]+)",
        // Stripe, Google, npm, PyPI.
        r"\b(?P<s>(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,})",
        r"\b(?P<s>AIza[0-9A-Za-z\-_]{35})",
        r"\b(?P<s>npm_[A-Za-z0-9]{36})\b",
        r"\b(?P<s>pypi-[A-Za-z0-9\-_]{50,})",
        // JWTs.
        r"\b(?P<s>eyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{10,})",
        // Passwords inside URLs: scheme://user:PASSWORD@host
        r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@]*:(?P<s>[^@\s/]+)@",
        // Authorization headers.
        r"(?i)\bauthorization:\s*(?:bearer|basic|token)\s+(?P<s>[A-Za-z0-9._~+/=\-]{8,})",
        // A private key on a single line (e.g. JSON with \n escapes).
        r"(?P<s>-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$))",
    ];
    patterns
        .iter()
        .map(|p| Format {
            // The patterns are constants, tested below.
            re: Regex::new(p).unwrap_or_else(|e| panic!("invalid scrubber pattern {p}: {e}")),
        })
        .collect()
});

static KEY_BEGIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----").unwrap_or_else(|e| panic!("{e}"))
});
static KEY_END: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"-----END [A-Z0-9 ]*PRIVATE KEY-----").unwrap_or_else(|e| panic!("{e}"))
});

/// Replaces well-known secret formats in a complete text (no exact values, no streaming).
pub fn scrub_text(text: &str) -> String {
    let mut s = Scrubber::new(&[]);
    let mut out = s.push(text);
    out.push_str(&s.finish());
    out
}

/// Replaces the known secret `values` and well-known secret formats in a complete text (an
/// error message, an event): what [`Scrubber`] does to a stream, in one call.
pub fn scrub_secrets(text: &str, values: &[SecretString]) -> String {
    let mut s = Scrubber::new(values);
    let mut out = s.push(text);
    out.push_str(&s.finish());
    out
}

/// Whether a variable name says it holds a secret: a word such as `TOKEN`, `SECRET`,
/// `PASSWORD`, `PASSWD`, `PASSPHRASE`, `CREDENTIALS`, `APIKEY` or `AUTH`, or `KEY` after
/// `API`, `PRIVATE`, `ACCESS`, `SECRET`, `SIGNING`, `ENCRYPTION` or `MASTER`
/// (`NPM_TOKEN`, `DB_PASSWORD`, `STRIPE_API_KEY`, `AWS_SECRET_ACCESS_KEY`). Words are split at
/// `_`, `-` and `.`, case-insensitively; `PWD` (the working directory) and `KEY` alone are not.
pub fn looks_like_secret_name(name: &str) -> bool {
    const WORDS: &[&str] = &[
        "TOKEN",
        "TOKENS",
        "SECRET",
        "SECRETS",
        "PASSWORD",
        "PASSWORDS",
        "PASSWD",
        "PASSPHRASE",
        "CREDENTIAL",
        "CREDENTIALS",
        "APIKEY",
        "AUTH",
    ];
    const KEY_AFTER: &[&str] = &[
        "API",
        "PRIVATE",
        "ACCESS",
        "SECRET",
        "SIGNING",
        "ENCRYPTION",
        "MASTER",
    ];
    let upper = name.to_ascii_uppercase();
    let words: Vec<&str> = upper
        .split(['_', '-', '.'])
        .filter(|w| !w.is_empty())
        .collect();
    words.iter().enumerate().any(|(i, w)| {
        WORDS.contains(w) || (*w == "KEY" && i > 0 && KEY_AFTER.contains(&words[i - 1]))
    })
}

fn scrub_formats(line: &str) -> String {
    let mut text = line.to_string();
    for f in FORMATS.iter() {
        if !f.re.is_match(&text) {
            continue;
        }
        text =
            f.re.replace_all(&text, |caps: &regex::Captures<'_>| {
                let whole = caps.get(0).map(|m| (m.start(), m.end())).unwrap_or((0, 0));
                match caps.name("s") {
                    Some(s) => {
                        let full = &caps[0];
                        format!(
                            "{}{}{}",
                            &full[..s.start() - whole.0],
                            REDACTED,
                            &full[s.end() - whole.0..]
                        )
                    }
                    None => REDACTED.to_string(),
                }
            })
            .into_owned();
    }
    text
}

/// Streaming scrubber: feed chunks with [`push`](Scrubber::push), end with
/// [`finish`](Scrubber::finish); the concatenated outputs are the scrubbed input.
pub struct Scrubber {
    exact: Option<AhoCorasick>,
    /// The exact values (to test whether a tail may start one).
    values: Vec<String>,
    /// Most bytes held back by stage 1: `longest secret − 1`.
    hold: usize,
    /// Stage 1 input not yet emitted.
    raw: String,
    /// Stage 2 input: the current partial line.
    line: String,
    /// Inside a multi-line private key block.
    in_key: bool,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrubber")
            .field("hold", &self.hold)
            .finish_non_exhaustive()
    }
}

impl Scrubber {
    pub fn new(secrets: &[SecretString]) -> Self {
        let mut values: Vec<&str> = secrets
            .iter()
            .map(|s| s.expose_secret())
            .filter(|v| v.len() >= MIN_SECRET_LEN)
            .collect();
        values.sort_unstable();
        values.dedup();
        let hold = values.iter().map(|v| v.len()).max().unwrap_or(1) - 1;
        let exact = if values.is_empty() {
            None
        } else {
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&values)
                .ok()
        };
        let values = values.into_iter().map(str::to_string).collect();
        Scrubber {
            exact,
            values,
            hold,
            raw: String::new(),
            line: String::new(),
            in_key: false,
        }
    }

    /// Scrubs a chunk; returns what can be emitted now (whole lines, mostly).
    pub fn push(&mut self, chunk: &str) -> String {
        self.raw.push_str(chunk);
        let stage1 = self.drain_exact(false);
        self.lines(&stage1, false)
    }

    /// Scrubs and returns everything still held back.
    pub fn finish(&mut self) -> String {
        let stage1 = self.drain_exact(true);
        self.lines(&stage1, true)
    }

    /// Stage 1: replaces exact values in `raw`, returns the part that can move on.
    fn drain_exact(&mut self, all: bool) -> String {
        let Some(ac) = &self.exact else {
            return std::mem::take(&mut self.raw);
        };
        let len = self.raw.len();
        let cut = if all { len } else { self.safe_cut() };
        let mut out = String::with_capacity(cut + 16);
        let mut pos = 0;
        for m in ac.find_iter(&self.raw) {
            if m.start() >= cut {
                break;
            }
            // A match starting before `cut` is complete: had it run past the end, the tail
            // from its start would be a prefix of a value and `cut` would not be after it.
            out.push_str(&self.raw[pos..m.start()]);
            out.push_str(REDACTED);
            pos = m.end();
        }
        let end = cut.max(pos);
        out.push_str(&self.raw[pos..end]);
        self.raw.drain(..end);
        out
    }

    /// Where the held-back tail starts: the earliest position (within the last
    /// `longest − 1` bytes) from which the rest of `raw` is the beginning of a secret value.
    /// Everything before it cannot be part of an unfinished value.
    fn safe_cut(&self) -> usize {
        let len = self.raw.len();
        let mut p = len.saturating_sub(self.hold);
        while p < len {
            if self.raw.is_char_boundary(p) {
                let tail = &self.raw[p..];
                if self.values.iter().any(|v| v.starts_with(tail)) {
                    return p;
                }
            }
            p += 1;
        }
        len
    }

    /// Stage 2: formats, per complete line.
    fn lines(&mut self, text: &str, all: bool) -> String {
        self.line.push_str(text);
        let mut out = String::new();
        while let Some(nl) = self.line.find('\n') {
            let rest = self.line.split_off(nl + 1);
            let line = std::mem::replace(&mut self.line, rest);
            self.scrub_line(&line, &mut out);
        }
        if all || self.line.len() > MAX_PENDING_LINE {
            let line = std::mem::take(&mut self.line);
            if !line.is_empty() {
                self.scrub_line(&line, &mut out);
            }
        }
        out
    }

    fn scrub_line(&mut self, line: &str, out: &mut String) {
        let mut rest = line;
        if self.in_key {
            match KEY_END.find(rest) {
                Some(m) => {
                    self.in_key = false;
                    rest = &rest[m.end()..];
                }
                None => {
                    // Inside the block: the line is dropped, its line break kept.
                    if line.ends_with('\n') {
                        out.push('\n');
                    }
                    return;
                }
            }
        }
        if let Some(b) = KEY_BEGIN.find(rest)
            && KEY_END.find_at(rest, b.end()).is_none()
        {
            // A block starts here and continues on the next lines.
            out.push_str(&scrub_formats(&rest[..b.start()]));
            out.push_str(REDACTED);
            if line.ends_with('\n') {
                out.push('\n');
            }
            self.in_key = true;
            return;
        }
        out.push_str(&scrub_formats(rest));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names() {
        for yes in [
            "NPM_TOKEN",
            "db_password",
            "STRIPE_API_KEY",
            "AWS_SECRET_ACCESS_KEY",
            "GITHUB_AUTH",
            "SENTRY_AUTH_TOKEN",
            "PRIVATE_KEY",
            "SECRET",
            "app.secret",
            "GPG_PASSPHRASE",
            "GOOGLE_APPLICATION_CREDENTIALS",
        ] {
            assert!(looks_like_secret_name(yes), "{yes}");
        }
        for no in [
            "NODE_ENV",
            "PWD",
            "KEY",
            "CACHE_KEY",
            "TOKENIZER_MODEL",
            "AUTHOR",
            "VITE_API_URL",
            "PUBLIC_KEY_PATH",
        ] {
            assert!(!looks_like_secret_name(no), "{no}");
        }
    }

    #[test]
    fn scrub_secrets_replaces_values_and_formats() {
        let values = [SecretString::from("hunter2-sentinel".to_string())];
        let text = "push failed: hunter2-sentinel rejected; key AKIAABCDEFGHIJKLMNOP";
        let out = scrub_secrets(text, &values);
        assert_eq!(out, "push failed: [REDACTED] rejected; key [REDACTED]");
    }

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    fn run(secrets: &[&str], chunks: &[&str]) -> String {
        let secrets: Vec<_> = secrets.iter().map(|s| secret(s)).collect();
        let mut s = Scrubber::new(&secrets);
        let mut out = String::new();
        for c in chunks {
            out.push_str(&s.push(c));
        }
        out.push_str(&s.finish());
        out
    }

    #[test]
    fn exact_value_in_one_chunk() {
        assert_eq!(
            run(&["s3cr3t-value"], &["token is s3cr3t-value here\n"]),
            "token is [REDACTED] here\n"
        );
    }

    #[test]
    fn exact_value_split_across_chunks_every_way() {
        let text = "before SENTINEL-8c1f2e after\nnext line SENTINEL-8c1f2e\n";
        for i in 0..text.len() {
            for j in i..text.len() {
                let out = run(&["SENTINEL-8c1f2e"], &[&text[..i], &text[i..j], &text[j..]]);
                assert_eq!(
                    out, "before [REDACTED] after\nnext line [REDACTED]\n",
                    "split at {i},{j}"
                );
            }
        }
    }

    #[test]
    fn byte_by_byte_with_multibyte_text() {
        let text = "é→ pass=ÜberGeheim99 ✓\n";
        let secrets = [secret("ÜberGeheim99")];
        let mut s = Scrubber::new(&secrets);
        let mut out = String::new();
        for ch in text.chars() {
            out.push_str(&s.push(&ch.to_string()));
        }
        out.push_str(&s.finish());
        assert_eq!(out, "é→ pass=[REDACTED] ✓\n");
    }

    #[test]
    fn multi_line_secret_value() {
        let v = "line-one-secret\nline-two-secret";
        let out = run(&[v], &["x line-one-se", "cret\nline-two-secret y\n"]);
        assert_eq!(out, "x [REDACTED] y\n");
    }

    #[test]
    fn overlapping_secrets_prefer_the_longest() {
        assert_eq!(
            run(&["abcd", "abcdefgh"], &["__abcdefgh__\n"]),
            "__[REDACTED]__\n"
        );
    }

    #[test]
    fn emits_complete_lines_without_waiting_for_finish() {
        let secrets = [secret("x-secret-long-value")];
        let mut s = Scrubber::new(&secrets);
        let out = s.push("Step 1/3 : FROM node\nRUN npm ci\nrunning...");
        assert_eq!(out, "Step 1/3 : FROM node\nRUN npm ci\n");
        assert_eq!(s.finish(), "running...");
    }

    #[test]
    fn well_known_formats() {
        let cases = [
            ("key AKIAIOSFODNN7EXAMPLE end", "key [REDACTED] end"),
            (
                "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "AWS_SECRET_ACCESS_KEY=[REDACTED]",
            ),
            (
                "aws_secret_access_key: \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"",
                "aws_secret_access_key: \"[REDACTED]\"",
            ),
            (
                "gh ghp_0123456789abcdefghijABCDEFGHIJ012345 ok",
                "gh [REDACTED] ok",
            ),
            (
                "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
                "[REDACTED]",
            ),
            ("glpat-xxxxXXXXxxxxXXXXxxxx1234", "[REDACTED]"),
            ("slack xoxb-1234567890-abcdefghij", "slack [REDACTED]"),
            (
                "hook https://hooks.slack.com/services/T000/B000/XXXXXXXX done",
                "hook [REDACTED] done",
            ),
            (
                "postgres://app:Sup3r$ecret@db.internal:5432/app",
                "postgres://app:[REDACTED]@db.internal:5432/app",
            ),
            (
                "https://:tok3n@github.com/org/r.git",
                "https://:[REDACTED]@github.com/org/r.git",
            ),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
                "jwt [REDACTED]",
            ),
            (
                "Authorization: Bearer abcdef123456.xyz",
                "Authorization: Bearer [REDACTED]",
            ),
            (
                "{\"k\":\"-----BEGIN PRIVATE KEY-----\\nMIIEv\\n-----END PRIVATE KEY-----\"}",
                "{\"k\":\"[REDACTED]\"}",
            ),
            ("sk_live_0123456789abcdefABCDEF", "[REDACTED]"),
        ];
        for (input, want) in cases {
            assert_eq!(
                run(&[], &[&format!("{input}\n")]),
                format!("{want}\n"),
                "{input}"
            );
        }
    }

    #[test]
    fn private_key_block_across_lines_and_chunks() {
        let text = "before\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1\nabcdefgh\n-----END RSA PRIVATE KEY-----\nafter\n";
        for i in 0..text.len() {
            let out = run(&[], &[&text[..i], &text[i..]]);
            assert_eq!(out, "before\n[REDACTED]\n\n\n\nafter\n", "split at {i}");
            assert!(!out.contains("MIIE"));
        }
    }

    #[test]
    fn ordinary_build_output_is_untouched() {
        let text = "\
Step 1/7 : FROM node:20-bookworm-slim
 ---> 3f1c2d4e5a6b
Step 2/7 : WORKDIR /app
 ---> Running in 0123456789ab
Removing intermediate container 0123456789ab
 ---> sha256:4a5b6c7d8e9f00112233445566778899aabbccddeeff00112233445566778899
npm WARN deprecated inflight@1.0.6: This module is not supported
added 57 packages, and audited 58 packages in 2s
found 0 vulnerabilities
Downloading https://registry.npmjs.org/express/-/express-4.18.2.tgz
Connecting to http://deb.debian.org:80/debian bookworm InRelease
Get:1 http://deb.debian.org/debian bookworm/main amd64 Packages [8787 kB]
Successfully built 4a5b6c7d8e9f
Successfully tagged 127.0.0.1:5000/hanzo-web:abc1234
user@example.com wrote: see https://example.com:8443/path?a=b
The password field must be at least 8 characters
eyJhbGciOi is just a prefix
AKIA too short
";
        assert_eq!(run(&["not-present-anywhere"], &[text]), text);
        assert_eq!(scrub_text(text), text);
    }

    #[test]
    fn short_secret_values_are_ignored() {
        assert_eq!(run(&["abc", ""], &["abc abc\n"]), "abc abc\n");
    }

    #[test]
    fn long_partial_line_is_flushed() {
        let secrets = [secret("0123456789")];
        let mut s = Scrubber::new(&secrets);
        let big = "x".repeat(MAX_PENDING_LINE + 10);
        let out = s.push(&big);
        assert!(
            out.len() >= MAX_PENDING_LINE,
            "a line without newline is not held forever"
        );
    }
}
