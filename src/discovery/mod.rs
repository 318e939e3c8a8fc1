//! Authorization-server discovery (RFC 8414 / OpenID Connect Discovery) and validation.
//!
//! - [`fetch_server_config`] fetches and parses an issuer's metadata, checking that the
//!   document names the same issuer;
//! - [`validate_server_config`] checks it fits MCP (authorization code + PKCE S256), with
//!   mcp-auth's codes;
//! - [`AuthServer`] is a trusted server whose metadata is resolved up front or discovered on
//!   first use, cached, and refreshed.

mod auth_server;
mod fetch;
mod validate;

pub(crate) use auth_server::log_warnings;
pub use auth_server::{
    AuthServer, DEFAULT_METADATA_REFRESH, DEFAULT_METADATA_RETRY, FIRST_METADATA_RETRY,
};
pub use fetch::{
    AuthServerConfig, AuthServerType, DiscoveryOptions, MetadataTransform, fetch_server_config,
    fetch_server_config_by_well_known_url, fetch_server_config_by_well_known_url_with_options,
    fetch_server_config_with_options, well_known_urls,
};
pub use validate::{
    AuthServerConfigErrorCode, AuthServerConfigWarningCode, AuthServerSuccessCode, ValidationIssue,
    ValidationResult, validate_server_config, validate_server_config_verbose,
};
