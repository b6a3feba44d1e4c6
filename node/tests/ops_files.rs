//! The Grafana dashboard and the Prometheus alert rules shipped in `ops/` query only metrics a
//! validator exports: every `shoji_*` name in them is a sample name of the registry the
//! operations service encodes.

use shoji_node::metrics::{encode, registry, Metrics};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Every sample name the operations service exports, with each labelled family given one
/// label set (an empty family exports nothing).
fn exported() -> BTreeSet<String> {
    let node = Metrics::default();
    node.transaction("transfer", Some("double_spend"));
    node.admission("admitted");
    node.client_request("status", "ok");
    let net = shoji_net::NetMetrics::default();
    net.refuse(shoji_net::Refusal::RateLimited);
    encode(&registry(&node, &net))
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// The `shoji_*` names in `text`.
fn named(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("shoji_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

fn ops_file(path: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../ops")
        .join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn unknown(text: &str, exported: &BTreeSet<String>) -> Vec<String> {
    named(text)
        .into_iter()
        .filter(|n| !exported.contains(n))
        .collect()
}

#[test]
fn dashboard_and_alerts_query_only_exported_metrics() {
    let exported = exported();
    // The check itself catches a name the node does not export.
    assert_eq!(
        unknown("rate(shoji_blocks_total[1m])", &exported),
        ["shoji_blocks_total"]
    );

    let dashboard = ops_file("grafana/shoji-validators.json");
    let json: serde_json::Value = serde_json::from_str(&dashboard).expect("dashboard JSON");
    let panels = json["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10);
    for p in panels {
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{}", p["title"]);
        for t in targets {
            let expr = t["expr"].as_str().expect("expr");
            assert!(!named(expr).is_empty(), "{expr} queries no shoji metric");
        }
    }
    assert_eq!(unknown(&dashboard, &exported), Vec::<String>::new());

    let alerts = ops_file("prometheus/alerts.yml");
    let rules: Vec<&str> = alerts
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    for wanted in [
        "ShojiNoCommit",
        "ShojiViewChanges",
        "ShojiPeerDown",
        "ShojiNotReady",
        "ShojiDiskFilling",
    ] {
        assert!(rules.contains(&wanted), "{wanted} missing from {rules:?}");
    }
    let exprs = alerts.lines().filter(|l| l.trim().starts_with("expr:"));
    assert_eq!(exprs.count(), rules.len(), "one expr per alert");
    assert_eq!(unknown(&alerts, &exported), Vec::<String>::new());
}
