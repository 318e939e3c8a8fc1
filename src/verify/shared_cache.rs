//! A token cache's shared tier: successes kept in a [`StateStore`] so that every replica
//! using the store reuses them (set with `.store(...)` on the userinfo and introspection
//! verifier builders).
//!
//! - key: `StateKey::new(kind, [issuer, token])`, a SHA-256: the token is never stored;
//! - value: the [`AuthInfo`] without its token, as JSON (version 1);
//! - time to live: `min(ttl, exp − now)`, never past the token's expiry;
//! - a store error, or a value that cannot be read, is a miss: the authorization server is
//!   asked (slower, still correct), and the error is counted in
//!   `mcp_auth_cache_store_errors_total{store}`.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::auth_info::{AuthInfo, CredentialKind};
use crate::store::{StateKey, StateKind, StateStore, StoreError};
use crate::time::unix_now;

/// A cached success as stored: everything but the token (and the credential kind, always
/// OAuth for these verifiers).
#[derive(Serialize, Deserialize)]
struct Stored {
    v: u8,
    iss: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cid: Option<String>,
    #[serde(default)]
    scp: Vec<String>,
    #[serde(default)]
    aud: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(default)]
    claims: Map<String, Value>,
}

const VERSION: u8 = 1;

/// The shared tier of one verifier's cache.
#[derive(Clone)]
pub(crate) struct SharedCache {
    store: Arc<dyn StateStore>,
    kind: StateKind,
    /// What the answers are about (the issuer), part of every key.
    scope: String,
    ttl: Duration,
}

impl std::fmt::Debug for SharedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCache")
            .field("store", &self.store.name())
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl SharedCache {
    pub(crate) fn new(
        store: Arc<dyn StateStore>,
        kind: StateKind,
        scope: &str,
        ttl: Duration,
    ) -> Self {
        Self {
            store,
            kind,
            scope: scope.to_owned(),
            ttl,
        }
    }

    fn key(&self, token: &str) -> StateKey {
        StateKey::new(self.kind, &[self.scope.as_bytes(), token.as_bytes()])
    }

    fn failed(&self, error: &StoreError) {
        crate::metrics::cache_store_error(self.store.name());
        tracing::warn!(
            store = self.store.name(),
            %error,
            "the shared token cache failed; asking the authorization server instead"
        );
    }

    /// The stored success for `token` (without its token), or `None`: a miss, an error, or
    /// an unreadable or expired value.
    pub(crate) async fn get(&self, token: &str) -> Option<AuthInfo> {
        let bytes = match self.store.get(&self.key(token)).await {
            Ok(bytes) => bytes?,
            Err(error) => {
                self.failed(&error);
                return None;
            }
        };
        let stored: Stored = match serde_json::from_slice(&bytes) {
            Ok(stored) => stored,
            Err(error) => {
                self.failed(&StoreError::Corrupt {
                    store: self.store.name(),
                    reason: error.to_string(),
                });
                return None;
            }
        };
        if stored.v != VERSION {
            return None;
        }
        if stored.exp.is_some_and(|exp| exp <= unix_now()) {
            return None;
        }
        let mut info = AuthInfo::new(String::new(), stored.iss);
        info.subject = stored.sub;
        info.client_id = stored.cid;
        info.scopes = stored.scp;
        info.audience = stored.aud;
        info.expires_at = stored.exp;
        info.claims = stored.claims;
        info.credential = CredentialKind::OAuth;
        Some(info)
    }

    /// Stores a success for `token`, for `min(ttl, exp − now)`; errors are counted, not
    /// returned (the answer is already known).
    pub(crate) async fn put(&self, token: &str, info: &AuthInfo) {
        let mut ttl = self.ttl;
        if let Some(exp) = info.expires_at {
            let left = exp.saturating_sub(unix_now());
            if left <= 0 {
                return;
            }
            ttl = ttl.min(Duration::from_secs(left.unsigned_abs()));
        }
        let stored = Stored {
            v: VERSION,
            iss: info.issuer.clone(),
            sub: info.subject.clone(),
            cid: info.client_id.clone(),
            scp: info.scopes.clone(),
            aud: info.audience.clone(),
            exp: info.expires_at,
            claims: info.claims.clone(),
        };
        let Ok(bytes) = serde_json::to_vec(&stored) else {
            return;
        };
        if let Err(error) = self.store.set(&self.key(token), &bytes, ttl).await {
            self.failed(&error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn a_success_round_trips_without_its_token_and_garbage_is_a_miss() {
        let store = MemoryStore::new();
        let cache = SharedCache::new(
            Arc::new(store.clone()),
            StateKind::Introspection,
            "https://as",
            Duration::from_secs(60),
        );
        let info = AuthInfo::new("secret-token", "https://as")
            .with_subject("alice")
            .with_scopes(["read"]);
        cache.put("secret-token", &info).await;
        let key = cache.key("secret-token");
        let raw = store.get(&key).await.unwrap().unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains("secret-token"));
        let back = cache.get("secret-token").await.unwrap();
        assert_eq!(back.token, "");
        assert_eq!(back.subject.as_deref(), Some("alice"));
        assert_eq!(back.scopes, ["read"]);
        assert!(cache.get("other-token").await.is_none());

        store
            .set(&key, b"not json", Duration::from_secs(60))
            .await
            .unwrap();
        assert!(cache.get("secret-token").await.is_none());
    }

    #[tokio::test]
    async fn an_expired_success_is_never_stored() {
        let store = MemoryStore::new();
        let cache = SharedCache::new(
            Arc::new(store.clone()),
            StateKind::Userinfo,
            "https://as",
            Duration::from_secs(60),
        );
        let mut info = AuthInfo::new("t", "https://as");
        info.expires_at = Some(unix_now() - 1);
        cache.put("t", &info).await;
        assert_eq!(store.get(&cache.key("t")).await.unwrap(), None);
    }
}
