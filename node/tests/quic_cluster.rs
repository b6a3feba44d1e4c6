//! Four validators over real QUIC on loopback, each in its own task: a client submits a proven
//! mint to one of them and gets back the block and a commit certificate it checks against the
//! genesis validator set; every validator reports the same tree afterwards; garbage, a replayed
//! transaction, a double spend raced through two validators at once and a transaction on an
//! unknown anchor are refused with a reason.

use rand_core::{RngCore, SeedableRng};
use shoji_consensus::{verify_commit_certificate_for, BlockSummary, CommitCertificate};
use shoji_net::ClientConnection;
use shoji_node::api::{Request, Response};
use shoji_primitives::audit::AuditSecretKey;
use shoji_primitives::encoding::fr_to_bytes;
use shoji_primitives::encryption::Memo;
use shoji_primitives::keys::{SpendingKeys, WalletSeed};
use shoji_primitives::note::Amount;
use shoji_primitives::tree::{Frontier, IncrementalWitness};
use shoji_prover::{Prover, SpendableNote, TransferBuilder};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

mod common;
use common::{Fixture, USD};

async fn ask(client: &ClientConnection, req: &Request) -> Response {
    let bytes = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        client.request(&req.encode()),
    )
    .await
    .expect("answer within 60 s")
    .expect("request");
    Response::decode(&bytes).expect("response")
}

/// Submits `tx`, as a well-behaved client does when a validator limits its request rate: a
/// request refused with `RATE_LIMITED` (before the validator read it) is sent again after a
/// pause. A fast machine answers this file's heaviest load quicker than one connection may
/// send (`NetConfig::client_requests_per_second`).
async fn submit_within_rate(client: &ClientConnection, tx: Vec<u8>) -> Response {
    let req = Request::Submit { tx }.encode();
    for _ in 0..200 {
        let answer = tokio::time::timeout(std::time::Duration::from_secs(60), client.request(&req))
            .await
            .expect("answer within 60 s");
        match answer {
            Ok(bytes) => return Response::decode(&bytes).expect("response"),
            Err(e)
                if format!("{e:?}")
                    .contains(&format!("Reset({})", shoji_net::codes::RATE_LIMITED)) =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            Err(e) => panic!("request: {e:?}"),
        }
    }
    panic!("rate-limited 200 times in a row")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_over_quic_and_check_the_certificate() {
    let mut rng = rand_core::OsRng;
    let Fixture {
        prover,
        verifier,
        auditor,
        issuer,
        dir,
        ledger,
    } = Fixture::new();
    let net = shoji_node::devnet::start(4, ledger, verifier, dir.path()).expect("local network");
    let (addrs, validators) = (net.addrs.clone(), net.validators.clone());
    let network_id = net.network_id;
    let key = |i: u16| net.key(i).expect("validator key");

    let client = ClientConnection::connect(addrs[&1], &key(1))
        .await
        .expect("connect");
    let Response::TreeState {
        anchor, size: 0, ..
    } = ask(&client, &Request::TreeState).await
    else {
        panic!("tree state")
    };

    let wallet = SpendingKeys::from_seed(&WalletSeed([9; 32]));
    let alice_keys = SpendingKeys::from_seed(&WalletSeed([10; 32]));
    let alice = alice_keys.address();
    let anchor = shoji_primitives::encoding::fr_from_bytes("anchor", &anchor).expect("anchor");
    // A mint of `amount` to Alice under `anchor`, and the notes it creates.
    let mint_to_alice = |amount: u64, anchor, rng: &mut rand_core::OsRng| {
        let mut b = TransferBuilder::mint(
            &wallet,
            USD,
            Amount(amount),
            anchor,
            auditor.public_key(),
            issuer.verifying_key().to_bytes(),
        );
        b.pay(alice, Amount(amount), Memo::empty()).expect("pay");
        b.network(network_id);
        let unproven = b.build(rng).expect("build");
        let notes = unproven.output_notes();
        let tx = unproven
            .prove(&prover, rng)
            .expect("prove")
            .sign_mint(&issuer)
            .expect("sign");
        (tx, notes)
    };
    let (mint, minted) = mint_to_alice(1000, anchor, &mut rng);

    assert!(matches!(
        ask(&client, &Request::Submit { tx: vec![1, 2, 3] }).await,
        Response::Refused(_)
    ));

    let Response::Committed {
        height,
        applied: true,
        summary,
        certificate,
        ..
    } = ask(
        &client,
        &Request::Submit {
            tx: mint.to_bytes(),
        },
    )
    .await
    else {
        panic!("committed")
    };
    let summary: BlockSummary = postcard::from_bytes(&summary).expect("summary");
    let cert: CommitCertificate = postcard::from_bytes(&certificate).expect("certificate");
    assert_eq!(summary.height, height);
    assert!(summary.contains(&mint.to_bytes()));
    verify_commit_certificate_for(&validators, height, summary.hash(), &cert)
        .expect("certificate verifies against genesis");
    // A summary without the transaction is another block: the certificate does not cover it.
    let mut forged = summary.clone();
    forged.tx_hashes.clear();
    assert!(verify_commit_certificate_for(&validators, height, forged.hash(), &cert).is_err());

    // Every validator converges on the same tree.
    let mut everyone = Vec::new();
    for i in 0..4u16 {
        let c = ClientConnection::connect(addrs[&i], &key(i)).await;
        everyone.push(c.expect("connect"));
    }
    same_tree_everywhere(&everyone, 2).await;

    // Replayed: refused as a double spend.
    let Response::Refused(reason) = ask(
        &client,
        &Request::Submit {
            tx: mint.to_bytes(),
        },
    )
    .await
    else {
        panic!("refused")
    };
    assert!(reason.contains("double spend"), "{reason}");

    // A live validator fed garbage: random bytes, mutated requests and mutated transactions
    // (shielded and governance), many at once. Every one is answered, none is admitted, and
    // the validator keeps serving.
    let mut fuzz = rand_chacha::ChaCha20Rng::seed_from_u64(11);
    let submit = Request::Submit {
        tx: mint.to_bytes(),
    }
    .encode();
    let mut governance = shoji_primitives::governance::GovernanceTx::new(
        0,
        shoji_primitives::governance::GovernanceAction::SetAuditor {
            auditor: auditor.public_key(),
        },
    );
    governance.approve(&shoji_node::devnet::dev_admin_key(0), &[0; 32]);
    let samples: Vec<Vec<u8>> = vec![
        submit.clone(),
        Request::Submit {
            tx: governance.to_bytes(),
        }
        .encode(),
        Request::CompactBlocks {
            from_height: 1,
            max: 5,
        }
        .encode(),
        Request::Status.encode(),
    ];
    let mut inputs = Vec::new();
    for round in 0..600usize {
        let mut b = if round % 3 == 0 {
            let mut r = vec![0u8; (fuzz.next_u32() % 300) as usize];
            fuzz.fill_bytes(&mut r);
            r
        } else {
            samples[round % samples.len()].clone()
        };
        for _ in 0..1 + fuzz.next_u32() % 3 {
            if b.is_empty() {
                break;
            }
            let i = (fuzz.next_u32() as usize) % b.len();
            match fuzz.next_u32() % 3 {
                0 => b[i] ^= 1 << (fuzz.next_u32() % 8),
                1 => b.truncate(i),
                _ => b.insert(i, fuzz.next_u32() as u8),
            }
        }
        inputs.push(b);
    }
    let fuzz_client = Arc::new(
        ClientConnection::connect(addrs[&2], &key(2))
            .await
            .expect("connect"),
    );
    let answered = send_all(fuzz_client, inputs).await;
    assert_eq!(answered.len(), 600);
    for (input, answer) in &answered {
        let response = Response::decode(answer)
            .unwrap_or_else(|e| panic!("undecodable answer ({e}) to {input:?}"));
        assert!(
            !matches!(response, Response::Committed { applied: true, .. }),
            "a mutated request was applied: {input:?}"
        );
    }
    assert!(matches!(
        ask(&client, &Request::TreeState).await,
        Response::TreeState { size: 2, .. }
    ));
    assert!(matches!(
        ask(&client, &Request::Status).await,
        Response::Status(_)
    ));

    // A double spend raced through two validators: two different transfers of Alice's note,
    // one submitted to validator 0 and one to validator 3 at the same time. Neither validator
    // has seen the nullifier, so both may pass admission; the ledger applies the first in block
    // order and marks the other invalid, and each sender is told which happened to its own.
    let mut tree = Frontier::new();
    let mut owned = None;
    for note in minted {
        if note.value == Amount(1000) {
            let (w, _) = IncrementalWitness::append(&mut tree, note.commitment()).expect("room");
            owned = Some((note, w));
        } else {
            let completed = tree.append(note.commitment()).expect("room");
            if let Some((_, w)) = owned.as_mut() {
                w.observe(&completed);
            }
        }
    }
    let (note, witness) = owned.expect("Alice's note");
    let Response::TreeState { anchor, .. } = ask(&client, &Request::TreeState).await else {
        panic!("tree state")
    };
    assert_eq!(
        fr_to_bytes(&tree.root()),
        anchor,
        "our tree is the ledger's"
    );
    let mut pay = |to: u8, amount: u64| {
        let mut b = TransferBuilder::transfer(&alice_keys, USD, tree.root(), auditor.public_key());
        b.spend(SpendableNote {
            note,
            path: witness.path(&tree).expect("path"),
        })
        .expect("spend");
        let to = SpendingKeys::from_seed(&WalletSeed([to; 32])).address();
        b.pay(to, Amount(amount), Memo::empty()).expect("pay");
        b.network(network_id);
        b.build(&mut rng)
            .expect("build")
            .prove(&prover, &mut rng)
            .expect("prove")
            .into_transaction()
            .expect("transfer")
    };
    let (to_bob, to_carol) = (pay(11, 300), pay(12, 700));
    let spent = to_bob.bundle().nullifiers;
    assert!(
        spent
            .iter()
            .any(|nf| to_carol.bundle().nullifiers.contains(nf)),
        "the two transfers reveal the note's nullifier"
    );
    let (bob_req, carol_req) = (
        Request::Submit {
            tx: to_bob.to_bytes(),
        },
        Request::Submit {
            tx: to_carol.to_bytes(),
        },
    );
    let answers = {
        let (a, b) = tokio::join!(ask(&everyone[0], &bob_req), ask(&everyone[3], &carol_req));
        [a, b]
    };
    let mut applied = 0;
    for answer in &answers {
        match answer {
            Response::Committed { applied: true, .. } => applied += 1,
            Response::Committed {
                applied: false,
                reason: Some(reason),
                ..
            }
            | Response::Refused(reason) => {
                assert!(reason.contains("double spend"), "{reason}")
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(
        applied, 1,
        "exactly one of the two spends applies: {answers:?}"
    );

    // A transaction built on a root the ledger never had: refused, naming the anchor.
    let (stale, _) = mint_to_alice(5, shoji_primitives::Fr::from(12_345u64), &mut rng);
    let Response::Refused(reason) = ask(
        &everyone[3],
        &Request::Submit {
            tx: stale.to_bytes(),
        },
    )
    .await
    else {
        panic!("a transaction on an unknown anchor was not refused")
    };
    assert!(reason.contains("anchor"), "{reason}");

    // Every validator ends with the same tree: the mint's two leaves and one transfer's two.
    same_tree_everywhere(&everyone, 4).await;
}

/// Waits until every validator's tree holds `size` commitments, and checks that they all have
/// the same root.
async fn same_tree_everywhere(validators: &[ClientConnection], size: u64) {
    let mut roots = BTreeSet::new();
    for (i, c) in validators.iter().enumerate() {
        let mut state = ask(c, &Request::TreeState).await;
        for _ in 0..100 {
            if matches!(state, Response::TreeState { size: s, .. } if s == size) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            state = ask(c, &Request::TreeState).await;
        }
        match state {
            Response::TreeState {
                anchor, size: s, ..
            } if s == size => roots.insert(anchor),
            other => panic!("validator {i} does not hold {size} commitments: {other:?}"),
        };
    }
    assert_eq!(roots.len(), 1, "the validators' trees differ");
}

/// Sends every input, 64 at a time concurrently, and returns each with its raw answer.
async fn send_all(client: Arc<ClientConnection>, inputs: Vec<Vec<u8>>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for chunk in inputs.chunks(64) {
        let mut set = tokio::task::JoinSet::new();
        for input in chunk.iter().cloned() {
            let client = client.clone();
            set.spawn(async move {
                let answer = tokio::time::timeout(
                    std::time::Duration::from_secs(60),
                    client.request(&input),
                )
                .await
                .expect("answer within 60 s")
                .expect("the validator answers garbage");
                (input, answer)
            });
        }
        while let Some(r) = set.join_next().await {
            out.push(r.expect("task"));
        }
    }
    out
}

/// A member that relays junk cannot halt the network (issue: blocks and queues bounded in
/// bytes and content). Validator 3 is a faulty double holding its real key: over and over it
/// sends every honest validator bursts of signed `Requests` of 40 payloads of 60 KB that are
/// not transactions. Before validators checked what they queue and capped a block's bytes, a
/// leader whose blocks in flight were full proposed one of 80 or more such payloads, past the
/// transport's 4 MiB frame limit: nobody received it, view after view, while the queues grew by
/// megabytes a second. Now the junk is refused on
/// arrival; mints submitted to the honest validators keep committing and their queues stay
/// empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_relaying_junk_cannot_halt_the_network() {
    use shoji_consensus::{Message, ReplicaId, SignedMessage};

    let (doubled, double) = Doubled::new();
    let (net, keys) = (&doubled.net, &doubled.keys);
    let byzantine_key = shoji_node::devnet::dev_validator_key(3);
    let endpoint = Arc::new(double);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let drain = {
        let endpoint = endpoint.clone();
        tokio::spawn(async move { while endpoint.recv().await.is_some() {} })
    };
    let attack = {
        let (endpoint, stop) = (endpoint.clone(), stop.clone());
        let validators = net.validators.clone();
        tokio::spawn(async move {
            let mut junk = rand_chacha::ChaCha20Rng::seed_from_u64(13);
            // Bursts of six relays: a leader proposes the first four at once (its blocks in
            // flight), and the rest wait to make one block of 80 or more payloads.
            for _round in 0..60 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                for _ in 0..6 {
                    let payloads: Vec<Vec<u8>> = (0..40)
                        .map(|_| {
                            let mut p = vec![0u8; 60_000];
                            junk.fill_bytes(&mut p);
                            p
                        })
                        .collect();
                    let msg = SignedMessage::sign(
                        &validators,
                        ReplicaId(3),
                        Message::Requests(payloads),
                        &byzantine_key,
                    );
                    let bytes = shoji_node::wire::consensus(&msg.encode());
                    for peer in 0..3u16 {
                        endpoint.send(peer, bytes.clone()).expect("queued");
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
            }
        })
    };
    // Let the junk arrive before the first honest transaction.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;

    let mut clients = Vec::new();
    for i in 0..3u16 {
        let c = ClientConnection::connect(net.addrs[&i], &keys[&i]).await;
        clients.push(c.expect("connect"));
    }
    let Response::TreeState { anchor, .. } = ask(&clients[0], &Request::TreeState).await else {
        panic!("tree state")
    };
    let anchor = shoji_primitives::encoding::fr_from_bytes("anchor", &anchor).expect("anchor");
    for (i, client) in clients.iter().enumerate() {
        let mint = doubled.mint(10 + i as u64, anchor);
        let submit = Request::Submit {
            tx: mint.to_bytes(),
        };
        let answer = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            client.request(&submit.encode()),
        )
        .await
        .unwrap_or_else(|_| panic!("mint {i} not committed within 30 s under the junk"))
        .expect("request");
        assert!(
            matches!(
                Response::decode(&answer).expect("response"),
                Response::Committed { applied: true, .. }
            ),
            "mint {i} was not applied"
        );
        // Memory stays bounded: no junk waits in any honest validator's queue.
        for (j, c) in clients.iter().enumerate() {
            let Response::Status(status) = ask(c, &Request::Status).await else {
                panic!("status")
            };
            assert!(
                status.pending <= 1,
                "validator {j} queues {} requests",
                status.pending
            );
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    attack.await.expect("attacker");
    drain.abort();
    same_tree_everywhere(&clients, 6).await;
}

/// What these tests start from: the prover and its verifier, a random auditor, an issuer of
/// USD, a directory for the validators' databases, and the ledger of those.
/// Validators 0 to 2 of a four-validator network, and a faulty double of validator 3: an
/// endpoint at validator 3's address holding its real key, for a test to drive. Start it in a
/// Tokio runtime.
struct Doubled {
    prover: Prover,
    auditor: AuditSecretKey,
    issuer: shoji_consensus::ed25519_dalek::SigningKey,
    /// The validators' directory, removed when dropped.
    _dir: tempfile::TempDir,
    net: shoji_node::devnet::LocalNetwork,
    /// Every validator's key, by id.
    keys: BTreeMap<u16, shoji_consensus::ed25519_dalek::VerifyingKey>,
}

impl Doubled {
    /// A proven, signed mint of `amount` USD to a fixed wallet, under `anchor`.
    fn mint(&self, amount: u64, anchor: shoji_primitives::Fr) -> shoji_primitives::tx::Transaction {
        let mut rng = rand_core::OsRng;
        let minter = SpendingKeys::from_seed(&WalletSeed([9; 32]));
        let alice = SpendingKeys::from_seed(&WalletSeed([10; 32])).address();
        let mut b = TransferBuilder::mint(
            &minter,
            USD,
            Amount(amount),
            anchor,
            self.auditor.public_key(),
            self.issuer.verifying_key().to_bytes(),
        );
        b.pay(alice, Amount(amount), Memo::empty()).expect("pay");
        b.network(self.net.network_id);
        b.build(&mut rng)
            .expect("build")
            .prove(&self.prover, &mut rng)
            .expect("prove")
            .sign_mint(&self.issuer)
            .expect("sign")
    }

    /// The network without validator 3, and the double's endpoint.
    fn new() -> (Doubled, shoji_net::ValidatorEndpoint) {
        let Fixture {
            prover,
            verifier,
            auditor,
            issuer,
            dir,
            ledger,
        } = Fixture::new();
        let (net, socket) = shoji_node::devnet::start_without(4, ledger, verifier, dir.path(), 3)
            .expect("local network");
        let keys: BTreeMap<u16, _> = (0..4u16).map(|i| (i, net.key(i).expect("key"))).collect();
        let double = shoji_net::ValidatorEndpoint::from_socket(
            shoji_net::Identity::new(&shoji_node::devnet::dev_validator_key(3)).expect("identity"),
            socket,
            keys.clone(),
            net.addrs.clone(),
            shoji_net::NetConfig::default(),
        )
        .expect("endpoint");
        let doubled = Doubled {
            prover,
            auditor,
            issuer,
            _dir: dir,
            net,
            keys,
        };
        (doubled, double)
    }
}

/// Every wallet or auditor command is one `Client` session. The client used to drop its
/// runtime before its close left, so each finished session held one of the validator's 1,024
/// connection slots until the idle timeout (30 s): 1,100 quick sessions locked everyone out.
/// Now a dropped client closes its connection, and every session is served by the validator
/// it asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eleven_hundred_quick_client_sessions_are_all_served() {
    let Fixture {
        verifier,
        auditor,
        dir,
        ledger,
        ..
    } = Fixture::new();
    let net = shoji_node::devnet::start(4, ledger, verifier, dir.path()).expect("local network");
    // A network file naming validator 0 alone: no failover hides a refusal.
    let network = shoji_client::Network {
        validators: net.validators.clone(),
        addrs: vec![(shoji_consensus::ReplicaId(0), net.addrs[&0])],
        auditor: auditor.public_key(),
        account_auditor: None,
        issuers: BTreeMap::new(),
        assets: BTreeMap::new(),
        insecure: Some("test".into()),
        network_id: net.network_id,
        parameters: shoji_client::ParameterPins::development(),
        archive: None,
    };
    // Ten commands at a time, 110 each; a closed session takes a few tens of milliseconds to
    // drain, so they overlap.
    let mut sessions = tokio::task::JoinSet::new();
    for t in 0..10 {
        let network = network.clone();
        sessions.spawn_blocking(move || {
            for i in 0..110 {
                let client = shoji_client::Client::connect(&network, Some(0))
                    .unwrap_or_else(|e| panic!("session {t}.{i} refused: {e}"));
                client
                    .status()
                    .unwrap_or_else(|e| panic!("session {t}.{i} not served: {e}"));
            }
        });
    }
    while let Some(done) = sessions.join_next().await {
        done.expect("every session served");
    }
}

/// Issue 13, part 2: the leader dies while blocks are full, and a new view takes over. Before,
/// a VIEW-CHANGE carried every prepared block and a NEW-VIEW a quorum of them, so a crash with
/// a few full blocks in flight made a NEW-VIEW above the transport's 4 MiB frame limit, which
/// was dropped, view after view (see the consensus test
/// `a_view_change_after_a_window_of_full_blocks_fits_a_frame_and_commits_them` for the sizes).
/// Here four validators order payloads of 1 KiB (blocks of 256 of them) sent through 21
/// connections to validators 1 to 3, 2,688 at a time; once 4,000 have committed, and while six blocks or
/// more are committed above the stable checkpoint (all of them in every VIEW-CHANGE's prepared
/// set), validator 0, the leader, is stopped. Every payload is still committed, through a view
/// that validators 1 to 3 install.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_dies_while_blocks_are_full_and_the_next_view_commits_everything() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    const PAYLOADS: usize = 16_128;
    const IN_FLIGHT: usize = 128;
    const CONNECTIONS: usize = 7;

    let Fixture {
        verifier,
        dir,
        ledger,
        ..
    } = Fixture::new();
    let net = shoji_node::devnet::start_with(4, ledger, verifier, dir.path(), true)
        .expect("local network");
    let mut connections = Vec::new();
    for i in 1..4u16 {
        let key = net.key(i).expect("key");
        for _ in 0..CONNECTIONS {
            // A request waits through the view change under a full load: give it the minute
            // `submit_within_rate` allows, not the transport's default ten seconds.
            let config = shoji_net::NetConfig {
                stream_timeout: std::time::Duration::from_secs(60),
                ..Default::default()
            };
            let c = ClientConnection::connect_with(net.addrs[&i], &key, config)
                .await
                .expect("connect");
            connections.push(Arc::new(c));
        }
    }
    let committed = Arc::new(AtomicUsize::new(0));
    let mut load = tokio::task::JoinSet::new();
    let per_connection = PAYLOADS / connections.len();
    for (c, client) in connections.iter().enumerate() {
        let (client, committed) = (client.clone(), committed.clone());
        load.spawn(async move {
            let mut answers = Vec::new();
            let mut batch = tokio::task::JoinSet::new();
            for k in 0..per_connection {
                let mut tx = format!("payload-{c}-{k}-").into_bytes();
                tx.resize(shoji_node::MAX_OPAQUE_BYTES, b'.');
                let client = client.clone();
                let committed = committed.clone();
                batch.spawn(async move {
                    let answer = submit_within_rate(&client, tx).await;
                    if matches!(answer, Response::Committed { .. }) {
                        committed.fetch_add(1, Ordering::Relaxed);
                    }
                    answer
                });
                if batch.len() >= IN_FLIGHT {
                    answers.push(batch.join_next().await.expect("one").expect("task"));
                }
            }
            while let Some(a) = batch.join_next().await {
                answers.push(a.expect("task"));
            }
            answers
        });
    }
    while committed.load(Ordering::Relaxed) < 4_000 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // Stop the leader when many committed blocks sit above the stable checkpoint: every one of
    // them is in each VIEW-CHANGE's prepared set.
    let watcher = &connections[0];
    loop {
        let Response::Status(status) = ask(watcher, &Request::Status).await else {
            panic!("status")
        };
        if status.height >= status.stable_checkpoint + 6 {
            break;
        }
    }
    assert!(net.stop(0), "validator 0 runs");
    let stopped_at = committed.load(Ordering::Relaxed);

    let mut fullest = 0;
    let mut answers = 0;
    while let Some(r) = load.join_next().await {
        for answer in r.expect("load task") {
            answers += 1;
            match answer {
                Response::Committed { summary, .. } => {
                    let summary: BlockSummary = postcard::from_bytes(&summary).expect("summary");
                    fullest = fullest.max(summary.tx_hashes.len());
                }
                other => panic!("a payload was not committed: {other:?}"),
            }
        }
    }
    assert_eq!(answers, per_connection * connections.len());
    assert!(
        stopped_at < answers,
        "the leader stopped before the load ended"
    );
    assert_eq!(fullest, 256, "blocks were full");
    // Each of the others is in a view led by one of them. (A view change may be running when
    // asked: on a loaded machine an idle leader can be slow to close its checkpoint, and every
    // fourth view is the stopped validator's. It must end in such a view.)
    for i in 1..4u16 {
        let client = &connections[(i as usize - 1) * CONNECTIONS];
        let mut last = None;
        for _ in 0..400 {
            let Response::Status(status) = ask(client, &Request::Status).await else {
                panic!("status")
            };
            let settled = status.view >= 1 && !status.view_changing && status.leader != Some(0);
            last = Some(status);
            if settled {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let status = last.expect("a status");
        assert!(
            status.view >= 1 && !status.view_changing && status.leader != Some(0),
            "validator {i}: {status:?}"
        );
    }
}

/// Commit latency of `count` payloads submitted one after another to `client` (each waits for
/// its commit), in order.
async fn commit_latencies(client: &ClientConnection, tag: &str, count: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(count);
    for k in 0..count {
        let tx = format!("{tag}-{k}").into_bytes();
        let t = std::time::Instant::now();
        let answer = ask(client, &Request::Submit { tx }).await;
        assert!(
            matches!(answer, Response::Committed { .. }),
            "{tag} {k}: {answer:?}"
        );
        out.push(t.elapsed().as_secs_f64() * 1e3);
    }
    out
}

fn p99(mut ms: Vec<f64>) -> f64 {
    ms.sort_by(f64::total_cmp);
    ms[(ms.len() * 99 / 100).min(ms.len() - 1)]
}

/// Issue 13, part 3: reads never stall consensus. Compact blocks were read and encoded on the
/// task that runs PBFT, up to 512 requests a turn: a client asking again and again for a
/// thousand blocks held the leader's votes back (commit p99 692 ms against 8 ms unflooded).
/// Now they are read off that task, from blocks stored ready to send. A chain of 600 blocks is
/// built; then commit latency is measured with and without 128 streams (four connections)
/// asking the leader for `CompactBlocks { from: 1, max: 1000 }` over and over: no view change,
/// and the flooded p99 stays under 200 ms (or four times the unflooded p99, if that is larger),
/// in the first flooded round or, after a hiccup, in a second. The flood saturates two cores,
/// so reads and commits both slow down (p99 57–74 ms was seen); the bound tells that from the
/// stall, which is 3.5 times above it. A read of the flood that times out is the flood's own
/// slowness, counted, not a failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_compact_block_reads_does_not_stall_consensus() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let Fixture {
        verifier,
        dir,
        ledger,
        ..
    } = Fixture::new();
    // Each validator on its own runtime, as on its own machine: the flood's clients decode
    // hundreds of blocks per answer, and on the validators' scheduler that work (a client's,
    // not a validator's) would hold their timers back.
    let net = shoji_node::devnet::start_placed(
        4,
        ledger,
        verifier,
        dir.path(),
        true,
        shoji_node::devnet::Placement::Threads,
        false,
    )
    .expect("local network");
    let connect = |i: u16| {
        let (addr, key) = (net.addrs[&i], net.key(i).expect("key"));
        async move {
            Arc::new(
                ClientConnection::connect(addr, &key)
                    .await
                    .expect("connect"),
            )
        }
    };
    let submitter = connect(1).await;
    commit_latencies(&submitter, "chain", 600).await;
    let base = commit_latencies(&submitter, "quiet", 300).await;

    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let mut flood = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let reader = connect(0).await;
        for _ in 0..32 {
            let (reader, stop, served) = (reader.clone(), stop.clone(), served.clone());
            flood.spawn(async move {
                let read = Request::CompactBlocks {
                    from_height: 1,
                    max: 1000,
                };
                let read = read.encode();
                while !stop.load(Ordering::Relaxed) {
                    let Ok(bytes) = reader.request(&read).await else {
                        continue;
                    };
                    if let Ok(Response::CompactBlocks(blocks)) = Response::decode(&bytes) {
                        assert!(blocks.len() >= 600);
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let quiet = p99(base);
    let bound = (4.0 * quiet).max(200.0);
    // A p99 of 300 commits is their third-worst: one hiccup of a shared two-core machine (a
    // scheduler stall, another process) can push it past the bound. A second round, flood
    // still running, tells a hiccup from a stall: reads on the consensus task fail every one.
    let mut loud = p99(commit_latencies(&submitter, "flooded", 300).await);
    if loud > bound {
        eprintln!("commit p99 {loud:.1} ms under the flood: measuring again");
        loud = p99(commit_latencies(&submitter, "flooded again", 300).await);
    }
    stop.store(true, Ordering::Relaxed);
    while let Some(r) = flood.join_next().await {
        r.expect("flood task");
    }
    let reads = served.load(Ordering::Relaxed);
    assert!(reads >= 100, "the flood was served ({reads} reads)");
    assert!(
        loud <= bound,
        "commit p99 {loud:.1} ms under the flood, {quiet:.1} ms without ({reads} reads served)"
    );
    for i in 0..4u16 {
        let Response::Status(status) = ask(&*connect(i).await, &Request::Status).await else {
            panic!("status")
        };
        assert_eq!(
            (status.view, status.view_changing),
            (0, false),
            "validator {i}"
        );
    }
    eprintln!("commit p99 {loud:.1} ms under the flood ({reads} reads), {quiet:.1} ms without");
}

/// What the lying validator double tampers with.
const LIE_NONE: u8 = 0;
const LIE_FORGED_PAYMENT: u8 = 1;
const LIE_OPENING: u8 = 2;

/// Issue 13, part 4: a wallet believes the network, not one validator. Validator 3 is a double
/// holding its real key that answers every client request by asking validator 0, and then lies:
/// it adds a forged payment (a copy of a real output with another commitment) to the compact
/// blocks it serves, or alters the opening of a certified state root. Before, compact blocks
/// and tree roots were one validator's word, and a wallet would have credited the forged
/// note. Now a client checks compact blocks against a stable checkpoint's state root: both lies
/// are caught and named, `scan_certified` moves to another validator and scans exactly the
/// honest blocks, and nothing the liar sent is used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_validator_cannot_credit_a_forged_payment_to_a_wallet() {
    use shoji_ledger::CompactBlock;
    use std::sync::atomic::{AtomicU8, Ordering};

    let (doubled, liar) = Doubled::new();
    let (net, keys) = (&doubled.net, &doubled.keys);
    let honest = Arc::new(
        ClientConnection::connect(net.addrs[&0], &keys[&0])
            .await
            .expect("connect"),
    );

    // A real payment: a mint to Alice.
    let Response::TreeState { anchor, .. } = ask(&honest, &Request::TreeState).await else {
        panic!("tree state")
    };
    let anchor = shoji_primitives::encoding::fr_from_bytes("anchor", &anchor).expect("anchor");
    let mint = doubled.mint(500, anchor);
    assert!(matches!(
        ask(
            &honest,
            &Request::Submit {
                tx: mint.to_bytes()
            }
        )
        .await,
        Response::Committed { applied: true, .. }
    ));

    // The double: validator 3's key and address; every answer is validator 0's, tampered.
    let lie = Arc::new(AtomicU8::new(LIE_NONE));
    {
        let (honest, lie) = (honest.clone(), lie.clone());
        tokio::spawn(async move {
            while let Some(req) = liar.next_request().await {
                let (honest, lie) = (honest.clone(), lie.load(Ordering::Relaxed));
                tokio::spawn(async move {
                    let Ok(answer) = honest.request(req.body()).await else {
                        return;
                    };
                    let answer = match Response::decode(&answer) {
                        Ok(Response::CompactBlocks(mut blocks)) if lie == LIE_FORGED_PAYMENT => {
                            for raw in blocks.iter_mut() {
                                let mut b = CompactBlock::from_bytes(raw).expect("block");
                                if let Some(real) = b.txs.first().cloned() {
                                    let mut forged = real;
                                    forged.commitments[0] += shoji_primitives::Fr::from(1u64);
                                    b.txs.push(forged);
                                    *raw = b.to_bytes();
                                }
                            }
                            Response::CompactBlocks(blocks).encode()
                        }
                        Ok(Response::Certified {
                            checkpoint,
                            mut opening,
                        }) if lie == LIE_OPENING && !opening.is_empty() => {
                            opening[40] ^= 1;
                            Response::Certified {
                                checkpoint,
                                opening,
                            }
                            .encode()
                        }
                        _ => answer,
                    };
                    req.respond(answer);
                });
            }
        });
    }

    let network = net.client_network(doubled.auditor.public_key(), BTreeMap::new());
    let outcome = tokio::task::spawn_blocking(move || {
        let truth = shoji_client::Client::connect(&network, Some(0)).expect("validator 0");
        // Wait until the mint's block is under a stable checkpoint.
        let mut honest_blocks = Vec::new();
        for _ in 0..200 {
            honest_blocks = truth.certified_blocks(1, 500).expect("honest").blocks;
            if honest_blocks.iter().any(|b| !b.txs.is_empty()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(honest_blocks.iter().any(|b| !b.txs.is_empty()));
        let mut results = Vec::new();
        for mode in [LIE_FORGED_PAYMENT, LIE_OPENING] {
            lie.store(mode, Ordering::Relaxed);
            let client = shoji_client::Client::connect(&network, Some(3)).expect("validator 3");
            assert_eq!(client.node(), 3);
            // Unchecked, as clients read before, the forged payment passes.
            let unchecked = client.compact_blocks(1, 500).expect("unchecked read");
            let forged_unnoticed =
                mode == LIE_FORGED_PAYMENT && unchecked[..honest_blocks.len()] != honest_blocks[..];
            assert!(mode != LIE_FORGED_PAYMENT || forged_unnoticed);
            let caught = client.certified_blocks(1, 500);
            let mut scanned = Vec::new();
            let liars = client
                .scan_certified(1, honest_blocks.len() as u64, 500, |batch, node| {
                    scanned.extend(batch.iter().cloned().map(|b| (node, b)));
                    Ok::<(), shoji_client::ClientError>(())
                })
                .expect("scan");
            results.push((mode, caught, liars, scanned));
        }
        (honest_blocks, results)
    })
    .await
    .expect("client thread");
    let (honest_blocks, results) = outcome;
    for (mode, caught, liars, scanned) in results {
        assert!(
            matches!(caught, Err(shoji_client::ClientError::Lied { node: 3, .. })),
            "lie {mode} not caught: {caught:?}"
        );
        assert_eq!(liars.len(), 1, "lie {mode}");
        assert_eq!(liars[0].0, 3);
        assert!(scanned.iter().all(|(node, _)| *node != 3), "lie {mode}");
        let blocks: Vec<CompactBlock> = scanned.into_iter().map(|(_, b)| b).collect();
        assert_eq!(
            blocks, honest_blocks,
            "lie {mode}: the scan is the honest one"
        );
    }
}
