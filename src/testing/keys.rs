//! Signing keys of the test authorization server: generation, JWKs, signatures.
//!
//! Keys are generated fresh for every server (never checked in) with aws-lc-rs. Each
//! (key, algorithm) pair gets its own `kid`, so every published JWK names exactly one `alg`.

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair, RSA_PKCS1_SHA256, RSA_PKCS1_SHA384, RSA_PKCS1_SHA512, RSA_PSS_SHA256, RSA_PSS_SHA384,
    RSA_PSS_SHA512, RsaEncoding, RsaKeyPair, RsaPublicKeyComponents,
};
use aws_lc_rs::{error::Unspecified, hmac, rand};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};

use crate::verify::JwsAlgorithm;

/// The algorithms published in the JWKS by default: `RS256`, `ES256` and `EdDSA`.
///
/// The server signs with any [`JwsAlgorithm`], the type the verifier uses, so a test names an
/// algorithm once. All RSA algorithms share one RSA-2048 key, but each algorithm is published
/// under its own `kid`, so that a JWK always names exactly one `alg`.
pub const DEFAULT_PUBLISHED_ALGS: [JwsAlgorithm; 3] = [
    JwsAlgorithm::Rs256,
    JwsAlgorithm::Es256,
    JwsAlgorithm::EdDsa,
];

/// The RSA signature scheme of `alg`, or `None` for EC and OKP algorithms.
fn rsa_encoding(alg: JwsAlgorithm) -> Option<&'static dyn RsaEncoding> {
    match alg {
        JwsAlgorithm::Rs256 => Some(&RSA_PKCS1_SHA256),
        JwsAlgorithm::Rs384 => Some(&RSA_PKCS1_SHA384),
        JwsAlgorithm::Rs512 => Some(&RSA_PKCS1_SHA512),
        JwsAlgorithm::Ps256 => Some(&RSA_PSS_SHA256),
        JwsAlgorithm::Ps384 => Some(&RSA_PSS_SHA384),
        JwsAlgorithm::Ps512 => Some(&RSA_PSS_SHA512),
        JwsAlgorithm::Es256 | JwsAlgorithm::Es384 | JwsAlgorithm::EdDsa => None,
    }
}

/// One generation of signing keys. `rotate_keys` replaces the whole set.
pub(crate) struct KeyStore {
    rsa: RsaKeyPair,
    p256: EcdsaKeyPair,
    p384: EcdsaKeyPair,
    ed25519: Ed25519KeyPair,
    kids: Vec<(JwsAlgorithm, String)>,
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyStore")
            .field("kids", &self.kids)
            .finish_non_exhaustive()
    }
}

impl KeyStore {
    /// Generates RSA-2048, P-256, P-384 and Ed25519 keys with fresh random `kid`s.
    /// RSA generation takes tens of milliseconds.
    pub(crate) fn generate() -> Result<Self, Unspecified> {
        let rsa = RsaKeyPair::generate(KeySize::Rsa2048)?;
        let p256 = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)?;
        let p384 = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING)?;
        let ed25519 = Ed25519KeyPair::generate()?;
        let kids = JwsAlgorithm::ALL
            .iter()
            .map(|alg| {
                (
                    *alg,
                    format!("{}-{}", alg.as_str().to_ascii_lowercase(), random_token(6)),
                )
            })
            .collect();
        Ok(KeyStore {
            rsa,
            p256,
            p384,
            ed25519,
            kids,
        })
    }

    /// The `kid` under which `alg` is published.
    pub(crate) fn kid(&self, alg: JwsAlgorithm) -> &str {
        self.kids
            .iter()
            .find(|(a, _)| *a == alg)
            // `generate` names every JwsAlgorithm; an unknown kid would only fail verification.
            .map_or("", |(_, kid)| kid.as_str())
    }

    /// The public JWK for `alg`: `kty`, `kid`, `use`, `alg` and the public members only.
    pub(crate) fn jwk(&self, alg: JwsAlgorithm) -> Value {
        let mut jwk = Map::new();
        jwk.insert("kty".into(), alg.key_type().into());
        jwk.insert("kid".into(), self.kid(alg).into());
        jwk.insert("use".into(), "sig".into());
        jwk.insert("alg".into(), alg.as_str().into());
        match alg {
            JwsAlgorithm::Es256 => {
                insert_ec_point(&mut jwk, "P-256", self.p256.public_key().as_ref())
            }
            JwsAlgorithm::Es384 => {
                insert_ec_point(&mut jwk, "P-384", self.p384.public_key().as_ref())
            }
            JwsAlgorithm::EdDsa => {
                jwk.insert("crv".into(), "Ed25519".into());
                jwk.insert(
                    "x".into(),
                    b64url(self.ed25519.public_key().as_ref()).into(),
                );
            }
            _ => {
                let components = RsaPublicKeyComponents::<Vec<u8>>::from(self.rsa.public_key());
                jwk.insert("n".into(), b64url(&components.n).into());
                jwk.insert("e".into(), b64url(&components.e).into());
            }
        }
        Value::Object(jwk)
    }

    /// A JWKS document holding the JWKs of `algs`, in that order.
    pub(crate) fn jwks(&self, algs: &[JwsAlgorithm]) -> Value {
        let keys: Vec<Value> = algs.iter().map(|alg| self.jwk(*alg)).collect();
        json!({ "keys": keys })
    }

    /// Signs `message` (the JWS signing input) with the key for `alg`.
    pub(crate) fn sign(&self, alg: JwsAlgorithm, message: &[u8]) -> Vec<u8> {
        sign_with(
            &self.rsa,
            &self.p256,
            &self.p384,
            &self.ed25519,
            alg,
            message,
        )
    }

    /// The RSA public key as a DER `RSAPublicKey` (PKCS#1).
    pub(crate) fn rsa_public_pkcs1_der(&self) -> Vec<u8> {
        self.rsa.public_key().as_ref().to_vec()
    }

    /// The RSA public key as a PEM `PUBLIC KEY` (X.509 SubjectPublicKeyInfo).
    // Test server only: encoding a key aws-lc-rs generated itself cannot fail.
    #[allow(clippy::expect_used)]
    pub(crate) fn rsa_public_spki_pem(&self) -> String {
        let der = self
            .rsa
            .public_key()
            .as_der()
            .expect("a generated RSA public key always encodes as SubjectPublicKeyInfo");
        let encoded = STANDARD.encode(der.as_ref());
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for line in encoded.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        pem
    }
}

fn insert_ec_point(jwk: &mut Map<String, Value>, curve: &str, uncompressed: &[u8]) {
    // X9.62 uncompressed form: 0x04 || x || y, both coordinates the same length.
    let coordinates = uncompressed.get(1..).unwrap_or_default();
    let (x, y) = coordinates.split_at(coordinates.len() / 2);
    jwk.insert("crv".into(), curve.into());
    jwk.insert("x".into(), b64url(x).into());
    jwk.insert("y".into(), b64url(y).into());
}

// Test server only: signing with keys aws-lc-rs generated itself cannot fail.
#[allow(clippy::expect_used)]
fn sign_with(
    rsa: &RsaKeyPair,
    p256: &EcdsaKeyPair,
    p384: &EcdsaKeyPair,
    ed25519: &Ed25519KeyPair,
    alg: JwsAlgorithm,
    message: &[u8],
) -> Vec<u8> {
    const REASON: &str = "signing with a freshly generated key cannot fail";
    let rng = rand::SystemRandom::new();
    if let Some(encoding) = rsa_encoding(alg) {
        let mut signature = vec![0; rsa.public_modulus_len()];
        rsa.sign(encoding, &rng, message, &mut signature)
            .expect(REASON);
        return signature;
    }
    let ecdsa = |key: &EcdsaKeyPair| key.sign(&rng, message).expect(REASON).as_ref().to_vec();
    match alg {
        JwsAlgorithm::Es256 => ecdsa(p256),
        JwsAlgorithm::Es384 => ecdsa(p384),
        _ => ed25519.sign(message).as_ref().to_vec(),
    }
}

/// Signs with a brand-new key of the right type that is published nowhere.
// Test server only: key generation already succeeded when the server started.
#[allow(clippy::expect_used)]
pub(crate) fn sign_with_unknown_key(alg: JwsAlgorithm, message: &[u8]) -> Vec<u8> {
    KeyStore::generate()
        .expect("generating a throwaway key set cannot fail")
        .sign(alg, message)
}

/// HMAC-SHA-256 of `message` under `secret` (for `alg: HS256` key-confusion tokens).
pub(crate) fn hs256(secret: &[u8], message: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::sign(&key, message).as_ref().to_vec()
}

/// `bytes` random bytes, base64url without padding.
// Test server only: the system random generator already served the key generation.
#[allow(clippy::expect_used)]
pub(crate) fn random_token(bytes: usize) -> String {
    let mut buffer = vec![0; bytes];
    rand::fill(&mut buffer).expect("the system random generator is available");
    b64url(&buffer)
}

/// base64url without padding, as JOSE wants it.
pub(crate) fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The PKCE S256 code challenge of `verifier` (RFC 7636 §4.2).
pub(crate) fn s256_challenge(verifier: &str) -> String {
    b64url(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()).as_ref())
}
