//! [`JwsAlgorithm`]: the signature algorithms the JWT verifier (and its JWKS cache) know.

use std::fmt;
use std::str::FromStr;

use crate::error::ConfigError;

/// A JWS signature algorithm [`JwtVerifier`](crate::verify::JwtVerifier) can verify.
///
/// Only asymmetric algorithms exist here: the keys come from a public JWKS, so an `HS*`
/// (shared-secret) token could be forged by anyone who read that JWKS (RFC 8725 §2.1), and
/// `none` is never acceptable (RFC 9068 §2.1). Parsing `"HS256"` or `"none"` with
/// [`FromStr`] fails with a [`ConfigError`] that says so.
///
/// ```
/// use mcp_auth::verify::JwsAlgorithm;
///
/// assert_eq!("ES256".parse::<JwsAlgorithm>().unwrap(), JwsAlgorithm::Es256);
/// assert_eq!(JwsAlgorithm::EdDsa.as_str(), "EdDSA");
/// assert!("HS256".parse::<JwsAlgorithm>().is_err());
/// assert!("none".parse::<JwsAlgorithm>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JwsAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (`RS256`, the algorithm RFC 9068 requires).
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384 (`RS384`).
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512 (`RS512`).
    Rs512,
    /// RSASSA-PSS with SHA-256 (`PS256`).
    Ps256,
    /// RSASSA-PSS with SHA-384 (`PS384`).
    Ps384,
    /// RSASSA-PSS with SHA-512 (`PS512`).
    Ps512,
    /// ECDSA on P-256 with SHA-256 (`ES256`).
    Es256,
    /// ECDSA on P-384 with SHA-384 (`ES384`).
    Es384,
    /// Ed25519 (`EdDSA`).
    EdDsa,
}

impl JwsAlgorithm {
    /// Every supported algorithm; also the default allow-list of
    /// [`JwtVerifier`](crate::verify::JwtVerifier).
    pub const ALL: [JwsAlgorithm; 9] = [
        JwsAlgorithm::Rs256,
        JwsAlgorithm::Rs384,
        JwsAlgorithm::Rs512,
        JwsAlgorithm::Ps256,
        JwsAlgorithm::Ps384,
        JwsAlgorithm::Ps512,
        JwsAlgorithm::Es256,
        JwsAlgorithm::Es384,
        JwsAlgorithm::EdDsa,
    ];

    /// The JWK `kty` of keys for this algorithm: `"RSA"`, `"EC"` or `"OKP"`.
    pub fn key_type(self) -> &'static str {
        match self {
            JwsAlgorithm::Rs256
            | JwsAlgorithm::Rs384
            | JwsAlgorithm::Rs512
            | JwsAlgorithm::Ps256
            | JwsAlgorithm::Ps384
            | JwsAlgorithm::Ps512 => "RSA",
            JwsAlgorithm::Es256 | JwsAlgorithm::Es384 => "EC",
            JwsAlgorithm::EdDsa => "OKP",
        }
    }

    /// The JWS `alg` name, e.g. `"RS256"`.
    pub fn as_str(self) -> &'static str {
        match self {
            JwsAlgorithm::Rs256 => "RS256",
            JwsAlgorithm::Rs384 => "RS384",
            JwsAlgorithm::Rs512 => "RS512",
            JwsAlgorithm::Ps256 => "PS256",
            JwsAlgorithm::Ps384 => "PS384",
            JwsAlgorithm::Ps512 => "PS512",
            JwsAlgorithm::Es256 => "ES256",
            JwsAlgorithm::Es384 => "ES384",
            JwsAlgorithm::EdDsa => "EdDSA",
        }
    }

    /// The algorithm with exactly this `alg` name (case-sensitive, RFC 7515 §4.1.1). Unlike
    /// [`FromStr`], it says nothing about why a name is refused, and allocates nothing: for
    /// names that come from the network.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        JwsAlgorithm::ALL
            .into_iter()
            .find(|alg| alg.as_str() == name)
    }

    pub(crate) fn to_jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm;
        match self {
            JwsAlgorithm::Rs256 => Algorithm::RS256,
            JwsAlgorithm::Rs384 => Algorithm::RS384,
            JwsAlgorithm::Rs512 => Algorithm::RS512,
            JwsAlgorithm::Ps256 => Algorithm::PS256,
            JwsAlgorithm::Ps384 => Algorithm::PS384,
            JwsAlgorithm::Ps512 => Algorithm::PS512,
            JwsAlgorithm::Es256 => Algorithm::ES256,
            JwsAlgorithm::Es384 => Algorithm::ES384,
            JwsAlgorithm::EdDsa => Algorithm::EdDSA,
        }
    }
}

impl fmt::Display for JwsAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JwsAlgorithm {
    type Err = ConfigError;

    /// Parses an `alg` name (case-sensitive).
    ///
    /// # Errors
    ///
    /// - [`ConfigError::SharedSecretAlgorithm`] for `HS256`, `HS384`, `HS512` (in any case),
    ///   refused on purpose;
    /// - [`ConfigError::UnsignedAlgorithm`] for `none` (in any case);
    /// - [`ConfigError::UnsupportedAlgorithm`] for any other name that is not exactly one of
    ///   [`JwsAlgorithm::ALL`].
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        if let Some(alg) = Self::from_name(name) {
            return Ok(alg);
        }
        let algorithm = name.to_owned();
        // `get`, not slicing: the name may not be ASCII.
        if name
            .get(..2)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("HS"))
        {
            Err(ConfigError::SharedSecretAlgorithm { algorithm })
        } else if name.eq_ignore_ascii_case("none") {
            Err(ConfigError::UnsignedAlgorithm { algorithm })
        } else {
            Err(ConfigError::UnsupportedAlgorithm { algorithm })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_parse_case_sensitively_and_refuse_hs_and_none() {
        for alg in JwsAlgorithm::ALL {
            assert_eq!(alg.as_str().parse::<JwsAlgorithm>().unwrap(), alg);
            assert_eq!(JwsAlgorithm::from_name(alg.as_str()), Some(alg));
        }
        for bad in ["HS256", "hs384", "HS512"] {
            assert!(
                matches!(
                    bad.parse::<JwsAlgorithm>(),
                    Err(ConfigError::SharedSecretAlgorithm { algorithm }) if algorithm == bad
                ),
                "{bad}"
            );
        }
        for bad in ["none", "NONE"] {
            assert!(
                matches!(
                    bad.parse::<JwsAlgorithm>(),
                    Err(ConfigError::UnsignedAlgorithm { algorithm }) if algorithm == bad
                ),
                "{bad}"
            );
        }
        for bad in ["rs256", "ES512", "", "é"] {
            assert!(
                matches!(
                    bad.parse::<JwsAlgorithm>(),
                    Err(ConfigError::UnsupportedAlgorithm { algorithm }) if algorithm == bad
                ),
                "{bad}"
            );
            assert_eq!(JwsAlgorithm::from_name(bad), None);
        }
    }

    #[test]
    fn each_algorithm_names_its_key_type() {
        let rsa = JwsAlgorithm::ALL
            .into_iter()
            .filter(|alg| alg.key_type() == "RSA")
            .count();
        assert_eq!(rsa, 6);
        assert_eq!(JwsAlgorithm::Es384.key_type(), "EC");
        assert_eq!(JwsAlgorithm::EdDsa.key_type(), "OKP");
        assert_eq!(JwsAlgorithm::Ps512.to_string(), "PS512");
    }
}
