//! Escrowed recovery on the ledger: who may escrow, open, cancel and release, the challenge
//! window, and the state root's commitment to all of it. The shares' contents are opaque here
//! (well-formed points and bytes); their cryptography is the wallet's.

use super::*;
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT as G;
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::SigningKey;
use shoji_primitives::governance::Participant;
use shoji_primitives::recovery::{RecoveryAgent, RecoveryAgents, SEALED_SHARE_BYTES};

/// Blocks of the challenge window.
const WINDOW: u64 = 3;

fn point(k: u64) -> [u8; 32] {
    (Scalar::from(k) * G).compress().to_bytes()
}

fn agent_key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[0xa0 + i; 32])
}

/// Three agents, any two of them.
fn agents() -> RecoveryAgents {
    RecoveryAgents {
        agents: (0..3)
            .map(|i| RecoveryAgent {
                signing: agent_key(i).verifying_key().to_bytes(),
                encryption: point(100 + u64::from(i)),
            })
            .collect(),
        threshold: 2,
        window_blocks: WINDOW,
    }
}

fn identity() -> SigningKey {
    SigningKey::from_bytes(&[0x51; 32])
}

fn sealed_share(k: u64) -> [u8; SEALED_SHARE_BYTES] {
    let mut s = [k as u8; SEALED_SHARE_BYTES];
    s[..32].copy_from_slice(&point(k));
    s
}

fn escrow_for(agents: &RecoveryAgents) -> Escrow {
    Escrow {
        agents: agents.id(),
        commitments: (1..=u64::from(agents.threshold)).map(point).collect(),
        sealed_seed: [7; 48],
        shares: (0..agents.agents.len() as u64)
            .map(|i| sealed_share(10 + i))
            .collect(),
    }
}

/// `action` as transaction `seq`, signed by `key` alone.
fn signed(seq: u64, action: GovernanceAction, key: &SigningKey) -> GovernanceTx {
    let mut g = GovernanceTx::new(seq, action);
    g.approve(key, &NETWORK);
    g
}

/// Applies one block holding `g` (or none): its outcome.
fn apply(l: &mut Ledger, g: Option<GovernanceTx>) -> Option<TxOutcome> {
    let g: Vec<GovernanceTx> = g.into_iter().collect();
    let out = l.apply_block_with_governance(T0, &[], &[], &g);
    out.governance.into_iter().next().map(|(_, o)| o)
}

fn enacted(l: &mut Ledger, g: GovernanceTx) {
    let what = g.action.to_string();
    let outcome = apply(l, Some(g));
    assert!(
        matches!(outcome, Some(TxOutcome::Enacted)),
        "{what}: {outcome:?}"
    );
}

fn refused(l: &Ledger, g: &GovernanceTx) -> Rejection {
    l.admissible_governance(g)
        .expect_err(&format!("{} was admitted", g.action))
}

/// A ledger whose policy names the agents and registers "Bank B" with [`identity`].
fn with_agents_and_bank_b() -> Ledger {
    let mut l = ledger();
    enacted(
        &mut l,
        governance(
            0,
            GovernanceAction::SetRecoveryAgents { agents: agents() },
            &[0, 1],
        ),
    );
    let mut p: Participant = participant(1);
    p.identity = identity().verifying_key().to_bytes();
    enacted(
        &mut l,
        governance(
            1,
            GovernanceAction::RegisterParticipant {
                name: "Bank B".into(),
                participant: p,
            },
            &[0, 1],
        ),
    );
    l
}

#[test]
fn escrow_is_signed_by_the_participant_alone_and_made_for_the_agents() {
    let mut l = with_agents_and_bank_b();
    let escrow = |e: Escrow| GovernanceAction::EscrowSeed {
        name: "Bank B".into(),
        escrow: e,
    };
    // Another key, the administrators, or no signature at all: refused.
    let stranger = SigningKey::from_bytes(&[0x66; 32]);
    for g in [
        signed(2, escrow(escrow_for(&agents())), &stranger),
        governance(2, escrow(escrow_for(&agents())), &[0, 1]),
        GovernanceTx::new(2, escrow(escrow_for(&agents()))),
    ] {
        assert!(matches!(refused(&l, &g), Rejection::Unapproved(_)));
    }
    // Made for other agents, or with the wrong number of shares: refused.
    let mut other = agents();
    other.threshold = 3;
    let mut short = escrow_for(&agents());
    short.shares.pop();
    for e in [escrow_for(&other), short] {
        let g = signed(2, escrow(e), &identity());
        assert!(matches!(refused(&l, &g), Rejection::Registry(_)));
    }
    // A name nobody registered: refused.
    let g = signed(
        2,
        GovernanceAction::EscrowSeed {
            name: "Bank Z".into(),
            escrow: escrow_for(&agents()),
        },
        &identity(),
    );
    assert!(matches!(refused(&l, &g), Rejection::Registry(_)));
    // Signed by its identity key: kept with its registry entry, in the state root.
    let before = l.state_root();
    enacted(
        &mut l,
        signed(2, escrow(escrow_for(&agents())), &identity()),
    );
    assert_eq!(
        l.policy().registry["Bank B"].escrow,
        Some(escrow_for(&agents()))
    );
    assert_ne!(l.state_root(), before);
}

#[test]
fn a_recovery_releases_only_after_its_window_and_only_until_cancelled() {
    let mut l = with_agents_and_bank_b();
    let name = || "Bank B".to_string();
    let open = |_seq: u64| GovernanceAction::OpenRecovery {
        name: name(),
        request_key: point(77),
    };
    let release = |agent: u8| GovernanceAction::ReleaseShare {
        name: name(),
        agent,
        share: sealed_share(50 + u64::from(agent)),
    };
    // No escrow yet: nothing to open.
    assert!(matches!(
        refused(&l, &signed(2, open(2), &agent_key(0))),
        Rejection::Registry(_)
    ));
    enacted(
        &mut l,
        signed(
            2,
            GovernanceAction::EscrowSeed {
                name: name(),
                escrow: escrow_for(&agents()),
            },
            &identity(),
        ),
    );
    // Opened by a key that is not an agent's: refused. By agent 0: open from this height.
    let stranger = SigningKey::from_bytes(&[0x66; 32]);
    assert!(matches!(
        refused(&l, &signed(3, open(3), &stranger)),
        Rejection::Unapproved(_)
    ));
    enacted(&mut l, signed(3, open(3), &agent_key(0)));
    let opened_at = l.height();
    let r = l.policy().registry["Bank B"]
        .recovery
        .clone()
        .expect("open");
    assert_eq!(
        (r.opened_at, r.opened_by, r.cancelled),
        (opened_at, 0, false)
    );
    assert!(matches!(
        refused(&l, &signed(4, open(4), &agent_key(1))),
        Rejection::Registry(_)
    ));
    // Inside the window no agent releases.
    assert!(matches!(
        refused(&l, &signed(4, release(1), &agent_key(1))),
        Rejection::Registry(why) if why.contains("challenge window")
    ));
    while l.height() + 1 < opened_at + WINDOW {
        assert!(l
            .admissible_governance(&signed(4, release(1), &agent_key(1)))
            .is_err());
        apply(&mut l, None);
    }
    // After it: a release signed by another agent than the one it names is refused; by the
    // agent itself it is kept, once.
    assert!(matches!(
        refused(&l, &signed(4, release(1), &agent_key(2))),
        Rejection::Unapproved(_)
    ));
    let before = l.state_root();
    enacted(&mut l, signed(4, release(1), &agent_key(1)));
    assert_ne!(l.state_root(), before);
    assert!(matches!(
        refused(&l, &signed(5, release(1), &agent_key(1))),
        Rejection::Registry(_)
    ));
    assert!(matches!(
        refused(&l, &signed(5, release(7), &agent_key(1))),
        Rejection::Registry(_)
    ));
    // A new escrow waits until the recovery is cancelled or done.
    assert!(matches!(
        refused(
            &l,
            &signed(
                5,
                GovernanceAction::EscrowSeed {
                    name: name(),
                    escrow: escrow_for(&agents())
                },
                &identity()
            )
        ),
        Rejection::Registry(_)
    ));
    // Only the participant's identity key cancels; then no agent releases any more.
    let cancel = GovernanceAction::CancelRecovery { name: name() };
    assert!(matches!(
        refused(&l, &signed(5, cancel.clone(), &agent_key(0))),
        Rejection::Unapproved(_)
    ));
    enacted(&mut l, signed(5, cancel, &identity()));
    assert!(matches!(
        refused(&l, &signed(6, release(2), &agent_key(2))),
        Rejection::Registry(why) if why.contains("cancelled")
    ));
    let r = l.policy().registry["Bank B"]
        .recovery
        .clone()
        .expect("kept");
    assert!(r.cancelled);
    assert_eq!(r.releases.keys().copied().collect::<Vec<_>>(), vec![1]);

    // The policy with agents, escrow and recovery survives its encoding, strictly.
    let p = l.policy().clone();
    let bytes = p.to_bytes();
    assert_eq!(Policy::from_bytes(&bytes), Ok(p));
    for cut in 0..bytes.len() {
        assert!(Policy::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
    }

    // Re-registered under the same identity, the entry keeps its escrow; under a new identity
    // (a recovered participant's) it starts without one, and escrows anew.
    let reregister = |seq, identity: [u8; 32]| {
        let mut p = participant(2);
        p.identity = identity;
        governance(
            seq,
            GovernanceAction::RegisterParticipant {
                name: name(),
                participant: p,
            },
            &[0, 1],
        )
    };
    enacted(&mut l, reregister(6, identity().verifying_key().to_bytes()));
    assert!(l.policy().registry["Bank B"].escrow.is_some());
    let fresh = SigningKey::from_bytes(&[0x52; 32]);
    enacted(&mut l, reregister(7, fresh.verifying_key().to_bytes()));
    let e = &l.policy().registry["Bank B"];
    assert!(e.escrow.is_none() && e.recovery.is_none());
}
