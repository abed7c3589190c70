//! The attempt loop: every candidate (target × managed key), in order, until one
//! answers or the attempt budget is spent; then one clear error.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};

use super::ctx::Ctx;
use super::{Gateway, Session, Stop};
use crate::auth::{self, Billing, Caller};
use crate::error::ApiError;
use crate::metrics::AttemptOutcome;
use crate::request::Endpoint;
use crate::resolve::Target;
use crate::state::State;
use crate::upstream::exchange::{Attempt, AttemptError, Cut, ExtraHeader, Failure, Relayed};
use crate::upstream::health::{self, now_ms, Outcome, Unusable};
use crate::upstream::ProviderKey;
use crate::upstream::{auth_header, request as upreq};

/// An upstream path: `parts` joined, then `?query` if there is one, in one
/// allocation of the right size (`format!` spent ~700 instructions on it).
pub fn upstream_path(parts: &[&str], query: Option<&str>) -> String {
    let len = parts.iter().map(|p| p.len()).sum::<usize>() + query.map_or(0, |q| q.len() + 1);
    let mut path = String::with_capacity(len);
    for part in parts {
        path.push_str(part);
    }
    if let Some(q) = query {
        path.push('?');
        path.push_str(q);
    }
    path
}

/// What to send, whatever the candidate.
pub struct Plan<'a> {
    pub caller: &'a Caller,
    pub targets: &'a [Target],
    pub method: Method,
    /// Upstream path (and query) below a base path.
    pub path: &'a (dyn Fn(&str) -> String + Sync),
    /// The body for a target (model rewritten for it).
    pub body: &'a (dyn Fn(&Target) -> Bytes + Sync),
    /// The API endpoint, for model-routed requests; `None` for raw passthrough.
    pub endpoint: Option<Endpoint>,
}

pub async fn run(
    gw: &Gateway,
    state: &State,
    session: &mut Session,
    ctx: &mut Ctx,
    plan: &Plan<'_>,
) -> Result<(), Stop> {
    let mut refusal: Option<ApiError> = None;
    let mut candidates: Vec<(usize, usize)> = Vec::new();
    for (ti, t) in plan.targets.iter().enumerate() {
        match check_target(state, plan, t) {
            // One attempt per key, and at least one per endpoint (keys cycle).
            Ok(keys) => {
                let endpoints = state.upstreams[t.provider].endpoints.len();
                let n = keys.len().max(endpoints);
                candidates.extend(keys.iter().cycle().take(n).map(|&k| (ti, k)));
            }
            Err(e) => {
                refusal.get_or_insert(e);
            }
        }
    }
    candidates.truncate(state.config.upstream.max_attempts as usize);
    if candidates.is_empty() {
        return Err(refusal
            .unwrap_or_else(|| ApiError::Upstream("no provider can serve this request".into()))
            .into());
    }

    let mut last_failure: Option<Failure> = None;
    let mut last_provider: &str = "";
    // Every failure so far was a 429 (or a key cooling down): the answer is 429.
    let mut all_rate_limited = matches!(refusal, None | Some(ApiError::RateLimited { .. }));
    for (n, &(ti, key)) in candidates.iter().enumerate() {
        let target = &plan.targets[ti];
        let provider_id = &state.catalog.providers[target.provider].id;
        let upstream = &state.upstreams[target.provider];
        let Some(ep) = upstream.pick_endpoint() else {
            all_rate_limited = false;
            continue;
        };
        let Some((cred, billing, key_used)) =
            auth::credential(plan.caller, &state.access, target.provider, upstream, key)
        else {
            continue;
        };
        let addr = match ep.dns.addr().await {
            Ok(a) => a,
            Err(e) => {
                log::warn!("provider {provider_id}: {e}");
                last_failure = Some(Failure::Connect(e));
                last_provider = provider_id;
                all_rate_limited = false;
                continue;
            }
        };
        let body = (plan.body)(target);
        let path = (plan.path)(&ep.base_path);
        let out = upreq::Outgoing {
            method: &plan.method,
            path: &path,
            authority: &ep.authority,
            auth: cred.map(|v| (auth_header(upstream.auth), v)),
            defaults: &upstream.headers,
            body_len: body.len(),
        };
        let header = upreq::build(session.req_header(), &out).map_err(Stop::Abort)?;
        let extra = response_headers(state, target, plan.endpoint.is_some());
        ctx.attempt.count += 1;
        ctx.route.provider = Some(target.provider);
        ctx.route.model = target.model;
        ctx.route.unlisted_model = target
            .model
            .is_none()
            .then(|| target.upstream_model.clone());
        ctx.auth.billing = Some(billing);
        ctx.attempt.key = key_used
            .and_then(|k| upstream.keys.keys.get(k))
            .map(|k| k.name.clone());
        let attempt = Attempt {
            peer: upstream.peer(ep, addr, &state.config.upstream),
            header,
            body,
            last: n + 1 == candidates.len(),
            // While every failure was a 429, a last 429 is answered by tollgate
            // (with the soonest Retry-After of the pool), not relayed.
            own_429: all_rate_limited,
            clients_key: billing == Billing::Passthrough,
            extra: [&extra, ctx.limits.as_ref().map_or(&[], |l| &l.headers)],
            settings: &state.config.upstream,
        };
        let result = gw.exchanger.run(session, attempt, &mut ctx.usage).await;
        let key = key_used.and_then(|k| upstream.keys.keys.get(k));
        match key {
            Some(k) => k.series.attempt(provider_id, &k.name, outcome(&result)),
            None => upstream.unmanaged_series[billing as usize].attempt(
                provider_id,
                billing_label(billing),
                outcome(&result),
            ),
        }
        if let Some(k) = key {
            record_health(state, provider_id, k, &result);
        }
        if !matches!(
            result,
            Err(AttemptError::Retry(Failure::Status { code: 429, .. }))
        ) {
            all_rate_limited = false;
        }
        match result {
            Ok(relayed) => {
                ctx.response.status = relayed.status;
                ctx.response.first_byte = Some(relayed.first_byte);
                return Ok(());
            }
            Err(AttemptError::Retry(failure)) => {
                log::warn!(
                    "provider {provider_id} attempt {} failed: {failure:?}",
                    ctx.attempt.count
                );
                last_failure = Some(failure);
                last_provider = provider_id;
            }
            Err(AttemptError::ClientGone) => return Err(Stop::ClientGone),
            Err(AttemptError::Aborted(side, e)) => {
                ctx.response.cut = Some(side);
                // A cut answer had its first byte too (latency histograms and
                // the access log count it).
                ctx.response.first_byte = ctx.usage.started();
                return Err(Stop::Abort(e));
            }
        }
    }
    if all_rate_limited {
        let retry_after = soonest_cooldown(state, plan.targets);
        return Err(ApiError::RateLimited { retry_after }.into());
    }
    // The client learns what failed, not where: addresses and pingora's error
    // chain stay in the log (above).
    Err(match last_failure {
        Some(Failure::Timeout(_)) => {
            ApiError::UpstreamTimeout(format!("provider `{last_provider}` did not answer in time"))
        }
        Some(Failure::Connect(_)) => {
            ApiError::Upstream(format!("provider `{last_provider}` could not be reached"))
        }
        Some(Failure::Status { code, .. }) => {
            ApiError::Upstream(format!("provider `{last_provider}` answered {code}"))
        }
        None => refusal.unwrap_or_else(|| ApiError::Upstream("no attempt could be made".into())),
    }
    .into())
}

/// The key label of an attempt that used no managed key.
fn billing_label(billing: Billing) -> &'static str {
    match billing {
        Billing::Managed => "managed",
        Billing::Byok => "byok",
        Billing::Passthrough => "passthrough",
        Billing::Keyless => "none",
    }
}

/// How an attempt ended, for `tollgate_upstream_attempts_total`.
fn outcome(result: &Result<Relayed, AttemptError>) -> AttemptOutcome {
    match result {
        Ok(r) if r.status < 400 => AttemptOutcome::Ok,
        Ok(_) => AttemptOutcome::ErrorPassedThrough,
        Err(AttemptError::Retry(Failure::Status { code: 429, .. })) => AttemptOutcome::RateLimited,
        Err(AttemptError::Retry(Failure::Status {
            code: 401 | 403, ..
        })) => AttemptOutcome::AuthError,
        Err(AttemptError::Retry(Failure::Status { .. })) => AttemptOutcome::ServerError,
        Err(AttemptError::Retry(Failure::Timeout(_))) => AttemptOutcome::Timeout,
        Err(AttemptError::Retry(Failure::Connect(_))) => AttemptOutcome::ConnectError,
        Err(AttemptError::ClientGone) => AttemptOutcome::ClientGone,
        Err(AttemptError::Aborted(..)) => AttemptOutcome::Aborted,
    }
}

/// The keys a target may be tried with, in order (managed pools: healthy keys
/// from the round-robin start; otherwise the one credential), or why it cannot be
/// tried at all.
fn check_target(state: &State, plan: &Plan<'_>, t: &Target) -> Result<Vec<usize>, ApiError> {
    let provider = &state.catalog.providers[t.provider];
    let upstream = &state.upstreams[t.provider];
    if let Some(endpoint) = plan.endpoint {
        let speaks = if endpoint.is_anthropic() {
            provider.anthropic
        } else {
            provider.openai
        };
        if !speaks {
            return Err(ApiError::UnsupportedEndpoint {
                provider: provider.id.to_string(),
                endpoint: if endpoint.is_anthropic() {
                    "/v1/messages"
                } else {
                    "OpenAI endpoints"
                },
            });
        }
    }
    if let Some(why) = &upstream.unusable {
        return Err(ApiError::ProviderNotConfigured {
            provider: provider.id.to_string(),
            why: why.clone(),
        });
    }
    match auth::credential(plan.caller, &state.access, t.provider, upstream, 0) {
        Some((_, Billing::Managed, _)) => {
            let pool = &upstream.keys.keys;
            let (start, now) = (upstream.keys.start(), now_ms());
            let mut usable = Vec::with_capacity(pool.len());
            let mut all_cooling = true;
            for i in 0..pool.len() {
                let k = (start + i) % pool.len();
                match pool[k].health.check(now) {
                    Ok(()) => usable.push(k),
                    Err(Unusable::Cooling(_)) => {}
                    Err(_) => all_cooling = false,
                }
            }
            if usable.is_empty() {
                return Err(if all_cooling {
                    ApiError::RateLimited {
                        retry_after: soonest_cooldown(state, std::slice::from_ref(t)),
                    }
                } else {
                    ApiError::Upstream(format!(
                        "every key of provider `{}` is out of service",
                        provider.id
                    ))
                });
            }
            Ok(usable)
        }
        Some(_) => Ok(vec![0]),
        None => Err(ApiError::ProviderKeyRequired(
            provider.id.to_string(),
            format!("{}_API_KEY", provider.env),
        )),
    }
}

/// Feeds an attempt's outcome to its managed key's health (and the health gauge).
fn record_health(
    state: &State,
    provider: &str,
    key: &ProviderKey,
    result: &Result<Relayed, AttemptError>,
) {
    let outcome = match result {
        Ok(r) => match r.status {
            429 => Outcome::RateLimited(None),
            401 | 403 => Outcome::Refused,
            s if s >= 500 => Outcome::Failed,
            _ => Outcome::Ok,
        },
        Err(AttemptError::Retry(Failure::Status {
            code: 429,
            retry_after,
        })) => Outcome::RateLimited(retry_after.as_ref().and_then(health::retry_after)),
        Err(AttemptError::Retry(Failure::Status {
            code: 401 | 403, ..
        })) => Outcome::Refused,
        Err(AttemptError::Retry(_)) | Err(AttemptError::Aborted(Cut::Upstream, _)) => {
            Outcome::Failed
        }
        Err(AttemptError::ClientGone) | Err(AttemptError::Aborted(Cut::Client, _)) => return,
    };
    let healthy = key
        .health
        .record(outcome, now_ms(), &state.config.upstream.health);
    key.series.set_healthy(provider, &key.name, healthy);
}

/// Seconds until the first managed key of these targets leaves its cool-down (at least 1).
fn soonest_cooldown(state: &State, targets: &[Target]) -> u64 {
    let now = now_ms();
    targets
        .iter()
        .flat_map(|t| state.upstreams[t.provider].keys.keys.iter())
        .filter_map(|k| match k.health.check(now) {
            Err(Unusable::Cooling(until)) => Some(until.saturating_sub(now)),
            _ => None,
        })
        .min()
        .map_or(1, |ms| ms.div_ceil(1000).max(1))
}

fn response_headers(state: &State, target: &Target, routed: bool) -> Vec<ExtraHeader> {
    let mut h = Vec::with_capacity(2);
    // A catalog name's value was built with the catalog: a clone shares it.
    let provider = state.catalog.providers.get(target.provider);
    if let Some(v) = provider.and_then(|p| p.id_header.clone()) {
        h.push((HeaderName::from_static("x-tollgate-provider"), v));
    }
    if routed {
        let listed = target.model.and_then(|i| state.catalog.models.get(i));
        let value = match listed {
            Some(m) => m.id_header.clone(),
            None => HeaderValue::from_bytes(target.upstream_model.as_bytes()).ok(),
        };
        if let Some(v) = value {
            h.push((HeaderName::from_static("x-tollgate-model"), v));
        }
    }
    h
}
