//! Where a plugin's bytes come from: a local file, an `https://` (or loopback `http://`) URL, or
//! an `oci://` registry reference. [`fetch`] only brings the bytes (and a signature published
//! beside them); whether they may be installed is decided by `trust.rs` (digest and signature)
//! and `install.rs` (validation), before anything is written.
//!
//! A URL is somebody else's server, so the download keeps to a few rules:
//! - plain `http://` only to a loopback host (a local build server, a test), or with
//!   [`FetchOptions::insecure`]: anyone on the path could swap the bytes otherwise;
//! - credentials in the URL (`https://user:pass@host/`) are refused rather than sent, since they
//!   would end up in shell history and logs; the source recorded in `lock.json` is the URL
//!   without its query or fragment, where presigned URLs carry their tokens;
//! - a redirect is followed only within the URL's origin (scheme, host and port), up to
//!   [`MAX_REDIRECTS`], the rule `cli/http_client.rs` keeps for the daemon's client: a mirror
//!   that redirects elsewhere moves trust to a host the operator never named;
//! - at most [`MAX_COMPONENT_BYTES`] are read (the cap on files), and the whole download has
//!   [`FetchOptions::timeout`].
//!
//! The client is its own (hyper over tokio-rustls with the webpki roots, the pieces the plugin
//! gate's client is made of) rather than the CLI's reqwest client: that one talks to a daemon and
//! is built without TLS, while a plugin is downloaded from anywhere.
//!
//! ```no_run
//! # async fn example() -> Result<(), mecha::plugin::fetch::FetchError> {
//! use mecha::plugin::fetch::{FetchOptions, fetch};
//! let fetched = fetch("https://example.com/x.wasm", &FetchOptions::default()).await?;
//! println!("{} bytes from {}", fetched.bytes.len(), fetched.source);
//! # Ok(())
//! # }
//! ```

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use reqwest::Url;

use super::component_file::{self, MAX_COMPONENT_BYTES};
use super::oci;
use crate::digest::sha256_hex;

/// 5 redirects within one origin: enough for a release page that points at its storage path,
/// and a loop ends quickly.
pub const MAX_REDIRECTS: usize = 5;

/// 5 minutes for a download of at most 64 MiB: about 220 KiB/s, which even a poor link beats,
/// while a server that stalls does not hang `mecha plugin install` forever.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// 4 KiB: a minisign signature is about 300 bytes.
const MAX_SIGNATURE_BYTES: u64 = 4096;

/// How [`fetch`] may reach a source.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Allow plain `http://` to hosts that are not loopback.
    pub insecure: bool,
    /// Look for a signature published beside the artifact (`<url>.minisig`). Off when the
    /// operator gave one (`--signature FILE`).
    pub signature_beside: bool,
    /// The longest the whole fetch (artifact and signature) may take.
    pub timeout: Duration,
    /// What to log in to an OCI registry with, if it asks.
    pub registry: oci::Credentials,
}

impl Default for FetchOptions {
    fn default() -> FetchOptions {
        FetchOptions {
            insecure: false,
            signature_beside: true,
            timeout: DEFAULT_TIMEOUT,
            registry: oci::Credentials::default(),
        }
    }
}

/// What [`fetch`] brought: the component's bytes, the signature found beside it, and where it
/// came from (a file's absolute path or a URL; never credentials).
#[derive(Debug, Clone)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub signature: Option<Vec<u8>>,
    pub source: String,
    /// The sha256 (hex) the source itself pinned and checked: an `oci://...@sha256:` reference
    /// names its manifest, which names the layer's digest. It counts as a `--sha256`.
    pub pinned_sha256: Option<String>,
}

/// Why a plugin could not be fetched. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    File(#[from] super::Error),
    #[error(
        "{spec} is not a URL mecha can fetch ({reason}); give a file, an https:// URL or oci://HOST/REPO:TAG"
    )]
    BadUrl { spec: String, reason: String },
    #[error(
        "{url} has credentials in it; mecha does not send credentials from a plugin URL, since \
         they would be kept in shell history and logs. Download the plugin yourself and install \
         the file"
    )]
    Credentials { url: String },
    #[error(
        "{url} is plain HTTP to a host that is not loopback, so anyone on the way could swap the \
         plugin; use https://, or pass --insecure if the network is yours"
    )]
    PlainHttp { url: String },
    #[error(transparent)]
    Oci(#[from] oci::Error),
    #[error("could not fetch {url}: {reason}; check the address and the network")]
    Connect { url: String, reason: String },
    #[error("{url} answered {status}; check that the URL names the plugin's .wasm file")]
    Status { url: String, status: u16 },
    #[error(
        "{from} redirected to {to}, another origin; mecha follows redirects only within the \
         URL's origin, so that the plugin comes from the host you named. Install from the URL it \
         redirects to, if you trust that host"
    )]
    CrossOriginRedirect { from: String, to: String },
    #[error("{url} redirected more than {MAX_REDIRECTS} times; give the final URL")]
    TooManyRedirects { url: String },
    #[error(
        "{url} is larger than {limit_kib} KiB, the most a {what} may be; check that it is the \
         plugin you meant"
    )]
    TooLarge {
        url: String,
        what: &'static str,
        limit_kib: u64,
    },
    #[error(
        "fetching {url} took longer than {seconds} s and was stopped; check the address, or \
         download the plugin yourself and install the file"
    )]
    Timeout { url: String, seconds: u64 },
}

/// Brings the plugin named by `spec`: a path, an `http(s)://` URL, or an `oci://` reference.
pub async fn fetch(spec: &str, options: &FetchOptions) -> Result<Fetched, FetchError> {
    if spec.starts_with("oci://") {
        let pinned_by_digest =
            matches!(oci::Reference::parse(spec)?.target, oci::Target::Digest(_));
        let pulled = tokio::time::timeout(
            options.timeout,
            oci::pull(spec, &options.registry, options.insecure),
        )
        .await
        .map_err(|_| FetchError::Timeout {
            url: spec.to_owned(),
            seconds: options.timeout.as_secs(),
        })??;
        return Ok(Fetched {
            pinned_sha256: pinned_by_digest.then(|| sha256_hex(&pulled.bytes)),
            signature: pulled.signature.filter(|_| options.signature_beside),
            bytes: pulled.bytes,
            source: pulled.source,
        });
    }
    if spec.starts_with("https://") || spec.starts_with("http://") {
        let url = checked_url(spec, options.insecure)?;
        let shown = shown(&url);
        return tokio::time::timeout(options.timeout, fetch_url(&url, options))
            .await
            .map_err(|_| FetchError::Timeout {
                url: shown,
                seconds: options.timeout.as_secs(),
            })?;
    }
    if let Some((scheme, _)) = spec.split_once("://") {
        return Err(FetchError::BadUrl {
            spec: spec.to_owned(),
            reason: format!("{scheme}:// is not supported"),
        });
    }
    let path = Path::new(spec);
    let bytes = component_file::read(path)?;
    let source = std::path::absolute(path)
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string();
    Ok(Fetched {
        bytes,
        signature: None,
        source,
        pinned_sha256: None,
    })
}

/// Parses `spec` and applies the rules on credentials and plain HTTP.
pub fn checked_url(spec: &str, insecure: bool) -> Result<Url, FetchError> {
    let url = Url::parse(spec).map_err(|err| FetchError::BadUrl {
        spec: spec.to_owned(),
        reason: err.to_string(),
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FetchError::Credentials { url: shown(&url) });
    }
    let Some(host) = url.host_str() else {
        return Err(FetchError::BadUrl {
            spec: shown(&url),
            reason: "it names no host".into(),
        });
    };
    if url.scheme() == "http" && !insecure && !is_loopback(host) {
        return Err(FetchError::PlainHttp { url: shown(&url) });
    }
    Ok(url)
}

/// `localhost` or a loopback address in any spelling (an IPv4-mapped IPv6 address too).
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || crate::net::resolve::literal(host).is_some_and(|ip| ip.to_canonical().is_loopback())
}

/// The URL as shown and recorded: without its query and fragment, where tokens travel.
fn shown(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

async fn fetch_url(url: &Url, options: &FetchOptions) -> Result<Fetched, FetchError> {
    let bytes = get(url, MAX_COMPONENT_BYTES, "plugin component")
        .await?
        .ok_or_else(|| FetchError::Status {
            url: shown(url),
            status: 404,
        })?;
    let signature = if options.signature_beside {
        let mut beside = url.clone();
        beside.set_path(&format!("{}.minisig", url.path()));
        get(&beside, MAX_SIGNATURE_BYTES, "minisign signature").await?
    } else {
        None
    };
    Ok(Fetched {
        bytes,
        signature,
        source: shown(url),
        pinned_sha256: None,
    })
}

/// GETs `url`, following redirects within its origin; `None` when the server says there is
/// nothing there (404 or 410).
async fn get(url: &Url, limit: u64, what: &'static str) -> Result<Option<Vec<u8>>, FetchError> {
    let mut current = url.clone();
    for _ in 0..=MAX_REDIRECTS {
        let response = request(&current).await?;
        let status = response.status();
        if status.is_redirection() {
            let next = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|location| location.to_str().ok())
                .and_then(|location| current.join(location).ok())
                .ok_or_else(|| FetchError::Connect {
                    url: shown(&current),
                    reason: format!("it answered {status} without a usable Location"),
                })?;
            if next.origin() != url.origin() {
                return Err(FetchError::CrossOriginRedirect {
                    from: url.origin().ascii_serialization(),
                    to: next.origin().ascii_serialization(),
                });
            }
            current = next;
            continue;
        }
        if status == http::StatusCode::NOT_FOUND || status == http::StatusCode::GONE {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                url: shown(&current),
                status: status.as_u16(),
            });
        }
        let too_large = || FetchError::TooLarge {
            url: shown(url),
            what,
            limit_kib: limit / 1024,
        };
        let declared = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|length| length.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit) {
            return Err(too_large());
        }
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|err| FetchError::Connect {
                url: shown(&current),
                reason: format!("the download broke off: {err}"),
            })?;
            if let Ok(data) = frame.into_data() {
                if (bytes.len() + data.len()) as u64 > limit {
                    return Err(too_large());
                }
                bytes.extend_from_slice(&data);
            }
        }
        return Ok(Some(bytes));
    }
    Err(FetchError::TooManyRedirects { url: shown(url) })
}

/// One GET over a fresh HTTP/1.1 connection.
async fn request(url: &Url) -> Result<http::Response<hyper::body::Incoming>, FetchError> {
    let failed = |reason: String| FetchError::Connect {
        url: shown(url),
        reason,
    };
    let crate::net::http1::Connection {
        mut sender,
        authority,
        path,
    } = crate::net::http1::connect(url).await.map_err(failed)?;
    let request = http::Request::get(path)
        .header(http::header::HOST, authority)
        .header(
            http::header::USER_AGENT,
            concat!("mecha/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|err| failed(err.to_string()))?;
    sender
        .send_request(request)
        .await
        .map_err(|err| failed(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback_unless_insecure() {
        for url in [
            "http://127.0.0.1:8080/x.wasm",
            "http://localhost/x.wasm",
            "http://[::1]:9/x.wasm",
            "http://[::ffff:127.0.0.1]/x.wasm",
            "https://example.com/x.wasm",
        ] {
            assert!(checked_url(url, false).is_ok(), "{url}");
        }
        for url in [
            "http://example.com/x.wasm",
            "http://10.0.0.1/x.wasm",
            "http://localhost.example.com/x.wasm",
        ] {
            let error = checked_url(url, false).unwrap_err();
            assert!(
                matches!(error, FetchError::PlainHttp { .. }),
                "{url}: {error}"
            );
            assert!(error.to_string().contains("--insecure"), "{error}");
            assert!(checked_url(url, true).is_ok(), "{url} with --insecure");
        }
    }

    #[test]
    fn credentials_are_refused_and_never_shown() {
        let error = checked_url("https://user:hunter2@example.com/x.wasm", false).unwrap_err();
        assert!(matches!(error, FetchError::Credentials { .. }), "{error}");
        assert!(!error.to_string().contains("hunter2"), "{error}");
        let url = checked_url("https://example.com/x.wasm?token=hunter2#f", false).unwrap();
        assert_eq!(shown(&url), "https://example.com/x.wasm");
    }

    /// A loopback server that answers every connection with `response` (or nothing at all),
    /// then closes it.
    async fn answering(response: Option<&'static [u8]>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request).await;
                match response {
                    Some(response) => {
                        let _ = stream.write_all(response).await;
                    }
                    None => held.push(stream),
                }
            }
        });
        base
    }

    #[tokio::test]
    async fn a_body_past_the_cap_is_refused_with_or_without_a_length() {
        let declared = answering(Some(
            b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n0123456789a",
        ))
        .await;
        let url = Url::parse(&format!("{declared}/x.wasm")).unwrap();
        let error = get(&url, 10, "plugin component").await.unwrap_err();
        assert!(matches!(error, FetchError::TooLarge { .. }), "{error}");
        assert_eq!(
            get(&url, 11, "plugin component").await.unwrap().unwrap(),
            b"0123456789a"
        );

        let undeclared = answering(Some(
            b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n0123456789a",
        ))
        .await;
        let url = Url::parse(&format!("{undeclared}/x.wasm")).unwrap();
        let error = get(&url, 10, "plugin component").await.unwrap_err();
        assert!(matches!(error, FetchError::TooLarge { .. }), "{error}");
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_given_up_on() {
        let silent = answering(None).await;
        let options = FetchOptions {
            timeout: Duration::from_millis(200),
            ..FetchOptions::default()
        };
        let error = fetch(&format!("{silent}/x.wasm"), &options)
            .await
            .unwrap_err();
        assert!(matches!(error, FetchError::Timeout { .. }), "{error}");
        assert!(error.to_string().contains("took longer than"), "{error}");
    }

    #[tokio::test]
    async fn other_schemes_say_what_to_do() {
        let error = fetch("ftp://example.com/x.wasm", &FetchOptions::default())
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("ftp:// is not supported"),
            "{error}"
        );
    }
}
