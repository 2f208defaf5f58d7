//! Every PromQL expression in `dashboards/*.json` (panels and variables), in
//! `deploy/prometheus/rules/*.yml` (when there are any) and in the ```promql
//! blocks of `docs/` parses and
//! type-checks with `promql-parser`, after Grafana's macros and variables are
//! substituted, and every metric it names is on the real binary's `/metrics`
//! after ordinary traffic (an error, an event batch, a replay chunk, a Loki
//! push that is retried once).

use std::{
    collections::{BTreeSet, HashSet},
    path::{Path, PathBuf},
};

use promql_parser::{
    label::MatchOp,
    parser::{self, Expr},
    util::{ExprVisitor, walk_expr},
};
use regex::Regex;
use serde_json::{Value, json};

use crate::common::{LokiReceiver, TestServer, fixture_bytes, unique_id};

/// Series Prometheus makes itself for every target, which alert rules may
/// name (`up == 0` for "Observer down") although /metrics never has them.
const PROMETHEUS_SYNTHETIC: &[&str] =
    &["up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added", "ALERTS", "ALERTS_FOR_STATE"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One expression and where it comes from.
struct Query {
    origin: String,
    expr: String,
}

/// Grafana's macros become durations, dashboard variables their textbox
/// default or a match-anything regex: they only ever appear inside label
/// matchers, range brackets and `label_values(…)`.
fn substitute(expr: &str, textboxes: &[(String, String)]) -> String {
    let macros = Regex::new(r"\$\{?(__rate_interval|__interval|__range|__auto)\}?").unwrap();
    let mut out = macros.replace_all(expr, "5m").into_owned();
    out = out.replace("${__range_s}", "3600").replace("$__range_s", "3600");
    for (name, value) in textboxes {
        out = out.replace(&format!("${{{name}}}"), value).replace(&format!("${name}"), value);
    }
    let variables = Regex::new(r"\$\{[A-Za-z_][A-Za-z0-9_]*(:[a-z]+)?\}|\$[A-Za-z_][A-Za-z0-9_]*").unwrap();
    variables.replace_all(&out, ".+").into_owned()
}

/// The PromQL inside a Prometheus variable query (`label_values(expr, label)`,
/// `query_result(expr)`); `label_values(label)` holds none.
fn variable_expression(query: &str) -> Option<String> {
    let query = query.trim();
    if let Some(inner) = query.strip_prefix("query_result(").and_then(|q| q.strip_suffix(')')) {
        return Some(inner.to_owned());
    }
    let inner = query.strip_prefix("label_values(")?.strip_suffix(')')?;
    let (expr, _label) = inner.rsplit_once(',')?;
    Some(expr.trim().to_owned())
}

fn is_prometheus(datasource: Option<&Value>) -> bool {
    datasource.and_then(|d| d["type"].as_str()) == Some("prometheus")
}

fn dashboard_queries() -> Vec<Query> {
    let dir = repo_root().join("dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap())
            .unwrap_or_else(|e| panic!("{name}: not JSON: {e}"));
        let variables = dashboard["templating"]["list"].as_array().cloned().unwrap_or_default();
        let textboxes: Vec<(String, String)> = variables
            .iter()
            .filter(|v| v["type"] == "textbox" || v["type"] == "constant")
            .map(|v| {
                (v["name"].as_str().unwrap_or_default().to_owned(), v["query"].as_str().unwrap_or_default().to_owned())
            })
            .collect();
        let mut panels = Vec::new();
        for panel in dashboard["panels"].as_array().into_iter().flatten() {
            panels.push(panel.clone());
            panels.extend(panel["panels"].as_array().into_iter().flatten().cloned());
        }
        for panel in &panels {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let datasource = target.get("datasource").or_else(|| panel.get("datasource"));
                if is_prometheus(datasource) {
                    let expr = target["expr"].as_str().unwrap_or_default();
                    out.push(Query {
                        origin: format!(
                            "{name}: panel {} \"{}\" {}",
                            panel["id"],
                            panel["title"].as_str().unwrap_or_default(),
                            target["refId"].as_str().unwrap_or_default()
                        ),
                        expr: substitute(expr, &textboxes),
                    });
                }
            }
        }
        for variable in &variables {
            if variable["type"] == "query" && is_prometheus(variable.get("datasource")) {
                let query = variable["query"]["query"].as_str().or(variable["query"].as_str()).unwrap_or_default();
                if let Some(expr) = variable_expression(query) {
                    out.push(Query {
                        origin: format!("{name}: variable {}", variable["name"].as_str().unwrap_or_default()),
                        expr: substitute(&expr, &textboxes),
                    });
                }
            }
        }
    }
    out
}

/// Alert and recording rule expressions, and the series recording rules make.
fn rule_queries() -> (Vec<Query>, HashSet<String>) {
    let dir = repo_root().join("deploy/prometheus/rules");
    let (mut out, mut recorded) = (Vec::new(), HashSet::new());
    let Ok(entries) = std::fs::read_dir(&dir) else { return (out, recorded) };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .filter(|p| !p.file_name().unwrap().to_string_lossy().contains("test"))
        .collect();
    files.sort();
    for file in files {
        let name = file.strip_prefix(repo_root()).unwrap_or(&file).display().to_string();
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&file).unwrap())
            .unwrap_or_else(|e| panic!("{name}: not YAML: {e}"));
        let groups = doc.get("groups").and_then(|g| g.as_sequence()).unwrap_or_else(|| panic!("{name}: no groups"));
        for group in groups {
            for rule in group.get("rules").and_then(|r| r.as_sequence()).into_iter().flatten() {
                let expr = match rule.get("expr") {
                    Some(serde_yaml_ng::Value::String(s)) => s.clone(),
                    Some(other) => serde_yaml_ng::to_string(other).unwrap().trim().to_owned(),
                    None => panic!("{name}: a rule without expr"),
                };
                let id = rule.get("alert").or(rule.get("record")).and_then(|v| v.as_str()).unwrap_or("?");
                if let Some(record) = rule.get("record").and_then(|v| v.as_str()) {
                    recorded.insert(record.to_owned());
                }
                out.push(Query { origin: format!("{name}: {id}"), expr });
            }
        }
    }
    (out, recorded)
}

/// The ```promql blocks of docs/*.md: one expression per line, `#` lines
/// are comments, an indented line continues the expression above.
fn doc_queries() -> Vec<Query> {
    let mut out: Vec<Query> = Vec::new();
    let dir = repo_root().join("docs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for file in files.iter().filter(|p| p.extension().is_some_and(|x| x == "md")) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(file).unwrap();
        for block in text.split("```promql\n").skip(1) {
            let block = block.split("```").next().unwrap_or_default();
            for line in block.lines().filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')) {
                match out.last_mut() {
                    Some(last) if line.starts_with(char::is_whitespace) => {
                        last.expr.push(' ');
                        last.expr.push_str(line.trim());
                    }
                    _ => out.push(Query { origin: format!("docs/{name}"), expr: line.trim().to_owned() }),
                }
            }
        }
    }
    out
}

/// Metric names an expression selects.
#[derive(Default)]
struct MetricNames(BTreeSet<String>);

impl ExprVisitor for MetricNames {
    type Error = ();
    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, ()> {
        let selector = match expr {
            Expr::VectorSelector(vs) => Some(vs),
            Expr::MatrixSelector(ms) => Some(&ms.vs),
            _ => None,
        };
        if let Some(vs) = selector {
            self.0.extend(vs.name.clone());
            let by_label = vs.matchers.matchers.iter().filter(|m| m.name == "__name__" && m.op == MatchOp::Equal);
            self.0.extend(by_label.map(|m| m.value.clone()));
        }
        Ok(true)
    }
}

/// Names /metrics offers: every sample's name, and the names a declared
/// family would have before its first sample (counter `_total`, histogram
/// `_bucket`/`_sum`/`_count`, gauge as is).
fn exposed_names(text: &str) -> HashSet<String> {
    let mut names = HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            match kind {
                "histogram" => names.extend(["_bucket", "_sum", "_count"].map(|s| format!("{name}{s}"))),
                "summary" => names.extend(["", "_sum", "_count"].map(|s| format!("{name}{s}"))),
                _ => {
                    names.insert(name.to_owned());
                }
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_owned());
        }
    }
    names
}

/// /metrics of the real binary after an error, an event batch and a replay
/// chunk, delivered to a Loki that refuses the first push once.
async fn metrics_after_traffic() -> String {
    let loki = LokiReceiver::start().await;
    loki.script(axum::http::StatusCode::SERVICE_UNAVAILABLE, 1);
    let server = TestServer::start(&[("OBSERVER_LOKI_URL", &loki.url), ("OBSERVER_LOKI_BATCH_WAIT", "100ms")]).await;
    let session = unique_id("promql");
    let error =
        json!({"message": "boom", "type": "TypeError", "session_id": session, "url": "https://shop.example/cart"});
    assert_eq!(server.post_json("/api/observer/errors", &error).await.status(), 202);
    let events = json!([{"type": "page_view", "session_id": session}, {"type": "custom", "name": "checkout", "session_id": session}]);
    assert_eq!(server.post_json("/api/observer/events", &events).await.status(), 202);
    assert_eq!(server.post_json("/api/observer/errors", &json!({"message": ""})).await.status(), 400);
    let chunk = server
        .http
        .post(server.url(&format!("/api/observer/replay-events?session_id={session}&seq=0")))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(fixture_bytes("session-chunk-000.json.gz"))
        .send()
        .await
        .unwrap();
    assert_eq!(chunk.status(), 202);
    loki.wait_for(4, |_| true).await;
    server.metrics_text().await
}

#[tokio::test]
async fn dashboard_and_rule_expressions_parse_and_name_exposed_metrics() {
    let dashboards = dashboard_queries();
    assert!(!dashboards.is_empty(), "dashboards/ has no Prometheus expression");
    let (rules, recorded) = rule_queries();
    let docs = doc_queries();
    assert!(docs.len() >= 10, "docs/metrics.md has PromQL recipes");
    let text = metrics_after_traffic().await;
    let exposed = exposed_names(&text);
    for must in
        ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "observer_build_info"]
    {
        assert!(exposed.contains(must), "/metrics lacks {must}:\n{text}");
    }

    let mut problems = Vec::new();
    let mut checked = 0;
    for q in dashboards.iter().chain(&rules).chain(&docs) {
        let expr = match parser::parse(&q.expr) {
            Ok(expr) => expr,
            Err(e) => {
                problems.push(format!("{}: does not parse: {e}\n    {}", q.origin, q.expr));
                continue;
            }
        };
        let mut names = MetricNames::default();
        walk_expr(&mut names, &expr).unwrap();
        if names.0.is_empty() && !q.expr.contains("vector(") && !q.expr.contains("time()") {
            problems.push(format!("{}: names no metric\n    {}", q.origin, q.expr));
        }
        for name in names.0 {
            checked += 1;
            let known =
                exposed.contains(&name) || recorded.contains(&name) || PROMETHEUS_SYNTHETIC.contains(&name.as_str());
            if !known {
                problems.push(format!("{}: metric {name} is not on /metrics\n    {}", q.origin, q.expr));
            }
        }
    }
    assert!(problems.is_empty(), "{} problem(s):\n{}\n--- /metrics ---\n{text}", problems.len(), problems.join("\n"));
    assert!(checked >= dashboards.len(), "{checked} metric references in {} expressions", dashboards.len());
}

#[test]
fn checks_catch_wrong_expressions() {
    // promql-parser type-checks: rate() of an instant vector is refused.
    assert!(parser::parse("rate(observer_errors_accepted_total)").is_err());
    assert!(parser::parse("sum by (route) (rate(observer_http_requests_total[5m]))").is_ok());
    assert_eq!(
        substitute(r#"rate(x{job=~"$job", instance=~"${instance}"}[$__rate_interval])"#, &[]),
        r#"rate(x{job=~".+", instance=~".+"}[5m])"#
    );
    assert_eq!(
        variable_expression(r#"label_values(observer_build_info{job=~"$job"}, instance)"#).unwrap(),
        r#"observer_build_info{job=~"$job"}"#
    );
    let exposed = exposed_names("# TYPE a_seconds histogram\n# TYPE b counter\nb_total 1\n# TYPE c gauge\n");
    for name in ["a_seconds_bucket", "a_seconds_count", "b_total", "c"] {
        assert!(exposed.contains(name), "{name}");
    }
}
