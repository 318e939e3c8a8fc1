//! The development flow a real MCP client runs: dynamic client registration (RFC 7591), an
//! auto-approving authorization endpoint with PKCE (RFC 7636) and resource indicators
//! (RFC 8707), and the token endpoint (authorization code, refresh token, client
//! credentials, RFC 8693 token exchange). There is no login step: every code is granted to the sample user.

use std::sync::Arc;

use axum::response::Response;
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Map, Value, json};
use url::Url;

use super::keys;
use super::request::{IncomingRequest, Params};
use super::respond::{self, OAuthError};
use super::state::{AuthorizationCode, CODE_TTL_SECS, Client, IssuedToken, RefreshGrant, Shared};
use super::token::TokenBuilder;
use crate::exchange::{ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT};
use crate::time::unix_now;
use crate::verify::JwsAlgorithm;

const AUTH_METHODS: [&str; 3] = ["none", "client_secret_basic", "client_secret_post"];

/// RFC 7591 registration: open to anyone, answers 201 with the client's credentials.
pub(crate) fn registration(shared: &Arc<Shared>, request: &IncomingRequest) -> Response {
    if request.method != Method::POST {
        return respond::method_not_allowed("POST, OPTIONS");
    }
    let metadata_error = |description: &str| {
        OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            description,
        )
    };
    let answer = || -> Result<Value, OAuthError> {
        let Ok(Value::Object(mut metadata)) = serde_json::from_slice::<Value>(&request.body) else {
            return Err(metadata_error("the body must be a JSON object"));
        };
        let redirect_uris = redirect_uris(metadata.get("redirect_uris")).ok_or_else(|| {
            OAuthError::new(
                StatusCode::BAD_REQUEST,
                "invalid_redirect_uri",
                "redirect_uris must be a non-empty array of absolute URLs without fragment",
            )
        })?;
        let auth_method = match metadata.get("token_endpoint_auth_method") {
            None => "client_secret_basic",
            Some(Value::String(method)) if AUTH_METHODS.contains(&method.as_str()) => method,
            Some(_) => return Err(metadata_error("unsupported token_endpoint_auth_method")),
        }
        .to_owned();
        let client_id = format!("client-{}", keys::random_token(12));
        let secret = (auth_method != "none").then(|| keys::random_token(24));
        metadata.insert("client_id".into(), client_id.clone().into());
        metadata.insert("client_id_issued_at".into(), unix_now().into());
        if let Some(secret) = &secret {
            metadata.insert("client_secret".into(), secret.clone().into());
            metadata.insert("client_secret_expires_at".into(), 0.into());
        }
        metadata.insert("token_endpoint_auth_method".into(), auth_method.into());
        metadata
            .entry("grant_types")
            .or_insert_with(|| json!(["authorization_code", "refresh_token"]));
        metadata
            .entry("response_types")
            .or_insert_with(|| json!(["code"]));
        let client = Client {
            secret,
            redirect_uris,
            any_loopback_redirect: false,
        };
        shared.state().clients.insert(client_id, client);
        Ok(Value::Object(metadata))
    };
    match answer() {
        Ok(body) => respond::no_store(respond::json(StatusCode::CREATED, &body)),
        Err(error) => error.into_response(),
    }
}

fn redirect_uris(value: Option<&Value>) -> Option<Vec<String>> {
    let uris = value?.as_array()?;
    let uris: Option<Vec<String>> = uris
        .iter()
        .map(|uri| {
            let uri = uri.as_str()?;
            let parsed = Url::parse(uri).ok()?;
            parsed.fragment().is_none().then(|| uri.to_owned())
        })
        .collect();
    uris.filter(|uris| !uris.is_empty())
}

/// The authorization endpoint: validates the request and immediately redirects back
/// with a code for the sample user (or with an error).
pub(crate) fn authorize(shared: &Arc<Shared>, request: &IncomingRequest) -> Response {
    if request.method != Method::GET {
        return respond::method_not_allowed("GET, OPTIONS");
    }
    let params = request.query();
    // Until the redirect URI is trusted, errors go to the user agent, not to the client.
    let redirect_uri = match trusted_redirect(shared, &params) {
        Ok(redirect) => redirect,
        Err(error) => return error.into_response(),
    };
    let state = params.one("state").ok().flatten();
    match grant_code(shared, &params, &redirect_uri) {
        Ok(code) => redirect(shared, &redirect_uri.uri, &[("code", &code)], state),
        Err(error) => {
            let pairs = [
                ("error", error.code),
                ("error_description", error.description.as_str()),
            ];
            redirect(shared, &redirect_uri.uri, &pairs, state)
        }
    }
}

struct TrustedRedirect {
    client_id: String,
    uri: String,
    given: bool,
}

fn trusted_redirect(shared: &Arc<Shared>, params: &Params) -> Result<TrustedRedirect, OAuthError> {
    let client_id = params.required("client_id")?;
    let given = params.one("redirect_uri")?;
    let state = shared.state();
    let client = state
        .clients
        .get(client_id)
        .ok_or_else(|| OAuthError::invalid_request("unknown client_id"))?;
    let uri = match given {
        Some(uri)
            if client
                .redirect_uris
                .iter()
                .any(|known| redirect_matches(known, uri)) =>
        {
            uri.to_owned()
        }
        Some(uri) if client.any_loopback_redirect && is_loopback_redirect(uri) => uri.to_owned(),
        Some(_) => {
            return Err(OAuthError::invalid_request(
                "redirect_uri is not registered",
            ));
        }
        None => match client.redirect_uris.as_slice() {
            [only] => only.clone(),
            _ => return Err(OAuthError::invalid_request("redirect_uri is required")),
        },
    };
    Ok(TrustedRedirect {
        client_id: client_id.to_owned(),
        uri,
        given: given.is_some(),
    })
}

/// Exact match, except that a loopback redirect may use any port (RFC 8252 §7.3).
fn redirect_matches(registered: &str, given: &str) -> bool {
    if registered == given {
        return true;
    }
    let without_port = |uri: &str| {
        let mut url = Url::parse(uri).ok()?;
        url.set_port(None).ok()?;
        Some(url)
    };
    is_loopback_redirect(registered)
        && is_loopback_redirect(given)
        && without_port(registered).is_some_and(|r| without_port(given) == Some(r))
}

fn is_loopback_redirect(uri: &str) -> bool {
    let Ok(url) = Url::parse(uri) else {
        return false;
    };
    let loopback_host = match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    url.scheme() == "http" && loopback_host && url.fragment().is_none()
}

fn grant_code(
    shared: &Arc<Shared>,
    params: &Params,
    redirect: &TrustedRedirect,
) -> Result<String, OAuthError> {
    if params.required("response_type")? != "code" {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_response_type",
            "only response_type=code is supported",
        ));
    }
    let code_challenge = params.one("code_challenge")?.ok_or_else(|| {
        OAuthError::invalid_request("code_challenge is required (PKCE with S256)")
    })?;
    if params.one("code_challenge_method")? != Some("S256") {
        return Err(OAuthError::invalid_request(
            "code_challenge_method must be S256",
        ));
    }
    let scope = requested_scope(shared, params.one("scope")?)?;
    let resources = resources(params)?;
    let code = keys::random_token(32);
    let grant = AuthorizationCode {
        client_id: redirect.client_id.clone(),
        redirect_uri: redirect.uri.clone(),
        redirect_uri_given: redirect.given,
        code_challenge: code_challenge.to_owned(),
        scope,
        resources,
        nonce: params.one("nonce")?.map(str::to_owned),
        expires_at: unix_now().saturating_add(CODE_TTL_SECS),
        used: false,
        issued_tokens: Vec::new(),
    };
    shared.state().codes.insert(code.clone(), grant);
    Ok(code)
}

/// The requested scopes, all of which must be supported.
fn requested_scope(shared: &Arc<Shared>, scope: Option<&str>) -> Result<Vec<String>, OAuthError> {
    let scopes: Vec<String> = scope
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    match scopes
        .iter()
        .find(|scope| !shared.config.scopes_supported.contains(scope))
    {
        Some(unknown) => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            format!("scope {unknown} is not supported"),
        )),
        None => Ok(scopes),
    }
}

/// RFC 8707 `resource` parameters: absolute URIs without fragment.
fn resources(params: &Params) -> Result<Vec<String>, OAuthError> {
    let resources: Vec<String> = params
        .all("resource")
        .into_iter()
        .map(String::from)
        .collect();
    let invalid =
        |resource: &String| Url::parse(resource).map_or(true, |url| url.fragment().is_some());
    if resources.iter().any(invalid) {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_target",
            "resource must be an absolute URI without fragment",
        ));
    }
    Ok(resources)
}

fn redirect(
    shared: &Arc<Shared>,
    uri: &str,
    pairs: &[(&str, &str)],
    state: Option<&str>,
) -> Response {
    let location = match Url::parse(uri) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (name, value) in pairs {
                    query.append_pair(name, value);
                }
                if let Some(state) = state {
                    query.append_pair("state", state);
                }
                query.append_pair("iss", &shared.config.issuer);
            }
            url.to_string()
        }
        // Redirect URIs were parsed when registered or checked; this is unreachable.
        Err(_) => return OAuthError::invalid_request("bad redirect_uri").into_response(),
    };
    let mut response = respond::empty(StatusCode::FOUND);
    match HeaderValue::from_str(&location) {
        Ok(value) => response.headers_mut().insert(header::LOCATION, value),
        Err(_) => return OAuthError::invalid_request("bad redirect_uri").into_response(),
    };
    respond::no_store(response)
}

/// The token endpoint.
pub(crate) fn token(shared: &Arc<Shared>, request: &IncomingRequest) -> Response {
    if request.method != Method::POST {
        return respond::method_not_allowed("POST, OPTIONS");
    }
    let answer = || -> Result<Value, OAuthError> {
        let form = request.form()?;
        let grant_type = form.required("grant_type")?;
        let client_id = authenticate_client(shared, request, &form)?;
        match grant_type {
            "authorization_code" => authorization_code_grant(shared, &form, &client_id),
            "refresh_token" => refresh_token_grant(shared, &form, &client_id),
            "client_credentials" => client_credentials_grant(shared, &form, &client_id),
            TOKEN_EXCHANGE_GRANT => token_exchange_grant(shared, &form, &client_id),
            _ => Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!("grant_type {grant_type} is not supported"),
            )),
        }
    };
    match answer() {
        Ok(body) => respond::no_store(respond::json(StatusCode::OK, &body)),
        Err(error) => error.into_response(),
    }
}

/// The client making a token request: confidential clients must prove their secret,
/// public clients only name themselves.
fn authenticate_client(
    shared: &Arc<Shared>,
    request: &IncomingRequest,
    form: &Params,
) -> Result<String, OAuthError> {
    let Some((client_id, secret)) = request.client_credentials(form)? else {
        return Err(OAuthError::invalid_client("client_id is required"));
    };
    let state = shared.state();
    let client = state
        .clients
        .get(&client_id)
        .ok_or_else(|| OAuthError::invalid_client("unknown client"))?;
    match (&client.secret, secret) {
        (None, _) => Ok(client_id),
        (Some(known), Some(given)) if *known == given => Ok(client_id),
        (Some(_), _) => Err(OAuthError::invalid_client("wrong or missing client secret")),
    }
}

fn authorization_code_grant(
    shared: &Arc<Shared>,
    form: &Params,
    client_id: &str,
) -> Result<Value, OAuthError> {
    let code = form.required("code")?;
    let verifier = form.required("code_verifier")?;
    let redirect_uri = form.one("redirect_uri")?;
    let requested = resources(form)?;
    let grant = {
        let mut state = shared.state();
        let Some(grant) = state.codes.get_mut(code) else {
            return Err(OAuthError::invalid_grant("unknown authorization code"));
        };
        if grant.used {
            // A replayed code revokes what it already produced (OAuth 2.1 §4.1.3).
            let issued = std::mem::take(&mut grant.issued_tokens);
            state.revoked.extend(issued);
            return Err(OAuthError::invalid_grant("authorization code already used"));
        }
        grant.used = true;
        grant.clone()
    };
    if grant.expires_at <= unix_now() {
        return Err(OAuthError::invalid_grant("authorization code expired"));
    }
    if grant.client_id != client_id {
        return Err(OAuthError::invalid_grant(
            "authorization code was issued to another client",
        ));
    }
    if (grant.redirect_uri_given || redirect_uri.is_some())
        && redirect_uri != Some(grant.redirect_uri.as_str())
    {
        return Err(OAuthError::invalid_grant("redirect_uri does not match"));
    }
    let verifier_ok = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !verifier_ok || keys::s256_challenge(verifier) != grant.code_challenge {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    let resources = narrow_resources(&grant.resources, requested)?;
    let mut response = issue(shared, client_id, true, &grant.scope, &resources);
    if grant.scope.iter().any(|scope| scope == "openid") {
        response.insert(
            "id_token".into(),
            id_token(shared, client_id, grant.nonce.as_deref()).into(),
        );
    }
    let issued: Vec<String> = ["access_token", "refresh_token"]
        .iter()
        .filter_map(|name| {
            response
                .get(*name)
                .and_then(Value::as_str)
                .map(String::from)
        })
        .collect();
    if let Some(stored) = shared.state().codes.get_mut(code) {
        stored.issued_tokens = issued;
    }
    Ok(Value::Object(response))
}

fn refresh_token_grant(
    shared: &Arc<Shared>,
    form: &Params,
    client_id: &str,
) -> Result<Value, OAuthError> {
    let refresh_token = form.required("refresh_token")?;
    let requested = resources(form)?;
    let grant = {
        let mut state = shared.state();
        let usable = !state.revoked.contains(refresh_token)
            && state
                .refresh_tokens
                .get(refresh_token)
                .is_some_and(|g| g.client_id == client_id);
        match state.refresh_tokens.remove(refresh_token) {
            Some(grant) if usable => grant,
            _ => {
                return Err(OAuthError::invalid_grant(
                    "unknown, used or revoked refresh token",
                ));
            }
        }
    };
    let scope = match form.one("scope")? {
        None => grant.scope.clone(),
        Some(scope) => {
            let scope: Vec<String> = scope.split_whitespace().map(String::from).collect();
            if scope.iter().any(|s| !grant.scope.contains(s)) {
                return Err(OAuthError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    "a refresh may only narrow the scope",
                ));
            }
            scope
        }
    };
    let resources = narrow_resources(&grant.resources, requested)?;
    let mut response = issue(shared, client_id, true, &scope, &resources);
    // Keep the original grant's bounds for the rotated refresh token.
    if let Some(new_refresh) = response.get("refresh_token").and_then(Value::as_str) {
        shared
            .state()
            .refresh_tokens
            .insert(new_refresh.to_owned(), grant);
    }
    if scope.iter().any(|s| s == "openid") {
        response.insert("id_token".into(), id_token(shared, client_id, None).into());
    }
    Ok(Value::Object(response))
}

fn client_credentials_grant(
    shared: &Arc<Shared>,
    form: &Params,
    client_id: &str,
) -> Result<Value, OAuthError> {
    let confidential = shared
        .state()
        .clients
        .get(client_id)
        .is_some_and(|client| client.secret.is_some());
    if !confidential {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "client_credentials needs a confidential client",
        ));
    }
    let scope = requested_scope(shared, form.one("scope")?)?;
    let resources = resources(form)?;
    Ok(Value::Object(issue(
        shared, client_id, false, &scope, &resources,
    )))
}

/// RFC 8693 token exchange, for confidential clients: the subject token must be an access
/// token this server issued and still active; the new token is a JWT for the requested
/// `resource`s and `audience`s (at least one), with the requested scopes (a subset of the
/// subject's; all of them when none is requested), the subject's `sub`, the exchanging
/// client as `client_id` and as the actor (`act`, RFC 8693 §4.1), and the server's token
/// TTL (not capped at the subject's expiry, so that tests can tell the two apart).
fn token_exchange_grant(
    shared: &Arc<Shared>,
    form: &Params,
    client_id: &str,
) -> Result<Value, OAuthError> {
    if shared
        .state()
        .clients
        .get(client_id)
        .is_none_or(|client| client.secret.is_none())
    {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "token exchange needs a confidential client",
        ));
    }
    let subject_token = form.required("subject_token")?;
    if form.required("subject_token_type")? != ACCESS_TOKEN_TYPE {
        return Err(OAuthError::invalid_request(
            "only access tokens are accepted as subject_token_type",
        ));
    }
    if form
        .one("requested_token_type")?
        .is_some_and(|t| t != ACCESS_TOKEN_TYPE)
    {
        return Err(OAuthError::invalid_request(
            "only access tokens are issued (requested_token_type)",
        ));
    }
    if form.one("actor_token")?.is_some() {
        return Err(OAuthError::invalid_request(
            "actor tokens are not supported",
        ));
    }
    let Some(subject) = shared.active_token(subject_token) else {
        return Err(OAuthError::invalid_grant(
            "the subject token is unknown, expired or revoked",
        ));
    };
    let granted: Vec<String> = subject
        .claims
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    let scope = match form.one("scope")? {
        None => granted,
        Some(scope) => {
            let scope: Vec<String> = scope.split_whitespace().map(String::from).collect();
            if scope.iter().any(|s| !granted.contains(s)) {
                return Err(OAuthError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    "an exchange may only narrow the subject token's scope",
                ));
            }
            scope
        }
    };
    let mut targets = resources(form)?;
    targets.extend(form.all("audience").into_iter().map(String::from));
    if targets.is_empty() {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_target",
            "name the resource or audience the new token is for",
        ));
    }
    let subject_id = subject
        .claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let audience = match targets.as_slice() {
        [one] => Value::from(one.clone()),
        many => Value::from(many.to_vec()),
    };
    let scope = scope.join(" ");
    let mut builder = TokenBuilder::new(Arc::clone(shared))
        .subject(subject_id)
        .audience(audience)
        .client_id(client_id)
        .claim("act", json!({ "sub": client_id }));
    if !scope.is_empty() {
        builder = builder.scope(scope.clone());
    }
    let mut response = Map::new();
    response.insert("access_token".into(), builder.sign().into());
    response.insert("issued_token_type".into(), ACCESS_TOKEN_TYPE.into());
    response.insert("token_type".into(), "Bearer".into());
    response.insert("expires_in".into(), shared.config.token_ttl_secs().into());
    if !scope.is_empty() {
        response.insert("scope".into(), scope.into());
    }
    Ok(Value::Object(response))
}

/// Token-request resources must be among the authorized ones; none means all of them.
fn narrow_resources(
    authorized: &[String],
    requested: Vec<String>,
) -> Result<Vec<String>, OAuthError> {
    if requested.is_empty() {
        return Ok(authorized.to_vec());
    }
    if requested
        .iter()
        .any(|resource| !authorized.contains(resource))
    {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_target",
            "resource was not part of the authorization",
        ));
    }
    Ok(requested)
}

/// Issues an access token (a signed JWT when resources are named, else an opaque token
/// like node-oidc-provider), and for user grants a refresh token. Returns the token
/// response body.
fn issue(
    shared: &Arc<Shared>,
    client_id: &str,
    for_user: bool,
    scope: &[String],
    resources: &[String],
) -> Map<String, Value> {
    let config = &shared.config;
    let subject = if for_user {
        config.sample_user.subject.as_str()
    } else {
        client_id
    };
    let scope = scope.join(" ");
    let now = unix_now();
    let mut claims = Map::new();
    claims.insert("iss".into(), config.issuer.clone().into());
    claims.insert("sub".into(), subject.into());
    match resources {
        [] => {}
        [one] => {
            claims.insert("aud".into(), one.clone().into());
        }
        many => {
            claims.insert("aud".into(), many.to_vec().into());
        }
    }
    if !scope.is_empty() {
        claims.insert("scope".into(), scope.clone().into());
    }
    claims.insert("client_id".into(), client_id.into());
    claims.insert("iat".into(), now.into());
    claims.insert(
        "exp".into(),
        now.saturating_add(config.token_ttl_secs()).into(),
    );
    claims.insert("jti".into(), keys::random_token(16).into());
    if for_user {
        for (name, value) in config.sample_user.claims() {
            claims.entry(name).or_insert(value);
        }
    }
    let access_token = if resources.is_empty() {
        let token = keys::random_token(32);
        let issued = IssuedToken {
            userinfo: shared.profile_for(subject),
            claims,
        };
        shared.remember_token(token.clone(), issued);
        token
    } else {
        claims
            .into_iter()
            .fold(
                TokenBuilder::new(Arc::clone(shared)),
                |builder, (name, value)| builder.claim(name, value),
            )
            .alg(JwsAlgorithm::Rs256)
            .sign()
    };
    let mut response = Map::new();
    response.insert("access_token".into(), access_token.into());
    response.insert("token_type".into(), "Bearer".into());
    response.insert("expires_in".into(), config.token_ttl_secs().into());
    if !scope.is_empty() {
        response.insert("scope".into(), scope.clone().into());
    }
    if for_user {
        let refresh_token = keys::random_token(32);
        let grant = RefreshGrant {
            client_id: client_id.to_owned(),
            scope: scope.split_whitespace().map(String::from).collect(),
            resources: resources.to_vec(),
        };
        shared
            .state()
            .refresh_tokens
            .insert(refresh_token.clone(), grant);
        response.insert("refresh_token".into(), refresh_token.into());
    }
    response
}

/// An OpenID Connect ID token for the sample user, audience the client.
fn id_token(shared: &Arc<Shared>, client_id: &str, nonce: Option<&str>) -> String {
    let now = unix_now();
    let mut builder = TokenBuilder::new(Arc::clone(shared))
        .typ(Some("JWT"))
        .audience(client_id)
        .claim("auth_time", now)
        .remove_claim("client_id")
        .remove_claim("jti");
    for (name, value) in shared.config.sample_user.claims() {
        builder = builder.claim(name, value);
    }
    if let Some(nonce) = nonce {
        builder = builder.claim("nonce", nonce);
    }
    builder.sign_unregistered()
}
