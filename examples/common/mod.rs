//! Plumbing shared by the whoami examples (axum, hyper, actix-web), their tests and the load
//! tools: configuration from the environment, the authorization server to trust, the `whoami`
//! tool, the start-up banner, the CORS policy, and the examples' apps rebuilt for in-process
//! use (`apps`). The mcp-auth wiring itself is in each example's own file.
#![allow(dead_code)]

pub mod apps;
pub mod banner;
pub mod config;
pub mod setup;
pub mod tool;

use std::process::ExitCode;

use config::{Command, Config};
use setup::{Setup, SetupError};

/// Logs to stderr; `RUST_LOG` overrides the default (`info` for mcp_auth, `warn` otherwise).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,mcp_auth=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Reads the configuration, binds the port, and finds the authorization server (starting the
/// built-in one without `MCP_AUTH_ISSUER`). The example then wires mcp-auth and prints the
/// banner ([`banner::print`]). On failure prints why (naming the variable at fault) and gives
/// the exit code: 2 for configuration errors, 1 otherwise; `--help` gives 0.
pub async fn start(
    flavour: &str,
    default_port: u16,
) -> Result<(tokio::net::TcpListener, Setup), ExitCode> {
    init_tracing();
    let config = match Config::from_env(default_port) {
        Ok(Command::Run(config)) => config,
        Ok(Command::Help) => {
            println!(
                "mcp-auth whoami example ({flavour} + rmcp)\n\n{}",
                config::USAGE
            );
            return Err(ExitCode::SUCCESS);
        }
        Err(error) => {
            eprintln!("error: invalid configuration: {error}\n\n{}", config::USAGE);
            return Err(ExitCode::from(2));
        }
    };
    let fail = |error: SetupError| error.report();
    let listener = setup::bind(&config).await.map_err(fail)?;
    let local_addr = listener.local_addr().map_err(|e| {
        fail(SetupError::other(format!(
            "cannot read the bound address: {e}"
        )))
    })?;
    let setup = Setup::new(config, local_addr).await.map_err(fail)?;
    Ok((listener, setup))
}

/// Completes on Ctrl-C (or SIGTERM on Unix).
pub async fn shutdown_signal() {
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
