//! [`ApiKeyVerifier`]: static API keys for CI jobs and machine clients, stored only as
//! hashes, each with a name and its own scopes.
//!
//! Mount it beside OAuth with a [`PrefixRouter`](super::PrefixRouter), so that tokens that
//! start with the keys' prefix (`mcpk_` by default) go to this verifier and every other token
//! to the OAuth verifier; a JWT is never tried as a key, nor a key as a JWT.
//!
//! ```
//! use mcp_auth::verify::{ApiKey, ApiKeyEntry, ApiKeyVerifier};
//! use mcp_auth::{TokenVerifier, VerifyError};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Once, offline: generate a key, hand the secret to the client, keep only the hash.
//! let key = ApiKey::generate(ApiKey::DEFAULT_PREFIX)?;
//! assert!(key.secret().starts_with("mcpk_"));
//! assert!(key.hash().starts_with("sha256:"));
//!
//! let verifier = ApiKeyVerifier::builder()
//!     .key(ApiKeyEntry::new("ci", key.hash()).scopes(["read"]))
//!     // Or from configuration: `name:sha256:<hex>:scope1 scope2`, entries separated by `;`.
//!     .keys_from_str(&format!("dashboard:{}:read write", ApiKey::hash_of("mcpk_other")))
//!     .build()?;
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let info = verifier.verify(key.secret()).await?;
//! assert_eq!(info.subject.as_deref(), Some("ci"));
//! assert_eq!(info.credential.api_key_name(), Some("ci"));
//! assert_eq!(info.scopes, ["read"]);
//! assert!(matches!(verifier.verify("mcpk_wrong").await, Err(VerifyError::InvalidToken { .. })));
//! # Ok::<(), VerifyError>(())
//! # })?;
//! # Ok(())
//! # }
//! ```
//!
//! # Why SHA-256, and not a password hash
//!
//! A key from [`ApiKey::generate`] holds 256 random bits. Salts and slow key-derivation
//! functions (Argon2, bcrypt, scrypt) exist to protect **low-entropy** secrets, passwords, from
//! guessing; a 256-bit random key cannot be guessed, so a leaked list of its SHA-256 digests
//! gives an attacker nothing to brute-force, and a slow hash would only make every request
//! slower (and an invalid-key flood a CPU attack). The digest is one fast SHA-256 per request
//! (aws-lc-rs, the crate's one crypto backend). This holds only for random keys: never
//! configure a human-chosen password as an API key.
//!
//! The presented key's digest is compared with **every** stored digest, each in constant time
//! and without stopping at a match, so the time taken does not say which key matched or how
//! much of a digest agreed (and digests of a guess say nothing about the key anyway).
//!
//! # What the guard does with a key
//!
//! The [`AuthInfo`] has [`credential`](AuthInfo::credential) =
//! [`CredentialKind::ApiKey`] with the key's name, `subject` = the entry's subject (the name
//! by default), the entry's scopes, the verifier's [`issuer`](ApiKeyVerifierBuilder::issuer),
//! no audience and no expiry. The bearer guard skips its issuer and audience checks for API
//! keys only (the key list is this server's own and authoritative; an audience is meaningless
//! for it) and applies everything else: required scopes (403 `insufficient_scope`),
//! per-operation scopes, session binding. An unknown key is 401 `invalid_token`. Keys carry no
//! expiry, so a guard with [`require_expiry`](crate::BearerAuthBuilder::require_expiry)
//! refuses them: rotate keys by adding the new one, moving clients, then removing the old one.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Map;

mod text;

use self::text::{parse_into, read_key_file};
use super::TokenVerifier;
use super::prefix_router::check_prefix;
use crate::auth_info::{AuthInfo, CredentialKind};
use crate::error::{ConfigError, VerifyError};
use crate::scope::check_scopes;

/// The largest API-key file [`ApiKeyVerifierBuilder::keys_from_file`] reads, in bytes.
pub const MAX_KEY_FILE_BYTES: u64 = 1024 * 1024;

/// The issuer of API-key [`AuthInfo`]s unless [`ApiKeyVerifierBuilder::issuer`] sets one.
pub const DEFAULT_ISSUER: &str = "urn:mcp-auth:api-key";

/// The label of the one hash algorithm stored hashes use.
const HASH_LABEL: &str = "sha256:";

/// Random bytes in a generated key: 256 bits.
const KEY_BYTES: usize = 32;

/// A freshly generated API key: the secret, shown once, and the hash to store.
///
/// `Debug` never prints the secret.
///
/// ```
/// use mcp_auth::verify::ApiKey;
///
/// let key = ApiKey::generate("mcpk_")?;
/// println!("give the client: {}", key.secret());
/// println!("configure:       ci:{}:read", key.hash());
/// assert_eq!(ApiKey::hash_of(key.secret()), key.hash());
/// assert!(!format!("{key:?}").contains(key.secret()));
/// # Ok::<(), mcp_auth::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct ApiKey {
    secret: String,
    hash: String,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("secret", &"<redacted>")
            .field("hash", &self.hash)
            .finish()
    }
}

impl ApiKey {
    /// The prefix the crate suggests for API keys (and the whoami example uses): `mcpk_`.
    pub const DEFAULT_PREFIX: &'static str = "mcpk_";

    /// A new key: `prefix` followed by 256 random bits from the system's generator, in
    /// unpadded base64url (43 characters).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidTokenPrefix`] for a prefix a bearer token cannot carry or that a
    /// JWT could start with (see [`PrefixRouterBuilder::route`](super::PrefixRouterBuilder::route)),
    /// and [`ConfigError::RandomUnavailable`] if the system generator fails.
    pub fn generate(prefix: &str) -> Result<Self, ConfigError> {
        check_prefix(prefix)?;
        let mut bytes = [0_u8; KEY_BYTES];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| ConfigError::RandomUnavailable)?;
        let secret = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes));
        let hash = Self::hash_of(&secret);
        Ok(Self { secret, hash })
    }

    /// The secret key: give it to the client once, then forget it.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The hash to store: `sha256:` and the SHA-256 of the secret in lowercase hex.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The storable hash of an existing key `secret`: `sha256:<64 lowercase hex digits>`, the
    /// SHA-256 of its UTF-8 bytes (the same as `printf %s "$KEY" | sha256sum`).
    pub fn hash_of(secret: &str) -> String {
        let digest = digest(&SHA256, secret.as_bytes());
        let mut hash = String::with_capacity(HASH_LABEL.len() + 64);
        hash.push_str(HASH_LABEL);
        for byte in digest.as_ref() {
            hash.push(hex_digit(byte >> 4));
            hash.push(hex_digit(byte & 0x0f));
        }
        hash
    }
}

fn hex_digit(nibble: u8) -> char {
    char::from_digit(u32::from(nibble), 16).unwrap_or('0')
}

/// One configured API key: its name, the hash of the secret, its scopes and its subject.
///
/// ```
/// use mcp_auth::verify::ApiKeyEntry;
///
/// let entry = ApiKeyEntry::new("nightly-ci", "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
///     .scopes(["read", "files:write"])
///     .subject("ci-bot@example.com");
/// # let _ = entry;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct ApiKeyEntry {
    name: String,
    hash: String,
    scopes: Vec<String>,
    subject: Option<String>,
}

impl ApiKeyEntry {
    /// A key named `name` (printable ASCII without space, `:` or `;`; shown in logs and in
    /// [`CredentialKind::ApiKey`]) whose secret hashes to `hash` (`sha256:<64 hex digits>`,
    /// see [`ApiKey::hash_of`]). Default: no scopes, subject = the name.
    pub fn new(name: impl Into<String>, hash: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            hash: hash.into(),
            scopes: Vec::new(),
            subject: None,
        }
    }

    /// The scopes the key grants (added to any set before). Default: none. Each must be an
    /// RFC 6749 §3.3 scope token ([`ConfigError::InvalidScope`] otherwise).
    pub fn scopes(mut self, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.scopes.extend(scopes.into_iter().map(Into::into));
        self
    }

    /// The subject of the [`AuthInfo`] (what session binding and tools see as the caller).
    /// Default: the key's name.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }
}

/// A verifier of static API keys; build it with [`ApiKeyVerifier::builder`]. Cheap to clone.
///
/// See the [module documentation](self) for the hash, the comparison and what the guard checks.
#[derive(Clone)]
pub struct ApiKeyVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    keys: Vec<StoredKey>,
}

struct StoredKey {
    name: String,
    subject: String,
    digest: [u8; 32],
    scopes: Vec<String>,
}

impl fmt::Debug for ApiKeyVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyVerifier")
            .field("issuer", &self.inner.issuer)
            .field("keys", &self.names().collect::<Vec<_>>())
            .finish()
    }
}

impl ApiKeyVerifier {
    /// A builder with no keys and the issuer [`DEFAULT_ISSUER`].
    pub fn builder() -> ApiKeyVerifierBuilder {
        ApiKeyVerifierBuilder::default()
    }

    /// A verifier of the keys in `text` (see [`ApiKeyVerifierBuilder::keys_from_str`]), with
    /// the defaults: what an environment variable such as `MCP_AUTH_API_KEYS` holds.
    ///
    /// # Errors
    ///
    /// Those of [`ApiKeyVerifierBuilder::build`].
    pub fn from_config(text: &str) -> Result<Self, ConfigError> {
        Self::builder().keys_from_str(text).build()
    }

    /// A verifier of the keys in the file at `path` (see
    /// [`ApiKeyVerifierBuilder::keys_from_file`]), with the defaults.
    ///
    /// # Errors
    ///
    /// Those of [`ApiKeyVerifierBuilder::build`].
    pub fn from_file(path: impl Into<PathBuf>) -> Result<Self, ConfigError> {
        Self::builder().keys_from_file(path).build()
    }

    /// The configured keys' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.inner.keys.iter().map(|key| key.name.as_str())
    }

    /// The issuer of the [`AuthInfo`]s this verifier returns.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The stored key whose digest is `digest`: every key is compared, in constant time, with
    /// no early exit.
    fn find(&self, digest: &[u8]) -> Option<&StoredKey> {
        let mut found = None;
        for key in &self.inner.keys {
            let equal = verify_slices_are_equal(&key.digest, digest).is_ok();
            // Hashes are unique (checked at build), so at most one key matches.
            found = if equal { Some(key) } else { found };
        }
        found
    }
}

#[async_trait::async_trait]
impl TokenVerifier for ApiKeyVerifier {
    async fn verify(&self, token: &str) -> Result<AuthInfo, VerifyError> {
        let presented = digest(&SHA256, token.as_bytes());
        let Some(key) = self.find(presented.as_ref()) else {
            return Err(VerifyError::invalid_token("the API key is not known"));
        };
        let mut info = AuthInfo::new(token, self.inner.issuer.clone())
            .with_subject(key.subject.clone())
            .with_scopes(key.scopes.iter().cloned())
            .with_claims(Map::new());
        info.credential = CredentialKind::api_key(key.name.clone());
        Ok(info)
    }
}

/// The settings of an [`ApiKeyVerifier`]; [`build`](Self::build) checks them all.
///
/// ```
/// use mcp_auth::verify::{ApiKey, ApiKeyVerifier};
/// use mcp_auth::ConfigError;
///
/// let hash = ApiKey::hash_of("mcpk_example");
/// let verifier = ApiKeyVerifier::builder()
///     .issuer("https://api.example.com/mcp")
///     .keys_from_str(&format!("ci:{hash}:read\n# a comment\ndash:{}:read write", ApiKey::hash_of("mcpk_2")))
///     .build()?;
/// assert_eq!(verifier.names().collect::<Vec<_>>(), ["ci", "dash"]);
///
/// // The same secret twice is refused, as are duplicate names, bad hashes and scopes.
/// let err = ApiKeyVerifier::builder()
///     .keys_from_str(&format!("a:{hash}; b:{hash}"))
///     .build()
///     .unwrap_err();
/// assert!(matches!(err, ConfigError::DuplicateApiKeyHash { .. }));
/// # Ok::<(), ConfigError>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct ApiKeyVerifierBuilder {
    issuer: String,
    sources: Vec<Source>,
}

#[derive(Clone, Debug)]
enum Source {
    Entry(ApiKeyEntry),
    Text(String),
    File(PathBuf),
}

impl Default for ApiKeyVerifierBuilder {
    fn default() -> Self {
        Self {
            issuer: DEFAULT_ISSUER.to_owned(),
            sources: Vec::new(),
        }
    }
}

impl ApiKeyVerifierBuilder {
    /// Adds one key.
    pub fn key(mut self, entry: ApiKeyEntry) -> Self {
        self.sources.push(Source::Entry(entry));
        self
    }

    /// Adds several keys.
    pub fn keys(mut self, entries: impl IntoIterator<Item = ApiKeyEntry>) -> Self {
        self.sources.extend(entries.into_iter().map(Source::Entry));
        self
    }

    /// Adds the keys of configuration text, parsed by [`build`](Self::build): entries
    /// `name:sha256:<64 hex digits>:scope1 scope2` (the scopes, space-separated, and their
    /// `:` are optional; scopes may contain `:`), separated by `;` or new lines. Blank entries
    /// and lines starting with `#` are ignored. The subject of each is its name.
    pub fn keys_from_str(mut self, text: &str) -> Self {
        self.sources.push(Source::Text(text.to_owned()));
        self
    }

    /// Adds the keys of the file at `path` (the format of
    /// [`keys_from_str`](Self::keys_from_str), at most [`MAX_KEY_FILE_BYTES`]), read by
    /// [`build`](Self::build).
    pub fn keys_from_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.sources.push(Source::File(path.into()));
        self
    }

    /// The issuer of the [`AuthInfo`]s, for tools and logs (the guard does not check it for
    /// API keys). Default: [`DEFAULT_ISSUER`]; this resource's own identifier is a good choice.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }

    /// The verifier.
    ///
    /// # Errors
    ///
    /// - [`ConfigError::NoApiKeys`] when no key is configured;
    /// - [`ConfigError::InvalidApiKeyName`], [`ConfigError::InvalidApiKeyHash`] or
    ///   [`ConfigError::InvalidScope`] for a key given with [`key`](Self::key);
    /// - [`ConfigError::MalformedApiKeyEntry`] or [`ConfigError::InvalidApiKeyEntry`] (with
    ///   the line) for configuration text or a file;
    /// - [`ConfigError::ApiKeyFileUnreadable`], [`ConfigError::ApiKeyFileTooLarge`];
    /// - [`ConfigError::DuplicateApiKeyName`], [`ConfigError::DuplicateApiKeyHash`];
    /// - [`ConfigError::EmptyIssuer`] for an empty issuer.
    pub fn build(self) -> Result<ApiKeyVerifier, ConfigError> {
        if self.issuer.is_empty() {
            return Err(ConfigError::EmptyIssuer);
        }
        let mut keys: Vec<StoredKey> = Vec::new();
        for source in self.sources {
            match source {
                Source::Entry(entry) => keys.push(stored_key(entry)?),
                Source::Text(text) => parse_into(&mut keys, &text, "the API-key text")?,
                Source::File(path) => {
                    let text = read_key_file(&path)?;
                    parse_into(&mut keys, &text, &format!("the file {}", path.display()))?;
                }
            }
        }
        if keys.is_empty() {
            return Err(ConfigError::NoApiKeys);
        }
        for (i, key) in keys.iter().enumerate() {
            for earlier in keys.iter().take(i) {
                if earlier.name == key.name {
                    return Err(ConfigError::DuplicateApiKeyName {
                        name: key.name.clone(),
                    });
                }
                if earlier.digest == key.digest {
                    return Err(ConfigError::DuplicateApiKeyHash {
                        first: earlier.name.clone(),
                        second: key.name.clone(),
                    });
                }
            }
        }
        Ok(ApiKeyVerifier {
            inner: Arc::new(Inner {
                issuer: self.issuer,
                keys,
            }),
        })
    }
}

/// Checks one entry and keeps what verification needs.
fn stored_key(entry: ApiKeyEntry) -> Result<StoredKey, ConfigError> {
    check_name(&entry.name)?;
    let digest = parse_hash(&entry.name, &entry.hash)?;
    check_scopes(
        "ApiKeyEntry::scopes",
        entry.scopes.iter().map(String::as_str),
    )?;
    let mut scopes: Vec<String> = Vec::with_capacity(entry.scopes.len());
    for scope in entry.scopes {
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    Ok(StoredKey {
        subject: entry.subject.unwrap_or_else(|| entry.name.clone()),
        name: entry.name,
        digest,
        scopes,
    })
}

fn check_name(name: &str) -> Result<(), ConfigError> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > 128 {
        "it is longer than 128 bytes"
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b':' && b != b';')
    {
        "use printable ASCII without spaces, `:` or `;`"
    } else {
        return Ok(());
    };
    Err(ConfigError::InvalidApiKeyName {
        name: crate::error::bounded_echo(name),
        reason,
    })
}

/// The digest of a stored hash `sha256:<64 hex digits>` (either case).
fn parse_hash(name: &str, hash: &str) -> Result<[u8; 32], ConfigError> {
    let invalid = |reason| ConfigError::InvalidApiKeyHash {
        name: name.to_owned(),
        reason,
    };
    let hex = hash
        .strip_prefix(HASH_LABEL)
        .ok_or_else(|| invalid("it does not start with `sha256:`"))?;
    if hex.len() != 64 {
        return Err(invalid(
            "it does not have exactly 64 hex digits after `sha256:`",
        ));
    }
    let mut digest = [0_u8; 32];
    for (byte, pair) in digest.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        let (Some(high), Some(low)) = (hex_value(pair.first()), hex_value(pair.get(1))) else {
            return Err(invalid("it has a character that is not a hex digit"));
        };
        *byte = (high << 4) | low;
    }
    Ok(digest)
}

fn hex_value(byte: Option<&u8>) -> Option<u8> {
    char::from(*byte?)
        .to_digit(16)
        .and_then(|v| u8::try_from(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn hash_of_is_the_sha256_hex_of_the_key() {
        // printf %s test | sha256sum
        assert_eq!(
            ApiKey::hash_of("test"),
            "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }

    #[test]
    fn generated_keys_have_the_prefix_256_bits_and_a_matching_hash() {
        let a = ApiKey::generate("mcpk_").unwrap();
        let b = ApiKey::generate("mcpk_").unwrap();
        assert_ne!(a.secret(), b.secret());
        let body = a.secret().strip_prefix("mcpk_").unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(body).unwrap().len(), 32);
        assert_eq!(ApiKey::hash_of(a.secret()), a.hash());
        assert!(!format!("{a:?}").contains(a.secret()));
    }

    #[test]
    fn generate_refuses_prefixes_a_jwt_or_header_could_confuse() {
        for prefix in ["", "ey", "eyJ", "eyJhb", "mc pk", "mcpk:"] {
            assert!(
                matches!(
                    ApiKey::generate(prefix),
                    Err(ConfigError::InvalidTokenPrefix { .. })
                ),
                "{prefix:?}"
            );
        }
    }

    #[test]
    fn a_known_key_gives_an_api_key_auth_info_with_its_scopes() {
        let verifier = ApiKeyVerifier::builder()
            .key(ApiKeyEntry::new("ci", ApiKey::hash_of("mcpk_one")).scopes(["read", "read"]))
            .key(
                ApiKeyEntry::new("dash", ApiKey::hash_of("mcpk_two"))
                    .scopes(["read", "write"])
                    .subject("dashboard@example.com"),
            )
            .build()
            .unwrap();
        let info = block_on(verifier.verify("mcpk_two")).unwrap();
        assert_eq!(info.credential.api_key_name(), Some("dash"));
        assert_eq!(info.subject.as_deref(), Some("dashboard@example.com"));
        assert_eq!(info.scopes, ["read", "write"]);
        assert_eq!(info.issuer, DEFAULT_ISSUER);
        assert!(info.audience.is_empty());
        assert_eq!(info.expires_at, None);
        let one = block_on(verifier.verify("mcpk_one")).unwrap();
        assert_eq!(one.subject.as_deref(), Some("ci"));
        assert_eq!(one.scopes, ["read"]);
    }

    #[test]
    fn an_unknown_key_is_an_invalid_token_that_does_not_echo_it() {
        let verifier =
            ApiKeyVerifier::from_config(&format!("ci:{}", ApiKey::hash_of("mcpk_one"))).unwrap();
        for wrong in ["mcpk_on", "mcpk_one ", "mcpk_ONE", "", "mcpk_one\0"] {
            let Err(VerifyError::InvalidToken { reason }) = block_on(verifier.verify(wrong)) else {
                panic!("{wrong:?} was accepted");
            };
            assert!(!reason.contains("mcpk_"), "{reason}");
        }
    }

    #[test]
    fn build_refuses_no_keys_duplicates_bad_names_hashes_and_scopes() {
        let h1 = ApiKey::hash_of("one");
        let h2 = ApiKey::hash_of("two");
        assert!(matches!(
            ApiKeyVerifier::builder().build(),
            Err(ConfigError::NoApiKeys)
        ));
        assert!(matches!(
            ApiKeyVerifier::from_config("# only a comment\n;"),
            Err(ConfigError::NoApiKeys)
        ));
        assert!(matches!(
            ApiKeyVerifier::builder()
                .key(ApiKeyEntry::new("a", &h1))
                .key(ApiKeyEntry::new("a", &h2))
                .build(),
            Err(ConfigError::DuplicateApiKeyName { name }) if name == "a"
        ));
        assert!(matches!(
            ApiKeyVerifier::builder()
                .key(ApiKeyEntry::new("a", &h1))
                .key(ApiKeyEntry::new("b", h1.to_uppercase().replace("SHA256:", "sha256:")))
                .build(),
            Err(ConfigError::DuplicateApiKeyHash { first, second }) if first == "a" && second == "b"
        ));
        for name in ["", "has space", "a:b", "a;b", "é"] {
            assert!(
                matches!(
                    ApiKeyVerifier::builder()
                        .key(ApiKeyEntry::new(name, &h1))
                        .build(),
                    Err(ConfigError::InvalidApiKeyName { .. })
                ),
                "{name:?}"
            );
        }
        for hash in [
            "mcpk_the_key_itself".to_owned(),
            h1.replace("sha256:", "SHA256:"),
            h1.replace("sha256:", "md5:"),
            format!("{h1}0"),
            h1.get(..70).unwrap().to_owned(),
            format!("sha256:{}", "g".repeat(64)),
            format!("sha256:{}é", "a".repeat(62)),
        ] {
            let err = ApiKeyVerifier::builder()
                .key(ApiKeyEntry::new("a", hash.clone()))
                .build()
                .unwrap_err();
            assert!(
                matches!(err, ConfigError::InvalidApiKeyHash { .. }),
                "{hash}: {err:?}"
            );
            assert!(!err.to_string().contains("mcpk_the_key"), "{err}");
        }
        assert!(matches!(
            ApiKeyVerifier::builder()
                .key(ApiKeyEntry::new("a", &h1).scopes(["read write"]))
                .build(),
            Err(ConfigError::InvalidScope {
                setting: "ApiKeyEntry::scopes",
                ..
            })
        ));
        assert!(matches!(
            ApiKeyVerifier::builder()
                .issuer("")
                .key(ApiKeyEntry::new("a", &h1))
                .build(),
            Err(ConfigError::EmptyIssuer)
        ));
    }

    #[test]
    fn debug_shows_names_not_hashes() {
        let verifier = ApiKeyVerifier::builder()
            .key(ApiKeyEntry::new("ci", ApiKey::hash_of("k")))
            .build()
            .unwrap();
        let text = format!("{verifier:?}");
        assert!(text.contains("ci"));
        assert!(!text.contains(&ApiKey::hash_of("k")[7..]));
    }
}
