//! The bounded HTTP client behind every outbound fetch.
//!
//! Authorization-server metadata, JWKS documents, userinfo and introspection answers all come
//! from the network and are treated as hostile input. Every request made by this crate goes
//! through an [`HttpClient`], which enforces:
//!
//! - a connect timeout (default 5 s) and a total timeout covering the whole body (default 10 s);
//! - a response-size cap (default 1 MiB): a larger body is an error, never an allocation;
//! - redirects only within the same origin (at most 5); a redirect elsewhere is an error;
//! - `https` only, unless the host is a loopback address (`127.0.0.0/8`, `::1`, `localhost`) or
//!   plain http was allowed explicitly with [`HttpClientBuilder::allow_insecure_http`];
//! - no private, link-local or unspecified addresses (after DNS resolution, and for IP-literal
//!   hosts), except for the hosts of the configured issuers or when
//!   [`HttpClientBuilder::allow_private_addresses`] says so; `localhost` and `*.localhost` must
//!   resolve to loopback addresses.
//!
//! ```
//! use std::time::Duration;
//! use mcp_auth::HttpClient;
//!
//! let client = HttpClient::builder()
//!     .timeout(Duration::from_secs(3))
//!     .max_response_bytes(256 * 1024)
//!     .build()?;
//! # Ok::<(), mcp_auth::FetchError>(())
//! ```

mod address;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use url::Url;

use crate::error::FetchError;
use address::{AddressRefused, ScreeningResolver, TrustedHosts, is_screened};

/// Default connect timeout of an [`HttpClient`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default total timeout (connect, send, and read the whole body) of an [`HttpClient`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on a response body, in bytes (1 MiB).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;
const MAX_REDIRECTS: usize = 5;

/// A bounded HTTP client: timeouts, a body-size cap, same-origin redirects and an https rule.
///
/// Cheap to clone (the connection pool is shared). Build one with [`HttpClient::builder`], or
/// use [`HttpClient::default`] for the documented defaults.
#[derive(Clone, Debug)]
pub struct HttpClient {
    /// The inner client, or why it could not be built (only through [`Default`]).
    client: Result<reqwest::Client, String>,
    max_response_bytes: usize,
    allow_insecure_http: bool,
    allow_private_addresses: bool,
    trusted_hosts: TrustedHosts,
    timeout: Duration,
}

/// Builder for [`HttpClient`]; every setter documents its default.
#[derive(Clone, Debug)]
#[must_use]
pub struct HttpClientBuilder {
    connect_timeout: Duration,
    timeout: Duration,
    max_response_bytes: usize,
    allow_insecure_http: bool,
    allow_private_addresses: bool,
    user_agent: String,
}

/// A response read whole (within the size cap).
#[derive(Clone, Debug)]
pub(crate) struct FetchedResponse {
    pub(crate) url: String,
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl FetchedResponse {
    /// Parses the body as JSON, naming the URL on failure.
    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, FetchError> {
        serde_json::from_slice(&self.body).map_err(|source| FetchError::InvalidJson {
            url: self.url.clone(),
            reason: source.to_string(),
        })
    }
}

impl Default for HttpClientBuilder {
    fn default() -> Self {
        Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            allow_insecure_http: false,
            allow_private_addresses: false,
            user_agent: concat!("mcp-auth-rust/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl HttpClientBuilder {
    /// Time allowed to open a connection. Default: 5 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for the whole exchange, including reading the body. Default: 10 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Largest response body accepted, in bytes. Default: 1 MiB.
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Allows plain `http://` URLs on non-loopback hosts. Default: `false`.
    ///
    /// Only for development against a server you control on a trusted network: tokens and keys
    /// fetched over plain http can be read and replaced by anyone on the path.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Allows requests to private (RFC 1918, RFC 6598, IPv6 unique-local), link-local and
    /// unspecified addresses on every host. Default: `false`.
    ///
    /// By default such addresses are refused, after DNS resolution and for IP-literal URLs,
    /// except on the hosts of the configured issuers (an authorization server on your private
    /// network is trusted with its own endpoints). This keeps a tampered or misconfigured
    /// metadata document from making the resource server call into its own network. Turn it
    /// on when endpoints you allowed on purpose (see
    /// [`AuthServer::with_allowed_endpoint_origins`](crate::AuthServer::with_allowed_endpoint_origins))
    /// live on private addresses.
    pub fn allow_private_addresses(mut self, allow: bool) -> Self {
        self.allow_private_addresses = allow;
        self
    }

    /// The `User-Agent` sent with each request. Default: `mcp-auth-rust/<version>`.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    ///
    /// [`FetchError::Client`] if the TLS backend cannot be initialised.
    pub fn build(self) -> Result<HttpClient, FetchError> {
        let trusted_hosts = TrustedHosts::default();
        let resolver = ScreeningResolver {
            trusted: trusted_hosts.clone(),
            allow_private: self.allow_private_addresses,
        };
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(resolver))
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .user_agent(self.user_agent)
            .redirect(same_origin_redirects())
            .build()
            .map_err(|e| FetchError::Client {
                reason: e.to_string(),
            })?;
        Ok(HttpClient {
            client: Ok(client),
            max_response_bytes: self.max_response_bytes,
            allow_insecure_http: self.allow_insecure_http,
            allow_private_addresses: self.allow_private_addresses,
            trusted_hosts,
            timeout: self.timeout,
        })
    }
}

fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let Some(first) = attempt.previous().first() else {
            return attempt.stop();
        };
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.stop();
        }
        if attempt.url().origin() == first.origin() {
            attempt.follow()
        } else {
            // Stop: the caller sees the 3xx and reports it as a cross-origin redirect.
            attempt.stop()
        }
    })
}

impl Default for HttpClient {
    /// A client with the documented defaults.
    ///
    /// Never panics: if the TLS backend cannot be initialised (which
    /// [`HttpClientBuilder::build`] reports as an error), the failure is logged and every
    /// request through this client fails with [`FetchError::Client`].
    fn default() -> Self {
        let builder = HttpClientBuilder::default();
        let (max_response_bytes, allow_insecure_http, allow_private_addresses, timeout) = (
            builder.max_response_bytes,
            builder.allow_insecure_http,
            builder.allow_private_addresses,
            builder.timeout,
        );
        builder.build().unwrap_or_else(|error| {
            tracing::error!(%error, "the default HTTP client cannot be built; every fetch will fail");
            HttpClient {
                client: Err(error.to_string()),
                max_response_bytes,
                allow_insecure_http,
                allow_private_addresses,
                trusted_hosts: TrustedHosts::default(),
                timeout,
            }
        })
    }
}

impl HttpClient {
    /// Starts a builder with the documented defaults.
    pub fn builder() -> HttpClientBuilder {
        HttpClientBuilder::default()
    }

    /// The response-size cap in bytes.
    pub fn max_response_bytes(&self) -> usize {
        self.max_response_bytes
    }

    /// Whether plain http to non-loopback hosts is allowed.
    pub fn allows_insecure_http(&self) -> bool {
        self.allow_insecure_http
    }

    /// Whether requests to private, link-local and unspecified addresses are allowed on every
    /// host.
    pub fn allows_private_addresses(&self) -> bool {
        self.allow_private_addresses
    }

    /// Trusts the addresses of `url`'s host whatever they are: the host of a configured issuer.
    /// Clones of this client share the list.
    pub(crate) fn trust_host_of(&self, url: &str) {
        if let Some(host) = Url::parse(url).ok().as_ref().and_then(Url::host_str) {
            self.trusted_hosts.insert(host);
        }
    }

    /// Parses `url` and checks it against the https rule and, for an IP-literal host, the
    /// address screening (names are screened when they are resolved).
    pub(crate) fn check_url(&self, url: &str) -> Result<Url, FetchError> {
        let parsed = Url::parse(url).map_err(|e| FetchError::InvalidUrl {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        if !is_secure_enough(&parsed, self.allow_insecure_http) {
            return Err(FetchError::InsecureUrl {
                url: url.to_owned(),
            });
        }
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let (Some(ip), Some(host)) = (literal, parsed.host_str())
            && is_screened(ip)
            && !self.allow_private_addresses
            && !self.trusted_hosts.contains(host)
        {
            return Err(FetchError::AddressRefused {
                url: url.to_owned(),
                reason: format!(
                    "{ip} is a private, link-local or unspecified address; if this server is on \
                     your private network, call `HttpClientBuilder::allow_private_addresses(true)`"
                ),
            });
        }
        Ok(parsed)
    }

    /// `GET url` with `Accept: application/json`, any status.
    pub(crate) async fn get(&self, url: &str) -> Result<FetchedResponse, FetchError> {
        let parsed = self.check_url(url)?;
        let request = self
            .inner()?
            .get(parsed)
            .header(http::header::ACCEPT, "application/json");
        self.send(url, request).await
    }

    /// Sends a request built on the inner client (already URL-checked by the caller through
    /// [`HttpClient::request`]) and reads the body within the cap.
    pub(crate) async fn send(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<FetchedResponse, FetchError> {
        let mut response = request.send().await.map_err(|e| self.map_error(url, e))?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            return Err(FetchError::Redirect {
                url: url.to_owned(),
                location,
            });
        }
        let limit = self.max_response_bytes;
        if response
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            return Err(FetchError::TooLarge {
                url: url.to_owned(),
                limit,
            });
        }
        let headers = response.headers().clone();
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.map_error(url, e))? {
            if body.len() + chunk.len() > limit {
                return Err(FetchError::TooLarge {
                    url: url.to_owned(),
                    limit,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(FetchedResponse {
            url: url.to_owned(),
            status,
            headers,
            body: body.freeze(),
        })
    }

    /// Starts a request with the inner client after checking the URL.
    pub(crate) fn request(
        &self,
        method: http::Method,
        url: &str,
    ) -> Result<reqwest::RequestBuilder, FetchError> {
        let parsed = self.check_url(url)?;
        Ok(self.inner()?.request(method, parsed))
    }

    /// The inner client, or [`FetchError::Client`] if it could not be built.
    fn inner(&self) -> Result<&reqwest::Client, FetchError> {
        self.client.as_ref().map_err(|reason| FetchError::Client {
            reason: reason.clone(),
        })
    }

    fn map_error(&self, url: &str, error: reqwest::Error) -> FetchError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
        while let Some(cause) = source {
            if let Some(refused) = cause.downcast_ref::<AddressRefused>() {
                return FetchError::AddressRefused {
                    url: url.to_owned(),
                    reason: refused.to_string(),
                };
            }
            source = cause.source();
        }
        if error.is_timeout() {
            FetchError::Timeout {
                url: url.to_owned(),
                timeout: self.timeout,
            }
        } else {
            FetchError::Transport {
                url: url.to_owned(),
                reason: error_chain(&error),
            }
        }
    }
}

/// Renders an error and its sources on one line, without any request data.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The crate's one transport rule for URLs it fetches or publishes: https, or plain http when
/// the host is loopback or the user explicitly allowed insecure http.
pub(crate) fn is_secure_enough(url: &Url, allow_insecure_http: bool) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => allow_insecure_http || is_loopback(url),
        _ => false,
    }
}

/// Whether the URL's host is a loopback address or `localhost`.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => {
            domain.eq_ignore_ascii_case("localhost")
                || domain.to_ascii_lowercase().ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_is_always_allowed() {
        let client = HttpClient::default();
        assert!(client.check_url("https://as.example.com/jwks").is_ok());
    }

    #[test]
    fn plain_http_is_refused_for_public_hosts() {
        let client = HttpClient::default();
        assert!(matches!(
            client.check_url("http://as.example.com/jwks"),
            Err(FetchError::InsecureUrl { .. })
        ));
    }

    #[test]
    fn plain_http_is_allowed_for_loopback_hosts() {
        let client = HttpClient::default();
        for url in [
            "http://127.0.0.1:8080/x",
            "http://127.1.2.3/x",
            "http://[::1]:9/x",
            "http://localhost/x",
            "http://LOCALHOST:1/x",
        ] {
            assert!(client.check_url(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn plain_http_is_allowed_when_explicitly_enabled() {
        let client = HttpClient::builder()
            .allow_insecure_http(true)
            .build()
            .unwrap();
        assert!(client.check_url("http://as.internal/jwks").is_ok());
    }

    #[test]
    fn other_schemes_and_garbage_are_refused() {
        let client = HttpClient::default();
        assert!(matches!(
            client.check_url("file:///etc/passwd"),
            Err(FetchError::InsecureUrl { .. })
        ));
        assert!(matches!(
            client.check_url("not a url"),
            Err(FetchError::InvalidUrl { .. })
        ));
    }
}
