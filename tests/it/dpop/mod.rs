//! DPoP (RFC 9449) at the guard over real HTTP: the checklist lines DPOP-01 … DPOP-09 and
//! PRM-12, each with a case that passes and one that must be refused. Proofs are signed by
//! `mcp_auth::testing::DpopKey`; tokens come from the test authorization server.
#![cfg(feature = "test-util")]

mod checks;
mod policy;
mod shared;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::routing::any;
use mcp_auth::bearer::{BearerChallenge, ChallengeScheme};
use mcp_auth::dpop::{DpopConfig, DpopConfigBuilder};
use mcp_auth::testing::{DpopKey, TestAuthServer};
use mcp_auth::{
    AuthInfo, AuthServer, AuthServerType, BearerAuth, McpAuth, ProtectedResource, TokenBinding,
    TokenVerifier,
};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// `/mcp` (any method) behind a guard with DPoP, answering the caller's binding as JSON, and
/// the metadata endpoints, on `127.0.0.1:0`.
pub struct DpopApp {
    pub addr: SocketAddr,
    pub resource: String,
    pub metadata_url: String,
    pub guard: BearerAuth,
    calls: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for DpopApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the guard answered.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub challenges: Vec<BearerChallenge>,
    pub nonce: Option<String>,
    pub body: Value,
}

impl Reply {
    /// The challenge of `scheme`, which must be there.
    pub fn challenge(&self, scheme: ChallengeScheme) -> &BearerChallenge {
        self.challenges
            .iter()
            .find(|c| c.scheme == scheme)
            .unwrap_or_else(|| panic!("no {scheme:?} challenge in {self:?}"))
    }

    /// The schemes of the challenges, in order.
    pub fn schemes(&self) -> Vec<ChallengeScheme> {
        self.challenges.iter().map(|c| c.scheme).collect()
    }

    /// Expects a 401 whose `DPoP` challenge (alone) carries `error`.
    #[track_caller]
    pub fn expect_dpop_error(&self, error: &str) {
        assert_eq!(self.status, 401, "{self:?}");
        assert_eq!(self.schemes(), [ChallengeScheme::Dpop], "{self:?}");
        assert_eq!(
            self.challenge(ChallengeScheme::Dpop).error.as_deref(),
            Some(error),
            "{self:?}"
        );
        assert_eq!(self.body["error"], error, "{self:?}");
    }
}

impl DpopApp {
    /// An app trusting `server` whose resource has `dpop` (the guard requires scope `read`),
    /// with the verifier `verifier` makes (the JWT verifier when `None`).
    pub async fn serve_with(
        server: &TestAuthServer,
        dpop: DpopConfigBuilder,
        verifier: Option<Arc<dyn TokenVerifier>>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let resource = format!("http://{addr}/mcp");
        let auth = McpAuth::builder()
            .protected_resource(
                ProtectedResource::new(resource.as_str())
                    .authorization_server(AuthServer::discover(
                        server.issuer(),
                        AuthServerType::Oidc,
                    ))
                    .dpop(dpop.build().expect("DPoP settings")),
            )
            .build()
            .expect("configuration");
        let guard = match verifier {
            Some(verifier) => auth.bearer_auth(&resource, verifier),
            None => auth.bearer_auth_jwt(&resource),
        }
        .required_scopes(["read"])
        .show_error_details(true)
        .build()
        .expect("guard");
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let handler = move |axum::Extension(info): axum::Extension<AuthInfo>| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                let jkt = match info.binding() {
                    TokenBinding::DpopKey { jkt } => Some(jkt.clone()),
                    _ => None,
                };
                axum::Json(json!({ "sub": info.subject, "jkt": jkt }))
            }
        };
        let app = axum::Router::new()
            .route("/mcp", any(handler))
            .route_layer(guard.layer())
            .fallback_service(auth.metadata_service());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            metadata_url: format!("http://{addr}/.well-known/oauth-protected-resource/mcp"),
            resource,
            guard,
            calls,
            task,
        }
    }

    /// [`serve_with`](Self::serve_with) the JWT verifier.
    pub async fn serve(server: &TestAuthServer, dpop: DpopConfigBuilder) -> Self {
        Self::serve_with(server, dpop, None).await
    }

    /// How many requests reached the handler.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// `POST /mcp` with `Authorization: <authorization>` (when given) and one `DPoP` header per
    /// proof, plus `extra` headers.
    pub async fn send(
        &self,
        authorization: &[String],
        proofs: &[String],
        extra: &[(&str, &str)],
    ) -> Reply {
        self.send_to(&self.resource, authorization, proofs, extra)
            .await
    }

    /// [`send`](Self::send) to `url` (a path or query on this app).
    pub async fn send_to(
        &self,
        url: &str,
        authorization: &[String],
        proofs: &[String],
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut headers = reqwest::header::HeaderMap::new();
        for value in authorization {
            headers.append("authorization", value.parse().expect("header value"));
        }
        for proof in proofs {
            headers.append("dpop", proof.parse().expect("header value"));
        }
        for (name, value) in extra {
            headers.append(
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                value.parse().expect("header value"),
            );
        }
        let response = reqwest::Client::new()
            .post(url)
            .headers(headers)
            .send()
            .await
            .expect("request");
        read(response).await
    }

    /// A DPoP request: `Authorization: DPoP <token>` and `proof`.
    pub async fn dpop(&self, token: &str, proof: String) -> Reply {
        self.send(&[format!("DPoP {token}")], &[proof], &[]).await
    }

    /// A valid proof by `key` for `POST` to this app's `/mcp` with `token`.
    pub fn proof(&self, key: &DpopKey, token: &str) -> String {
        key.proof("POST", &self.resource).access_token(token).sign()
    }
}

/// Reads a response into a [`Reply`].
pub async fn read(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let challenges = response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| BearerChallenge::parse(v.to_str().expect("ASCII")).expect("a valid challenge"))
        .collect();
    let nonce = response
        .headers()
        .get("dpop-nonce")
        .map(|v| v.to_str().expect("ASCII").to_owned());
    let bytes = response.bytes().await.expect("body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        challenges,
        nonce,
        body,
    }
}

/// A `read` token for `app`, bound to `key`.
pub fn bound_token(server: &TestAuthServer, app: &DpopApp, key: &DpopKey) -> String {
    server
        .token()
        .audience(app.resource.as_str())
        .scope("read")
        .dpop_bound(key)
        .sign()
}

/// The default DPoP settings.
pub fn allow() -> DpopConfigBuilder {
    DpopConfig::builder()
}
