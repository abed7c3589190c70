//! The spine: tollgate's pingora HTTP app. `serve` reads each request of a
//! connection and settles it; `dispatch` hands it to a stage module, and the
//! whole exchange, upstream included, runs from there (see `upstream::exchange`
//! for why).

mod attempts;
pub mod ctx;
mod passthrough;
mod respond;
mod routed;
mod serve;

pub use serve::Front;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use http::Method;
use pingora_core::apps::HttpServerOptions;
use pingora_error::Error;
use tokio::sync::Notify;

use crate::budget::Budget;
use crate::catalog::listing::CACHE_CONTROL;
use crate::error::ApiError;
use crate::limits::Limiter;
use crate::request::Endpoint;
use crate::state::State;
use crate::upstream::exchange::Exchanger;
use ctx::Ctx;

pub use crate::downstream::Session;

/// The gateway service: the current state, swapped whole on reload, and the
/// pooled upstream connector.
pub struct Gateway {
    pub state: Arc<ArcSwap<State>>,
    exchanger: Exchanger,
    pub budget: Arc<Budget>,
    limiter: Limiter,
    /// Requests being answered (for a shutdown that exits as soon as they end).
    pub in_flight: Arc<AtomicUsize>,
    /// Stopping or handing over to a successor: answers close their connection,
    /// so clients reconnect (to the successor) instead of racing the close.
    pub draining: Arc<AtomicBool>,
    /// Set once the service stops listening: connections idle between requests
    /// close instead of waiting out their keep-alive.
    closed: AtomicBool,
    close: Notify,
    options: HttpServerOptions,
}

impl Gateway {
    pub fn new(state: State) -> Gateway {
        let mut options = HttpServerOptions::default();
        // h2 without TLS, by its connection preface.
        options.h2c = true;
        Gateway {
            state: Arc::new(ArcSwap::from_pointee(state)),
            exchanger: Exchanger::default(),
            budget: Arc::default(),
            limiter: Limiter::default(),
            in_flight: Arc::default(),
            draining: Arc::default(),
            closed: AtomicBool::new(false),
            close: Notify::new(),
            options,
        }
    }
}

/// Why a handler stopped without a complete answer of its own.
pub enum Stop {
    /// tollgate answers this itself.
    Api(ApiError),
    /// The client left before the answer.
    ClientGone,
    /// The exchange broke after the response began.
    Abort(Box<Error>),
}

impl From<ApiError> for Stop {
    fn from(e: ApiError) -> Stop {
        Stop::Api(e)
    }
}

async fn dispatch(
    gw: &Gateway,
    state: &State,
    session: &mut Session,
    ctx: &mut Ctx,
) -> std::result::Result<(), Stop> {
    let method = session.req_header().method.clone();
    if method == Method::CONNECT {
        // A tunnel request: what follows on the connection is not HTTP to us.
        session.set_keepalive(None);
        return Err(ApiError::MethodNotAllowed {
            allow: "GET, HEAD, POST",
        }
        .into());
    }
    edge_limits(gw, state, session)?;
    // A `Uri` clone shares its bytes: no copy of the path per request.
    let uri = session.req_header().uri.clone();
    let get = method == Method::GET || method == Method::HEAD;
    match uri.path() {
        "/healthz" if get => respond::json(
            session,
            200,
            bytes::Bytes::from_static(b"{\"status\":\"ok\"}"),
            &[],
        )
        .await
        .map_err(Stop::Abort),
        "/healthz" => Err(ApiError::MethodNotAllowed { allow: "GET, HEAD" }.into()),
        "/v1/models" if get => models(state, session).await,
        "/v1/models" => Err(ApiError::MethodNotAllowed { allow: "GET, HEAD" }.into()),
        p if p.starts_with("/v1/models/") && get => {
            model(state, session, &p["/v1/models/".len()..]).await
        }
        p if p.starts_with("/proxy/") => {
            if !passthrough::allowed(&method) {
                return Err(ApiError::MethodNotAllowed {
                    allow: "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS",
                }
                .into());
            }
            passthrough::handle(gw, state, session, ctx, &p["/proxy/".len()..]).await
        }
        p => match Endpoint::from_path(p) {
            Some(endpoint) if method == Method::POST => {
                routed::handle(gw, state, session, ctx, endpoint).await
            }
            Some(_) => Err(ApiError::MethodNotAllowed { allow: "POST" }.into()),
            None => Err(ApiError::NotFound(format!("{method} {}", truncate(p, 128))).into()),
        },
    }
}

/// What an edge bounds about every request before reading its body.
fn edge_limits(gw: &Gateway, state: &State, session: &mut Session) -> Result<(), ApiError> {
    let d = &state.config.downstream;
    session.set_read_timeout(Some(d.read_timeout));
    // Requests pipelined on one connection are answered in order (Pingora
    // drops all but the first by default).
    session.set_pipelining_enabled(true);
    if gw.draining.load(Ordering::Relaxed) {
        session.set_keepalive(None);
    } else if session.get_keepalive().is_some() {
        // Only where Pingora keeps the connection: not for `Connection: close`,
        // HTTP/1.0, or both Content-Length and Transfer-Encoding (RFC 9112
        // §6.3: answer, then close).
        session.set_keepalive(Some(d.keepalive_timeout.as_secs().max(1)));
    }
    if let Some(max) = d.max_requests_in_flight {
        // This request is counted already.
        if gw.in_flight.load(Ordering::Relaxed) > max {
            return Err(ApiError::Overloaded);
        }
    }
    let req = session.req_header();
    // RFC 9112 §3.2: a server must answer 400 to an HTTP/1.1 request without
    // a Host (h2 carries `:authority` instead).
    if req.version == http::Version::HTTP_11 && !req.headers.contains_key(http::header::HOST) {
        return Err(ApiError::MissingHost);
    }
    let uri = &req.uri;
    let size = uri.path_and_query().map_or(0, |p| p.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len())
        + req
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 4)
            .sum::<usize>();
    if size > d.max_header_bytes {
        return Err(ApiError::HeadersTooLarge {
            limit: d.max_header_bytes,
        });
    }
    Ok(())
}

async fn models(state: &State, session: &mut Session) -> std::result::Result<(), Stop> {
    let provider = session
        .req_header()
        .uri
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("provider=")))
        .map(|p| {
            percent_encoding::percent_decode_str(p)
                .decode_utf8_lossy()
                .into_owned()
        });
    let body = match provider {
        None => state.models_api.all.clone(),
        Some(p) => {
            let i = state
                .catalog
                .provider_index(&p)
                .ok_or_else(|| ApiError::UnknownProvider(truncate(&p, 64).to_string()))?;
            state.models_api.provider(i).cloned().unwrap_or_default()
        }
    };
    let headers = [
        ("cache-control", CACHE_CONTROL),
        ("x-tollgate-catalog-source", state.catalog.source.label()),
    ];
    respond::json(session, 200, body, &headers)
        .await
        .map_err(Stop::Abort)
}

async fn model(state: &State, session: &mut Session, name: &str) -> std::result::Result<(), Stop> {
    let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
    // Any name routing takes for one catalog model (`openai:gpt-4o` too).
    let m = crate::resolve::resolve_model(&state.catalog, &name)
        .and_then(|t| t.model)
        .and_then(|i| state.catalog.models.get(i))
        .ok_or_else(|| ApiError::ModelNotFound {
            model: truncate(&name, 256).to_string(),
            hint: String::new(),
        })?;
    let body = crate::catalog::listing::entry(&state.catalog, m).to_string();
    let headers = [("cache-control", CACHE_CONTROL)];
    respond::json(session, 200, body.into(), &headers)
        .await
        .map_err(Stop::Abort)
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
