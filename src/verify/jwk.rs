//! One JWK as a verification key (RFC 7517 hygiene) and the choice of key for a token.
//!
//! Keys with an unknown `kty` or curve, missing or malformed members, `use` other than `sig`,
//! `key_ops` without `verify`, an `alg` we do not verify with, symmetric (`oct`) keys, private
//! members, or RSA moduli under 2048 bits are skipped (logged) without affecting the other keys.
//! The key set that holds them is [`super::jwks`].

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde_json::{Map, Value};

use super::algorithm::JwsAlgorithm;

/// Smallest RSA modulus accepted, in bytes (2048 bits; RFC 7518 §3.3).
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// The key family (and curve) of a JWK, which fixes the algorithms it can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

impl KeyKind {
    fn fits(self, alg: JwsAlgorithm) -> bool {
        match self {
            KeyKind::Rsa => matches!(
                alg,
                JwsAlgorithm::Rs256
                    | JwsAlgorithm::Rs384
                    | JwsAlgorithm::Rs512
                    | JwsAlgorithm::Ps256
                    | JwsAlgorithm::Ps384
                    | JwsAlgorithm::Ps512
            ),
            KeyKind::EcP256 => alg == JwsAlgorithm::Es256,
            KeyKind::EcP384 => alg == JwsAlgorithm::Es384,
            KeyKind::Ed25519 => alg == JwsAlgorithm::EdDsa,
        }
    }
}

/// One usable verification key from a JWKS.
pub(crate) struct JwkKey {
    kid: Option<Box<str>>,
    /// The JWK's `alg`, when it names one: the only algorithm the key may verify.
    alg: Option<JwsAlgorithm>,
    kind: KeyKind,
    decoding_key: DecodingKey,
}

impl fmt::Debug for JwkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwkKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl JwkKey {
    /// The key, ready for `jsonwebtoken::decode`.
    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.decoding_key
    }

    /// Whether this key may verify a token signed with `alg` (RFC 8725 §3.1: one key, one
    /// algorithm, and the key type must fit).
    fn supports(&self, alg: JwsAlgorithm) -> bool {
        self.alg.is_none_or(|own| own == alg) && self.kind.fits(alg)
    }
}

/// What a lookup in one key set found.
pub(super) enum Selection {
    Found(Arc<JwkKey>),
    /// No key with this `kid` (or, without a `kid`, no key for the algorithm): a refresh may
    /// help.
    Missing,
    /// A refresh would not help: the reason is final.
    Unusable(&'static str),
}

/// The key of `keys` for a token with this `kid` and `alg`.
pub(super) fn select(keys: &[Arc<JwkKey>], kid: Option<&str>, alg: JwsAlgorithm) -> Selection {
    match kid {
        Some(kid) => {
            let mut named = false;
            for key in keys {
                if key.kid.as_deref() == Some(kid) {
                    if key.supports(alg) {
                        return Selection::Found(Arc::clone(key));
                    }
                    named = true;
                }
            }
            if named {
                Selection::Unusable(
                    "the key named by the token's `kid` is not for the token's algorithm",
                )
            } else {
                Selection::Missing
            }
        }
        None => {
            let mut fitting = keys.iter().filter(|key| key.supports(alg));
            match (fitting.next(), fitting.next()) {
                (Some(key), None) => Selection::Found(Arc::clone(key)),
                (None, _) => Selection::Missing,
                (Some(_), Some(_)) => Selection::Unusable(
                    "the token has no `kid` and several keys could have signed it",
                ),
            }
        }
    }
}

/// The usable keys of a JWKS `keys` array, at most `max_keys` of them.
pub(super) fn parse_keys(uri: &str, jwks: &[Value], max_keys: usize) -> Vec<Arc<JwkKey>> {
    let mut keys = Vec::new();
    let mut ignored_over_cap = 0usize;
    for (index, jwk) in jwks.iter().enumerate() {
        match parse_jwk(jwk) {
            Ok(key) if keys.len() < max_keys => keys.push(Arc::new(key)),
            Ok(_) => ignored_over_cap += 1,
            Err(Skip::Quietly(reason)) => {
                tracing::debug!(jwks_uri = %uri, index, reason, "ignoring a JWK");
            }
            Err(Skip::Loudly(reason)) => {
                tracing::warn!(jwks_uri = %uri, index, reason, "ignoring a JWK");
            }
        }
    }
    if ignored_over_cap > 0 {
        tracing::warn!(
            jwks_uri = %uri,
            max_keys,
            ignored = ignored_over_cap,
            "the JWKS has more usable keys than the configured maximum; the extra keys are ignored \
             (raise `JwtVerifierBuilder::max_keys` if this is expected)"
        );
    }
    keys
}

/// Why a JWK was not used. `Loudly` marks a publishing mistake worth a warning.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Skip {
    Quietly(&'static str),
    Loudly(&'static str),
}

pub(super) fn parse_jwk(jwk: &Value) -> Result<JwkKey, Skip> {
    let Value::Object(jwk) = jwk else {
        return Err(Skip::Loudly("not a JSON object"));
    };
    let kty = string_member(jwk, "kty")?.ok_or(Skip::Loudly("no `kty`"))?;
    if string_member(jwk, "use")?.is_some_and(|usage| usage != "sig") {
        return Err(Skip::Quietly("`use` is not `sig`"));
    }
    if let Some(ops) = jwk.get("key_ops") {
        let Value::Array(ops) = ops else {
            return Err(Skip::Loudly("`key_ops` is not an array"));
        };
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return Err(Skip::Quietly("`key_ops` does not include `verify`"));
        }
    }
    let alg = match string_member(jwk, "alg")? {
        None => None,
        Some(name) => Some(JwsAlgorithm::from_name(name).ok_or(Skip::Quietly(
            "its `alg` is not an algorithm we verify with",
        ))?),
    };
    let kid = string_member(jwk, "kid")?.map(Box::from);
    if jwk.contains_key("d") || jwk.contains_key("p") || jwk.contains_key("q") {
        // A published private key means anyone can sign: never trust it (OIDC Discovery §3).
        return Err(Skip::Loudly(
            "it contains private key material; the authorization server's key is compromised",
        ));
    }
    let (kind, decoding_key) = match kty {
        "RSA" => {
            let n = b64_member(jwk, "n")?;
            let e = b64_member(jwk, "e")?;
            let significant = n.iter().skip_while(|b| **b == 0).count();
            if significant < MIN_RSA_MODULUS_BYTES {
                return Err(Skip::Loudly("RSA modulus shorter than 2048 bits"));
            }
            if e.is_empty() || e.iter().all(|b| *b == 0) || e.len() > 8 {
                return Err(Skip::Loudly("invalid RSA exponent"));
            }
            (KeyKind::Rsa, DecodingKey::from_rsa_raw_components(&n, &e))
        }
        "EC" => {
            let (kind, size) = match string_member(jwk, "crv")? {
                Some("P-256") => (KeyKind::EcP256, 32),
                Some("P-384") => (KeyKind::EcP384, 48),
                _ => return Err(Skip::Quietly("unsupported or missing EC curve")),
            };
            let x = b64_member(jwk, "x")?;
            let y = b64_member(jwk, "y")?;
            if x.len() != size || y.len() != size {
                return Err(Skip::Loudly("EC coordinates of the wrong length"));
            }
            // Uncompressed SEC1 point, the form jsonwebtoken's `from_ec_components` builds.
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            (kind, DecodingKey::from_ec_der(&point))
        }
        "OKP" => {
            if string_member(jwk, "crv")? != Some("Ed25519") {
                return Err(Skip::Quietly("unsupported or missing OKP curve"));
            }
            let x = b64_member(jwk, "x")?;
            if x.len() != 32 {
                return Err(Skip::Loudly("Ed25519 key of the wrong length"));
            }
            (KeyKind::Ed25519, DecodingKey::from_ed_der(&x))
        }
        "oct" => {
            return Err(Skip::Loudly(
                "symmetric keys are never used to verify tokens",
            ));
        }
        _ => return Err(Skip::Quietly("unsupported `kty`")),
    };
    if alg.is_some_and(|alg| !kind.fits(alg)) {
        return Err(Skip::Loudly("its `alg` does not fit its key type"));
    }
    Ok(JwkKey {
        kid,
        alg,
        kind,
        decoding_key,
    })
}

fn string_member<'a>(
    jwk: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, Skip> {
    match jwk.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Skip::Loudly("a member that must be a string is not")),
    }
}

/// A required base64url member, decoded (trailing `=` padding tolerated).
fn b64_member(jwk: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, Skip> {
    let text = string_member(jwk, name)?.ok_or(Skip::Loudly("a required key member is missing"))?;
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| Skip::Loudly("a key member is not valid base64url"))
}

/// JWKs for the unit tests of this module and of [`super::jwks`].
#[cfg(test)]
pub(crate) mod fixtures {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::{Value, json};

    pub(crate) fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub(crate) fn rsa_jwk() -> Value {
        let mut n = vec![0xC5u8; 256];
        n[255] = 0x01;
        json!({"kty": "RSA", "kid": "r1", "n": b64(&n), "e": "AQAB"})
    }

    pub(crate) fn p256_jwk() -> Value {
        json!({"kty": "EC", "crv": "P-256", "kid": "e1", "x": b64(&[1; 32]), "y": b64(&[2; 32])})
    }

    pub(crate) fn ed_jwk() -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "kid": "o1", "x": b64(&[3; 32])})
    }

    pub(crate) fn with(mut jwk: Value, name: &str, value: Value) -> Value {
        jwk.as_object_mut().unwrap().insert(name.into(), value);
        jwk
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn well_formed_keys_of_each_type_are_used() {
        assert_eq!(parse_jwk(&rsa_jwk()).unwrap().kind, KeyKind::Rsa);
        assert_eq!(parse_jwk(&p256_jwk()).unwrap().kind, KeyKind::EcP256);
        assert_eq!(parse_jwk(&ed_jwk()).unwrap().kind, KeyKind::Ed25519);
        let p384 = json!({"kty": "EC", "crv": "P-384", "x": b64(&[1; 48]), "y": b64(&[2; 48])});
        assert_eq!(parse_jwk(&p384).unwrap().kind, KeyKind::EcP384);
    }

    #[test]
    fn encryption_keys_and_keys_without_verify_are_skipped() {
        assert!(parse_jwk(&with(rsa_jwk(), "use", json!("enc"))).is_err());
        assert!(parse_jwk(&with(rsa_jwk(), "use", json!("sig"))).is_ok());
        assert!(parse_jwk(&with(rsa_jwk(), "key_ops", json!(["encrypt"]))).is_err());
        assert!(parse_jwk(&with(rsa_jwk(), "key_ops", json!("verify"))).is_err());
        assert!(parse_jwk(&with(rsa_jwk(), "key_ops", json!(["sign", "verify"]))).is_ok());
    }

    #[test]
    fn malformed_or_foreign_keys_are_skipped() {
        let bad = [
            json!("RSA"),
            json!({"n": "AQAB"}),
            json!({"kty": "RSA", "e": "AQAB"}),
            with(rsa_jwk(), "n", json!("not*base64")),
            with(rsa_jwk(), "n", json!(b64(&[0xC5; 128]))),
            with(rsa_jwk(), "e", json!("")),
            with(rsa_jwk(), "kid", json!(7)),
            with(rsa_jwk(), "alg", json!("HS256")),
            with(rsa_jwk(), "alg", json!("ES256")),
            with(rsa_jwk(), "alg", json!("RSA-OAEP")),
            with(rsa_jwk(), "d", json!("AQAB")),
            with(p256_jwk(), "crv", json!("P-521")),
            with(p256_jwk(), "x", json!(b64(&[1; 31]))),
            with(p256_jwk(), "alg", json!("ES384")),
            with(ed_jwk(), "crv", json!("Ed448")),
            with(ed_jwk(), "x", json!(b64(&[3; 57]))),
            json!({"kty": "oct", "k": "c2VjcmV0"}),
            json!({"kty": "PQC", "x": "AA"}),
        ];
        for jwk in bad {
            assert!(parse_jwk(&jwk).is_err(), "{jwk}");
        }
    }

    #[test]
    fn a_bad_entry_does_not_break_the_others_and_the_cap_applies() {
        let keys = [
            json!({"kty": "PQC"}),
            rsa_jwk(),
            json!(null),
            p256_jwk(),
            ed_jwk(),
        ];
        assert_eq!(parse_keys("u", &keys, 64).len(), 3);
        let capped = parse_keys("u", &keys, 2);
        assert_eq!(capped.len(), 2);
        assert_eq!(capped[0].kid.as_deref(), Some("r1"));
        assert_eq!(capped[1].kid.as_deref(), Some("e1"));
    }
}
