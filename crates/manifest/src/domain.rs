//! Domains as written in `services[].domains`: a host and an optional path prefix.

use crate::types::Domain;

/// A refused domain: what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} — {help}")]
pub struct DomainError {
    pub message: String,
    pub help: String,
}

fn err(message: impl Into<String>, help: impl Into<String>) -> DomainError {
    DomainError {
        message: message.into(),
        help: help.into(),
    }
}

/// Parses one domain as `services[].domains` accepts it: `cloud.hanzo.ai`,
/// `api.hanzo.ai/v2`, `*.hanzo.ai`, `bücher.example` (→ punycode `xn--bcher-kva.example`).
/// The host is lowercased; a trailing `/` of the path is dropped.
pub fn parse_domain(raw: &str) -> Result<Domain, DomainError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(err(
            "the domain is empty",
            "write a host name such as app.example.com",
        ));
    }
    if s.contains(',') || s.split_whitespace().count() > 1 {
        let parts: Vec<&str> = s
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .collect();
        let list = parts
            .iter()
            .map(|p| format!("\n  - {p}"))
            .collect::<String>();
        return Err(err(
            format!("{s:?} is several domains in one string"),
            format!("write one domain per list entry:{list}"),
        ));
    }
    if let Some(idx) = s.find("://") {
        let scheme = &s[..idx];
        return Err(err(
            format!("{s:?} includes the scheme {scheme:?}"),
            format!(
                "write the host only ({}); TLS is provisioned automatically",
                &s[idx + 3..]
            ),
        ));
    }
    let (host_part, path) = match s.find('/') {
        Some(i) => (&s[..i], Some(&s[i..])),
        None => (s, None),
    };
    if host_part.contains(':') {
        return Err(err(
            format!("{s:?} includes a port"),
            "remove the port; routing happens on the standard HTTP and HTTPS ports",
        ));
    }
    if host_part.contains(['?', '#', '@']) {
        return Err(err(
            format!("{s:?} is not a host name"),
            "write a host name such as app.example.com",
        ));
    }
    let host = host_part.trim_end_matches('.');
    let (wildcard, bare) = match host.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, host),
    };
    if bare.contains('*') {
        return Err(err(
            format!("{s:?} has a '*' that is not the whole first label"),
            "a wildcard domain looks like *.example.com",
        ));
    }
    let ascii = idna::domain_to_ascii_strict(bare).map_err(|_| {
        err(
            format!("{host:?} is not a valid host name"),
            "use letters, digits and '-' in dot-separated labels, such as app.example.com",
        )
    })?;
    if ascii.is_empty() || ascii.len() > 253 {
        return Err(err(
            format!("{host:?} is not a valid host name"),
            "a host name has 1 to 253 characters",
        ));
    }
    for label in ascii.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(err(
                format!("{host:?} has an invalid label {label:?}"),
                "each label has 1 to 63 letters, digits or '-', and does not start or end with '-'",
            ));
        }
    }
    if let Some(tld) = ascii.rsplit('.').next()
        && tld.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(err(
            format!("{host:?} is an IP address, not a domain"),
            "route a domain name; instances are reached by IP without a domain entry",
        ));
    }
    let host = if wildcard {
        format!("*.{ascii}")
    } else {
        ascii
    };
    let path = match path {
        None => None,
        Some(p) => {
            if p.contains(['?', '#']) || p.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(err(
                    format!("the path {p:?} of {s:?} is not a plain path"),
                    "write a path prefix such as /api/v2 (no query, fragment or spaces)",
                ));
            }
            if p.split('/').any(|seg| seg == ".." || seg == ".") {
                return Err(err(
                    format!("the path {p:?} of {s:?} has '.' or '..' segments"),
                    "write the path plainly",
                ));
            }
            let trimmed = p.trim_end_matches('/');
            if trimmed.is_empty() {
                None
            } else {
                Some(trimmed.to_string())
            }
        }
    };
    Ok(Domain { host, path })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> (String, Option<String>) {
        let d = parse_domain(s).unwrap();
        (d.host, d.path)
    }

    #[test]
    fn hosts_and_paths() {
        assert_eq!(ok("cloud.hanzo.ai"), ("cloud.hanzo.ai".into(), None));
        assert_eq!(
            ok("API.Hanzo.AI/v2/"),
            ("api.hanzo.ai".into(), Some("/v2".into()))
        );
        assert_eq!(ok("bücher.example"), ("xn--bcher-kva.example".into(), None));
        assert_eq!(ok("*.hanzo.ai"), ("*.hanzo.ai".into(), None));
        assert_eq!(ok("hanzo.ai/"), ("hanzo.ai".into(), None));
    }

    #[test]
    fn refusals() {
        for bad in [
            "a.com,b.com",
            "a.com b.com",
            "https://a.com",
            "a.com:8080",
            "-a.com",
            "a..com",
            "127.0.0.1",
            "a.*.com",
            "a.com/x?y=1",
            "a_b.com",
            "",
        ] {
            assert!(parse_domain(bad).is_err(), "{bad} should be refused");
        }
        let e = parse_domain("a.com, b.com").unwrap_err();
        assert!(e.help.contains("- a.com\n  - b.com"), "{}", e.help);
    }
}
