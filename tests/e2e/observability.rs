//! The Grafana dashboard and the Prometheus alert rules in `deploy/`: promtool accepts the rules
//! and their unit tests pass, the dashboard is well-formed and every query of it parses, and
//! every metric and selector label either of them names is one a real gateway exports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use fake_apiserver::FakeApiServer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::backends::{NAMESPACE, kubernetes_config, workspace_pod};
use crate::common::{Db, Gateway, send, wait_until};

const DASHBOARD: &str = "grafana/rdev-dashboard.json";
const RULES: &str = "prometheus/rdev-alerts.yml";
const RULE_TESTS: &str = "prometheus/rdev-alerts.test.yml";

/// A tier whose keys may make one request (its bucket refills once in 1000 s): the second is
/// refused, whatever the machine's speed.
const ONE_REQUEST_TIER: &str = "[limits.tiers.once]\nrequests_per_second = 0.001\nburst = 1\n";

/// Webhook deliveries may reach a receiver on loopback.
const LOOPBACK_WEBHOOKS: &str =
    "[webhooks]\nallow_http = true\nallowed_targets = [\"127.0.0.1/32\"]\npoll_interval_ms = 50\n";

/// Labels Prometheus attaches to every series it scrapes.
const TARGET_LABELS: &[&str] = &["job", "instance"];

fn deploy_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy").join(name)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn dashboard() -> Value {
    serde_json::from_str(&read(&deploy_file(DASHBOARD))).unwrap_or_else(|e| panic!("{DASHBOARD} is not JSON: {e}"))
}

fn yaml(name: &str) -> Value {
    serde_saphyr::from_str(&read(&deploy_file(name))).unwrap_or_else(|e| panic!("{name} is not YAML: {e}"))
}

/// Runs promtool (which `scripts/test.sh` installs when it is missing) and fails with its output
/// unless it succeeds.
fn promtool(args: &[&str], file: &Path) {
    let out = Command::new("promtool")
        .args(args)
        .arg(file)
        .output()
        .expect("promtool is installed (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "promtool {} {}:\n{}{}",
        args.join(" "),
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn alert_rules_pass_promtool_and_their_unit_tests() {
    promtool(&["check", "rules"], &deploy_file(RULES));
    promtool(&["test", "rules"], &deploy_file(RULE_TESTS));
    let mut names = BTreeSet::new();
    for group in yaml(RULES)["groups"].as_array().expect("groups") {
        for rule in group["rules"].as_array().expect("rules") {
            let name = rule["alert"].as_str().unwrap_or_else(|| panic!("only alerts: {rule}"));
            assert!(names.insert(name.to_owned()), "alert {name} is defined twice");
            let severity = rule["labels"]["severity"].as_str();
            assert!(
                matches!(severity, Some("critical" | "warning")),
                "{name}: severity is critical or warning, not {severity:?}"
            );
            for annotation in ["summary", "description"] {
                let text = rule["annotations"][annotation].as_str().unwrap_or_default();
                assert!(!text.trim().is_empty(), "{name} has no {annotation}");
            }
        }
    }
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        all.push(panel);
        all.extend(panel["panels"].as_array().into_iter().flatten());
    }
    all
}

#[test]
fn dashboard_is_well_formed_and_its_queries_parse() {
    let dashboard = dashboard();
    let schema = dashboard["schemaVersion"].as_u64().expect("schemaVersion");
    assert!((36..=41).contains(&schema), "schemaVersion {schema}");
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating variables");
    let datasource = variables
        .iter()
        .find(|v| v["name"] == "datasource")
        .expect("a datasource variable");
    assert_eq!(
        (&datasource["type"], &datasource["query"]),
        (&json!("datasource"), &json!("prometheus"))
    );

    let mut ids = BTreeSet::new();
    let mut queries = Vec::new();
    for panel in panels(&dashboard) {
        let title = panel["title"].as_str().unwrap_or_default();
        let id = panel["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("panel {title:?} has no id"));
        assert!(ids.insert(id), "panel id {id} is used twice");
        assert!(panel["gridPos"]["w"].is_u64(), "panel {id} has no gridPos");
        if panel["type"] == "row" {
            // A row only groups the panels below it.
            assert!(panel.get("targets").is_none(), "row {id} has targets");
            continue;
        }
        assert_eq!(
            panel["datasource"],
            json!({"type": "prometheus", "uid": "${datasource}"}),
            "panel {id} ({title})"
        );
        let targets = panel["targets"].as_array().map(Vec::as_slice).unwrap_or_default();
        assert!(!targets.is_empty(), "panel {id} ({title}) has no targets");
        for (n, target) in targets.iter().enumerate() {
            let expr = target["expr"].as_str().unwrap_or_default();
            assert!(!expr.trim().is_empty(), "panel {id} target {n} has no expr");
            if !target["datasource"].is_null() {
                assert_eq!(target["datasource"], panel["datasource"], "panel {id} target {n}");
            }
            queries.push((format!("dashboard:panel_{id}_{n}"), instantiate(expr, variables)));
        }
    }

    // promtool parses PromQL in recording rules, so every query becomes one.
    let rules: Vec<Value> = queries
        .into_iter()
        .map(|(record, expr)| json!({"record": record, "expr": expr}))
        .collect();
    let file = tempfile::Builder::new().suffix(".yml").tempfile().unwrap();
    std::fs::write(
        file.path(),
        json!({"groups": [{"name": "dashboard", "rules": rules}]}).to_string(),
    )
    .unwrap();
    promtool(&["check", "rules"], file.path());
}

/// A query as Grafana sends it: the rate interval a duration, the dashboard's variables regexes
/// that match anything.
fn instantiate(expr: &str, variables: &[Value]) -> String {
    let mut query = expr.replace("$__rate_interval", "5m");
    for name in variables.iter().filter_map(|v| v["name"].as_str()) {
        query = query
            .replace(&format!("${{{name}}}"), ".+")
            .replace(&format!("${name}"), ".+");
    }
    assert!(!query.contains('$'), "unknown variable in `{expr}`");
    query
}

/// A metric named in the dashboard or the rules, with the labels of its selector.
#[derive(Debug)]
struct Reference {
    name: String,
    labels: Vec<String>,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Every `rdev_…` name in a text, with the label names of the `{…}` selector that follows it.
fn references_in(text: &str) -> Vec<Reference> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(offset) = text[at..].find("rdev_") {
        let start = at + offset;
        let end = text[start..]
            .find(|c: char| !is_name_char(c))
            .map_or(text.len(), |n| start + n);
        at = end;
        if text[..start].chars().next_back().is_some_and(is_name_char) {
            continue;
        }
        let labels = text[end..].strip_prefix('{').map(label_names).unwrap_or_default();
        found.push(Reference {
            name: text[start..end].to_owned(),
            labels,
        });
    }
    found
}

/// The label names of a selector or of an exposition line's label set, given what follows its `{`.
fn label_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
        let mut name = String::new();
        while let Some(c) = chars.next_if(|c| is_name_char(*c)) {
            name.push(c);
        }
        if name.is_empty() {
            return names;
        }
        while chars.next_if(|c| c.is_whitespace() || "=!~".contains(*c)).is_some() {}
        let Some(quote) = chars.next() else { return names };
        while let Some(c) = chars.next() {
            if c == '\\' && quote != '`' {
                chars.next();
            } else if c == quote {
                break;
            }
        }
        names.push(name);
    }
}

/// Every string inside a JSON value (a dashboard, or a YAML document read as one).
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

fn references(document: &Value) -> Vec<Reference> {
    let mut texts = Vec::new();
    strings(document, &mut texts);
    texts.iter().flat_map(|t| references_in(t)).collect()
}

/// What a `/metrics` answer exports: each family's type and the label names of its series.
struct Exposition {
    families: BTreeMap<String, (String, BTreeSet<String>)>,
}

impl Exposition {
    fn parse(text: &str) -> Self {
        let mut families = BTreeMap::new();
        let mut current = None;
        for line in text.lines() {
            if let Some(declared) = line.strip_prefix("# TYPE ") {
                let (name, kind) = declared.split_once(' ').expect("# TYPE name kind");
                families.insert(name.to_owned(), (kind.to_owned(), BTreeSet::new()));
                current = Some(name.to_owned());
            } else if !line.starts_with('#') && !line.trim().is_empty() {
                // The text format puts a family's samples right after its TYPE line.
                let family = current.as_ref().expect("a sample after a TYPE line");
                let labels = line
                    .split_once('{')
                    .map(|(_, rest)| label_names(rest))
                    .unwrap_or_default();
                families.get_mut(family).expect("declared").1.extend(labels);
            }
        }
        Self { families }
    }

    /// What is wrong with a reference, if anything: an unknown family, or labels its series
    /// do not have.
    fn problem(&self, reference: &Reference) -> Option<String> {
        let name = reference.name.as_str();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|suffix| name.strip_suffix(suffix))
            .find(|base| self.families.get(*base).is_some_and(|(kind, _)| kind == "histogram"))
            .unwrap_or(name);
        let Some((_, labels)) = self.families.get(family) else {
            return Some(format!("{name}: the gateway exports no such metric"));
        };
        let unknown: Vec<&String> = reference
            .labels
            .iter()
            .filter(|l| !labels.contains(*l) && !TARGET_LABELS.contains(&l.as_str()))
            .collect();
        (!unknown.is_empty()).then(|| format!("{name}: its series have no label {unknown:?} (they have {labels:?})"))
    }
}

/// The `/metrics` text of a gateway that did a bit of everything, since a labelled family has
/// series only once a label set was used: on the Kubernetes backend (the fake API server), so
/// that the API-call counter has series, with the default plugins, it ran a command, refused one
/// by policy, refused a bad token, refused a key past its rate limit and delivered a webhook.
async fn metrics_after_representative_work() -> String {
    let cluster = FakeApiServer::start().await;
    let pods = tempfile::tempdir().unwrap();
    let config = kubernetes_config(&cluster, pods.path()) + ONE_REQUEST_TIER + LOOPBACK_WEBHOOKS;
    let gw = Gateway::start_with_plugins(Db::Sqlite, &config).await;
    let workspace = pods.path().join("web");
    std::fs::create_dir_all(&workspace).unwrap();
    cluster.create_pod(NAMESPACE, workspace_pod("web-0", "web", &workspace));
    gw.wait_for_project("web").await;

    let id = gw.shell("web", "echo hi").await;
    assert_eq!(gw.wait_done(&id).await["state"], "succeeded");
    let (status, denied) = gw
        .post(
            "/v1/projects/web/commands",
            json!({"kind": "shell", "script": "rm -rf /"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{denied}");
    let (status, refused) = gw.call(Method::GET, "/v1/projects", "rdev_not_a_key", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    let (status, limited) = gw
        .post(
            "/v1/keys",
            json!({"name": "once", "scopes": ["projects:read"], "rate_limit_tier": "once"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{limited}");
    let token = limited["token"].as_str().expect("a token");
    assert_eq!(
        gw.call(Method::GET, "/v1/projects", token, None).await.0,
        StatusCode::OK
    );
    let (status, refused) = gw.call(Method::GET, "/v1/projects", token, None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{refused}");
    deliver_a_webhook(&gw).await;

    let metrics = send(gw.request(Method::GET, "/metrics")).await;
    assert_eq!(metrics.status, StatusCode::OK);
    metrics.body.as_str().expect("plain text").to_owned()
}

/// Sends a test event to a receiver on loopback and waits until its attempt is counted.
async fn deliver_a_webhook(gw: &Gateway) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let receiver = axum::Router::new().route("/hook", axum::routing::post(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });
    let (status, created) = gw
        .post("/v1/webhooks", json!({"url": url, "events": ["webhook.test"]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    gw.logs.secret(created["secret"].as_str().expect("a secret"));
    let id = created["id"].as_str().expect("an id");
    assert_eq!(
        gw.post(&format!("/v1/webhooks/{id}/test"), json!({})).await.0,
        StatusCode::ACCEPTED
    );
    wait_until(Duration::from_secs(60), || async {
        let text = send(gw.request(Method::GET, "/metrics")).await.body;
        text.as_str()
            .is_some_and(|t| t.contains("rdev_webhook_attempts_total{outcome=\"succeeded\"} 1"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_and_alerts_name_only_metrics_the_gateway_exports() {
    let exposition = Exposition::parse(&metrics_after_representative_work().await);
    let documents = [
        (DASHBOARD, dashboard()),
        (RULES, yaml(RULES)),
        (RULE_TESTS, yaml(RULE_TESTS)),
    ];
    let mut problems = BTreeSet::new();
    for (file, document) in &documents {
        let found = references(document);
        assert!(!found.is_empty(), "{file} names no rdev_ metric: the scan is broken");
        for reference in &found {
            if let Some(problem) = exposition.problem(reference) {
                problems.insert(format!("{file}: {problem}"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");

    // The same check on the same exposition catches a misspelled name, a histogram series of a
    // misspelled family, a histogram suffix on a counter, and a misspelled label.
    for typo in [
        "rdev_commands_runing",
        r#"rate(rdev_http_request_duration_second_bucket[5m])"#,
        "rdev_commands_accepted_total_count",
        r#"rdev_plugin_calls_total{outcomes="deny"}"#,
    ] {
        let references = references_in(typo);
        assert_eq!(references.len(), 1, "{typo}");
        assert!(exposition.problem(&references[0]).is_some(), "{typo} passed");
    }
}
