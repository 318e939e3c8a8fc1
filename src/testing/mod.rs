//! An in-process OAuth 2.1 / OpenID Connect authorization server **for tests and local
//! development only**.
//!
//! <div class="warning">
//!
//! **Never use this in production.** [`TestAuthServer`] hands a token to anyone who asks:
//! it has no login, no consent, open client registration, keys that live in memory only,
//! and plain HTTP on loopback. It exists so that the crate's tests, your tests and the
//! `whoami` example can run against a real authorization server without a network.
//!
//! </div>
//!
//! It speaks real HTTP on a loopback port chosen by the OS and serves:
//!
//! - RFC 8414 and OpenID Connect discovery metadata, and a JWKS with RS256, ES256 and EdDSA
//!   keys (generated at start, replaceable with [`TestAuthServer::rotate_keys`]);
//! - userinfo and RFC 7662 introspection for the tokens it issued, and RFC 7009 revocation;
//! - an auto-approving development flow for real MCP clients: RFC 7591 registration,
//!   authorization code with PKCE (S256) and RFC 8707 resource indicators, refresh
//!   tokens, client credentials and RFC 8693 token exchange (for
//!   [`TokenExchange`](crate::exchange::TokenExchange)).
//!
//! Tests mint tokens directly with [`TestAuthServer::token`] (valid ones and every kind of
//! broken one; DPoP-bound ones with [`TokenBuilder::dpop_bound`], and their proofs with
//! [`DpopKey`]), inject faults per endpoint ([`Fault`]), and inspect what each endpoint
//! received ([`TestAuthServer::requests`]).
//!
//! ```
//! use mcp_auth::testing::{Endpoint, Fault, TestAuthServer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = TestAuthServer::start().await?;
//! assert!(server.issuer().starts_with("http://127.0.0.1:"));
//!
//! // A signed RFC 9068 access token for the sample user (Alice).
//! let token = server
//!     .token()
//!     .audience("http://localhost:3001/mcp")
//!     .scope("read write")
//!     .sign();
//! assert_eq!(token.split('.').count(), 3);
//!
//! // The metadata a resource server discovers.
//! let body = reqwest::get(server.oauth_metadata_url()).await?.bytes().await?;
//! let metadata: serde_json::Value = serde_json::from_slice(&body)?;
//! assert_eq!(metadata["jwks_uri"], server.jwks_uri());
//!
//! // Make the JWKS endpoint fail once.
//! server.fail_times(Endpoint::Jwks, Fault::Status(503), 1);
//! assert_eq!(reqwest::get(server.jwks_uri()).await?.status(), 503);
//! assert_eq!(reqwest::get(server.jwks_uri()).await?.status(), 200);
//! assert_eq!(server.request_count(Endpoint::Jwks), 2);
//!
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod builder;
mod dpop;
mod faults;
mod flow;
mod keys;
mod request;
mod respond;
mod routes;
mod state;
mod token;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use builder::{SampleUser, TestAuthServerBuilder};
pub use dpop::{DpopKey, DpopProofBuilder};
pub use faults::{Endpoint, Fault};
pub use keys::DEFAULT_PUBLISHED_ALGS;
pub use request::RecordedRequest;
pub use token::TokenBuilder;

use crate::time::unix_now;
use crate::verify::JwsAlgorithm;
use faults::FaultRule;
use keys::KeyStore;
use state::{Config, IssuedToken, Shared};

/// How long [`TestAuthServer::shutdown`] waits for open requests before aborting them.
/// The resource-server client secret of a test authorization server unless
/// [`TestAuthServerBuilder::client`] sets another: public, so never use it beyond loopback.
pub(crate) const DEFAULT_CLIENT_SECRET: &str = "test-secret";

const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why a [`TestAuthServer`] could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestServerError {
    /// The builder was given an unusable value.
    #[error("invalid test authorization server configuration: {0}")]
    InvalidConfig(String),
    /// Generating the signing keys failed.
    #[error("could not generate the test authorization server's signing keys")]
    KeyGeneration,
    /// The listening socket could not be bound.
    #[error("could not bind the test authorization server to {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// An in-process OAuth 2.1 / OpenID Connect authorization server on loopback, **for tests
/// and local development only** (see the [module docs](self); never use it in production).
///
/// Cheap to clone; all clones control the same server. The server stops on
/// [`shutdown`](TestAuthServer::shutdown), or when the last clone is dropped.
#[derive(Clone)]
pub struct TestAuthServer {
    handle: Arc<ServerHandle>,
}

/// Owns the background task; dropping it stops the server.
struct ServerHandle {
    shared: Arc<Shared>,
    task: Mutex<Option<JoinHandle<()>>>,
    stop: watch::Sender<bool>,
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }
}

impl fmt::Debug for TestAuthServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestAuthServer")
            .field("issuer", &self.issuer())
            .finish_non_exhaustive()
    }
}

impl TestAuthServer {
    /// Starts a server with the defaults on `127.0.0.1:<port chosen by the OS>`; the issuer
    /// is `http://127.0.0.1:<port>`. See [`TestAuthServerBuilder`] for the defaults.
    ///
    /// # Errors
    /// See [`TestAuthServerBuilder::start`].
    pub async fn start() -> Result<TestAuthServer, TestServerError> {
        Self::builder().start().await
    }

    /// A builder for a server with a non-default issuer path, user, scopes, client, etc.
    pub fn builder() -> TestAuthServerBuilder {
        TestAuthServerBuilder::default()
    }

    pub(crate) async fn start_with(
        options: TestAuthServerBuilder,
    ) -> Result<TestAuthServer, TestServerError> {
        options.validate()?;
        let keys = tokio::task::spawn_blocking(KeyStore::generate)
            .await
            .map_err(|_| TestServerError::KeyGeneration)?
            .map_err(|_| TestServerError::KeyGeneration)?;
        let listener = tokio::net::TcpListener::bind(options.bind)
            .await
            .map_err(|source| TestServerError::Bind {
                addr: options.bind,
                source,
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| TestServerError::Bind {
                addr: options.bind,
                source,
            })?;
        if !local_addr.ip().is_loopback() {
            warn_exposed(local_addr, options.client_secret == DEFAULT_CLIENT_SECRET);
        }
        let base_url = format!("http://{}", advertised(local_addr));
        let config = Config {
            issuer: format!("{base_url}{}", options.issuer_path),
            base_url,
            issuer_path: options.issuer_path,
            local_addr,
            sample_user: options.sample_user,
            scopes_supported: options.scopes_supported,
            client_id: options.client_id,
            client_secret: options.client_secret,
            token_ttl: options.token_ttl,
            published_algs: options.published_algs,
        };
        let metadata = routes::base_metadata(&config);
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared::new(config, metadata, keys, stopped.clone()));
        let app = routes::router(Arc::clone(&shared));
        let mut graceful = stopped;
        let task = tokio::spawn(async move {
            let serving = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = graceful.wait_for(|stopped| *stopped).await;
            });
            if let Err(error) = serving.await {
                tracing::warn!(%error, "test authorization server stopped with an error");
            }
        });
        tracing::debug!(issuer = %shared.config.issuer, "test authorization server started");
        let handle = ServerHandle {
            shared,
            task: Mutex::new(Some(task)),
            stop,
        };
        Ok(TestAuthServer {
            handle: Arc::new(handle),
        })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    fn config(&self) -> &Config {
        &self.shared().config
    }

    /// The issuer identifier, exactly as in the metadata's `issuer` (no trailing slash),
    /// e.g. `http://127.0.0.1:41234` or `http://127.0.0.1:41234/oidc`.
    pub fn issuer(&self) -> &str {
        &self.config().issuer
    }

    /// The origin the server answers on, e.g. `http://127.0.0.1:41234`.
    pub fn base_url(&self) -> &str {
        &self.config().base_url
    }

    /// The socket address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.config().local_addr
    }

    /// `base_url` + `path` (`path` should start with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// The URL of an endpoint (the canonical one for metadata).
    pub fn endpoint_url(&self, endpoint: Endpoint) -> String {
        routes::endpoint_url(self.config(), endpoint)
    }

    /// The JWKS URL (`jwks_uri` in the metadata).
    pub fn jwks_uri(&self) -> String {
        self.endpoint_url(Endpoint::Jwks)
    }

    /// RFC 8414 metadata URL, with the well-known segment inserted before the issuer path:
    /// `{base}/.well-known/oauth-authorization-server{issuer path}`.
    pub fn oauth_metadata_url(&self) -> String {
        self.endpoint_url(Endpoint::OAuthMetadata)
    }

    /// OpenID Connect discovery URL, appended to the issuer:
    /// `{issuer}/.well-known/openid-configuration`.
    pub fn oidc_metadata_url(&self) -> String {
        self.endpoint_url(Endpoint::OidcMetadata)
    }

    /// The userinfo endpoint URL.
    pub fn userinfo_url(&self) -> String {
        self.endpoint_url(Endpoint::Userinfo)
    }

    /// The introspection endpoint URL.
    pub fn introspection_url(&self) -> String {
        self.endpoint_url(Endpoint::Introspection)
    }

    /// The metadata document as currently served (with any
    /// [`set_metadata_override`](Self::set_metadata_override) applied).
    pub fn metadata(&self) -> Value {
        self.shared().served_metadata()
    }

    /// The pre-registered confidential client's id (default `test-resource-server`).
    pub fn client_id(&self) -> &str {
        &self.config().client_id
    }

    /// The pre-registered confidential client's secret (default `test-secret`).
    pub fn client_secret(&self) -> &str {
        &self.config().client_secret
    }

    /// The user all tokens belong to.
    pub fn sample_user(&self) -> &SampleUser {
        &self.config().sample_user
    }

    /// The lifetime of issued tokens.
    pub fn token_ttl(&self) -> Duration {
        self.config().token_ttl
    }

    /// Starts minting a signed JWT access token (see [`TokenBuilder`] for the defaults).
    pub fn token(&self) -> TokenBuilder {
        TokenBuilder::new(Arc::clone(self.shared()))
    }

    /// Issues a random opaque access token known to userinfo and introspection.
    ///
    /// Introspection answers `active: true`, `token_type: "Bearer"` (`"DPoP"` when `claims`
    /// has a `cnf.jkt`), the defaults `iss`
    /// (the issuer), `sub` (the sample user), `client_id` (`test-client`), `iat` (now) and
    /// `exp` (now + token TTL), then `claims` (a JSON object) over them; a JSON `null`
    /// value removes a default (e.g. `"exp": null` for a token that never expires).
    /// Userinfo answers the sample user's profile (when `sub` is theirs) with `claims`
    /// over it. A past `exp` makes the token inactive. Non-object `claims` are ignored.
    pub fn issue_opaque_token(&self, claims: Value) -> String {
        let config = self.config();
        let now = unix_now();
        let given = match claims {
            Value::Object(given) => given,
            _ => Map::new(),
        };
        let mut claims = Map::new();
        claims.insert("iss".into(), config.issuer.clone().into());
        claims.insert("sub".into(), config.sample_user.subject.clone().into());
        claims.insert("client_id".into(), token::DEFAULT_CLIENT_ID.into());
        claims.insert("iat".into(), now.into());
        claims.insert(
            "exp".into(),
            now.saturating_add(config.token_ttl_secs()).into(),
        );
        for (name, value) in &given {
            if value.is_null() {
                claims.remove(name);
            } else {
                claims.insert(name.clone(), value.clone());
            }
        }
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut userinfo = self.shared().profile_for(sub);
        userinfo.extend(given.into_iter().filter(|(_, value)| !value.is_null()));
        let token = keys::random_token(32);
        self.shared()
            .remember_token(token.clone(), IssuedToken { claims, userinfo });
        token
    }

    /// Revokes a token (opaque or JWT): introspection then answers `active: false` and
    /// userinfo 401. A JWT's signature of course stays valid for local verification.
    pub fn revoke(&self, token: &str) {
        self.shared().state().revoked.insert(token.to_owned());
    }

    /// Replaces all signing keys with freshly generated ones under new `kid`s; the JWKS
    /// then lists only the new keys. Blocks for the RSA key generation (tens of ms).
    ///
    /// # Panics
    /// If the system cannot generate keys (this already succeeded once at start).
    // Test server only, and documented: a test cannot go on without the keys it asked for.
    #[allow(clippy::expect_used)]
    pub fn rotate_keys(&self) {
        let keys = KeyStore::generate().expect("key generation succeeded at start and again now");
        self.shared().replace_keys(keys);
    }

    /// The `kid` under which the current key for `alg` is published.
    pub fn kid(&self, alg: JwsAlgorithm) -> String {
        self.shared().keys().kid(alg).to_owned()
    }

    /// The public JWK of the current key for `alg` (published or not).
    pub fn jwk(&self, alg: JwsAlgorithm) -> Value {
        self.shared().keys().jwk(alg)
    }

    /// Shallow-merges a JSON object over the served metadata (both OAuth and OIDC
    /// documents): each key replaces the server's, a JSON `null` removes the key. A
    /// non-object value is served as the whole document instead. `None` restores the
    /// real metadata.
    pub fn set_metadata_override(&self, patch: Option<Value>) {
        self.shared().state().metadata_override = patch;
    }

    /// Serves exactly this JWKS document instead of the real one; `None` restores it.
    pub fn set_jwks_override(&self, jwks: Option<Value>) {
        self.shared().state().jwks_override = jwks;
    }

    /// The JWKS document of the server's current keys (for the published algorithms),
    /// regardless of [`set_jwks_override`](Self::set_jwks_override): `{"keys": [...]}`,
    /// each key with `kty`, `kid`, `use: "sig"`, `alg` and its public members only.
    pub fn public_jwks(&self) -> Value {
        self.shared().key_set()
    }

    /// The RSA signing key's public half as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), the
    /// classic secret for `HS256`-with-the-public-key confusion tokens.
    pub fn rsa_public_key_pem(&self) -> String {
        self.shared().keys().rsa_public_spki_pem()
    }

    /// The RSA signing key's public half as DER `RSAPublicKey` (PKCS#1), the form
    /// `jsonwebtoken::DecodingKey::from_rsa_der` takes.
    pub fn rsa_public_key_der(&self) -> Vec<u8> {
        self.shared().keys().rsa_public_pkcs1_der()
    }

    /// Injects `fault` into every following request to `endpoint` (until
    /// [`heal`](Self::heal)). Replaces any fault already armed there.
    pub fn fail(&self, endpoint: Endpoint, fault: Fault) {
        let rule = FaultRule {
            fault,
            remaining: None,
        };
        self.shared().state().faults.insert(endpoint, rule);
    }

    /// Injects `fault` into the next `n` requests to `endpoint` only (`n == 0` heals).
    /// Replaces any fault already armed there.
    pub fn fail_times(&self, endpoint: Endpoint, fault: Fault, n: usize) {
        let mut state = self.shared().state();
        if n == 0 {
            state.faults.remove(&endpoint);
        } else {
            state.faults.insert(
                endpoint,
                FaultRule {
                    fault,
                    remaining: Some(n),
                },
            );
        }
    }

    /// Removes the fault armed for `endpoint`.
    pub fn heal(&self, endpoint: Endpoint) {
        self.shared().state().faults.remove(&endpoint);
    }

    /// Removes every armed fault.
    pub fn heal_all(&self) {
        self.shared().state().faults.clear();
    }

    /// How many requests `endpoint` received since start or [`reset_counts`], including
    /// faulted ones and CORS preflights.
    ///
    /// [`reset_counts`]: Self::reset_counts
    pub fn request_count(&self, endpoint: Endpoint) -> usize {
        self.shared()
            .state()
            .counts
            .get(&endpoint)
            .copied()
            .unwrap_or_default()
    }

    /// Sets every request count to zero and forgets the recorded requests.
    pub fn reset_counts(&self) {
        let mut state = self.shared().state();
        state.counts.clear();
        state.recorded.clear();
    }

    /// The requests `endpoint` received (the last 1000), oldest first.
    pub fn requests(&self, endpoint: Endpoint) -> Vec<RecordedRequest> {
        let state = self.shared().state();
        state
            .recorded
            .get(&endpoint)
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Stops the server for all clones: stops accepting, ends hanging and trickling
    /// responses, and waits (up to 5 s) for open requests before aborting them.
    pub async fn shutdown(self) {
        let _ = self.handle.stop.send(true);
        let task = self
            .handle
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(mut task) = task
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

/// Says loudly, on stderr and in the log, that a test authorization server listens beyond
/// loopback: it hands a token to anyone who asks, and `default_secret` says whether its
/// client secret is still the well-known default.
fn warn_exposed(addr: SocketAddr, default_secret: bool) {
    let secret = if default_secret {
        " Its resource-server client secret is the public default `test-secret`."
    } else {
        ""
    };
    let message = format!(
        "the TEST authorization server listens on {addr}, beyond loopback: anyone who can reach \
         it gets tokens (no login, auto-approved consent, open client registration).{secret} It \
         is for local development and tests only; bind it to 127.0.0.1."
    );
    eprintln!("WARNING: {message}");
    tracing::error!("{message}");
}

/// The address to advertise: an unspecified bind address is reached through loopback.
fn advertised(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, addr.port()))
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}
