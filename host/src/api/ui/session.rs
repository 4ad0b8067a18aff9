//! Who may see the dashboard: holders of a session, begun with the daemon's API key (the login
//! form) or with a one-time link that `mecha dashboard` asks the daemon for.
//!
//! A session is a random token in an `HttpOnly`, `SameSite=Strict` cookie: scripts cannot read
//! it, and no other site's page can make the browser send it, so the dashboard's forms cannot
//! be posted from elsewhere. Sessions and links live in the daemon's memory only; a restart
//! signs everyone out. The API key itself is never put in a cookie or a page.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;

/// The cookie's name.
pub const COOKIE: &str = "mecha_session";

/// 12 hours: a working day, after which the key is asked for again.
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// 2 minutes to open a link `mecha dashboard` printed; it works once.
const LINK_LIFETIME: Duration = Duration::from_secs(120);

/// Open sessions and unused links, by token.
#[derive(Default)]
pub struct Sessions {
    sessions: Mutex<HashMap<String, Instant>>,
    links: Mutex<HashMap<String, Instant>>,
}

impl Sessions {
    /// A new session if `presented` is the API key `key`.
    pub fn sign_in(&self, presented: &str, key: &str) -> Option<String> {
        if !bool::from(presented.as_bytes().ct_eq(key.as_bytes())) {
            return None;
        }
        self.open()
    }

    /// A one-time link's token.
    pub fn link(&self) -> Option<String> {
        let token = token()?;
        let mut links = lock(&self.links);
        links.retain(|_, expires| *expires > Instant::now());
        links.insert(token.clone(), Instant::now() + LINK_LIFETIME);
        Some(token)
    }

    /// A new session for the link `token`, which is used up.
    pub fn redeem(&self, token: &str) -> Option<String> {
        let expires = lock(&self.links).remove(token)?;
        (expires > Instant::now()).then(|| self.open())?
    }

    /// Whether `token` is an open session.
    pub fn is_open(&self, token: &str) -> bool {
        lock(&self.sessions)
            .get(token)
            .is_some_and(|expires| *expires > Instant::now())
    }

    pub fn close(&self, token: &str) {
        lock(&self.sessions).remove(token);
    }

    fn open(&self) -> Option<String> {
        let token = token()?;
        let mut sessions = lock(&self.sessions);
        sessions.retain(|_, expires| *expires > Instant::now());
        sessions.insert(token.clone(), Instant::now() + SESSION_LIFETIME);
        Some(token)
    }
}

/// The `Set-Cookie` value that gives the browser session `token`.
pub fn cookie(token: &str) -> String {
    format!(
        "{COOKIE}={token}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_LIFETIME.as_secs()
    )
}

/// The `Set-Cookie` value that ends the browser's session.
pub fn expired_cookie() -> String {
    format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// 32 random bytes as hex; `None` when the system's random source fails.
fn token() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_begin_with_the_key_or_a_link_used_once() {
        let sessions = Sessions::default();
        assert!(sessions.sign_in("wrong", "key").is_none());
        let session = sessions.sign_in("key", "key").unwrap();
        assert!(sessions.is_open(&session));
        sessions.close(&session);
        assert!(!sessions.is_open(&session));

        let link = sessions.link().unwrap();
        let session = sessions.redeem(&link).unwrap();
        assert!(sessions.is_open(&session));
        assert!(sessions.redeem(&link).is_none(), "a link works once");
        assert!(!sessions.is_open(&link), "a link is no session");
        assert!(cookie(&session).contains("HttpOnly; SameSite=Strict"));
    }
}
