//! [`McpAuth`]: the authorization configuration of an MCP server, and its builder.

use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::bearer::BearerAuth;
use crate::discovery::{AuthServer, AuthServerConfig, log_warnings, validate_server_config};
use crate::error::{ConfigError, DiscoveryError};
use crate::metadata::{
    ProtectedResourceMetadata, ProtectedResourceMetadataBuilder, protected_resource_metadata_path,
    protected_resource_metadata_url,
};
use crate::tower::MetadataService;
use crate::verify::{JwtVerifier, JwtVerifierBuilder, TokenVerifier};

/// One protected resource (an MCP endpoint) in resource-server mode: its identifier, the
/// authorization servers it trusts, and the rest of its RFC 9728 metadata.
///
/// The published `authorization_servers` are always the issuers of the servers added with
/// [`authorization_server`](Self::authorization_server), in that order.
#[derive(Debug, Clone)]
#[must_use]
pub struct ProtectedResource {
    resource: String,
    servers: Vec<AuthServer>,
    metadata: ProtectedResourceMetadataBuilder,
}

impl ProtectedResource {
    /// A resource identified by `resource`, kept byte-for-byte (it is the token audience and the
    /// `resource` served in the metadata; clients compare it with the URL they called).
    pub fn new(resource: impl Into<String>) -> Self {
        let resource = resource.into();
        Self {
            metadata: ProtectedResourceMetadata::builder(resource.clone()),
            resource,
            servers: Vec::new(),
        }
    }

    /// Adds a trusted authorization server (repeatable; at least one is required). Tokens from
    /// other issuers are refused.
    pub fn authorization_server(mut self, server: AuthServer) -> Self {
        self.servers.push(server);
        self
    }

    /// The scopes clients should request (`scopes_supported`). Default: omitted.
    pub fn scopes_supported(mut self, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.metadata = self.metadata.scopes_supported(scopes);
        self
    }

    /// A human-readable name (`resource_name`). Default: omitted.
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.metadata = self.metadata.resource_name(name);
        self
    }

    /// Sets any other RFC 9728 field (or an extension) through the metadata builder:
    ///
    /// ```
    /// # use mcp_auth::ProtectedResource;
    /// let resource = ProtectedResource::new("https://api.example.com/mcp")
    ///     .metadata(|m| m.resource_documentation("https://docs.example.com").extra("resource_name#it", "Esempio"));
    /// ```
    pub fn metadata(
        mut self,
        configure: impl FnOnce(ProtectedResourceMetadataBuilder) -> ProtectedResourceMetadataBuilder,
    ) -> Self {
        self.metadata = configure(self.metadata);
        self
    }
}

/// Builder of a resource-server-mode [`McpAuth`].
#[derive(Debug, Default)]
#[must_use]
pub struct McpAuthBuilder {
    resources: Vec<ProtectedResource>,
}

impl McpAuthBuilder {
    /// Adds a protected resource (repeatable).
    pub fn protected_resource(mut self, resource: ProtectedResource) -> Self {
        self.resources.push(resource);
        self
    }

    /// Validates the configuration.
    ///
    /// # Errors
    ///
    /// - [`ConfigError::Empty`]: no resource;
    /// - [`ConfigError::DuplicateResource`]: the same identifier twice;
    /// - [`ConfigError::DuplicateIssuer`]: the same issuer twice under one resource (the same
    ///   server under several resources is fine);
    /// - [`ConfigError::Metadata`]: the resource metadata is invalid (no authorization server,
    ///   a resource that is not an absolute https URL, ...);
    /// - [`ConfigError::Invalid`]: two resources whose metadata would be served at the same
    ///   path (same path on different hosts): serve them from separate [`McpAuth`]s;
    /// - [`ConfigError::Discovery`]: a server given with its metadata fails
    ///   [`validate_server_config`] (warnings are logged). Servers discovered on first use are
    ///   validated when they are first fetched.
    pub fn build(self) -> Result<McpAuth, ConfigError> {
        if self.resources.is_empty() {
            return Err(ConfigError::Empty);
        }
        let mut resources: Vec<Resource> = Vec::with_capacity(self.resources.len());
        for configured in self.resources {
            if resources.iter().any(|r| r.resource == configured.resource) {
                return Err(ConfigError::DuplicateResource {
                    resource: configured.resource,
                });
            }
            let mut issuers: Vec<String> = Vec::with_capacity(configured.servers.len());
            for server in &configured.servers {
                if issuers.iter().any(|issuer| issuer == server.issuer()) {
                    return Err(ConfigError::DuplicateIssuer {
                        resource: configured.resource,
                        issuer: server.issuer().to_owned(),
                    });
                }
                issuers.push(server.issuer().to_owned());
            }
            let metadata = configured
                .metadata
                .authorization_servers(issuers.clone())
                .build()?;
            let metadata_url = protected_resource_metadata_url(&configured.resource)?;
            let metadata_path = protected_resource_metadata_path(&configured.resource)?;
            if let Some(other) = resources.iter().find(|r| r.metadata_path == metadata_path) {
                return Err(ConfigError::Invalid(
                    format!(
                        "the protected resources `{}` and `{}` would both publish their metadata at \
                         `{metadata_path}`; configure them in separate McpAuth instances, each serving \
                         its own host",
                        other.resource, configured.resource
                    )
                    .into(),
                ));
            }
            for server in &configured.servers {
                validate_resolved(server)?;
            }
            let document = Bytes::from(serde_json::to_vec(&metadata).map_err(|e| {
                ConfigError::Invalid(format!("cannot serialise the resource metadata: {e}").into())
            })?);
            resources.push(Resource {
                resource: configured.resource,
                metadata,
                metadata_url,
                metadata_path,
                document,
                servers: configured.servers,
                issuers,
                jwt: OnceLock::new(),
            });
        }
        Ok(McpAuth {
            inner: Arc::new(Mode::ResourceServer { resources }),
        })
    }
}

/// The authorization configuration of an MCP server: trusted authorization servers, protected
/// resources and their metadata, in mcp-auth's two modes. Cheap to clone (an `Arc` inside);
/// `Send + Sync`.
///
/// - **Resource-server mode** (use this one; MCP 2025-06-18 and later): one or more
///   [`ProtectedResource`]s, each with its own trusted authorization servers and RFC 9728
///   metadata. [`McpAuth::bearer_auth`] gives the guard of one resource;
///   [`McpAuth::metadata_service`] serves every resource's metadata.
/// - **Authorization-server mode** (deprecated, as in mcp-auth; MCP 2025-03-26): one trusted
///   authorization server whose metadata is re-served at `/.well-known/oauth-authorization-server`.
///   See [`McpAuth::authorization_server`].
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
    inner: Arc<Mode>,
}

enum Mode {
    ResourceServer {
        resources: Vec<Resource>,
    },
    AuthorizationServer {
        server: AuthServer,
        jwt: OnceLock<JwtVerifier>,
    },
}

struct Resource {
    resource: String,
    metadata: ProtectedResourceMetadata,
    metadata_url: String,
    metadata_path: String,
    document: Bytes,
    servers: Vec<AuthServer>,
    issuers: Vec<String>,
    /// The resource's shared JWT verifier, built on first use.
    jwt: OnceLock<JwtVerifier>,
}

impl fmt::Debug for McpAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.inner {
            Mode::ResourceServer { resources } => f
                .debug_struct("McpAuth")
                .field("mode", &"resource server")
                .field(
                    "resources",
                    &resources.iter().map(|r| &r.metadata).collect::<Vec<_>>(),
                )
                .finish(),
            Mode::AuthorizationServer { server, .. } => f
                .debug_struct("McpAuth")
                .field("mode", &"authorization server (deprecated)")
                .field("server", server)
                .finish(),
        }
    }
}

impl McpAuth {
    /// Starts a resource-server-mode configuration.
    pub fn builder() -> McpAuthBuilder {
        McpAuthBuilder::default()
    }

    /// The deprecated authorization-server ("delegated") mode: one trusted authorization server
    /// whose metadata is re-served at `/.well-known/oauth-authorization-server` by
    /// [`metadata_service`](Self::metadata_service). This is the MCP 2025-03-26 arrangement;
    /// current clients look for protected-resource metadata instead. Logs a deprecation warning.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Discovery`] if the server's metadata is given and fails
    /// [`validate_server_config`] (which includes PKCE with `S256`; warnings are logged). A
    /// server discovered on first use is validated when first fetched, and its metadata is
    /// served only if it lists `S256` in `code_challenge_methods_supported`.
    #[deprecated(
        since = "0.1.0",
        note = "the authorization-server mode follows MCP 2025-03-26; use resource-server mode: \
                `McpAuth::builder().protected_resource(..)`"
    )]
    pub fn authorization_server(server: AuthServer) -> Result<Self, ConfigError> {
        tracing::warn!(
            "the authorization server mode is deprecated; please use resource server mode instead"
        );
        validate_resolved(&server)?;
        Ok(Self {
            inner: Arc::new(Mode::AuthorizationServer {
                server,
                jwt: OnceLock::new(),
            }),
        })
    }

    /// The bearer guard of `resource`, verifying tokens with `verifier`.
    ///
    /// The guard trusts the resource's authorization servers (also for custom verifiers: a token
    /// from another issuer is refused), accepts the resource identifier as audience, and points
    /// clients to the resource's metadata URL. Tune it with its builder methods
    /// ([`required_scopes`](BearerAuth::required_scopes), ...).
    ///
    /// In the authorization-server mode, `resource` may be `None`. When given, it becomes the
    /// accepted audience; challenges carry no `resource_metadata`, since this mode serves no
    /// protected-resource metadata. With `None`, the audience is not checked unless
    /// [`BearerAuth::audience`] is set.
    ///
    /// # Errors
    ///
    /// - [`ConfigError::UnknownResource`] naming `resource` if it is not configured;
    /// - [`ConfigError::WrongMode`] if `resource` is `None` in resource-server mode.
    pub fn bearer_auth<'r>(
        &self,
        resource: impl Into<Option<&'r str>>,
        verifier: impl TokenVerifier,
    ) -> Result<BearerAuth, ConfigError> {
        self.guard(resource.into(), Arc::new(verifier))
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
    /// let guard = auth.bearer_auth_jwt("https://api.example.com/mcp")?.required_scopes(["read"]);
    /// let layer = guard.layer(); // wrap the MCP service with it
    /// # let _ = layer;
    /// # Ok::<(), mcp_auth::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`bearer_auth`](Self::bearer_auth).
    pub fn bearer_auth_jwt<'r>(
        &self,
        resource: impl Into<Option<&'r str>>,
    ) -> Result<BearerAuth, ConfigError> {
        let resource = resource.into();
        let shared = match &*self.inner {
            Mode::ResourceServer { .. } => &self.resource_entry(resource)?.jwt,
            Mode::AuthorizationServer { jwt, .. } => jwt,
        };
        let verifier = match shared.get() {
            Some(verifier) => verifier.clone(),
            None => {
                let built = self.jwt_verifier(resource, |builder| builder)?;
                shared.get_or_init(|| built).clone()
            }
        };
        self.guard(resource, Arc::new(verifier))
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
    /// let guard = auth.bearer_auth_jwt_with("https://api.example.com/mcp", |jwt| {
    ///     jwt.strict_rfc9068(true).leeway(Duration::from_secs(10))
    /// })?;
    /// # let _ = guard;
    /// # Ok::<(), mcp_auth::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`bearer_auth`](Self::bearer_auth), and the [`ConfigError`] with which
    /// [`JwtVerifierBuilder::build`] refuses a verifier setting.
    pub fn bearer_auth_jwt_with<'r>(
        &self,
        resource: impl Into<Option<&'r str>>,
        configure: impl FnOnce(JwtVerifierBuilder) -> JwtVerifierBuilder,
    ) -> Result<BearerAuth, ConfigError> {
        let resource = resource.into();
        let verifier = self.jwt_verifier(resource, configure)?;
        self.guard(resource, Arc::new(verifier))
    }

    fn jwt_verifier(
        &self,
        resource: Option<&str>,
        configure: impl FnOnce(JwtVerifierBuilder) -> JwtVerifierBuilder,
    ) -> Result<JwtVerifier, ConfigError> {
        let builder = self.authorization_servers(resource)?.iter().cloned().fold(
            JwtVerifier::builder(),
            JwtVerifierBuilder::authorization_server,
        );
        configure(builder).build()
    }

    /// The guard of `resource` (see [`bearer_auth`](Self::bearer_auth)) with any verifier.
    pub(crate) fn guard(
        &self,
        resource: Option<&str>,
        verifier: Arc<dyn TokenVerifier>,
    ) -> Result<BearerAuth, ConfigError> {
        match &*self.inner {
            Mode::ResourceServer { .. } => {
                let entry = self.resource_entry(resource)?;
                Ok(BearerAuth::new(
                    verifier,
                    entry.issuers.clone(),
                    Some(entry.resource.clone()),
                    Some(entry.metadata_url.clone()),
                ))
            }
            Mode::AuthorizationServer { server, .. } => Ok(BearerAuth::new(
                verifier,
                vec![server.issuer().to_owned()],
                resource.map(str::to_owned),
                None,
            )),
        }
    }

    fn resource_entry(&self, resource: Option<&str>) -> Result<&Resource, ConfigError> {
        let Mode::ResourceServer { resources } = &*self.inner else {
            return Err(ConfigError::WrongMode(
                "protected resources exist only in resource server mode".into(),
            ));
        };
        let Some(resource) = resource else {
            return Err(ConfigError::WrongMode(
                "a resource must be given in resource server mode: pass the identifier of one of \
                 the configured protected resources"
                    .into(),
            ));
        };
        resources
            .iter()
            .find(|r| r.resource == resource)
            .ok_or_else(|| ConfigError::UnknownResource {
                resource: resource.to_owned(),
                configured: resources.iter().map(|r| r.resource.clone()).collect(),
            })
    }

    /// The trusted authorization servers of `resource` (resource-server mode) or the single
    /// server (authorization-server mode, where `resource` is ignored). For building verifiers.
    ///
    /// # Errors
    ///
    /// As [`bearer_auth`](Self::bearer_auth).
    pub fn authorization_servers<'r>(
        &self,
        resource: impl Into<Option<&'r str>>,
    ) -> Result<&[AuthServer], ConfigError> {
        match &*self.inner {
            Mode::ResourceServer { .. } => Ok(&self.resource_entry(resource.into())?.servers),
            Mode::AuthorizationServer { server, .. } => Ok(std::slice::from_ref(server)),
        }
    }

    /// The configured resource identifiers, in order (none in authorization-server mode).
    pub fn resources(&self) -> impl Iterator<Item = &str> {
        let resources: &[Resource] = match &*self.inner {
            Mode::ResourceServer { resources } => resources,
            Mode::AuthorizationServer { .. } => &[],
        };
        resources.iter().map(|r| r.resource.as_str())
    }

    /// The RFC 9728 metadata of `resource`, as served.
    pub fn protected_resource_metadata(
        &self,
        resource: &str,
    ) -> Option<&ProtectedResourceMetadata> {
        self.resource_entry(Some(resource))
            .ok()
            .map(|r| &r.metadata)
    }

    /// Whether this is the deprecated authorization-server mode.
    pub fn is_authorization_server_mode(&self) -> bool {
        matches!(&*self.inner, Mode::AuthorizationServer { .. })
    }

    /// The well-known metadata endpoints: every resource's RFC 9728 document, or in
    /// authorization-server mode the server's RFC 8414 document. Serve it without a token.
    pub fn metadata_service(&self) -> MetadataService {
        match &*self.inner {
            Mode::ResourceServer { resources } => MetadataService::new(
                resources
                    .iter()
                    .map(|r| (r.metadata_path.clone(), r.document.clone()))
                    .collect(),
                None,
            ),
            Mode::AuthorizationServer { server, .. } => {
                MetadataService::new(Vec::new(), Some(server.clone()))
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}

    #[test]
    fn public_types_are_send_sync_and_cheap_to_clone() {
        assert_send_sync_clone::<McpAuth>();
        assert_send_sync_clone::<BearerAuth>();
        assert_send_sync_clone::<MetadataService>();
        assert_send_sync_clone::<crate::tower::BearerAuthLayer>();
    }
}
