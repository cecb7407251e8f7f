//! Names users choose (organisations, applications) and the names derived from them.

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{what} is empty — give it a name of lowercase letters, digits and '-'")]
    Empty { what: &'static str },
    #[error("{what} {name:?} is longer than 63 characters — shorten it")]
    TooLong { what: &'static str, name: String },
    #[error(
        "{what} {name:?} is not a DNS label — use lowercase letters, digits and '-', starting with a letter and not ending with '-'"
    )]
    NotDnsLabel { what: &'static str, name: String },
}

/// Checks that `name` is a DNS label (RFC 1123, lowercase, starting with a letter):
/// organisation and application names end up in host names, image names,
/// container names and Kubernetes namespaces.
pub fn validate_name(what: &'static str, name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty { what });
    }
    if name.len() > 63 {
        return Err(NameError::TooLong {
            what,
            name: name.to_string(),
        });
    }
    let bytes = name.as_bytes();
    let ok_chars = bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    let ok_ends = bytes[0].is_ascii_lowercase() && bytes[bytes.len() - 1] != b'-';
    if !ok_chars || !ok_ends {
        return Err(NameError::NotDnsLabel {
            what,
            name: name.to_string(),
        });
    }
    Ok(())
}

/// The image repository of an application: `<registry>/<org>-<app>` (spec:
/// "Container Registry"). With no registry the image stays in the local engine
/// and the repository is just `<org>-<app>`.
pub fn image_repository(registry: Option<&str>, org: &str, app: &str) -> String {
    match registry.map(|r| r.trim_end_matches('/')) {
        Some(r) if !r.is_empty() => format!("{r}/{org}-{app}"),
        _ => format!("{org}-{app}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        assert!(validate_name("application name", "hello-2").is_ok());
        assert!(matches!(
            validate_name("application name", ""),
            Err(NameError::Empty { .. })
        ));
        assert!(validate_name("application name", "Hello").is_err());
        assert!(validate_name("application name", "-x").is_err());
        assert!(validate_name("application name", "x-").is_err());
        assert!(validate_name("application name", "2x").is_err());
        assert!(validate_name("application name", &"a".repeat(64)).is_err());
    }

    #[test]
    fn image_names_follow_the_spec() {
        assert_eq!(
            image_repository(Some("ghcr.io/hanzoai"), "hanzo", "cloud"),
            "ghcr.io/hanzoai/hanzo-cloud"
        );
        assert_eq!(
            image_repository(Some("127.0.0.1:5000/"), "lux", "gw"),
            "127.0.0.1:5000/lux-gw"
        );
        assert_eq!(image_repository(None, "zoo", "r"), "zoo-r");
    }
}
