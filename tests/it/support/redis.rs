//! A real `redis-server` for the Redis store's tests: each [`RedisServer`] is its own process
//! on a loopback port chosen by the OS, without persistence, killed when dropped.
//!
//! `redis-server` must be installed (`apt-get install redis-server`; `.ci/run` installs it):
//! without it these tests fail with a message saying so, they are never skipped.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mcp_auth::store::RedisStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A running `redis-server`; dropping it kills the process.
pub struct RedisServer {
    child: Option<Child>,
    /// The loopback port it listens on.
    pub port: u16,
}

impl RedisServer {
    /// A new server on a free loopback port, answering PING.
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        Self::start_on(port).await
    }

    /// A new server on `port` (a restart of a stopped one keeps its port).
    pub async fn start_on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "could not start redis-server ({error}): the Redis store's tests need it \
                     installed, e.g. `sudo apt-get install -y redis-server` (Debian/Ubuntu) or \
                     `brew install redis`; .ci/run installs it"
                )
            });
        let server = Self {
            child: Some(child),
            port,
        };
        server.wait_for_ping().await;
        server
    }

    async fn wait_for_ping(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await {
                let mut reply = [0u8; 7];
                if stream.write_all(b"PING\r\n").await.is_ok()
                    && stream.read_exact(&mut reply).await.is_ok()
                    && &reply == b"+PONG\r\n"
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer PING within 5 s",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A store on this server in `namespace`, with short timeouts for tests.
    pub fn store(&self, namespace: &str) -> RedisStore {
        RedisStore::builder(self.url())
            .namespace(namespace)
            .call_timeout(Duration::from_millis(300))
            .connect_timeout(Duration::from_millis(200))
            .build()
            .expect("RedisStore")
    }

    /// Kills the process and waits for it to exit (the port is free again afterwards).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
