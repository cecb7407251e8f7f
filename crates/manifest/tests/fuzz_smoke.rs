//! A bounded, deterministic stand-in for `cargo fuzz run parse` that runs on stable.
//!
//! Seeds: `fuzz/corpus/parse/` and this crate's `tests/corpus/`. Each round picks a
//! seed and applies a few random mutations (byte flips, YAML-significant tokens,
//! deletions, duplications, splices with another seed); the result goes through
//! the fuzz target's property: `parse` never panics, and an accepted manifest
//! survives `explain` → `parse` unchanged.
//!
//! `HANZO_FUZZ_ITERATIONS` (default 5000) and `HANZO_FUZZ_SEED` tune the run.

use std::path::{Path, PathBuf};

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const TOKENS: &[&str] = &[
    ":",
    ": ",
    "-",
    "- ",
    "\n",
    "\n  ",
    "  ",
    "\t",
    "#",
    "&a ",
    "*a",
    "<<: *a",
    "[",
    "]",
    "{",
    "}",
    ",",
    "'",
    "\"",
    "!!str ",
    "!!binary ",
    "|\n",
    ">\n",
    "---\n",
    "...\n",
    "? ",
    "~",
    "null",
    "true",
    "0x1F",
    "1e400",
    "-1",
    "65536",
    "0.0001",
    "512m",
    "1Gi",
    "30s",
    "1h",
    "\u{feff}",
    "é",
    "bücher.example",
    "*.",
    "/v2",
    "a,b",
    "@daily",
    "*/5",
    "\\",
    "\r\n",
    "name",
    "org",
    "services",
    "type: web",
    "type: cron",
    "port: ",
    "domains",
    "healthcheck",
    "exec",
    "path",
    "env",
    "secret: true",
    "kms_key",
    "value",
    "deploy",
    "build",
    "runtime",
    "node-20",
    "resources",
    "postgres",
];

fn seeds() -> Vec<Vec<u8>> {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs: Vec<PathBuf> = vec![crate_dir.join("../../fuzz/corpus/parse")];
    for sub in [
        "valid",
        "invalid/structural",
        "invalid/semantic",
        "invalid/yaml",
    ] {
        dirs.push(crate_dir.join("tests/corpus").join(sub));
    }
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for f in files {
            out.push(std::fs::read(f).unwrap());
        }
    }
    assert!(out.len() >= 20, "the seed corpus is missing");
    out
}

fn mutate(rng: &mut XorShift, input: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..1 + rng.below(3) {
        let len = data.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                let i = rng.below(len + 1);
                data.splice(i..i, t.iter().copied());
            }
            2 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(32)).min(len);
                data.drain(a..b);
            }
            3 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(64)).min(len);
                let chunk = data[a..b].to_vec();
                let at = rng.below(data.len() + 1);
                data.splice(at..at, chunk);
            }
            4 => {
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let a = rng.below(other.len());
                    let b = (a + 1 + rng.below(128)).min(other.len());
                    let at = rng.below(len + 1);
                    data.splice(at..at, other[a..b].iter().copied());
                }
            }
            5 if len > 0 => {
                // Replace a line's indentation: YAML structure lives there.
                let i = rng.below(len);
                data.insert(i, b' ');
            }
            _ => {
                let i = rng.below(len + 1);
                data.insert(i, rng.below(256) as u8);
            }
        }
    }
    data
}

/// The fuzz target's property (fuzz/fuzz_targets/parse.rs). True when the input was accepted.
fn check(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    if let Ok(m) = hanzo_manifest::parse(text, "hanzo.yaml") {
        let explained = hanzo_manifest::explain(&m);
        let again = hanzo_manifest::parse(&explained, "hanzo.yaml").unwrap_or_else(|d| {
            panic!("explain output does not parse.\ninput:\n{text}\noutput:\n{explained}\n{d}")
        });
        assert_eq!(
            m, again,
            "explain output parses differently.\ninput:\n{text}\noutput:\n{explained}"
        );
        return true;
    }
    false
}

#[test]
fn parse_survives_mutated_corpus() {
    let iterations: usize = std::env::var("HANZO_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let seed: u64 = std::env::var("HANZO_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15);
    let seeds = seeds();
    for s in &seeds {
        check(s);
    }
    let mut rng = XorShift(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1);
    let mut accepted = 0usize;
    for i in 0..iterations {
        let base = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, base, &seeds);
        let outcome = std::panic::catch_unwind(|| check(&input));
        if let Ok(true) = outcome {
            accepted += 1;
        }
        if let Err(panic) = outcome {
            let path = std::env::temp_dir().join(format!("hanzo-fuzz-crash-{seed}-{i}.yaml"));
            let _ = std::fs::write(&path, &input);
            std::panic::resume_unwind(Box::new(format!(
                "iteration {i} (seed {seed}) failed; input saved to {}: {:?}",
                path.display(),
                panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or(panic.downcast_ref::<&str>().copied())
            )));
        }
    }
    println!("{iterations} mutated inputs, {accepted} accepted manifests, no panic");
}

#[test]
fn hostile_shapes_are_refused_quickly() {
    let started = std::time::Instant::now();
    let mut deep = String::from("name: a\norg: b\nx: ");
    deep.push_str(&"[".repeat(10_000));
    let mut deep_block = String::from("name: a\norg: b\n");
    for i in 0..200 {
        deep_block.push_str(&" ".repeat(i));
        deep_block.push_str("k:\n");
    }
    let mut many_anchors = String::from("name: a\norg: b\nx:\n");
    many_anchors.push_str("  - &a0 [x, x, x, x, x, x, x, x]\n");
    for i in 1..40usize {
        let p = i - 1;
        many_anchors.push_str(&format!(
            "  - &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let long_line = format!("name: a\norg: b\nversion: \"{}\"\n", "x".repeat(300_000));
    let many_keys: String = (0..20_000).map(|i| format!("k{i}: 1\n")).collect();
    for (what, input) in [
        ("deep flow", deep),
        ("deep block", deep_block),
        ("anchor chain", many_anchors),
        ("long line", long_line),
        ("many keys", many_keys),
    ] {
        let t = std::time::Instant::now();
        let d = hanzo_manifest::parse(&input, "hanzo.yaml");
        assert!(d.is_err(), "{what}: hostile input accepted");
        println!(
            "{what}: refused in {:?}: {}",
            t.elapsed(),
            d.unwrap_err().items[0].message
        );
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "hostile inputs took {:?}",
        started.elapsed()
    );
}
