//! The public event stream of a devnet: a consumer that reads a page at a time, reconnecting
//! to another validator for each page, sees exactly the events a consumer reading everything at
//! once sees (none missed, none twice, in order); a filter returns only its kinds; a consumer
//! waiting at the tip is answered when the next block commits.

use shoji_client::events::{Cursor, Event, EventBody, EventKind, PayloadKind, ALL_KINDS};
use shoji_client::{Client, Network};
use shoji_ledger::LedgerConfig;
use shoji_primitives::audit::AuditSecretKey;
use shoji_primitives::encryption::Memo;
use shoji_primitives::keys::{SpendingKeys, WalletSeed};
use shoji_primitives::note::{Amount, AssetId};
use shoji_primitives::tx::Transaction;
use shoji_prover::{Prover, TransferBuilder};
use shoji_verifier::Verifier;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

const USD: AssetId = AssetId(840);

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
    let prover = Prover::dev().expect("parameters");
    let verifier = Arc::new(Verifier::new(&prover.proving_key().vk));
    let auditor = AuditSecretKey::random(&mut rand_core::OsRng);
    let issuer = shoji_consensus::ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let issuers = BTreeMap::from([(issuer.verifying_key().to_bytes(), BTreeSet::from([USD]))]);
    let ledger = LedgerConfig {
        anchor_window_blocks: 100,
        auditor: auditor.public_key(),
        issuers: issuers.clone(),
        governance: Default::default(),
        network_id: [0; 32],
        validators: Default::default(),
        checkpoint_interval: 8,
        window_size: 16,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let net = {
        let _guard = runtime.enter();
        shoji_node::devnet::start(4, ledger, verifier, dir.path()).expect("devnet")
    };
    let network = Network {
        addrs: net
            .addrs
            .iter()
            .map(|(id, a)| (shoji_consensus::ReplicaId(*id), *a))
            .collect(),
        validators: net.validators.clone(),
        auditor: auditor.public_key(),
        issuers,
        assets: BTreeMap::new(),
        insecure: Some("development keys and parameters".into()),
        network_id: net.network_id,
        parameters: shoji_client::ParameterPins::development(),
    };
    let client = Client::connect(&network, Some(0)).expect("connect");
    let wallet = SpendingKeys::from_seed(&WalletSeed([9; 32]));
    let mint = |amount: u64| -> Transaction {
        let anchor = client.tree_state().expect("tree state").anchor;
        let mut b = TransferBuilder::mint(
            &wallet,
            USD,
            Amount(amount),
            anchor,
            auditor.public_key(),
            issuer.verifying_key().to_bytes(),
        );
        b.pay(wallet.address(), Amount(amount), Memo::empty())
            .expect("pay");
        b.network(network.network_id);
        b.build(&mut rand_core::OsRng)
            .expect("build")
            .prove(&prover, &mut rand_core::OsRng)
            .expect("prove")
            .sign_mint(&issuer)
            .expect("sign")
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
