//! [`ProtectedResource`] and [`McpAuthBuilder`]: the resource-server-mode configuration,
//! validated in [`McpAuthBuilder::build`].

use std::sync::{Arc, OnceLock};

use super::{McpAuth, Resource, validate_resolved};
use crate::discovery::AuthServer;
use crate::dpop::DpopConfig;
use crate::error::ConfigError;
use crate::metadata::{
    ProtectedResourceMetadata, ProtectedResourceMetadataBuilder, ServedDocument,
    protected_resource_metadata_path, protected_resource_metadata_url,
};

/// One protected resource (an MCP endpoint): its identifier, the authorization servers it
/// trusts, and the rest of its RFC 9728 metadata.
///
/// The published `authorization_servers` are always the issuers of the servers added with
/// [`authorization_server`](Self::authorization_server), in that order.
#[derive(Debug, Clone)]
#[must_use]
pub struct ProtectedResource {
    resource: String,
    servers: Vec<AuthServer>,
    metadata: ProtectedResourceMetadataBuilder,
    dpop: Option<DpopConfig>,
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
            dpop: None,
        }
    }

    /// Protects the resource with DPoP (RFC 9449): every guard made for it
    /// ([`McpAuth::bearer_auth`] and its siblings) checks DPoP proofs with `config` (as
    /// [`BearerAuthBuilder::dpop`](crate::BearerAuthBuilder::dpop) does), and the metadata
    /// publishes the same policy: `dpop_signing_alg_values_supported` (the allowed proof
    /// algorithms) and `dpop_bound_access_tokens_required` (whether `Bearer` is refused), so
    /// what clients read agrees with what the guards enforce. Default: no DPoP (both fields
    /// omitted; DPoP-bound tokens are refused as `Bearer`).
    ///
    /// ```
    /// use mcp_auth::dpop::DpopConfig;
    /// use mcp_auth::ProtectedResource;
    ///
    /// let resource = ProtectedResource::new("https://api.example.com/mcp")
    ///     .dpop(DpopConfig::builder().require(true).build()?);
    /// # let _ = resource;
    /// # Ok::<(), mcp_auth::ConfigError>(())
    /// ```
    pub fn dpop(mut self, config: DpopConfig) -> Self {
        self.metadata = self
            .metadata
            .dpop_signing_alg_values_supported(config.algorithms().iter().map(|a| a.as_str()))
            .dpop_bound_access_tokens_required(config.required());
        self.dpop = Some(config);
        self
    }

    /// Trusts the authorization server `server` (repeatable; at least one is required). Tokens
    /// from other issuers are refused.
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

/// Builder of an [`McpAuth`]: one or more [`ProtectedResource`]s.
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
    /// - [`ConfigError::MetadataPathTaken`]: two resources whose metadata would be served at
    ///   the same path (same path on different hosts): serve them from separate [`McpAuth`]s;
    /// - [`ConfigError::MetadataNotSerializable`]: a metadata value JSON cannot represent;
    /// - [`ConfigError::DerivedMetadataField`]: the metadata sets
    ///   `tls_client_certificate_bound_access_tokens`, which the guards decide;
    /// - [`ConfigError::Discovery`]: a server given with its metadata fails
    ///   [`validate_server_config`](crate::validate_server_config) (warnings are logged).
    ///   Servers discovered on first use are validated when they are first fetched.
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
                return Err(ConfigError::MetadataPathTaken {
                    first: other.resource.clone(),
                    second: configured.resource,
                    path: metadata_path,
                });
            }
            for server in &configured.servers {
                validate_resolved(server)?;
            }
            if metadata
                .tls_client_certificate_bound_access_tokens
                .is_some()
            {
                return Err(ConfigError::DerivedMetadataField {
                    resource: configured.resource,
                    field: "tls_client_certificate_bound_access_tokens",
                    advice: "it is derived from the guards: set \
                             `BearerAuthBuilder::client_certificates` on the resource's guard \
                             and the metadata says `true`",
                });
            }
            let document = match ServedDocument::new(metadata) {
                Ok(document) => Arc::new(document),
                Err(error) => {
                    return Err(ConfigError::MetadataNotSerializable {
                        resource: configured.resource,
                        reason: error.to_string(),
                    });
                }
            };
            resources.push(Resource {
                resource: configured.resource,
                metadata_url,
                metadata_path,
                document,
                servers: configured.servers,
                issuers,
                dpop: configured.dpop,
                jwt: OnceLock::new(),
            });
        }
        Ok(McpAuth {
            resources: Arc::from(resources),
        })
    }
}
