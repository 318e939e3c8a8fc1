//! [`McpAuth`]: the authorization configuration of an MCP server (resource-server mode), its
//! builder, and the deprecated authorization-server mode, [`DelegatedAuth`].

mod builder;
mod delegated;

use std::fmt;
use std::sync::{Arc, OnceLock};

pub use builder::{McpAuthBuilder, ProtectedResource};
#[allow(deprecated)]
pub use delegated::DelegatedAuth;

use crate::bearer::{BearerAuthBuilder, Target};
use crate::discovery::{AuthServer, AuthServerConfig, log_warnings, validate_server_config};
use crate::error::{ConfigError, DiscoveryError};
use crate::metadata::{ProtectedResourceMetadata, ServedDocument};
use crate::tower::MetadataService;
use crate::verify::{JwtVerifier, JwtVerifierBuilder, TokenVerifier};

/// The authorization configuration of an MCP server: its protected resources, each with its
/// own trusted authorization servers and RFC 9728 metadata (mcp-auth's resource-server mode,
/// MCP 2025-06-18 and later). Cheap to clone (an `Arc` inside); `Send + Sync`.
///
/// [`McpAuth::bearer_auth`] (and [`bearer_auth_jwt`](Self::bearer_auth_jwt)) gives the guard
/// of one resource; [`McpAuth::metadata_service`] serves every resource's metadata. The
/// deprecated authorization-server mode (MCP 2025-03-26) is its own type, [`DelegatedAuth`].
///
/// ```
/// use mcp_auth::{AuthServer, AuthServerType, McpAuth, ProtectedResource};
///
/// let auth = McpAuth::builder()
///     .protected_resource(
///         ProtectedResource::new("https://api.example.com/mcp")
///             .authorization_server(AuthServer::discover("https://tenant.logto.app/oidc", AuthServerType::Oidc))
///             .scopes_supported(["read", "write"])
///             .resource_name("Example MCP server"),
///     )
///     .build()?;
/// assert_eq!(auth.resources().collect::<Vec<_>>(), ["https://api.example.com/mcp"]);
/// assert_eq!(
///     auth.metadata_service().paths().collect::<Vec<_>>(),
///     ["/.well-known/oauth-protected-resource/mcp"]
/// );
/// # Ok::<(), mcp_auth::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct McpAuth {
    resources: Arc<[Resource]>,
}

struct Resource {
    resource: String,
    metadata_url: String,
    metadata_path: String,
    /// The metadata as served (its derived fields follow the guards).
    document: Arc<ServedDocument>,
    servers: Vec<AuthServer>,
    issuers: Vec<String>,
    /// DPoP for every guard of the resource ([`ProtectedResource::dpop`]).
    dpop: Option<crate::dpop::DpopConfig>,
    /// The resource's shared JWT verifier, built on first use.
    jwt: OnceLock<JwtVerifier>,
}

impl fmt::Debug for McpAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpAuth")
            .field(
                "resources",
                &self
                    .resources
                    .iter()
                    .map(|r| r.document.metadata())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl McpAuth {
    /// Starts a configuration.
    pub fn builder() -> McpAuthBuilder {
        McpAuthBuilder::default()
    }

    /// The bearer guard of `resource`, verifying tokens with `verifier`: set it up with the
    /// returned builder, then [`build`](BearerAuthBuilder::build) it.
    ///
    /// The guard trusts the resource's authorization servers (also for custom verifiers: a token
    /// from another issuer is refused), accepts the resource identifier as audience, and points
    /// clients to the resource's metadata URL.
    ///
    /// ```
    /// use mcp_auth::{AuthInfo, AuthServer, AuthorizationServerMetadata, McpAuth, ProtectedResource, VerifyError};
    ///
    /// let as_metadata = AuthorizationServerMetadata::authorization_code(
    ///     "https://auth.example.com",
    ///     "https://auth.example.com/authorize",
    ///     "https://auth.example.com/token",
    /// );
    /// let auth = McpAuth::builder()
    ///     .protected_resource(
    ///         ProtectedResource::new("https://api.example.com/mcp")
    ///             .authorization_server(AuthServer::from_metadata(as_metadata)),
    ///     )
    ///     .build()?;
    /// let guard = auth
    ///     .bearer_auth("https://api.example.com/mcp", |token: String| async move {
    ///         Err::<AuthInfo, _>(VerifyError::invalid_token("this example accepts nothing"))
    ///     })
    ///     .build()?;
    /// assert_eq!(guard.trusted_issuers(), ["https://auth.example.com"]);
    /// # Ok::<(), mcp_auth::ConfigError>(())
    /// ```
    ///
    /// [`build`](BearerAuthBuilder::build) reports [`ConfigError::UnknownResource`], naming
    /// `resource` and the configured ones, if `resource` is not configured (compared byte for
    /// byte), besides its own errors.
    pub fn bearer_auth(&self, resource: &str, verifier: impl TokenVerifier) -> BearerAuthBuilder {
        self.guard(resource, |_| Ok(Arc::new(verifier)))
    }

    /// The bearer guard of `resource` with the built-in [`JwtVerifier`] (mcp-auth's `'jwt'`
    /// mode): keys come from the `jwks_uri` of each of the resource's authorization servers.
    ///
    /// Every guard of one resource shares one verifier and therefore one JWKS cache, as in
    /// mcp-auth. The verifier uses its documented defaults (asymmetric algorithms, 60 s leeway,
    /// RFC 9068 strict profile off, verified-token cache on with 10 000 entries for at most
    /// 60 s); use [`bearer_auth_jwt_with`](Self::bearer_auth_jwt_with) to change them.
    ///
    /// ```
    /// use mcp_auth::{AuthServer, AuthServerType, McpAuth, ProtectedResource};
    ///
    /// let auth = McpAuth::builder()
    ///     .protected_resource(
    ///         ProtectedResource::new("https://api.example.com/mcp")
    ///             .authorization_server(AuthServer::discover("https://auth.example.com", AuthServerType::Oidc)),
    ///     )
    ///     .build()?;
    /// let guard = auth
    ///     .bearer_auth_jwt("https://api.example.com/mcp")
    ///     .required_scopes(["read"])
    ///     .build()?;
    /// let layer = guard.layer(); // wrap the MCP service with it
    /// # let _ = layer;
    /// # Ok::<(), mcp_auth::ConfigError>(())
    /// ```
    ///
    /// [`build`](BearerAuthBuilder::build) reports the errors of
    /// [`bearer_auth`](Self::bearer_auth).
    pub fn bearer_auth_jwt(&self, resource: &str) -> BearerAuthBuilder {
        self.guard(resource, |entry| {
            shared_jwt_verifier(&entry.jwt, &entry.servers).map(|v| Arc::new(v) as _)
        })
    }

    /// Like [`bearer_auth_jwt`](Self::bearer_auth_jwt), with a [`JwtVerifier`] configured by
    /// `configure` (leeway, algorithms, strict RFC 9068 profile, JWKS cache tuning). The
    /// resource's authorization servers are already added. This verifier has its own JWKS cache.
    ///
    /// ```
    /// use std::time::Duration;
    /// use mcp_auth::{AuthServer, AuthServerType, McpAuth, ProtectedResource};
    ///
    /// # let auth = McpAuth::builder()
    /// #     .protected_resource(
    /// #         ProtectedResource::new("https://api.example.com/mcp")
    /// #             .authorization_server(AuthServer::discover("https://auth.example.com", AuthServerType::Oidc)),
    /// #     )
    /// #     .build()?;
    /// let guard = auth
    ///     .bearer_auth_jwt_with("https://api.example.com/mcp", |jwt| {
    ///         jwt.strict_rfc9068(true).leeway(Duration::from_secs(10))
    ///     })
    ///     .build()?;
    /// # let _ = guard;
    /// # Ok::<(), mcp_auth::ConfigError>(())
    /// ```
    ///
    /// [`build`](BearerAuthBuilder::build) reports the errors of
    /// [`bearer_auth`](Self::bearer_auth), and the [`ConfigError`] with which
    /// [`JwtVerifierBuilder::build`] refuses a verifier setting.
    pub fn bearer_auth_jwt_with(
        &self,
        resource: &str,
        configure: impl FnOnce(JwtVerifierBuilder) -> JwtVerifierBuilder,
    ) -> BearerAuthBuilder {
        self.guard(resource, |entry| {
            jwt_verifier(&entry.servers, configure).map(|v| Arc::new(v) as _)
        })
    }

    /// The guard builder of `resource` with the verifier `verifier` makes for it.
    fn guard(
        &self,
        resource: &str,
        verifier: impl FnOnce(&Resource) -> Result<Arc<dyn TokenVerifier>, ConfigError>,
    ) -> BearerAuthBuilder {
        let entry = self.resource_entry(resource);
        let dpop = entry.as_ref().ok().and_then(|entry| entry.dpop.clone());
        let target = entry.and_then(|entry| {
            Ok(Target {
                verifier: verifier(entry)?,
                trusted_issuers: entry.issuers.clone(),
                resource: Some(entry.resource.clone()),
                resource_metadata_url: Some(entry.metadata_url.clone()),
                document: Some(Arc::clone(&entry.document)),
            })
        });
        let guard = BearerAuthBuilder::new(target);
        match dpop {
            Some(config) => guard.dpop(config),
            None => guard,
        }
    }

    fn resource_entry(&self, resource: &str) -> Result<&Resource, ConfigError> {
        self.resources
            .iter()
            .find(|r| r.resource == resource)
            .ok_or_else(|| ConfigError::UnknownResource {
                resource: resource.to_owned(),
                configured: self.resources.iter().map(|r| r.resource.clone()).collect(),
            })
    }

    /// The authorization servers `resource` trusts, in the order configured: for building
    /// verifiers of your own.
    ///
    /// ```
    /// # use mcp_auth::{AuthServer, AuthServerType, McpAuth, ProtectedResource};
    /// # let auth = McpAuth::builder()
    /// #     .protected_resource(
    /// #         ProtectedResource::new("https://api.example.com/mcp")
    /// #             .authorization_server(AuthServer::discover("https://auth.example.com", AuthServerType::Oidc)),
    /// #     )
    /// #     .build()?;
    /// let servers = auth.trusted_servers("https://api.example.com/mcp")?;
    /// assert_eq!(servers[0].issuer(), "https://auth.example.com");
    /// # Ok::<(), mcp_auth::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownResource`] if `resource` is not configured.
    pub fn trusted_servers(&self, resource: &str) -> Result<&[AuthServer], ConfigError> {
        Ok(&self.resource_entry(resource)?.servers)
    }

    /// The configured resource identifiers, in order.
    pub fn resources(&self) -> impl Iterator<Item = &str> {
        self.resources.iter().map(|r| r.resource.as_str())
    }

    /// The RFC 9728 metadata of `resource`, as served now: with
    /// `tls_client_certificate_bound_access_tokens: true` once a guard of the resource was
    /// built with [`client_certificates`](BearerAuthBuilder::client_certificates).
    pub fn protected_resource_metadata(
        &self,
        resource: &str,
    ) -> Option<&ProtectedResourceMetadata> {
        self.resource_entry(resource)
            .ok()
            .map(|r| r.document.metadata())
    }

    /// The well-known metadata endpoints: every resource's RFC 9728 document. Serve it
    /// without a token.
    pub fn metadata_service(&self) -> MetadataService {
        MetadataService::new(
            self.resources
                .iter()
                .map(|r| (r.metadata_path.clone(), Arc::clone(&r.document)))
                .collect(),
            None,
        )
    }
}

/// The JWT verifier shared by every guard of one resource (or of the delegated server), built
/// the first time a guard asks for it.
fn shared_jwt_verifier(
    shared: &OnceLock<JwtVerifier>,
    servers: &[AuthServer],
) -> Result<JwtVerifier, ConfigError> {
    if let Some(verifier) = shared.get() {
        return Ok(verifier.clone());
    }
    let built = jwt_verifier(servers, |builder| builder)?;
    Ok(shared.get_or_init(|| built).clone())
}

/// A JWT verifier trusting `servers`, with the settings of `configure`.
fn jwt_verifier(
    servers: &[AuthServer],
    configure: impl FnOnce(JwtVerifierBuilder) -> JwtVerifierBuilder,
) -> Result<JwtVerifier, ConfigError> {
    let builder = servers.iter().cloned().fold(
        JwtVerifier::builder(),
        JwtVerifierBuilder::authorization_server,
    );
    configure(builder).build()
}

/// Validates a server whose metadata is known now; discovered ones are validated when fetched.
fn validate_resolved(server: &AuthServer) -> Result<(), ConfigError> {
    if !server.is_resolved() {
        return Ok(());
    }
    let Some(metadata) = server.cached_metadata() else {
        return Ok(());
    };
    let result = validate_server_config(&AuthServerConfig::new(
        (*metadata).clone(),
        server.server_type(),
    ));
    if !result.is_valid {
        return Err(ConfigError::Discovery(DiscoveryError::Invalid {
            issuer: server.issuer().to_owned(),
            result,
        }));
    }
    log_warnings(server.issuer(), &result);
    Ok(())
}
