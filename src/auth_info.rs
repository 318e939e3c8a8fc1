//! [`AuthInfo`]: who the verified caller is, and [`CredentialKind`]: what they presented.

use std::fmt;

use serde_json::{Map, Value};

use crate::error::VerifyError;

/// The verified identity behind a request: what a tool handler gets after the bearer guard
/// accepted the token.
///
/// On success the guard inserts it into the request extensions; framework adapters hand it to
/// handlers as an extractor. `Debug` never prints the token.
///
/// ```
/// use mcp_auth::AuthInfo;
/// use serde_json::json;
///
/// let claims = json!({
///     "iss": "https://auth.example.com",
///     "sub": "alice",
///     "azp": "my-client",
///     "aud": "https://api.example.com/mcp",
///     "scope": "read  write",
///     "exp": 4102444800_i64,
/// });
/// let info = AuthInfo::from_claims("opaque-or-jwt", claims.as_object().unwrap().clone())?;
/// assert_eq!(info.subject.as_deref(), Some("alice"));
/// assert_eq!(info.client_id.as_deref(), Some("my-client"));
/// assert_eq!(info.scopes, ["read", "write"]);
/// assert_eq!(info.audience, ["https://api.example.com/mcp"]);
/// assert!(!format!("{info:?}").contains("opaque-or-jwt"));
/// # Ok::<(), mcp_auth::VerifyError>(())
/// ```
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct AuthInfo {
    /// The raw access token. Never logged; `Debug` shows it redacted.
    pub token: String,
    /// The issuer (`iss`) of the token.
    pub issuer: String,
    /// The subject (`sub`): the user, or the client for machine tokens.
    pub subject: Option<String>,
    /// The client the token was issued to: `client_id`, else `azp`.
    pub client_id: Option<String>,
    /// Granted scopes, from `scope` (space-separated), `scp` and `scopes`, without duplicates.
    pub scopes: Vec<String>,
    /// Audiences (`aud`), always as a list.
    pub audience: Vec<String>,
    /// Expiry (`exp`) in seconds since the Unix epoch.
    pub expires_at: Option<i64>,
    /// Every claim of the token, or of the userinfo / introspection answer.
    pub claims: Map<String, Value>,
    /// Which kind of credential was presented: [`CredentialKind::OAuth`] (the default, for
    /// every access token) or [`CredentialKind::ApiKey`], which only the built-in
    /// [`ApiKeyVerifier`](crate::verify::ApiKeyVerifier) sets.
    pub credential: CredentialKind,
    /// How the token is bound to the client (RFC 9449 DPoP key, RFC 8705 certificate), set by
    /// the bearer guard after checking the binding; see [`binding`](Self::binding).
    binding: TokenBinding,
}

/// How a verified access token is bound to its client ([`AuthInfo::binding`]).
///
/// The bearer guard sets it after it checked the binding the token's `cnf` claim declares:
/// an unbound token is a plain bearer token; a DPoP-bound one (RFC 9449, `cnf.jkt`) came with a
/// proof signed by the key of that thumbprint; a certificate-bound one (RFC 8705,
/// `cnf.x5t#S256`) came over a connection with that client certificate.
///
/// ```
/// use mcp_auth::{AuthInfo, TokenBinding};
///
/// let info = AuthInfo::new("t", "https://auth.example.com");
/// assert_eq!(info.binding(), &TokenBinding::Unbound);
/// let info = info.with_binding(TokenBinding::DpopKey { jkt: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into() });
/// assert!(matches!(info.binding(), TokenBinding::DpopKey { .. }));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenBinding {
    /// A bearer token: whoever holds it may use it.
    #[default]
    Unbound,
    /// Bound to a DPoP key (RFC 9449): the request carried a valid proof by that key.
    DpopKey {
        /// The key's RFC 7638 JWK SHA-256 thumbprint, base64url (the token's `cnf.jkt`).
        jkt: String,
    },
    /// Bound to a client certificate (RFC 8705): the request came with that certificate.
    Certificate {
        /// The certificate's SHA-256 thumbprint, base64url (the token's `cnf.x5t#S256`).
        x5t_s256: String,
    },
}

/// Which kind of credential an [`AuthInfo`] was verified from.
///
/// The bearer guard treats the kinds differently in one respect only: an API key is checked
/// against this server's own key list, so no authorization server issued it and it names no
/// audience; the guard's issuer and audience checks apply to OAuth tokens only (expiry and
/// scopes are checked for both). The [`ApiKey`](Self::ApiKey) variant cannot be constructed
/// outside this crate, so a custom verifier cannot turn those checks off.
///
/// ```
/// use mcp_auth::{AuthInfo, CredentialKind};
///
/// let info = AuthInfo::new("t", "https://auth.example.com");
/// assert_eq!(info.credential, CredentialKind::OAuth);
/// match &info.credential {
///     CredentialKind::ApiKey { name, .. } => println!("API key {name}"),
///     _ => println!("OAuth access token"),
/// }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CredentialKind {
    /// An OAuth access token (JWT or opaque), from any verifier but the API-key one.
    #[default]
    OAuth,
    /// A static API key, verified by [`ApiKeyVerifier`](crate::verify::ApiKeyVerifier).
    #[non_exhaustive]
    ApiKey {
        /// The key's configured name (never the key itself).
        name: String,
    },
}

impl CredentialKind {
    /// An API-key credential named `name` (crate-internal: only the API-key verifier makes it).
    pub(crate) fn api_key(name: impl Into<String>) -> Self {
        Self::ApiKey { name: name.into() }
    }

    /// Whether this is an API key.
    pub fn is_api_key(&self) -> bool {
        matches!(self, Self::ApiKey { .. })
    }

    /// The API key's name, if this is an API key.
    pub fn api_key_name(&self) -> Option<&str> {
        match self {
            Self::ApiKey { name } => Some(name),
            Self::OAuth => None,
        }
    }
}

impl fmt::Debug for AuthInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthInfo")
            .field("token", &"<redacted>")
            .field("issuer", &self.issuer)
            .field("subject", &self.subject)
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .field("audience", &self.audience)
            .field("expires_at", &self.expires_at)
            .field("claims", &self.claims)
            .field("credential", &self.credential)
            .field("binding", &self.binding)
            .finish()
    }
}

impl AuthInfo {
    /// An `AuthInfo` with a token and issuer and nothing else; fill the rest with the
    /// `with_*` methods. Handy in custom [`TokenVerifier`](crate::TokenVerifier)s.
    ///
    /// ```
    /// use mcp_auth::AuthInfo;
    ///
    /// let info = AuthInfo::new("t", "https://auth.example.com")
    ///     .with_subject("alice")
    ///     .with_scopes(["read"])
    ///     .with_audience(["https://api.example.com/mcp"]);
    /// assert!(info.has_scope("read"));
    /// ```
    pub fn new(token: impl Into<String>, issuer: impl Into<String>) -> Self {
        Self {
            token: token.into(),
            issuer: issuer.into(),
            subject: None,
            client_id: None,
            scopes: Vec::new(),
            audience: Vec::new(),
            expires_at: None,
            claims: Map::new(),
            credential: CredentialKind::OAuth,
            binding: TokenBinding::Unbound,
        }
    }

    /// How the token is bound to its client: [`TokenBinding::Unbound`] until the bearer guard
    /// checked a `cnf` binding (then the DPoP key or certificate thumbprint it matched).
    pub fn binding(&self) -> &TokenBinding {
        &self.binding
    }

    /// Sets the binding. The bearer guard overwrites it with what it checked, so a verifier
    /// setting it has no effect on what the guard lets through.
    #[must_use]
    pub fn with_binding(mut self, binding: TokenBinding) -> Self {
        self.binding = binding;
        self
    }

    /// Sets the subject.
    #[must_use]
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets the client id.
    #[must_use]
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// Sets the scopes.
    #[must_use]
    pub fn with_scopes(mut self, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the audiences.
    #[must_use]
    pub fn with_audience(mut self, audience: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.audience = audience.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the expiry (seconds since the Unix epoch).
    #[must_use]
    pub fn with_expires_at(mut self, expires_at: i64) -> Self {
        self.expires_at = Some(expires_at);
        self
    }

    /// Sets the claims.
    #[must_use]
    pub fn with_claims(mut self, claims: Map<String, Value>) -> Self {
        self.claims = claims;
        self
    }

    /// Builds an `AuthInfo` from a claim set (a verified JWT payload, a userinfo answer, or an
    /// introspection answer).
    ///
    /// - `iss` must be a non-empty string; `sub`, `client_id` and `azp`, when present, strings;
    /// - `client_id` wins over `azp` (Auth0 client-credentials tokens carry only `azp`);
    /// - scopes are the union of `scope` (space-separated, empty parts dropped), `scp` and
    ///   `scopes` (each a string or an array of strings);
    /// - `aud` is a string or an array of strings; `exp` a number.
    ///
    /// # Errors
    ///
    /// [`VerifyError::InvalidToken`] naming the claim whose type or value is wrong.
    pub fn from_claims(
        token: impl Into<String>,
        claims: Map<String, Value>,
    ) -> Result<Self, VerifyError> {
        let issuer = match claims.get("iss") {
            Some(Value::String(iss)) if !iss.is_empty() => iss.clone(),
            _ => {
                return Err(VerifyError::invalid_token(
                    "the `iss` claim is missing or is not a non-empty string",
                ));
            }
        };
        let subject = optional_string(&claims, "sub")?;
        let client_id = match optional_string(&claims, "client_id")? {
            Some(id) => Some(id),
            None => optional_string(&claims, "azp")?,
        };
        let scopes = scopes_from_claims(&claims)?;
        let audience = match claims.get("aud") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(aud)) => vec![aud.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(VerifyError::invalid_token(
                        "the `aud` claim must be a string or an array of strings",
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(VerifyError::invalid_token(
                    "the `aud` claim must be a string or an array of strings",
                ));
            }
        };
        let expires_at = match claims.get("exp") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(numeric_date(n).ok_or_else(|| {
                VerifyError::invalid_token("the `exp` claim is not a valid NumericDate")
            })?),
            Some(_) => {
                return Err(VerifyError::invalid_token(
                    "the `exp` claim must be a number",
                ));
            }
        };
        Ok(Self {
            token: token.into(),
            issuer,
            subject,
            client_id,
            scopes,
            audience,
            expires_at,
            claims,
            credential: CredentialKind::OAuth,
            binding: TokenBinding::Unbound,
        })
    }

    /// Whether the token was granted `scope` (exact match; scope hierarchies are applied by
    /// the bearer guard, not here).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// A claim by name.
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.claims.get(name)
    }
}

/// A NumericDate as whole seconds (fractions truncated); `None` if out of range.
pub(crate) fn numeric_date(n: &serde_json::Number) -> Option<i64> {
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = n.as_f64()?;
    // i64::MAX as f64 rounds up to 2^63, so compare with a strict bound.
    (f.is_finite() && (-9.0e18..=9.0e18).contains(&f)).then(|| f.trunc() as i64)
}

fn optional_string(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, VerifyError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(VerifyError::invalid_token(format!(
            "the `{name}` claim must be a string"
        ))),
    }
}

/// The union of `scope`, `scp` and `scopes`, in that order, without duplicates.
pub(crate) fn scopes_from_claims(claims: &Map<String, Value>) -> Result<Vec<String>, VerifyError> {
    let mut scopes: Vec<String> = Vec::new();
    for name in ["scope", "scp", "scopes"] {
        let mut push = |s: &str| {
            if !s.is_empty() && !scopes.iter().any(|x| x == s) {
                scopes.push(s.to_owned());
            }
        };
        match claims.get(name) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => s.split_ascii_whitespace().for_each(&mut push),
            Some(Value::Array(items)) => {
                for item in items {
                    match item {
                        Value::String(s) => push(s),
                        _ => {
                            return Err(VerifyError::invalid_token(format!(
                                "the `{name}` claim must be a string or an array of strings"
                            )));
                        }
                    }
                }
            }
            Some(_) => {
                return Err(VerifyError::invalid_token(format!(
                    "the `{name}` claim must be a string or an array of strings"
                )));
            }
        }
    }
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn scopes_come_from_scope_scp_and_scopes() {
        let info = AuthInfo::from_claims(
            "t",
            claims(json!({"iss": "https://a", "scope": " read  write ", "scp": ["write", "admin"], "scopes": "extra"})),
        )
        .unwrap();
        assert_eq!(info.scopes, ["read", "write", "admin", "extra"]);
    }

    #[test]
    fn scp_alone_is_read() {
        let info = AuthInfo::from_claims(
            "t",
            claims(json!({"iss": "https://a", "scp": "files.read"})),
        )
        .unwrap();
        assert_eq!(info.scopes, ["files.read"]);
    }

    #[test]
    fn no_scope_claims_give_no_scopes() {
        let info = AuthInfo::from_claims("t", claims(json!({"iss": "https://a"}))).unwrap();
        assert!(info.scopes.is_empty());
    }

    #[test]
    fn wrongly_typed_claims_are_invalid_tokens() {
        for bad in [
            json!({"iss": "https://a", "scope": {"read": true}}),
            json!({"iss": "https://a", "scope": ["read", 1]}),
            json!({"iss": "https://a", "aud": 42}),
            json!({"iss": "https://a", "aud": [["nested"]]}),
            json!({"iss": "https://a", "exp": "tomorrow"}),
            json!({"iss": "https://a", "exp": 1e300}),
            json!({"iss": "https://a", "sub": 7}),
            json!({"iss": "https://a", "client_id": 12345}),
            json!({"iss": ""}),
            json!({"iss": 5}),
            json!({}),
        ] {
            assert!(
                matches!(
                    AuthInfo::from_claims("t", claims(bad.clone())),
                    Err(VerifyError::InvalidToken { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn client_id_wins_over_azp_and_azp_is_the_fallback() {
        let both = AuthInfo::from_claims(
            "t",
            claims(json!({"iss": "https://a", "client_id": "", "azp": "x"})),
        )
        .unwrap();
        assert_eq!(both.client_id.as_deref(), Some(""));
        let azp =
            AuthInfo::from_claims("t", claims(json!({"iss": "https://a", "azp": "x"}))).unwrap();
        assert_eq!(azp.client_id.as_deref(), Some("x"));
        let none = AuthInfo::from_claims("t", claims(json!({"iss": "https://a"}))).unwrap();
        assert_eq!(none.client_id, None);
    }

    #[test]
    fn audience_is_always_a_list_and_exp_is_kept() {
        let one = AuthInfo::from_claims(
            "t",
            claims(json!({"iss": "https://a", "aud": "r", "exp": 10})),
        )
        .unwrap();
        assert_eq!(one.audience, ["r"]);
        assert_eq!(one.expires_at, Some(10));
        let many = AuthInfo::from_claims(
            "t",
            claims(json!({"iss": "https://a", "aud": ["r", "s"], "exp": 10.9})),
        )
        .unwrap();
        assert_eq!(many.audience, ["r", "s"]);
        assert_eq!(many.expires_at, Some(10));
    }

    #[test]
    fn debug_redacts_the_token() {
        let info = AuthInfo::new("secret-token-value", "https://a");
        let text = format!("{info:?}");
        assert!(!text.contains("secret-token-value"));
        assert!(text.contains("<redacted>"));
    }
}
