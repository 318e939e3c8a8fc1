//! rmcp integration: the caller's [`AuthInfo`] and [`GrantedScopes`] as `#[tool]` arguments.
//!
//! rmcp's `StreamableHttpService` puts the whole `http::request::Parts` of each POST into the
//! tool's request context, and the [`BearerAuthLayer`](crate::BearerAuthLayer) in front of it
//! puts the verified [`AuthInfo`] into those parts' extensions. The identity therefore sits one
//! level down (`RequestContext.extensions → Parts → Parts.extensions → AuthInfo`), where rmcp's
//! own `Extension<AuthInfo>` does not look. This module reaches it:
//!
//! - `AuthInfo` implements rmcp's [`FromContextPart`], so a `#[tool]` function takes it as an
//!   argument directly; so does [`GrantedScopes`] (the granted scopes read through the guard's
//!   scope hierarchy), which [`McpGuard`](crate::tower::McpGuard)'s layer adds;
//! - [`auth_info_from_context`] and [`auth_info_from_extensions`] read it for handlers that
//!   take the whole [`RequestContext`];
//! - [`CallerBoundState`] seals state handles (rmcp's `RequestStateCodec`) bound to the
//!   verified caller (issuer, subject, client), so that a handle opens for nobody else: see
//!   [`state`] and the guide's *State handles bound to the caller* section.
//!
//! When no `AuthInfo` is there (the MCP service is not behind the bearer layer, or the
//! transport is not HTTP), a tool taking `AuthInfo` answers a JSON-RPC error ("internal error",
//! -32603, JSON-RPC's 500) with the message every adapter gives for this server bug (see
//! [`BearerAuthError::MissingAuthInfo`]); nothing
//! panics and the tool body never runs. A tool taking `GrantedScopes` behind the bearer layer
//! alone (not `McpGuard`'s) answers the same way, saying which layer adds them.
//!
//! ```no_run
//! use mcp_auth::AuthInfo;
//! use rmcp::model::CallToolResult;
//! use rmcp::{tool, tool_router};
//! use serde_json::json;
//!
//! #[derive(Clone)]
//! struct WhoAmI;
//!
//! #[tool_router(server_handler)]
//! impl WhoAmI {
//!     /// Returns the caller's identity.
//!     #[tool(description = "Who am I?")]
//!     async fn whoami(&self, auth: AuthInfo) -> CallToolResult {
//!         CallToolResult::structured(json!({ "sub": auth.subject, "scopes": auth.scopes }))
//!     }
//! }
//!
//! // Serve it behind the guard (see `mcp_auth::integrations::axum` or `::hyper`):
//! // let mcp = StreamableHttpService::new(|| Ok(WhoAmI), Default::default(), config);
//! // let app = axum::Router::new().route_service("/mcp", guard.layer().layer(mcp));
//! ```

use std::borrow::Cow;

use http::request::Parts;
use rmcp::RoleServer;
use rmcp::handler::server::common::{AsRequestContext, FromContextPart};
use rmcp::model::Extensions;
use rmcp::service::RequestContext;

use crate::auth_info::AuthInfo;
use crate::bearer::BearerAuthError;
use crate::scope::GrantedScopes;

pub mod state;

pub use state::{
    CallerBoundState, MAX_HANDLE_BYTES, RefusalReason, StateHandleError, principal_context,
};

/// What the client is told when a tool asks for [`GrantedScopes`] the request does not carry
/// although it is authenticated.
const MISSING_GRANTED_SCOPES: &str = "No GrantedScopes in the request extensions: the request \
     is authenticated, but the MCP service is behind BearerAuthLayer alone. Mount McpGuard's \
     layer instead (`guard.mcp_guard().layer()`), which adds them.";

/// The verified [`AuthInfo`] of the request behind an rmcp request context, if any.
///
/// Looks in the `http::request::Parts` that rmcp's Streamable HTTP transport stores in the
/// context (where the [`BearerAuthLayer`](crate::BearerAuthLayer) put it), and in the context's
/// own extensions (for transports that store it there directly).
///
/// ```
/// use mcp_auth::integrations::rmcp::auth_info_from_context;
/// use rmcp::model::CallToolResult;
/// use rmcp::service::RequestContext;
/// use rmcp::{ErrorData, RoleServer};
///
/// async fn handler(ctx: RequestContext<RoleServer>) -> Result<CallToolResult, ErrorData> {
///     let who = auth_info_from_context(&ctx)
///         .and_then(|info| info.subject.clone())
///         .unwrap_or_else(|| "anonymous".to_owned());
///     Ok(CallToolResult::success(vec![rmcp::model::ContentBlock::text(who)]))
/// }
/// ```
pub fn auth_info_from_context(context: &RequestContext<RoleServer>) -> Option<&AuthInfo> {
    auth_info_from_extensions(&context.extensions)
}

/// The verified [`AuthInfo`] in rmcp [`Extensions`] (a request's, a notification's or a
/// [`RequestContext`]'s), if any: see [`auth_info_from_context`].
pub fn auth_info_from_extensions(extensions: &Extensions) -> Option<&AuthInfo> {
    from_extensions(extensions)
}

/// A `T` in the HTTP request parts rmcp stores in `extensions`, or in `extensions` directly.
fn from_extensions<T: Send + Sync + 'static>(extensions: &Extensions) -> Option<&T> {
    extensions
        .get::<Parts>()
        .and_then(|parts| parts.extensions.get::<T>())
        .or_else(|| extensions.get::<T>())
}

/// The JSON-RPC answer (-32603) to a tool that asked for what the request lacks, logged.
fn internal_error(message: impl Into<Cow<'static, str>>) -> rmcp::ErrorData {
    let message = message.into();
    tracing::error!("a tool argument cannot be extracted: {message}");
    rmcp::ErrorData::internal_error(message, None)
}

/// `AuthInfo` as an argument of rmcp `#[tool]` (and `#[prompt]`) functions: see the
/// [module docs](self).
///
/// # Errors
///
/// When the request carries no verified `AuthInfo`, an `ErrorData` with code -32603 (internal
/// error) whose message names the layer to add: the one answer to
/// [`BearerAuthError::MissingAuthInfo`]. The tool
/// body does not run.
impl<C: AsRequestContext> FromContextPart<C> for AuthInfo {
    fn from_context_part(context: &mut C) -> Result<Self, rmcp::ErrorData> {
        auth_info_from_context(context.as_request_context())
            .cloned()
            .ok_or_else(|| internal_error(BearerAuthError::MissingAuthInfo.description()))
    }
}

/// `GrantedScopes` as an argument of rmcp `#[tool]` (and `#[prompt]`) functions, found where
/// [`AuthInfo`] is.
///
/// # Errors
///
/// An `ErrorData` with code -32603 (internal error) when the request carries none: with the
/// message of [`BearerAuthError::MissingAuthInfo`]
/// when it is not authenticated at all, otherwise one saying that
/// [`McpGuard`](crate::tower::McpGuard)'s layer adds them. The tool body does not run.
impl<C: AsRequestContext> FromContextPart<C> for GrantedScopes {
    fn from_context_part(context: &mut C) -> Result<Self, rmcp::ErrorData> {
        let extensions = &context.as_request_context().extensions;
        match from_extensions::<GrantedScopes>(extensions) {
            Some(scopes) => Ok(scopes.clone()),
            None if from_extensions::<AuthInfo>(extensions).is_none() => Err(internal_error(
                BearerAuthError::MissingAuthInfo.description(),
            )),
            None => Err(internal_error(MISSING_GRANTED_SCOPES)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts_with(info: Option<AuthInfo>) -> Parts {
        let (mut parts, ()) = http::Request::new(()).into_parts();
        if let Some(info) = info {
            parts.extensions.insert(info);
        }
        parts
    }

    fn alice() -> AuthInfo {
        AuthInfo::new("t", "https://as.example.com").with_subject("alice")
    }

    #[test]
    fn finds_the_auth_info_inside_the_http_parts() {
        let mut extensions = Extensions::new();
        extensions.insert(parts_with(Some(alice())));
        assert_eq!(auth_info_from_extensions(&extensions), Some(&alice()));
    }

    #[test]
    fn finds_an_auth_info_stored_directly_in_the_extensions() {
        let mut extensions = Extensions::new();
        extensions.insert(alice());
        assert_eq!(auth_info_from_extensions(&extensions), Some(&alice()));
    }

    #[test]
    fn parts_without_auth_info_give_none() {
        let mut extensions = Extensions::new();
        assert_eq!(auth_info_from_extensions(&extensions), None);
        extensions.insert(parts_with(None));
        assert_eq!(auth_info_from_extensions(&extensions), None);
    }
}
