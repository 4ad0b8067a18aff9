//! Plugins in OCI registries: `mecha plugin install oci://HOST/REPO:TAG` ([`pull`]) and
//! `mecha plugin push FILE oci://HOST/REPO:TAG` ([`push`]).
//!
//! # Layout
//!
//! The CNCF wasm OCI artifact layout that `wkg oci push` and `oras` write: an image manifest
//! (`application/vnd.oci.image.manifest.v1+json`) whose config has the media type
//! `application/vnd.wasm.config.v0+json` and whose only layer is the component,
//! `application/wasm`. [`pull`] refuses anything else, naming what it found, so an image or a
//! multi-platform index is not mistaken for a plugin. [`push`] writes the config `wkg` reads
//! (with the component's imports and exports), dated [`REPRODUCIBLE_CREATED`] so that pushing
//! the same component twice gives the same digest.
//!
//! # Signatures
//!
//! A minisign signature of the component's bytes (the same `.minisig` file `--signature` takes
//! for a local file) is stored as its own artifact in the same repository, under the tag
//! `sha256-<hex of the wasm manifest's digest>.minisig`: an image manifest with an empty config
//! (`application/vnd.oci.empty.v1+json`), one layer holding the signature
//! ([`SIGNATURE_MEDIA_TYPE`]) and a `subject` naming the wasm manifest. Why this convention:
//!
//! - it works on every registry, including distribution 2.8 (Debian's `docker-registry`), which
//!   has no referrers API; it is the tag scheme cosign uses (`sha256-<hex>.sig`) for the same
//!   reason, so registries and their garbage collectors already tolerate it;
//! - the wasm artifact stays exactly what `wkg` and `oras` write and read (one `application/wasm`
//!   layer); a second layer would break them, and signing later would change the digest;
//! - a signature can be added after publishing, by someone other than the publisher, with tools
//!   users have: `minisign -Sm plugin.wasm` then `oras push HOST/REPO:sha256-<hex>.minisig
//!   plugin.wasm.minisig:application/vnd.mecha.minisign.signature.v1`;
//! - the `subject` lets registries with the referrers API list it too.
//!
//! The tag is found from the digest of the manifest actually read, so a signature is never
//! paired with another artifact; whether it is valid, and by whom, is for the trust store to say.
//!
//! # What is checked
//!
//! Every read is bounded: manifests at [`MAX_MANIFEST_BYTES`], the component at the manifest's
//! stated size and never more than [`MAX_COMPONENT_BYTES`], a signature at
//! [`MAX_SIGNATURE_BYTES`]. Blobs are hashed as they arrive and refused when the digest or size
//! differs; a pull by `@sha256:` also checks the manifest's digest, so a registry cannot swap
//! what a digest names. Plain HTTP is used only for a loopback registry or with `--insecure`
//! ([`check_transport`]), also for redirects and token services.

mod auth;
mod http;
mod reference;

use ::http::header::{ACCEPT, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use ::http::{Method, StatusCode};
use reqwest::Url;
use serde::{Deserialize, Serialize};

pub use auth::Credentials;
use auth::{Challenge, Login};
use http::{Request, Response};
pub use reference::{Reference, Target, check_transport};

use super::component_file::MAX_COMPONENT_BYTES;

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The layer of a signature artifact: a minisign signature file as `minisign -S` writes it.
pub const SIGNATURE_MEDIA_TYPE: &str = "application/vnd.mecha.minisign.signature.v1";
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// 4 MiB: the limit distribution itself puts on manifests; a plugin's manifest is under 1 KiB.
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// 64 KiB: a minisign signature with its comments is under 1 KiB.
pub const MAX_SIGNATURE_BYTES: u64 = 64 * 1024;
/// 1 MiB for a token service's answer: a JWT is a few KiB.
const MAX_TOKEN_BYTES: u64 = 1024 * 1024;
/// Redirects followed for one request: blob downloads commonly redirect once, to storage.
const MAX_REDIRECTS: usize = 5;

/// What went wrong talking to a registry. Each says what to check or do; none holds a credential.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{reference} is not an OCI reference mecha reads: {reason}; write oci://HOST/REPO:TAG or oci://HOST/REPO@sha256:DIGEST"
    )]
    Reference { reference: String, reason: String },
    #[error(
        "refusing plain HTTP to {url}: registry credentials and tags would cross the network \
         unprotected; use an https registry, or pass --insecure if this network is trusted"
    )]
    PlainHttp { url: String },
    #[error(
        "could not reach the registry at {url}: {reason}; check the address and that the registry is running"
    )]
    Connect { url: String, reason: String },
    #[error("the registry answered {status} to {what}: {message}")]
    Status {
        what: String,
        status: StatusCode,
        message: String,
    },
    #[error("{reference} does not exist in the registry; check the repository and tag")]
    NotFound { reference: String },
    #[error(
        "the registry at {host} refused the credentials or asked for some: {reason}; log in with \
         `docker login {host}` or pass --username with --password-stdin"
    )]
    Unauthorized { host: String, reason: String },
    #[error(
        "credentials for {host} are kept in {what}, which mecha does not read; pass --username \
         with --password-stdin instead"
    )]
    Unsupported { host: String, what: String },
    #[error("{path}: {reason}; fix or remove the file, or pass --username with --password-stdin")]
    DockerConfig {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error(
        "{reference} is not a wasm plugin artifact: {reason}; publish one with `mecha plugin push`, `wkg oci push` or `oras push`"
    )]
    NotWasm { reference: String, reason: String },
    #[error(
        "{what} from the registry has digest {actual}, not {expected}: it was changed or corrupted; do not use it"
    )]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error(
        "{what} from the registry is {actual} bytes, not the {expected} its manifest states; do not use it"
    )]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error(
        "{what} is larger than {limit} bytes, the most mecha reads for it; check that the reference names a plugin"
    )]
    TooLarge { what: String, limit: u64 },
    #[error("the registry's answer made no sense: {0}")]
    Protocol(String),
}

/// A plugin read from a registry.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The component, checked against its layer's digest and size.
    pub bytes: Vec<u8>,
    /// The minisign signature stored beside it, if any (not yet verified).
    pub signature: Option<Vec<u8>>,
    /// The wasm manifest's digest, `sha256:<hex>`.
    pub digest: String,
    /// The reference as given, normalized (`oci://HOST/REPO:TAG` or `@sha256:...`).
    pub source: String,
}

/// What [`push`] published.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The wasm manifest's digest, `sha256:<hex>`.
    pub digest: String,
    /// The artifact by digest: `oci://HOST/REPO@sha256:<hex>`.
    pub pinned: String,
    /// The tag the signature went under, when one was pushed.
    pub signature_tag: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    artifact_type: Option<String>,
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject: Option<Descriptor>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: String,
    size: u64,
}

impl Descriptor {
    fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_owned(),
            digest: digest_of(bytes),
            size: bytes.len() as u64,
        }
    }
}

/// The wasm OCI spec's config, with the fields `wkg` (the `oci-wasm` crate) requires to read it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WasmConfig<'a> {
    /// Always [`REPRODUCIBLE_CREATED`].
    created: &'a str,
    architecture: &'a str,
    os: &'a str,
    layer_digests: Vec<String>,
    component: ComponentInterfaces,
}

/// The component's top-level imports and exports, which the spec asks for when `os` is
/// `wasip2`, so that a registry can index what a component is without downloading it.
#[derive(Serialize, Default)]
struct ComponentInterfaces {
    exports: Vec<String>,
    imports: Vec<String>,
}

/// The config's `created`: the Unix epoch, as reproducible builds date their outputs
/// (`SOURCE_DATE_EPOCH`). A push of the same component then gives the same manifest digest, so
/// its signature tag stays valid, and pushing it again changes nothing.
const REPRODUCIBLE_CREATED: &str = "1970-01-01T00:00:00Z";

/// Reads the names of `wasm`'s own imports and exports (not those of components nested in it).
fn interfaces(wasm: &[u8]) -> Result<ComponentInterfaces, Error> {
    use wasmtime::wasmparser::{Parser, Payload};
    let mut found = ComponentInterfaces::default();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|err| {
            Error::Protocol(format!(
                "the component could not be read to describe it: {err}"
            ))
        })?;
        let unreadable = |err: wasmtime::wasmparser::BinaryReaderError| {
            Error::Protocol(format!(
                "the component could not be read to describe it: {err}"
            ))
        };
        match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(section) if depth == 0 => {
                for import in section {
                    found
                        .imports
                        .push(import.map_err(unreadable)?.name.name.to_owned());
                }
            }
            Payload::ComponentExportSection(section) if depth == 0 => {
                for export in section {
                    found
                        .exports
                        .push(export.map_err(unreadable)?.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    Ok(found)
}

/// Reads the plugin `reference` names (`oci://HOST/REPO:TAG` or `@sha256:DIGEST`), with the
/// signature stored beside it when there is one.
pub async fn pull(
    reference: &str,
    credentials: &Credentials,
    insecure: bool,
) -> Result<Pulled, Error> {
    let reference = Reference::parse(reference)?;
    let mut registry = Registry::new(&reference, credentials.clone(), insecure, "pull")?;
    let (manifest_bytes, manifest) = registry.manifest(&reference).await?;
    let digest = digest_of(&manifest_bytes);
    if let Target::Digest(expected) = &reference.target
        && *expected != digest
    {
        return Err(Error::DigestMismatch {
            what: format!("the manifest of {reference}"),
            expected: expected.clone(),
            actual: digest,
        });
    }
    let layer = wasm_layer(&reference, &manifest)?;
    let bytes = registry
        .blob(
            &layer,
            MAX_COMPONENT_BYTES,
            &format!("the component of {reference}"),
        )
        .await?;
    let signature = registry.signature(&reference, &digest).await?;
    Ok(Pulled {
        bytes,
        signature,
        digest,
        source: reference.to_string(),
    })
}

/// The tags of the repository `reference` names (`GET /v2/<repo>/tags/list`), for finding a
/// newer version. One page of up to 1,000 tags: a plugin's repository holds its releases and
/// their signature tags, far fewer.
pub async fn tags(
    reference: &str,
    credentials: &Credentials,
    insecure: bool,
) -> Result<Vec<String>, Error> {
    let reference = Reference::parse(reference)?;
    let mut registry = Registry::new(&reference, credentials.clone(), insecure, "pull")?;
    let url = registry.url("tags/list?n=1000")?;
    let what = format!(
        "listing the tags of oci://{}/{}",
        reference.host, reference.repository
    );
    let response = registry
        .send(&what, &Request::new(Method::GET, url))
        .await?;
    if response.status == StatusCode::NOT_FOUND {
        return Err(Error::NotFound {
            reference: reference.to_string(),
        });
    }
    let response = expect_success(response, &what).await?;
    let body = response
        .read_capped(MAX_MANIFEST_BYTES, "the registry's tag list")
        .await?;
    #[derive(Deserialize)]
    struct TagList {
        #[serde(default)]
        tags: Option<Vec<String>>,
    }
    let list: TagList = serde_json::from_slice(&body)
        .map_err(|err| Error::Protocol(format!("the tag list is not one: {err}")))?;
    Ok(list.tags.unwrap_or_default())
}

/// Publishes the component `wasm` under `reference`'s tag in the wasm OCI layout, and
/// `signature` (a minisign signature of `wasm`) under the signature tag.
pub async fn push(
    reference: &str,
    wasm: &[u8],
    signature: Option<&[u8]>,
    credentials: &Credentials,
    insecure: bool,
) -> Result<Pushed, Error> {
    let reference = Reference::parse(reference)?;
    if matches!(reference.target, Target::Digest(_)) {
        return Err(Error::Reference {
            reference: reference.to_string(),
            reason: "a push needs a tag to publish under, and the digest is known only once \
                     pushed"
                .into(),
        });
    }
    if wasm.len() as u64 > MAX_COMPONENT_BYTES {
        return Err(Error::TooLarge {
            what: "the component".into(),
            limit: MAX_COMPONENT_BYTES,
        });
    }
    let mut registry = Registry::new(&reference, credentials.clone(), insecure, "pull,push")?;
    let layer = Descriptor::of(WASM_LAYER_MEDIA_TYPE, wasm);
    let config = serde_json::to_vec(&WasmConfig {
        created: REPRODUCIBLE_CREATED,
        architecture: "wasm",
        os: "wasip2",
        layer_digests: vec![layer.digest.clone()],
        component: interfaces(wasm)?,
    })
    .map_err(|err| Error::Protocol(format!("could not encode the config: {err}")))?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.into()),
        artifact_type: None,
        config: Descriptor::of(WASM_CONFIG_MEDIA_TYPE, &config),
        layers: vec![layer],
        subject: None,
    };
    registry.upload(&config).await?;
    registry.upload(wasm).await?;
    let manifest_bytes = encode(&manifest)?;
    registry.put_manifest(&reference, &manifest_bytes).await?;
    let digest = digest_of(&manifest_bytes);

    let signature_tag = match signature {
        None => None,
        Some(signature) => {
            if signature.len() as u64 > MAX_SIGNATURE_BYTES {
                return Err(Error::TooLarge {
                    what: "the signature".into(),
                    limit: MAX_SIGNATURE_BYTES,
                });
            }
            let empty = b"{}";
            let signed = Manifest {
                schema_version: 2,
                media_type: Some(MANIFEST_MEDIA_TYPE.into()),
                artifact_type: Some(SIGNATURE_MEDIA_TYPE.into()),
                config: Descriptor::of(EMPTY_MEDIA_TYPE, empty),
                layers: vec![Descriptor::of(SIGNATURE_MEDIA_TYPE, signature)],
                subject: Some(Descriptor {
                    media_type: MANIFEST_MEDIA_TYPE.into(),
                    digest: digest.clone(),
                    size: manifest_bytes.len() as u64,
                }),
            };
            registry.upload(empty).await?;
            registry.upload(signature).await?;
            let tag = signature_tag(&digest);
            registry
                .put_manifest(&reference.with_tag(&tag), &encode(&signed)?)
                .await?;
            Some(tag)
        }
    };
    Ok(Pushed {
        pinned: Reference {
            target: Target::Digest(digest.clone()),
            ..reference
        }
        .to_string(),
        digest,
        signature_tag,
    })
}

/// The tag a signature of the artifact whose manifest has `digest` is stored under.
pub fn signature_tag(digest: &str) -> String {
    format!("{}.minisig", digest.replacen(':', "-", 1))
}

fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", crate::digest::sha256_hex(bytes))
}

fn encode(manifest: &Manifest) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(manifest)
        .map_err(|err| Error::Protocol(format!("could not encode a manifest: {err}")))
}

/// The one `application/wasm` layer of a wasm artifact, or why `manifest` is not one.
fn wasm_layer(reference: &Reference, manifest: &Manifest) -> Result<Descriptor, Error> {
    let not_wasm = |reason: String| Error::NotWasm {
        reference: reference.to_string(),
        reason,
    };
    if manifest.config.media_type != WASM_CONFIG_MEDIA_TYPE {
        return Err(not_wasm(format!(
            "its config is {}, not {WASM_CONFIG_MEDIA_TYPE}",
            manifest.config.media_type
        )));
    }
    match manifest.layers.as_slice() {
        [layer] if layer.media_type == WASM_LAYER_MEDIA_TYPE => {
            reference::check_digest(&layer.digest).map_err(not_wasm)?;
            if layer.size > MAX_COMPONENT_BYTES {
                return Err(Error::TooLarge {
                    what: format!("the component of {reference} ({} bytes)", layer.size),
                    limit: MAX_COMPONENT_BYTES,
                });
            }
            Ok(layer.clone())
        }
        [layer] => Err(not_wasm(format!(
            "its layer is {}, not {WASM_LAYER_MEDIA_TYPE}",
            layer.media_type
        ))),
        layers => Err(not_wasm(format!(
            "it has {} layers, not exactly one {WASM_LAYER_MEDIA_TYPE} layer",
            layers.len()
        ))),
    }
}

/// One repository of one registry, with the authorization it has earned so far.
struct Registry {
    base: Url,
    host: String,
    repository: String,
    credentials: Credentials,
    insecure: bool,
    /// `pull` or `pull,push`: the actions asked of a token service.
    actions: &'static str,
    authorization: Option<String>,
}

impl Registry {
    fn new(
        reference: &Reference,
        credentials: Credentials,
        insecure: bool,
        actions: &'static str,
    ) -> Result<Registry, Error> {
        let base = reference.base_url(insecure)?;
        check_transport(&base, insecure)?;
        Ok(Registry {
            base,
            host: reference.host.clone(),
            repository: reference.repository.clone(),
            credentials,
            insecure,
            actions,
            authorization: None,
        })
    }

    fn url(&self, path: &str) -> Result<Url, Error> {
        self.base
            .join(&format!("v2/{}/{path}", self.repository))
            .map_err(|err| Error::Protocol(format!("could not form a registry URL: {err}")))
    }

    /// Sends `request`, answering one authentication challenge. The authorization goes only to
    /// the registry's own origin.
    async fn send(&mut self, what: &str, request: &Request) -> Result<Response, Error> {
        let response = http::send(
            request,
            self.authorization.as_deref(),
            &self.base,
            self.insecure,
        )
        .await?;
        if response.status != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let challenge = response
            .header(WWW_AUTHENTICATE)
            .and_then(auth::parse_challenge)
            .ok_or_else(|| Error::Unauthorized {
                host: self.host.clone(),
                reason: format!("{what} got 401 without a Basic or Bearer challenge"),
            })?;
        self.authorize(challenge).await?;
        let response = http::send(
            request,
            self.authorization.as_deref(),
            &self.base,
            self.insecure,
        )
        .await?;
        if response.status == StatusCode::UNAUTHORIZED {
            return Err(Error::Unauthorized {
                host: self.host.clone(),
                reason: format!("{what} was refused with the credentials given"),
            });
        }
        Ok(response)
    }

    /// Earns the authorization `challenge` asks for.
    async fn authorize(&mut self, challenge: Challenge) -> Result<(), Error> {
        let login = self.credentials.resolve(&self.host)?;
        match challenge {
            Challenge::Basic => {
                let login = login.ok_or_else(|| Error::Unauthorized {
                    host: self.host.clone(),
                    reason: "it asks for a username and password and none were given".into(),
                })?;
                self.authorization = Some(login.basic());
            }
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let token = self.token(&realm, service, scope, login.as_ref()).await?;
                self.authorization = Some(format!("Bearer {token}"));
            }
        }
        Ok(())
    }

    /// A token from the token service at `realm`, for this repository's actions. The login goes
    /// to the realm the registry named, as Docker sends it; over HTTPS unless it is loopback or
    /// `--insecure`.
    async fn token(
        &self,
        realm: &str,
        service: Option<String>,
        scope: Option<String>,
        login: Option<&Login>,
    ) -> Result<String, Error> {
        let mut url = Url::parse(realm).map_err(|err| {
            Error::Protocol(format!("the token service {realm:?} is not a URL: {err}"))
        })?;
        check_transport(&url, self.insecure)?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = &service {
                query.append_pair("service", service);
            }
            let scope =
                scope.unwrap_or_else(|| format!("repository:{}:{}", self.repository, self.actions));
            query.append_pair("scope", &scope);
        }
        let basic = login.map(Login::basic);
        let response = http::send(
            &Request::new(Method::GET, url.clone()),
            basic.as_deref(),
            &url,
            self.insecure,
        )
        .await?;
        if response.status == StatusCode::UNAUTHORIZED || response.status == StatusCode::FORBIDDEN {
            return Err(Error::Unauthorized {
                host: self.host.clone(),
                reason: format!(
                    "its token service at {} answered {}",
                    url.origin().ascii_serialization(),
                    response.status
                ),
            });
        }
        let response = expect_success(response, "a token request").await?;
        #[derive(Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let body = response
            .read_capped(MAX_TOKEN_BYTES, "the token service's answer")
            .await?;
        let token: Token = serde_json::from_slice(&body).map_err(|err| {
            Error::Protocol(format!("the token service's answer is not a token: {err}"))
        })?;
        token
            .token
            .or(token.access_token)
            .ok_or_else(|| Error::Protocol("the token service's answer holds no token".into()))
    }

    /// The manifest `reference` names, as bytes (for its digest) and parsed.
    async fn manifest(&mut self, reference: &Reference) -> Result<(Vec<u8>, Manifest), Error> {
        match self.manifest_if_any(reference).await? {
            Some(found) => Ok(found),
            None => Err(Error::NotFound {
                reference: reference.to_string(),
            }),
        }
    }

    async fn manifest_if_any(
        &mut self,
        reference: &Reference,
    ) -> Result<Option<(Vec<u8>, Manifest)>, Error> {
        let url = self.url(&format!("manifests/{}", target(reference)))?;
        let what = format!("reading the manifest of {reference}");
        let request = Request::new(Method::GET, url).header(ACCEPT, MANIFEST_MEDIA_TYPE);
        let response = self.send(&what, &request).await?;
        if response.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = expect_success(response, &what).await?;
        let content_type = response.header(CONTENT_TYPE).unwrap_or_default().to_owned();
        let bytes = response
            .read_capped(MAX_MANIFEST_BYTES, &format!("the manifest of {reference}"))
            .await?;
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|err| Error::NotWasm {
            reference: reference.to_string(),
            reason: format!("its manifest ({content_type}) is not an OCI image manifest: {err}"),
        })?;
        let media_type = manifest.media_type.as_deref().unwrap_or(&content_type);
        if manifest.schema_version != 2 || media_type != MANIFEST_MEDIA_TYPE {
            return Err(Error::NotWasm {
                reference: reference.to_string(),
                reason: format!("its manifest is {media_type}, not {MANIFEST_MEDIA_TYPE}"),
            });
        }
        Ok(Some((bytes, manifest)))
    }

    /// The blob `descriptor` names, hashed while it is read and refused unless its digest and
    /// size match; never more than `limit` bytes.
    async fn blob(
        &mut self,
        descriptor: &Descriptor,
        limit: u64,
        what: &str,
    ) -> Result<Vec<u8>, Error> {
        let url = self.url(&format!("blobs/{}", descriptor.digest))?;
        let reading = format!("reading {what}");
        let response = self.send(&reading, &Request::new(Method::GET, url)).await?;
        let response = expect_success(response, &reading).await?;
        let bytes = response
            .read_capped(descriptor.size.min(limit), what)
            .await
            .map_err(|err| match err {
                // More bytes than the manifest states is a size mismatch, not a size limit.
                Error::TooLarge { .. } if descriptor.size <= limit => Error::SizeMismatch {
                    what: what.to_owned(),
                    expected: descriptor.size,
                    actual: descriptor.size + 1,
                },
                other => other,
            })?;
        if bytes.len() as u64 != descriptor.size {
            return Err(Error::SizeMismatch {
                what: what.to_owned(),
                expected: descriptor.size,
                actual: bytes.len() as u64,
            });
        }
        let actual = digest_of(&bytes);
        if actual != descriptor.digest {
            return Err(Error::DigestMismatch {
                what: what.to_owned(),
                expected: descriptor.digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// The signature stored under [`signature_tag`] for the manifest `digest`, if any.
    async fn signature(
        &mut self,
        reference: &Reference,
        digest: &str,
    ) -> Result<Option<Vec<u8>>, Error> {
        let tagged = reference.with_tag(&signature_tag(digest));
        let Some((_, manifest)) = self.manifest_if_any(&tagged).await? else {
            return Ok(None);
        };
        let layer = match manifest.layers.as_slice() {
            [layer] => layer,
            layers => layers
                .iter()
                .find(|layer| layer.media_type == SIGNATURE_MEDIA_TYPE)
                .ok_or_else(|| Error::NotWasm {
                    reference: tagged.to_string(),
                    reason: format!(
                        "this signature artifact has {} layers and none is {SIGNATURE_MEDIA_TYPE}",
                        layers.len()
                    ),
                })?,
        };
        reference::check_digest(&layer.digest).map_err(|reason| Error::NotWasm {
            reference: tagged.to_string(),
            reason,
        })?;
        if layer.size > MAX_SIGNATURE_BYTES {
            return Err(Error::TooLarge {
                what: format!("the signature in {tagged}"),
                limit: MAX_SIGNATURE_BYTES,
            });
        }
        let layer = layer.clone();
        self.blob(
            &layer,
            MAX_SIGNATURE_BYTES,
            &format!("the signature in {tagged}"),
        )
        .await
        .map(Some)
    }

    /// Uploads `bytes` as a blob unless the repository has it already: a monolithic upload
    /// (POST for a session, PUT with the digest), which every registry accepts.
    async fn upload(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let digest = digest_of(bytes);
        let url = self.url(&format!("blobs/{digest}"))?;
        let what = format!("checking for blob {digest}");
        let response = self.send(&what, &Request::new(Method::HEAD, url)).await?;
        if response.status.is_success() {
            return Ok(());
        }
        let url = self.url("blobs/uploads/")?;
        let what = format!("starting the upload of blob {digest}");
        let response = self
            .send(&what, &Request::new(Method::POST, url.clone()))
            .await?;
        let response = expect_success(response, &what).await?;
        let location = response
            .header(LOCATION)
            .ok_or_else(|| Error::Protocol(format!("{what}: no Location for the upload")))?;
        let mut upload = url.join(location).map_err(|err| {
            Error::Protocol(format!("{what}: the upload Location is not a URL: {err}"))
        })?;
        upload.query_pairs_mut().append_pair("digest", &digest);
        let what = format!("uploading blob {digest}");
        let request = Request::new(Method::PUT, upload).body(
            "application/octet-stream",
            bytes::Bytes::copy_from_slice(bytes),
        );
        let response = self.send(&what, &request).await?;
        expect_success(response, &what).await?;
        Ok(())
    }

    async fn put_manifest(&mut self, reference: &Reference, bytes: &[u8]) -> Result<(), Error> {
        let url = self.url(&format!("manifests/{}", target(reference)))?;
        let what = format!("publishing the manifest of {reference}");
        let request = Request::new(Method::PUT, url)
            .body(MANIFEST_MEDIA_TYPE, bytes::Bytes::copy_from_slice(bytes));
        let response = self.send(&what, &request).await?;
        expect_success(response, &what).await?;
        Ok(())
    }
}

/// The tag or digest of a manifest URL.
fn target(reference: &Reference) -> &str {
    match &reference.target {
        Target::Tag(tag) => tag,
        Target::Digest(digest) => digest,
    }
}

/// `response` when it succeeded; otherwise an error with the registry's own message (the
/// distribution spec's `{"errors":[{"code","message"}]}`), cut short.
async fn expect_success(response: Response, what: &str) -> Result<Response, Error> {
    if response.status.is_success() {
        return Ok(response);
    }
    let status = response.status;
    let body = response
        .read_capped(64 * 1024, "an error answer")
        .await
        .unwrap_or_default();
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(Deserialize)]
    struct ErrorEntry {
        code: Option<String>,
        message: Option<String>,
    }
    let message = match serde_json::from_slice::<Errors>(&body) {
        Ok(errors) => errors
            .errors
            .iter()
            .map(|entry| {
                format!(
                    "{} {}",
                    entry.code.as_deref().unwrap_or(""),
                    entry.message.as_deref().unwrap_or("")
                )
                .trim()
                .to_owned()
            })
            .collect::<Vec<_>>()
            .join("; "),
        Err(_) => String::from_utf8_lossy(&body).chars().take(300).collect(),
    };
    Err(Error::Status {
        what: what.to_owned(),
        status,
        message: if message.is_empty() {
            "no details".into()
        } else {
            message
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(config: &str, layers: &[&str]) -> Manifest {
        let descriptor = |media_type: &str| Descriptor::of(media_type, b"x");
        Manifest {
            schema_version: 2,
            media_type: Some(MANIFEST_MEDIA_TYPE.into()),
            artifact_type: None,
            config: descriptor(config),
            layers: layers
                .iter()
                .map(|media_type| descriptor(media_type))
                .collect(),
            subject: None,
        }
    }

    #[test]
    fn only_one_wasm_layer_under_a_wasm_config_is_a_plugin() {
        let reference = Reference::parse("oci://127.0.0.1:5000/p:1").expect("valid");
        wasm_layer(
            &reference,
            &manifest(WASM_CONFIG_MEDIA_TYPE, &[WASM_LAYER_MEDIA_TYPE]),
        )
        .expect("a plugin");
        for (config, layers, reason) in [
            (
                "application/vnd.oci.image.config.v1+json",
                vec![WASM_LAYER_MEDIA_TYPE],
                "its config is application/vnd.oci.image.config.v1+json",
            ),
            (
                WASM_CONFIG_MEDIA_TYPE,
                vec![WASM_LAYER_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE],
                "2 layers",
            ),
            (
                WASM_CONFIG_MEDIA_TYPE,
                vec!["application/vnd.oci.image.layer.v1.tar+gzip"],
                "its layer is application/vnd.oci.image.layer.v1.tar+gzip",
            ),
        ] {
            let err = wasm_layer(&reference, &manifest(config, &layers))
                .expect_err(reason)
                .to_string();
            assert!(err.contains(reason), "{err}");
        }
        let mut huge = manifest(WASM_CONFIG_MEDIA_TYPE, &[WASM_LAYER_MEDIA_TYPE]);
        huge.layers[0].size = MAX_COMPONENT_BYTES + 1;
        assert!(matches!(
            wasm_layer(&reference, &huge),
            Err(Error::TooLarge { .. })
        ));
    }

    /// A registry that asks for a Bearer token, and its token service, on one loopback port:
    /// just enough HTTP to answer the requests a pull makes, recording each request's line and
    /// `Authorization` header.
    async fn bearer_registry(
        component: &'static [u8],
    ) -> (
        String,
        std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let layer = Descriptor::of(WASM_LAYER_MEDIA_TYPE, component);
        let manifest = serde_json::to_vec(&Manifest {
            schema_version: 2,
            media_type: Some(MANIFEST_MEDIA_TYPE.into()),
            artifact_type: None,
            config: Descriptor::of(WASM_CONFIG_MEDIA_TYPE, b"{}"),
            layers: vec![layer.clone()],
            subject: None,
        })
        .expect("manifest");
        let recorded = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n")
                    && stream.read(&mut byte).await.is_ok_and(|n| n == 1)
                {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let line = head.lines().next().unwrap_or_default().to_owned();
                let authorization = head
                    .lines()
                    .find_map(|header| header.strip_prefix("authorization: "))
                    .unwrap_or_default()
                    .to_owned();
                recorded
                    .lock()
                    .expect("lock")
                    .push((line.clone(), authorization.clone()));
                let (status, extra, body): (&str, String, Vec<u8>) = if line
                    .starts_with("GET /token?")
                {
                    ("200 OK", String::new(), br#"{"token":"tok-123"}"#.to_vec())
                } else if authorization != "Bearer tok-123" {
                    (
                        "401 Unauthorized",
                        format!(
                            "www-authenticate: Bearer realm=\"http://{address}/token\",service=\"test\",scope=\"repository:team/p:pull\"\r\n"
                        ),
                        Vec::new(),
                    )
                } else if line.starts_with("GET /v2/team/p/manifests/v1 ") {
                    (
                        "200 OK",
                        format!("content-type: {MANIFEST_MEDIA_TYPE}\r\n"),
                        manifest.clone(),
                    )
                } else if line.starts_with(&format!("GET /v2/team/p/blobs/{} ", layer.digest)) {
                    ("200 OK", String::new(), component.to_vec())
                } else {
                    ("404 Not Found", String::new(), Vec::new())
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.write_all(&body).await;
            }
        });
        (format!("oci://{address}/team/p:v1"), seen)
    }

    #[tokio::test]
    async fn a_bearer_challenge_is_answered_with_a_token_earned_by_the_login() {
        let (reference, seen) = bearer_registry(b"component bytes").await;
        let credentials = Credentials::Login {
            username: "aladdin".into(),
            password: "open sesame".into(),
        };
        let pulled = pull(&reference, &credentials, false).await.expect("pulled");
        assert_eq!(pulled.bytes, b"component bytes");
        assert!(pulled.signature.is_none());
        let seen = seen.lock().expect("lock").clone();
        let basic = "Basic YWxhZGRpbjpvcGVuIHNlc2FtZQ==";
        for (line, authorization) in &seen {
            if line.starts_with("GET /token?") {
                // The login goes to the token service, with the repository's scope.
                assert_eq!(authorization, basic, "{line}");
                assert!(
                    line.contains("scope=repository%3Ateam%2Fp%3Apull"),
                    "{line}"
                );
                assert!(line.contains("service=test"), "{line}");
            } else {
                // The registry itself only ever sees the token.
                assert_ne!(authorization, basic, "{line}");
            }
        }
        assert!(
            seen.iter()
                .any(|(line, authorization)| line.contains("/blobs/sha256:")
                    && authorization == "Bearer tok-123"),
            "{seen:?}"
        );
    }

    #[test]
    fn the_signature_tag_follows_the_manifest_digest() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            signature_tag(&digest),
            format!("sha256-{}.minisig", "ab".repeat(32))
        );
    }
}
