//! The added cost per request of the Redis state store against the in-memory one, in one run:
//!
//! - `session_check/*`: one request in an existing session through `McpGuard` (a closure
//!   verifier, so verification costs the same in each) with the bindings in this process's
//!   table (the default), in a `MemoryStore`, and in a `RedisStore` (one `GETEX`);
//! - `shared_cache_hit/*`: what a replica pays when its local cache misses and the shared
//!   store has another replica's answer: one `get` of a cached `AuthInfo` (about 300 bytes).
//!
//! The bench starts its own `redis-server` on a free loopback port (it must be installed) and
//! kills it at the end. Run with `cargo bench --features redis --bench store`.

use std::convert::Infallible;
use std::hint::black_box;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use http_body_util::Full;
use mcp_auth::store::{MemoryStore, RedisStore, StateKey, StateKind, StateStore};
use mcp_auth::tower::SessionBinding;
use mcp_auth::{
    AuthInfo, AuthServer, AuthorizationServerMetadata, McpAuth, ProtectedResource, VerifyError,
};
use tower::{Layer, Service, ServiceExt};

struct Redis(Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis() -> (Redis, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--bind", "127.0.0.1"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server must be installed (apt-get install redis-server)");
    for _ in 0..250 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (Redis(child), format!("redis://127.0.0.1:{port}"))
}

type Guarded = Box<dyn FnMut(Request<Full<Bytes>>) -> std::pin::Pin<Box<dyn Future<Output = u16>>>>;

/// An `McpGuard` stack over a service that opens session `s-1`, with `binding`; the session is
/// created once so that each iteration is a request in it.
fn stack(rt: &tokio::runtime::Runtime, binding: SessionBinding) -> Guarded {
    let metadata = AuthorizationServerMetadata::authorization_code(
        "https://as.example.com",
        "https://as.example.com/authorize",
        "https://as.example.com/token",
    );
    let auth = McpAuth::builder()
        .protected_resource(
            ProtectedResource::new("https://api.example.com/mcp")
                .authorization_server(AuthServer::from_metadata(metadata)),
        )
        .build()
        .expect("auth");
    let guard = auth
        .bearer_auth("https://api.example.com/mcp", |token: String| async move {
            Ok::<_, VerifyError>(
                AuthInfo::new(token.clone(), "https://as.example.com")
                    .with_subject(token)
                    .with_audience(["https://api.example.com/mcp"]),
            )
        })
        .build()
        .expect("guard");
    let mcp = tower::service_fn(|request: Request<_>| async move {
        let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
        let _: &Request<_> = &request;
        if !request.headers().contains_key("mcp-session-id") {
            response
                .headers_mut()
                .insert("mcp-session-id", "s-1".parse().unwrap());
        }
        Ok::<_, Infallible>(response)
    });
    let service = guard
        .mcp_guard()
        .session_binding(binding)
        .layer()
        .layer(mcp);
    let request = |session: bool| {
        let mut request = Request::post("/mcp").header("authorization", "Bearer alice");
        if session {
            request = request.header("mcp-session-id", "s-1");
        }
        request.body(Full::new(Bytes::new())).unwrap()
    };
    let created = rt
        .block_on(service.clone().oneshot(request(false)))
        .expect("created");
    assert_eq!(created.headers()["mcp-session-id"], "s-1");
    Box::new(move |_| {
        let mut service = service.clone();
        let request = request(true);
        Box::pin(async move {
            let response = service.ready().await.unwrap().call(request).await.unwrap();
            response.status().as_u16()
        })
    })
}

fn stores(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (_redis, url) = start_redis();
    let redis = {
        let _inside = rt.enter();
        RedisStore::builder(url).build().expect("redis store")
    };

    let mut group = c.benchmark_group("session_check");
    group.measurement_time(Duration::from_secs(4));
    let bindings: [(&str, SessionBinding); 3] = [
        ("in_process_table", SessionBinding::default()),
        (
            "memory_store",
            SessionBinding::builder()
                .store(MemoryStore::new())
                .build()
                .unwrap(),
        ),
        (
            "redis_store",
            SessionBinding::builder()
                .store(redis.clone())
                .build()
                .unwrap(),
        ),
    ];
    for (name, binding) in bindings {
        let mut send = stack(&rt, binding);
        assert_eq!(rt.block_on(send(Request::new(Full::default()))), 200);
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| {
                let status = send(Request::new(Full::default()));
                async move { black_box(status.await) }
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("shared_cache_hit");
    group.measurement_time(Duration::from_secs(4));
    let value = br#"{"v":1,"iss":"https://as.example.com","sub":"alice","cid":"test-client","scp":["read","write"],"aud":["https://api.example.com/mcp"],"exp":4102444800,"claims":{"iss":"https://as.example.com","sub":"alice","client_id":"test-client","scope":"read write","aud":"https://api.example.com/mcp","exp":4102444800,"active":true}}"#;
    let key = StateKey::new(
        StateKind::Introspection,
        &[b"https://as.example.com", b"token"],
    );
    let memory = MemoryStore::new();
    let ttl = Duration::from_secs(600);
    rt.block_on(memory.set(&key, value, ttl)).unwrap();
    rt.block_on(redis.set(&key, value, ttl)).unwrap();
    group.bench_function("memory_store", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(memory.get(&key).await.unwrap()) })
    });
    group.bench_function("redis_store", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(redis.get(&key).await.unwrap()) })
    });
    group.finish();
}

criterion_group!(benches, stores);
criterion_main!(benches);
