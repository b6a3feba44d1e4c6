//! The operations service of a running devnet, scraped as Prometheus does while a load runs:
//! the text format parses, and the counters move as the load says they must (two mints applied
//! on every validator, a malformed submission and a replay refused at the validator they went
//! to); `/livez` and `/readyz` answer, and `/readyz` says what is missing when a validator
//! cannot reach a quorum.

use shoji_net::ClientConnection;
use shoji_node::api::{Request, Response};
use shoji_primitives::keys::{SpendingKeys, WalletSeed};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

mod common;
use common::Fixture;

/// `GET path` over HTTP/1.1: the status code and the body.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the operations service");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("response");
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP response");
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    (code, body.to_string())
}

/// The samples of a Prometheus text exposition: `name{labels}` → value. Panics on a line that
/// is neither a comment nor a sample.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (key, value) = line.rsplit_once(' ').expect("a sample: name value");
        let value: f64 = value.parse().expect("a numeric value");
        assert!(
            key.starts_with("shoji_"),
            "a metric outside the shoji_ namespace: {line}"
        );
        samples.insert(key.to_string(), value);
    }
    samples
}

async fn scrape(addr: SocketAddr) -> BTreeMap<String, f64> {
    let (code, body) = tokio::task::spawn_blocking(move || get(addr, "/metrics"))
        .await
        .expect("scrape");
    assert_eq!(code, 200, "{body}");
    assert!(body.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    parse(&body)
}

fn value(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    samples.get(key).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_as_the_load_says_and_health_answers() {
    let fixture = Fixture::new();
    let (ledger, verifier) = (fixture.ledger.clone(), fixture.verifier.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let net = shoji_node::devnet::start(4, ledger, verifier, dir.path()).expect("devnet");
    let ops = net.operations.clone();
    assert_eq!(ops.len(), 4, "one operations address per validator");

    // Live at once; ready once connected to the others.
    let (code, body) = tokio::task::spawn_blocking({
        let a = ops[&0];
        move || get(a, "/livez")
    })
    .await
    .expect("livez");
    assert_eq!((code, body.as_str()), (200, "live\n"));
    let mut ready = (0, String::new());
    for _ in 0..100 {
        let a = ops[&1];
        ready = tokio::task::spawn_blocking(move || get(a, "/readyz"))
            .await
            .expect("readyz");
        if ready.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!((ready.0, ready.1.as_str()), (200, "ready\n"));
    let before: Vec<_> = scrape_all(ops.values().copied()).await;

    // The load: two mints, a malformed submission and a replay, all to validator 1.
    let key = net.key(1).expect("key");
    let client = ClientConnection::connect(net.addrs[&1], &key)
        .await
        .expect("connect");
    let ask = async |req: Request| {
        let bytes = tokio::time::timeout(Duration::from_secs(60), client.request(&req.encode()))
            .await
            .expect("answer within 60 s")
            .expect("request");
        Response::decode(&bytes).expect("response")
    };
    let Response::TreeState { anchor, .. } = ask(Request::TreeState).await else {
        panic!("tree state")
    };
    let anchor = shoji_primitives::encoding::fr_from_bytes("anchor", &anchor).expect("anchor");
    let wallet = SpendingKeys::from_seed(&WalletSeed([9; 32]));
    let mints: Vec<Vec<u8>> = [10, 20]
        .into_iter()
        .map(|amount| {
            fixture
                .mint(&wallet, amount, anchor, net.network_id)
                .to_bytes()
        })
        .collect();
    for tx in &mints {
        let r = ask(Request::Submit { tx: tx.clone() }).await;
        assert!(
            matches!(r, Response::Committed { applied: true, .. }),
            "{r:?}"
        );
    }
    assert!(matches!(
        ask(Request::Submit { tx: vec![1, 2, 3] }).await,
        Response::Refused(_)
    ));
    assert!(matches!(
        ask(Request::Submit {
            tx: mints[0].clone()
        })
        .await,
        Response::Refused(_)
    ));

    // Every validator executed both mints (the last may still be executing on some).
    let mint_applied = "shoji_transactions_total{kind=\"mint\",outcome=\"applied\"}";
    let mut after = Vec::new();
    for _ in 0..100 {
        after = scrape_all(ops.values().copied()).await;
        if after.iter().all(|s| value(s, mint_applied) >= 2.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert_eq!(
            value(a, mint_applied) - value(b, mint_applied),
            2.0,
            "validator {i}"
        );
        assert!(
            value(a, "shoji_height") > value(b, "shoji_height"),
            "validator {i}: the height moved"
        );
        assert!(value(a, "shoji_store_commit_seconds_count") >= value(a, "shoji_height"));
        assert!(value(a, "shoji_verification_batch_size_count") >= 1.0);
        assert_eq!(value(a, "shoji_peers_connected"), 3.0, "validator {i}");
        assert_eq!(value(a, "shoji_validators"), 4.0);
        assert_eq!(value(a, "shoji_view_changes_total"), 0.0);
        assert_eq!(value(a, "shoji_ready"), 1.0);
        assert!(value(a, "shoji_storage_bytes") > 0.0);
        assert!(value(a, "shoji_storage_available_bytes") > 0.0);
    }
    // What validator 1 was asked and refused.
    let v1 = &after[1];
    let submit = |result: &str| {
        value(
            v1,
            &format!("shoji_client_requests_total{{kind=\"submit\",result=\"{result}\"}}"),
        )
    };
    assert_eq!(submit("ok"), 2.0);
    assert_eq!(submit("refused"), 2.0);
    assert_eq!(
        value(v1, "shoji_admissions_total{reason=\"admitted\"}"),
        2.0
    );
    assert_eq!(
        value(v1, "shoji_admissions_total{reason=\"malformed\"}"),
        1.0
    );
    assert_eq!(
        value(v1, "shoji_admissions_total{reason=\"double_spend\"}"),
        1.0
    );
    assert!(
        value(
            v1,
            "shoji_client_requests_total{kind=\"tree_state\",result=\"ok\"}"
        ) >= 1.0
    );
    assert_eq!(
        value(&after[0], "shoji_admissions_total{reason=\"admitted\"}"),
        0.0
    );

    // Three validators down: the last one cannot make a quorum, and says so.
    for id in [0, 2, 3] {
        assert!(net.stop(id));
    }
    let mut answer = (200, String::new());
    for _ in 0..200 {
        let a = ops[&1];
        answer = tokio::task::spawn_blocking(move || get(a, "/readyz"))
            .await
            .expect("readyz");
        if answer.0 == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answer.0, 503, "{}", answer.1);
    assert!(answer.1.contains("a quorum of 4 needs 2"), "{}", answer.1);
}

/// Scrapes every address, in order.
async fn scrape_all(addrs: impl Iterator<Item = SocketAddr>) -> Vec<BTreeMap<String, f64>> {
    let mut out = Vec::new();
    for a in addrs {
        out.push(scrape(a).await);
    }
    out
}
