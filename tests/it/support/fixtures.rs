//! Authorization-server fixtures for tests that need no network: metadata known in advance.

use mcp_auth::{AuthServer, AuthorizationServerMetadata};

/// The metadata of an authorization server at `issuer` that MCP accepts: authorization code
/// with PKCE `S256`, and dynamic client registration.
pub fn as_metadata(issuer: &str) -> AuthorizationServerMetadata {
    let mut metadata = AuthorizationServerMetadata::authorization_code(
        issuer,
        format!("{issuer}/authorize"),
        format!("{issuer}/token"),
    );
    metadata.registration_endpoint = Some(format!("{issuer}/register"));
    metadata
}

/// A trusted server at `issuer` whose metadata is [`as_metadata`]: nothing is fetched.
pub fn resolved(issuer: &str) -> AuthServer {
    AuthServer::from_metadata(as_metadata(issuer))
}
