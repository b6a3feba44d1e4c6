//! Confidential accounts on a four-validator devnet: accounts opened, an issuer's mint, a
//! payment and a redemption go through admission, ordering, batched verification, execution
//! and storage; a client following the certified compact blocks holds the same account state
//! as the validators and reads its balance; the auditor reads the amount; a replay is refused
//! at admission.

use shoji_client::{Client, ClientError};
use shoji_confidential::{Role, SecretKey};
use shoji_ledger::{AccountId, AccountState};
use shoji_primitives::account::{AccountTx, RedeemHeader, TransferHeader};
use shoji_primitives::note::Amount;

mod common;
use common::{Fixture, USD};

/// A four-validator devnet whose genesis designates an account auditor.
struct Devnet {
    fixture: Fixture,
    account_auditor: SecretKey,
    runtime: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
    net: shoji_node::devnet::LocalNetwork,
    network: shoji_client::Network,
}

fn devnet() -> Devnet {
    let mut fixture = Fixture::new();
    let account_auditor = SecretKey::auditor(&fixture.auditor.to_bytes());
    fixture.ledger.account_auditor = Some(account_auditor.public());
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
    let network = net.client_network(fixture.auditor.public_key(), fixture.ledger.issuers.clone());
    Devnet {
        fixture,
        account_auditor,
        runtime,
        dir,
        net,
        network,
    }
}

#[test]
fn accounts_open_mint_pay_and_redeem_on_a_devnet() {
    let Devnet {
        fixture,
        account_auditor,
        runtime: _runtime,
        dir: _dir,
        net,
        network,
    } = devnet();
    assert_eq!(network.account_auditor, Some(account_auditor.public()));
    let id = network.network_id;
    let client = Client::connect(&network, Some(1)).expect("connect");
    let mut rng = rand_core::OsRng;
    let alice = SecretKey::account(&[1; 32]);
    let bob = SecretKey::account(&[2; 32]);
    let submit = |tx: &AccountTx| client.submit_bytes(tx.to_bytes());

    for k in [&alice, &bob] {
        submit(&AccountTx::open(&id, k, USD, &mut rng)).expect("opened");
    }
    let mint = AccountTx::mint(
        &id,
        &fixture.issuer,
        USD,
        alice.public(),
        Amount(1_000),
        [1; 32],
    );
    submit(&mint).expect("minted");
    // The same mint again is refused before it is ordered.
    assert!(
        matches!(submit(&mint), Err(ClientError::Refused(_))),
        "a replayed mint"
    );

    // Alice follows her account from the certified blocks, as a wallet does.
    let follow = |key: &SecretKey| -> AccountState {
        let me = AccountId::new(&key.public(), USD);
        let mut state: Option<AccountState> = None;
        let tip = client.status().expect("status").height;
        client
            .scan_certified::<ClientError>(1, tip, 64, |blocks, _| {
                for b in blocks {
                    for tx in &b.accounts {
                        if matches!(tx, AccountTx::Open(o) if AccountId::new(&o.key, o.asset) == me)
                        {
                            state = Some(AccountState::new());
                        }
                        if let Some(s) = state.as_mut() {
                            s.follow(&me, tx);
                        }
                    }
                }
                Ok(())
            })
            .expect("scan");
        state.expect("the account was opened")
    };
    let a = follow(&alice);
    assert!(a.balance().holds(&alice, 1_000));
    let header = TransferHeader {
        asset: USD,
        sender: alice.public(),
        receiver: bob.public(),
        auditor: account_auditor.public(),
        sequence: a.sequence,
        credits: a.credits,
        expiry_height: client.status().expect("status").height + 100,
        spendable: a.balance(),
    };
    let pay = AccountTx::transfer(&id, &alice, header, 1_000, 250, &mut rng).expect("prove");
    let done = submit(&pay).expect("paid");
    assert!(
        matches!(submit(&pay), Err(ClientError::Refused(_))),
        "a replayed payment"
    );

    // The validator answers where the payment was committed, checked against the certified
    // block once a stable checkpoint covers it.
    let status = client
        .transaction(pay.id())
        .expect("asked")
        .expect("the payment is recorded");
    assert_eq!(
        (status.height, status.kind, &status.rejected),
        (
            done.height,
            shoji_client::events::PayloadKind::AccountTransfer,
            &None
        )
    );

    // Both sides and the auditor read the payment from the certified block.
    let a = follow(&alice);
    let b = follow(&bob);
    assert!(a.balance().holds(&alice, 750));
    assert!(b.balance().holds(&bob, 250));
    let mut seen = Vec::new();
    client
        .scan_certified::<ClientError>(done.height, done.height, 64, |blocks, _| {
            for b in blocks.iter().filter(|b| b.height == done.height) {
                seen.extend(b.accounts.iter().cloned());
            }
            Ok(())
        })
        .expect("scan");
    let [AccountTx::Transfer(t)] = &seen[..] else {
        panic!("the payment's block holds the payment alone: {seen:?}")
    };
    assert_eq!(t.amount.decrypt(Role::Auditor, &account_auditor), Ok(250));

    // Bob redeems part of it to the issuer.
    let header = RedeemHeader {
        asset: USD,
        account: bob.public(),
        issuer: fixture.issuer.verifying_key().to_bytes(),
        value: Amount(100),
        sequence: b.sequence,
        credits: b.credits,
        expiry_height: done.height + 100,
        spendable: b.balance(),
    };
    let redeem = AccountTx::redeem(&id, &bob, header, 250, &mut rng).expect("prove");
    submit(&redeem).expect("redeemed");
    assert!(follow(&bob).balance().holds(&bob, 150));
    drop(net);
}

fn files(dir: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path.display().to_string(), bytes));
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// What an observer holds (every committed account transaction and every byte the validators
/// store) holds no account payment's amount and no resulting balance, in any encoding the
/// accounts use: the integer, the scalar, the unblinded point `v·G`, and each nonzero limb's
/// point. The search can fail: the mint's public amount is found.
#[test]
fn an_observer_of_blocks_and_storage_learns_no_account_amount() {
    use curve25519_dalek::scalar::Scalar;
    let Devnet {
        fixture,
        account_auditor,
        runtime: _runtime,
        dir,
        net,
        network,
    } = devnet();
    let id = network.network_id;
    let client = Client::connect(&network, Some(0)).expect("connect");
    let mut rng = rand_core::OsRng;
    let (alice, bob) = (SecretKey::account(&[1; 32]), SecretKey::account(&[2; 32]));
    let mut committed = Vec::new();
    let mut submit = |tx: AccountTx| {
        client.submit_bytes(tx.to_bytes()).expect("committed");
        committed.push(tx.to_bytes());
    };
    submit(AccountTx::open(&id, &alice, USD, &mut rng));
    submit(AccountTx::open(&id, &bob, USD, &mut rng));
    let minted = 1_000_000u64;
    let mint = AccountTx::mint(
        &id,
        &fixture.issuer,
        USD,
        alice.public(),
        Amount(minted),
        [3; 32],
    );
    submit(mint.clone());
    let secret = 271_828u64;
    // Alice's state after the mint: one credit of the public amount.
    let mut a = AccountState::new();
    a.follow(&AccountId::new(&alice.public(), USD), &mint);
    let header = TransferHeader {
        asset: USD,
        sender: alice.public(),
        receiver: bob.public(),
        auditor: account_auditor.public(),
        sequence: a.sequence,
        credits: a.credits,
        expiry_height: client.status().expect("status").height + 100,
        spendable: a.balance(),
    };
    submit(AccountTx::transfer(&id, &alice, header, minted, secret, &mut rng).expect("prove"));
    drop(net);

    let mut held: Vec<(String, Vec<u8>)> = committed
        .iter()
        .enumerate()
        .map(|(i, b)| (format!("committed account transaction {i}"), b.clone()))
        .collect();
    files(dir.path(), &mut held);
    let g = curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    for v in [secret, minted - secret] {
        needles.push((
            format!("{v} as a scalar"),
            Scalar::from(v).to_bytes().to_vec(),
        ));
        needles.push((
            format!("{v}·G"),
            (Scalar::from(v) * g).compress().to_bytes().to_vec(),
        ));
        for (i, limb) in shoji_confidential::limbs_of(v).iter().enumerate() {
            if *limb > 1 {
                needles.push((
                    format!("limb {i} of {v} as a point"),
                    (Scalar::from(*limb) * g).compress().to_bytes().to_vec(),
                ));
            }
        }
    }
    let mut found = Vec::new();
    for (what, needle) in &needles {
        for (place, bytes) in &held {
            if contains(bytes, needle) {
                found.push(format!("{what} in {place}"));
            }
        }
    }
    // Eight bytes are meaningful in the transactions, where every byte is a known field (in a
    // database file they are as likely an offset as an amount).
    for (i, bytes) in committed.iter().enumerate() {
        for v in [secret, minted - secret] {
            for needle in [v.to_le_bytes(), v.to_be_bytes()] {
                if contains(bytes, &needle) {
                    found.push(format!("{v} as a u64 in committed account transaction {i}"));
                }
            }
        }
    }
    assert!(found.is_empty(), "an observer finds: {found:#?}");
    assert!(
        held.iter().any(|(_, b)| contains(b, &minted.to_le_bytes())),
        "the mint's public amount is in the chain"
    );
}
