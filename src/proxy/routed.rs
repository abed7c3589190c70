//! Model-routed endpoints (`/v1/chat/completions`, …, `/v1/messages`): read the
//! body, resolve its model, then try each candidate (model × key) in order until
//! one answers.

use std::ops::Range;

use bytes::Bytes;
use http::Method;

use super::attempts::{self, Plan};
use super::ctx::Ctx;
use super::{Gateway, Session, Stop};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::policy;
use crate::request::{self, scan, Endpoint};
use crate::resolve::{resolve, Target};
use crate::state::State;
use crate::usage::{self, Meter};

/// Longest model name echoed back in an error message.
const ECHO_LIMIT: usize = 256;

pub async fn handle(
    gw: &Gateway,
    state: &State,
    session: &mut Session,
    ctx: &mut Ctx,
    endpoint: Endpoint,
) -> Result<(), Stop> {
    let caller = state
        .access
        .authenticate(session.req_header(), state.config.passthrough)?;
    if let Caller::Access(i) = caller {
        ctx.auth.access_key = Some(i);
    }
    let raw = request::read_body(session, state.config.max_body, &state.config.downstream).await?;
    ctx.route.prompt_bytes = raw.len() as u64;
    let first = scan::scan(&raw).map_err(ApiError::from)?;
    // Streams that do not ask for usage get it asked for (and the usage chunk
    // removed again on the way back), so every stream is metered.
    let metered = state.config.accounting && endpoint.metered();
    let injected = match endpoint {
        Endpoint::ChatCompletions | Endpoint::Completions if metered => {
            usage::inject_include_usage(&raw, &first)
        }
        _ => None,
    };
    ctx.usage = Meter::new(metered.then(|| endpoint.into()), injected.is_some());
    let (body, model_span) = match &injected {
        Some(b) => (&b.body, b.moved(first.model_span.clone())),
        None => (&raw, first.model_span.clone()),
    };
    let scanned = &first;
    check_model(&scanned.model)?;
    let targets = resolve(&state.catalog, &state.routes, &scanned.model).ok_or_else(|| {
        let hint = match state.catalog.closest_names(&scanned.model).as_slice() {
            [] => String::new(),
            names => format!(" Closest catalog names: {}.", names.join(", ")),
        };
        ApiError::ModelNotFound {
            model: scanned.model.chars().take(ECHO_LIMIT).collect(),
            hint,
        }
    })?;

    let targets = policy::admit(state, ctx.auth.access_key, body, targets)?;
    if let Some(key) = ctx.auth.access_key {
        let tokens = estimate_tokens(raw.len(), scanned.output_cap);
        ctx.limits = gw
            .limiter
            .admit(state, key, targets.first(), tokens)
            .await?;
        if metered {
            ctx.auth.reservation = gw
                .budget
                .admit(state, key, raw.len(), scanned.output_cap, &targets)
                .await?;
        }
    }
    let query = session.req_header().uri.query().map(str::to_owned);
    let plan = Plan {
        caller: &caller,
        targets: &targets,
        method: Method::POST,
        path: &|base: &str| attempts::upstream_path(&[base, endpoint.suffix()], query.as_deref()),
        body: &|t: &Target| rewrite(body, model_span.clone(), t),
        endpoint: Some(endpoint),
    };
    attempts::run(gw, state, session, ctx, &plan).await
}

/// Longest model name accepted (catalog IDs are far shorter; an unlisted
/// `provider:model` goes upstream and into a response header as written).
const MODEL_LIMIT: usize = 512;

/// A model name must fit in a header and a log line as it is.
fn check_model(model: &str) -> Result<(), ApiError> {
    if model.len() > MODEL_LIMIT {
        return Err(ApiError::InvalidModel("is longer than 512 bytes"));
    }
    if model.chars().any(char::is_control) {
        return Err(ApiError::InvalidModel(
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Tokens a request is expected to use, for rate limits: its bytes / 4 as
/// prompt, plus the output cap it asks for.
fn estimate_tokens(body_len: usize, output_cap: Option<u64>) -> u64 {
    (body_len as u64 / 4).saturating_add(output_cap.unwrap_or(0))
}

/// The body with the model replaced by the target's upstream ID (the original
/// bytes when the literal already says exactly that).
fn rewrite(body: &Bytes, model_span: Range<usize>, target: &Target) -> Bytes {
    let inner = model_span.start + 1..model_span.end.saturating_sub(1);
    if body.get(inner) == Some(target.upstream_model.as_bytes()) {
        body.clone()
    } else {
        scan::replace_model(body, model_span, &target.upstream_model)
    }
}
