//! Per-operation scopes with step-up challenges: [`OperationScopes`] (the policy) and its
//! [`OperationScopesBuilder`]; the middleware that applies it, [`OperationScopesLayer`],
//! [`OperationScopesService`] and their [`OperationScopesFuture`]. The overview and examples
//! are on [`OperationScopes`]; the JSON-RPC probe that reads the body is in `probe`, the MCP
//! 2026-07-28 request headers (`Mcp-Method`, `Mcp-Name`) in `headers`.

mod headers;
mod layer;
mod probe;

use std::collections::HashMap;

pub use headers::{
    HEADER_MISMATCH_CODE, HeaderMismatch, MCP_METHOD, MCP_NAME, MCP_PROTOCOL_VERSION,
};
pub use layer::{OperationScopesFuture, OperationScopesLayer, OperationScopesService};

use self::probe::Incoming;
use crate::error::ConfigError;
use crate::scope::check_scopes;

/// The default cap on the request body the layer reads: 4 MiB, rmcp's own limit for MCP
/// messages (so the layer never refuses a message the MCP service would accept).
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The JSON-RPC method whose `params.name` selects a [tool](OperationScopesBuilder::tool).
const TOOLS_CALL: &str = "tools/call";

/// Which scopes a step-up challenge (`403 insufficient_scope`) names in its `scope` parameter.
///
/// Either way the list is deterministic: the guard's required scopes, then the operation's
/// scopes in the order the policy lists them (message order for batches), then (for
/// [`RequiredAndGranted`](Self::RequiredAndGranted)) the granted scopes in the token's order,
/// without repeats.
///
/// The default, [`ByRevision`](Self::ByRevision), follows the revision the request speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChallengeScopes {
    /// The strategy of the revision the request names in `MCP-Protocol-Version`, the one place
    /// a stateless server learns the negotiated revision: [`Required`](Self::Required) for MCP
    /// 2026-07-28 and later (and for a value the crate cannot read, which it treats as the
    /// newest revision), [`RequiredAndGranted`](Self::RequiredAndGranted) for 2025-11-25 and
    /// earlier, and for requests without the header (2025-03-26 clients). The default.
    ///
    /// So each client gets what its revision asks of servers: 2026-07-28 clients accumulate
    /// scopes themselves ("Scope accumulation across operations is a client-side
    /// responsibility") and are challenged with the operation's scopes only; older clients
    /// (the TypeScript SDK 1.x requests exactly the challenged `scope`) keep what they had.
    #[default]
    ByRevision,
    /// Every scope the operation needs: the guard's required scopes and the operation's own
    /// (MCP 2026-07-28: "the scopes needed to satisfy the current operation"; accumulating
    /// scopes across operations is the client's job).
    Required,
    /// Those plus the scopes the token already has that this resource recognises (MCP
    /// 2025-11-25's recommended strategy: "include both existing relevant scopes and newly
    /// required scopes", so that a client that requests exactly the challenged scopes does not
    /// lose what it had). Valid under both revisions; [`ByRevision`](Self::ByRevision) uses it
    /// for 2025-11-25 and earlier.
    ///
    /// A granted scope is *recognised* when the guard requires it, the policy names it, the
    /// guard's scope hierarchy names it, or it is listed with
    /// [`OperationScopesBuilder::known_scopes`]. Others (`openid`, `offline_access`, scopes of other
    /// APIs) are never echoed.
    RequiredAndGranted,
}

impl ChallengeScopes {
    /// The strategy for a request of `revision`.
    fn for_revision(self, revision: headers::Revision) -> Self {
        match (self, revision) {
            (Self::ByRevision, headers::Revision::Modern { .. }) => Self::Required,
            (Self::ByRevision, headers::Revision::Legacy) => Self::RequiredAndGranted,
            (chosen, _) => chosen,
        }
    }
}

/// The per-operation scope policy: which scopes an MCP operation needs on top of the bearer
/// guard's [required scopes](crate::BearerAuthBuilder::required_scopes).
///
/// The bearer guard checks the scopes every request needs. Some MCP operations need more: a
/// tool that deletes files, `resources/read` on private data. The policy maps operations to
/// scopes (a tool name for `tools/call`, or any JSON-RPC method: `resources/read`,
/// `prompts/get`, `tools/list`, ...; a `tools/call` needs both the method's scopes and the
/// tool's), satisfied directly or through the guard's
/// [scope hierarchy](crate::BearerAuthBuilder::scope_implies). The [`OperationScopesLayer`] refuses
/// an operation the token does not cover with the MCP step-up answer (2025-11-25 and
/// 2026-07-28, *Scope Challenge Handling*):
///
/// ```text
/// HTTP/1.1 403 Forbidden
/// WWW-Authenticate: Bearer error="insufficient_scope", error_description="...",
///     scope="<the scopes the operation needs>", resource_metadata="<the RFC 9728 metadata URL>"
/// ```
///
/// A client that follows the specification re-authorizes with those scopes and retries. What
/// goes into `scope` is one configurable strategy, [`ChallengeScopes`]. The JSON body is the
/// guard's (`insufficient_scope`, `missing_scopes`, and `cause` with `show_error_details`).
///
/// Build it with [`OperationScopes::builder`]; [`build`](OperationScopesBuilder::build)
/// refuses a scope no token could grant (empty, or with characters RFC 6749 §3.3 forbids), as
/// the guard does for its own required scopes. Publish the policy's scopes in the resource's
/// `scopes_supported` if clients should know them up front (or leave them out, so that clients
/// start with the base scopes and step up when needed).
///
/// Mount it through [`McpGuard`](crate::tower::McpGuard)
/// (`guard.mcp_guard().operation_scopes(policy)`), which puts it in the right place: after
/// authentication. The layer reads the request body only for `POST` requests and only when the
/// policy has entries, up to [`max_body_bytes`](OperationScopesBuilder::max_body_bytes) (413
/// beyond), and hands the same bytes on to the MCP service.
///
/// ```
/// use std::convert::Infallible;
/// use bytes::Bytes;
/// use http::{Request, Response, StatusCode};
/// use http_body_util::Full;
/// use mcp_auth::scope::GrantedScopes;
/// use mcp_auth::tower::OperationScopes;
/// use mcp_auth::{AuthInfo, AuthServer, AuthorizationServerMetadata, McpAuth, ProtectedResource, VerifyError};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// # let as_metadata = AuthorizationServerMetadata::authorization_code(
/// #     "https://auth.example.com", "https://auth.example.com/authorize",
/// #     "https://auth.example.com/token");
/// let auth = McpAuth::builder()
///     .protected_resource(
///         ProtectedResource::new("https://api.example.com/mcp")
///             .authorization_server(AuthServer::from_metadata(as_metadata)),
///     )
///     .build()?;
/// // A verifier for the example: every token is alice's, with the scope `files:read`.
/// let guard = auth
///     .bearer_auth("https://api.example.com/mcp", |token: String| async move {
///         Ok::<_, VerifyError>(
///             AuthInfo::new(token, "https://auth.example.com")
///                 .with_subject("alice")
///                 .with_audience(["https://api.example.com/mcp"])
///                 .with_scopes(["files:read"]),
///         )
///     })
///     .required_scopes(["files:read"])
///     .scope_implies("files:admin", ["files:write"])
///     .build()?;
///
/// let policy = OperationScopes::builder()
///     .tool("delete_file", ["files:write"])
///     .method("resources/read", ["files:read"])
///     .build()?;
/// let mcp = service_fn(|request: Request<_>| async move {
///     // The tool handler's view: the granted scopes, with the guard's hierarchy.
///     let scopes = request.extensions().get::<GrantedScopes>().cloned();
///     assert!(scopes.is_some_and(|s| s.has("files:read") && !s.has("files:write")));
///     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{}"))))
/// });
/// let service = guard.mcp_guard().operation_scopes(policy).layer().layer(mcp);
///
/// let call = |tool: &str| {
///     Request::post("/mcp")
///         .header("authorization", "Bearer t")
///         .body(Full::new(Bytes::from(format!(
///             r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{tool}"}}}}"#
///         ))))
/// };
/// let allowed = service.clone().oneshot(call("list_files")?).await?;
/// assert_eq!(allowed.status(), StatusCode::OK);
///
/// let refused = service.oneshot(call("delete_file")?).await?;
/// assert_eq!(refused.status(), StatusCode::FORBIDDEN);
/// assert_eq!(
///     refused.headers()["www-authenticate"],
///     "Bearer error=\"insufficient_scope\", error_description=\"The access token does not grant \
///      the scopes this request requires.\", scope=\"files:read files:write\", \
///      resource_metadata=\"https://api.example.com/.well-known/oauth-protected-resource/mcp\""
/// );
/// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
/// ```
///
/// # What the layer decides, and what it leaves to the MCP service
///
/// For the revisions before 2026-07-28 (the next section has what changes with it):
///
/// - Requests other than `POST`, and every request when the policy is empty: passed on
///   without reading the body.
/// - A body that is not JSON, a JSON value that is not a JSON-RPC message, a method or tool
///   the policy does not name: passed on unchanged (the MCP service answers parse errors and
///   unknown methods as it always does).
/// - A JSON-RPC batch (an array, MCP 2025-03-26 only; later revisions removed batches): every
///   message in it must be allowed; the challenge names the scopes of the whole batch. Under
///   2026-07-28 a batch is refused (see below).
/// - A message that has `method`, `params` or `params.name` twice: 400, since the layer and
///   the MCP service might read different values.
/// - A body over the cap: 413 (from `Content-Length` before reading, or while reading); a body
///   that fails to arrive: 400.
/// - A body with a `Content-Encoding` other than `identity` (gzip, br, ...): 415 with
///   `Accept-Encoding: identity`, unread. The layer decides on the JSON it reads, and compressed
///   bytes are not JSON; decompress in front of the guard if your clients compress requests.
///
/// # MCP 2026-07-28: `Mcp-Method` and `Mcp-Name`
///
/// From 2026-07-28 a client copies the operation into headers on every POST (Streamable HTTP,
/// *Request Metadata*): `Mcp-Method` (the body's `method`), and `Mcp-Name` for `tools/call`
/// and `prompts/get` (`params.name`) and `resources/read` (`params.uri`), as
/// `=?base64?<Base64 of UTF-8>?=` when the value is not plain header-safe ASCII. The layer
/// picks how to read a `POST` from its `MCP-Protocol-Version` header:
///
/// | `MCP-Protocol-Version` | What the layer does |
/// |---|---|
/// | absent (2025-03-26 clients), `2024-11-05`, `2025-03-26`, `2025-06-18`, `2025-11-25` | the body decides, as above; `Mcp-*` headers are not trusted |
/// | `2026-07-28`, a later or unreadable value (treated as the newest revision: the stricter reading) | `Mcp-Method` (and `Mcp-Name` for the three methods) required, once each; the policy decides from them; then the body must agree |
/// | twice | refused |
///
/// For a 2026-07-28 request:
///
/// - a missing, repeated or malformed header (characters outside visible ASCII, a
///   `=?base64?…?=` value that is not padded standard Base64 of UTF-8) is refused before the
///   policy runs, even when the policy is empty (the check reads no body);
/// - the policy decides from the headers: an operation the token does not cover gets the 403
///   step-up challenge **without the body being read**;
/// - an allowed operation's body is read (same cap, same `Content-Encoding` rule) and must be
///   one JSON-RPC object whose `method`, and `params.name` or `params.uri`, equal the headers
///   exactly (case-sensitive, after decoding); a batch, a duplicate member, a body that is not
///   one JSON object, or any difference is refused. So the scopes checked are always those of
///   the operation the MCP service runs;
/// - refusals of the headers are `400 Bad Request` with a JSON-RPC error response, code
///   `-32020` (`HeaderMismatch`, [`HEADER_MISMATCH_CODE`]), the request's `id` when the body
///   was read, and a message naming the header ([`HeaderMismatch`] lists the cases):
///
/// ```text
/// HTTP/1.1 400 Bad Request
/// Content-Type: application/json
///
/// {"jsonrpc":"2.0","id":1,"error":{"code":-32020,"message":"Header mismatch: the `Mcp-Name`
///  header does not match `params.name` in the request body; send the same value in both"}}
/// ```
///
/// With [`mcp_headers_checked_by_service`](OperationScopesBuilder::mcp_headers_checked_by_service)
/// (for MCP services that compare headers and body themselves, as rmcp 3.11 does), an allowed
/// `2026-07-28` request is passed on without its body being read. The step-up challenge's
/// `scope` follows the request's revision by default ([`ChallengeScopes::ByRevision`]).
///
/// # Checking scopes inside a tool
///
/// Some decisions depend on the arguments (deleting *this* file needs `files:admin`). The
/// layer inserts [`GrantedScopes`](crate::scope::GrantedScopes) into the request extensions;
/// an rmcp `#[tool]` takes it as an argument (feature `rmcp`). By then the HTTP response is no
/// longer the tool's to choose: the tool answers inside a `200` (or an SSE stream), so it
/// cannot produce the 403 step-up challenge. It should return a **tool error**
/// (`CallToolResult` with `isError: true`) naming the missing scopes
/// ([`MissingScopes`](crate::scope::MissingScopes)'s message does): the model and the user
/// see why, and the user can re-authorize. A JSON-RPC error (`ErrorData`) is for protocol failures
/// and is usually shown as a crash of the call. Neither makes a client re-authorize by
/// itself; when a scope should trigger step-up, put it in the policy (split the tool if the
/// need depends on its arguments).
///
/// ```no_run
/// # #[cfg(feature = "rmcp")]
/// # mod example {
/// use mcp_auth::scope::GrantedScopes;
/// use rmcp::handler::server::wrapper::Parameters;
/// use rmcp::model::{CallToolResult, ContentBlock};
/// use rmcp::{tool, tool_router};
///
/// #[derive(Clone)]
/// struct Files;
///
/// #[derive(serde::Deserialize, schemars::JsonSchema)]
/// struct Delete {
///     path: String,
/// }
///
/// #[tool_router(server_handler)]
/// impl Files {
///     #[tool(description = "Deletes a file; system files need files:admin")]
///     async fn delete_file(&self, scopes: GrantedScopes, Parameters(args): Parameters<Delete>) -> CallToolResult {
///         if args.path.starts_with("/system/") {
///             if let Err(missing) = scopes.require(["files:admin"]) {
///                 return CallToolResult::error(vec![ContentBlock::text(missing.to_string())]);
///             }
///         }
///         CallToolResult::success(vec![ContentBlock::text(format!("deleted {}", args.path))])
///     }
/// }
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct OperationScopes {
    tools: HashMap<String, Vec<String>>,
    methods: HashMap<String, Vec<String>>,
    known: Vec<String>,
    challenge: ChallengeScopes,
    max_body_bytes: usize,
    headers_checked_by_service: bool,
}

impl Default for OperationScopes {
    /// The empty policy: no operation needs more than the guard's scopes, and no body is read
    /// ([`McpGuard`](crate::tower::McpGuard)'s default).
    fn default() -> Self {
        Self {
            tools: HashMap::new(),
            methods: HashMap::new(),
            known: Vec::new(),
            challenge: ChallengeScopes::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            headers_checked_by_service: false,
        }
    }
}

impl OperationScopes {
    /// Starts a policy; nothing is required until an operation is listed.
    pub fn builder() -> OperationScopesBuilder {
        OperationScopesBuilder {
            policy: Self::default(),
        }
    }

    /// Whether no operation is listed (the layer then never reads a body).
    pub fn is_empty(&self) -> bool {
        self.tools.values().all(Vec::is_empty) && self.methods.values().all(Vec::is_empty)
    }

    /// The scopes the JSON-RPC message (or batch) in `body` needs from this policy, not
    /// counting the guard's required scopes: the method's scopes, then the tool's, in the
    /// order listed, without repeats. Empty for anything that is not a JSON-RPC request the
    /// policy names (not JSON, a notification or response, an unknown method or tool).
    ///
    /// # Errors
    ///
    /// [`DuplicateMember`] when a message has `method`, `params` or `params.name` more than
    /// once: which one counts is up to the parser, so the layer refuses to guess.
    pub fn scopes_for(&self, body: &[u8]) -> Result<Vec<&str>, DuplicateMember> {
        let mut scopes: Vec<&str> = Vec::new();
        for message in Incoming::read(body) {
            if let Some(member) = message.duplicate {
                return Err(DuplicateMember { member });
            }
            if let Some(method) = &message.method {
                self.add_scopes(method, message.name.as_deref(), &mut scopes);
            }
        }
        Ok(scopes)
    }

    /// The scopes one operation needs from this policy, not counting the guard's required
    /// scopes: those of `method`, then, for `tools/call`, those of the tool `name` (the
    /// decoded `Mcp-Name` of an MCP 2026-07-28 request, or the body's `params.name`), in the
    /// order listed, without repeats.
    ///
    /// ```
    /// use mcp_auth::tower::OperationScopes;
    ///
    /// let policy = OperationScopes::builder()
    ///     .method("tools/call", ["mcp:tools"])
    ///     .tool("delete_file", ["files:write"])
    ///     .build()?;
    /// assert_eq!(
    ///     policy.scopes_for_operation("tools/call", Some("delete_file")),
    ///     ["mcp:tools", "files:write"]
    /// );
    /// // A name only selects a tool under `tools/call`.
    /// assert!(policy.scopes_for_operation("prompts/get", Some("delete_file")).is_empty());
    /// # Ok::<(), mcp_auth::ConfigError>(())
    /// ```
    pub fn scopes_for_operation(&self, method: &str, name: Option<&str>) -> Vec<&str> {
        let mut scopes = Vec::new();
        self.add_scopes(method, name, &mut scopes);
        scopes
    }

    fn add_scopes<'a>(&'a self, method: &str, name: Option<&str>, scopes: &mut Vec<&'a str>) {
        let tool = match name {
            Some(tool) if method == TOOLS_CALL => self.tools.get(tool),
            _ => None,
        };
        for scope in self.methods.get(method).into_iter().chain(tool).flatten() {
            if !scopes.contains(&scope.as_str()) {
                scopes.push(scope);
            }
        }
    }

    /// Every scope the policy names.
    fn named_scopes(&self) -> impl Iterator<Item = &String> {
        self.tools
            .values()
            .chain(self.methods.values())
            .flatten()
            .chain(&self.known)
    }
}

/// The settings of an [`OperationScopes`] policy, checked in [`build`](Self::build). From
/// [`OperationScopes::builder`].
#[derive(Clone, Debug)]
#[must_use]
pub struct OperationScopesBuilder {
    policy: OperationScopes,
}

impl OperationScopesBuilder {
    /// The tool `name` (a `tools/call` whose `params.name` is `name`) needs every one of
    /// `scopes` (added to any listed before for it).
    pub fn tool(
        mut self,
        name: impl Into<String>,
        scopes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        extend_unique(
            self.policy.tools.entry(name.into()).or_default(),
            scopes.into_iter().map(Into::into),
        );
        self
    }

    /// Every request with the JSON-RPC method `method` (`resources/read`, `prompts/get`,
    /// `tools/call`, ...) needs every one of `scopes` (added to any listed before for it).
    pub fn method(
        mut self,
        method: impl Into<String>,
        scopes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        extend_unique(
            self.policy.methods.entry(method.into()).or_default(),
            scopes.into_iter().map(Into::into),
        );
        self
    }

    /// Scopes this resource recognises besides those the guard and the policy name (for
    /// example scopes a tool checks itself through
    /// [`GrantedScopes`](crate::scope::GrantedScopes)). Only matters for
    /// [`ChallengeScopes::RequiredAndGranted`] (which [`ChallengeScopes::ByRevision`] uses for
    /// requests before 2026-07-28): granted scopes are repeated in challenges only when the
    /// resource recognises them. Default: none.
    pub fn known_scopes(mut self, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        extend_unique(&mut self.policy.known, scopes.into_iter().map(Into::into));
        self
    }

    /// Which scopes a step-up challenge names. Default: [`ChallengeScopes::ByRevision`]
    /// ([`Required`](ChallengeScopes::Required) for MCP 2026-07-28 requests,
    /// [`RequiredAndGranted`](ChallengeScopes::RequiredAndGranted) for older ones).
    pub fn challenge_scopes(mut self, strategy: ChallengeScopes) -> Self {
        self.policy.challenge = strategy;
        self
    }

    /// The largest request body the layer reads, in bytes; a larger one is answered 413
    /// without being read whole. Default: [`DEFAULT_MAX_BODY_BYTES`] (4 MiB).
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.policy.max_body_bytes = limit;
        self
    }

    /// Lets MCP 2026-07-28 requests through without reading their body once their
    /// `Mcp-Method` and `Mcp-Name` headers allow the operation, because the MCP service behind
    /// the guard compares those headers with the body itself and refuses a mismatch before
    /// running anything. Off by default: the layer reads the body and checks that it agrees
    /// (400 with the JSON-RPC error `-32020` otherwise).
    ///
    /// Only say so when it is true. rmcp 3.11's `StreamableHttpService` is such a service: it
    /// checks `Mcp-Method` and `Mcp-Name` against the message it parsed (and answers 400
    /// `-32020`) for every request whose `MCP-Protocol-Version` is 2026-07-28 or later, in both
    /// its stateless and its session mode. A service that does not check lets a client name a
    /// harmless tool in `Mcp-Name` and call another in the body.
    ///
    /// Even then the body is read and checked for a request whose `MCP-Protocol-Version` is
    /// not exactly a revision this crate knows the header rules of (today `2026-07-28`: a later
    /// or unreadable value), and nothing changes for older revisions (the body decides). What
    /// it saves is the body read and parse, about 1 µs per request (see BENCHMARKS.md).
    pub fn mcp_headers_checked_by_service(mut self) -> Self {
        self.policy.headers_checked_by_service = true;
        self
    }

    /// Checks the policy.
    ///
    /// # Errors
    ///
    /// - [`ConfigError::EmptyOperationName`]: a tool or method named `""`;
    /// - [`ConfigError::InvalidScope`]: a scope that is empty or has characters RFC 6749 §3.3
    ///   forbids (space, `"`, `\`, non-ASCII), which no token could grant;
    /// - [`ConfigError::ZeroSetting`]: [`max_body_bytes`](Self::max_body_bytes) is 0.
    pub fn build(self) -> Result<OperationScopes, ConfigError> {
        let policy = self.policy;
        for (setting, operations) in [("tool", &policy.tools), ("method", &policy.methods)] {
            for (name, scopes) in operations {
                if name.is_empty() {
                    return Err(ConfigError::EmptyOperationName { setting });
                }
                check_scopes(setting, scopes.iter().map(String::as_str))?;
            }
        }
        check_scopes("known_scopes", policy.known.iter().map(String::as_str))?;
        if policy.max_body_bytes == 0 {
            return Err(ConfigError::ZeroSetting {
                setting: "max_body_bytes",
                advice: "it caps the request body the operation-scope layer reads, so 0 refuses \
                         every POST with 413; keep the default (4 MiB, rmcp's own limit)",
            });
        }
        Ok(policy)
    }
}

fn extend_unique(list: &mut Vec<String>, items: impl IntoIterator<Item = String>) {
    for item in items {
        if !list.contains(&item) {
            list.push(item);
        }
    }
}

/// A JSON-RPC message names `method`, `params` or `params.name` more than once, so the scope
/// layer cannot know which value the MCP service will read. Answered 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the JSON-RPC message has the member `{member}` more than once")]
pub struct DuplicateMember {
    member: &'static str,
}

impl DuplicateMember {
    /// The member that appears twice: `method`, `params` or `params.name`.
    pub fn member(&self) -> &'static str {
        self.member
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The policy every test of this module and of `layer` starts from.
    pub(super) fn policy() -> OperationScopesBuilder {
        OperationScopes::builder()
            .tool("delete", ["files:write"])
            .tool("purge", ["files:write", "files:admin"])
            .method("resources/read", ["files:read"])
    }

    fn built() -> OperationScopes {
        policy().build().unwrap()
    }

    /// A `tools/call` request for `tool`.
    pub(super) fn call(tool: &str) -> String {
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": {}}})
            .to_string()
    }

    #[test]
    fn tools_call_needs_the_method_scopes_then_the_tool_scopes_in_order() {
        let policy = policy()
            .method("tools/call", ["mcp:tools"])
            .build()
            .unwrap();
        assert_eq!(
            policy.scopes_for(call("purge").as_bytes()).unwrap(),
            ["mcp:tools", "files:write", "files:admin"]
        );
        assert_eq!(
            policy.scopes_for(call("list").as_bytes()).unwrap(),
            ["mcp:tools"]
        );
    }

    #[test]
    fn tool_scopes_apply_only_to_tools_call() {
        // A `name` under another method is not a tool name.
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "prompts/get", "params": {"name": "delete"}});
        assert!(
            built()
                .scopes_for(body.to_string().as_bytes())
                .unwrap()
                .is_empty()
        );
        let read = json!({"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": "file:///a"}});
        assert_eq!(
            built().scopes_for(read.to_string().as_bytes()).unwrap(),
            ["files:read"]
        );
    }

    #[test]
    fn unknown_methods_tools_notifications_and_non_json_need_nothing() {
        let p = built();
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.to_owned(),
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_owned(),
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#.to_owned(),
            call("unknown_tool"),
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":7}}"#.to_owned(),
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["delete"]}"#.to_owned(),
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#.to_owned(),
            "not json at all".to_owned(),
            String::new(),
            "42".to_owned(),
            "null".to_owned(),
            format!("{} trailing", call("delete")),
        ] {
            assert!(p.scopes_for(body.as_bytes()).unwrap().is_empty(), "{body}");
        }
    }

    #[test]
    fn batch_needs_the_scopes_of_every_message_in_message_order() {
        let batch = format!(
            r#"[{}, {{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{{"uri":"x"}}}}, 5, [1], {}]"#,
            call("purge"),
            call("delete")
        );
        assert_eq!(
            built().scopes_for(batch.as_bytes()).unwrap(),
            ["files:write", "files:admin", "files:read"]
        );
        assert!(built().scopes_for(b"[]").unwrap().is_empty());
    }

    #[test]
    fn escaped_keys_and_values_are_read_like_any_json_parser() {
        let body = r#"{"jsonrpc":"2.0","id":1,"meth\u006fd":"tools/call","params":{"n\u0061me":"del\u0065te"}}"#;
        assert_eq!(
            built().scopes_for(body.as_bytes()).unwrap(),
            ["files:write"]
        );
    }

    #[test]
    fn members_that_appear_twice_are_refused_not_guessed() {
        let cases = [
            (
                r#"{"method":"tools/list","method":"tools/call","params":{"name":"delete"}}"#,
                "method",
            ),
            (
                r#"{"method":"tools/call","params":{"name":"x"},"params":{"name":"delete"}}"#,
                "params",
            ),
            (
                r#"{"method":"tools/call","params":{"name":"delete","name":"list"}}"#,
                "params.name",
            ),
            (
                r#"[{"method":"tools/list"},{"method":"a","method":"b"}]"#,
                "method",
            ),
        ];
        for (body, member) in cases {
            assert_eq!(
                built().scopes_for(body.as_bytes()),
                Err(DuplicateMember { member }),
                "{body}"
            );
        }
        // Other members may repeat: they do not decide anything here.
        let body = r#"{"method":"tools/call","id":1,"id":2,"params":{"name":"delete","arguments":{},"arguments":{}}}"#;
        assert_eq!(
            built().scopes_for(body.as_bytes()).unwrap(),
            ["files:write"]
        );
    }

    #[test]
    fn invalid_settings_are_refused_when_the_policy_is_built() {
        assert!(policy().build().is_ok());
        for bad in ["", "has space", "quote\"", "caf\u{e9}"] {
            for (setting, builder) in [
                ("tool", OperationScopes::builder().tool("t", [bad])),
                (
                    "method",
                    OperationScopes::builder().method("m", ["ok", bad]),
                ),
                (
                    "known_scopes",
                    OperationScopes::builder().known_scopes([bad]),
                ),
            ] {
                let err = builder.build().unwrap_err();
                assert!(
                    matches!(&err, ConfigError::InvalidScope { setting: s, scope } if *s == setting && scope == bad),
                    "{setting} {bad:?}: {err:?}"
                );
            }
        }
        for (setting, builder) in [
            ("tool", OperationScopes::builder().tool("", ["s"])),
            ("method", OperationScopes::builder().method("", ["s"])),
        ] {
            assert!(
                matches!(builder.build(), Err(ConfigError::EmptyOperationName { setting: s }) if s == setting),
                "{setting}"
            );
        }
        assert!(matches!(
            policy().max_body_bytes(0).build(),
            Err(ConfigError::ZeroSetting {
                setting: "max_body_bytes",
                ..
            })
        ));
        let no_scopes = OperationScopes::builder().tool("t", Vec::<String>::new());
        assert!(no_scopes.build().unwrap().is_empty());
        assert!(
            !OperationScopes::builder()
                .method("m", ["s"])
                .build()
                .unwrap()
                .is_empty()
        );
    }
}
