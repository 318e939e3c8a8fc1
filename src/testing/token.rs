//! Minting JWT access tokens, well-formed or deliberately broken.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::keys::{self, b64url};
use super::state::{IssuedToken, Shared};
use crate::time::unix_now;
use crate::verify::JwsAlgorithm;

/// The `client_id` claim of minted tokens unless set otherwise.
pub(crate) const DEFAULT_CLIENT_ID: &str = "test-client";

/// Builds a JWT access token signed by the [`TestAuthServer`](super::TestAuthServer)'s keys.
/// Get one from [`TestAuthServer::token`](super::TestAuthServer::token).
///
/// Defaults: header `{"alg": "RS256", "typ": "at+jwt", "kid": <current RS256 kid>}`; claims
/// `iss` = the issuer, `sub` = the sample user, `client_id` = `"test-client"`, `iat` = now,
/// `exp` = now + the token TTL, `jti` random; no `aud` and no `scope` unless set.
///
/// Anything can be overridden, including into invalid tokens: [`sign_hs256_with`],
/// [`unsigned`] and [`sign_with_unknown_key`] make tokens a verifier must reject.
/// Tokens from [`sign`] are also known to the server's introspection and userinfo
/// endpoints (active until `exp`, or until revoked).
///
/// [`sign`]: TokenBuilder::sign
/// [`sign_hs256_with`]: TokenBuilder::sign_hs256_with
/// [`unsigned`]: TokenBuilder::unsigned
/// [`sign_with_unknown_key`]: TokenBuilder::sign_with_unknown_key
#[derive(Clone)]
#[must_use]
pub struct TokenBuilder {
    shared: Arc<Shared>,
    alg: JwsAlgorithm,
    /// Header edits applied in order over the defaults: `Some` sets, `None` removes.
    header_edits: Vec<(String, Option<Value>)>,
    claims: Map<String, Value>,
}

impl fmt::Debug for TokenBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenBuilder")
            .field("alg", &self.alg)
            .field("header_edits", &self.header_edits)
            .field("claims", &self.claims)
            .finish_non_exhaustive()
    }
}

impl TokenBuilder {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let now = unix_now();
        let mut claims = Map::new();
        claims.insert("iss".into(), shared.config.issuer.clone().into());
        claims.insert(
            "sub".into(),
            shared.config.sample_user.subject.clone().into(),
        );
        claims.insert("client_id".into(), DEFAULT_CLIENT_ID.into());
        claims.insert("iat".into(), now.into());
        claims.insert(
            "exp".into(),
            now.saturating_add(shared.config.token_ttl_secs()).into(),
        );
        claims.insert("jti".into(), keys::random_token(16).into());
        TokenBuilder {
            shared,
            alg: JwsAlgorithm::Rs256,
            header_edits: Vec::new(),
            claims,
        }
    }

    /// The signing algorithm (default `RS256`); also sets the default `alg` and `kid` headers.
    pub fn alg(mut self, alg: JwsAlgorithm) -> Self {
        self.alg = alg;
        self
    }

    /// The `sub` claim. Default: the sample user's subject.
    pub fn subject(self, subject: impl Into<String>) -> Self {
        self.claim("sub", subject.into())
    }

    /// The `aud` claim: a string, or an array such as `["a", "b"]`. Default: none.
    pub fn audience(self, audience: impl Into<Value>) -> Self {
        self.claim("aud", audience)
    }

    /// The `scope` claim, space-separated (`"read write"`). Default: none.
    pub fn scope(self, scope: impl Into<String>) -> Self {
        self.claim("scope", scope.into())
    }

    /// The `client_id` claim. Default: `"test-client"`.
    pub fn client_id(self, client_id: impl Into<String>) -> Self {
        self.claim("client_id", client_id.into())
    }

    /// The `iss` claim. Default: the server's issuer.
    pub fn issuer(self, issuer: impl Into<String>) -> Self {
        self.claim("iss", issuer.into())
    }

    /// `exp` = `iat` + `ttl` (`iat` as currently set).
    pub fn expires_in(self, ttl: Duration) -> Self {
        let iat = self
            .claims
            .get("iat")
            .and_then(Value::as_i64)
            .unwrap_or_else(unix_now);
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        self.claim("exp", iat.saturating_add(ttl))
    }

    /// `exp` as seconds since the epoch; a past value makes an expired token.
    pub fn expires_at(self, exp: i64) -> Self {
        self.claim("exp", exp)
    }

    /// `iat` as seconds since the epoch. Default: now.
    pub fn issued_at(self, iat: i64) -> Self {
        self.claim("iat", iat)
    }

    /// `nbf` as seconds since the epoch. Default: none.
    pub fn not_before(self, nbf: i64) -> Self {
        self.claim("nbf", nbf)
    }

    /// Sets any claim (a JSON `null` is kept as `null`; use [`remove_claim`] to drop one).
    ///
    /// [`remove_claim`]: TokenBuilder::remove_claim
    pub fn claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.claims.insert(name.into(), value.into());
        self
    }

    /// Binds the token to a DPoP key (RFC 9449 §6.1): `cnf: {"jkt": <thumbprint>}`. Its
    /// introspection answer then says `token_type: "DPoP"`.
    pub fn dpop_bound(self, key: &super::DpopKey) -> Self {
        self.claim("cnf", serde_json::json!({ "jkt": key.jkt() }))
    }

    /// Binds the token to a client certificate (RFC 8705 §3.1): sets `cnf.x5t#S256` to
    /// `thumbprint` (base64url SHA-256 of the certificate's DER, see
    /// [`ClientCertificate::thumbprint_s256`](crate::mtls::ClientCertificate::thumbprint_s256)),
    /// keeping any other `cnf` member. Introspection answers for the token carry the same
    /// `cnf` at the top level (RFC 8705 §3.2). For an opaque token, pass
    /// `{"cnf": {"x5t#S256": thumbprint}}` to
    /// [`issue_opaque_token`](super::TestAuthServer::issue_opaque_token).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use mcp_auth::mtls::ClientCertificate;
    /// use mcp_auth::testing::TestAuthServer;
    ///
    /// let server = TestAuthServer::start().await?;
    /// let cert = ClientCertificate::from_der(vec![0x30, 0x00])?;
    /// let token = server
    ///     .token()
    ///     .audience("http://127.0.0.1:3001/mcp")
    ///     .certificate_thumbprint(cert.thumbprint_s256())
    ///     .sign();
    /// # let _ = token;
    /// # Ok(()) }
    /// ```
    pub fn certificate_thumbprint(mut self, thumbprint: impl Into<String>) -> Self {
        let cnf = self
            .claims
            .entry("cnf")
            .or_insert_with(|| Value::Object(Map::new()));
        if !cnf.is_object() {
            *cnf = Value::Object(Map::new());
        }
        if let Value::Object(cnf) = cnf {
            cnf.insert("x5t#S256".into(), Value::String(thumbprint.into()));
        }
        self
    }

    /// Removes a claim, e.g. `exp` or `iss`.
    pub fn remove_claim(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// Sets any header parameter, e.g. `jku`, `x5u`, `jwk`, `crit`. Setting `alg` changes
    /// only the header, not how the token is signed.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.header_edits.push((name.into(), Some(value.into())));
        self
    }

    /// Removes a header parameter, including a default one (`kid`, `typ`, even `alg`).
    pub fn remove_header(mut self, name: impl Into<String>) -> Self {
        self.header_edits.push((name.into(), None));
        self
    }

    /// The `kid` header. Default: the kid of the server's current key for the algorithm.
    pub fn kid(self, kid: impl Into<String>) -> Self {
        self.header("kid", kid.into())
    }

    /// The `typ` header; `None` removes it. Default: `"at+jwt"` (RFC 9068).
    pub fn typ(self, typ: Option<&str>) -> Self {
        match typ {
            Some(typ) => self.header("typ", typ),
            None => self.remove_header("typ"),
        }
    }

    /// The claims as they stand.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// Signs with the server's current key for the algorithm. The token is then known to
    /// introspection and userinfo (active while `exp` and `nbf` allow, until revoked).
    pub fn sign(self) -> String {
        let token = self.sign_unregistered();
        let sub = self
            .claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let issued = IssuedToken {
            userinfo: self.shared.profile_for(sub),
            claims: self.claims,
        };
        self.shared.remember_token(token.clone(), issued);
        token
    }

    /// Signs like [`TokenBuilder::sign`] without telling introspection about the token
    /// (ID tokens).
    pub(crate) fn sign_unregistered(&self) -> String {
        let keys = self.shared.keys();
        let header = self.build_header(self.alg.as_str(), Some(keys.kid(self.alg)));
        let input = signing_input(&header, &self.claims);
        let signature = keys.sign(self.alg, input.as_bytes());
        format!("{input}.{}", b64url(&signature))
    }

    /// Signs with HMAC-SHA-256 under `secret` and header `alg: HS256` (key-confusion tests:
    /// pass [`TestAuthServer::rsa_public_key_pem`](super::TestAuthServer::rsa_public_key_pem)).
    /// The `kid` defaults to the server's key for [`alg`](TokenBuilder::alg) (RS256 unless
    /// changed). Not known to introspection.
    pub fn sign_hs256_with(self, secret: &[u8]) -> String {
        let keys = self.shared.keys();
        let header = self.build_header("HS256", Some(keys.kid(self.alg)));
        let input = signing_input(&header, &self.claims);
        format!("{input}.{}", b64url(&keys::hs256(secret, input.as_bytes())))
    }

    /// An unsecured JWT: header `alg: none` (no `kid`), empty signature (`header.claims.`).
    /// Not known to introspection.
    pub fn unsigned(self) -> String {
        let header = self.build_header("none", None);
        format!("{}.", signing_input(&header, &self.claims))
    }

    /// Signs with a freshly generated key of the algorithm's type that is published
    /// nowhere, under the `kid` of the server's real key (a forged signature). Not known to
    /// introspection. Generating an RSA key takes tens of milliseconds.
    pub fn sign_with_unknown_key(self) -> String {
        let keys = self.shared.keys();
        let header = self.build_header(self.alg.as_str(), Some(keys.kid(self.alg)));
        let input = signing_input(&header, &self.claims);
        let signature = keys::sign_with_unknown_key(self.alg, input.as_bytes());
        format!("{input}.{}", b64url(&signature))
    }

    fn build_header(&self, alg: &str, kid: Option<&str>) -> Map<String, Value> {
        let mut header = Map::new();
        header.insert("alg".into(), alg.into());
        header.insert("typ".into(), "at+jwt".into());
        if let Some(kid) = kid {
            header.insert("kid".into(), kid.into());
        }
        for (name, edit) in &self.header_edits {
            match edit {
                Some(value) => header.insert(name.clone(), value.clone()),
                None => header.remove(name),
            };
        }
        header
    }
}

fn signing_input(header: &Map<String, Value>, claims: &Map<String, Value>) -> String {
    let encode = |map: &Map<String, Value>| {
        // A JSON map always serialises; an empty segment is the harmless fallback.
        b64url(&serde_json::to_vec(map).unwrap_or_default())
    };
    format!("{}.{}", encode(header), encode(claims))
}
