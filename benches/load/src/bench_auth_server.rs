//! The authorization server of `benches/load/run.sh` and `benches/load/memory.sh` (tooling,
//! not an example to copy): the crate's **test** authorization server (feature `test-util`,
//! for tests and development only) in its own process, so that every server under test trusts
//! the same issuer and JWKS, and a token for them.
//!
//! ```text
//! bench_auth_server --out DIR --audience AUD [--scope "read write"] [--alg RS256|ES256|EdDSA]
//!                   [--flood URL|@FILE --count N [--concurrency C]]
//! ```
//!
//! It writes `DIR/issuer` (the issuer URL) and `DIR/token` (one signed access token for the
//! sample user with that audience and scope, valid for an hour), then `DIR/ready`. Without
//! `--flood` it serves until SIGTERM or Ctrl-C. With `--flood`, it waits (at most 60 s) for
//! `URL` to answer (`@FILE`: for `FILE` to hold the URL, then for the URL to answer), then sends `N` requests to it (MCP `tools/call whoami`), each with a new,
//! distinct valid token signed on the fly, `C` at a time, prints what came back, and exits
//! (non-zero unless every answer was 200).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mcp_auth::testing::TestAuthServer;
use mcp_auth::verify::JwsAlgorithm;

const WHOAMI: &str =
    r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}"#;
const USAGE: &str = "usage: bench_auth_server --out DIR --audience AUD [--scope SCOPES] \
                     [--alg RS256|ES256|EdDSA] [--flood URL|@FILE --count N [--concurrency C]]";

struct Options {
    out: PathBuf,
    token: TokenSpec,
    flood: Option<Flood>,
}

/// What every token carries.
#[derive(Clone)]
struct TokenSpec {
    audience: String,
    scope: String,
    alg: JwsAlgorithm,
}

struct Flood {
    url: String,
    count: usize,
    concurrency: usize,
}

fn parse() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let (mut out, mut audience, mut scope, mut alg) = (None, None, None, JwsAlgorithm::Rs256);
    let (mut url, mut count, mut concurrency) = (None, None, 32_usize);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--out" => out = Some(PathBuf::from(value()?)),
            "--audience" => audience = Some(value()?),
            "--scope" => scope = Some(value()?),
            "--alg" => {
                alg = match value()?.to_ascii_uppercase().as_str() {
                    "RS256" => JwsAlgorithm::Rs256,
                    "ES256" => JwsAlgorithm::Es256,
                    "EDDSA" => JwsAlgorithm::EdDsa,
                    other => return Err(format!("--alg {other}: use RS256, ES256 or EdDSA")),
                }
            }
            "--flood" => url = Some(value()?),
            "--count" => count = Some(value()?.parse().map_err(|e| format!("--count: {e}"))?),
            "--concurrency" => {
                concurrency = value()?
                    .parse()
                    .map_err(|e| format!("--concurrency: {e}"))?;
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let flood = match (url, count) {
        (Some(url), Some(count)) => Some(Flood {
            url,
            count,
            concurrency: concurrency.max(1),
        }),
        (None, None) => None,
        _ => return Err("--flood and --count go together".into()),
    };
    Ok(Options {
        out: out.ok_or("--out is required")?,
        token: TokenSpec {
            audience: audience.ok_or("--audience is required")?,
            scope: scope.unwrap_or_else(|| "read write".into()),
            alg,
        },
        flood,
    })
}

fn token(server: &TestAuthServer, spec: &TokenSpec) -> String {
    server
        .token()
        .alg(spec.alg)
        .audience(spec.audience.clone())
        .scope(spec.scope.clone())
        .claim("name", "Alice Example")
        .claim("email", "alice@example.com")
        .claim("username", "alice")
        .sign()
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse() {
        Ok(options) => options,
        Err(problem) => {
            eprintln!("error: {problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let server = match TestAuthServer::start().await {
        Ok(server) => server,
        Err(error) => {
            eprintln!("error: cannot start the test authorization server: {error}");
            return ExitCode::FAILURE;
        }
    };
    let write = |name: &str, contents: &str| std::fs::write(options.out.join(name), contents);
    let written = write("issuer", server.issuer())
        .and_then(|()| write("token", &token(&server, &options.token)))
        .and_then(|()| write("ready", ""));
    if let Err(error) = written {
        eprintln!("error: cannot write to {}: {error}", options.out.display());
        return ExitCode::FAILURE;
    }
    println!(
        "test authorization server (benchmarks only) at {}",
        server.issuer()
    );

    let code = match &options.flood {
        Some(flood) => run_flood(&server, &options.token, flood).await,
        None => {
            wait_for_stop().await;
            ExitCode::SUCCESS
        }
    };
    server.shutdown().await;
    code
}

/// Sends `flood.count` requests, each with its own new token.
async fn run_flood(server: &TestAuthServer, spec: &TokenSpec, flood: &Flood) -> ExitCode {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(flood.concurrency)
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            eprintln!("error: cannot build the HTTP client: {error}");
            return ExitCode::FAILURE;
        }
    };
    let Some(url) = target_url(&flood.url).await else {
        eprintln!("error: no URL in {} within 60 s", flood.url);
        return ExitCode::FAILURE;
    };
    if !wait_until_up(&client, &url).await {
        eprintln!("error: {url} did not answer within 60 s");
        return ExitCode::FAILURE;
    }
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..flood.concurrency {
        let (client, next, ok) = (client.clone(), Arc::clone(&next), Arc::clone(&ok));
        let (server, url, spec) = (server.clone(), url.clone(), spec.clone());
        let count = flood.count;
        workers.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .header("mcp-protocol-version", "2025-06-18")
                    .bearer_auth(token(&server, &spec))
                    .body(WHOAMI)
                    .send()
                    .await;
                if let Ok(response) = response
                    && response.status().is_success()
                    && response.bytes().await.is_ok()
                {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while workers.join_next().await.is_some() {}
    let ok = ok.load(Ordering::Relaxed);
    println!(
        "flood: {} requests with distinct tokens in {:.1} s: {ok} answered 200, {} did not",
        flood.count,
        started.elapsed().as_secs_f64(),
        flood.count - ok
    );
    if ok == flood.count {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The URL itself, or for `@FILE` the first line of `FILE` once it has one (polled every
/// 100 ms for at most 60 s).
async fn target_url(flood: &str) -> Option<String> {
    let Some(file) = flood.strip_prefix('@') else {
        return Some(flood.to_owned());
    };
    for _ in 0..600 {
        if let Ok(contents) = std::fs::read_to_string(file)
            && let Some(url) = contents.lines().next().filter(|line| !line.is_empty())
        {
            return Some(url.to_owned());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Polls `url` (any HTTP answer counts) every 100 ms for at most 60 s.
async fn wait_until_up(client: &reqwest::Client, url: &str) -> bool {
    for _ in 0..600 {
        if client.get(url).send().await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Completes on Ctrl-C or SIGTERM.
async fn wait_for_stop() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
