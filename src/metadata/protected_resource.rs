//! RFC 9728 protected-resource metadata and its builder.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use crate::error::MetadataError;
use crate::http_client::is_secure_enough;
use crate::scope::{OFFLINE_ACCESS, is_scope_token};

/// Protected-resource metadata (RFC 9728 §2): what an MCP client fetches after a 401 to learn
/// which authorization servers issue tokens for this resource.
///
/// Keys are snake_case; empty lists and absent values are omitted when serialised (except
/// `bearer_methods_supported`, where an explicit `[]` is meaningful). Extension parameters,
/// including language-tagged ones such as `resource_name#it`, live in [`extra`](Self::extra).
///
/// Build one with [`ProtectedResourceMetadata::builder`], which refuses invalid values.
///
/// ```
/// use mcp_auth::ProtectedResourceMetadata;
///
/// let metadata = ProtectedResourceMetadata::builder("https://api.example.com/mcp")
///     .authorization_servers(["https://auth.example.com"])
///     .scopes_supported(["read", "write"])
///     .resource_name("Example MCP server")
///     .build()?;
/// let json = serde_json::to_value(&metadata)?;
/// assert_eq!(json["resource"], "https://api.example.com/mcp");
/// assert_eq!(json["authorization_servers"][0], "https://auth.example.com");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProtectedResourceMetadata {
    /// The resource identifier, kept byte-for-byte as configured.
    pub resource: String,
    /// Issuer identifiers of the authorization servers that issue tokens for this resource.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_servers: Vec<String>,
    /// URL of the resource's own JWK Set (for signed responses; not the AS's keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Scopes used in authorization requests for this resource.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// How bearer tokens may be sent (`header`, `body`, `query`). This crate reads only the header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_methods_supported: Option<Vec<String>>,
    /// JWS algorithms the resource uses to sign responses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_signing_alg_values_supported: Vec<String>,
    /// Human-readable name of the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    /// URL of developer documentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_documentation: Option<String>,
    /// URL of the policy on data use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_policy_uri: Option<String>,
    /// URL of the terms of service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_tos_uri: Option<String>,
    /// Whether mutual-TLS certificate-bound tokens are supported (RFC 8705).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_certificate_bound_access_tokens: Option<bool>,
    /// Rich authorization request types supported (RFC 9396).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_details_types_supported: Vec<String>,
    /// JWS algorithms accepted in DPoP proofs (RFC 9449).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// Whether DPoP-bound tokens are always required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_bound_access_tokens_required: Option<bool>,
    /// Signed metadata JWT (RFC 9728 §2.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_metadata: Option<String>,
    /// Extension parameters, kept verbatim (e.g. `resource_name#it`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ProtectedResourceMetadata {
    /// Starts a builder for the resource identifier `resource` (kept byte-for-byte).
    pub fn builder(resource: impl Into<String>) -> ProtectedResourceMetadataBuilder {
        ProtectedResourceMetadataBuilder {
            metadata: ProtectedResourceMetadata {
                resource: resource.into(),
                authorization_servers: Vec::new(),
                jwks_uri: None,
                scopes_supported: Vec::new(),
                bearer_methods_supported: None,
                resource_signing_alg_values_supported: Vec::new(),
                resource_name: None,
                resource_documentation: None,
                resource_policy_uri: None,
                resource_tos_uri: None,
                tls_client_certificate_bound_access_tokens: None,
                authorization_details_types_supported: Vec::new(),
                dpop_signing_alg_values_supported: Vec::new(),
                dpop_bound_access_tokens_required: None,
                signed_metadata: None,
                extra: Map::new(),
            },
            allow_insecure_http: false,
        }
    }

    /// The URL where this document is served: see [`protected_resource_metadata_url`].
    ///
    /// # Errors
    ///
    /// [`MetadataError::InvalidUrl`] if `resource` is not an absolute URL.
    pub fn metadata_url(&self) -> Result<String, MetadataError> {
        protected_resource_metadata_url(&self.resource)
    }
}

/// Builder for [`ProtectedResourceMetadata`]; [`build`](Self::build) validates.
#[derive(Clone, Debug)]
#[must_use]
pub struct ProtectedResourceMetadataBuilder {
    metadata: ProtectedResourceMetadata,
    allow_insecure_http: bool,
}

impl ProtectedResourceMetadataBuilder {
    /// The trusted authorization servers, by issuer identifier (`authorization_servers`),
    /// replacing any set before. At least one is required.
    pub fn authorization_servers(
        mut self,
        issuers: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.metadata.authorization_servers = issuers.into_iter().map(Into::into).collect();
        self
    }

    /// The scopes clients should request for this resource. Default: none (field omitted).
    pub fn scopes_supported(mut self, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.metadata.scopes_supported = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The resource's own JWK Set URL (https, or http on loopback). Default: omitted.
    pub fn jwks_uri(mut self, uri: impl Into<String>) -> Self {
        self.metadata.jwks_uri = Some(uri.into());
        self
    }

    /// Bearer methods advertised. Default: omitted (this crate accepts only the header).
    pub fn bearer_methods_supported(
        mut self,
        methods: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.metadata.bearer_methods_supported =
            Some(methods.into_iter().map(Into::into).collect());
        self
    }

    /// Response-signing algorithms (`none` is refused). Default: omitted.
    pub fn resource_signing_alg_values_supported(
        mut self,
        algs: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.metadata.resource_signing_alg_values_supported =
            algs.into_iter().map(Into::into).collect();
        self
    }

    /// Human-readable name. Default: omitted.
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.metadata.resource_name = Some(name.into());
        self
    }

    /// Documentation URL. Default: omitted.
    pub fn resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.metadata.resource_documentation = Some(url.into());
        self
    }

    /// Policy URL. Default: omitted.
    pub fn resource_policy_uri(mut self, url: impl Into<String>) -> Self {
        self.metadata.resource_policy_uri = Some(url.into());
        self
    }

    /// Terms-of-service URL. Default: omitted.
    pub fn resource_tos_uri(mut self, url: impl Into<String>) -> Self {
        self.metadata.resource_tos_uri = Some(url.into());
        self
    }

    /// Whether certificate-bound tokens are supported. Default: omitted.
    ///
    /// For a standalone document only: [`McpAuth`](crate::McpAuth) derives this field from its
    /// guards (`true` once one has
    /// [`client_certificates`](crate::BearerAuthBuilder::client_certificates)) and refuses a
    /// resource that sets it ([`ConfigError::DerivedMetadataField`](crate::ConfigError::DerivedMetadataField)).
    pub fn tls_client_certificate_bound_access_tokens(mut self, value: bool) -> Self {
        self.metadata.tls_client_certificate_bound_access_tokens = Some(value);
        self
    }

    /// Rich authorization request types. Default: omitted.
    pub fn authorization_details_types_supported(
        mut self,
        types: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.metadata.authorization_details_types_supported =
            types.into_iter().map(Into::into).collect();
        self
    }

    /// DPoP proof algorithms (`none` is refused). Default: omitted.
    pub fn dpop_signing_alg_values_supported(
        mut self,
        algs: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.metadata.dpop_signing_alg_values_supported =
            algs.into_iter().map(Into::into).collect();
        self
    }

    /// Whether DPoP-bound tokens are required. Default: omitted.
    pub fn dpop_bound_access_tokens_required(mut self, value: bool) -> Self {
        self.metadata.dpop_bound_access_tokens_required = Some(value);
        self
    }

    /// A signed metadata JWT. Default: omitted.
    pub fn signed_metadata(mut self, jwt: impl Into<String>) -> Self {
        self.metadata.signed_metadata = Some(jwt.into());
        self
    }

    /// Any other parameter, served verbatim (e.g. `"resource_name#it"`).
    pub fn extra(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata.extra.insert(key.into(), value.into());
        self
    }

    /// Allows `http://` URLs on non-loopback hosts. Default: `false` (development only).
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Validates and returns the metadata.
    ///
    /// # Errors
    ///
    /// - [`MetadataError::InvalidUrl`]: `resource` is not absolute, has a fragment, or is plain
    ///   http on a public host; an authorization server or `jwks_uri` is not an https URL
    ///   (loopback http is allowed), or an issuer has a query or fragment.
    /// - [`MetadataError::Empty`]: no authorization server.
    /// - [`MetadataError::InvalidValue`]: `none` among signing algorithms, a scope with
    ///   characters RFC 6750 forbids, or an unknown bearer method.
    ///
    /// A query in `resource` is allowed but logged as a warning (MCP discourages it).
    /// `offline_access` is removed from `scopes_supported`, with a warning: MCP (2026-07-28)
    /// says resource servers should not advertise it, since refresh tokens are not a resource
    /// requirement (clients ask the authorization server for them on their own).
    pub fn build(self) -> Result<ProtectedResourceMetadata, MetadataError> {
        let mut m = self.metadata;
        let insecure = self.allow_insecure_http;

        let resource = check_url("resource", &m.resource, insecure)?;
        if resource.fragment().is_some() {
            return Err(MetadataError::InvalidUrl {
                field: "resource",
                value: m.resource,
                reason: "a resource identifier must not contain a fragment (RFC 9728 §1.2)".into(),
            });
        }
        if resource.query().is_some() {
            tracing::warn!(
                resource = %m.resource,
                "the resource identifier has a query component; RFC 9728 and MCP recommend against it"
            );
        }

        if m.authorization_servers.is_empty() {
            return Err(MetadataError::Empty {
                field: "authorization_servers",
                reason: "MCP requires at least one authorization server in protected-resource metadata",
            });
        }
        for issuer in &m.authorization_servers {
            let url = check_url("authorization server issuer", issuer, insecure)?;
            if url.query().is_some() || url.fragment().is_some() {
                return Err(MetadataError::InvalidUrl {
                    field: "authorization server issuer",
                    value: issuer.clone(),
                    reason: "an issuer identifier has no query or fragment (RFC 8414 §2)".into(),
                });
            }
        }
        if let Some(jwks_uri) = &m.jwks_uri {
            check_url("jwks_uri", jwks_uri, insecure)?;
        }
        for (field, url) in [
            ("resource_documentation", &m.resource_documentation),
            ("resource_policy_uri", &m.resource_policy_uri),
            ("resource_tos_uri", &m.resource_tos_uri),
        ] {
            if let Some(url) = url {
                Url::parse(url).map_err(|e| MetadataError::InvalidUrl {
                    field,
                    value: url.clone(),
                    reason: e.to_string().into(),
                })?;
            }
        }
        for (field, algs) in [
            (
                "resource_signing_alg_values_supported",
                &m.resource_signing_alg_values_supported,
            ),
            (
                "dpop_signing_alg_values_supported",
                &m.dpop_signing_alg_values_supported,
            ),
        ] {
            if let Some(none) = algs.iter().find(|a| a.eq_ignore_ascii_case("none")) {
                return Err(MetadataError::InvalidValue {
                    field,
                    value: none.clone(),
                    reason: "unsigned content cannot be trusted (RFC 9728 §2)".into(),
                });
            }
        }
        for scope in &m.scopes_supported {
            if !is_scope_token(scope) {
                return Err(MetadataError::InvalidValue {
                    field: "scopes_supported",
                    value: scope.clone(),
                    reason: "a scope is one or more of the characters RFC 6749 §3.3 allows \
                             (printable ASCII except space, `\"` and `\\`)"
                        .into(),
                });
            }
        }
        if m.scopes_supported
            .iter()
            .any(|scope| scope == OFFLINE_ACCESS)
        {
            tracing::warn!(
                "`offline_access` is left out of scopes_supported: MCP (2026-07-28) says resource \
                 servers should not advertise it (refresh tokens are not a resource requirement)"
            );
            m.scopes_supported.retain(|scope| scope != OFFLINE_ACCESS);
        }
        if let Some(methods) = &m.bearer_methods_supported {
            for method in methods {
                match method.as_str() {
                    "header" => {}
                    "body" | "query" => tracing::warn!(
                        method = %method,
                        "bearer_methods_supported lists a method this crate does not accept; \
                         only the Authorization header is read"
                    ),
                    _ => {
                        return Err(MetadataError::InvalidValue {
                            field: "bearer_methods_supported",
                            value: method.clone(),
                            reason: "RFC 9728 defines only `header`, `body` and `query`".into(),
                        });
                    }
                }
            }
        }
        Ok(m)
    }
}

fn check_url(field: &'static str, value: &str, allow_insecure: bool) -> Result<Url, MetadataError> {
    let url = Url::parse(value).map_err(|e| MetadataError::InvalidUrl {
        field,
        value: value.to_owned(),
        reason: format!("not an absolute URL ({e})").into(),
    })?;
    if !url.has_host() {
        return Err(MetadataError::InvalidUrl {
            field,
            value: value.to_owned(),
            reason: "the URL has no host".into(),
        });
    }
    if is_secure_enough(&url, allow_insecure) {
        Ok(url)
    } else {
        Err(MetadataError::InvalidUrl {
            field,
            value: value.to_owned(),
            reason: "must use https (plain http is allowed only for loopback hosts)".into(),
        })
    }
}

/// The RFC 9728 metadata URL of a resource: `/.well-known/oauth-protected-resource` inserted
/// between the origin and the path. The trailing slash of a path is kept; query and fragment are
/// dropped; a resource without a path (or with just `/`) maps to the root document.
///
/// ```
/// use mcp_auth::protected_resource_metadata_url;
///
/// assert_eq!(
///     protected_resource_metadata_url("https://h/a/mcp")?,
///     "https://h/.well-known/oauth-protected-resource/a/mcp"
/// );
/// assert_eq!(
///     protected_resource_metadata_url("https://h")?,
///     "https://h/.well-known/oauth-protected-resource"
/// );
/// assert_eq!(
///     protected_resource_metadata_url("https://h:8443/a/?q=1#f")?,
///     "https://h:8443/.well-known/oauth-protected-resource/a/"
/// );
/// # Ok::<(), mcp_auth::MetadataError>(())
/// ```
///
/// # Errors
///
/// [`MetadataError::InvalidUrl`] naming the resource if it is not an absolute URL with a host.
pub fn protected_resource_metadata_url(resource: &str) -> Result<String, MetadataError> {
    let (origin, path) = origin_and_path(resource)?;
    Ok(format!("{origin}{WELL_KNOWN_PRM}{path}"))
}

/// The path (no origin) where a resource's metadata is served, e.g.
/// `/.well-known/oauth-protected-resource/mcp`.
pub(crate) fn protected_resource_metadata_path(resource: &str) -> Result<String, MetadataError> {
    let (_, path) = origin_and_path(resource)?;
    Ok(format!("{WELL_KNOWN_PRM}{path}"))
}

const WELL_KNOWN_PRM: &str = "/.well-known/oauth-protected-resource";

fn origin_and_path(resource: &str) -> Result<(String, String), MetadataError> {
    let invalid = |reason: String| MetadataError::InvalidUrl {
        field: "resource",
        value: resource.to_owned(),
        reason: reason.into(),
    };
    let url = Url::parse(resource).map_err(|e| invalid(format!("not an absolute URL ({e})")))?;
    if !url.has_host() || url.cannot_be_a_base() {
        return Err(invalid("the URL has no host".to_owned()));
    }
    let origin = url.origin();
    if !origin.is_tuple() {
        return Err(invalid("the URL has no origin".to_owned()));
    }
    let path = match url.path() {
        "/" | "" => String::new(),
        path => path.to_owned(),
    };
    Ok((origin.ascii_serialization(), path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_url_table() {
        let cases = [
            (
                "https://h",
                "https://h/.well-known/oauth-protected-resource",
            ),
            (
                "https://h/",
                "https://h/.well-known/oauth-protected-resource",
            ),
            (
                "https://h/a/mcp",
                "https://h/.well-known/oauth-protected-resource/a/mcp",
            ),
            (
                "https://h/public/mcp",
                "https://h/.well-known/oauth-protected-resource/public/mcp",
            ),
            (
                "https://h:8443/a/",
                "https://h:8443/.well-known/oauth-protected-resource/a/",
            ),
            (
                "https://h:8443/a/b",
                "https://h:8443/.well-known/oauth-protected-resource/a/b",
            ),
            (
                "https://h/api?foo=bar#baz",
                "https://h/.well-known/oauth-protected-resource/api",
            ),
            (
                "http://localhost:3000/foo",
                "http://localhost:3000/.well-known/oauth-protected-resource/foo",
            ),
            (
                "https://h:443/mcp",
                "https://h/.well-known/oauth-protected-resource/mcp",
            ),
        ];
        for (resource, expected) in cases {
            assert_eq!(
                protected_resource_metadata_url(resource).unwrap(),
                expected,
                "{resource}"
            );
        }
    }

    #[test]
    fn metadata_url_of_an_invalid_resource_names_it() {
        let err = protected_resource_metadata_url("not a url").unwrap_err();
        assert!(err.to_string().contains("`not a url`"), "{err}");
        assert!(protected_resource_metadata_url("mailto:a@b").is_err());
    }

    fn valid() -> ProtectedResourceMetadataBuilder {
        ProtectedResourceMetadata::builder("https://api.example.com/mcp")
            .authorization_servers(["https://auth.example.com"])
    }

    #[test]
    fn resource_is_kept_byte_for_byte() {
        for resource in ["https://h", "https://H.example/Mcp", "https://h:443/x/"] {
            let m = ProtectedResourceMetadata::builder(resource)
                .authorization_servers(["https://as.example"])
                .build()
                .unwrap();
            let json = serde_json::to_string(&m).unwrap();
            assert!(
                json.starts_with(&format!("{{\"resource\":\"{resource}\"")),
                "{json}"
            );
        }
    }

    #[test]
    fn builder_refuses_invalid_values() {
        assert!(matches!(
            ProtectedResourceMetadata::builder("api.example.com/mcp")
                .authorization_servers(["https://as"])
                .build(),
            Err(MetadataError::InvalidUrl {
                field: "resource",
                ..
            })
        ));
        assert!(matches!(
            ProtectedResourceMetadata::builder("https://h/mcp#x")
                .authorization_servers(["https://as"])
                .build(),
            Err(MetadataError::InvalidUrl {
                field: "resource",
                ..
            })
        ));
        assert!(matches!(
            ProtectedResourceMetadata::builder("http://h.example/mcp")
                .authorization_servers(["https://as"])
                .build(),
            Err(MetadataError::InvalidUrl {
                field: "resource",
                ..
            })
        ));
        assert!(matches!(
            ProtectedResourceMetadata::builder("https://h/mcp").build(),
            Err(MetadataError::Empty {
                field: "authorization_servers",
                ..
            })
        ));
        assert!(matches!(
            valid()
                .resource_signing_alg_values_supported(["RS256", "none"])
                .build(),
            Err(MetadataError::InvalidValue { .. })
        ));
        assert!(matches!(
            valid().jwks_uri("http://h.example/jwks").build(),
            Err(MetadataError::InvalidUrl {
                field: "jwks_uri",
                ..
            })
        ));
        assert!(matches!(
            valid().scopes_supported(["read", "bad\"scope"]).build(),
            Err(MetadataError::InvalidValue {
                field: "scopes_supported",
                ..
            })
        ));
        assert!(matches!(
            valid()
                .authorization_servers(["https://as.example/?tenant=1"])
                .build(),
            Err(MetadataError::InvalidUrl { .. })
        ));
        assert!(matches!(
            valid().bearer_methods_supported(["cookie"]).build(),
            Err(MetadataError::InvalidValue { .. })
        ));
    }

    #[test]
    fn builder_accepts_loopback_http_and_warn_only_values() {
        let built = ProtectedResourceMetadata::builder("http://localhost:3001/mcp?x=1")
            .authorization_servers(["http://127.0.0.1:9999"])
            .jwks_uri("http://[::1]:1/jwks")
            .scopes_supported(["read", "offline_access"])
            .build()
            .unwrap();
        assert_eq!(
            built.scopes_supported,
            ["read"],
            "offline_access is never advertised"
        );
    }

    #[test]
    fn empty_lists_are_omitted_and_extras_kept() {
        let m = valid()
            .resource_name("Demo")
            .extra("resource_name#it", "Dimostrazione")
            .extra("x_custom", serde_json::json!({"a": 1}))
            .build()
            .unwrap();
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "resource": "https://api.example.com/mcp",
                "authorization_servers": ["https://auth.example.com"],
                "resource_name": "Demo",
                "resource_name#it": "Dimostrazione",
                "x_custom": {"a": 1},
            })
        );
        let back: ProtectedResourceMetadata = serde_json::from_value(json).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn explicit_empty_bearer_methods_are_serialised() {
        let m = valid()
            .bearer_methods_supported(Vec::<String>::new())
            .build()
            .unwrap();
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["bearer_methods_supported"], serde_json::json!([]));
    }
}
