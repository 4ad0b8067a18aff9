//! Which provider API a plugin may call and with what credential: shared by responders
//! (write-back) and sources (hydration), so both reach the same API the same way.
//!
//! The token is the `token` of the instance's `secrets.yml` section. The host adds it to
//! requests to the API's origin and nowhere else; the plugin never sees it.

use crate::config::secrets::{Secret, Secrets};
use crate::config::server::TokenAuth;
use crate::plugin::host::http::{Credential, DEFAULT_MAX_RESPONSE_BYTES, HttpGrant, Origin};

/// What an instance asked for: its names, and what the operator configured.
pub struct ApiRequest<'a> {
    /// The plugin, for its defaults (`github` reads `GITHUB_API_URL`, `gitlab` sends
    /// `PRIVATE-TOKEN`).
    pub plugin: &'a str,
    /// The `secrets.yml` section holding the token.
    pub section: &'a str,
    /// Where the settings live in `config.yml`, for messages (`responders.github`).
    pub field: &'a str,
    pub api_url: Option<&'a str>,
    /// The first origin the plugin declared, used when nothing else is configured.
    pub plugin_default: Option<&'a str>,
    pub auth: Option<TokenAuth>,
    pub allow_private_network: bool,
    /// What the token is for, to end the message asking for it (`to write results back`).
    pub purpose: &'a str,
}

/// The API a plugin may call.
pub struct ApiAccess {
    /// The API's base URL, passed to the plugin as its `api_url` setting.
    pub api_url: String,
    pub grant: HttpGrant,
}

/// The API and grant for `request`, or what the operator has to configure.
pub fn api_access(request: &ApiRequest<'_>, secrets: &Secrets) -> Result<ApiAccess, String> {
    let from_env = (request.plugin == "github")
        .then(|| std::env::var("GITHUB_API_URL").ok())
        .flatten()
        .filter(|url| !url.is_empty());
    let field = request.field;
    let api_url = request
        .api_url
        .map(str::to_owned)
        .or(from_env)
        .or_else(|| request.plugin_default.map(str::to_owned))
        .ok_or_else(|| format!("set {field}.api_url in config.yml"))?;
    let origin = Origin::parse(&api_url).map_err(|reason| format!("{field}.api_url: {reason}"))?;
    let token = secrets
        .for_source(request.section)
        .remove("token")
        .filter(|token| !token.expose().trim().is_empty())
        .ok_or_else(|| {
            format!(
                "no token: set {}.token in secrets.yml {}",
                request.section, request.purpose
            )
        })?;
    let auth = request.auth.unwrap_or(if request.plugin == "gitlab" {
        TokenAuth::PrivateToken
    } else {
        TokenAuth::Bearer
    });
    let (header, value) = match auth {
        TokenAuth::Bearer => (
            http::header::AUTHORIZATION,
            format!("Bearer {}", token.expose()),
        ),
        TokenAuth::PrivateToken => (
            http::HeaderName::from_static("private-token"),
            token.expose().to_owned(),
        ),
    };
    Ok(ApiAccess {
        api_url,
        grant: HttpGrant {
            origins: vec![origin.clone()],
            credentials: vec![Credential {
                origin,
                header,
                value: Secret::new(value),
            }],
            allow_private: request.allow_private_network,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        },
    })
}
