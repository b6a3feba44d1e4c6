//! Validators that archive and prune: four validators copy every committed block to the
//! history archive and keep only the newest blocks' bodies. While the chain grows their stores
//! keep a bounded number of blocks; a client starting from height 1 (a wallet restored from its
//! phrase) reads the pruned heights from the archive, checked against the certified scan chain,
//! and finds every transaction; an archived block altered in storage is refused.
//!
//! The scenario runs twice: with the archive on the local file system, and in a bucket of a
//! real S3-protocol server on loopback (`s3s-fs`, which `scripts/services` installs and starts;
//! it names it in `SHOJI_TEST_S3_ENDPOINT`, `SHOJI_TEST_S3_BUCKET`, `SHOJI_TEST_S3_ACCESS_KEY`
//! and `SHOJI_TEST_S3_SECRET_KEY`).

use shoji_client::{Client, ClientError};
use std::time::{Duration, Instant};

mod common;
use common::{account_txs_through, runtime, Fixture, Minter};

/// Blocks committed (one mint each).
const BLOCKS: u64 = 600;

/// Block bodies each validator keeps (at least).
const KEEP: u64 = 64;

#[test]
fn validators_prune_what_they_archived_in_a_directory_and_clients_read_it_back() {
    prune_and_read_back(None);
}

#[test]
fn validators_prune_what_they_archived_in_an_s3_bucket_and_clients_read_it_back() {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} must be set: run scripts/check, which starts an S3 server for the tests")
        })
    };
    let (endpoint, bucket) = (var("SHOJI_TEST_S3_ENDPOINT"), var("SHOJI_TEST_S3_BUCKET"));
    // The S3 client reads its settings from the environment, as the AWS tools do; this test
    // is a process of its own.
    std::env::set_var("AWS_ENDPOINT", endpoint);
    std::env::set_var("AWS_ACCESS_KEY_ID", var("SHOJI_TEST_S3_ACCESS_KEY"));
    std::env::set_var("AWS_SECRET_ACCESS_KEY", var("SHOJI_TEST_S3_SECRET_KEY"));
    std::env::set_var("AWS_REGION", "us-east-1");
    std::env::set_var("AWS_ALLOW_HTTP", "true");
    // A prefix of its own, so that runs never share an archive.
    let run = blake3::hash(format!("{:?}", Instant::now()).as_bytes()).to_hex();
    prune_and_read_back(Some(format!("s3://{bucket}/pruning-{}", &run[..16])));
}

/// Flips the last byte of the object `name` of the archive at `url`.
fn alter(runtime: &tokio::runtime::Runtime, url: &str, name: &str) {
    use object_store::{ObjectStore, ObjectStoreExt};
    let parsed = url::Url::parse(url).expect("archive URL");
    let (store, root): (Box<dyn ObjectStore>, _) = match parsed.scheme() {
        "s3" => (
            Box::new(
                object_store::aws::AmazonS3Builder::from_env()
                    .with_url(url)
                    .build()
                    .expect("S3"),
            ),
            object_store::path::Path::parse(parsed.path()).expect("prefix"),
        ),
        _ => object_store::parse_url(&parsed).expect("archive"),
    };
    let path = name.split('/').fold(root, |p, part| p.join(part));
    runtime.block_on(async {
        let mut bytes = store
            .get(&path)
            .await
            .expect("archived")
            .bytes()
            .await
            .expect("read")
            .to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        store.put(&path, bytes.into()).await.expect("write");
    });
}

fn prune_and_read_back(archive: Option<String>) {
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
            &shoji_node::devnet::History {
                keep_blocks: KEEP,
                archive,
                ..Default::default()
            },
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
    // The archive checks against the network's certificates, height by height
    // (`shoji-node archive verify`): blocks, checkpoints with their openings, compact blocks.
    let url = network
        .archive
        .clone()
        .expect("the devnet names its archive");
    let archive = shoji_client::archive::Archive::open(&url).expect("archive");
    let client = Client::connect(&network, Some(1)).expect("connect");
    let head = runtime.block_on(archive.head()).expect("head");
    let check = client
        .verify_archive(&url, 1, u64::MAX, |_| ())
        .expect("the archive checks");
    assert_eq!((check.from, check.to, check.blocks), (1, head, head));
    assert!(check.checkpoints >= head / 64, "{check:?}");
    let contents = runtime.block_on(archive.contents()).expect("contents");
    assert_eq!(contents.blocks.count, contents.compact.count);
    assert_eq!(contents.checkpoints.count, check.checkpoints);
    // From the middle, starting from the archived checkpoint below.
    let middle = client
        .verify_archive(&url, head / 2, head, |_| ())
        .expect("the archive checks from its middle");
    assert_eq!(middle.blocks, head - head / 2 + 1);

    // An archived block or compact block altered in storage is refused, by the check and by a
    // client reading the pruned heights.
    alter(&runtime, &url, &format!("blocks/{:020}", 7));
    let refused = client.verify_archive(&url, 1, u64::MAX, |_| ());
    assert!(
        matches!(&refused, Err(ClientError::Archive(e)) if e.starts_with("height 7:")),
        "{refused:?}"
    );
    alter(&runtime, &url, &format!("blocks/{:020}", 7));
    alter(&runtime, &url, &format!("compact/{:020}", 5));
    let refused = client.verify_archive(&url, 1, u64::MAX, |_| ());
    assert!(
        matches!(&refused, Err(ClientError::Archive(e))
            if e.starts_with("height 5:") || e.contains("do not match")),
        "{refused:?}"
    );
    drop(client);
    assert!(matches!(
        account_txs_through(&network, height),
        Err(ClientError::Archive(_))
    ));

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
