//! `shoji-gateway`: HTTP/JSON for a participant's existing systems.
//!
//! A process a participant runs beside its back office. It talks to the validators with the
//! client library, so what it serves is checked the way a wallet checks it: blocks against their
//! commit certificates, transaction outcomes against the compact blocks stable checkpoints
//! certify, submissions until their certified commit; a validator that fails or lies is left for
//! another ([`upstream::Upstream`]).
//!
//! Routes (every `/v1` route needs the bearer token when one is configured):
//! - `GET /v1/status`, `GET /v1/blocks/{height}`, `GET /v1/transactions/{txid}`,
//!   `POST /v1/transactions` ([`mod@routes`]);
//! - `GET /v1/events` (server-sent events, resumable through `Last-Event-ID`) and
//!   `GET /v1/events/batch` ([`events`]);
//! - `GET /openapi.json`, built from the same handler list as the router, so it cannot drift;
//! - `GET /`, a status page of public data.

pub mod error;
pub mod events;
pub mod routes;
pub mod upstream;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use upstream::Upstream;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// How a gateway serves.
#[derive(Clone, Debug)]
pub struct Config {
    /// The bearer token every `/v1` request must carry (`None`: no token, for loopback only).
    pub token: Option<String>,
    /// Largest request body accepted (a submitted transaction), in bytes.
    pub max_body_bytes: usize,
    /// Most event streams served at once.
    pub max_streams: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            token: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_streams: DEFAULT_MAX_STREAMS as usize,
        }
    }
}

/// Default largest request body: a shielded transaction is under 3 KB, a governance
/// transaction with its approvals a few KB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// Default most event streams at once (each holds a thread while it waits for a block).
pub const DEFAULT_MAX_STREAMS: u32 = 64;

/// What every handler shares.
#[derive(Clone)]
pub struct State {
    /// The validators.
    pub upstream: Arc<Upstream>,
    /// Permits for event streams.
    pub subscribers: Arc<tokio::sync::Semaphore>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Shoji gateway",
        description = "HTTP/JSON access to a Shoji network: status, certified blocks and transaction outcomes, submission, and the public event stream. Nothing here is private: amounts, parties and notes never leave the ledger's encryption.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "network", description = "Where the network stands"),
        (name = "ledger", description = "Blocks and transactions"),
        (name = "events", description = "The public event stream"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The `/v1` routes with their OpenAPI annotations: the one list both the router and the
/// document are built from.
fn api() -> OpenApiRouter<State> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::status))
        .routes(routes!(routes::block))
        .routes(routes!(routes::transaction))
        .routes(routes!(routes::submit))
        .routes(routes!(events::stream))
        .routes(routes!(events::page))
}

/// The OpenAPI document of the gateway's routes (what `/openapi.json` serves).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().split_for_parts().1
}

/// The gateway's router and its OpenAPI document, built from one list of handlers.
pub fn app(upstream: Arc<Upstream>, config: Config) -> (axum::Router, utoipa::openapi::OpenApi) {
    let state = State {
        upstream,
        subscribers: Arc::new(tokio::sync::Semaphore::new(config.max_streams)),
    };
    let token = config.token.clone().map(Arc::new);
    let (api, doc) = api().with_state(state).split_for_parts();
    let api = api
        .layer(axum::middleware::from_fn(
            move |req: Request, next: Next| {
                let token = token.clone();
                async move { authorize(token.as_deref().map(String::as_str), req, next).await }
            },
        ))
        .layer(DefaultBodyLimit::max(config.max_body_bytes));
    let doc_json = Arc::new(doc.clone());
    let router = axum::Router::new()
        .route("/", get(status_page))
        .route(
            "/openapi.json",
            get(move || {
                let doc = doc_json.clone();
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        .merge(api)
        .fallback(|| async { error::ApiError::not_found("no such route: see /openapi.json") })
        .layer(axum::middleware::from_fn(json_errors));
    (router, doc)
}

/// Refuses a request without the bearer token (when one is configured), comparing in constant
/// time.
async fn authorize(token: Option<&str>, req: Request, next: Next) -> Response {
    if let Some(token) = token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
            return error::ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send the gateway's token as `Authorization: Bearer TOKEN`",
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// Turns the framework's own plain-text refusals (an oversized body, a malformed path or
/// query) into the gateway's JSON errors, so every error has a `code`.
async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_client_error() => "bad_request",
        _ => "internal",
    };
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap_or_default();
    let message = String::from_utf8_lossy(&body).trim().to_string();
    error::ApiError::new(status, code, message).into_response()
}

/// The status page: public data only, read from this gateway's own `/v1` routes.
async fn status_page() -> Html<&'static str> {
    Html(include_str!("status.html"))
}
