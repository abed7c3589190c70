use super::*;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::resolve::resolve_model;

fn no_env(_: &str) -> Option<String> {
    None
}

fn state(yaml: &str) -> State {
    let config = Config::parse(yaml, "test.yaml", &no_env).unwrap();
    State::build(config, Catalog::embedded().unwrap(), &no_env).unwrap()
}

fn key(limits: &str) -> String {
    format!("access_keys:\n  - name: app\n    key: tg-app\n    limits:\n{limits}")
}

fn target(state: &State, model: &str) -> Target {
    resolve_model(&state.catalog, model).unwrap()
}

fn refusal(e: ApiError) -> Box<Exceeded> {
    match e {
        ApiError::LimitExceeded(x) => x,
        other => panic!("not a rate-limit refusal: {other:?}"),
    }
}

fn header<'a>(lease: &'a Lease, name: &str) -> &'a str {
    lease
        .headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_str().unwrap())
        .unwrap_or_else(|| panic!("no {name}"))
}

#[tokio::test]
async fn requests_per_minute_then_refused_with_headers() {
    let s = state(&key("      requests_per_minute: 3\n"));
    let limiter = Limiter::default();
    let t = target(&s, "gpt-4o");
    for left in ["2", "1", "0"] {
        let lease = limiter.admit(&s, 0, Some(&t), 10).await.unwrap().unwrap();
        assert_eq!(header(&lease, "x-ratelimit-limit-requests"), "3");
        assert_eq!(header(&lease, "x-ratelimit-remaining-requests"), left);
        assert!(lease
            .headers
            .iter()
            .all(|(n, _)| !n.as_str().ends_with("-tokens")));
    }
    let e = refusal(limiter.admit(&s, 0, Some(&t), 10).await.unwrap_err());
    assert_eq!(e.kind, Kind::Requests);
    assert!(
        (19_000..=20_000).contains(&e.retry_after_ms),
        "{}",
        e.retry_after_ms
    );
    let text = ApiError::LimitExceeded(e).to_string();
    assert!(
        text.contains("`app`") && text.contains("requests per minute"),
        "{text}"
    );
}

#[tokio::test]
async fn keys_without_limits_get_no_lease() {
    let s = state("access_keys:\n  - name: free\n    key: tg-free\n");
    let t = target(&s, "gpt-4o");
    assert!(Limiter::default()
        .admit(&s, 0, Some(&t), 10)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn model_scopes_count_their_model_under_any_alias() {
    let s = state(&key(
        "      models:\n        - name: gpt-4o\n          requests_per_minute: 1\n",
    ));
    let limiter = Limiter::default();
    let (gpt4o, other) = (target(&s, "openai/gpt-4o"), target(&s, "gpt-4o-mini"));
    let _a = limiter.admit(&s, 0, Some(&gpt4o), 1).await.unwrap();
    let e = refusal(limiter.admit(&s, 0, Some(&gpt4o), 1).await.unwrap_err());
    assert_eq!(&*e.scope, "model gpt-4o");
    // Other models are not limited (and get no lease windows).
    for _ in 0..5 {
        limiter.admit(&s, 0, Some(&other), 1).await.unwrap();
    }
}

#[tokio::test]
async fn token_windows_are_corrected_by_real_usage() {
    let s = state(&key("      tokens_per_minute: 1000\n"));
    let limiter = Limiter::default();
    let t = target(&s, "gpt-4o");
    let lease = limiter.admit(&s, 0, Some(&t), 10).await.unwrap().unwrap();
    assert_eq!(header(&lease, "x-ratelimit-remaining-tokens"), "990");
    // It really used 900.
    limiter.settle(&s, lease, Some(900));
    let e = refusal(limiter.admit(&s, 0, Some(&t), 200).await.unwrap_err());
    assert_eq!(e.kind, Kind::Tokens);
    // A failed request gives its estimate back.
    let lease = limiter.admit(&s, 0, Some(&t), 50).await.unwrap().unwrap();
    limiter.settle(&s, lease, Some(0));
    let lease = limiter.admit(&s, 0, Some(&t), 90).await.unwrap().unwrap();
    assert_eq!(header(&lease, "x-ratelimit-remaining-tokens"), "10");
}

#[tokio::test]
async fn a_refusal_takes_nothing_from_the_other_windows() {
    let s = state(&key(
        "      requests_per_minute: 100\n      tokens_per_minute: 50\n",
    ));
    let limiter = Limiter::default();
    let t = target(&s, "gpt-4o");
    let _big = limiter.admit(&s, 0, Some(&t), 50).await.unwrap();
    for _ in 0..3 {
        limiter.admit(&s, 0, Some(&t), 40).await.unwrap_err();
    }
    let k = s.limits[0].as_ref().unwrap();
    let left = k.remaining(now_ns());
    assert!(left.contains(&("requests".to_string(), 99)), "{left:?}");
}

#[tokio::test]
async fn concurrency_is_held_until_the_lease_drops() {
    let s = state(&key("      concurrent_requests: 2\n"));
    let limiter = Limiter::default();
    let t = target(&s, "gpt-4o");
    let a = limiter.admit(&s, 0, Some(&t), 1).await.unwrap();
    let _b = limiter.admit(&s, 0, Some(&t), 1).await.unwrap();
    let e = refusal(limiter.admit(&s, 0, Some(&t), 1).await.unwrap_err());
    assert_eq!(e.kind, Kind::Concurrent);
    drop(a);
    assert!(limiter.admit(&s, 0, Some(&t), 1).await.is_ok());
}

#[tokio::test]
async fn a_reload_keeps_the_windows_of_unchanged_keys_only() {
    let yaml = "access_keys:\n  - {name: a, key: tg-a, limits: {requests_per_minute: 1}}\n  - {name: b, key: tg-b, limits: {requests_per_minute: 1}}\n";
    let old = state(yaml);
    let limiter = Limiter::default();
    let t = target(&old, "gpt-4o");
    limiter.admit(&old, 0, Some(&t), 1).await.unwrap();
    limiter.admit(&old, 1, Some(&t), 1).await.unwrap();
    let mut new = state(&yaml.replacen(
        "requests_per_minute: 1}}\n  - {name: b",
        "requests_per_minute: 2}}\n  - {name: b",
        1,
    ));
    new.inherit(&old);
    // `a` changed: fresh windows. `b` did not: still spent.
    assert!(limiter.admit(&new, 0, Some(&t), 1).await.is_ok());
    assert!(limiter.admit(&new, 1, Some(&t), 1).await.is_err());
}

#[test]
fn bad_limits_are_named() {
    let e = Config::parse(&key("      requests_per_minute: 0\n"), "t.yaml", &no_env).unwrap_err();
    assert!(
        e.to_string()
            .contains("access_keys[0].limits.requests_per_minute"),
        "{e}"
    );
    let config = Config::parse(
        &key("      models:\n        - name: gpt-4x\n          tokens_per_minute: 5\n"),
        "t.yaml",
        &no_env,
    )
    .unwrap();
    let e = State::build(config, Catalog::embedded().unwrap(), &no_env).unwrap_err();
    assert!(e.to_string().contains("`gpt-4x`"), "{e}");
}
