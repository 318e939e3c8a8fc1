//! Fetching authorization-server metadata from its well-known locations.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;
use url::Url;

use crate::error::{DiscoveryError, FetchError};
use crate::http_client::HttpClient;
use crate::metadata::AuthorizationServerMetadata;

/// Which discovery document an authorization server publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthServerType {
    /// RFC 8414: `/.well-known/oauth-authorization-server` inserted before the issuer's path.
    OAuth,
    /// OpenID Connect Discovery: `/.well-known/openid-configuration` appended to the issuer.
    Oidc,
    /// Try the locations MCP clients try, in their order, and take the first document found:
    /// RFC 8414 insertion, OIDC insertion, OIDC append (the first two only for an issuer
    /// without a path).
    Auto,
}

impl AuthServerType {
    /// The lowercase name (`oauth`, `oidc`, `auto`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OAuth => "oauth",
            Self::Oidc => "oidc",
            Self::Auto => "auto",
        }
    }
}

impl fmt::Display for AuthServerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for AuthServerType {
    type Err = String;

    /// Parses `oauth`, `oidc` or `auto` (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "oauth" => Ok(Self::OAuth),
            "oidc" => Ok(Self::Oidc),
            "auto" => Ok(Self::Auto),
            _ => Err(format!(
                "unknown authorization server type `{s}`; expected `oauth`, `oidc` or `auto`"
            )),
        }
    }
}

/// Resolved authorization-server configuration: its metadata and which kind of document it was.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct AuthServerConfig {
    /// The metadata document.
    pub metadata: AuthorizationServerMetadata,
    /// The kind of document (for [`AuthServerType::Auto`], the kind that answered).
    pub server_type: AuthServerType,
}

impl AuthServerConfig {
    /// Wraps metadata you already have (for example from configuration).
    pub fn new(metadata: AuthorizationServerMetadata, server_type: AuthServerType) -> Self {
        Self {
            metadata,
            server_type,
        }
    }
}

/// A hook applied to the raw JSON document before it is parsed, for servers whose documents
/// need fixing up (mcp-auth's `transpileData`).
pub type MetadataTransform = Arc<dyn Fn(Value) -> Value + Send + Sync>;

/// Options for [`fetch_server_config_with_options`] and [`fetch_server_config_by_well_known_url_with_options`].
///
/// ```
/// use mcp_auth::discovery::DiscoveryOptions;
///
/// let options = DiscoveryOptions::default().transform(|mut doc| {
///     // This server forgets to advertise PKCE.
///     doc["code_challenge_methods_supported"] = serde_json::json!(["S256"]);
///     doc
/// });
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct DiscoveryOptions {
    pub(crate) http: HttpClient,
    pub(crate) transform: Option<MetadataTransform>,
}

impl fmt::Debug for DiscoveryOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiscoveryOptions")
            .field("http", &self.http)
            .field("transform", &self.transform.is_some())
            .finish()
    }
}

impl DiscoveryOptions {
    /// The HTTP client to fetch with. Default: [`HttpClient::default`].
    pub fn http_client(mut self, http: HttpClient) -> Self {
        self.http = http;
        self
    }

    /// A function applied to the raw JSON before parsing. Default: none.
    pub fn transform(mut self, transform: impl Fn(Value) -> Value + Send + Sync + 'static) -> Self {
        self.transform = Some(Arc::new(transform));
        self
    }
}

const OAUTH_WELL_KNOWN: &str = "/.well-known/oauth-authorization-server";
const OIDC_WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// The well-known URLs to try for `issuer`, in order.
///
/// - [`AuthServerType::OAuth`]: RFC 8414 insertion (`https://h/p` →
///   `https://h/.well-known/oauth-authorization-server/p`), query kept;
/// - [`AuthServerType::Oidc`]: append (`https://h/p/.well-known/openid-configuration`), query
///   dropped;
/// - [`AuthServerType::Auto`]: RFC 8414 insertion, OIDC insertion, OIDC append (only the first
///   two for an issuer without a path).
///
/// A trailing slash of the issuer's path is dropped first, as mcp-auth does.
///
/// ```
/// use mcp_auth::AuthServerType;
/// use mcp_auth::discovery::well_known_urls;
///
/// assert_eq!(
///     well_known_urls("https://tenant.logto.app/oidc", AuthServerType::Oidc)?,
///     ["https://tenant.logto.app/oidc/.well-known/openid-configuration"]
/// );
/// assert_eq!(
///     well_known_urls("https://example.com/path/", AuthServerType::OAuth)?,
///     ["https://example.com/.well-known/oauth-authorization-server/path"]
/// );
/// # Ok::<(), mcp_auth::DiscoveryError>(())
/// ```
///
/// # Errors
///
/// [`DiscoveryError::InvalidIssuer`] if `issuer` is not an absolute URL with a host.
pub fn well_known_urls(
    issuer: &str,
    server_type: AuthServerType,
) -> Result<Vec<String>, DiscoveryError> {
    let url = Url::parse(issuer).map_err(|e| DiscoveryError::InvalidIssuer {
        issuer: issuer.to_owned(),
        reason: format!("not an absolute URL ({e})").into(),
    })?;
    if !url.has_host() || !url.origin().is_tuple() {
        return Err(DiscoveryError::InvalidIssuer {
            issuer: issuer.to_owned(),
            reason: "the URL has no host".into(),
        });
    }
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
    let oauth = format!("{origin}{OAUTH_WELL_KNOWN}{path}{query}");
    let oidc_append = format!("{origin}{path}{OIDC_WELL_KNOWN}");
    Ok(match server_type {
        AuthServerType::OAuth => vec![oauth],
        AuthServerType::Oidc => vec![oidc_append],
        AuthServerType::Auto if path.is_empty() => vec![oauth, oidc_append],
        AuthServerType::Auto => vec![
            oauth,
            format!("{origin}{OIDC_WELL_KNOWN}{path}"),
            oidc_append,
        ],
    })
}

/// Fetches and parses the metadata of `issuer`, with default [`DiscoveryOptions`].
///
/// The document's `issuer` must equal `issuer` exactly (RFC 8414 §3.3, OpenID Connect
/// Discovery §4.3); otherwise it is not trusted.
///
/// ```no_run
/// use mcp_auth::{AuthServerType, fetch_server_config};
///
/// # async fn run() -> Result<(), mcp_auth::DiscoveryError> {
/// let config = fetch_server_config("https://tenant.logto.app/oidc", AuthServerType::Oidc).await?;
/// println!("keys at {:?}", config.metadata.jwks_uri);
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// - [`DiscoveryError::InvalidIssuer`]: `issuer` is not a URL;
/// - [`DiscoveryError::Fetch`]: the request failed (status, timeout, size, https rule);
/// - [`DiscoveryError::NotFound`]: in [`AuthServerType::Auto`], no location had a document;
/// - [`DiscoveryError::InvalidMetadata`]: the body is not a valid metadata object;
/// - [`DiscoveryError::IssuerMismatch`]: the document names another issuer.
pub async fn fetch_server_config(
    issuer: &str,
    server_type: AuthServerType,
) -> Result<AuthServerConfig, DiscoveryError> {
    fetch_server_config_with_options(issuer, server_type, &DiscoveryOptions::default()).await
}

/// [`fetch_server_config`] with explicit options (HTTP client, transform hook).
///
/// # Errors
///
/// As [`fetch_server_config`].
pub async fn fetch_server_config_with_options(
    issuer: &str,
    server_type: AuthServerType,
    options: &DiscoveryOptions,
) -> Result<AuthServerConfig, DiscoveryError> {
    let urls = well_known_urls(issuer, server_type)?;
    // The issuer is configuration: its host is trusted whatever it resolves to.
    options.http.trust_host_of(issuer);
    let config = if server_type == AuthServerType::Auto {
        let mut tried = Vec::new();
        let mut found = None;
        for (index, url) in urls.iter().enumerate() {
            // The first location is RFC 8414's; the others are OpenID Connect's.
            let kind = if index == 0 {
                AuthServerType::OAuth
            } else {
                AuthServerType::Oidc
            };
            let response = options.http.get(url).await?;
            if response.status.is_success() {
                found = Some(parse_metadata(url, &response.body, kind, options)?);
                break;
            }
            tried.push(format!("{url} (HTTP {})", response.status.as_u16()));
        }
        found.ok_or_else(|| DiscoveryError::NotFound {
            issuer: issuer.to_owned(),
            tried,
        })?
    } else {
        let url = urls.first().ok_or_else(|| DiscoveryError::InvalidIssuer {
            issuer: issuer.to_owned(),
            reason: "no well-known location".into(),
        })?;
        fetch_one(url, server_type, options).await?
    };
    if config.metadata.issuer != issuer {
        return Err(DiscoveryError::IssuerMismatch {
            expected: issuer.to_owned(),
            actual: config.metadata.issuer,
        });
    }
    Ok(config)
}

/// Fetches and parses a metadata document from an explicit URL, with default options.
///
/// No issuer comparison is possible here, since no issuer was named: check
/// `config.metadata.issuer` yourself, or prefer [`fetch_server_config`].
/// [`AuthServerType::Auto`] is treated as [`AuthServerType::Oidc`].
///
/// # Errors
///
/// [`DiscoveryError::Fetch`] or [`DiscoveryError::InvalidMetadata`].
pub async fn fetch_server_config_by_well_known_url(
    url: &str,
    server_type: AuthServerType,
) -> Result<AuthServerConfig, DiscoveryError> {
    fetch_server_config_by_well_known_url_with_options(
        url,
        server_type,
        &DiscoveryOptions::default(),
    )
    .await
}

/// [`fetch_server_config_by_well_known_url`] with explicit options.
///
/// # Errors
///
/// As [`fetch_server_config_by_well_known_url`].
pub async fn fetch_server_config_by_well_known_url_with_options(
    url: &str,
    server_type: AuthServerType,
    options: &DiscoveryOptions,
) -> Result<AuthServerConfig, DiscoveryError> {
    let server_type = match server_type {
        AuthServerType::Auto => AuthServerType::Oidc,
        other => other,
    };
    fetch_one(url, server_type, options).await
}

async fn fetch_one(
    url: &str,
    server_type: AuthServerType,
    options: &DiscoveryOptions,
) -> Result<AuthServerConfig, DiscoveryError> {
    let response = options.http.get(url).await?;
    if !response.status.is_success() {
        return Err(FetchError::Status {
            url: url.to_owned(),
            status: response.status,
        }
        .into());
    }
    parse_metadata(url, &response.body, server_type, options)
}

fn parse_metadata(
    url: &str,
    body: &[u8],
    server_type: AuthServerType,
    options: &DiscoveryOptions,
) -> Result<AuthServerConfig, DiscoveryError> {
    let invalid = |reason: String| DiscoveryError::InvalidMetadata {
        url: url.to_owned(),
        reason,
    };
    let raw: Value =
        serde_json::from_slice(body).map_err(|e| invalid(format!("the body is not JSON ({e})")))?;
    let raw = match &options.transform {
        Some(transform) => transform(raw),
        None => raw,
    };
    if !raw.is_object() {
        return Err(invalid("the document is not a JSON object".to_owned()));
    }
    let metadata: AuthorizationServerMetadata =
        serde_json::from_value(raw).map_err(|e| invalid(e.to_string()))?;
    Ok(AuthServerConfig {
        metadata,
        server_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_url_table_matches_mcp_auth() {
        use AuthServerType::{OAuth, Oidc};
        let cases = [
            (
                "https://example.com",
                OAuth,
                "https://example.com/.well-known/oauth-authorization-server",
            ),
            (
                "https://example.com/",
                OAuth,
                "https://example.com/.well-known/oauth-authorization-server",
            ),
            (
                "https://example.com",
                Oidc,
                "https://example.com/.well-known/openid-configuration",
            ),
            (
                "https://example.com/",
                Oidc,
                "https://example.com/.well-known/openid-configuration",
            ),
            (
                "https://example.com/path",
                OAuth,
                "https://example.com/.well-known/oauth-authorization-server/path",
            ),
            (
                "https://example.com/path/",
                OAuth,
                "https://example.com/.well-known/oauth-authorization-server/path",
            ),
            (
                "https://example.com/path",
                Oidc,
                "https://example.com/path/.well-known/openid-configuration",
            ),
            (
                "https://example.com/path/",
                Oidc,
                "https://example.com/path/.well-known/openid-configuration",
            ),
            (
                "https://example.com/a/b?x=1",
                OAuth,
                "https://example.com/.well-known/oauth-authorization-server/a/b?x=1",
            ),
            (
                "https://example.com/a/b?x=1",
                Oidc,
                "https://example.com/a/b/.well-known/openid-configuration",
            ),
        ];
        for (issuer, ty, expected) in cases {
            assert_eq!(
                well_known_urls(issuer, ty).unwrap(),
                [expected],
                "{issuer} {ty}"
            );
        }
    }

    #[test]
    fn auto_tries_the_mcp_client_order() {
        assert_eq!(
            well_known_urls("https://h/tenant", AuthServerType::Auto).unwrap(),
            [
                "https://h/.well-known/oauth-authorization-server/tenant",
                "https://h/.well-known/openid-configuration/tenant",
                "https://h/tenant/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            well_known_urls("https://h", AuthServerType::Auto).unwrap(),
            [
                "https://h/.well-known/oauth-authorization-server",
                "https://h/.well-known/openid-configuration",
            ]
        );
    }

    #[test]
    fn an_invalid_issuer_is_named() {
        let err = well_known_urls("not a url", AuthServerType::Oidc).unwrap_err();
        assert!(err.to_string().contains("`not a url`"), "{err}");
    }

    #[test]
    fn server_type_parses_case_insensitively() {
        assert_eq!("OIDC".parse::<AuthServerType>(), Ok(AuthServerType::Oidc));
        assert_eq!("oauth".parse::<AuthServerType>(), Ok(AuthServerType::OAuth));
        assert!("saml".parse::<AuthServerType>().is_err());
    }
}
