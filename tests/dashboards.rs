#![allow(clippy::unwrap_used)]
//! Operations files (issue #7): the Grafana dashboard is importable as is, it and
//! the Prometheus alerts query only metrics tollgate registers, promtool accepts
//! the rules (and their unit tests), and a live scrape passes its metric lint.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const DASHBOARD: &str = "ops/grafana/tollgate.json";
const ALERTS: &str = "ops/prometheus/alerts.yml";
const ALERT_TESTS: &str = "ops/prometheus/alerts_test.yml";
const DS: &str = "${datasource}";

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn dashboard() -> Value {
    serde_json::from_str(&read(DASHBOARD)).unwrap()
}

fn alert_rules() -> Vec<serde_yaml_ng::Value> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&read(ALERTS)).unwrap();
    let groups = doc["groups"].as_sequence().expect("groups");
    let rules = groups.iter().filter_map(|g| g["rules"].as_sequence());
    rules.flatten().cloned().collect()
}

/// Every `expr` anywhere in the dashboard (panel targets, annotations).
fn exprs(v: &Value) -> Vec<String> {
    match v {
        Value::Object(map) => map
            .iter()
            .flat_map(|(k, v)| match v {
                Value::String(s) if k == "expr" => vec![s.clone()],
                _ => exprs(v),
            })
            .collect(),
        Value::Array(items) => items.iter().flat_map(exprs).collect(),
        _ => Vec::new(),
    }
}

/// A dashboard query with Grafana's variables filled in: plain PromQL.
fn fill_variables(expr: &str) -> String {
    let durations = ["$__rate_interval", "$__interval", "$__range"];
    let expr = durations
        .iter()
        .fold(expr.to_string(), |e, var| e.replace(var, "5m"));
    expr.replace("$provider", ".*").replace("$access_key", ".*")
}

/// The `tollgate_…` identifiers of a PromQL expression.
fn metric_names(expr: &str) -> impl Iterator<Item = &str> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    expr.match_indices("tollgate_")
        .filter(move |(i, _)| !expr[..*i].ends_with(ident))
        .map(move |(i, _)| expr[i..].split(|c| !ident(c)).next().unwrap())
}

/// The metric names tollgate registers: every string literal in src/ that is a
/// whole `tollgate_…` name (src/metrics.rs, and collectors such as the rate-limit
/// gauge), read at test time so newly added metrics count.
fn registered() -> BTreeSet<String> {
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    let mut names = BTreeSet::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let file = entry.unwrap().path();
            if file.is_dir() {
                dirs.push(file);
            } else if file.extension().is_some_and(|e| e == "rs") {
                let src = std::fs::read_to_string(&file).unwrap();
                let literals = src.match_indices("\"tollgate_").filter_map(|(i, _)| {
                    let s = &src[i + 1..];
                    s.find('"').map(|end| &s[..end])
                });
                let name = |s: &&str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                names.extend(literals.filter(name).map(String::from));
            }
        }
    }
    names
}

/// Whether promtool can run; under CI it must (`.ci/run` installs it).
fn promtool_available() -> bool {
    let found = Command::new("promtool").arg("--version").output();
    let found = found.is_ok_and(|o| o.status.success());
    if !found && std::env::var_os("CI").is_some() {
        panic!("CI is set but `promtool` is not on PATH: install Debian's `prometheus` package");
    }
    if !found {
        eprintln!("promtool is not installed: skipping its checks");
    }
    found
}

/// Runs promtool in the crate root; returns success and everything it printed.
fn promtool(args: &[&str], stdin: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text.into_owned())
}

#[test]
fn the_dashboard_is_importable_grafana_json() {
    let d = dashboard();
    assert_eq!(d["title"], "tollgate");
    assert_eq!(d["uid"], "tollgate");
    assert!(d["schemaVersion"].as_u64().unwrap() >= 36);
    let input = &d["__inputs"][0];
    assert_eq!(input["name"], "DS_PROMETHEUS");
    assert_eq!(input["type"], "datasource");
    assert_eq!(input["pluginId"], "prometheus");
    let vars = d["templating"]["list"].as_array().unwrap();
    let var = |name: &str| vars.iter().find(|v| v["name"] == name).expect(name);
    assert_eq!(var("datasource")["type"], "datasource");
    assert_eq!(var("datasource")["query"], "prometheus");
    for name in ["provider", "access_key"] {
        assert_eq!(var(name)["type"], "query");
        assert_eq!(var(name)["datasource"]["uid"], DS);
    }

    // Rows' nested (collapsed) panels too.
    let top = d["panels"].as_array().unwrap();
    let rows = top.iter().filter_map(|p| p["panels"].as_array());
    let panels: Vec<&Value> = top.iter().chain(rows.flatten()).collect();
    assert!(panels.len() > 10, "a dashboard with panels");
    let (mut ids, mut boxes) = (BTreeSet::new(), Vec::<(&str, [u64; 4])>::new());
    for p in &panels {
        let title = p["title"].as_str().unwrap_or_default();
        assert!(!title.is_empty(), "every panel has a title: {p}");
        let id = p["id"].as_u64().unwrap();
        assert!(ids.insert(id), "duplicate id: {title}");
        let g = &p["gridPos"];
        let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| g[k].as_u64().expect(title));
        assert!(w > 0 && h > 0 && x + w <= 24, "{title}: gridPos {g}");
        for (other, [ox, oy, ow, oh]) in &boxes {
            let overlap = x < ox + ow && *ox < x + w && y < oy + oh && *oy < y + h;
            assert!(!overlap, "{title} overlaps {other}");
        }
        boxes.push((title, [x, y, w, h]));
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], DS, "{title}");
        let targets = p["targets"].as_array().expect(title);
        assert!(!targets.is_empty(), "{title} has no query");
        for t in targets {
            let expr = t["expr"].as_str().unwrap_or_default();
            assert!(!expr.is_empty(), "{title}: {t}");
            assert_eq!(t["datasource"]["uid"], DS, "{title}");
        }
    }
}

#[test]
fn the_alert_rules_carry_severity_and_annotations() {
    let rules = alert_rules();
    assert!(rules.len() >= 4);
    for r in &rules {
        let name = r["alert"].as_str().expect("every rule is an alert");
        assert!(r["expr"].as_str().is_some_and(|e| !e.is_empty()), "{name}");
        let severity = r["labels"]["severity"].as_str().expect(name);
        let known = ["critical", "warning", "info"];
        assert!(known.contains(&severity), "{name}: {severity}");
        for a in ["summary", "description"] {
            let text = r["annotations"][a].as_str();
            assert!(text.is_some_and(|s| !s.is_empty()), "{name}: {a}");
        }
    }
}

#[test]
fn the_dashboard_and_alerts_query_only_registered_metrics() {
    let names = registered();
    assert!(names.contains("tollgate_requests_total"), "{names:?}");
    let (d, rules) = (dashboard(), alert_rules());
    let (queries, vars) = (exprs(&d), d["templating"]["list"].as_array().unwrap());
    let mut all: Vec<&str> = queries.iter().map(String::as_str).collect();
    all.extend(vars.iter().filter_map(|v| v["definition"].as_str()));
    all.extend(rules.iter().map(|r| r["expr"].as_str().unwrap()));
    let used: BTreeSet<&str> = all.into_iter().flat_map(metric_names).collect();
    assert!(used.len() >= 10, "{used:?}");
    let known = |name: &str| {
        let suffixes = ["_bucket", "_sum", "_count"];
        let base = suffixes.iter().find_map(|s| name.strip_suffix(s));
        names.contains(name) || base.is_some_and(|b| names.contains(b))
    };
    let unknown: Vec<_> = used.iter().filter(|m| !known(m)).collect();
    assert!(unknown.is_empty(), "not registered in src/: {unknown:?}");
}

#[test]
fn promtool_accepts_the_rules_and_the_dashboard_queries() {
    if !promtool_available() {
        return;
    }
    for args in [["check", "rules", ALERTS], ["test", "rules", ALERT_TESTS]] {
        let (ok, out) = promtool(&args, "");
        assert!(ok, "promtool {}:\n{out}", args.join(" "));
    }
    // The dashboard's queries, Grafana's variables filled in, as recording rules:
    // `check rules` parses each as PromQL.
    let queries = exprs(&dashboard());
    let rules = queries.iter().enumerate().map(
        |(i, e)| json!({ "record": format!("dashboard:query_{i}"), "expr": fill_variables(e) }),
    );
    let file = json!({ "groups": [{ "name": "dashboard", "rules": rules.collect::<Vec<_>>() }] });
    let tmp = std::env::temp_dir().join(format!("tollgate-dashboard-{}.yml", std::process::id()));
    std::fs::write(&tmp, serde_yaml_ng::to_string(&file).unwrap()).unwrap();
    let (ok, out) = promtool(&["check", "rules", tmp.to_str().unwrap()], "");
    let _ = std::fs::remove_file(&tmp);
    assert!(ok, "a dashboard query is not PromQL:\n{out}");
}

#[tokio::test]
async fn a_live_scrape_passes_promtool_check_metrics() {
    if !promtool_available() {
        return;
    }
    let mock = MockProvider::new().usage(11, 7).start();
    let gw = Gateway::builder()
        .provider("OPENAI", &format!("{}/v1", mock.url()), "sk-m")
        .start();
    let ok = gw.post("/v1/chat/completions", chat("gpt-4o")).await;
    assert_eq!(ok.status(), 200);
    ok.text().await.unwrap();
    let missing = gw.post("/v1/chat/completions", chat("no-such-model")).await;
    assert_eq!(error_code(missing).await, (404, "model_not_found".into()));

    // Requests settle in pingora's logging phase, just after the last byte.
    let deadline = Instant::now() + Duration::from_secs(10);
    let scrape = loop {
        let url = format!("http://{}/metrics", gw.metrics);
        let resp = client().get(url).send().await.unwrap();
        let text = resp.text().await.unwrap();
        let counted = |status: &str| {
            let series = format!("status=\"{status}\"");
            text.lines()
                .any(|l| l.starts_with("tollgate_requests_total") && l.contains(&series))
        };
        if counted("200") && counted("404") || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for family in [
        "tollgate_requests_total",
        "tollgate_request_duration_seconds_bucket",
        "tollgate_time_to_first_byte_seconds_bucket",
        "tollgate_tokens_total",
        "tollgate_credits_spent_microusd_total",
        "tollgate_upstream_attempts_total",
        "tollgate_provider_key_healthy",
    ] {
        assert!(scrape.contains(family), "{family} in the scrape:\n{scrape}");
    }
    let (ok, out) = promtool(&["check", "metrics"], &scrape);
    assert!(ok, "promtool check metrics:\n{out}\n--- scraped:\n{scrape}");
}
