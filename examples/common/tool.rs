//! The MCP server of the whoami examples: the `whoami` tool, the caller's verified identity
//! as JSON, and `secret`, which needs the `admin` scope. Each tool takes the verified
//! [`AuthInfo`] as an argument: mcp-auth's rmcp extractor finds it where the guard put it.

use mcp_auth::AuthInfo;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};
use serde_json::{Map, Value, json};

/// Claims about the token itself rather than the person; `identity` reports them in its own
/// fields (or not at all).
const TOKEN_CLAIMS: [&str; 16] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "client_id",
    "azp",
    "scope",
    "scp",
    "scopes",
    "active",
    "token_type",
    "typ",
    "cnf",
];

/// The scope the `secret` tool needs on top of the resource's required scopes. The guard's
/// operation-scope policy (`OperationScopes` in each example) asks for it with a step-up
/// challenge.
pub const ADMIN_SCOPE: &str = "admin";

/// The MCP server of the examples: `whoami`, and `secret`, which needs the `admin` scope.
#[derive(Clone, Debug, Default)]
pub struct WhoAmI;

impl WhoAmI {
    pub fn new() -> Self {
        Self
    }
}

#[tool_router]
impl WhoAmI {
    /// The caller's identity, as verified by mcp-auth.
    #[tool(
        description = "Returns who you are, as verified from your bearer token: sub, issuer, client_id, \
                       scopes, and identity claims such as name, email and username."
    )]
    async fn whoami(&self, auth: AuthInfo) -> CallToolResult {
        CallToolResult::structured(identity(&auth))
    }

    /// A secret for admins: needs the `admin` scope.
    #[tool(
        description = "Returns the server's secret. Needs the `admin` scope: without it the call \
                       is refused with HTTP 403 and a step-up challenge naming the scope."
    )]
    async fn secret(&self, auth: AuthInfo) -> CallToolResult {
        // The operation-scope layer already refused calls without `admin` (403 + challenge).
        // Checking again costs nothing and keeps the tool safe if it is ever served without
        // that layer; from here the answer can only be a tool error, not a 403.
        if !auth.has_scope(ADMIN_SCOPE) {
            return CallToolResult::error(vec![ContentBlock::text(format!(
                "the `secret` tool needs the `{ADMIN_SCOPE}` scope; authorize again with it"
            ))]);
        }
        CallToolResult::structured(json!({
            "secret": "mcp-auth protects this tool with a per-tool scope",
            "sub": auth.subject,
            "scopes": auth.scopes,
        }))
    }
}

#[tool_handler(
    name = "mcp-auth-whoami",
    instructions = "Call the `whoami` tool to see the identity your access token carries; \
                    `secret` needs the `admin` scope."
)]
impl ServerHandler for WhoAmI {}

/// `sub`, `issuer`, `client_id`, `scopes`, `audience`, `expires_at`, `credential` (`oauth`,
/// or `api_key` with the key's name in `api_key`), then every identity claim of the token or
/// userinfo answer (`name`, `email`, `username`, ...).
pub fn identity(auth: &AuthInfo) -> Value {
    let mut identity = Map::new();
    identity.insert("sub".into(), json!(auth.subject));
    identity.insert("issuer".into(), json!(auth.issuer));
    identity.insert("client_id".into(), json!(auth.client_id));
    identity.insert("scopes".into(), json!(auth.scopes));
    identity.insert("audience".into(), json!(auth.audience));
    identity.insert("expires_at".into(), json!(auth.expires_at));
    match auth.credential.api_key_name() {
        Some(name) => {
            identity.insert("credential".into(), json!("api_key"));
            identity.insert("api_key".into(), json!(name));
        }
        None => {
            identity.insert("credential".into(), json!("oauth"));
        }
    }
    for (claim, value) in &auth.claims {
        if !TOKEN_CLAIMS.contains(&claim.as_str()) && !identity.contains_key(claim) {
            identity.insert(claim.clone(), value.clone());
        }
    }
    Value::Object(identity)
}
