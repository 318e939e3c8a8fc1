//! DPoP (RFC 9449) client keys and proofs for tests: [`DpopKey`] and [`DpopProofBuilder`].
//!
//! A test signs proofs as a DPoP client would, and every member can be changed to build each
//! broken variant the guard must refuse.
//!
//! ```
//! use mcp_auth::testing::{DpopKey, TestAuthServer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = TestAuthServer::start().await?;
//! let key = DpopKey::generate();
//! // An access token bound to the key (`cnf.jkt`).
//! let token = server
//!     .token()
//!     .audience("http://localhost:3001/mcp")
//!     .dpop_bound(&key)
//!     .sign();
//! // The proof for one request: `Authorization: DPoP <token>` and `DPoP: <proof>`.
//! let proof = key
//!     .proof("POST", "http://localhost:3001/mcp")
//!     .access_token(&token)
//!     .sign();
//! assert_eq!(proof.split('.').count(), 3);
//!
//! // A broken variant: a proof for another URL and with a symmetric `alg`.
//! let bad = key.proof("POST", "http://localhost:3001/other").alg("HS256").sign();
//! # let _ = bad;
//! # Ok(())
//! # }
//! ```

use std::fmt;

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Map, Value, json};

use super::keys::{b64url, random_token};
use crate::time::unix_now;

/// A DPoP client key: an ES256 (P-256) key pair, generated fresh, never stored.
pub struct DpopKey {
    pair: EcdsaKeyPair,
    jwk: Map<String, Value>,
    jkt: String,
}

impl fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopKey")
            .field("jkt", &self.jkt)
            .finish_non_exhaustive()
    }
}

impl DpopKey {
    /// A fresh ES256 key.
    ///
    /// # Panics
    ///
    /// If the system random number generator fails (test helper only).
    #[allow(clippy::expect_used)]
    pub fn generate() -> Self {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .expect("generating a P-256 key needs a working system random number generator");
        // Uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
        let point = pair.public_key().as_ref();
        let (x, y) = (
            point.get(1..33).unwrap_or_default(),
            point.get(33..65).unwrap_or_default(),
        );
        let mut jwk = Map::new();
        jwk.insert("kty".into(), "EC".into());
        jwk.insert("crv".into(), "P-256".into());
        jwk.insert("x".into(), b64url(x).into());
        jwk.insert("y".into(), b64url(y).into());
        let jkt = crate::dpop::jwk_thumbprint(&jwk)
            .expect("a P-256 JWK has every member a thumbprint needs");
        Self { pair, jwk, jkt }
    }

    /// The public key as a JWK (`kty`, `crv`, `x`, `y`): what a proof's header carries.
    pub fn public_jwk(&self) -> Value {
        Value::Object(self.jwk.clone())
    }

    /// The RFC 7638 SHA-256 thumbprint of the key, base64url: the `cnf.jkt` of tokens bound
    /// to it.
    pub fn jkt(&self) -> &str {
        &self.jkt
    }

    /// A proof for a request with method `htm` to `htu`, with a fresh `jti` and `iat` now,
    /// `typ` `dpop+jwt`, `alg` `ES256` and the public `jwk`. Add
    /// [`access_token`](DpopProofBuilder::access_token) for a protected resource (`ath`).
    pub fn proof(&self, htm: &str, htu: &str) -> DpopProofBuilder<'_> {
        let mut header = Map::new();
        header.insert("typ".into(), "dpop+jwt".into());
        header.insert("alg".into(), "ES256".into());
        header.insert("jwk".into(), self.public_jwk());
        let mut claims = Map::new();
        claims.insert("jti".into(), random_token(16).into());
        claims.insert("htm".into(), htm.into());
        claims.insert("htu".into(), htu.into());
        claims.insert("iat".into(), unix_now().into());
        DpopProofBuilder {
            key: self,
            header,
            claims,
        }
    }

    #[allow(clippy::expect_used)]
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair
            .sign(&SystemRandom::new(), message)
            .expect("signing with a freshly generated P-256 key cannot fail")
            .as_ref()
            .to_vec()
    }
}

/// A DPoP proof being built by [`DpopKey::proof`]; every member can be set or removed.
#[derive(Debug, Clone)]
#[must_use]
pub struct DpopProofBuilder<'a> {
    key: &'a DpopKey,
    header: Map<String, Value>,
    claims: Map<String, Value>,
}

impl DpopProofBuilder<'_> {
    /// `ath`: base64url(SHA-256(`token`)), binding the proof to the access token.
    pub fn access_token(self, token: &str) -> Self {
        let hash = digest::digest(&digest::SHA256, token.as_bytes());
        self.claim("ath", b64url(hash.as_ref()))
    }

    /// `iat`, in seconds since the epoch (default: now).
    pub fn iat(self, iat: i64) -> Self {
        self.claim("iat", iat)
    }

    /// `jti` (default: 128 random bits).
    pub fn jti(self, jti: impl Into<String>) -> Self {
        self.claim("jti", jti.into())
    }

    /// `nonce`: the server's `DPoP-Nonce`.
    pub fn nonce(self, nonce: impl Into<String>) -> Self {
        self.claim("nonce", nonce.into())
    }

    /// The header's `typ` (default `dpop+jwt`); `None` removes it.
    pub fn typ(mut self, typ: Option<&str>) -> Self {
        match typ {
            Some(typ) => self.header.insert("typ".into(), typ.into()),
            None => self.header.remove("typ"),
        };
        self
    }

    /// The header's `alg` (default `ES256`). The proof is still signed with the ES256 key, so
    /// another value makes a proof whose `alg` lies (`HS256`, `none`, ...).
    pub fn alg(mut self, alg: &str) -> Self {
        self.header.insert("alg".into(), alg.into());
        self
    }

    /// The header's `jwk` (default: the key's public JWK): another key's, or one with a
    /// private member.
    pub fn jwk(mut self, jwk: Value) -> Self {
        self.header.insert("jwk".into(), jwk);
        self
    }

    /// Sets any claim.
    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(name.to_owned(), value.into());
        self
    }

    /// Removes a claim (`jti`, `htm`, `htu`, `iat`, `ath`, ...).
    pub fn remove_claim(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// Sets any header member.
    pub fn header(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.header.insert(name.to_owned(), value.into());
        self
    }

    /// The compact JWS, signed by the key (ES256 over the header and claims as set).
    pub fn sign(self) -> String {
        let input = format!(
            "{}.{}",
            b64url(json!(self.header).to_string().as_bytes()),
            b64url(json!(self.claims).to_string().as_bytes())
        );
        let signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", b64url(&signature))
    }
}
