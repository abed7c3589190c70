//! `/proxy/{provider}/{path}`: raw passthrough to a provider's base URL with the
//! credential injected. The path can never climb out of the base URL.

use http::Method;
use percent_encoding::percent_decode_str;

use super::attempts::{self, Plan};
use super::ctx::Ctx;
use super::{Gateway, Session, Stop};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::request;
use crate::resolve::Target;
use crate::state::State;

pub async fn handle(
    gw: &Gateway,
    state: &State,
    session: &mut Session,
    ctx: &mut Ctx,
    rest: &str,
) -> Result<(), Stop> {
    let (provider_name, path) = split(rest)?;
    let provider = state
        .catalog
        .provider_index(provider_name)
        .ok_or_else(|| ApiError::UnknownProvider(provider_name.chars().take(64).collect()))?;
    let caller = state
        .access
        .authenticate(session.req_header(), state.config.passthrough)?;
    if let Caller::Access(i) = caller {
        ctx.auth.access_key = Some(i);
        // Raw passthrough reads no model and no usage: a key whose spending or
        // models are limited must not get around its limits through it.
        let limited = state.access.entry(i).is_some_and(|e| e.credits.is_some())
            || state.allow.get(i).is_some_and(Option::is_some)
            || state
                .limits
                .get(i)
                .and_then(Option::as_ref)
                .is_some_and(|l| l.spec.counts_tokens() || l.spec.is_scoped());
        if limited {
            return Err(ApiError::ProxyNotAllowed.into());
        }
        // Request and concurrency limits hold here too.
        ctx.limits = gw.limiter.admit(state, i, None, 0).await?;
    }
    let body = request::read_body(session, state.config.max_body, &state.config.downstream).await?;
    let method = session.req_header().method.clone();
    let query = session.req_header().uri.query().map(str::to_owned);
    let targets = [Target {
        provider,
        model: None,
        upstream_model: "".into(),
    }];
    let plan = Plan {
        caller: &caller,
        targets: &targets,
        method,
        path: &|base: &str| attempts::upstream_path(&[base, "/", path], query.as_deref()),
        body: &|_| body.clone(),
        endpoint: None,
    };
    attempts::run(gw, state, session, ctx, &plan).await
}

/// Splits `provider/path…` and checks the path: no `.`/`..` segments (plain or
/// percent-encoded), no empty segments, no encoded or literal backslashes, no
/// encoded slashes, no control characters.
pub fn split(rest: &str) -> Result<(&str, &str), ApiError> {
    let (provider, path) = rest.split_once('/').unwrap_or((rest, ""));
    if provider.is_empty() {
        return Err(ApiError::InvalidPath("no provider named"));
    }
    if path.contains('\\') || path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(ApiError::InvalidPath(
            "backslashes and control characters are not allowed",
        ));
    }
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") {
        return Err(ApiError::InvalidPath("encoded slashes are not allowed"));
    }
    if lower.contains("%00") {
        return Err(ApiError::InvalidPath("encoded NUL bytes are not allowed"));
    }
    let segments: Vec<&str> = path.split('/').collect();
    for (i, seg) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        if seg.is_empty() && !last {
            return Err(ApiError::InvalidPath("empty path segments are not allowed"));
        }
        let decoded = percent_decode_str(seg).decode_utf8_lossy();
        // `..;x` is `..` to servers that take path parameters (Tomcat, Spring).
        let name = decoded.split(';').next().unwrap_or_default();
        if name == "." || name == ".." {
            return Err(ApiError::InvalidPath(
                "`.` and `..` segments are not allowed",
            ));
        }
        if decoded.contains(['/', '\\']) {
            return Err(ApiError::InvalidPath("encoded slashes are not allowed"));
        }
    }
    Ok((provider, path))
}

/// Methods `/proxy/` forwards.
pub fn allowed(method: &Method) -> bool {
    !matches!(*method, Method::CONNECT | Method::TRACE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_pass() {
        assert_eq!(split("openai/models").unwrap(), ("openai", "models"));
        assert_eq!(
            split("openai/v1/files/abc/content").unwrap().1,
            "v1/files/abc/content"
        );
        assert_eq!(split("openai/models/").unwrap().1, "models/");
        assert_eq!(split("openai").unwrap(), ("openai", ""));
        assert_eq!(split("openai/a@b").unwrap().1, "a@b");
    }

    #[test]
    fn traversal_is_refused() {
        for bad in [
            "openai/../x",
            "openai/a/../../x",
            "openai/%2e%2e/x",
            "openai/%2E%2e/x",
            "openai/.%2e/x",
            "openai/./x",
            "openai/..;/admin",
            "openai/a/.;x/b",
            "openai/%2e%2e%3b/x",
            "openai//evil.com/x",
            "openai/a%2fb",
            "openai/a%5Cb",
            "openai/a\\b",
            "openai/..",
            "openai/%00",
            "/openai/x",
        ] {
            assert!(split(bad).is_err(), "{bad}");
        }
    }
}
