//! Build context: the context directory as a tar stream, honouring `.dockerignore`.
//!
//! `.git` is always left out; symbolic links are stored as links (never followed), so a
//! repository cannot pull host files into its build.

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::BuildError;

/// One `.dockerignore` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    /// Path segments of the pattern (`**` is a segment of its own).
    segments: Vec<String>,
    /// `!pattern`: re-include.
    negate: bool,
}

/// `.dockerignore` rules (the Docker CLI's semantics: Go `filepath.Match` per segment, `**`
/// for any number of segments, `!` exceptions, the last matching rule wins, a rule matching
/// a directory matches everything under it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerIgnore {
    rules: Vec<Rule>,
}

impl DockerIgnore {
    pub fn parse(text: &str) -> Self {
        let mut rules = Vec::new();
        for raw in text.lines() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negate, pat) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            let segments: Vec<String> = pat
                .split('/')
                .filter(|s| !s.is_empty() && *s != ".")
                .map(str::to_string)
                .collect();
            // `..` cannot leave the context; such rules match nothing useful.
            if segments.is_empty() || segments.iter().any(|s| s == "..") {
                continue;
            }
            rules.push(Rule { segments, negate });
        }
        DockerIgnore { rules }
    }

    /// Reads `<context>/.dockerignore` (no file: no rules).
    pub fn load(context: &Path) -> Result<Self, BuildError> {
        let path = context.join(".dockerignore");
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Self::parse(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(BuildError::io(path, e)),
        }
    }

    fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|r| r.negate)
    }

    /// Whether the relative path (segments joined by `/`) is excluded.
    pub fn excluded(&self, rel: &str) -> bool {
        let segs: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
        let mut excluded = false;
        for rule in &self.rules {
            // The path itself or one of its parents.
            let hit = (1..=segs.len()).any(|n| match_segments(&rule.segments, &segs[..n]));
            if hit {
                excluded = !rule.negate;
            }
        }
        excluded
    }
}

fn match_segments(pat: &[String], path: &[&str]) -> bool {
    match pat.first() {
        None => path.is_empty(),
        Some(p) if p == "**" => (0..=path.len()).any(|i| match_segments(&pat[1..], &path[i..])),
        Some(p) => match path.first() {
            Some(seg) => {
                glob_segment(p.as_bytes(), seg.as_bytes()) && match_segments(&pat[1..], &path[1..])
            }
            None => false,
        },
    }
}

/// `filepath.Match` for one segment: `*`, `?`, `[…]` / `[^…]` with ranges, `\` escapes.
fn glob_segment(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') => (0..=s.len()).any(|i| glob_segment(&p[1..], &s[i..])),
        Some(b'?') => !s.is_empty() && glob_segment(&p[1..], &s[1..]),
        Some(b'[') => {
            let Some(&c) = s.first() else { return false };
            let mut i = 1;
            let negate = matches!(p.get(i), Some(b'^') | Some(b'!'));
            if negate {
                i += 1;
            }
            let mut matched = false;
            let mut first = true;
            while i < p.len() && (first || p[i] != b']') {
                first = false;
                let mut lo = p[i];
                if lo == b'\\' && i + 1 < p.len() {
                    i += 1;
                    lo = p[i];
                }
                let mut hi = lo;
                if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
                    hi = p[i + 2];
                    i += 2;
                }
                if lo <= c && c <= hi {
                    matched = true;
                }
                i += 1;
            }
            if i >= p.len() {
                return false; // unterminated class: no match
            }
            matched != negate && glob_segment(&p[i + 1..], &s[1..])
        }
        Some(b'\\') if p.len() > 1 => s.first() == Some(&p[1]) && glob_segment(&p[2..], &s[1..]),
        Some(&c) => s.first() == Some(&c) && glob_segment(&p[1..], &s[1..]),
    }
}

/// Extra files written into the context (generated Dockerfile, CA bundle), relative path → bytes.
pub(crate) type Extra = Vec<(String, Vec<u8>)>;

/// The relative paths the context will contain (sorted), for tests and `hanzo build plan`.
pub fn context_files(context: &Path) -> Result<Vec<String>, BuildError> {
    let ignore = DockerIgnore::load(context)?;
    let mut out = Vec::new();
    walk(context, context, &ignore, &mut |rel, _path, _meta| {
        out.push(rel.to_string());
        Ok(())
    })?;
    out.sort();
    Ok(out)
}

type Visit<'a> = dyn FnMut(&str, &Path, &std::fs::Metadata) -> Result<(), BuildError> + 'a;

fn walk(
    root: &Path,
    dir: &Path,
    ignore: &DockerIgnore,
    visit: &mut Visit<'_>,
) -> Result<(), BuildError> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| BuildError::io(dir, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| BuildError::io(dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name();
        if name == ".git" {
            continue;
        }
        let rel = match path.strip_prefix(root) {
            Ok(r) => r.to_string_lossy().replace('\\', "/"),
            Err(_) => continue,
        };
        let meta = std::fs::symlink_metadata(&path).map_err(|e| BuildError::io(&path, e))?;
        let excluded = ignore.excluded(&rel);
        if meta.is_dir() {
            if excluded && !ignore.has_exceptions() {
                continue;
            }
            if !excluded {
                visit(&rel, &path, &meta)?;
            }
            walk(root, &path, ignore, visit)?;
        } else if !excluded {
            visit(&rel, &path, &meta)?;
        }
    }
    Ok(())
}

/// A `Write` that sends its bytes as chunks over a channel (from a blocking task).
struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

const CHUNK: usize = 64 * 1024;

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx.blocking_send(chunk).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the build stopped reading the context",
            )
        })
    }
}

/// Writes the context as a tar archive to `w`: the files of `context` (minus ignored ones),
/// then `extra` files (which replace files of the same path).
pub(crate) fn write_tar<W: Write>(context: &Path, extra: &Extra, w: W) -> Result<W, BuildError> {
    let ignore = DockerIgnore::load(context)?;
    let mut tar = tar::Builder::new(w);
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Deterministic);
    let replaced: std::collections::BTreeSet<&str> =
        extra.iter().map(|(p, _)| p.as_str()).collect();
    walk(context, context, &ignore, &mut |rel, path, meta| {
        if replaced.contains(rel) {
            return Ok(());
        }
        if meta.is_dir() {
            tar.append_dir(rel, path)
                .map_err(|e| BuildError::io(path, e))
        } else if meta.is_file() || meta.file_type().is_symlink() {
            tar.append_path_with_name(path, rel)
                .map_err(|e| BuildError::io(path, e))
        } else {
            Ok(()) // sockets, fifos, devices: not part of a build context
        }
    })?;
    for (rel, data) in extra {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, rel, data.as_slice())
            .map_err(|e| BuildError::io(PathBuf::from(rel), e))?;
    }
    tar.into_inner().map_err(|e| BuildError::io(context, e))
}

/// Streams the context tar from a blocking task. The receiver yields chunks; the join handle
/// reports whether the archive was written completely.
pub(crate) fn stream_tar(
    context: PathBuf,
    extra: Extra,
) -> (
    mpsc::Receiver<Bytes>,
    tokio::task::JoinHandle<Result<(), BuildError>>,
) {
    let (tx, rx) = mpsc::channel(8);
    let handle = tokio::task::spawn_blocking(move || {
        let w = ChannelWriter {
            tx,
            buf: Vec::new(),
        };
        let mut w = write_tar(&context, &extra, w)?;
        w.flush().map_err(|e| BuildError::io(&context, e))
    });
    (rx, handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text)
    }

    #[test]
    fn simple_patterns() {
        let i = ignore("# comment\nnode_modules\n*.log\n/dist\nsecret?.txt\n");
        assert!(i.excluded("node_modules"));
        assert!(i.excluded("node_modules/a/b.js"));
        assert!(i.excluded("debug.log"));
        assert!(
            !i.excluded("logs/debug.log"),
            "*.log is anchored at the root like Docker"
        );
        assert!(i.excluded("dist/app.js"));
        assert!(i.excluded("secret1.txt"));
        assert!(!i.excluded("secret10.txt"));
        assert!(!i.excluded("src/index.js"));
    }

    #[test]
    fn double_star_and_exceptions() {
        let i = ignore("**/*.md\n!README.md\ntmp/**\n[abc]x\n");
        assert!(i.excluded("docs/guide.md"));
        assert!(i.excluded("CHANGES.md"));
        assert!(!i.excluded("README.md"));
        assert!(i.excluded("tmp/a/b"));
        assert!(i.excluded("bx"));
        assert!(!i.excluded("dx"));
    }

    #[test]
    fn last_rule_wins() {
        let i = ignore("*\n!src\nsrc/secret.env\n");
        assert!(i.excluded("package.json"));
        assert!(!i.excluded("src/index.js"));
        assert!(i.excluded("src/secret.env"));
    }

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        for f in [
            "package.json",
            "src/index.js",
            "node_modules/x/index.js",
            ".git/HEAD",
            "sub/.git/config",
            "notes.md",
            "keep/README.md",
        ] {
            let path = p.join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, f).unwrap();
        }
        std::fs::write(
            p.join(".dockerignore"),
            "node_modules\n**/*.md\n!keep/README.md\n",
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", p.join("link")).unwrap();
        d
    }

    #[test]
    fn context_respects_dockerignore_and_skips_git() {
        let d = tree();
        let files = context_files(d.path()).unwrap();
        assert_eq!(
            files,
            [
                ".dockerignore",
                "keep",
                "keep/README.md",
                "link",
                "package.json",
                "src",
                "src/index.js",
                "sub"
            ]
        );
    }

    #[test]
    fn tar_has_links_as_links_and_extra_files() {
        let d = tree();
        let extra = vec![
            (".hanzo/Dockerfile".to_string(), b"FROM scratch\n".to_vec()),
            ("package.json".to_string(), b"{}".to_vec()),
        ];
        let bytes = write_tar(d.path(), &extra, Vec::new()).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().to_string();
            if path == "link" {
                assert_eq!(entry.header().entry_type(), tar::EntryType::Symlink);
            }
            if path == "package.json" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut entry, &mut s).unwrap();
                assert_eq!(s, "{}", "extra files replace context files");
            }
            seen.push(path);
        }
        assert!(seen.contains(&".hanzo/Dockerfile".to_string()));
        assert_eq!(seen.iter().filter(|p| *p == "package.json").count(), 1);
        assert!(
            !seen
                .iter()
                .any(|p| p.contains(".git") || p.contains("node_modules"))
        );
    }
}
