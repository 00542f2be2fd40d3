//! Authentication: who a request comes from.
//!
//! - Bearer tokens: ServiceAccount tokens handed out through the TokenRequest API
//!   (`kubectl create token SA`), valid while the ServiceAccount (same UID) exists and
//!   until they expire; and static tokens the server was started with.
//! - Client certificates signed by the server's CA (optional: a client without one is
//!   not refused at the TLS layer). The server knows each certificate it issued and the
//!   user (CN) and groups (O) it was issued for, so it does not parse X.509 subjects.
//!
//! No credentials, or a token the server does not know: 401 (anonymous access is off).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use ring::rand::{SecureRandom, SystemRandom};

use crate::kube_server::registry::SERVICE_ACCOUNTS;
use crate::kube_server::store::Store;

/// The authenticated user, as RBAC subjects name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    pub fn new(name: &str, groups: &[&str]) -> UserInfo {
        let mut groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        groups.push("system:authenticated".into());
        UserInfo {
            name: name.into(),
            uid: String::new(),
            groups,
        }
    }

    /// The user of a ServiceAccount's token.
    pub fn service_account(namespace: &str, name: &str, uid: &str) -> UserInfo {
        UserInfo {
            name: format!("system:serviceaccount:{namespace}:{name}"),
            uid: uid.into(),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
        }
    }

    /// Members of system:masters bypass authorization (and API Priority and Fairness
    /// puts them in the exempt priority level).
    pub fn is_master(&self) -> bool {
        self.groups.iter().any(|g| g == "system:masters")
    }
}

#[derive(Debug, Clone)]
enum Token {
    ServiceAccount {
        namespace: String,
        name: String,
        uid: String,
        expires: SystemTime,
    },
    Static(UserInfo),
}

#[derive(Debug, Default)]
pub struct Authenticator {
    tokens: Mutex<HashMap<String, Token>>,
    certificates: Mutex<HashMap<Vec<u8>, UserInfo>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// 32 random bytes, hex: as unguessable as a signed JWT for a test server's purposes.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // SystemRandom only fails when the OS has no randomness at all; a zero token is
    // then still unique per process because it is checked against the map below.
    let _ = SystemRandom::new().fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Authenticator {
    /// A token for a ServiceAccount, valid for `ttl`; returns (token, expiry).
    pub fn issue(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        ttl: Duration,
    ) -> (String, SystemTime) {
        let expires = SystemTime::now() + ttl;
        let mut tokens = lock(&self.tokens);
        let mut token = random_token();
        while tokens.contains_key(&token) {
            token = random_token();
        }
        tokens.insert(
            token.clone(),
            Token::ServiceAccount {
                namespace: namespace.into(),
                name: name.into(),
                uid: uid.into(),
                expires,
            },
        );
        (token, expires)
    }

    pub fn add_static_token(&self, token: &str, user: UserInfo) {
        lock(&self.tokens).insert(token.into(), Token::Static(user));
    }

    pub fn register_certificate(&self, der: Vec<u8>, user: UserInfo) {
        lock(&self.certificates).insert(der, user);
    }

    /// The user of a request, or None (401). A bearer token is checked first, as the
    /// real server does when a request carries one.
    pub fn authenticate(
        &self,
        bearer: Option<&str>,
        certificate: Option<&[u8]>,
        store: &Store,
    ) -> Option<UserInfo> {
        if let Some(token) = bearer {
            return self.by_token(token, store);
        }
        certificate.and_then(|der| lock(&self.certificates).get(der).cloned())
    }

    fn by_token(&self, token: &str, store: &Store) -> Option<UserInfo> {
        let entry = lock(&self.tokens).get(token).cloned()?;
        match entry {
            Token::Static(user) => Some(user),
            Token::ServiceAccount {
                namespace,
                name,
                uid,
                expires,
            } => {
                let alive = store
                    .get(SERVICE_ACCOUNTS, &namespace, &name)
                    .is_some_and(|sa| crate::kube_server::meta::uid(sa) == uid);
                (alive && SystemTime::now() < expires)
                    .then(|| UserInfo::service_account(&namespace, &name, &uid))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_service_account_token_dies_with_its_service_account() {
        let mut store = Store::new(10);
        let sa = json!({"metadata": {"name": "pk", "namespace": "ns", "uid": "u-1"}});
        store.insert(SERVICE_ACCOUNTS, sa).unwrap_or_default();
        let authn = Authenticator::default();
        let (token, _) = authn.issue("ns", "pk", "u-1", Duration::from_secs(60));
        let user = authn.authenticate(Some(&token), None, &store);
        assert_eq!(
            user.map(|u| u.name).as_deref(),
            Some("system:serviceaccount:ns:pk")
        );
        assert!(authn.authenticate(Some("nope"), None, &store).is_none());
        assert!(authn.authenticate(None, None, &store).is_none());
        store.remove(SERVICE_ACCOUNTS, "ns", "pk");
        assert!(authn.authenticate(Some(&token), None, &store).is_none());
    }
}
