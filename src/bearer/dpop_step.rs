//! The DPoP step of the guard (RFC 9449 §4.3, §7.1, §11.1): checking a request's proof and
//! recording its `jti`, and [`DpopPolicy`], the guard's DPoP settings as it shows them.

use super::error::BearerAuthError;
use super::guard::RequestContext;
use crate::auth_info::TokenBinding;
use crate::dpop::{CheckedProof, DpopSettings, ProofError, ProofTarget};
use crate::store::{StateKey, StateKind};
use crate::time::unix_now;

/// The DPoP policy of a guard, as [`BearerAuth::dpop_config`](crate::BearerAuth::dpop_config)
/// shows it.
#[derive(Debug, Clone, Copy)]
pub struct DpopPolicy<'a> {
    pub(super) settings: &'a DpopSettings,
}

impl DpopPolicy<'_> {
    /// The accepted proof algorithms, in the configured order
    /// (`dpop_signing_alg_values_supported`).
    pub fn algorithms(&self) -> &[crate::verify::JwsAlgorithm] {
        &self.settings.algorithms
    }

    /// Whether DPoP is required, `Bearer` refused (`dpop_bound_access_tokens_required`).
    pub fn required(&self) -> bool {
        self.settings.require
    }
}

/// Proves a `DPoP` request (RFC 9449 §7.1): its proof passes §4.3 for `token`, and the
/// proof's key is the one the token is bound to (`jkt`, its `cnf.jkt`). A token bound to no key
/// cannot be used with the DPoP scheme. Gives the binding and the proof, whose `jti` is recorded
/// once every other check passed ([`consume_proof`]).
pub(super) fn prove_dpop(
    dpop: &DpopSettings,
    request: &RequestContext,
    token: &str,
    jkt: Option<&str>,
) -> Result<(TokenBinding, CheckedProof), BearerAuthError> {
    let proof = check_dpop_proof(dpop, request, token)?;
    let Some(jkt) = jkt else {
        return Err(BearerAuthError::TokenBindingMismatch {
            reason: "the DPoP scheme was used with a token that is not bound to a DPoP key (no \
                     cnf.jkt)",
        });
    };
    let same =
        aws_lc_rs::constant_time::verify_slices_are_equal(jkt.as_bytes(), proof.jkt.as_bytes())
            .is_ok();
    if !same {
        return Err(BearerAuthError::TokenBindingMismatch {
            reason: "the DPoP proof is signed by another key than the one the token is bound to \
                     (cnf.jkt)",
        });
    }
    let binding = TokenBinding::DpopKey {
        jkt: jkt.to_owned(),
    };
    Ok((binding, proof))
}

/// Checks the request's DPoP proof (RFC 9449 §4.3) for `token`, now.
fn check_dpop_proof(
    dpop: &DpopSettings,
    request: &RequestContext,
    token: &str,
) -> Result<CheckedProof, BearerAuthError> {
    let Some(htu) = dpop.expected_htu(request.uri.path()) else {
        return Err(BearerAuthError::InvalidDpopProof {
            reason: "the request's URL cannot be formed from the public base URL and its path",
        });
    };
    let target = ProofTarget {
        method: request.method.as_str(),
        htu: &htu,
        token,
        now: unix_now(),
    };
    crate::dpop::check_proof(dpop, &request.dpop, &target).map_err(|error| match error {
        ProofError::Invalid(reason) => BearerAuthError::InvalidDpopProof { reason },
        ProofError::UseNonce(nonce) => BearerAuthError::UseDpopNonce { nonce },
    })
}

/// Records the proof's `jti` (with its key) for the `iat` window; a `jti` already there is a
/// replay. A store failure refuses the request (503): fail closed.
pub(super) async fn consume_proof(
    dpop: &DpopSettings,
    proof: &CheckedProof,
) -> Result<(), BearerAuthError> {
    let key = StateKey::new(
        StateKind::DpopProof,
        &[proof.jkt.as_bytes(), &proof.jti_hash],
    );
    match dpop
        .store
        .insert_if_absent(&key, b"1", dpop.replay_ttl())
        .await
    {
        Ok(true) => Ok(()),
        Ok(false) => Err(BearerAuthError::DpopProofReplayed),
        Err(error) => Err(BearerAuthError::StoreUnavailable {
            reason: error.to_string(),
        }),
    }
}
