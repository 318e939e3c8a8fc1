//! RFC 7638 JWK thumbprints: SHA-256 over the key's required members only, in lexicographic
//! order, with no whitespace, base64url without padding.

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// The RFC 7638 SHA-256 thumbprint of a public JWK (`kty` `EC`, `RSA` or `OKP`), base64url.
///
/// # Errors
///
/// A static reason when `kty` is missing or unknown, or a required member is not a string.
pub(crate) fn jwk_thumbprint(jwk: &Map<String, Value>) -> Result<String, &'static str> {
    let kty = jwk
        .get("kty")
        .and_then(Value::as_str)
        .ok_or("the jwk has no kty")?;
    // The required members of each key type, already in lexicographic order (RFC 7638 §3.2).
    let members: &[&str] = match kty {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        _ => return Err("the jwk's kty is not EC, RSA or OKP"),
    };
    let mut canonical = String::from("{");
    for (i, name) in members.iter().enumerate() {
        let value = jwk
            .get(*name)
            .and_then(Value::as_str)
            .ok_or("the jwk lacks a required member, or it is not a string")?;
        if i > 0 {
            canonical.push(',');
        }
        // serde_json escapes exactly as JSON requires; these are plain strings.
        canonical.push_str(&Value::String((*name).to_owned()).to_string());
        canonical.push(':');
        canonical.push_str(&Value::String(value.to_owned()).to_string());
    }
    canonical.push('}');
    let hash = digest::digest(&digest::SHA256, canonical.as_bytes());
    Ok(URL_SAFE_NO_PAD.encode(hash.as_ref()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn thumb(v: Value) -> Result<String, &'static str> {
        jwk_thumbprint(v.as_object().unwrap())
    }

    #[test]
    fn rfc7638_section_3_1_example() {
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumb(jwk),
            Ok("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs".to_owned())
        );
    }

    #[test]
    fn optional_members_and_order_do_not_change_the_thumbprint() {
        let a = thumb(json!({"kty": "EC", "crv": "P-256", "x": "xx", "y": "yy"})).unwrap();
        let b = thumb(
            json!({"y": "yy", "use": "sig", "x": "xx", "kid": "k", "crv": "P-256", "kty": "EC"}),
        )
        .unwrap();
        assert_eq!(a, b);
        let okp = thumb(json!({"kty": "OKP", "crv": "Ed25519", "x": "xx"})).unwrap();
        assert_ne!(a, okp);
    }

    #[test]
    fn unknown_or_incomplete_keys_are_refused() {
        assert!(thumb(json!({"kty": "oct", "k": "abc"})).is_err());
        assert!(thumb(json!({"kty": "EC", "crv": "P-256", "x": "xx"})).is_err());
        assert!(thumb(json!({"kty": "RSA", "n": 5, "e": "AQAB"})).is_err());
        assert!(thumb(json!({"crv": "P-256"})).is_err());
    }
}
