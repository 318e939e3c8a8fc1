//! Every error this crate returns, one enum per family.
//!
//! - [`FetchError`]: an outbound HTTP request failed (timeout, status, size cap, https rule).
//! - [`MetadataError`]: a metadata document or URL we were asked to build is invalid.
//! - [`DiscoveryError`]: authorization-server metadata could not be discovered or trusted.
//! - [`ConfigError`]: the [`McpAuth`](crate::McpAuth) configuration is inconsistent.
//! - [`VerifyError`]: a [`TokenVerifier`](crate::TokenVerifier) could not accept a token.
//!
//! Each message says what went wrong and, where it helps, what to do about it. None of them
//! ever contains a bearer token.

use std::borrow::Cow;
use std::time::Duration;

use http::StatusCode;

use crate::discovery::ValidationResult;

/// The longest text from the network (an issuer, a URL, an error the authorization server
/// sent) that an error message repeats, in bytes.
pub(crate) const MAX_ECHO_BYTES: usize = 256;

/// `text` cut to at most [`MAX_ECHO_BYTES`] at a character boundary, with `…` when cut: the
/// one way network text enters our error messages.
pub(crate) fn bounded_echo(text: &str) -> String {
    if text.len() <= MAX_ECHO_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_ECHO_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut cut = text.get(..end).unwrap_or_default().to_owned();
    cut.push('…');
    cut
}

/// An outbound HTTP request (metadata, JWKS, userinfo, introspection) failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The URL could not be parsed.
    #[error("`{url}` is not a valid URL: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it did not parse.
        reason: String,
    },
    /// The URL is plain `http` on a non-loopback host (or another scheme entirely).
    #[error(
        "refusing to fetch `{url}`: only https is allowed, except for loopback hosts; \
         use an https URL, or call `HttpClientBuilder::allow_insecure_http(true)` for development"
    )]
    InsecureUrl {
        /// The refused URL.
        url: String,
    },
    /// The host is, or resolves only to, an address outbound fetches refuse: private,
    /// link-local or unspecified (or, for `*.localhost`, not loopback).
    #[error("refusing to fetch `{url}`: {reason}")]
    AddressRefused {
        /// The refused URL.
        url: String,
        /// Which address rule refused it, and how to allow it if it is intended.
        reason: String,
    },
    /// The whole exchange took longer than the configured timeout.
    #[error("request to `{url}` timed out after {timeout:?}; the server is slow or unreachable")]
    Timeout {
        /// The URL requested.
        url: String,
        /// The timeout that elapsed.
        timeout: Duration,
    },
    /// The connection failed or broke (DNS, TCP, TLS, HTTP framing).
    #[error("could not fetch `{url}`: {reason}")]
    Transport {
        /// The URL requested.
        url: String,
        /// The transport error, without request data.
        reason: String,
    },
    /// The server answered with a status that is not a success.
    #[error("`{url}` answered HTTP {status}")]
    Status {
        /// The URL requested.
        url: String,
        /// The status received.
        status: StatusCode,
    },
    /// The body was larger than the cap.
    #[error(
        "the response from `{url}` is larger than the {limit}-byte limit; \
         raise `HttpClientBuilder::max_response_bytes` if this document is legitimately this big"
    )]
    TooLarge {
        /// The URL requested.
        url: String,
        /// The cap in bytes.
        limit: usize,
    },
    /// The server redirected to another origin (or too many times).
    #[error(
        "`{url}` redirected to `{location}`; only redirects within the same origin are followed \
         (at most 5): configure the final URL directly"
    )]
    Redirect {
        /// The URL requested.
        url: String,
        /// The `Location` it redirected to.
        location: String,
    },
    /// The body is not JSON, or not JSON of the expected shape.
    #[error("the response from `{url}` is not the JSON document expected: {reason}")]
    InvalidJson {
        /// The URL requested.
        url: String,
        /// The parser's explanation.
        reason: String,
    },
    /// The HTTP client itself could not be built.
    #[error("could not create the HTTP client: {reason}")]
    Client {
        /// Why.
        reason: String,
    },
}

/// A metadata document, or a URL derived from one, is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// A URL field is not an absolute URL, or has a part it must not have.
    #[error("invalid {field} `{value}`: {reason}")]
    InvalidUrl {
        /// The field (for example `resource` or `jwks_uri`).
        field: &'static str,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: Cow<'static, str>,
    },
    /// A required list is empty.
    #[error("{field} must not be empty: {reason}")]
    Empty {
        /// The field.
        field: &'static str,
        /// Why it is required.
        reason: &'static str,
    },
    /// A value in a list is not allowed.
    #[error("{field} must not contain `{value}`: {reason}")]
    InvalidValue {
        /// The field.
        field: &'static str,
        /// The refused value.
        value: String,
        /// Why it is refused.
        reason: Cow<'static, str>,
    },
}

/// Authorization-server metadata could not be discovered, or cannot be trusted.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The issuer is not an absolute https URL without query or fragment.
    #[error("invalid issuer `{issuer}`: {reason}")]
    InvalidIssuer {
        /// The issuer given.
        issuer: String,
        /// What is wrong with it.
        reason: Cow<'static, str>,
    },
    /// Fetching a metadata document failed.
    #[error("could not fetch the authorization server metadata: {0}")]
    Fetch(#[from] FetchError),
    /// No well-known location answered with a document (automatic discovery).
    #[error(
        "no authorization server metadata found for issuer `{issuer}`; tried {}: check the issuer \
         URL (with its path) and the server type",
        tried.join(", ")
    )]
    NotFound {
        /// The issuer.
        issuer: String,
        /// Every URL tried, in order, with what it answered.
        tried: Vec<String>,
    },
    /// The document is not an object or misses required fields.
    #[error("the authorization server metadata at `{url}` is invalid or malformed: {reason}")]
    InvalidMetadata {
        /// Where it came from.
        url: String,
        /// The first problem found.
        reason: String,
    },
    /// The document's `issuer` is not the issuer we asked for (RFC 8414 §3.3, OIDC Discovery §4.3).
    #[error(
        "the authorization server metadata names issuer `{actual}`, but `{expected}` was \
         configured; the document is not trusted (RFC 8414 §3.3). Configure the exact issuer \
         the server publishes"
    )]
    IssuerMismatch {
        /// The issuer configured.
        expected: String,
        /// The issuer in the document.
        actual: String,
    },
    /// A discovered endpoint is neither on the issuer's origin nor on an allowed one.
    #[error(
        "the authorization server metadata of `{issuer}` names {field} `{url}`, which is not on \
         the issuer's origin; the document is not trusted. If the provider really hosts it \
         there, allow that origin with `AuthServer::with_allowed_endpoint_origins`"
    )]
    ForeignEndpoint {
        /// The issuer.
        issuer: String,
        /// The metadata field (`jwks_uri`, `userinfo_endpoint`, `introspection_endpoint`).
        field: &'static str,
        /// The URL it names (shortened if long).
        url: String,
    },
    /// The server does not meet the MCP specification (see [`validate_server_config`](crate::validate_server_config)).
    #[error(
        "the authorization server `{issuer}` does not meet the MCP specification: {}",
        result.errors.iter().map(|e| e.code.as_str()).collect::<Vec<_>>().join(", ")
    )]
    Invalid {
        /// The issuer.
        issuer: String,
        /// The full validation result.
        result: ValidationResult,
    },
}

/// The [`McpAuth`](crate::McpAuth) configuration is inconsistent.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No protected resource was configured.
    #[error(
        "no protected resource is configured; add one with \
         `McpAuth::builder().protected_resource(..)`"
    )]
    Empty,
    /// The same resource identifier was configured twice.
    #[error("the protected resource `{resource}` is configured more than once")]
    DuplicateResource {
        /// The duplicated resource identifier.
        resource: String,
    },
    /// The same issuer was listed twice for one resource.
    #[error(
        "the authorization server `{issuer}` is listed more than once for resource `{resource}`"
    )]
    DuplicateIssuer {
        /// The resource.
        resource: String,
        /// The duplicated issuer.
        issuer: String,
    },
    /// A resource was asked for that is not configured.
    #[error(
        "no protected resource `{resource}` is configured; configured resources: {}",
        configured.join(", ")
    )]
    UnknownResource {
        /// The resource asked for.
        resource: String,
        /// The resources that are configured.
        configured: Vec<String>,
    },
    /// Invalid metadata.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// An authorization server failed discovery or validation at construction.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    // Guards and MCP policy
    /// A scope given to the bearer guard or to an MCP policy is not an RFC 6749 §3.3 scope
    /// token, so no access token could ever grant it.
    #[error(
        "the scope {scope:?} given to `{setting}` is not a valid scope token (RFC 6749 §3.3: \
         one or more printable ASCII characters, without space, `\"` or `\\`), so no token \
         could ever grant it; fix it, and pass several scopes as separate items"
    )]
    InvalidScope {
        /// The builder setter that was given it (`required_scopes`, `scope_implies`, `tool`,
        /// `method`, `known_scopes`, `ApiKeyEntry::scopes`).
        setting: &'static str,
        /// The scope as given.
        scope: String,
    },
    /// The bearer guard's accepted audience list is empty, so no token could pass.
    #[error(
        "the accepted audience list is empty, so no token could pass; give `audience` at least \
         one audience, or call `skip_audience_check()` to turn the check off"
    )]
    EmptyAudience,
    /// The bearer guard's realm cannot be carried by a challenge unchanged.
    #[error(
        "the realm {realm:?} is empty or has characters a `WWW-Authenticate` challenge cannot \
         carry (RFC 6750 §3: printable ASCII and spaces, without `\"` or `\\`); choose a plain \
         realm name"
    )]
    InvalidRealm {
        /// The realm as given.
        realm: String,
    },
    /// An MCP policy names a tool or a JSON-RPC method by the empty string, which no request
    /// carries.
    #[error(
        "`{setting}` was given an empty name; name the {setting} exactly as clients send it (the \
         `params.name` of `tools/call`, or the JSON-RPC `method`)"
    )]
    EmptyOperationName {
        /// The builder setter: `tool` or `method`.
        setting: &'static str,
    },
    /// Two protected resources would publish their RFC 9728 metadata at the same path (the
    /// same path on different hosts).
    #[error(
        "the protected resources `{first}` and `{second}` would both publish their metadata at \
         `{path}`; configure them in separate McpAuth instances, each serving its own host"
    )]
    MetadataPathTaken {
        /// The resource configured first.
        first: String,
        /// The resource configured second.
        second: String,
        /// The well-known path both would use.
        path: String,
    },
    /// A resource's RFC 9728 metadata cannot be serialised to JSON.
    #[error(
        "the metadata of the protected resource `{resource}` cannot be serialised to JSON: \
         {reason}; check the values given with `ProtectedResourceMetadataBuilder::extra`"
    )]
    MetadataNotSerializable {
        /// The resource.
        resource: String,
        /// The serialiser's explanation.
        reason: String,
    },
    /// The TLS configuration given to
    /// [`tls_server_config`](crate::integrations::hyper::tls::tls_server_config) is refused by
    /// rustls.
    #[error(
        "the TLS configuration is invalid ({setting}): {reason}; check the certificate chain, \
         key and client CA roots"
    )]
    InvalidTlsConfig {
        /// What was refused: `certificate` (chain or key), `client_auth` (the CA roots) or
        /// `protocol_versions`.
        setting: &'static str,
        /// rustls' explanation.
        reason: String,
    },
    /// The resource's metadata sets a field that is derived from how its guards enforce
    /// tokens, so a configured value could disagree with enforcement (RFC 9728 §2).
    #[error("the metadata of `{resource}` sets `{field}`: {advice}")]
    DerivedMetadataField {
        /// The resource.
        resource: String,
        /// The field.
        field: &'static str,
        /// What to do instead.
        advice: &'static str,
    },

    // Verifiers
    /// A JWS algorithm name is a shared-secret (HMAC) algorithm: `HS256`, `HS384`, `HS512`.
    #[error(
        "`{algorithm}` is a shared-secret algorithm; it is refused because the keys come from a \
         public JWKS (RFC 8725 §2.1). Use RS*, PS*, ES256, ES384 or EdDSA"
    )]
    SharedSecretAlgorithm {
        /// The name given.
        algorithm: String,
    },
    /// A JWS algorithm name is `none` (in any spelling): unsigned tokens.
    #[error(
        "`{algorithm}` (unsigned tokens) is never accepted (RFC 9068 §2.1); use a signature \
         algorithm such as RS256"
    )]
    UnsignedAlgorithm {
        /// The name given.
        algorithm: String,
    },
    /// A name that is not one of the JWS signature algorithms the JWT verifier supports.
    #[error(
        "`{algorithm}` is not a supported JWS algorithm; use one of RS256, RS384, RS512, PS256, \
         PS384, PS512, ES256, ES384, EdDSA (case-sensitive)"
    )]
    UnsupportedAlgorithm {
        /// The name given.
        algorithm: String,
    },
    /// The JWT verifier's algorithm allow-list is empty.
    #[error(
        "the JWT algorithm allow-list is empty; allow at least one algorithm (RS256 is the one \
         RFC 9068 requires)"
    )]
    NoAllowedAlgorithm,
    /// The JWT verifier was built without any trusted issuer.
    #[error(
        "the JWT verifier trusts no issuer; add one with \
         `JwtVerifierBuilder::authorization_server` or `issuer_jwks`"
    )]
    NoTrustedIssuer,
    /// A trusted issuer is the empty string.
    #[error(
        "a trusted issuer is the empty string; give the issuer exactly as the authorization \
         server's metadata names it"
    )]
    EmptyIssuer,
    /// The JWT verifier was given the same issuer twice.
    #[error(
        "the issuer `{issuer}` is trusted more than once by the JWT verifier; add each issuer \
         once, with one source of keys"
    )]
    IssuerTrustedTwice {
        /// The issuer given twice.
        issuer: String,
    },
    /// A JWKS URL given with `JwtVerifierBuilder::issuer_jwks` cannot be fetched from.
    #[error("the JWKS URL for issuer `{issuer}` cannot be used: {source}")]
    InvalidJwksUri {
        /// The issuer the URL was given for.
        issuer: String,
        /// Why the URL is refused (not a URL, or plain http on a non-loopback host).
        #[source]
        source: FetchError,
    },
    /// The default HTTP client for JWKS fetches could not be created.
    #[error(
        "could not create the HTTP client for JWKS fetches: {source}; pass one with \
         `JwtVerifierBuilder::http_client`"
    )]
    JwksHttpClient {
        /// Why.
        #[source]
        source: FetchError,
    },
    /// A JWKS seed given with `JwtVerifierBuilder::jwks_seed` or `jwks_seed_file` cannot be
    /// used.
    #[error("the JWKS seed for issuer `{issuer}` ({origin}) cannot be used: {reason}")]
    InvalidJwksSeed {
        /// The issuer the seed was given for.
        issuer: String,
        /// Where the seed came from (the file path, or the `JwkSet`).
        origin: String,
        /// Why: the file cannot be read or is not JSON, it is not a JWKS, it has no usable
        /// key, the issuer is not trusted, or it is seeded twice.
        reason: String,
    },
    /// A clock-skew leeway (of the JWT verifier or of the bearer guard's expiry check) is
    /// longer than [`MAX_LEEWAY`](crate::verify::jwt::MAX_LEEWAY).
    #[error(
        "the clock-skew leeway of {leeway:?} is more than the {max:?} allowed; clocks that far \
         apart need fixing (NTP), not a longer leeway"
    )]
    LeewayTooLong {
        /// The leeway given.
        leeway: Duration,
        /// The largest leeway accepted.
        max: Duration,
    },
    /// The JWT verifier's `jwks_max_staleness` is not longer than its `jwks_refresh_cooldown`,
    /// so cached keys would stop verifying before a fetch may renew them.
    #[error(
        "`jwks_max_staleness` ({max_staleness:?}) must be longer than `jwks_refresh_cooldown` \
         ({refresh_cooldown:?}): keys would stop verifying before a fetch may renew them; keep \
         the default of 24 hours"
    )]
    StalenessWithinCooldown {
        /// The maximum staleness given.
        max_staleness: Duration,
        /// The refresh cooldown given (or its default).
        refresh_cooldown: Duration,
    },
    /// A numeric setting is above the largest value accepted.
    #[error("`{setting}` of {value} is over the {max} accepted: {advice}")]
    SettingTooLarge {
        /// The builder setter, for example `tombstone_capacity`.
        setting: &'static str,
        /// The value given.
        value: u64,
        /// The largest value accepted.
        max: u64,
        /// Why there is a bound and what to choose instead.
        advice: &'static str,
    },
    /// A setting that must be greater than zero is zero (of a verifier, a guard, an MCP
    /// policy or the hyper server).
    #[error("`{setting}` must be greater than zero: {advice}")]
    ZeroSetting {
        /// The builder setter, for example `jwks_refresh_cooldown`, `ttl` or `max_body_bytes`.
        setting: &'static str,
        /// What the setting is for and what to do instead.
        advice: &'static str,
    },
    /// The scope prefix of the JWT verifier is empty or contains a space or a control
    /// character.
    #[error(
        "the scope prefix {prefix:?} must be non-empty, without spaces or control characters \
         (scopes are space-separated)"
    )]
    InvalidScopePrefix {
        /// The prefix given.
        prefix: String,
    },
    /// The introspection verifier was built without this resource server's credentials.
    #[error(
        "token introspection needs this resource server's credentials: call \
         `client_secret_basic`, `client_secret_post` or `bearer` on the IntrospectionVerifier \
         builder"
    )]
    MissingClientCredentials,
    /// The token-exchange client was built without this server's client credentials.
    #[error(
        "token exchange needs this server's client credentials at the token endpoint: call \
         `client_secret_basic` or `client_secret_post` on the TokenExchange builder"
    )]
    MissingExchangeCredentials,
    /// An introspection client credential cannot be sent in an HTTP header.
    #[error(
        "the introspection `{method}` credential contains characters not allowed in an HTTP \
         header; give it exactly as the authorization server issued it"
    )]
    InvalidClientCredential {
        /// The credential method: `bearer` (or `client_secret_basic`).
        method: &'static str,
    },

    // API keys and prefix routing
    /// An [`ApiKeyVerifier`](crate::verify::ApiKeyVerifier) was built without any key.
    #[error(
        "the API-key verifier has no keys, so no request could pass; add keys with \
         `ApiKeyVerifierBuilder::key`, `keys_from_str` or `keys_from_file`, or do not mount it"
    )]
    NoApiKeys,
    /// Two API keys have the same name.
    #[error(
        "the API key name `{name}` is used more than once; give each key its own name, so that \
         logs and `AuthInfo` say which key was used"
    )]
    DuplicateApiKeyName {
        /// The name given twice.
        name: String,
    },
    /// Two API keys have the same hash: the same secret is configured twice.
    #[error(
        "the API keys `{first}` and `{second}` have the same hash, so they are the same secret; \
         generate a new secret for one of them"
    )]
    DuplicateApiKeyHash {
        /// The key configured first.
        first: String,
        /// The key configured second.
        second: String,
    },
    /// An API key name is empty or has a character the configuration form cannot carry.
    #[error("the API key name {name:?} is invalid: {reason}")]
    InvalidApiKeyName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An API key's stored hash is not `sha256:` followed by 64 hex digits. The value itself
    /// is not repeated: it may be the secret key pasted by mistake.
    #[error(
        "the hash of the API key `{name}` is invalid: {reason}; store `sha256:<64 hex digits>`, \
         the SHA-256 of the key (`ApiKey::hash_of`, or `printf %s \"$KEY\" | sha256sum`), never \
         the key itself"
    )]
    InvalidApiKeyHash {
        /// The key's name.
        name: String,
        /// What is wrong with the hash.
        reason: &'static str,
    },
    /// An entry of API-key configuration text is not `name:sha256:<hex>[:scopes]`. The entry
    /// is not repeated: it may hold a secret pasted by mistake.
    #[error(
        "{origin}, line {line}: {reason}; each entry is `name:sha256:<64 hex digits>:scope1 \
         scope2` (scopes optional), entries separated by `;` or new lines"
    )]
    MalformedApiKeyEntry {
        /// Where the text came from (the file path, or `the API-key text`).
        origin: String,
        /// The 1-based line of the entry.
        line: usize,
        /// What is missing.
        reason: &'static str,
    },
    /// An entry of API-key configuration text is well-formed, but its name, hash or scopes
    /// are refused.
    #[error("{origin}, line {line}: {source}")]
    InvalidApiKeyEntry {
        /// Where the text came from (the file path, or `the API-key text`).
        origin: String,
        /// The 1-based line of the entry.
        line: usize,
        /// Why the entry is refused ([`InvalidApiKeyName`](Self::InvalidApiKeyName),
        /// [`InvalidApiKeyHash`](Self::InvalidApiKeyHash) or
        /// [`InvalidScope`](Self::InvalidScope)).
        #[source]
        source: Box<ConfigError>,
    },
    /// An API-key file cannot be read.
    #[error("the API-key file {} cannot be read: {reason}", path.display())]
    ApiKeyFileUnreadable {
        /// The file.
        path: std::path::PathBuf,
        /// The operating system's explanation.
        reason: String,
    },
    /// An API-key file is larger than the limit.
    #[error(
        "the API-key file {} is larger than {limit} bytes; it is not an API-key list (one \
         short line per key)",
        path.display()
    )]
    ApiKeyFileTooLarge {
        /// The file.
        path: std::path::PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// A token prefix (of [`PrefixRouter`](crate::verify::PrefixRouter) or
    /// [`ApiKey::generate`](crate::verify::ApiKey::generate)) cannot tell its tokens apart.
    #[error("the token prefix {prefix:?} is refused: {reason}")]
    InvalidTokenPrefix {
        /// The prefix as given.
        prefix: String,
        /// Why.
        reason: &'static str,
    },
    /// Two routes of a [`PrefixRouter`](crate::verify::PrefixRouter) overlap: one prefix
    /// starts with the other, so a token could belong to both.
    #[error(
        "the token prefixes {first:?} and {second:?} overlap (one starts with the other), so a \
         token could match both; choose prefixes that cannot start each other"
    )]
    OverlappingTokenPrefixes {
        /// The prefix routed first.
        first: String,
        /// The prefix routed second.
        second: String,
    },
    /// The system's random number generator failed, so no API key could be generated.
    #[error("the system random number generator failed; no API key was generated, try again")]
    RandomUnavailable,
    /// The Redis URL given to the Redis state store could not be parsed.
    #[error(
        "the Redis URL is not valid ({reason}); use redis://[user:password@]host[:port][/db] \
         or rediss:// for TLS"
    )]
    InvalidRedisUrl {
        /// Why the client refused it (the URL itself is not repeated: it may hold a password).
        reason: String,
    },
    /// The key namespace of a shared state store is empty, too long or has characters other
    /// than ASCII letters, digits, `-`, `_`, `.` and `:`.
    #[error(
        "the state store namespace {namespace:?} must be 1 to 64 ASCII letters, digits, `-`, \
         `_`, `.` or `:`"
    )]
    InvalidStoreNamespace {
        /// The namespace given.
        namespace: String,
    },
    /// Something that spawns background tasks was built outside a Tokio runtime.
    #[error(
        "{what} must be built inside a Tokio runtime (call it from async code or runtime.enter())"
    )]
    NoTokioRuntime {
        /// What was being built.
        what: &'static str,
    },
    /// Session binding was given a shared store and told to forward unknown sessions.
    #[error(
        "session binding with a shared store knows every replica's sessions, so forwarding \
         unknown session ids would only let anyone claim them: drop \
         forward_unknown_sessions(true) or the store"
    )]
    ForwardingWithSharedSessions,
    /// The DPoP nonce window is outside the accepted range.
    #[error(
        "the DPoP nonce window of {window:?} is outside {min:?}..={max:?}; a nonce lives one to \
         two windows, so keep it between a few seconds and an hour (default 5 minutes)"
    )]
    DpopNonceWindow {
        /// The window given.
        window: std::time::Duration,
        /// The shortest accepted.
        min: std::time::Duration,
        /// The longest accepted.
        max: std::time::Duration,
    },
    /// The DPoP nonce secret is shorter than 32 bytes.
    #[error(
        "the DPoP nonce secret is {len} bytes; give at least 32 random bytes (the same on \
         every replica)"
    )]
    DpopNonceSecretTooShort {
        /// The length given.
        len: usize,
    },
    /// The DPoP proof `iat` window is longer than accepted.
    #[error(
        "the DPoP `iat` window ({past:?} past, {future:?} future) exceeds {max_past:?} past or \
         {max_future:?} future; a long window widens replay (default 60 s past, 30 s future)"
    )]
    DpopIatWindow {
        /// How old a proof may be.
        past: std::time::Duration,
        /// How far in the future a proof may be dated.
        future: std::time::Duration,
        /// The longest accepted past window.
        max_past: std::time::Duration,
        /// The longest accepted future window.
        max_future: std::time::Duration,
    },
    /// The DPoP public base URL is not an absolute http(s) URL without query or fragment.
    #[error(
        "the DPoP public base URL `{url}` must be an absolute http or https URL with a host and \
         no query or fragment (the origin clients address, e.g. https://api.example.com)"
    )]
    DpopPublicBaseUrl {
        /// The URL given.
        url: String,
    },
    /// DPoP is configured for a guard with no resource identifier and no public base URL, so
    /// the `htu` a proof must name is unknown.
    #[error(
        "DPoP needs the URL clients address: configure the guard for a protected resource or \
         set DpopConfig::builder().public_base_url(..)"
    )]
    DpopNoPublicUrl,
    /// The system's random number generator failed while creating the DPoP nonce secret.
    #[error(
        "the system random number generator failed while creating the DPoP nonce secret; try \
         again or set NonceConfig::secret"
    )]
    DpopRandomUnavailable,
}

/// Why a [`TokenVerifier`](crate::TokenVerifier) did not produce an [`AuthInfo`](crate::AuthInfo).
///
/// The variant decides the answer the client gets: [`VerifyError::InvalidToken`] becomes a 401
/// `invalid_token` challenge, [`VerifyError::Unavailable`] a 503, and
/// [`VerifyError::Misconfigured`] a 500. None of them lets the request through.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The token is not acceptable: malformed, badly signed, expired, inactive, revoked, ...
    #[error("the access token is invalid: {reason}")]
    InvalidToken {
        /// What is wrong, safe to show to the client (never contains the token).
        reason: Cow<'static, str>,
    },
    /// The token's issuer is not one this resource trusts.
    #[error("the token issuer `{issuer}` is not trusted by this resource")]
    UntrustedIssuer {
        /// The issuer named by the token.
        issuer: String,
    },
    /// The authorization server could not be reached, so the token could not be checked.
    #[error("the authorization server is unavailable: {reason}")]
    Unavailable {
        /// What failed (timeouts, 5xx, network).
        reason: String,
    },
    /// Our own configuration prevents verification (for example no `jwks_uri`).
    #[error("token verification is misconfigured: {reason}")]
    Misconfigured {
        /// What is missing or wrong.
        reason: String,
    },
}

impl VerifyError {
    /// Shorthand for [`VerifyError::InvalidToken`].
    pub fn invalid_token(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::InvalidToken {
            reason: reason.into(),
        }
    }

    /// Shorthand for [`VerifyError::Unavailable`].
    pub fn unavailable(reason: impl std::fmt::Display) -> Self {
        Self::Unavailable {
            reason: reason.to_string(),
        }
    }

    /// Shorthand for [`VerifyError::Misconfigured`].
    pub fn misconfigured(reason: impl std::fmt::Display) -> Self {
        Self::Misconfigured {
            reason: reason.to_string(),
        }
    }
}

impl From<DiscoveryError> for VerifyError {
    /// A discovery failure is a 503 when the authorization server could not be used right now
    /// (the network failed, nothing answered, or the answer was not a metadata document at
    /// all: what a failing server or proxy serves during an outage), and a 500 when a
    /// well-formed document cannot be trusted or does not fit (another issuer, a foreign
    /// endpoint, not MCP-compliant: that needs an operator, not a retry).
    fn from(error: DiscoveryError) -> Self {
        match &error {
            DiscoveryError::Fetch(_)
            | DiscoveryError::NotFound { .. }
            | DiscoveryError::InvalidMetadata { .. } => Self::unavailable(&error),
            _ => Self::misconfigured(&error),
        }
    }
}
