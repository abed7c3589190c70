//! The unmodified openai and anthropic Python SDKs against the real gateway
//! (tests/sdk/check_sdks.py). Needs a python with both packages: `$TOLLGATE_PYTHON`
//! or `python3`; `.ci/run` installs them. Without them the test says so and passes.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

#[test]
fn official_sdks_work_unmodified() {
    let python = std::env::var("TOLLGATE_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_sdks = std::process::Command::new(&python)
        .args(["-c", "import openai, anthropic"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_sdks {
        eprintln!("SKIPPED: {python} lacks the openai/anthropic packages");
        assert!(std::env::var("CI").is_err(), "CI must run the SDK checks");
        return;
    }
    let mock = MockProvider::new().start();
    let gw = Gateway::builder()
        .provider("OPENAI", &format!("{}/v1", mock.url()), "sk-o")
        .provider("ANTHROPIC", &format!("{}/v1", mock.url()), "sk-a")
        .start();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/check_sdks.py");
    let out = std::process::Command::new(&python)
        .arg(script)
        .env("TOLLGATE_URL", format!("http://{}", gw.addr))
        .env("TOLLGATE_KEY", ACCESS_KEY)
        .env("PYTHONWARNINGS", "ignore")
        .output()
        .expect("run python");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("sdk checks passed"), "{text}");
    // The access key reached the mock in no request.
    assert!(mock
        .requests()
        .iter()
        .all(|r| r.headers.iter().all(|(_, v)| !v.contains(ACCESS_KEY))));
}
