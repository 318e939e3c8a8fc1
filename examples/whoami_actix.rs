//! `cargo run --example whoami_actix`: the whoami MCP server of `examples/whoami.rs` on
//! actix-web 4 instead of axum, on port 3002 by default. Same settings (`--help`: `PORT`,
//! `MCP_AUTH_ISSUER`, ...), same behaviour, same output.
//!
//! The auth part is mcp-auth's actix adapter:
//!
//! - `metadata_routes` serves the RFC 9728 metadata (`/.well-known/oauth-protected-resource/mcp`)
//!   without a token;
//! - `BearerAuthMiddleware` wraps the MCP endpoint only, and puts the verified `AuthInfo` into
//!   the request extensions (refusals are the same bytes as from the tower layer).
//!
//! The MCP part is rmcp's Streamable HTTP service, the one the axum example mounts. actix-web 4
//! is built on `http` 0.2 and rmcp on `http` 1.x, so [`mcp_endpoint`] hands each request over
//! (method, URI, headers, body, and the verified `AuthInfo`) and copies the answer back. The
//! `whoami` tool then reads `AuthInfo` through mcp-auth's rmcp extractor, exactly as on axum.
//! (The `rmcp-actix-web` crate is another bridge; it strips `Authorization` and nests what its
//! `on_request` hook forwards one level deeper, so a tool would read the identity with
//! `rmcp_actix_web::transport::on_request_extensions` instead.)

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;

use actix_web::http::StatusCode;
use actix_web::{App, HttpMessage, HttpRequest, HttpResponse, HttpServer, web};
use http_body_util::{BodyDataStream, BodyExt, Full};
use mcp_auth::AuthInfo;
use mcp_auth::integrations::actix::metadata_routes;
use mcp_auth::tower::McpChecksService;
use rmcp::transport::streamable_http_server::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use tower::ServiceExt;

use common::tool::WhoAmI;

/// The rmcp service the actix handler forwards to, behind the guard's MCP-aware checks
/// (sessions bound to their caller, per-tool scopes); the actix middleware authenticates.
type McpService = McpChecksService<StreamableHttpService<WhoAmI, LocalSessionManager>>;

/// The largest MCP message accepted: rmcp's own default limit.
const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

#[actix_web::main]
async fn main() -> ExitCode {
    let (listener, setup) = match common::start("actix-web", 3002).await {
        Ok(started) => started,
        Err(code) => return code,
    };
    let listener = match listener.into_std() {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: cannot hand the listening socket to actix-web: {error}");
            return ExitCode::FAILURE;
        }
    };

    let metadata = setup.auth.metadata_service();
    let middleware = setup.guard.actix_middleware();
    let mcp = web::Data::new(setup.mcp_service_with_checks());
    let mcp_path = setup.mcp_path.clone();
    let server = HttpServer::new(move || {
        App::new()
            // Outermost: CORS preflights (never with a token) are answered before the guard,
            // and web pages can read the 401's challenge (see `common::apps::browser_cors`).
            .wrap(browser_cors())
            // The metadata is public: it is how clients find the authorization server.
            .configure(metadata_routes(metadata.clone()))
            // The MCP endpoint: every request authenticated first.
            .service(
                web::resource(mcp_path.as_str())
                    .wrap(middleware.clone())
                    .app_data(mcp.clone())
                    .app_data(web::PayloadConfig::new(MAX_MESSAGE_BYTES))
                    .route(web::route().to(mcp_endpoint)),
            )
    })
    .listen(listener);
    let server = match server {
        Ok(server) => server,
        Err(error) => {
            eprintln!(
                "error: actix-web cannot listen on {}: {error}",
                setup.local_addr
            );
            return ExitCode::FAILURE;
        }
    };
    // actix-web stops gracefully on Ctrl-C and SIGTERM by itself.
    match server.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: the server stopped: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Hands an actix request (already authenticated by the middleware) to rmcp's service and
/// copies its answer back: actix-web 4 speaks `http` 0.2, rmcp `http` 1.x.
async fn mcp_endpoint(
    request: HttpRequest,
    body: web::Bytes,
    mcp: web::Data<McpService>,
) -> HttpResponse {
    let mut bridged = http::Request::builder()
        .method(request.method().as_str())
        .uri(request.uri().to_string());
    for (name, value) in request.headers() {
        bridged = bridged.header(name.as_str(), value.as_bytes());
    }
    let mut bridged = match bridged.body(Full::new(body)) {
        Ok(bridged) => bridged,
        Err(_) => return HttpResponse::BadRequest().finish(),
    };
    // Where mcp-auth's rmcp extractor looks for the caller, as behind the tower layer.
    if let Some(info) = request.extensions().get::<AuthInfo>() {
        bridged.extensions_mut().insert(info.clone());
    }

    let response = match mcp.get_ref().clone().oneshot(bridged).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let (parts, body) = response.into_parts();
    let status =
        StatusCode::from_u16(parts.status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    for (name, value) in &parts.headers {
        // actix frames the body itself (length or chunked; SSE streams stay streams).
        if name != http::header::CONTENT_LENGTH && name != http::header::TRANSFER_ENCODING {
            response.append_header((name.as_str(), value.as_bytes()));
        }
    }
    // actix wants `Box<dyn Error>` errors; the checks' body has `Send + Sync` ones.
    let body = body.map_err(|error| -> Box<dyn std::error::Error> { error });
    response.streaming(BodyDataStream::new(body))
}

/// CORS for clients running in a web page: the policy of `common::apps::browser_cors`, with
/// actix-cors.
fn browser_cors() -> actix_cors::Cors {
    use common::apps::{CORS_ALLOWED_HEADERS, CORS_EXPOSED_HEADERS};
    actix_cors::Cors::default()
        .allow_any_origin()
        .send_wildcard()
        .allowed_methods(["GET", "POST", "DELETE"])
        .allowed_headers(CORS_ALLOWED_HEADERS)
        .expose_headers(CORS_EXPOSED_HEADERS)
}
