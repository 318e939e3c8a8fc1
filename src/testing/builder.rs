//! Configuration of the test authorization server.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde_json::{Map, Value};

use super::{DEFAULT_CLIENT_SECRET, TestAuthServer, TestServerError};
use crate::verify::JwsAlgorithm;

/// The one user every token of the test server belongs to (there is no login step).
///
/// The default is Alice: subject `alice`, name `Alice Example`, email `alice@example.com`,
/// username `alice`.
///
/// ```
/// use mcp_auth::testing::SampleUser;
///
/// let bob = SampleUser::new("bob").name("Bob Builder").claim("department", "construction");
/// assert_eq!(bob.subject, "bob");
/// assert_eq!(bob.email, None);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SampleUser {
    /// The `sub` claim.
    pub subject: String,
    /// The `name` claim, if any.
    pub name: Option<String>,
    /// The `email` claim, if any.
    pub email: Option<String>,
    /// The `username` claim, if any.
    pub username: Option<String>,
    /// Further claims carried by this user's tokens and userinfo answers.
    pub extra_claims: Map<String, Value>,
}

impl Default for SampleUser {
    fn default() -> Self {
        SampleUser {
            subject: "alice".into(),
            name: Some("Alice Example".into()),
            email: Some("alice@example.com".into()),
            username: Some("alice".into()),
            extra_claims: Map::new(),
        }
    }
}

impl SampleUser {
    /// A user with this subject and no other claims.
    pub fn new(subject: impl Into<String>) -> Self {
        SampleUser {
            subject: subject.into(),
            name: None,
            email: None,
            username: None,
            extra_claims: Map::new(),
        }
    }

    /// Sets the `name` claim.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the `email` claim.
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Sets the `username` claim.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Adds a further claim.
    pub fn claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extra_claims.insert(name.into(), value.into());
        self
    }

    /// `sub` followed by the profile claims, as userinfo answers them.
    pub(crate) fn claims(&self) -> Map<String, Value> {
        let mut claims = Map::new();
        claims.insert("sub".into(), self.subject.clone().into());
        for (name, value) in [
            ("name", &self.name),
            ("email", &self.email),
            ("username", &self.username),
        ] {
            if let Some(value) = value {
                claims.insert(name.into(), value.clone().into());
            }
        }
        claims.extend(self.extra_claims.clone());
        claims
    }
}

/// Configures and starts a [`TestAuthServer`]. Get one from [`TestAuthServer::builder`].
///
/// Test and development use only: see the [module docs](super).
#[derive(Debug, Clone)]
#[must_use]
pub struct TestAuthServerBuilder {
    pub(crate) issuer_path: String,
    pub(crate) sample_user: SampleUser,
    pub(crate) scopes_supported: Vec<String>,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) token_ttl: Duration,
    pub(crate) bind: SocketAddr,
    pub(crate) published_algs: Vec<JwsAlgorithm>,
}

impl Default for TestAuthServerBuilder {
    fn default() -> Self {
        TestAuthServerBuilder {
            issuer_path: String::new(),
            sample_user: SampleUser::default(),
            scopes_supported: ["openid", "profile", "email", "read", "write"]
                .map(String::from)
                .to_vec(),
            client_id: "test-resource-server".into(),
            client_secret: DEFAULT_CLIENT_SECRET.into(),
            token_ttl: Duration::from_secs(3600),
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            published_algs: super::keys::DEFAULT_PUBLISHED_ALGS.to_vec(),
        }
    }
}

impl TestAuthServerBuilder {
    /// Puts the issuer under a path, e.g. `"/oidc"` gives issuer `http://127.0.0.1:<port>/oidc`,
    /// RFC 8414 metadata at `/.well-known/oauth-authorization-server/oidc`, and OpenID
    /// metadata at both `/oidc/.well-known/openid-configuration` and
    /// `/.well-known/openid-configuration/oidc`. All endpoints move under the path too.
    ///
    /// Default: no path. A missing leading `/` is added and a trailing `/` removed; the path
    /// may hold only letters, digits, `-`, `.`, `_`, `~` and `/` between non-empty segments
    /// ([`start`](Self::start) fails with [`TestServerError::InvalidConfig`] otherwise).
    pub fn issuer_path(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        let trimmed = path.trim_end_matches('/');
        self.issuer_path = match trimmed {
            "" => String::new(),
            p if p.starts_with('/') => p.to_owned(),
            p => format!("/{p}"),
        };
        self
    }

    /// The user every token belongs to. Default: [`SampleUser::default`] (Alice).
    pub fn sample_user(mut self, user: SampleUser) -> Self {
        self.sample_user = user;
        self
    }

    /// The scopes the server advertises and grants. Default:
    /// `openid profile email read write`. The authorization endpoint rejects other scopes.
    pub fn scopes_supported<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes_supported = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The pre-registered confidential client, as used by a resource server for
    /// introspection and revocation (`client_secret_basic` or `client_secret_post`). It may
    /// also use the authorization-code flow with any loopback redirect URI, and the
    /// `client_credentials` grant. Default: `test-resource-server` / `test-secret`.
    pub fn client(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        self.client_id = client_id.into();
        self.client_secret = client_secret.into();
        self
    }

    /// The lifetime of issued tokens. Default: one hour.
    pub fn token_ttl(mut self, ttl: Duration) -> Self {
        self.token_ttl = ttl;
        self
    }

    /// The address to listen on. Default: `127.0.0.1:0` (a port chosen by the OS).
    /// An unspecified address (`0.0.0.0`) is advertised as `127.0.0.1`. A non-loopback
    /// address prints a loud warning on stderr and logs it as an error at
    /// [`start`](Self::start): the server gives tokens to anyone who reaches it.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// The algorithms whose keys are published in the JWKS, in this order. Default:
    /// `RS256`, `ES256`, `EdDSA` ([`DEFAULT_PUBLISHED_ALGS`](super::DEFAULT_PUBLISHED_ALGS)). Tokens can be signed
    /// with any [`JwsAlgorithm`]; one whose key is not published fails verification by `kid`.
    pub fn published_algs(mut self, algs: impl IntoIterator<Item = JwsAlgorithm>) -> Self {
        self.published_algs = algs.into_iter().collect();
        self
    }

    /// Generates the keys, binds the listener and starts serving in a background task of
    /// the current Tokio runtime.
    ///
    /// # Errors
    /// [`TestServerError::InvalidConfig`] for a bad issuer path,
    /// [`TestServerError::KeyGeneration`] if key generation fails, and
    /// [`TestServerError::Bind`] if the address cannot be bound.
    pub async fn start(self) -> Result<TestAuthServer, TestServerError> {
        TestAuthServer::start_with(self).await
    }

    pub(crate) fn validate(&self) -> Result<(), TestServerError> {
        let path = &self.issuer_path;
        let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~/".contains(c);
        let bad_segment = path
            .split('/')
            .skip(1)
            .any(|s| s.is_empty() || s == "." || s == "..");
        if !path.is_empty() && (!path.chars().all(allowed) || bad_segment) {
            return Err(TestServerError::InvalidConfig(format!(
                "bad issuer path {path:?}"
            )));
        }
        if self.client_id.is_empty() {
            return Err(TestServerError::InvalidConfig("empty client_id".into()));
        }
        Ok(())
    }
}
