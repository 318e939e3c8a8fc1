//! Tower integration: the bearer guard as middleware ([`BearerAuthLayer`]), the MCP-aware
//! checks on top of it ([`McpGuard`]: per-operation scopes with step-up challenges, sessions
//! bound to their caller), and the well-known metadata endpoints as a service
//! ([`MetadataService`]).
//!
//! All work with anything built on tower: axum (`Router::layer`, `route_service`,
//! `fallback_service`), hyper (through `hyper_util::service::TowerToHyperService`) and rmcp's
//! `StreamableHttpService`.

mod bearer;
mod mcp_guard;
mod metadata;
mod operation_scopes;
mod session;

pub use bearer::{BearerAuthLayer, BearerAuthService, ResponseFuture};
pub use mcp_guard::{McpChecksLayer, McpChecksService, McpGuard, McpGuardLayer, McpGuardService};
pub use metadata::{AUTHORIZATION_SERVER_METADATA_PATH, DEFAULT_METADATA_MAX_AGE, MetadataService};
pub use operation_scopes::{
    ChallengeScopes, DEFAULT_MAX_BODY_BYTES, DuplicateMember, GrantedScopes, MissingScopes,
    OperationScopes, OperationScopesFuture, OperationScopesLayer, OperationScopesService,
};
pub use session::{
    DEFAULT_MAX_SESSIONS, DEFAULT_SESSION_IDLE_TIMEOUT, MCP_SESSION_ID, SessionBinding,
    SessionBindingFuture, SessionBindingLayer, SessionBindingService,
};

/// A response future polled again after it completed: a caller bug. Answer 500 instead of
/// panicking.
pub(crate) fn polled_after_completion<B>(
    service: &'static str,
) -> http::Response<http_body_util::Either<B, http_body_util::Full<bytes::Bytes>>> {
    tracing::error!(service, "a response future was polled after it completed");
    let mut response = http::Response::new(http_body_util::Either::Right(
        http_body_util::Full::new(bytes::Bytes::new()),
    ));
    *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    response
}
