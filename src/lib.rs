#![doc = include_str!("lib.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// No panics on input: library code handles every failure (tests may unwrap).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::string_slice,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

#[cfg(test)]
mod assertions;
mod auth_info;
mod backoff;
pub mod bearer;
pub mod discovery;
pub mod dpop;
mod error;
pub mod exchange;
pub mod fuzz_api;
mod http_client;
pub mod integrations;
mod mcp_auth;
pub mod metadata;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
#[cfg(not(feature = "metrics"))]
mod metrics;
pub mod mtls;
pub mod scope;
pub mod store;
mod time;
pub mod tower;
pub mod verify;

#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testing;

pub use auth_info::{AuthInfo, CredentialKind, TokenBinding};
pub use bearer::{BearerAuth, BearerAuthBuilder, BearerAuthError, BearerRejection};
pub use discovery::{
    AuthServer, AuthServerConfig, AuthServerType, fetch_server_config,
    fetch_server_config_by_well_known_url, validate_server_config,
};
pub use error::{ConfigError, DiscoveryError, FetchError, MetadataError, VerifyError};
pub use http_client::{HttpClient, HttpClientBuilder};
#[allow(deprecated)]
pub use mcp_auth::DelegatedAuth;
pub use mcp_auth::{McpAuth, McpAuthBuilder, ProtectedResource};
pub use metadata::{
    AuthorizationServerMetadata, ProtectedResourceMetadata, protected_resource_metadata_url,
};
pub use scope::ScopeHierarchy;
pub use tower::{BearerAuthLayer, BearerAuthService, MetadataService};
pub use verify::{
    IntrospectionVerifier, JwsAlgorithm, JwtVerifier, TokenVerifier, UserinfoVerifier,
};

// Compile the README's Rust snippets as doctests so they cannot rot.
#[cfg(all(doctest, feature = "axum"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

// Compile the provider recipes' and the migration guide's Rust snippets as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/providers/README.md")]
struct ProviderRecipesDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/providers/logto.md")]
struct LogtoRecipeDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/providers/auth0.md")]
struct Auth0RecipeDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/providers/keycloak.md")]
struct KeycloakRecipeDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/providers/entra-id.md")]
struct EntraIdRecipeDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/providers/okta.md")]
struct OktaRecipeDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/providers/node-oidc-provider.md")]
struct NodeOidcProviderRecipeDoctests;
#[cfg(all(doctest, feature = "axum", feature = "actix-web", feature = "rmcp"))]
#[doc = include_str!("../docs/migrating-from-mcp-auth.md")]
struct MigrationGuideDoctests;
