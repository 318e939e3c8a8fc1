//! Entry points for the fuzz targets in `fuzz/`. **Not part of the API**: hidden, behind the
//! `__fuzz` feature, and free to change in any release.
//!
//! The public API already reaches most parsers (the challenge renderer and parser, the metadata
//! types, the JWT verifier); this module adds what is crate-internal, without a verifier or a
//! runtime around it.
#![cfg(feature = "__fuzz")]
#![doc(hidden)]

use std::sync::Arc;

use crate::auth_info::AuthInfo;
use crate::bearer::{BearerAuth, BearerAuthError};
use crate::error::VerifyError;

/// The token the bearer guard reads from these `Authorization` header values, or why it reads
/// none: exactly the guard's synchronous header check, with `max_len` as its
/// [`max_header_bytes`](BearerAuth::max_header_bytes).
pub fn bearer_token(values: &[&[u8]], max_len: usize) -> Result<String, BearerAuthError> {
    let never_called = |_token: String| async {
        Err::<AuthInfo, _>(VerifyError::invalid_token("not used by the header check"))
    };
    BearerAuth::new(
        Arc::new(never_called),
        vec!["https://issuer.invalid".to_owned()],
        Some("https://resource.invalid/mcp".to_owned()),
        None,
    )
    .max_header_bytes(max_len)
    .extract_token(values.iter().copied())
}
