//! The gateway against a devnet, driven over HTTP as a back office would: submit, then status,
//! then the event stream; a consumer that disconnects and resumes through `Last-Event-ID`
//! misses nothing and sees nothing twice; the OpenAPI document lists every route and passes a
//! validator; the status page shows an advancing height in headless Chromium.

use serde_json::Value;
use shoji_client::{Client, Network};
use shoji_gateway::upstream::Upstream;
use shoji_primitives::keys::{SpendingKeys, WalletSeed};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../../node/tests/common/mod.rs"]
mod common;
use common::Fixture;

const TOKEN: &str = "0123456789abcdef0123456789abcdef-test";

/// A devnet, and a gateway in front of it.
struct Setup {
    fixture: Fixture,
    network: Network,
    gateway: SocketAddr,
    doc: utoipa::openapi::OpenApi,
    _net: shoji_node::devnet::LocalNetwork,
    _dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
}

impl Setup {
    fn start(token: Option<&str>) -> Setup {
        let fixture = Fixture::new();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let net = {
            let _guard = runtime.enter();
            let (ledger, verifier) = (fixture.ledger.clone(), fixture.verifier.clone());
            shoji_node::devnet::start(4, ledger, verifier, dir.path()).expect("devnet")
        };
        let network =
            net.client_network(fixture.auditor.public_key(), fixture.ledger.issuers.clone());
        let config = shoji_gateway::Config {
            token: token.map(str::to_string),
            max_body_bytes: 16 * 1024,
            ..Default::default()
        };
        let (router, doc) = shoji_gateway::app(Arc::new(Upstream::new(network.clone())), config);
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let gateway = listener.local_addr().expect("address");
        runtime.spawn(async move { axum::serve(listener, router).await });
        Setup {
            fixture,
            network,
            gateway,
            doc,
            _net: net,
            _dir: dir,
            runtime,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.gateway)
    }

    /// A proven mint of `amount` to a test wallet, encoded.
    fn mint(&self, amount: u64) -> (Vec<u8>, String) {
        let client = Client::connect(&self.network, None).expect("connect");
        let anchor = client.tree_state().expect("tree state").anchor;
        let wallet = SpendingKeys::from_seed(&WalletSeed([9; 32]));
        let tx = self
            .fixture
            .mint(&wallet, amount, anchor, self.network.network_id);
        (tx.to_bytes(), tx.id().to_string())
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        // Let the gateway's tasks and the validators stop before the databases go.
        let runtime = std::mem::replace(
            &mut self.runtime,
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime"),
        );
        runtime.shutdown_timeout(Duration::from_secs(5));
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(90)))
        .build()
        .into()
}

/// GET with the token; the status and the JSON body.
fn get(agent: &ureq::Agent, url: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = agent.get(url);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = req.call().expect("request");
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().expect("body");
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

fn post(agent: &ureq::Agent, url: &str, body: &[u8]) -> (u16, Value) {
    let mut resp = agent
        .post(url)
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .header("Content-Type", "application/octet-stream")
        .send(body)
        .expect("request");
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().expect("body");
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

/// One server-sent event: its id, name and JSON data.
#[derive(Debug, Clone, PartialEq)]
struct Sse {
    id: String,
    event: String,
    data: Value,
}

/// Opens the stream and reads `n` events (or until `stop` says so), then disconnects.
fn read_stream(
    agent: &ureq::Agent,
    url: &str,
    last_event_id: Option<&str>,
    mut stop: impl FnMut(&[Sse]) -> bool,
) -> Vec<Sse> {
    let mut req = agent
        .get(url)
        .header("Authorization", &format!("Bearer {TOKEN}"));
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id);
    }
    let resp = req.call().expect("stream");
    assert_eq!(resp.status().as_u16(), 200, "the stream opens");
    let reader = BufReader::new(resp.into_body().into_reader());
    let mut out = Vec::new();
    let (mut id, mut event, mut data) = (String::new(), String::new(), String::new());
    for line in reader.lines() {
        let line = line.expect("line");
        if let Some(v) = line.strip_prefix("id: ") {
            id = v.to_string();
        } else if let Some(v) = line.strip_prefix("event: ") {
            event = v.to_string();
        } else if let Some(v) = line.strip_prefix("data: ") {
            data.push_str(v);
        } else if line.is_empty() && !data.is_empty() {
            out.push(Sse {
                id: std::mem::take(&mut id),
                event: std::mem::take(&mut event),
                data: serde_json::from_str(&std::mem::take(&mut data)).expect("event JSON"),
            });
            assert_ne!(
                out.last().map(|e| e.event.as_str()),
                Some("error"),
                "{out:?}"
            );
            if stop(&out) {
                break;
            }
        }
    }
    out
}

#[test]
fn a_back_office_submits_reads_and_resumes_the_event_stream_through_the_gateway() {
    let setup = Setup::start(Some(TOKEN));
    let http = agent();

    // The token is required, compared whole.
    let (status, body) = get(&http, &setup.url("/v1/status"), None);
    assert_eq!((status, code(&body)), (401, "unauthorized"));
    let (status, body) = get(&http, &setup.url("/v1/status"), Some("wrong"));
    assert_eq!((status, code(&body)), (401, "unauthorized"));
    let (status, status_body) = get(&http, &setup.url("/v1/status"), Some(TOKEN));
    assert_eq!(status, 200, "{status_body}");
    assert_eq!(status_body["validators"], serde_json::json!([0, 1, 2, 3]));

    // Submit two mints built elsewhere; each answer is final.
    let mut submitted = Vec::new();
    for amount in [5, 6] {
        let (bytes, txid) = setup.mint(amount);
        let (status, body) = post(&http, &setup.url("/v1/transactions"), &bytes);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["txid"], txid.as_str());
        assert_eq!(body["signatures"].as_u64().map(|s| s >= 3), Some(true));
        submitted.push((bytes, txid, body["height"].as_u64().expect("height")));
    }
    // The same bytes again: the network answers, the gateway says how in a stable code.
    let (status, body) = post(&http, &setup.url("/v1/transactions"), &submitted[0].0);
    assert!(
        matches!((status, code(&body)), (409, "rejected") | (422, "refused")),
        "{status} {body}"
    );
    // Not a transaction, an empty body, an oversized body.
    let (status, body) = post(&http, &setup.url("/v1/transactions"), b"not a transaction");
    assert_eq!((status, code(&body)), (422, "refused"), "{body}");
    let (status, body) = post(&http, &setup.url("/v1/transactions"), b"");
    assert_eq!((status, code(&body)), (400, "bad_request"), "{body}");
    let (status, body) = post(&http, &setup.url("/v1/transactions"), &[0u8; 20_000]);
    assert_eq!((status, code(&body)), (413, "payload_too_large"), "{body}");

    // Transaction status: applied at the height the submission said, certified once a stable
    // checkpoint covers it (the devnet closes one within a few blocks).
    let (_, txid, height) = &submitted[1];
    let deadline = Instant::now() + Duration::from_secs(60);
    let tx = loop {
        let (status, body) = get(
            &http,
            &setup.url(&format!("/v1/transactions/{txid}")),
            Some(TOKEN),
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["outcome"], "applied");
        assert_eq!(body["kind"], "mint");
        assert_eq!(body["height"].as_u64(), Some(*height));
        if body["certified"] == true || Instant::now() > deadline {
            break body;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(tx["certified"], true, "{tx}");
    let (status, body) = get(
        &http,
        &setup.url(&format!("/v1/transactions/{}", "ab".repeat(32))),
        Some(TOKEN),
    );
    assert_eq!((status, code(&body)), (404, "not_found"));
    let (status, body) = get(&http, &setup.url("/v1/transactions/xyz"), Some(TOKEN));
    assert_eq!((status, code(&body)), (400, "bad_request"));

    // The block holding it, its certificate checked; a height not reached is 404.
    let (status, block) = get(
        &http,
        &setup.url(&format!("/v1/blocks/{height}")),
        Some(TOKEN),
    );
    assert_eq!(status, 200, "{block}");
    assert_eq!(block["height"].as_u64(), Some(*height));
    assert!(
        block["certificate"]["signatures"]
            .as_array()
            .map_or(0, Vec::len)
            >= 3
    );
    let (status, body) = get(&http, &setup.url("/v1/blocks/1000000"), Some(TOKEN));
    assert_eq!((status, code(&body)), (404, "not_found"));
    let (status, body) = get(&http, &setup.url("/v1/blocks/minus-one"), Some(TOKEN));
    assert_eq!((status, code(&body)), (400, "bad_request"), "{body}");

    // Everything so far, as one JSON page: the reference the stream must match.
    let (status, page) = get(
        &http,
        &setup.url("/v1/events/batch?after=0&max=10000"),
        Some(TOKEN),
    );
    assert_eq!(status, 200, "{page}");
    let all: Vec<Value> = page["events"].as_array().expect("events").clone();
    let last = all.last().expect("events")["cursor"].clone();
    assert!(all.iter().any(|e| e["data"]["txid"] == txid.as_str()));
    let block_event = all
        .iter()
        .find(|e| e["kind"] == "block" && e["height"].as_u64() == Some(*height))
        .expect("the block's event");
    assert_eq!(block_event["data"]["hash"], block["hash"]);

    // A consumer reads part of the stream, disconnects, and resumes from its last id.
    let url = setup.url("/v1/events?after=0");
    let split = all.len() / 2;
    let first = read_stream(&http, &url, None, |got| got.len() == split);
    let resume = first.last().expect("events").id.clone();
    let rest = read_stream(&http, &url, Some(&resume), |got| {
        got.last().map(|e| e.data["cursor"].clone()) == Some(last.clone())
    });
    let streamed: Vec<Value> = first.iter().chain(&rest).map(|e| e.data.clone()).collect();
    assert_eq!(
        streamed, all,
        "the resumed stream is the whole stream, once"
    );
    for e in first.iter().chain(&rest) {
        assert_eq!(Value::String(e.id.clone()), e.data["cursor"]);
        assert_eq!(Value::String(e.event.clone()), e.data["kind"]);
    }

    // A live consumer of transactions only sees the next submission arrive.
    let tail = last.as_str().expect("cursor").to_string();
    let (bytes, next_txid) = setup.mint(7);
    let submitter = {
        let url = setup.url("/v1/transactions");
        std::thread::spawn(move || post(&agent(), &url, &bytes))
    };
    let live = read_stream(
        &http,
        &setup.url(&format!("/v1/events?after={tail}&kinds=transaction")),
        None,
        |got| {
            got.iter()
                .any(|e| e.data["data"]["txid"] == next_txid.as_str())
        },
    );
    assert!(live.iter().all(|e| e.event == "transaction"), "{live:?}");
    assert_eq!(submitter.join().expect("submitter").0, 200);

    // Bad cursors and kinds are refused with a code.
    let (status, body) = get(&http, &setup.url("/v1/events/batch?after=x.y"), Some(TOKEN));
    assert_eq!((status, code(&body)), (400, "bad_request"));
    let (status, body) = get(&http, &setup.url("/v1/events?kinds=blocks"), Some(TOKEN));
    assert_eq!((status, code(&body)), (400, "bad_request"));

    // The OpenAPI document is public, lists every route, and is what the router serves.
    let (status, doc) = get(&http, &setup.url("/openapi.json"), None);
    assert_eq!(status, 200);
    assert_eq!(doc, serde_json::to_value(&setup.doc).expect("doc"));
    assert_eq!(
        doc,
        serde_json::to_value(shoji_gateway::openapi()).expect("doc")
    );
    let paths: Vec<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .collect();
    for route in [
        "/v1/status",
        "/v1/blocks/{height}",
        "/v1/transactions/{txid}",
        "/v1/transactions",
        "/v1/events",
        "/v1/events/batch",
    ] {
        assert!(paths.contains(&route), "{route} missing from {paths:?}");
    }
    assert_eq!(paths.len(), 6, "{paths:?}");
    let (status, body) = get(&http, &setup.url("/v2/status"), Some(TOKEN));
    assert_eq!((status, code(&body)), (404, "not_found"));
}

/// Every path of the OpenAPI document answers something other than "no such route", and the
/// document passes `openapi-spec-validator` (installed by `.ci/run` from PyPI).
#[test]
fn the_openapi_document_passes_a_validator() {
    let doc = shoji_gateway::openapi();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("openapi.json");
    std::fs::write(&path, doc.to_pretty_json().expect("json")).expect("write");
    let out = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&path)
        .output()
        .expect(
            "python3 runs (the test needs `pip install openapi-spec-validator`, as .ci/run does)",
        );
    assert!(
        out.status.success(),
        "openapi-spec-validator refused the document (install it with `pip install openapi-spec-validator`):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A broken document is refused: the validator is really looking.
    let mut broken = serde_json::to_value(&doc).expect("doc");
    broken["paths"]["/v1/status"]["get"]["responses"] = Value::String("none".into());
    std::fs::write(&path, broken.to_string()).expect("write");
    let out = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&path)
        .output()
        .expect("python3 runs");
    assert!(!out.status.success(), "a broken document passed");
}

/// The status page, in headless Chromium (Debian's `chromium`, which `.ci/run` installs): it
/// loads, shows the network's height, and the height advances when a block commits. A
/// screenshot is kept in the test's target directory.
#[test]
fn the_status_page_shows_an_advancing_height_in_chromium() {
    let setup = Setup::start(None);
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            std::process::Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("headless Chromium is needed: `apt-get install chromium` (.ci/run installs it)");
    let profile = tempfile::tempdir().expect("profile");
    let page = setup.url("/");
    let render = |extra: &[&str]| -> String {
        let out = std::process::Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--virtual-time-budget=4000",
                "--window-size=1100,800",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(&page)
            .output()
            .expect("chromium runs");
        assert!(
            out.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let height = |dom: &str| -> u64 {
        let start = dom.find("id=\"height\">").expect("the height element") + 12;
        let end = start + dom[start..].find('<').expect("element end");
        dom[start..end]
            .parse()
            .unwrap_or_else(|_| panic!("the page shows no height: {}", &dom[start..end]))
    };
    // Mint once so that there is a block to show, then read the page.
    let (bytes, _) = setup.mint(1);
    let (status, body) = post(&agent(), &setup.url("/v1/transactions"), &bytes);
    assert_eq!(status, 200, "{body}");
    let before = height(&render(&["--dump-dom"]));
    assert!(before >= 1, "the page shows height {before}");
    let (bytes, _) = setup.mint(2);
    let (status, body) = post(&agent(), &setup.url("/v1/transactions"), &bytes);
    assert_eq!(status, 200, "{body}");
    let committed = body["height"].as_u64().expect("height");
    let dom = render(&["--dump-dom"]);
    let after = height(&dom);
    assert!(
        after > before && after >= committed,
        "height {before} then {after} (a block at {committed})"
    );
    assert!(dom.contains("<td>"), "recent blocks are listed");
    let shot = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    render(&[&format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
}

/// Off loopback the gateway refuses to start without a token, and a short token is refused;
/// on loopback it needs none.
#[test]
fn the_gateway_refuses_to_serve_off_loopback_without_a_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_shoji-gateway"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("the gateway runs")
    };
    let open = run(&["--listen", "0.0.0.0:0", "--network", "missing.json"]);
    assert_eq!(open.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&open.stderr).contains("give --token-file"),
        "{}",
        String::from_utf8_lossy(&open.stderr)
    );
    std::fs::write(dir.path().join("short"), "secret\n").expect("write");
    let short = run(&["--listen", "0.0.0.0:0", "--token-file", "short"]);
    assert_eq!(short.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 32 characters"));
    // On loopback, no token is needed: it gets as far as the (missing) network file.
    let local = run(&["--listen", "127.0.0.1:0", "--network", "missing.json"]);
    assert_ne!(local.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&local.stderr).contains("missing.json"));
}
