//! The `shoji-node devnet` binary: it starts, writes its network description, and serves a
//! client at the address and key it published.

use shoji_net::ClientConnection;
use shoji_node::api::{Request, Response};
use std::time::{Duration, Instant};

struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_binary_serves_clients() {
    shoji_params::dev::parameters().expect("development parameters in the cache");
    let dir = tempfile::tempdir().expect("tempdir");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_shoji-node"))
        .args(["devnet", "--dir"])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn shoji-node");
    let _guard = Kill(child);
    let info_path = dir.path().join("devnet.json");
    let start = Instant::now();
    while !info_path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "devnet.json not written"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&info_path).expect("read")).expect("json");
    let validators = info["validators"].as_array().expect("validators");
    assert_eq!(validators.len(), 4);
    let addr: std::net::SocketAddr = validators[0]["addr"]
        .as_str()
        .expect("addr")
        .parse()
        .expect("socket address");
    let key_bytes = shoji_primitives::encoding::hex_decode(
        "key",
        validators[0]["public_key"].as_str().expect("key"),
    )
    .expect("hex");
    let key = shoji_consensus::ed25519_dalek::VerifyingKey::from_bytes(
        &key_bytes.try_into().expect("32 bytes"),
    )
    .expect("key");
    let client = ClientConnection::connect(addr, &key)
        .await
        .expect("connect");
    let answer = Response::decode(
        &client
            .request(&Request::TreeState.encode())
            .await
            .expect("request"),
    )
    .expect("response");
    assert!(
        matches!(
            answer,
            Response::TreeState {
                height: 0,
                size: 0,
                ..
            }
        ),
        "{answer:?}"
    );
}
