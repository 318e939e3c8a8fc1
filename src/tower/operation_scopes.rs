//! Per-operation scopes with step-up challenges: [`OperationScopes`] (the policy),
//! [`OperationScopesLayer`], [`OperationScopesService`] and their [`OperationScopesFuture`];
//! [`GrantedScopes`], the hierarchy-aware view of the caller's scopes that tool handlers get.
//! The overview and examples are on [`OperationScopes`].

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Either, Full, LengthLimitError, Limited};
use pin_project_lite::pin_project;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use tower_layer::Layer;
use tower_service::Service;

use crate::auth_info::AuthInfo;
use crate::bearer::{BearerAuth, BearerAuthError, ScopeHierarchy};
use crate::metadata::is_scope_char;

/// The default cap on the request body the layer reads: 4 MiB, rmcp's own limit for MCP
/// messages (so the layer never refuses a message the MCP service would accept).
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The JSON-RPC method whose `params.name` selects a [tool](OperationScopes::tool).
const TOOLS_CALL: &str = "tools/call";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response refusing the request (boxed: it is the error side of a `Result`).
type Refusal = Box<Response<Full<Bytes>>>;

/// Which scopes a step-up challenge (`403 insufficient_scope`) names in its `scope` parameter.
///
/// Either way the list is deterministic: the guard's required scopes, then the operation's
/// scopes in the order the policy lists them (message order for batches), then (for
/// [`RequiredAndGranted`](Self::RequiredAndGranted)) the granted scopes in the token's order,
/// without repeats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChallengeScopes {
    /// Every scope the operation needs: the guard's required scopes and the operation's own
    /// (MCP 2026-07-28: "the scopes needed to satisfy the current operation"; accumulating
    /// scopes across operations is the client's job).
    Required,
    /// Those plus the scopes the token already has that this resource recognises (MCP
    /// 2025-11-25's recommended strategy: "include both existing relevant scopes and newly
    /// required scopes", so that a client that requests exactly the challenged scopes does not
    /// lose what it had). The default: it is valid under both versions, and clients that do
    /// not accumulate scopes themselves (the TypeScript SDK 1.x requests exactly the
    /// challenged `scope`) keep working.
    ///
    /// A granted scope is *recognised* when the guard requires it, the policy names it, the
    /// guard's scope hierarchy names it, or it is listed with
    /// [`OperationScopes::known_scopes`]. Others (`openid`, `offline_access`, scopes of other
    /// APIs) are never echoed.
    #[default]
    RequiredAndGranted,
}

/// The per-operation scope policy: which scopes an MCP operation needs on top of the bearer
/// guard's [required scopes](crate::BearerAuth::required_scopes).
///
/// The bearer guard checks the scopes every request needs. Some MCP operations need more: a
/// tool that deletes files, `resources/read` on private data. The policy maps operations to
/// scopes (a tool name for `tools/call`, or any JSON-RPC method: `resources/read`,
/// `prompts/get`, `tools/list`, ...; a `tools/call` needs both the method's scopes and the
/// tool's), satisfied directly or through the guard's
/// [scope hierarchy](crate::BearerAuth::scope_implies). The [`OperationScopesLayer`] refuses
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
/// A scope that is empty or has characters RFC 6749 §3.3 forbids can never be granted: it is
/// logged as an error and every request through the layer is answered 500 until it is fixed
/// (as the guard does for its own required scopes). Publish the policy's scopes in the
/// resource's `scopes_supported` if clients should know them up front (or leave them out, so
/// that clients start with the base scopes and step up when needed).
///
/// Mount it through [`McpGuard`](crate::tower::McpGuard) (`guard.with_operation_scopes(policy)`),
/// which puts it in the right place: after authentication. The layer reads the request body
/// only for `POST` requests and only when the policy has entries, up to
/// [`max_body_bytes`](OperationScopes::max_body_bytes) (413 beyond), and hands the same bytes
/// on to the MCP service.
///
/// ```
/// use std::convert::Infallible;
/// use bytes::Bytes;
/// use http::{Request, Response, StatusCode};
/// use http_body_util::Full;
/// use mcp_auth::tower::{GrantedScopes, OperationScopes};
/// use mcp_auth::{AuthInfo, AuthServer, AuthorizationServerMetadata, McpAuth, ProtectedResource, VerifyError};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// # let mut as_metadata = AuthorizationServerMetadata::new(
/// #     "https://auth.example.com", "https://auth.example.com/authorize",
/// #     "https://auth.example.com/token", ["code"]);
/// # as_metadata.code_challenge_methods_supported = Some(vec!["S256".into()]);
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
///     })?
///     .required_scopes(["files:read"])
///     .scope_implies("files:admin", ["files:write"]);
///
/// let policy = OperationScopes::new()
///     .tool("delete_file", ["files:write"])
///     .method("resources/read", ["files:read"]);
/// let mcp = service_fn(|request: Request<_>| async move {
///     // The tool handler's view: the granted scopes, with the guard's hierarchy.
///     let scopes = request.extensions().get::<GrantedScopes>().cloned();
///     assert!(scopes.is_some_and(|s| s.has("files:read") && !s.has("files:write")));
///     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{}"))))
/// });
/// let service = guard.with_operation_scopes(policy).layer().layer(mcp);
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
/// - Requests other than `POST`, and every request when the policy is empty: passed on
///   without reading the body.
/// - A body that is not JSON, a JSON value that is not a JSON-RPC message, a method or tool
///   the policy does not name: passed on unchanged (the MCP service answers parse errors and
///   unknown methods as it always does).
/// - A JSON-RPC batch (an array, from MCP 2025-03-26): every message in it must be allowed;
///   the challenge names the scopes of the whole batch.
/// - A message that has `method`, `params` or `params.name` twice: 400, since the layer and
///   the MCP service might read different values.
/// - A body over the cap: 413 (from `Content-Length` before reading, or while reading); a body
///   that fails to arrive: 400.
///
/// # Checking scopes inside a tool
///
/// Some decisions depend on the arguments (deleting *this* file needs `files:admin`). The
/// layer inserts [`GrantedScopes`] into the request extensions; an rmcp `#[tool]` takes it as
/// an argument (feature `rmcp`). By then the HTTP response is no longer the tool's to choose:
/// the tool answers inside a `200` (or an SSE stream), so it cannot produce the 403 step-up
/// challenge. It should return a **tool error** (`CallToolResult` with `isError: true`)
/// naming the missing scopes ([`MissingScopes`]'s message does): the model and the user see
/// why, and the user can re-authorize. A JSON-RPC error (`ErrorData`) is for protocol failures
/// and is usually shown as a crash of the call. Neither makes a client re-authorize by
/// itself; when a scope should trigger step-up, put it in the policy (split the tool if the
/// need depends on its arguments).
///
/// ```no_run
/// # #[cfg(feature = "rmcp")]
/// # mod example {
/// use mcp_auth::tower::GrantedScopes;
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
#[must_use]
pub struct OperationScopes {
    tools: HashMap<String, Vec<String>>,
    methods: HashMap<String, Vec<String>>,
    known: Vec<String>,
    challenge: ChallengeScopes,
    max_body_bytes: usize,
    misconfiguration: Option<String>,
}

impl Default for OperationScopes {
    fn default() -> Self {
        Self {
            tools: HashMap::new(),
            methods: HashMap::new(),
            known: Vec::new(),
            challenge: ChallengeScopes::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            misconfiguration: None,
        }
    }
}

impl OperationScopes {
    /// An empty policy: no operation needs more than the guard's scopes, and no body is read.
    pub fn new() -> Self {
        Self::default()
    }

    /// The tool `name` (a `tools/call` whose `params.name` is `name`) needs every one of
    /// `scopes` (added to any listed before for it).
    pub fn tool(
        mut self,
        name: impl Into<String>,
        scopes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        let scopes = self.checked(scopes);
        extend_unique(self.tools.entry(name.into()).or_default(), scopes);
        self
    }

    /// Every request with the JSON-RPC method `method` (`resources/read`, `prompts/get`,
    /// `tools/call`, ...) needs every one of `scopes` (added to any listed before for it).
    pub fn method(
        mut self,
        method: impl Into<String>,
        scopes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        let scopes = self.checked(scopes);
        extend_unique(self.methods.entry(method.into()).or_default(), scopes);
        self
    }

    /// Scopes this resource recognises besides those the guard and the policy name (for
    /// example scopes a tool checks itself through [`GrantedScopes`]). Only matters for
    /// [`ChallengeScopes::RequiredAndGranted`]: granted scopes are repeated in challenges only
    /// when the resource recognises them. Default: none.
    pub fn known_scopes(mut self, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let scopes = self.checked(scopes);
        extend_unique(&mut self.known, scopes);
        self
    }

    /// Which scopes a step-up challenge names. Default:
    /// [`ChallengeScopes::RequiredAndGranted`].
    pub fn challenge_scopes(mut self, strategy: ChallengeScopes) -> Self {
        self.challenge = strategy;
        self
    }

    /// The largest request body the layer reads, in bytes; a larger one is answered 413
    /// without being read whole. Default: [`DEFAULT_MAX_BODY_BYTES`] (4 MiB).
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
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
        let messages = match serde_json::from_slice::<Incoming>(body) {
            Ok(Incoming::One(message)) => vec![message],
            Ok(Incoming::Batch(messages)) => messages,
            Ok(Incoming::Other) | Err(_) => return Ok(Vec::new()),
        };
        let mut scopes: Vec<&str> = Vec::new();
        for message in &messages {
            if let Some(member) = message.duplicate {
                return Err(DuplicateMember { member });
            }
            let Some(method) = &message.method else {
                continue;
            };
            let tool = match &message.tool {
                Some(tool) if method == TOOLS_CALL => self.tools.get(tool),
                _ => None,
            };
            for scope in self.methods.get(method).into_iter().chain(tool).flatten() {
                if !scopes.contains(&scope.as_str()) {
                    scopes.push(scope);
                }
            }
        }
        Ok(scopes)
    }

    /// Every scope the policy names.
    fn named_scopes(&self) -> impl Iterator<Item = &String> {
        self.tools
            .values()
            .chain(self.methods.values())
            .flatten()
            .chain(&self.known)
    }

    /// The scopes, with invalid ones recorded as a misconfiguration.
    fn checked(&mut self, scopes: impl IntoIterator<Item = impl Into<String>>) -> Vec<String> {
        let mut valid = Vec::new();
        for scope in scopes.into_iter().map(Into::into) {
            if scope.is_empty() || !scope.bytes().all(is_scope_char) {
                let problem = format!(
                    "the operation scope {scope:?} is not a valid scope token (RFC 6749 §3.3: \
                     printable ASCII without space, `\"` or `\\`)"
                );
                tracing::error!("{problem}; every request will be refused with 500");
                self.misconfiguration.get_or_insert(problem);
            } else {
                valid.push(scope);
            }
        }
        valid
    }
}

fn extend_unique(list: &mut Vec<String>, items: Vec<String>) {
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

// ---------------------------------------------------------------------------------------------
// Reading just enough of a JSON-RPC message: `method` and `params.name`, skipping the rest
// without building it, and noticing members that appear twice.

/// A request body, as far as the policy cares.
enum Incoming {
    One(Probe),
    Batch(Vec<Probe>),
    /// A JSON scalar: not a message.
    Other,
}

/// One message: its method and, for `tools/call`, the tool.
#[derive(Default)]
struct Probe {
    method: Option<String>,
    tool: Option<String>,
    duplicate: Option<&'static str>,
}

impl<'de> Deserialize<'de> for Incoming {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IncomingVisitor;
        impl<'de> Visitor<'de> for IncomingVisitor {
            type Value = Incoming;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON-RPC message or batch")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Incoming, A::Error> {
                probe_message(map).map(Incoming::One)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Incoming, A::Error> {
                let mut messages = Vec::new();
                while let Some(element) = seq.next_element::<Element>()? {
                    if let Element(Some(message)) = element {
                        messages.push(message);
                    }
                }
                Ok(Incoming::Batch(messages))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Incoming, E> {
                Ok(Incoming::Other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Incoming, E> {
                Ok(Incoming::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Incoming, E> {
                Ok(Incoming::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Incoming, E> {
                Ok(Incoming::Other)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Incoming, E> {
                Ok(Incoming::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Incoming, E> {
                Ok(Incoming::Other)
            }
        }
        deserializer.deserialize_any(IncomingVisitor)
    }
}

/// An element of a batch: a message if it is an object.
struct Element(Option<Probe>);

impl<'de> Deserialize<'de> for Element {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ElementVisitor;
        impl<'de> Visitor<'de> for ElementVisitor {
            type Value = Element;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON-RPC message")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Element, A::Error> {
                probe_message(map).map(|message| Element(Some(message)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Element, A::Error> {
                skip_seq(seq).map(|()| Element(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Element, E> {
                Ok(Element(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Element, E> {
                Ok(Element(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Element, E> {
                Ok(Element(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Element, E> {
                Ok(Element(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Element, E> {
                Ok(Element(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Element, E> {
                Ok(Element(None))
            }
        }
        deserializer.deserialize_any(ElementVisitor)
    }
}

/// An object key, as far as the policy cares. JSON escapes are already resolved, so
/// `"meth\u006fd"` is `method`, as for every other JSON parser.
enum Key {
    Method,
    Params,
    Name,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    "method" => Key::Method,
                    "params" => Key::Params,
                    "name" => Key::Name,
                    _ => Key::Other,
                })
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

fn probe_message<'de, A: MapAccess<'de>>(mut map: A) -> Result<Probe, A::Error> {
    let mut probe = Probe::default();
    let (mut seen_method, mut seen_params) = (false, false);
    while let Some(key) = map.next_key::<Key>()? {
        match key {
            Key::Method => {
                if std::mem::replace(&mut seen_method, true) {
                    probe.duplicate.get_or_insert("method");
                }
                probe.method = map.next_value::<MaybeString>()?.0;
            }
            Key::Params => {
                if std::mem::replace(&mut seen_params, true) {
                    probe.duplicate.get_or_insert("params");
                }
                let params = map.next_value::<ParamsProbe>()?;
                if params.duplicate_name {
                    probe.duplicate.get_or_insert("params.name");
                }
                probe.tool = params.name;
            }
            Key::Name | Key::Other => {
                map.next_value::<IgnoredAny>()?;
            }
        }
    }
    Ok(probe)
}

/// `params`: its `name`, if it is an object with a string `name`.
struct ParamsProbe {
    name: Option<String>,
    duplicate_name: bool,
}

impl<'de> Deserialize<'de> for ParamsProbe {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ParamsVisitor;
        impl<'de> Visitor<'de> for ParamsVisitor {
            type Value = ParamsProbe;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("JSON-RPC params")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ParamsProbe, A::Error> {
                let mut params = ParamsProbe {
                    name: None,
                    duplicate_name: false,
                };
                let mut seen_name = false;
                while let Some(key) = map.next_key::<Key>()? {
                    if let Key::Name = key {
                        params.duplicate_name |= std::mem::replace(&mut seen_name, true);
                        params.name = map.next_value::<MaybeString>()?.0;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(params)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ParamsProbe, A::Error> {
                skip_seq(seq).map(|()| ParamsProbe::none())
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<ParamsProbe, E> {
                Ok(ParamsProbe::none())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<ParamsProbe, E> {
                Ok(ParamsProbe::none())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<ParamsProbe, E> {
                Ok(ParamsProbe::none())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<ParamsProbe, E> {
                Ok(ParamsProbe::none())
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<ParamsProbe, E> {
                Ok(ParamsProbe::none())
            }
            fn visit_unit<E: de::Error>(self) -> Result<ParamsProbe, E> {
                Ok(ParamsProbe::none())
            }
        }
        deserializer.deserialize_any(ParamsVisitor)
    }
}

impl ParamsProbe {
    fn none() -> Self {
        Self {
            name: None,
            duplicate_name: false,
        }
    }
}

/// A string, or `None` for any other JSON value (skipped without being built).
struct MaybeString(Option<String>);

impl<'de> Deserialize<'de> for MaybeString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MaybeStringVisitor;
        impl<'de> Visitor<'de> for MaybeStringVisitor {
            type Value = MaybeString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<MaybeString, E> {
                Ok(MaybeString(Some(value.to_owned())))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MaybeString, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeString(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<MaybeString, A::Error> {
                skip_seq(seq).map(|()| MaybeString(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
        }
        deserializer.deserialize_any(MaybeStringVisitor)
    }
}

fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// GrantedScopes: the handler's view.

/// The caller's granted scopes together with the guard's [`ScopeHierarchy`]: what a tool
/// handler asks when its decision depends on the arguments.
///
/// [`OperationScopesLayer`] (and so [`McpGuard`](crate::tower::McpGuard)) inserts it into the
/// request extensions of every request it lets through; with the `rmcp` feature a `#[tool]`
/// function takes it as an argument (see [`OperationScopes`] for how a handler should
/// answer when a scope is missing). [`AuthInfo::has_scope`] is the exact-match check without
/// the hierarchy.
///
/// ```
/// use mcp_auth::ScopeHierarchy;
/// use mcp_auth::tower::GrantedScopes;
///
/// let scopes = GrantedScopes::new(["files:admin"], ScopeHierarchy::new().implies("files:admin", ["files:read"]));
/// assert!(scopes.has("files:read"));
/// assert!(scopes.require(["files:read", "files:admin"]).is_ok());
/// let missing = scopes.require(["files:read", "mail:send"]).unwrap_err();
/// assert_eq!(missing.scopes(), ["mail:send"]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantedScopes {
    granted: Vec<String>,
    hierarchy: Arc<ScopeHierarchy>,
}

impl GrantedScopes {
    /// The scopes `granted`, read through `hierarchy`.
    pub fn new(
        granted: impl IntoIterator<Item = impl Into<String>>,
        hierarchy: ScopeHierarchy,
    ) -> Self {
        Self::shared(
            granted.into_iter().map(Into::into).collect(),
            Arc::new(hierarchy),
        )
    }

    fn shared(granted: Vec<String>, hierarchy: Arc<ScopeHierarchy>) -> Self {
        Self { granted, hierarchy }
    }

    /// The scopes the token grants, as the token lists them.
    pub fn granted(&self) -> &[String] {
        &self.granted
    }

    /// Whether `scope` is granted, directly or through the hierarchy.
    pub fn has(&self, scope: &str) -> bool {
        self.hierarchy.satisfies(&self.granted, scope)
    }

    /// `Ok` when every one of `required` is granted (directly or through the hierarchy).
    ///
    /// # Errors
    ///
    /// [`MissingScopes`] listing the ones that are not, in the order given.
    pub fn require(
        &self,
        required: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Result<(), MissingScopes> {
        let required: Vec<String> = required
            .into_iter()
            .map(|s| s.as_ref().to_owned())
            .collect();
        let missing = self.hierarchy.missing(&self.granted, &required);
        if missing.is_empty() {
            Ok(())
        } else {
            Err(MissingScopes {
                missing: missing.into_iter().map(str::to_owned).collect(),
            })
        }
    }
}

/// Scopes a call needs that the access token does not grant: from [`GrantedScopes::require`].
///
/// The message is meant for the client (a tool error's text): it names the scopes and says
/// how to get them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "this call needs the scope(s) `{}`, which the access token does not grant; authorize again \
     with them and retry",
    missing.join(" ")
)]
pub struct MissingScopes {
    missing: Vec<String>,
}

impl MissingScopes {
    /// The scopes that are missing.
    pub fn scopes(&self) -> &[String] {
        &self.missing
    }
}

/// What the client is told when a tool asks for [`GrantedScopes`] the request does not carry.
#[cfg(feature = "rmcp")]
const MISSING_GRANTED_SCOPES: &str = "this MCP request carries no GrantedScopes: the server must \
     mount mcp_auth's guard with operation scopes in front of its MCP service (for example \
     `guard.with_operation_scopes(policy).layer().layer(streamable_http_service)`)";

/// `GrantedScopes` as an argument of rmcp `#[tool]` (and `#[prompt]`) functions, found where
/// [`AuthInfo`] is (the `http::request::Parts` rmcp stores in the request context).
///
/// # Errors
///
/// When the request carries none (the MCP service is not behind [`OperationScopesLayer`]), an
/// `ErrorData` with code -32603 (internal error) saying so. The tool body does not run.
#[cfg(feature = "rmcp")]
#[cfg_attr(docsrs, doc(cfg(feature = "rmcp")))]
impl<C: rmcp::handler::server::common::AsRequestContext>
    rmcp::handler::server::common::FromContextPart<C> for GrantedScopes
{
    fn from_context_part(context: &mut C) -> Result<Self, rmcp::ErrorData> {
        let extensions = &context.as_request_context().extensions;
        extensions
            .get::<Parts>()
            .and_then(|parts| parts.extensions.get::<GrantedScopes>())
            .or_else(|| extensions.get::<GrantedScopes>())
            .cloned()
            .ok_or_else(|| {
                tracing::error!(
                    "a tool asked for GrantedScopes but the request carries none; mount the \
                     operation-scope layer in front of the MCP service"
                );
                rmcp::ErrorData::internal_error(MISSING_GRANTED_SCOPES, None)
            })
    }
}

// ---------------------------------------------------------------------------------------------
// The layer.

/// The per-operation scope check as tower middleware: see [`OperationScopes`].
///
/// It must run **after** authentication: it reads the [`AuthInfo`] that
/// [`BearerAuthLayer`](crate::BearerAuthLayer) inserts, and answers 500 (logged as an error)
/// when there is none, so a wrongly stacked layer fails loudly instead of letting requests
/// through. [`BearerAuth::with_operation_scopes`](crate::BearerAuth::with_operation_scopes)
/// builds the whole stack in the right order; stacking by hand, the bearer layer goes outside:
/// `bearer_layer.layer(operation_scopes_layer.layer(mcp_service))`.
///
/// The inner service receives `Request<Either<ReqBody, Full<Bytes>>>`: the original body when
/// the layer did not read it, otherwise the same bytes, whole (trailers, which JSON-RPC does
/// not use, are not kept). The response body is `Either<ResBody, Full<Bytes>>` (the inner
/// service's, or a refusal's JSON).
#[derive(Clone)]
pub struct OperationScopesLayer {
    shared: Arc<Shared>,
}

struct Shared {
    guard: BearerAuth,
    policy: OperationScopes,
    hierarchy: Arc<ScopeHierarchy>,
    /// The scopes this resource recognises (for [`ChallengeScopes::RequiredAndGranted`]).
    known: HashSet<String>,
}

impl fmt::Debug for OperationScopesLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperationScopesLayer")
            .field("guard", &self.shared.guard)
            .field("policy", &self.shared.policy)
            .finish_non_exhaustive()
    }
}

impl OperationScopesLayer {
    /// A layer applying `policy` on top of `guard`'s required scopes and scope hierarchy;
    /// refusals use `guard`'s challenge settings (`resource_metadata`, realm, error details).
    pub fn new(guard: BearerAuth, policy: OperationScopes) -> Self {
        let hierarchy = Arc::new(guard.hierarchy().clone());
        let known = guard
            .base_scopes()
            .iter()
            .map(String::as_str)
            .chain(policy.named_scopes().map(String::as_str))
            .chain(hierarchy.named_scopes())
            .map(str::to_owned)
            .collect();
        Self {
            shared: Arc::new(Shared {
                guard,
                policy,
                hierarchy,
                known,
            }),
        }
    }
}

impl<S> Layer<S> for OperationScopesLayer {
    type Service = OperationScopesService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OperationScopesService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// A service that checks each MCP operation's scopes before calling `S`: see
/// [`OperationScopesLayer`].
#[derive(Clone)]
pub struct OperationScopesService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: fmt::Debug> fmt::Debug for OperationScopesService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperationScopesService")
            .field("inner", &self.inner)
            .field("policy", &self.shared.policy)
            .finish_non_exhaustive()
    }
}

impl<S> OperationScopesService<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming this one.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl Shared {
    /// `Ok` when the operations in `body` are allowed for a token granting `granted`,
    /// otherwise the refusal to send.
    fn check(&self, body: &[u8], granted: &[String]) -> Result<(), Refusal> {
        let operation = match self.policy.scopes_for(body) {
            Ok(scopes) => scopes,
            Err(duplicate) => {
                tracing::debug!("operation scopes: refusing an ambiguous message: {duplicate}");
                return Err(Box::new(json_refusal(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &format!(
                        "The JSON-RPC message has the member `{}` more than once; send it once.",
                        duplicate.member()
                    ),
                )));
            }
        };
        if operation.is_empty() {
            return Ok(());
        }
        let operation: Vec<String> = operation.into_iter().map(str::to_owned).collect();
        let missing = self.hierarchy.missing(granted, &operation);
        if missing.is_empty() {
            return Ok(());
        }
        let missing: Vec<String> = missing.into_iter().map(str::to_owned).collect();
        let mut needed: Vec<String> = self.guard.base_scopes().to_vec();
        extend_unique(&mut needed, operation);
        let mut challenge = needed.clone();
        if self.policy.challenge == ChallengeScopes::RequiredAndGranted {
            let relevant = granted.iter().filter(|s| self.known.contains(*s));
            extend_unique(&mut challenge, relevant.cloned().collect());
        }
        let error = BearerAuthError::MissingRequiredScopes {
            required: needed,
            missing,
            granted: granted.to_vec(),
        };
        Err(Box::new(
            self.guard
                .reject_with_scope(error, &challenge)
                .into_response(),
        ))
    }

    fn misconfigured(&self, reason: String) -> Response<Full<Bytes>> {
        self.guard
            .reject(BearerAuthError::ServerMisconfigured { reason })
            .into_response()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for OperationScopesService<S>
where
    S: Service<Request<Either<ReqBody, Full<Bytes>>>, Response = Response<ResBody>> + Clone,
    ReqBody: Body<Data = Bytes> + Send + 'static,
    ReqBody::Error: Into<BoxError>,
{
    type Response = Response<Either<ResBody, Full<Bytes>>>;
    type Error = S::Error;
    type Future = OperationScopesFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // Take the service that was driven to readiness and leave a fresh clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = &self.shared;
        let refuse = |response: Response<Full<Bytes>>| OperationScopesFuture {
            state: State::Refused {
                response: Some(response),
            },
            inner: None,
            parts: None,
        };

        if let Some(problem) = &shared.policy.misconfiguration {
            return refuse(shared.misconfigured(problem.clone()));
        }
        let Some(info) = request.extensions().get::<AuthInfo>() else {
            tracing::error!(
                "OperationScopesLayer got a request without a verified AuthInfo: it must run \
                 inside BearerAuthLayer (use `guard.with_operation_scopes(policy).layer()`)"
            );
            return refuse(
                shared.misconfigured(
                    "the operation-scope layer runs before authentication".to_owned(),
                ),
            );
        };
        let granted = info.scopes.clone();
        request.extensions_mut().insert(GrantedScopes::shared(
            granted.clone(),
            shared.hierarchy.clone(),
        ));

        if request.method() != Method::POST || shared.policy.is_empty() {
            let future = inner.call(request.map(Either::Left));
            return OperationScopesFuture {
                state: State::Call { future },
                inner: None,
                parts: None,
            };
        }

        let limit = shared.policy.max_body_bytes;
        let declared = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let hinted = request.body().size_hint().lower();
        if declared.unwrap_or(0).max(hinted) > limit as u64 {
            return refuse(too_large(limit));
        }

        let (parts, body) = request.into_parts();
        let shared = shared.clone();
        let check = Box::pin(async move {
            let bytes = read_capped(body, limit).await?;
            shared.check(&bytes, &granted)?;
            Ok(bytes)
        });
        OperationScopesFuture {
            state: State::Check { check },
            inner: Some(inner),
            parts: Some(parts),
        }
    }
}

/// Reads the whole body, refusing it (413) as soon as it passes `limit` bytes.
async fn read_capped<B>(body: B, limit: usize) -> Result<Bytes, Refusal>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(Box::new(too_large(limit)))
        }
        Err(error) => {
            tracing::debug!("operation scopes: the request body could not be read: {error}");
            Err(Box::new(json_refusal(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The request body could not be read.",
            )))
        }
    }
}

fn too_large(limit: usize) -> Response<Full<Bytes>> {
    tracing::debug!("operation scopes: refusing a request body over {limit} bytes");
    json_refusal(
        StatusCode::PAYLOAD_TOO_LARGE,
        "request_too_large",
        &format!("The request body is larger than {limit} bytes."),
    )
}

/// A refusal that is not an OAuth challenge: `status`, `Content-Type: application/json`,
/// `Cache-Control: no-store`, and `{"error": code, "error_description": description}`.
pub(super) fn json_refusal(
    status: StatusCode,
    code: &str,
    description: &str,
) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "error": code, "error_description": description });
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pin_project! {
    /// Response future of [`OperationScopesService`]: read and check the body if needed, then
    /// call the inner service.
    pub struct OperationScopesFuture<S, ReqBody>
    where
        S: Service<Request<Either<ReqBody, Full<Bytes>>>>,
    {
        #[pin]
        state: State<S::Future>,
        inner: Option<S>,
        parts: Option<Parts>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Check {
            check: BoxFuture<'static, Result<Bytes, Refusal>>,
        },
        Call {
            #[pin]
            future: F,
        },
        Refused {
            response: Option<Response<Full<Bytes>>>,
        },
    }
}

impl<S, ReqBody> fmt::Debug for OperationScopesFuture<S, ReqBody>
where
    S: Service<Request<Either<ReqBody, Full<Bytes>>>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperationScopesFuture")
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Future for OperationScopesFuture<S, ReqBody>
where
    S: Service<Request<Either<ReqBody, Full<Bytes>>>, Response = Response<ResBody>>,
{
    type Output = Result<Response<Either<ResBody, Full<Bytes>>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Check { check } => {
                    let outcome = ready!(check.as_mut().poll(cx));
                    let bytes = match outcome {
                        Ok(bytes) => bytes,
                        Err(refusal) => return Poll::Ready(Ok((*refusal).map(Either::Right))),
                    };
                    let (Some(parts), Some(mut inner)) = (this.parts.take(), this.inner.take())
                    else {
                        return Poll::Ready(Ok(super::polled_after_completion(
                            "OperationScopesService",
                        )));
                    };
                    let request = Request::from_parts(parts, Either::Right(Full::new(bytes)));
                    let future = inner.call(request);
                    this.state.set(State::Call { future });
                }
                StateProj::Call { future } => {
                    return future
                        .poll(cx)
                        .map(|result| result.map(|response| response.map(Either::Left)));
                }
                StateProj::Refused { response } => {
                    return Poll::Ready(Ok(match response.take() {
                        Some(response) => response.map(Either::Right),
                        None => super::polled_after_completion("OperationScopesService"),
                    }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http::header::WWW_AUTHENTICATE;
    use http_body::Frame;
    use http_body_util::StreamBody;
    use serde_json::{Value, json};
    use tower::ServiceExt;

    use super::*;
    use crate::bearer::BearerChallenge;
    use crate::error::VerifyError;

    const RESOURCE: &str = "https://h/mcp";
    const METADATA: &str = "https://h/.well-known/oauth-protected-resource/mcp";

    fn guard() -> BearerAuth {
        let verifier = |_token: String| async {
            Err::<AuthInfo, _>(VerifyError::invalid_token("unused in these tests"))
        };
        BearerAuth::new(
            Arc::new(verifier),
            vec!["https://as".into()],
            Some(RESOURCE.into()),
            Some(METADATA.into()),
        )
    }

    fn policy() -> OperationScopes {
        OperationScopes::new()
            .tool("delete", ["files:write"])
            .tool("purge", ["files:write", "files:admin"])
            .method("resources/read", ["files:read"])
    }

    fn call(tool: &str) -> String {
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": {}}})
            .to_string()
    }

    fn info(scopes: &[&str]) -> AuthInfo {
        AuthInfo::new("t", "https://as")
            .with_subject("alice")
            .with_scopes(scopes.iter().copied())
    }

    /// What the inner service saw.
    #[derive(Clone, Default)]
    struct Seen {
        calls: Arc<AtomicUsize>,
        body: Arc<std::sync::Mutex<Option<Bytes>>>,
    }

    /// The layer around an inner service that records the calls and the body bytes, and
    /// answers 200 with those bytes.
    fn service(
        guard: BearerAuth,
        policy: OperationScopes,
        seen: Seen,
    ) -> impl Service<
        Request<Full<Bytes>>,
        Response = Response<Either<Full<Bytes>, Full<Bytes>>>,
        Error = Infallible,
    > + Clone {
        let inner = tower::service_fn(move |request: Request<Either<Full<Bytes>, Full<Bytes>>>| {
            let seen = seen.clone();
            async move {
                seen.calls.fetch_add(1, Ordering::SeqCst);
                assert!(request.extensions().get::<GrantedScopes>().is_some());
                let bytes = request
                    .into_body()
                    .collect()
                    .await
                    .map(|c| c.to_bytes())
                    .unwrap_or_default();
                *seen.body.lock().unwrap() = Some(bytes.clone());
                Ok::<_, Infallible>(Response::new(Full::new(bytes)))
            }
        });
        OperationScopesLayer::new(guard, policy).layer(inner)
    }

    fn post(body: impl Into<Bytes>, info: Option<AuthInfo>) -> Request<Full<Bytes>> {
        let mut request = Request::post("/mcp").body(Full::new(body.into())).unwrap();
        if let Some(info) = info {
            request.extensions_mut().insert(info);
        }
        request
    }

    async fn send(
        policy: OperationScopes,
        request: Request<Full<Bytes>>,
    ) -> (Response<Either<Full<Bytes>, Full<Bytes>>>, Seen) {
        let seen = Seen::default();
        let response = service(guard(), policy, seen.clone())
            .oneshot(request)
            .await
            .unwrap();
        (response, seen)
    }

    async fn body_json(response: Response<Either<Full<Bytes>, Full<Bytes>>>) -> Value {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    fn challenge(response: &Response<Either<Full<Bytes>, Full<Bytes>>>) -> BearerChallenge {
        BearerChallenge::parse(response.headers()[WWW_AUTHENTICATE].to_str().unwrap()).unwrap()
    }

    // ---- the policy alone

    #[test]
    fn tools_call_needs_the_method_scopes_then_the_tool_scopes_in_order() {
        let policy = policy().method("tools/call", ["mcp:tools"]);
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
            policy()
                .scopes_for(body.to_string().as_bytes())
                .unwrap()
                .is_empty()
        );
        let read = json!({"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": "file:///a"}});
        assert_eq!(
            policy().scopes_for(read.to_string().as_bytes()).unwrap(),
            ["files:read"]
        );
    }

    #[test]
    fn unknown_methods_tools_notifications_and_non_json_need_nothing() {
        let p = policy();
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
            policy().scopes_for(batch.as_bytes()).unwrap(),
            ["files:write", "files:admin", "files:read"]
        );
        assert!(policy().scopes_for(b"[]").unwrap().is_empty());
    }

    #[test]
    fn escaped_keys_and_values_are_read_like_any_json_parser() {
        let body = r#"{"jsonrpc":"2.0","id":1,"meth\u006fd":"tools/call","params":{"n\u0061me":"del\u0065te"}}"#;
        assert_eq!(
            policy().scopes_for(body.as_bytes()).unwrap(),
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
                policy().scopes_for(body.as_bytes()),
                Err(DuplicateMember { member }),
                "{body}"
            );
        }
        // Other members may repeat: they do not decide anything here.
        let body = r#"{"method":"tools/call","id":1,"id":2,"params":{"name":"delete","arguments":{},"arguments":{}}}"#;
        assert_eq!(
            policy().scopes_for(body.as_bytes()).unwrap(),
            ["files:write"]
        );
    }

    #[test]
    fn invalid_scopes_make_the_policy_misconfigured() {
        assert!(policy().misconfiguration.is_none());
        for bad in ["", "has space", "quote\"", "caf\u{e9}"] {
            assert!(
                OperationScopes::new()
                    .tool("t", [bad])
                    .misconfiguration
                    .is_some(),
                "{bad:?}"
            );
        }
        assert!(
            OperationScopes::new()
                .tool("t", Vec::<String>::new())
                .is_empty()
        );
        assert!(!OperationScopes::new().method("m", ["s"]).is_empty());
    }

    #[test]
    fn granted_scopes_follow_the_hierarchy() {
        let scopes = GrantedScopes::new(
            ["admin"],
            ScopeHierarchy::new()
                .implies("admin", ["write"])
                .implies("write", ["read"]),
        );
        assert!(scopes.has("read") && scopes.has("admin") && !scopes.has("other"));
        assert_eq!(scopes.granted(), ["admin"]);
        let missing = scopes.require(["other", "read", "more"]).unwrap_err();
        assert_eq!(missing.scopes(), ["other", "more"]);
        assert!(missing.to_string().contains("`other more`"), "{missing}");
    }

    // ---- the layer

    #[tokio::test]
    async fn missing_operation_scope_gets_403_with_the_step_up_challenge() {
        let (response, seen) = send(
            policy(),
            post(call("purge"), Some(info(&["files:write", "openid"]))),
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
        let challenge = challenge(&response);
        assert_eq!(challenge.error.as_deref(), Some("insufficient_scope"));
        // The operation's scopes, then the relevant granted ones (openid is not relevant).
        assert_eq!(challenge.scope, ["files:write", "files:admin"]);
        assert_eq!(challenge.resource_metadata.as_deref(), Some(METADATA));
        let body = body_json(response).await;
        assert_eq!(body["error"], "insufficient_scope");
        assert_eq!(body["missing_scopes"], json!(["files:admin"]));
    }

    #[tokio::test]
    async fn challenge_strategy_required_names_only_what_the_operation_needs() {
        let guard = guard().required_scopes(["mcp"]);
        let granted = info(&["mcp", "files:read", "openid"]);
        let run = |strategy| {
            let guard = guard.clone();
            let granted = granted.clone();
            async move {
                let seen = Seen::default();
                let response = service(guard, policy().challenge_scopes(strategy), seen)
                    .oneshot(post(call("delete"), Some(granted)))
                    .await
                    .unwrap();
                challenge(&response).scope
            }
        };
        assert_eq!(run(ChallengeScopes::Required).await, ["mcp", "files:write"]);
        assert_eq!(
            run(ChallengeScopes::RequiredAndGranted).await,
            ["mcp", "files:write", "files:read"]
        );
        // Deterministic: the same request gives the same challenge.
        assert_eq!(
            run(ChallengeScopes::RequiredAndGranted).await,
            run(ChallengeScopes::RequiredAndGranted).await
        );
    }

    #[tokio::test]
    async fn known_scopes_and_hierarchy_scopes_count_as_relevant() {
        let guard = guard().scope_implies("files:owner", ["files:read"]);
        let policy = policy().known_scopes(["profile:edit"]);
        let seen = Seen::default();
        let response = service(guard, policy, seen)
            .oneshot(post(
                call("delete"),
                Some(info(&["email", "profile:edit", "files:owner"])),
            ))
            .await
            .unwrap();
        assert_eq!(
            challenge(&response).scope,
            ["files:write", "profile:edit", "files:owner"]
        );
    }

    #[tokio::test]
    async fn hierarchy_satisfies_operation_scopes() {
        let guard = guard().scope_implies("files:admin", ["files:write"]);
        let seen = Seen::default();
        let response = service(guard, policy(), seen.clone())
            .oneshot(post(call("purge"), Some(info(&["files:admin"]))))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(seen.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn inner_service_sees_identical_bytes() {
        // Odd spacing, escapes, unicode, and a batch: passed on byte for byte.
        let body = Bytes::from_static(
            "[ {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"delete\",\"arguments\":{\"p\":\"\\u00e9 \u{e9}\"}}} ,\n{\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\"} ]"
                .as_bytes(),
        );
        let (response, seen) =
            send(policy(), post(body.clone(), Some(info(&["files:write"])))).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(seen.body.lock().unwrap().as_ref(), Some(&body));
        let echoed = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(echoed, body);
    }

    #[tokio::test]
    async fn non_json_and_unknown_methods_pass_through_unchanged() {
        for body in [
            Bytes::from_static(b"\x00\xffnot json"),
            Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"method":"no/such/method"}"#),
            Bytes::from(call("unlisted")),
        ] {
            let (response, seen) = send(policy(), post(body.clone(), Some(info(&[])))).await;
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(seen.body.lock().unwrap().as_ref(), Some(&body));
        }
    }

    #[tokio::test]
    async fn batch_with_one_forbidden_message_is_refused_whole() {
        let batch = format!("[{}, {}]", call("unlisted"), call("delete"));
        let (response, seen) = send(policy(), post(batch, Some(info(&["files:read"])))).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
        assert_eq!(challenge(&response).scope, ["files:write", "files:read"]);
    }

    #[tokio::test]
    async fn duplicate_members_get_400() {
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list","name":"delete"}}"#;
        let (response, seen) = send(policy(), post(body, Some(info(&[])))).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
        assert_eq!(body_json(response).await["error"], "invalid_request");
    }

    #[tokio::test]
    async fn declared_length_over_the_cap_gets_413_before_reading() {
        let mut request = post(call("delete"), Some(info(&["files:write"])));
        request
            .headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from_static("100000"));
        let (response, seen) = send(policy().max_body_bytes(1000), request).await;
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
        assert_eq!(body_json(response).await["error"], "request_too_large");
        // The body's own size hint (a Full body knows its length) is checked too.
        let (response, _) = send(
            policy().max_body_bytes(10),
            post(call("delete"), Some(info(&["files:write"]))),
        )
        .await;
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn streamed_body_over_the_cap_gets_413_without_being_read_whole() {
        let polled = Arc::new(AtomicUsize::new(0));
        let counter = polled.clone();
        let chunks = futures_util::stream::iter((0..1000).map(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b' '; 1024])))
        }));
        let body = StreamBody::new(chunks);
        let inner = tower::service_fn(|_: Request<Either<StreamBody<_>, Full<Bytes>>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        });
        let mut request = Request::post("/mcp").body(body).unwrap();
        request.extensions_mut().insert(info(&[]));
        let response = OperationScopesLayer::new(guard(), policy().max_body_bytes(10 * 1024))
            .layer(inner)
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let polled = polled.load(Ordering::SeqCst);
        assert!(
            polled <= 11,
            "read {polled} chunks of 1 KiB for a 10 KiB cap"
        );
    }

    #[tokio::test]
    async fn body_read_failure_gets_400() {
        let chunks = futures_util::stream::iter([
            Ok(Frame::data(Bytes::from_static(b"{"))),
            Err(std::io::Error::other("connection reset")),
        ]);
        let inner = tower::service_fn(|_: Request<Either<StreamBody<_>, Full<Bytes>>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        });
        let mut request = Request::post("/mcp").body(StreamBody::new(chunks)).unwrap();
        request.extensions_mut().insert(info(&[]));
        let response = OperationScopesLayer::new(guard(), policy())
            .layer(inner)
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn bodies_are_not_read_for_other_methods_or_an_empty_policy() {
        // A body that would fail if read: it errors at once.
        let failing = || {
            StreamBody::new(futures_util::stream::iter([Err::<Frame<Bytes>, _>(
                std::io::Error::other("must not be read"),
            )]))
        };
        for (method, policy) in [
            (Method::GET, policy()),
            (Method::DELETE, policy()),
            (Method::POST, OperationScopes::new()),
        ] {
            let inner = tower::service_fn(|request: Request<Either<_, Full<Bytes>>>| async move {
                let passed_on = matches!(request.body(), Either::Left(_));
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(passed_on.to_string()))))
            });
            let mut request = Request::builder()
                .method(method.clone())
                .uri("/mcp")
                .body(failing())
                .unwrap();
            request.extensions_mut().insert(info(&[]));
            let response = OperationScopesLayer::new(guard(), policy)
                .layer(inner)
                .oneshot(request)
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{method}");
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, "true", "{method}: the original body is passed on");
        }
    }

    #[tokio::test]
    async fn without_auth_info_the_layer_answers_500_and_never_calls_the_service() {
        let (response, seen) = send(policy(), post(call("delete"), None)).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
        assert_eq!(body_json(response).await["error"], "server_error");
    }

    #[tokio::test]
    async fn misconfigured_policy_answers_500() {
        let (response, seen) = send(
            policy().tool("x", ["bad scope"]),
            post(call("list"), Some(info(&[]))),
        )
        .await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
    }
}
