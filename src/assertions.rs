//! Compile-time facts about the public types: each is checked when the crate's tests build,
//! so a field that makes a type `!Send`, `!Sync` or not `Clone` fails the build, not a user.
#![allow(deprecated)] // DelegatedAuth is deprecated for users; its traits still matter.

use crate::bearer::{BearerAuth, BearerAuthBuilder, BearerRejection};
use crate::mcp_auth::{DelegatedAuth, McpAuth};
use crate::scope::{GrantedScopes, ScopeHierarchy};
use crate::tower::{
    BearerAuthLayer, McpGuard, McpGuardLayer, MetadataService, OperationScopes,
    OperationScopesLayer, SessionBinding, SessionBindingLayer,
};

/// Shared across threads and cheap to clone (an `Arc` or a few small fields inside): what the
/// docs promise for configurations, guards, layers and what handlers receive.
const _: () = {
    fn shared<T: Send + Sync + Clone + 'static>() {}
    let _ = shared::<McpAuth>;
    let _ = shared::<DelegatedAuth>;
    let _ = shared::<BearerAuth>;
    let _ = shared::<BearerAuthBuilder>;
    let _ = shared::<BearerRejection>;
    let _ = shared::<BearerAuthLayer>;
    let _ = shared::<McpGuard>;
    let _ = shared::<McpGuardLayer>;
    let _ = shared::<MetadataService>;
    let _ = shared::<OperationScopes>;
    let _ = shared::<OperationScopesLayer>;
    let _ = shared::<SessionBinding>;
    let _ = shared::<SessionBindingLayer>;
    let _ = shared::<GrantedScopes>;
    let _ = shared::<ScopeHierarchy>;
};

/// The hyper router holds its MCP service and nothing that is not `Send + Sync`.
#[cfg(feature = "hyper")]
const _: () = {
    fn send_sync<T: Send + Sync>() {}
    let _ = send_sync::<crate::integrations::hyper::McpRouter<()>>;
};
