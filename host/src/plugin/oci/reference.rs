//! `oci://HOST/REPO:TAG` and `oci://HOST/REPO@sha256:DIGEST`, checked while parsing, and the rule
//! for plain HTTP.
//!
//! Everything parsed here ends up in a URL path, so each part is held to the OCI distribution
//! spec's grammar (lowercase repository components, a tag of at most 128 characters, a sha256
//! digest of 64 hex digits): a `..` or `?` from a reference never reaches the registry.

use reqwest::Url;

use super::Error;

/// What a reference names in its repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Tag(String),
    /// `sha256:<64 hex>`: the manifest's digest, checked against the manifest read.
    Digest(String),
}

/// A parsed `oci://` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host` or `host:port`, as the registry is addressed (and as Docker's config file keys it).
    pub host: String,
    pub repository: String,
    pub target: Target,
}

impl Reference {
    pub fn parse(input: &str) -> Result<Reference, Error> {
        let invalid = |reason: &str| Error::Reference {
            reference: input.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = input
            .strip_prefix("oci://")
            .ok_or_else(|| invalid("it does not start with oci://"))?;
        let (host, path) = rest
            .split_once('/')
            .ok_or_else(|| invalid("it names no repository after the host"))?;
        check_host(host).map_err(|reason| invalid(&reason))?;
        let (repository, target) = if let Some((repository, digest)) = path.split_once('@') {
            check_digest(digest).map_err(|reason| invalid(&reason))?;
            (repository, Target::Digest(digest.to_owned()))
        } else {
            // The tag follows the last `:`; a `:` before the last `/` would be a port, which
            // belongs to the host, so it cannot appear in the repository.
            let (repository, tag) = path
                .rsplit_once(':')
                .ok_or_else(|| invalid("it names no tag or digest; add :TAG or @sha256:DIGEST"))?;
            check_tag(tag).map_err(|reason| invalid(&reason))?;
            (repository, Target::Tag(tag.to_owned()))
        };
        check_repository(repository).map_err(|reason| invalid(&reason))?;
        // Docker Hub's API lives at registry-1.docker.io; `docker.io/x` means `docker.io/library/x`
        // only for official images, which hold no wasm plugins, so no `library/` is added.
        let host = if host == "docker.io" {
            "registry-1.docker.io".to_owned()
        } else {
            host.to_owned()
        };
        Ok(Reference {
            host,
            repository: repository.to_owned(),
            target,
        })
    }

    /// The base URL of the registry: plain HTTP for a loopback registry (as Docker treats
    /// `localhost`) or with `--insecure`, HTTPS otherwise.
    pub fn base_url(&self, insecure: bool) -> Result<Url, Error> {
        let probe =
            Url::parse(&format!("http://{}/", self.host)).map_err(|err| Error::Reference {
                reference: self.to_string(),
                reason: format!("its host is not valid: {err}"),
            })?;
        let scheme = if insecure || is_loopback(&probe) {
            "http"
        } else {
            "https"
        };
        Url::parse(&format!("{scheme}://{}/", self.host)).map_err(|err| Error::Reference {
            reference: self.to_string(),
            reason: format!("its host is not valid: {err}"),
        })
    }

    /// The same repository, at `tag`.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            target: Target::Tag(tag.to_owned()),
            ..self.clone()
        }
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.target {
            Target::Tag(tag) => write!(f, "oci://{}/{}:{tag}", self.host, self.repository),
            Target::Digest(digest) => write!(f, "oci://{}/{}@{digest}", self.host, self.repository),
        }
    }
}

/// Whether `url` points at this machine: `localhost` or a loopback address.
pub fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Refuses plain HTTP to anything but this machine unless the operator said `--insecure`:
/// a registry's answers are checked by digest, but credentials and tokens are not, and a tag
/// read over plain HTTP can be swapped by anyone on the path. Applied to the registry, to the
/// token service a registry names, and to every redirect.
pub fn check_transport(url: &Url, insecure: bool) -> Result<(), Error> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if insecure || is_loopback(url) => Ok(()),
        "http" => Err(Error::PlainHttp {
            url: url.origin().ascii_serialization(),
        }),
        other => Err(Error::Protocol(format!(
            "the registry pointed to {}, a {other}: URL; only https (and http for loopback or \
             with --insecure) is used",
            url.origin().ascii_serialization()
        ))),
    }
}

fn check_host(host: &str) -> Result<(), String> {
    let valid = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "its host {host:?} is not a host name or address with an optional :port"
        ))
    }
}

/// Repository components: lowercase letters and digits, separated by `.`, `_`, `__` or `-`s.
fn check_repository(repository: &str) -> Result<(), String> {
    let component_ok = |component: &str| {
        let bytes = component.as_bytes();
        !bytes.is_empty()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(b))
            && bytes[0].is_ascii_alphanumeric()
            && bytes[bytes.len() - 1].is_ascii_alphanumeric()
            && !component.contains("..")
    };
    if repository.len() <= 255 && repository.split('/').all(component_ok) {
        Ok(())
    } else {
        Err(format!(
            "its repository {repository:?} is not valid: use lowercase letters, digits and . _ - \
             between them, in components separated by /"
        ))
    }
}

fn check_tag(tag: &str) -> Result<(), String> {
    let bytes = tag.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(b));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "its tag {tag:?} is not valid: up to 128 letters, digits, _ . -, not starting with . or -"
        ))
    }
}

/// A `sha256:` digest of 64 lowercase hex digits, the only algorithm mecha reads.
pub fn check_digest(digest: &str) -> Result<(), String> {
    let valid = digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{digest:?} is not a digest mecha reads; give sha256: and 64 lowercase hex digits"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn tags_digests_and_ports_are_parsed() {
        let reference = Reference::parse("oci://127.0.0.1:5000/team/plugin:v1.2").expect("valid");
        assert_eq!(reference.host, "127.0.0.1:5000");
        assert_eq!(reference.repository, "team/plugin");
        assert_eq!(reference.target, Target::Tag("v1.2".into()));
        assert_eq!(
            reference.to_string(),
            "oci://127.0.0.1:5000/team/plugin:v1.2"
        );

        let reference = Reference::parse(&format!("oci://ghcr.io/o/p@{DIGEST}")).expect("valid");
        assert_eq!(reference.target, Target::Digest(DIGEST.into()));
        let reference = Reference::parse("oci://docker.io/o/p:1").expect("valid");
        assert_eq!(reference.host, "registry-1.docker.io");
    }

    #[test]
    fn malformed_references_are_refused_with_the_reason() {
        for (input, reason) in [
            ("https://ghcr.io/o/p:1", "oci://"),
            ("oci://ghcr.io", "no repository"),
            ("oci://ghcr.io/o/p", "no tag or digest"),
            ("oci://ghcr.io/O/p:1", "repository"),
            ("oci://ghcr.io/o/../p:1", "repository"),
            ("oci://ghcr.io/o/p:1?x=y", "tag"),
            ("oci://ghcr.io/o/p@sha256:abc", "64 lowercase hex"),
            ("oci://gh cr.io/o/p:1", "host"),
        ] {
            let err = Reference::parse(input).expect_err(input).to_string();
            assert!(err.contains(reason), "{input}: {err}");
        }
    }

    #[test]
    fn plain_http_is_only_for_loopback_or_insecure() {
        let remote = Reference::parse("oci://registry.example.com/o/p:1").expect("valid");
        assert_eq!(remote.base_url(false).expect("url").scheme(), "https");
        assert_eq!(remote.base_url(true).expect("url").scheme(), "http");
        for local in ["oci://127.0.0.1:5000/o/p:1", "oci://localhost:5000/o/p:1"] {
            let local = Reference::parse(local).expect("valid");
            assert_eq!(local.base_url(false).expect("url").scheme(), "http");
        }

        let remote_http = Url::parse("http://registry.example.com/v2/").expect("url");
        let err = check_transport(&remote_http, false).expect_err("plain http refused");
        assert!(err.to_string().contains("--insecure"), "{err}");
        check_transport(&remote_http, true).expect("allowed with --insecure");
        for allowed in [
            "http://127.0.0.1:5000/v2/",
            "http://[::1]:5000/v2/",
            "http://localhost/v2/",
            "https://registry.example.com/v2/",
        ] {
            check_transport(&Url::parse(allowed).expect("url"), false).expect(allowed);
        }
        let ftp = Url::parse("ftp://registry.example.com/").expect("url");
        assert!(check_transport(&ftp, true).is_err());
    }
}
