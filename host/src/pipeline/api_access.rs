//! Which provider API a plugin may call and with what credential: shared by responders
//! (write-back) and sources (hydration), so both reach the same API the same way.
//!
//! The token is the `token` of the instance's `secrets.yml` section. The host adds it to
//! requests to the API's origin and nowhere else, as a header or (Telegram) in the path; the
//! plugin never sees it.

use crate::config::secrets::{Secret, Secrets};
use crate::config::server::TokenAuth;
use crate::plugin::host::http::{
    Credential, DEFAULT_MAX_RESPONSE_BYTES, HttpGrant, Origin, Placement,
};

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
    let auth = request.auth.unwrap_or(match request.plugin {
        "gitlab" => TokenAuth::PrivateToken,
        "telegram" => TokenAuth::BotPath,
        _ => TokenAuth::Bearer,
    });
    let placement = match auth {
        TokenAuth::Bearer => Placement::Header {
            name: http::header::AUTHORIZATION,
            value: Secret::new(format!("Bearer {}", token.expose())),
        },
        TokenAuth::PrivateToken => Placement::Header {
            name: http::HeaderName::from_static("private-token"),
            value: token,
        },
        TokenAuth::BotPath => Placement::BotPath {
            base: url_path(&api_url).to_owned(),
            token,
        },
    };
    Ok(ApiAccess {
        api_url,
        grant: HttpGrant {
            origins: vec![origin.clone()],
            credentials: vec![Credential { origin, placement }],
            allow_private: request.allow_private_network,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        },
    })
}

/// The path of `url` without its trailing `/`: `/api/v4` of `https://gitlab.test/api/v4/`,
/// empty for an origin alone.
fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    rest.find('/')
        .map_or("", |at| &rest[at..])
        .trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bot_path_base_is_the_api_urls_path() {
        assert_eq!(url_path("https://api.telegram.org"), "");
        assert_eq!(url_path("https://api.telegram.org/"), "");
        assert_eq!(url_path("http://127.0.0.1:9/tg/?x=1"), "/tg");
    }

    #[test]
    fn telegram_tokens_go_into_the_path_and_others_into_headers() {
        let mut secrets = Secrets::default();
        for name in ["telegram", "gitlab", "slack"] {
            secrets.set_source_secret(name, "token", Secret::new("123:abc"));
        }
        let access = |plugin: &str| {
            let request = ApiRequest {
                plugin,
                section: plugin,
                field: "responders.x",
                api_url: Some("http://127.0.0.1:9/api"),
                plugin_default: None,
                auth: None,
                allow_private_network: false,
                purpose: "to test",
            };
            match api_access(&request, &secrets) {
                Ok(access) => access.grant.credentials[0].placement.clone(),
                Err(reason) => panic!("{reason}"),
            }
        };
        match access("telegram") {
            Placement::BotPath { base, token } => {
                assert_eq!((base.as_str(), token.expose()), ("/api", "123:abc"))
            }
            Placement::Header { .. } => panic!("telegram's token goes in the path"),
        }
        for (plugin, header, value) in [
            ("gitlab", "private-token", "123:abc"),
            ("slack", "authorization", "Bearer 123:abc"),
        ] {
            match access(plugin) {
                Placement::Header { name, value: sent } => {
                    assert_eq!((name.as_str(), sent.expose()), (header, value))
                }
                Placement::BotPath { .. } => panic!("{plugin} sends a header"),
            }
        }
    }
}
