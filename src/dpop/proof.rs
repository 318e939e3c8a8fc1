//! Checking a DPoP proof (RFC 9449 §4.3) against the request and the access token.

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderValue;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Map, Value};

use super::htu;
use super::thumbprint::jwk_thumbprint;
use super::{DpopSettings, ProofError};
use crate::verify::JwsAlgorithm;

/// The longest `DPoP` header accepted: 8 KiB (an RSA-4096 JWK and claims fit easily).
const MAX_PROOF_BYTES: usize = 8 * 1024;
/// The longest `jti` accepted.
const MAX_JTI_BYTES: usize = 256;
/// Private-key members a public JWK must not carry.
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

/// A proof that passed every check but the binding and the replay check.
#[derive(Debug)]
pub(crate) struct CheckedProof {
    /// The RFC 7638 thumbprint of the proof's key.
    pub(crate) jkt: String,
    /// SHA-256 of the `jti` (what the replay store keys on).
    pub(crate) jti_hash: [u8; 32],
}

/// The request facts a proof is checked against.
pub(crate) struct ProofTarget<'a> {
    pub(crate) method: &'a str,
    /// The normalised URL the client addressed.
    pub(crate) htu: &'a str,
    pub(crate) token: &'a str,
    pub(crate) now: i64,
}

fn invalid(reason: &'static str) -> ProofError {
    ProofError::Invalid(reason)
}

/// Checks the request's `DPoP` header values: exactly one, a well-formed compact JWS with
/// `typ` `dpop+jwt`, an allowed `alg`, a public `jwk` that verifies the signature, and claims
/// `htm`, `htu`, `iat`, `ath`, `jti` (and `nonce` when nonces are on) matching `target`.
pub(crate) fn check_proof(
    settings: &DpopSettings,
    values: &[HeaderValue],
    target: &ProofTarget<'_>,
) -> Result<CheckedProof, ProofError> {
    let value = match values {
        [] => return Err(invalid("the request has no DPoP proof header")),
        [one] => one,
        _ => return Err(invalid("the request has more than one DPoP header")),
    };
    if value.len() > MAX_PROOF_BYTES {
        return Err(invalid("the DPoP proof is too long"));
    }
    let proof = value
        .to_str()
        .map_err(|_| invalid("the DPoP proof is not ASCII"))?
        .trim_matches([' ', '\t']);
    let mut segments = proof.split('.');
    let (Some(header_b64), Some(_claims), Some(signature_b64), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(invalid(
            "the DPoP proof is not a compact JWS of three parts",
        ));
    };
    if signature_b64.is_empty() {
        return Err(invalid("the DPoP proof has no signature"));
    }
    let header =
        json_segment(header_b64).ok_or(invalid("the DPoP proof header is not a JSON object"))?;
    let typ = header.get("typ").and_then(Value::as_str);
    if !typ.is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt")) {
        return Err(invalid("the DPoP proof's typ is not dpop+jwt"));
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(JwsAlgorithm::from_name)
        .filter(|alg| settings.algorithms.contains(alg))
        .ok_or(invalid(
            "the DPoP proof's alg is not one of the allowed algorithms",
        ))?;
    let Some(Value::Object(jwk)) = header.get("jwk") else {
        return Err(invalid("the DPoP proof header has no jwk object"));
    };
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(invalid(
            "the DPoP proof's jwk contains private key material",
        ));
    }
    if jwk.get("kty").and_then(Value::as_str) != Some(alg.key_type()) {
        return Err(invalid("the DPoP proof's jwk kty does not match its alg"));
    }
    if let Some(curve) = curve_of(alg)
        && jwk.get("crv").and_then(Value::as_str) != Some(curve)
    {
        return Err(invalid("the DPoP proof's jwk crv does not match its alg"));
    }
    let jkt = jwk_thumbprint(jwk).map_err(invalid)?;
    let parsed: Jwk = serde_json::from_value(Value::Object(jwk.clone()))
        .map_err(|_| invalid("the DPoP proof's jwk is not a valid public key"))?;
    let key = DecodingKey::from_jwk(&parsed)
        .map_err(|_| invalid("the DPoP proof's jwk is not a valid public key"))?;
    let mut validation = Validation::new(alg.to_jsonwebtoken());
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Map<String, Value>>(proof, &key, &validation)
        .map_err(|_| invalid("the DPoP proof's signature does not verify with its jwk"))?
        .claims;

    let htm = claims.get("htm").and_then(Value::as_str);
    if htm != Some(target.method) {
        return Err(invalid("the DPoP proof's htm is not the request method"));
    }
    let proof_htu = claims
        .get("htu")
        .and_then(Value::as_str)
        .and_then(htu::normalise);
    if proof_htu.as_deref() != Some(target.htu) {
        return Err(invalid(
            "the DPoP proof's htu is not the URL of this request",
        ));
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_number)
        .and_then(crate::auth_info::numeric_date)
        .ok_or(invalid("the DPoP proof has no numeric iat"))?;
    let past = i64::try_from(settings.iat_past.as_secs()).unwrap_or(i64::MAX);
    let future = i64::try_from(settings.iat_future.as_secs()).unwrap_or(i64::MAX);
    if iat < target.now.saturating_sub(past) {
        return Err(invalid("the DPoP proof is too old (iat)"));
    }
    if iat > target.now.saturating_add(future) {
        return Err(invalid("the DPoP proof is dated in the future (iat)"));
    }
    let ath = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, target.token.as_bytes()));
    if claims.get("ath").and_then(Value::as_str) != Some(ath.as_str()) {
        return Err(invalid(
            "the DPoP proof's ath is not the hash of this access token",
        ));
    }
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|jti| !jti.is_empty() && jti.len() <= MAX_JTI_BYTES)
        .ok_or(invalid("the DPoP proof has no jti of 1 to 256 bytes"))?;
    if let Some(nonces) = &settings.nonces {
        let accepted = claims
            .get("nonce")
            .and_then(Value::as_str)
            .is_some_and(|nonce| nonces.accepts(nonce, target.now));
        if !accepted {
            return Err(ProofError::UseNonce(nonces.issue(target.now)));
        }
    }
    let mut jti_hash = [0u8; 32];
    jti_hash.copy_from_slice(digest::digest(&digest::SHA256, jti.as_bytes()).as_ref());
    Ok(CheckedProof { jkt, jti_hash })
}

/// The JWK `crv` an algorithm's keys must name (RSA keys have none).
fn curve_of(alg: JwsAlgorithm) -> Option<&'static str> {
    match alg {
        JwsAlgorithm::Es256 => Some("P-256"),
        JwsAlgorithm::Es384 => Some("P-384"),
        JwsAlgorithm::EdDsa => Some("Ed25519"),
        _ => None,
    }
}

/// A base64url segment decoded as a JSON object.
fn json_segment(segment: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}
