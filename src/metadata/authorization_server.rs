//! RFC 8414 authorization-server metadata (and the OpenID Connect discovery fields we use).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Authorization-server metadata: every RFC 8414 §2 field, the OpenID Connect Discovery fields
/// this crate uses, and every other field kept as-is in [`extra`](Self::extra).
///
/// Keys are snake_case on the wire. Absent fields stay absent when serialised, and unknown
/// fields survive a round trip, so re-serving a discovered document loses nothing.
///
/// The four fields mcp-auth requires (`issuer`, `authorization_endpoint`, `token_endpoint`,
/// `response_types_supported`) are required here too: a document without them does not parse.
///
/// ```
/// use mcp_auth::AuthorizationServerMetadata;
///
/// let doc = r#"{
///   "issuer": "https://auth.example.com",
///   "authorization_endpoint": "https://auth.example.com/authorize",
///   "token_endpoint": "https://auth.example.com/token",
///   "response_types_supported": ["code"],
///   "code_challenge_methods_supported": ["S256"],
///   "x_vendor_field": 42
/// }"#;
/// let metadata: AuthorizationServerMetadata = serde_json::from_str(doc)?;
/// assert_eq!(metadata.issuer, "https://auth.example.com");
/// assert_eq!(metadata.extra["x_vendor_field"], 42);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuthorizationServerMetadata {
    /// The issuer identifier (an https URL without query or fragment).
    pub issuer: String,
    /// URL of the authorization endpoint.
    pub authorization_endpoint: String,
    /// URL of the token endpoint.
    pub token_endpoint: String,
    /// URL of the JSON Web Key Set used to verify signed tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// URL of the dynamic client registration endpoint (RFC 7591).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// Scopes the server supports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    /// `response_type` values supported (each may be space-separated, e.g. `"code id_token"`).
    pub response_types_supported: Vec<String>,
    /// `response_mode` values supported. Absent means `["query", "fragment"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_modes_supported: Option<Vec<String>>,
    /// Grant types supported. Absent means `["authorization_code", "implicit"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types_supported: Option<Vec<String>>,
    /// Client authentication methods at the token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// JWS algorithms for `private_key_jwt`/`client_secret_jwt` at the token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
    /// URL of human-readable documentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_documentation: Option<String>,
    /// Languages supported for the user interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ui_locales_supported: Option<Vec<String>>,
    /// URL of the policy on data use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_policy_uri: Option<String>,
    /// URL of the terms of service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_tos_uri: Option<String>,
    /// URL of the revocation endpoint (RFC 7009).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// Client authentication methods at the revocation endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// JWS algorithms for client authentication at the revocation endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
    /// URL of the introspection endpoint (RFC 7662).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    /// Client authentication methods at the introspection endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// JWS algorithms for client authentication at the introspection endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
    /// PKCE code challenge methods supported. MCP requires `S256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// Signed metadata JWT (RFC 8414 §2.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_metadata: Option<String>,
    /// OpenID Connect: URL of the userinfo endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    /// OpenID Connect: URL of the end-session endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<String>,
    /// OpenID Connect: subject identifier types supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_types_supported: Option<Vec<String>>,
    /// OpenID Connect: ID token signing algorithms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_signing_alg_values_supported: Option<Vec<String>>,
    /// OpenID Connect: claims the server can supply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims_supported: Option<Vec<String>>,
    /// RFC 9207: whether the `iss` authorization response parameter is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_response_iss_parameter_supported: Option<bool>,
    /// MCP: whether Client ID Metadata Documents are supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id_metadata_document_supported: Option<bool>,
    /// Every other field of the document, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AuthorizationServerMetadata {
    /// A document with the four required fields and nothing else.
    ///
    /// ```
    /// use mcp_auth::AuthorizationServerMetadata;
    ///
    /// let mut metadata = AuthorizationServerMetadata::new(
    ///     "https://auth.example.com",
    ///     "https://auth.example.com/authorize",
    ///     "https://auth.example.com/token",
    ///     ["code"],
    /// );
    /// metadata.code_challenge_methods_supported = Some(vec!["S256".into()]);
    /// ```
    pub fn new(
        issuer: impl Into<String>,
        authorization_endpoint: impl Into<String>,
        token_endpoint: impl Into<String>,
        response_types_supported: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            authorization_endpoint: authorization_endpoint.into(),
            token_endpoint: token_endpoint.into(),
            jwks_uri: None,
            registration_endpoint: None,
            scopes_supported: None,
            response_types_supported: response_types_supported
                .into_iter()
                .map(Into::into)
                .collect(),
            response_modes_supported: None,
            grant_types_supported: None,
            token_endpoint_auth_methods_supported: None,
            token_endpoint_auth_signing_alg_values_supported: None,
            service_documentation: None,
            ui_locales_supported: None,
            op_policy_uri: None,
            op_tos_uri: None,
            revocation_endpoint: None,
            revocation_endpoint_auth_methods_supported: None,
            revocation_endpoint_auth_signing_alg_values_supported: None,
            introspection_endpoint: None,
            introspection_endpoint_auth_methods_supported: None,
            introspection_endpoint_auth_signing_alg_values_supported: None,
            code_challenge_methods_supported: None,
            signed_metadata: None,
            userinfo_endpoint: None,
            end_session_endpoint: None,
            subject_types_supported: None,
            id_token_signing_alg_values_supported: None,
            claims_supported: None,
            authorization_response_iss_parameter_supported: None,
            client_id_metadata_document_supported: None,
            extra: Map::new(),
        }
    }

    /// The smallest document an MCP client can use: the authorization-code flow with PKCE
    /// `S256`, which MCP requires (`response_types_supported: ["code"]`,
    /// `code_challenge_methods_supported: ["S256"]`). Add the rest (`jwks_uri`,
    /// `registration_endpoint`, ...) through the public fields.
    ///
    /// This is the document to give [`AuthServer::from_metadata`](crate::AuthServer::from_metadata)
    /// when the authorization server's metadata is known in advance, and what tests usually need.
    ///
    /// ```
    /// use mcp_auth::{AuthServerConfig, AuthServerType, AuthorizationServerMetadata, validate_server_config};
    ///
    /// let mut metadata = AuthorizationServerMetadata::authorization_code(
    ///     "https://auth.example.com",
    ///     "https://auth.example.com/authorize",
    ///     "https://auth.example.com/token",
    /// );
    /// metadata.jwks_uri = Some("https://auth.example.com/jwks".into());
    /// let result = validate_server_config(&AuthServerConfig::new(metadata, AuthServerType::OAuth));
    /// assert!(result.is_valid);
    /// ```
    pub fn authorization_code(
        issuer: impl Into<String>,
        authorization_endpoint: impl Into<String>,
        token_endpoint: impl Into<String>,
    ) -> Self {
        let mut metadata = Self::new(issuer, authorization_endpoint, token_endpoint, ["code"]);
        metadata.code_challenge_methods_supported = Some(vec!["S256".to_owned()]);
        metadata
    }

    /// The grant types in effect: the listed ones, or RFC 8414's default
    /// `["authorization_code", "implicit"]` when the field is absent.
    pub fn effective_grant_types(&self) -> Vec<&str> {
        match &self.grant_types_supported {
            Some(list) => list.iter().map(String::as_str).collect(),
            None => vec!["authorization_code", "implicit"],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let doc = serde_json::json!({
            "issuer": "https://a.example",
            "authorization_endpoint": "https://a.example/auth",
            "token_endpoint": "https://a.example/token",
            "response_types_supported": ["code"],
            "dpop_signing_alg_values_supported": ["ES256"],
            "mtls_endpoint_aliases": {"token_endpoint": "https://mtls.a.example/token"},
        });
        let parsed: AuthorizationServerMetadata = serde_json::from_value(doc.clone()).unwrap();
        let back = serde_json::to_value(&parsed).unwrap();
        assert_eq!(back, doc);
    }

    #[test]
    fn missing_required_fields_do_not_parse() {
        for missing in [
            "issuer",
            "authorization_endpoint",
            "token_endpoint",
            "response_types_supported",
        ] {
            let mut doc = serde_json::json!({
                "issuer": "https://a.example",
                "authorization_endpoint": "https://a.example/auth",
                "token_endpoint": "https://a.example/token",
                "response_types_supported": ["code"],
            });
            doc.as_object_mut().unwrap().remove(missing);
            assert!(
                serde_json::from_value::<AuthorizationServerMetadata>(doc).is_err(),
                "{missing}"
            );
        }
    }

    #[test]
    fn absent_grant_types_default_to_code_and_implicit() {
        let m =
            AuthorizationServerMetadata::new("https://a", "https://a/x", "https://a/t", ["code"]);
        assert_eq!(
            m.effective_grant_types(),
            ["authorization_code", "implicit"]
        );
    }
}
