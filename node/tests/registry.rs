//! The participant registry on a four-validator devnet: governance registers a name, a client
//! resolves it from certified state (the checkpoint's signatures, the opening, the policy's
//! hash), an unknown name is an error, and after a revocation the name is refused.

use shoji_client::{Client, ClientError};
use shoji_primitives::governance::{GovernanceAction, GovernanceTx, Participant};
use shoji_primitives::keys::{SpendingKeys, WalletSeed};
use std::time::{Duration, Instant};

mod common;
use common::{runtime, Fixture};

/// Waits until `f` returns `Some`, at most `limit`.
fn until<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_registered_name_resolves_from_certified_state_until_it_is_revoked() {
    let mut fixture = Fixture::new();
    fixture.ledger.governance = shoji_node::devnet::dev_governance();
    let runtime = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let net = {
        let _guard = runtime.enter();
        shoji_node::devnet::start(
            4,
            fixture.ledger.clone(),
            fixture.verifier.clone(),
            dir.path(),
        )
        .expect("devnet")
    };
    let network = net.client_network(fixture.auditor.public_key(), fixture.ledger.issuers.clone());
    let client = Client::connect(&network, Some(2)).expect("connect");
    let bank_b = SpendingKeys::from_seed(&WalletSeed([2; 32])).address();
    let submit = |seq: u64, action: GovernanceAction| {
        let mut g = GovernanceTx::new(seq, action);
        for i in 0..2 {
            g.approve(&shoji_node::devnet::dev_admin_key(i), &network.network_id);
        }
        client.submit_bytes(g.to_bytes()).expect("enacted")
    };

    // Before anything is registered, and for a name never registered: unknown.
    assert!(matches!(
        client.resolve_name("Bank B"),
        Err(ClientError::UnknownName { .. })
    ));
    submit(
        0,
        GovernanceAction::RegisterParticipant {
            name: "Bank B".into(),
            participant: Participant {
                addresses: vec![bank_b],
                identity: [9; 32],
            },
        },
    );
    // Resolved once a stable checkpoint covers the registration (an idle chain closes one
    // within a few blocks).
    let resolved = until(
        "the registration to be certified",
        Duration::from_secs(30),
        || client.resolve_name("Bank B").ok(),
    );
    assert_eq!(resolved, bank_b);
    assert!(matches!(
        client.resolve_name("Bank Z"),
        Err(ClientError::UnknownName { .. })
    ));
    let certified = client.certified_policy().expect("policy");
    assert!(certified.height > 0);

    submit(
        1,
        GovernanceAction::RevokeParticipant {
            name: "Bank B".into(),
        },
    );
    until(
        "the revocation to be certified",
        Duration::from_secs(30),
        || {
            matches!(
                client.resolve_name("Bank B"),
                Err(ClientError::RevokedName { .. })
            )
            .then_some(())
        },
    );
}
