//! The deploy examples: the Grafana dashboard is valid JSON whose every query names series a
//! real `/metrics` exposes, and the Prometheus scrape config points where `make run` listens.

mod common;

use std::collections::BTreeSet;

use common::admin::Admin;

/// Every `girok_*` or `grpc_server_*` name in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("girok_") || word.starts_with("grpc_server_"))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_dashboard_query_names_series_a_real_server_exposes() {
    // After a produce, a consume, an error and an open tail, each metric a dashboard panel
    // queries is among the samples of a scrape.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/grafana/girok.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("valid JSON");
    let exprs: Vec<&str> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|panel| panel["targets"].as_array().expect("targets"))
        .map(|target| target["expr"].as_str().expect("an expr"))
        .collect();
    assert!(exprs.len() >= 10, "{exprs:?}");

    let admin = Admin::start(&[]);
    let mut client = admin.client().await;
    client.produce("x").await.unwrap();
    client.consume(0).await.unwrap();
    client.consume(9).await.expect_err("past the end");
    let mut tail = client.consume_stream(0).await.unwrap();
    tail.next().await.unwrap();
    let samples = tokio::task::block_in_place(|| admin.scrape());
    let exposed: BTreeSet<&str> = samples.iter().map(|s| s.name.as_str()).collect();
    for expr in exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{expr}");
        for name in names {
            assert!(exposed.contains(name.as_str()), "{name} (in {expr}) is not exposed");
        }
    }
}

#[test]
fn the_scrape_config_targets_the_admin_port_make_run_opens() {
    // deploy/prometheus.yml scrapes 127.0.0.1:9400/metrics, the --admin-addr of `make run`.
    let root = env!("CARGO_MANIFEST_DIR");
    let config = std::fs::read_to_string(format!("{root}/deploy/prometheus.yml")).unwrap();
    let makefile = std::fs::read_to_string(format!("{root}/Makefile")).unwrap();
    assert!(config.contains("metrics_path: /metrics"));
    assert!(config.contains("targets: [\"127.0.0.1:9400\"]"));
    assert!(makefile.contains("--admin-addr 127.0.0.1:9400"));
}
