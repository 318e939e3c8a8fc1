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
pub(crate) mod plumbing;
mod session;

pub use bearer::{BearerAuthLayer, BearerAuthService, ResponseFuture};
pub use mcp_guard::{McpChecksLayer, McpChecksService, McpGuard, McpGuardLayer, McpGuardService};
pub use metadata::{AUTHORIZATION_SERVER_METADATA_PATH, DEFAULT_METADATA_MAX_AGE, MetadataService};
pub use operation_scopes::{
    ChallengeScopes, DEFAULT_MAX_BODY_BYTES, DuplicateMember, HEADER_MISMATCH_CODE, HeaderMismatch,
    MCP_METHOD, MCP_NAME, MCP_PROTOCOL_VERSION, OperationScopes, OperationScopesBuilder,
    OperationScopesFuture, OperationScopesLayer, OperationScopesService,
};
pub use session::{
    DEFAULT_MAX_SESSIONS, DEFAULT_MAX_SESSIONS_PER_PRINCIPAL, DEFAULT_SESSION_IDLE_TIMEOUT,
    DEFAULT_TOMBSTONE_CAPACITY, MAX_TOMBSTONE_CAPACITY, MCP_SESSION_ID, SessionBinding,
    SessionBindingBuilder, SessionBindingFuture, SessionBindingLayer, SessionBindingService,
};
