//! The public event stream of a devnet: a consumer that reads a page at a time, reconnecting
//! to another validator for each page, sees exactly the events a consumer reading everything at
//! once sees (none missed, none twice, in order); a filter returns only its kinds; a consumer
//! waiting at the tip is answered when the next block commits.

use shoji_client::events::{Cursor, Event, EventBody, EventKind, PayloadKind, ALL_KINDS};
use shoji_client::{Client, Network};
use shoji_primitives::keys::{SpendingKeys, WalletSeed};
use shoji_primitives::tx::Transaction;
use std::time::{Duration, Instant};

mod common;
use common::Fixture;

/// Every event after `after` of `kinds`, `page` at a time, each page from a new connection to
/// the next validator in turn.
fn read_paged(network: &Network, after: Cursor, kinds: u8, page: u32) -> Vec<Event> {
    let mut all = Vec::new();
    let mut cursor = after;
    for turn in 0u16.. {
        let client = Client::connect(network, Some(turn % 4)).expect("connect");
        let (events, next) = client.events(cursor, kinds, page, 0).expect("events");
        if events.is_empty() && next == cursor {
            return all;
        }
        all.extend(events);
        cursor = next;
    }
    unreachable!()
}

#[test]
fn consumers_resume_from_their_cursor_and_miss_nothing() {
    let fixture = Fixture::new();
    let issuers = fixture.ledger.issuers.clone();
    let auditor = &fixture.auditor;
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
    let network = net.client_network(auditor.public_key(), issuers);
    let client = Client::connect(&network, Some(0)).expect("connect");
    let wallet = SpendingKeys::from_seed(&WalletSeed([9; 32]));
    let mint = |amount: u64| -> Transaction {
        let anchor = client.tree_state().expect("tree state").anchor;
        fixture.mint(&wallet, amount, anchor, network.network_id)
    };
    let mut minted = Vec::new();
    for amount in [1, 2, 3] {
        let tx = mint(amount);
        client.submit(&tx).expect("committed");
        minted.push(tx.id().0);
    }
    // After a commit the chain runs on with empty blocks to its next checkpoint: wait until it
    // rests, so that every reader below sees the same chain.
    let mut tip = client.tree_state().expect("tree state").height;
    loop {
        std::thread::sleep(Duration::from_millis(1500));
        let now = client.tree_state().expect("tree state").height;
        if now == tip {
            break;
        }
        tip = now;
    }

    // Everything at once, from one validator.
    let (all, next) = client
        .events(Cursor::START, ALL_KINDS, 10_000, 0)
        .expect("events");
    assert_eq!(next, all.last().expect("events").cursor);
    // Every height has its block event first; the three mints are there, applied, in order.
    let blocks: Vec<u64> = all
        .iter()
        .filter(|e| matches!(e.body, EventBody::Block { .. }))
        .map(|e| {
            assert_eq!(e.cursor.index, 0);
            e.cursor.height
        })
        .collect();
    assert_eq!(blocks, (1..=tip).collect::<Vec<_>>());
    // Block events chain by hash, and a stable checkpoint signs the hash at its height.
    let hashes: Vec<([u8; 32], [u8; 32])> = all
        .iter()
        .filter_map(|e| match e.body {
            EventBody::Block {
                hash, prev_hash, ..
            } => Some((hash, prev_hash)),
            _ => None,
        })
        .collect();
    for pair in hashes.windows(2) {
        assert_eq!(pair[1].1, pair[0].0, "block events chain");
    }
    let checkpoint = runtime.block_on(async {
        let key = net.key(0).expect("key");
        let c = shoji_net::ClientConnection::connect(net.addrs[&0], &key)
            .await
            .expect("connect");
        let req = shoji_node::api::Request::Certified {
            at_or_below: u64::MAX,
        };
        let bytes = c.request(&req.encode()).await.expect("certified");
        match shoji_node::api::Response::decode(&bytes).expect("response") {
            shoji_node::api::Response::Certified { checkpoint, .. } => {
                postcard::from_bytes::<shoji_consensus::CheckpointCertificate>(&checkpoint)
                    .expect("checkpoint")
            }
            other => panic!("{other:?}"),
        }
    });
    assert!(checkpoint.height >= 8, "a checkpoint is stable");
    let at = usize::try_from(checkpoint.height).expect("height") - 1;
    assert_eq!(
        hashes[at].0, checkpoint.block_hash.0,
        "the checkpoint signs it"
    );
    let mints: Vec<[u8; 32]> = all
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Transaction {
                txid,
                kind: PayloadKind::Mint,
                applied: true,
                reason: None,
            } => Some(*txid),
            _ => None,
        })
        .collect();
    assert_eq!(mints, minted);

    // Two at a time, reconnecting to another validator for each page: the same stream.
    let paged = read_paged(&network, Cursor::START, ALL_KINDS, 2);
    assert_eq!(paged, all);
    // Resuming from the middle gives the rest.
    let middle = all[all.len() / 2].cursor;
    assert_eq!(
        read_paged(&network, middle, ALL_KINDS, 3),
        all.iter()
            .filter(|e| e.cursor > middle)
            .cloned()
            .collect::<Vec<_>>()
    );
    // A filter returns its kinds only, and nothing of them is lost.
    let transactions = read_paged(&network, Cursor::START, EventKind::Transaction.bit(), 1);
    assert_eq!(
        transactions,
        all.iter()
            .filter(|e| e.body.kind() == EventKind::Transaction)
            .cloned()
            .collect::<Vec<_>>()
    );

    // A consumer at the tip waits, and is answered when the next block commits.
    let last = all.last().expect("events").cursor;
    let waiter = {
        let network = network.clone();
        std::thread::spawn(move || {
            let c = Client::connect(&network, Some(2)).expect("connect");
            let started = Instant::now();
            let answer = c.events(last, ALL_KINDS, 100, 20_000).expect("events");
            (answer, started.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let fourth = mint(4);
    client.submit(&fourth).expect("committed");
    let ((events, _), waited) = waiter.join().expect("waiter");
    assert!(waited < Duration::from_secs(15), "waited {waited:?}");
    assert!(
        matches!(events.first(), Some(Event { body: EventBody::Block { .. }, cursor }) if cursor.height == last.height + 1),
        "{events:?}"
    );
    assert!(events.iter().any(|e| matches!(
        &e.body,
        EventBody::Transaction { txid, .. } if *txid == fourth.id().0
    )));
    drop(client);
    runtime.shutdown_timeout(Duration::from_secs(1));
}
