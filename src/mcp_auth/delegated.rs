//! [`DelegatedAuth`]: mcp-auth's deprecated authorization-server ("delegated") mode.
#![allow(deprecated)] // The type is deprecated for users; its own code must still name it.

use std::fmt;
use std::sync::{Arc, OnceLock};

use super::{jwt_verifier, shared_jwt_verifier, validate_resolved};
use crate::bearer::{BearerAuthBuilder, Target};
use crate::discovery::AuthServer;
use crate::error::ConfigError;
use crate::tower::MetadataService;
use crate::verify::{JwtVerifier, JwtVerifierBuilder, TokenVerifier};

/// mcp-auth's **authorization-server mode** (deprecated; MCP 2025-03-26): one trusted
/// authorization server whose RFC 8414 metadata the MCP server re-serves at
/// `/.well-known/oauth-authorization-server`, for clients that only speak that revision.
/// Current clients look for protected-resource metadata instead: use [`McpAuth`](crate::McpAuth)
/// (resource-server mode).
///
/// Guards made here trust the one server and publish no `resource_metadata` (this mode serves
/// no protected-resource metadata). Token audiences are not checked unless the guard is given
/// one with [`audience`](BearerAuthBuilder::audience); MCP requires the check, so give it.
/// Cheap to clone; `Send + Sync`.
///
/// ```
/// # #![allow(deprecated)]
/// use mcp_auth::{AuthServer, AuthServerType, DelegatedAuth};
///
/// let auth = DelegatedAuth::new(AuthServer::discover("https://auth.example.com", AuthServerType::Oidc))?;
/// let guard = auth
///     .bearer_auth_jwt()
///     .audience(["https://api.example.com/mcp"])
///     .build()?;
/// assert_eq!(guard.trusted_issuers(), ["https://auth.example.com"]);
/// assert_eq!(
///     auth.metadata_service().paths().collect::<Vec<_>>(),
///     ["/.well-known/oauth-authorization-server"]
/// );
/// # Ok::<(), mcp_auth::ConfigError>(())
/// ```
#[deprecated(
    since = "0.1.0",
    note = "the authorization-server mode follows MCP 2025-03-26; use resource-server mode: \
            `McpAuth::builder().protected_resource(..)`"
)]
#[derive(Clone)]
pub struct DelegatedAuth {
    inner: Arc<Delegated>,
}

struct Delegated {
    server: AuthServer,
    /// The shared JWT verifier, built on first use.
    jwt: OnceLock<JwtVerifier>,
}

impl fmt::Debug for DelegatedAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DelegatedAuth")
            .field("server", &self.inner.server)
            .finish_non_exhaustive()
    }
}

impl DelegatedAuth {
    /// The authorization-server mode for `server`. Logs a deprecation warning.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Discovery`] if the server's metadata is given and fails
    /// [`validate_server_config`](crate::validate_server_config) (which includes PKCE with
    /// `S256`; warnings are logged). A server discovered on first use is validated when first
    /// fetched, and its metadata is served only if it lists `S256` in
    /// `code_challenge_methods_supported`.
    pub fn new(server: AuthServer) -> Result<Self, ConfigError> {
        tracing::warn!(
            "the authorization server mode is deprecated; please use resource server mode instead"
        );
        validate_resolved(&server)?;
        Ok(Self {
            inner: Arc::new(Delegated {
                server,
                jwt: OnceLock::new(),
            }),
        })
    }

    /// The trusted authorization server.
    pub fn server(&self) -> &AuthServer {
        &self.inner.server
    }

    /// A bearer guard trusting the server, verifying tokens with `verifier`. Set the accepted
    /// audience with [`audience`](BearerAuthBuilder::audience).
    pub fn bearer_auth(&self, verifier: impl TokenVerifier) -> BearerAuthBuilder {
        self.guard(Ok(Arc::new(verifier)))
    }

    /// A bearer guard with the built-in [`JwtVerifier`], keys from the server's `jwks_uri`.
    /// Every such guard shares one verifier (one JWKS cache).
    pub fn bearer_auth_jwt(&self) -> BearerAuthBuilder {
        let verifier =
            shared_jwt_verifier(&self.inner.jwt, std::slice::from_ref(&self.inner.server));
        self.guard(verifier.map(|v| Arc::new(v) as _))
    }

    /// Like [`bearer_auth_jwt`](Self::bearer_auth_jwt), with a [`JwtVerifier`] configured by
    /// `configure` (the server is already added); it has its own JWKS cache.
    /// [`build`](BearerAuthBuilder::build) reports the [`ConfigError`] with which
    /// [`JwtVerifierBuilder::build`] refuses a setting.
    pub fn bearer_auth_jwt_with(
        &self,
        configure: impl FnOnce(JwtVerifierBuilder) -> JwtVerifierBuilder,
    ) -> BearerAuthBuilder {
        let verifier = jwt_verifier(std::slice::from_ref(&self.inner.server), configure);
        self.guard(verifier.map(|v| Arc::new(v) as _))
    }

    fn guard(&self, verifier: Result<Arc<dyn TokenVerifier>, ConfigError>) -> BearerAuthBuilder {
        BearerAuthBuilder::new(verifier.map(|verifier| Target {
            verifier,
            trusted_issuers: vec![self.inner.server.issuer().to_owned()],
            resource: None,
            resource_metadata_url: None,
            document: None,
        }))
    }

    /// The server's RFC 8414 metadata at `/.well-known/oauth-authorization-server`,
    /// discovered on the first request if needed. Serve it without a token.
    pub fn metadata_service(&self) -> MetadataService {
        MetadataService::new(Vec::new(), Some(self.inner.server.clone()))
    }
}
