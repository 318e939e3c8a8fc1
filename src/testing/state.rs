//! The server's shared state: configuration, keys, issued tokens, clients, faults, records.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::watch;

use super::builder::SampleUser;
use super::faults::{Endpoint, Fault, FaultRule};
use super::keys::KeyStore;
use super::request::RecordedRequest;
use crate::time::unix_now;
use crate::verify::JwsAlgorithm;

/// How many requests per endpoint are kept for [`super::TestAuthServer::requests`].
pub(crate) const RECORDED_PER_ENDPOINT: usize = 1000;

/// How long an authorization code stays redeemable.
pub(crate) const CODE_TTL_SECS: i64 = 60;

/// Fixed once the listener is bound.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) issuer: String,
    pub(crate) base_url: String,
    pub(crate) issuer_path: String,
    pub(crate) local_addr: SocketAddr,
    pub(crate) sample_user: SampleUser,
    pub(crate) scopes_supported: Vec<String>,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) token_ttl: Duration,
    pub(crate) published_algs: Vec<JwsAlgorithm>,
}

impl Config {
    pub(crate) fn token_ttl_secs(&self) -> i64 {
        i64::try_from(self.token_ttl.as_secs()).unwrap_or(i64::MAX)
    }
}

/// Everything the request handlers share with the [`super::TestAuthServer`] handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) base_metadata: Value,
    keys: RwLock<Arc<KeyStore>>,
    state: Mutex<State>,
    shutdown: watch::Receiver<bool>,
}

/// A token the server issued: what introspection and userinfo say about it.
#[derive(Debug, Clone)]
pub(crate) struct IssuedToken {
    /// Claims for introspection (without `active`); `exp`/`nbf` here decide activity.
    pub(crate) claims: Map<String, Value>,
    /// The userinfo answer.
    pub(crate) userinfo: Map<String, Value>,
}

/// A client known to the authorization and token endpoints.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    /// `None` for public clients (`token_endpoint_auth_method: none`).
    pub(crate) secret: Option<String>,
    pub(crate) redirect_uris: Vec<String>,
    /// Pre-registered clients accept any loopback redirect URI.
    pub(crate) any_loopback_redirect: bool,
}

/// What an authorization code stands for.
#[derive(Debug, Clone)]
pub(crate) struct AuthorizationCode {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) redirect_uri_given: bool,
    pub(crate) code_challenge: String,
    pub(crate) scope: Vec<String>,
    pub(crate) resources: Vec<String>,
    pub(crate) nonce: Option<String>,
    pub(crate) expires_at: i64,
    pub(crate) used: bool,
    /// Tokens issued from this code, revoked if the code is replayed (OAuth 2.1 §4.1.3).
    pub(crate) issued_tokens: Vec<String>,
}

/// What a refresh token stands for. Refresh tokens are single use (rotated).
#[derive(Debug, Clone)]
pub(crate) struct RefreshGrant {
    pub(crate) client_id: String,
    pub(crate) scope: Vec<String>,
    pub(crate) resources: Vec<String>,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) tokens: HashMap<String, IssuedToken>,
    pub(crate) revoked: HashSet<String>,
    pub(crate) clients: HashMap<String, Client>,
    pub(crate) codes: HashMap<String, AuthorizationCode>,
    pub(crate) refresh_tokens: HashMap<String, RefreshGrant>,
    pub(crate) faults: HashMap<Endpoint, FaultRule>,
    pub(crate) counts: HashMap<Endpoint, usize>,
    pub(crate) recorded: HashMap<Endpoint, VecDeque<RecordedRequest>>,
    pub(crate) metadata_override: Option<Value>,
    pub(crate) jwks_override: Option<Value>,
}

impl Shared {
    pub(crate) fn new(
        config: Config,
        base_metadata: Value,
        keys: KeyStore,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let mut state = State::default();
        state.clients.insert(
            config.client_id.clone(),
            Client {
                secret: Some(config.client_secret.clone()),
                redirect_uris: Vec::new(),
                any_loopback_redirect: true,
            },
        );
        // A public client matching the default `client_id` claim of minted tokens.
        state
            .clients
            .entry(super::token::DEFAULT_CLIENT_ID.into())
            .or_insert(Client {
                secret: None,
                redirect_uris: Vec::new(),
                any_loopback_redirect: true,
            });
        Shared {
            config,
            base_metadata,
            keys: RwLock::new(Arc::new(keys)),
            state: Mutex::new(state),
            shutdown,
        }
    }

    /// The current signing keys.
    pub(crate) fn keys(&self) -> Arc<KeyStore> {
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn replace_keys(&self, keys: KeyStore) {
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
    }

    /// The mutable state. A panic elsewhere while holding the lock leaves data that is
    /// still consistent enough for a test server, so poisoning is ignored.
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }

    /// Counts and records a request, then takes the fault armed for the endpoint, if any.
    pub(crate) fn record(&self, endpoint: Endpoint, request: RecordedRequest) -> Option<Fault> {
        let mut state = self.state();
        *state.counts.entry(endpoint).or_default() += 1;
        let recorded = state.recorded.entry(endpoint).or_default();
        if recorded.len() == RECORDED_PER_ENDPOINT {
            recorded.pop_front();
        }
        recorded.push_back(request);
        let rule = state.faults.get_mut(&endpoint)?;
        let (fault, spent) = rule.take();
        if spent {
            state.faults.remove(&endpoint);
        }
        Some(fault)
    }

    /// The metadata document as served: the base document with the override applied.
    pub(crate) fn served_metadata(&self) -> Value {
        let patch = self.state().metadata_override.clone();
        match patch {
            None => self.base_metadata.clone(),
            Some(Value::Object(patch)) => {
                let mut document = match &self.base_metadata {
                    Value::Object(base) => base.clone(),
                    _ => Map::new(),
                };
                for (key, value) in patch {
                    if value.is_null() {
                        document.remove(&key);
                    } else {
                        document.insert(key, value);
                    }
                }
                Value::Object(document)
            }
            Some(replacement) => replacement,
        }
    }

    /// The JWKS document of the current keys, for the published algorithms.
    pub(crate) fn key_set(&self) -> Value {
        self.keys().jwks(&self.config.published_algs)
    }

    /// The JWKS document as served: the override if set, else [`Shared::key_set`].
    pub(crate) fn served_jwks(&self) -> Value {
        let replacement = self.state().jwks_override.clone();
        replacement.unwrap_or_else(|| self.key_set())
    }

    pub(crate) fn remember_token(&self, token: String, issued: IssuedToken) {
        self.state().tokens.insert(token, issued);
    }

    /// The token if this server issued it and it is still active (not revoked, not
    /// expired, not before its `nbf`).
    pub(crate) fn active_token(&self, token: &str) -> Option<IssuedToken> {
        let state = self.state();
        if state.revoked.contains(token) {
            return None;
        }
        let issued = state.tokens.get(token)?;
        let now = unix_now();
        let expired = issued
            .claims
            .get("exp")
            .and_then(Value::as_i64)
            .is_some_and(|exp| exp <= now);
        let early = issued
            .claims
            .get("nbf")
            .and_then(Value::as_i64)
            .is_some_and(|nbf| nbf > now);
        (!expired && !early).then(|| issued.clone())
    }

    /// What userinfo says for subject `sub`: the sample user's profile if it is theirs.
    pub(crate) fn profile_for(&self, sub: &str) -> Map<String, Value> {
        if sub == self.config.sample_user.subject {
            self.config.sample_user.claims()
        } else {
            let mut claims = Map::new();
            claims.insert("sub".into(), sub.into());
            claims
        }
    }
}
