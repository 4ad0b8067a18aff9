//! Resolving a host once, checking every address, and connecting to nothing else.
//!
//! A check that resolves a name and a connection that resolves it again can get two different
//! answers: a name whose DNS answers 1.2.3.4 to the check and 169.254.169.254 to the connection
//! (DNS rebinding) walks past the check. So the answer that is checked is the answer that is
//! used: [`Resolver::resolve`] returns the checked socket addresses for the caller to connect
//! to, and [`CheckedDns`] is a `reqwest` resolver that checks each answer it hands to the
//! connector. One bad address refuses the whole name, rather than being skipped, since a name
//! that mixes a public address with a metadata one is an attack, not a misconfiguration.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use super::address::{self, Reach, Refusal};

/// The answer of a lookup, still unchecked.
pub type LookupFuture = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>>;

/// Where names are looked up: the system resolver in production, a scripted one in tests that
/// need a name to answer differently from one lookup to the next.
pub trait Lookup: Send + Sync {
    fn lookup(&self, host: &str, port: u16) -> LookupFuture;
}

/// The system's resolver (`getaddrinfo`, through tokio).
struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: &str, port: u16) -> LookupFuture {
        let host = host.to_owned();
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), port))
                .await?
                .collect())
        })
    }
}

/// Resolves names and checks every address they resolve to.
#[derive(Clone)]
pub struct Resolver {
    lookup: Arc<dyn Lookup>,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Resolver")
    }
}

impl Default for Resolver {
    fn default() -> Resolver {
        Resolver::system()
    }
}

/// Why a host cannot be connected to.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("`{host}` could not be resolved: {source}")]
    Lookup {
        host: String,
        #[source]
        source: io::Error,
    },
    #[error("`{host}` resolved to no address")]
    NoAddress { host: String },
    /// The host is, or resolves to, an address the caller may not reach.
    #[error("{}", refused_text(host, refusal))]
    Refused { host: String, refusal: Refusal },
}

fn refused_text(host: &str, refusal: &Refusal) -> String {
    if literal(host) == Some(refusal.address) {
        refusal.to_string()
    } else {
        format!(
            "`{host}` resolves to {}, {}",
            refusal.address, refusal.reason
        )
    }
}

impl ResolveError {
    /// The refusal, when the host was found but may not be reached.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            ResolveError::Refused { refusal, .. } => Some(refusal),
            _ => None,
        }
    }
}

/// `host` as an IP address, when it is written as one (IPv6 with or without brackets).
pub fn literal(host: &str) -> Option<IpAddr> {
    host.strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(host)
        .parse()
        .ok()
}

/// Refuses `url` when its host is an IP address that `reach` does not allow. A host name passes
/// (the resolver checks it when connecting: clients do not resolve literals, so those are
/// checked here), and so does a URL that does not parse. The URL parser reads the host as a
/// connection would, so odd spellings (`http://2852039166` is 169.254.169.254) are caught too.
pub fn check_url_literal(url: &str, reach: Reach) -> Result<(), Refusal> {
    let Some(ip) = reqwest::Url::parse(url)
        .ok()
        .and_then(|url| url.host_str().and_then(literal))
    else {
        return Ok(());
    };
    address::check(ip, reach)
}

impl Resolver {
    /// The system's resolver.
    pub fn system() -> Resolver {
        Resolver::new(SystemLookup)
    }

    /// A resolver asking `lookup`.
    pub fn new(lookup: impl Lookup + 'static) -> Resolver {
        Resolver {
            lookup: Arc::new(lookup),
        }
    }

    /// Every address of `host` on `port`, each allowed for `reach`; an IP literal is checked
    /// as it is. Connect to these and to nothing else.
    pub async fn resolve(
        &self,
        host: &str,
        port: u16,
        reach: Reach,
    ) -> Result<Vec<SocketAddr>, ResolveError> {
        let addresses = match literal(host) {
            Some(ip) => vec![SocketAddr::new(ip, port)],
            None => {
                self.lookup
                    .lookup(host, port)
                    .await
                    .map_err(|source| ResolveError::Lookup {
                        host: host.to_owned(),
                        source,
                    })?
            }
        };
        if addresses.is_empty() {
            return Err(ResolveError::NoAddress {
                host: host.to_owned(),
            });
        }
        for socket in &addresses {
            address::check(socket.ip(), reach).map_err(|refusal| ResolveError::Refused {
                host: host.to_owned(),
                refusal,
            })?;
        }
        Ok(addresses)
    }

    /// This resolver as `reqwest`'s, allowing `reach`. `reqwest` does not resolve IP literals,
    /// so a client using it must check a literal host itself (with [`address::check`]).
    pub fn for_reqwest(&self, reach: Reach) -> CheckedDns {
        CheckedDns {
            resolver: self.clone(),
            reach,
        }
    }
}

/// A `reqwest` resolver that hands the connector checked addresses only.
#[derive(Clone, Debug)]
pub struct CheckedDns {
    resolver: Resolver,
    reach: Reach,
}

impl reqwest::dns::Resolve for CheckedDns {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let checked = self.clone();
        Box::pin(async move {
            // Port 0: the connector puts the URL's port on every address.
            let addresses = checked
                .resolver
                .resolve(name.as_str(), 0, checked.reach)
                .await?;
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A [`Lookup`] that answers from a script, one answer per lookup, repeating the last; for
/// tests that need a name to change its answer between lookups, as a rebinding attacker's does.
#[cfg(test)]
pub(crate) struct Scripted {
    answers: std::sync::Mutex<std::collections::VecDeque<Vec<IpAddr>>>,
    /// How many lookups were made.
    pub(crate) count: Arc<std::sync::atomic::AtomicUsize>,
}

#[cfg(test)]
impl Scripted {
    pub(crate) fn new(answers: Vec<Vec<IpAddr>>) -> Scripted {
        Scripted {
            answers: std::sync::Mutex::new(answers.into()),
            count: Arc::default(),
        }
    }
}

#[cfg(test)]
impl Lookup for Scripted {
    fn lookup(&self, _host: &str, port: u16) -> LookupFuture {
        self.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut answers = self.answers.lock().expect("script");
        let answer = if answers.len() > 1 {
            answers.pop_front().unwrap_or_default()
        } else {
            answers.front().cloned().unwrap_or_default()
        };
        let addresses = answer
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect();
        Box::pin(async move { Ok(addresses) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|ip| ip.parse().expect(ip)).collect()
    }

    #[tokio::test]
    async fn one_bad_address_refuses_the_whole_name() {
        let resolver = Resolver::new(Scripted::new(vec![ips(&["10.0.0.1", "169.254.169.254"])]));
        let err = resolver
            .resolve("mixed.example", 80, Reach::Internal)
            .await
            .expect_err("refused");
        assert_eq!(
            err.to_string(),
            "`mixed.example` resolves to 169.254.169.254, a cloud metadata address, which mecha never connects to"
        );
        assert!(err.refusal().is_some());
    }

    #[tokio::test]
    async fn literals_are_checked_without_a_lookup() {
        let script = Scripted::new(vec![ips(&["1.1.1.1"])]);
        let count = script.count.clone();
        let resolver = Resolver::new(script);
        let err = resolver
            .resolve("[fd00:ec2::254]", 80, Reach::Internal)
            .await
            .expect_err("refused");
        assert_eq!(
            err.to_string(),
            "fd00:ec2::254 is a cloud metadata address, which mecha never connects to"
        );
        let ok = resolver
            .resolve("127.0.0.1", 8080, Reach::Internal)
            .await
            .expect("loopback");
        assert_eq!(ok, [SocketAddr::from(([127, 0, 0, 1], 8080))]);
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn the_checked_answer_is_the_one_returned() {
        let resolver = Resolver::new(Scripted::new(vec![
            ips(&["127.0.0.1"]),
            ips(&["169.254.169.254"]),
        ]));
        let first = resolver
            .resolve("rebind.example", 9, Reach::Internal)
            .await
            .expect("first answer is fine");
        assert_eq!(first, [SocketAddr::from(([127, 0, 0, 1], 9))]);
        assert!(
            resolver
                .resolve("rebind.example", 9, Reach::Internal)
                .await
                .is_err(),
            "the second answer is checked too"
        );
    }

    #[tokio::test]
    async fn the_system_resolver_finds_localhost() {
        let found = Resolver::system()
            .resolve("localhost", 1, Reach::Internal)
            .await
            .expect("localhost");
        assert!(found.iter().all(|socket| socket.ip().is_loopback()));
        assert!(
            Resolver::system()
                .resolve("localhost", 1, Reach::Public)
                .await
                .is_err()
        );
    }
}
