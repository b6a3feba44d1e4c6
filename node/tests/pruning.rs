//! Validators that archive and prune: four validators copy every committed block to the
//! history archive and keep only the newest blocks' bodies. While the chain grows their stores
//! keep a bounded number of blocks; a client starting from height 1 (a wallet restored from its
//! phrase) reads the pruned heights from the archive, checked against the certified scan chain,
//! and finds every transaction.

use shoji_client::{Client, ClientError};
use std::time::{Duration, Instant};

mod common;
use common::{account_txs_through, runtime, Fixture, Minter};

/// Blocks committed (one mint each).
const BLOCKS: u64 = 600;

/// Block bodies each validator keeps (at least).
const KEEP: u64 = 64;

#[test]
fn validators_prune_what_they_archived_and_clients_read_it_back() {
    let fixture = Fixture::with_accounts();
    let runtime = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    // Five validators, the fifth never started: four run, as in a network missing one.
    let (net, _socket) = {
        let _guard = runtime.enter();
        shoji_node::devnet::start_without_snapshotting(
            5,
            fixture.ledger.clone(),
            fixture.verifier.clone(),
            dir.path(),
            4,
            0,
            KEEP,
        )
        .expect("devnet")
    };
    let network = net.client_network(fixture.auditor.public_key(), fixture.ledger.issuers.clone());
    let client = Client::connect(&network, Some(0)).expect("connect");
    let mut minter = Minter::open(&client, &fixture.issuer, 1);
    let mut height = 0;
    while height < BLOCKS {
        height = minter.mint();
    }
    let minted = minter.minted;
    drop(client);

    // Every validator says where its blocks start: not at 1, and within the window.
    let mut one = network.clone();
    one.archive = None;
    let start = Instant::now();
    loop {
        let kept = match account_txs_through(&one, height) {
            Err(ClientError::NotKept { first, .. }) if first + KEEP + 64 >= height => break,
            Err(ClientError::NotKept { first, .. }) => format!("from {first}"),
            Ok(_) => "every block".to_string(),
            Err(e) => panic!("{e}"),
        };
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "pruning stays behind: blocks kept {kept} at height {height}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A client from height 1 (a wallet restored from its phrase) finds every transaction, the
    // pruned ones in the archive.
    assert_eq!(
        account_txs_through(&network, height).expect("scanned"),
        1 + minted
    );

    // Stopped, a validator's store holds a bounded number of blocks.
    assert!(net.stop(0));
    let path = dir.path().join("validator-0/node.redb");
    let start = Instant::now();
    let store = loop {
        if let Ok(s) = shoji_store::Store::open(&path) {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "validator 0 kept its store open"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let (base, _) = store.base().expect("base").expect("pruned");
    let tip = store.height().expect("height");
    assert!(tip - base <= KEEP + 64 + 8, "{} blocks kept", tip - base);
    assert!(store.block(base).expect("read").is_none());
    assert!(store.block(base + 1).expect("read").is_some());
    assert!(store.load().expect("load").is_some());
}
