//! # mcp-auth
//!
//! Make an MCP (Model Context Protocol) server a proper OAuth 2.1 protected resource: the Rust
//! port of the [`mcp-auth`](https://mcp-auth.dev) libraries.
//!
//! - discover and validate an authorization server (RFC 8414 / OpenID Connect discovery):
//!   [`fetch_server_config`], [`validate_server_config`], [`AuthServer`];
//! - publish RFC 9728 protected-resource metadata: [`ProtectedResourceMetadata`];
//! - verify bearer tokens through the pluggable [`TokenVerifier`] trait and hand the
//!   verified [`AuthInfo`] to tool handlers;
//! - answer failures exactly as RFC 6750 and the MCP authorization specification say.
//!
//! Every outbound fetch goes through a bounded [`HttpClient`] (timeouts, size cap, https).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod auth_info;
pub mod bearer;
pub mod discovery;
mod error;
mod http_client;
pub mod integrations;
mod mcp_auth;
pub mod metadata;
pub mod tower;
pub mod verify;

#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testing;

pub use auth_info::AuthInfo;
pub use bearer::{BearerAuth, BearerAuthError, BearerRejection, ScopeHierarchy};
pub use discovery::{
    AuthServer, AuthServerConfig, AuthServerType, fetch_server_config,
    fetch_server_config_by_well_known_url, validate_server_config,
};
pub use error::{ConfigError, DiscoveryError, FetchError, MetadataError, VerifyError};
pub use http_client::{HttpClient, HttpClientBuilder};
pub use mcp_auth::{McpAuth, McpAuthBuilder, ProtectedResource};
pub use metadata::{
    AuthorizationServerMetadata, ProtectedResourceMetadata, protected_resource_metadata_url,
};
pub use tower::{BearerAuthLayer, BearerAuthService, MetadataService};
pub use verify::{
    IntrospectionVerifier, JwsAlgorithm, JwtVerifier, TokenVerifier, UserinfoVerifier,
};

// Compile the README's Rust snippets as doctests so they cannot rot.
#[cfg(all(doctest, feature = "axum"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
