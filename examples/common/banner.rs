//! What the examples print at start: where things are, a token, and a curl sequence.

use std::io::Write as _;

use url::Url;

use super::config::VerifierKind;
use super::setup::Setup;
use super::tool::ADMIN_SCOPE;

/// The MCP protocol version the printed requests speak.
pub const PROTOCOL_VERSION: &str = "2025-06-18";

/// Marks the start and the end of the copy-paste block (tests look for them).
pub const BLOCK_START: &str = "# ---- copy-paste from here (bash/zsh) ----";
pub const BLOCK_END: &str = "# ---- to here ----";

/// The copy-paste block: the token, then curl requests that show the 401 challenge, fetch the
/// metadata, initialize, and call `whoami`. Each request is one line.
pub fn curl_block(setup: &Setup, token: &str) -> String {
    let mcp = &setup.mcp_url;
    let metadata = local_metadata_url(setup);
    let json_headers =
        "-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream'";
    let authed = format!(
        "curl -sS -w '\\n' -X POST '{mcp}' -H \"Authorization: Bearer $TOKEN\" {json_headers} -H 'MCP-Protocol-Version: {PROTOCOL_VERSION}'"
    );
    let initialize = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"{PROTOCOL_VERSION}","capabilities":{{}},"clientInfo":{{"name":"curl","version":"1.0"}}}}}}"#
    );
    let lines = [
        BLOCK_START.to_owned(),
        format!("TOKEN='{token}'"),
        "# 1. No token: 401, and WWW-Authenticate points to the resource metadata".to_owned(),
        format!(
            r#"curl -sS -i -w '\n' -X POST '{mcp}' {json_headers} -d '{{"jsonrpc":"2.0","id":1,"method":"tools/list"}}'"#
        ),
        "# 2. The resource metadata (RFC 9728); no token needed".to_owned(),
        format!("curl -sS -w '\\n' '{metadata}'"),
        "# 3. Initialize (stateless server: no session id to carry)".to_owned(),
        format!("{authed} -d '{initialize}'"),
        "# 4. Tell the server the client is initialized (answers 202, no body)".to_owned(),
        format!(r#"{authed} -d '{{"jsonrpc":"2.0","method":"notifications/initialized"}}'"#),
        "# 5. Call whoami".to_owned(),
        format!(
            r#"{authed} -d '{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"whoami","arguments":{{}}}}}}'"#
        ),
        BLOCK_END.to_owned(),
    ];
    lines.join("\n")
}

/// The `secret` tool and its step-up challenge, after the copy-paste block (which tests run
/// as a fixed sequence).
fn secret_note(setup: &Setup) -> Vec<String> {
    let mcp = &setup.mcp_url;
    vec![
        format!(
            "The `secret` tool also needs the `{ADMIN_SCOPE}` scope: a token without it gets 403 with `WWW-Authenticate: Bearer error=\"insufficient_scope\", scope=\"...\"`, and an \
             MCP client re-authorizes with that scope and retries (step-up). To see the challenge:"
        ),
        String::new(),
        format!(
            r#"curl -sS -i -w '\n' -X POST '{mcp}' -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: {PROTOCOL_VERSION}' -d '{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"secret","arguments":{{}}}}}}'"#
        ),
    ]
}

/// The metadata URL on the local server (the resource's own metadata URL when the resource
/// is served here).
fn local_metadata_url(setup: &Setup) -> String {
    if setup.mcp_url == setup.resource {
        setup.metadata_url.clone()
    } else {
        // The path the metadata is served at: the metadata URL's, on whatever host.
        let path = Url::parse(&setup.metadata_url)
            .map(|url| url.path().to_owned())
            .unwrap_or_else(|_| "/.well-known/oauth-protected-resource".to_owned());
        format!("http://localhost:{}{path}", setup.local_addr.port())
    }
}

/// Prints the start-up banner to stdout. `flavour` names the web stack.
pub fn print(setup: &Setup, flavour: &str) {
    let mut out = Vec::new();
    out.push(format!(
        "mcp-auth whoami example ({flavour} + rmcp Streamable HTTP)"
    ));
    out.push(String::new());
    out.push(format!("  listening on        {}", setup.local_addr));
    out.push(format!("  MCP endpoint        {}", setup.mcp_url));
    out.push(format!("  protected resource  {}", setup.resource));
    out.push(format!("  resource metadata   {}", setup.metadata_url));
    out.push(format!("  authorization server {}", setup.issuer));
    out.push(format!(
        "  token verifier      {}",
        setup.config.verifier.as_str()
    ));
    if setup.config.dpop != super::config::DpopMode::Off {
        out.push(format!(
            "  DPoP                {}{}",
            setup.config.dpop.as_str(),
            if setup.config.dpop_nonce {
                ", server nonces"
            } else {
                ""
            }
        ));
    }
    if let Ok(Some(keys)) = setup.api_key_verifier() {
        // Names only: the keys themselves are never configured, the hashes never printed.
        out.push(format!(
            "  API keys            {} (bearer tokens starting {})",
            keys.names().collect::<Vec<_>>().join(", "),
            mcp_auth::verify::ApiKey::DEFAULT_PREFIX
        ));
    }
    if !setup.config.required_scopes.is_empty() {
        out.push(format!(
            "  required scopes     {}",
            setup.config.required_scopes.join(" ")
        ));
    }
    out.push(String::new());
    if setup.config.verifier == VerifierKind::Userinfo {
        out.push(
            "WARNING: the userinfo verifier cannot check the token audience, so the audience check is OFF: \
             any token your authorization server accepts passes, including tokens issued to other \
             applications. Prefer MCP_AUTH_VERIFIER=jwt or introspection."
                .to_owned(),
        );
        out.push(String::new());
    }
    match (&setup.dev_server, setup.sample_token()) {
        (Some(dev), Some(token)) => {
            let rule = "!".repeat(78);
            out.push(rule.clone());
            out.push(
                "!! No MCP_AUTH_ISSUER set: using the BUILT-IN TEST AUTHORIZATION SERVER at"
                    .to_owned(),
            );
            out.push(format!("!!   {}", dev.issuer()));
            out.push(
                "!! It is for LOCAL DEVELOPMENT AND TESTS ONLY: it gives a token to anyone who"
                    .to_owned(),
            );
            out.push(
                "!! asks (no login, auto-approved consent, open client registration, keys in"
                    .to_owned(),
            );
            out.push(
                "!! memory). Never expose it. Set MCP_AUTH_ISSUER to use a real server.".to_owned(),
            );
            out.push(rule);
            out.push(String::new());
            let user = dev.sample_user();
            out.push(format!(
                "A bearer token for the sample user {} ({}), valid for {} minutes, for {}:",
                user.name.as_deref().unwrap_or(&user.subject),
                user.email.as_deref().unwrap_or("no email"),
                dev.token_ttl().as_secs() / 60,
                setup.resource,
            ));
            out.push(String::new());
            out.push(token.clone());
            out.push(String::new());
            out.push("Try it:".to_owned());
            out.push(String::new());
            out.push(curl_block(setup, &token));
            out.push(String::new());
            out.extend(secret_note(setup));
            out.push(String::new());
            out.push(format!(
                "An MCP client (e.g. `npx @modelcontextprotocol/inspector`, transport Streamable HTTP) pointed at \
                 {} runs the whole OAuth flow against the test server by itself: discovery from the 401, \
                 client registration, authorization (auto-approved, no login) with PKCE, token.",
                setup.mcp_url
            ));
        }
        _ => {
            out.push(format!(
                "Get an access token from {} for the resource {} (RFC 8707 `resource` parameter{}), then:",
                setup.issuer,
                setup.resource,
                if setup.config.required_scopes.is_empty() {
                    String::new()
                } else {
                    format!(", scopes `{}`", setup.config.required_scopes.join(" "))
                }
            ));
            out.push(String::new());
            out.push(curl_block(setup, "<paste the access token here>"));
            out.push(String::new());
            out.extend(secret_note(setup));
            out.push(String::new());
            out.push(format!(
                "Or point an MCP client at {}: it discovers {} from the 401 and runs the OAuth flow.",
                setup.mcp_url, setup.issuer
            ));
        }
    }
    out.push(String::new());
    out.push("Press Ctrl-C to stop.".to_owned());
    // Not `println!`: a closed stdout (`| head`) must not bring the server down.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", out.join("\n")).and_then(|()| stdout.flush());
}
