//! Entry points for the fuzz targets in `fuzz/`. **Not part of the API**: hidden, behind the
//! `__fuzz` feature, and free to change in any release.
//!
//! The public API already reaches most parsers (the challenge renderer and parser, the metadata
//! types, the JWT verifier); this module adds what is crate-internal, without a verifier or a
//! runtime around it.
#![cfg(feature = "__fuzz")]
#![doc(hidden)]

use crate::bearer::BearerAuthError;

/// The token the bearer guard reads from these `Authorization` header values, or why it reads
/// none: exactly the guard's synchronous header check, with `max_len` as its
/// [`max_header_bytes`](crate::BearerAuthBuilder::max_header_bytes).
pub fn bearer_token(values: &[&[u8]], max_len: usize) -> Result<String, BearerAuthError> {
    crate::bearer::bearer_token(values.iter().copied(), max_len).map(str::to_owned)
}
