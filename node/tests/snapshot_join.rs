//! A validator that joins late starts from a state snapshot, not from genesis: four validators,
//! one absent from the start while the others commit a chain of real transactions (an account
//! opened, then one issuer's mint into it per block); the absent one then starts on an empty
//! directory, fetches the newest snapshot, checks it against its checkpoint certificate, catches
//! up by state transfer from the snapshot's height, and orders and executes new blocks with the
//! others — with another validator stopped, so the network needs it — reaching the same state
//! roots.

use shoji_client::{Client, Network};
use std::time::{Duration, Instant};

mod common;
use common::{account_txs_through, runtime, Fixture, Minter};

/// Blocks committed before the late validator starts (each holds one mint).
const BLOCKS: u64 = 2_000;

/// A snapshot every this many blocks.
const SNAPSHOT_EVERY: u64 = 256;

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn status(network: &Network, id: u16) -> Option<shoji_client::api::Status> {
    let mut one = network.clone();
    one.addrs.retain(|(i, _)| i.0 == id);
    Client::connect(&one, None).ok()?.status().ok()
}

#[test]
fn a_late_validator_starts_from_a_snapshot_and_then_orders_like_the_others() {
    let fixture = Fixture::with_accounts();
    let runtime = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut net, socket) = {
        let _guard = runtime.enter();
        shoji_node::devnet::start_without_snapshotting(
            4,
            fixture.ledger.clone(),
            fixture.verifier.clone(),
            dir.path(),
            3,
            &shoji_node::devnet::History {
                snapshot_every: SNAPSHOT_EVERY,
                ..Default::default()
            },
        )
        .expect("devnet")
    };
    let network = net.client_network(fixture.auditor.public_key(), fixture.ledger.issuers.clone());
    let client = Client::connect(&network, Some(0)).expect("connect");
    let mut minter = Minter::open(&client, &fixture.issuer, 1);
    let mut mint = || minter.mint();
    let (mut height, mut before_late) = (0, 0u64);
    while height < BLOCKS {
        height = mint();
        before_late += 1;
    }
    // Each validator wrote its snapshots; the newest is certified once the chain passes it.
    let top = height - height % SNAPSHOT_EVERY;
    wait_for(
        "the snapshot to be written",
        Duration::from_secs(60),
        || {
            dir.path()
                .join("validator-0/snapshots")
                .join(top.to_string())
                .join("manifest")
                .exists()
        },
    );

    // Validator 3 starts on an empty directory.
    let synced = net
        .start_late(3, socket, dir.path(), fixture.verifier.clone())
        .expect("start late");
    let shoji_node::snapshots::Synced::From {
        height: from,
        refused,
    } = synced
    else {
        panic!("validator 3 did not start from a snapshot: {synced:?}");
    };
    assert!(
        from >= top - SNAPSHOT_EVERY && from <= height,
        "from {from}, chain at {height}"
    );
    assert!(refused.is_empty(), "{refused:?}");
    let store_dir = dir.path().join("validator-3");
    // It holds no block at or below the snapshot: it did not replay.
    wait_for("validator 3 to catch up", Duration::from_secs(120), || {
        status(&network, 3).is_some_and(|s| s.height >= height)
    });

    // A client of validator 3 alone reads the blocks below its snapshot from the history archive
    // the others wrote, and checks them against the certified scan chain as it checks a
    // validator's; without the archive it is told where the validator's blocks start.
    let archive_url = network
        .archive
        .clone()
        .expect("the devnet names its archive");
    let archive = shoji_client::archive::Archive::open(&archive_url).expect("archive");
    wait_for(
        "the archive to reach the snapshot",
        Duration::from_secs(60),
        || runtime.block_on(archive.head()).is_ok_and(|h| h >= from),
    );
    let mut only3 = network.clone();
    only3.addrs.retain(|(i, _)| i.0 == 3);
    let scan = |net: &Network| account_txs_through(net, height);
    // The opening and every mint.
    assert_eq!(
        scan(&only3).expect("scanned through the archive"),
        1 + before_late
    );
    let mut no_archive = only3.clone();
    no_archive.archive = None;
    assert!(matches!(
        scan(&no_archive),
        Err(shoji_client::ClientError::NotKept { first, .. }) if first == from + 1
    ));
    // An archived block altered in storage is refused.
    let object = dir.path().join(format!("archive/compact/{:020}", 5));
    let mut bytes = std::fs::read(&object).expect("archived block 5");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&object, bytes).expect("write");
    assert!(matches!(
        scan(&only3),
        Err(shoji_client::ClientError::Archive(_))
    ));

    // Validator 2 stops: the network now needs validator 3 to order anything.
    assert!(net.stop(2));
    let mut last = height;
    for _ in 0..20 {
        last = mint();
    }
    assert!(last > height);
    wait_for(
        "validators 0 and 3 to agree",
        Duration::from_secs(60),
        || match (status(&network, 0), status(&network, 3)) {
            (Some(a), Some(b)) => {
                a.height >= last && a.height == b.height && a.state_root == b.state_root
            }
            _ => false,
        },
    );
    drop(client);
    // The joined store started at the snapshot's height: it holds no block at or below it.
    assert!(net.stop(3));
    let path = store_dir.join("node.redb");
    let mut store = None;
    wait_for(
        "validator 3 to close its store",
        Duration::from_secs(30),
        || {
            store = shoji_store::Store::open(&path).ok();
            store.is_some()
        },
    );
    let store = store.expect("opened");
    assert_eq!(store.base().expect("base").map(|b| b.0), Some(from));
    assert!(store.block(from).expect("read").is_none());
    assert!(store.block(from + 1).expect("read").is_some());
}
