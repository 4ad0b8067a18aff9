//! The HTTP client every CLI command uses to reach a daemon, and the rule it keeps: what a
//! command sends goes to the daemon's origin and nowhere else.
//!
//! Commands send secrets in headers that reqwest does not know to be secret (`X-API-Key`,
//! `X-Gitlab-Token`, `X-Telegram-Bot-Api-Secret-Token`), and reqwest's default redirect policy
//! would carry them to whatever host a `Location` names. A daemon never redirects, so a redirect
//! means something else answers at that address (a proxy, another service, an attacker on a
//! shared host). A redirect within the same origin (scheme, host and port) is still followed, up
//! to [`MAX_REDIRECTS`]; one to another origin is refused, and the error says where it pointed.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! let url = "http://127.0.0.1:21212/events/abc/replay";
//! let request = mecha::cli::http_client::client()?.post(url);
//! let response = mecha::cli::http_client::send(request, url).await?;
//! # Ok(())
//! # }
//! ```

use anyhow::Context;
use reqwest::redirect::{Attempt, Policy};

/// 5 redirects within one origin: a daemon sends none, so a handful covers a proxy in front of it
/// rewriting a path, and a loop ends quickly.
pub const MAX_REDIRECTS: usize = 5;

/// A redirect that pointed to another origin than the request's, which the client refused.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "{from} answered with a redirect to {to}, another origin; mecha does not follow it, so the \
     request's credentials stay with the address it was sent to. Point --addr (or addr in \
     config.yml) at the daemon itself"
)]
pub struct CrossOriginRedirect {
    /// The origin the request was sent to, `scheme://host:port`.
    pub from: String,
    /// The origin the redirect named (never its path or credentials).
    pub to: String,
}

/// Too many redirects within one origin.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "{origin} redirected more than {MAX_REDIRECTS} times; check that --addr (or addr in \
     config.yml) is the daemon's address"
)]
pub struct TooManyRedirects {
    pub origin: String,
}

/// The client for talking to a daemon: follows redirects only within the origin it was sent to,
/// and ignores proxies from the environment.
pub fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(Policy::custom(same_origin_only))
        // A proxy from `HTTP_PROXY` would be another origin that sees every credential.
        .no_proxy()
        .build()
        .context("could not set up an HTTP client")
}

/// Sends `request` (built on [`client`]) to `url`. A refused redirect is reported as such; any
/// other failure asks whether the daemon is running.
pub async fn send(
    request: reqwest::RequestBuilder,
    url: &str,
) -> anyhow::Result<reqwest::Response> {
    request.send().await.map_err(|error| {
        if let Some(refused) = cause::<CrossOriginRedirect>(&error) {
            anyhow::Error::new(refused.clone()).context(format!("posting to {url}"))
        } else if let Some(looped) = cause::<TooManyRedirects>(&error) {
            anyhow::Error::new(looped.clone()).context(format!("posting to {url}"))
        } else {
            anyhow::Error::new(error)
                .context(format!("posting to {url}; is `mecha serve` running?"))
        }
    })
}

/// The redirect policy: follow within the first request's origin, refuse anything else.
fn same_origin_only(attempt: Attempt<'_>) -> reqwest::redirect::Action {
    let Some(first) = attempt.previous().first() else {
        return attempt.stop();
    };
    let from = first.origin().ascii_serialization();
    let to = attempt.url().origin().ascii_serialization();
    if first.origin() != attempt.url().origin() {
        attempt.error(CrossOriginRedirect { from, to })
    } else if attempt.previous().len() > MAX_REDIRECTS {
        attempt.error(TooManyRedirects { origin: from })
    } else {
        attempt.follow()
    }
}

/// The first error of type `E` in `error`'s chain of causes.
fn cause<'a, E: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<E>() {
            return Some(found);
        }
        current = error.source();
    }
    None
}
