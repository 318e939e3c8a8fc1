//! The metadata deserialisers and what runs on their output: RFC 8414 / OpenID Connect
//! authorization-server metadata (as discovery parses it: JSON, an object, then the typed
//! document, then MCP validation) and RFC 9728 protected-resource metadata, plus the URL
//! builders that take issuers and resource identifiers.
//!
//! Findings: a panic, or a document that does not survive serialise → deserialise unchanged.
//! The first byte picks the part; the rest is the document or the URL.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_auth::discovery::well_known_urls;
use mcp_auth::{
    AuthServerConfig, AuthServerType, AuthorizationServerMetadata, ProtectedResourceMetadata,
    protected_resource_metadata_url, validate_server_config,
};
use serde_json::Value;

fn authorization_server(body: &[u8], server_type: AuthServerType) {
    let Ok(raw) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    if !raw.is_object() {
        return;
    }
    let Ok(metadata) = serde_json::from_value::<AuthorizationServerMetadata>(raw) else {
        return;
    };
    let again: AuthorizationServerMetadata =
        serde_json::from_value(serde_json::to_value(&metadata).expect("metadata serialises"))
            .expect("serialised metadata deserialises");
    assert_eq!(again, metadata, "metadata changed in a round trip");
    let config = AuthServerConfig::new(metadata, server_type);
    let result = validate_server_config(&config);
    assert_eq!(result.is_valid, result.errors.is_empty());
}

fn protected_resource(body: &[u8]) {
    let Ok(metadata) = serde_json::from_slice::<ProtectedResourceMetadata>(body) else {
        return;
    };
    let again: ProtectedResourceMetadata =
        serde_json::from_value(serde_json::to_value(&metadata).expect("metadata serialises"))
            .expect("serialised metadata deserialises");
    assert_eq!(again, metadata, "metadata changed in a round trip");
}

fuzz_target!(|data: &[u8]| {
    let Some((selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 6 {
        0 => authorization_server(rest, AuthServerType::OAuth),
        1 => authorization_server(rest, AuthServerType::Oidc),
        2 => protected_resource(rest),
        part => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            match part {
                3 => drop(well_known_urls(text, AuthServerType::Auto)),
                4 => drop(well_known_urls(text, AuthServerType::OAuth)),
                _ => drop(protected_resource_metadata_url(text)),
            }
        }
    }
});
