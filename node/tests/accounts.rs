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

#[test]
fn accounts_open_mint_pay_and_redeem_on_a_devnet() {
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
