//! Stateful validation against transactions taken from the verifier's stored vectors and edited
//! field by field (their stateless results are given, so no proving is needed here).

use super::*;
use shoji_primitives::encoding::hex_decode;
use shoji_primitives::note::AssetId;
use shoji_primitives::tx::ShieldedBundle;

/// A block time (Unix ms).
const T0: u64 = 1_700_000_000_000;

fn stored(hex: &str) -> Transaction {
    Transaction::from_bytes(&hex_decode("vector", hex.trim()).unwrap()).unwrap()
}

fn transfer() -> Transaction {
    stored(include_str!("../../verifier/testdata/transfer-v3.hex"))
}

fn mint() -> Transaction {
    stored(include_str!("../../verifier/testdata/mint-v3.hex"))
}

fn issuer_of(tx: &Transaction) -> [u8; 32] {
    *tx.issuer().unwrap()
}

fn ledger() -> Ledger {
    let m = mint();
    let mut issuers = BTreeMap::new();
    issuers.insert(issuer_of(&m), BTreeSet::from([m.bundle().asset]));
    Ledger::genesis(LedgerConfig {
        anchor_window_blocks: 3,
        auditor: m.bundle().auditor,
        issuers,
        governance: GovernanceRules {
            admins: admins()
                .iter()
                .map(|k| k.verifying_key().to_bytes())
                .collect(),
            threshold: 2,
        },
        network_id: NETWORK,
        validators: Default::default(),
        checkpoint_interval: 8,
        window_size: 16,
        account_auditor: None,
    })
}

/// The network of the stored transactions (all zeros: built without naming one).
const NETWORK: [u8; 32] = [0; 32];

/// Three administrators; two must approve.
fn admins() -> Vec<ed25519_dalek::SigningKey> {
    (1..=3u8)
        .map(|i| ed25519_dalek::SigningKey::from_bytes(&[i; 32]))
        .collect()
}

/// `action` as governance transaction `seq`, approved by the administrators `by`.
fn governance(seq: u64, action: GovernanceAction, by: &[usize]) -> GovernanceTx {
    let keys = admins();
    let mut g = GovernanceTx::new(seq, action);
    for i in by {
        g.approve(&keys[*i], &NETWORK);
    }
    g
}

fn with_bundle(tx: &Transaction, f: impl FnOnce(&mut ShieldedBundle)) -> Transaction {
    let mut tx = *tx;
    f(tx.bundle_mut());
    tx
}

fn ok(n: usize) -> Vec<Result<(), TxError>> {
    (0..n).map(|_| Ok(())).collect()
}

#[test]
fn mint_then_replay_is_a_double_spend() {
    let mut l = ledger();
    let root0 = l.frontier().root();
    let m = with_bundle(&mint(), |b| b.anchor = root0);
    let out = l.apply_block(T0, &[m], &ok(1));
    assert_eq!(out.outcomes, vec![TxOutcome::Applied { first_leaf: 0 }]);
    assert_eq!(l.frontier().size(), 2);
    assert_ne!(out.tree_root, root0);
    assert!(l.is_spent(&m.bundle().nullifiers[0]));
    // Replayed in a later block: its (dummy) nullifiers are spent.
    let out = l.apply_block(T0, &[m], &ok(1));
    assert_eq!(
        out.outcomes,
        vec![TxOutcome::Rejected(Rejection::DoubleSpend)]
    );
}

#[test]
fn same_nullifier_twice_in_one_block() {
    let mut l = ledger();
    let root = l.frontier().root();
    let a = with_bundle(&transfer(), |b| b.anchor = root);
    let b2 = with_bundle(&a, |b| b.nullifiers[0] = Fr::from(5u64));
    let out = l.apply_block(T0, &[a, b2], &ok(2));
    assert_eq!(out.outcomes[0], TxOutcome::Applied { first_leaf: 0 });
    assert_eq!(out.outcomes[1], TxOutcome::Rejected(Rejection::DoubleSpend));
    assert_eq!(
        l.frontier().size(),
        2,
        "the rejected transaction appended nothing"
    );
}

#[test]
fn unknown_and_expired_anchor() {
    let mut l = ledger();
    let t = transfer(); // anchored in another tree
    assert_eq!(
        l.apply_block(T0, &[t], &ok(1)).outcomes,
        vec![TxOutcome::Rejected(Rejection::UnknownAnchor)]
    );
    // The genesis root falls out of the 3-block window once three later blocks have another root.
    let root0 = l.frontier().root();
    let t0 = with_bundle(&t, |b| b.anchor = root0);
    assert_eq!(
        l.apply_block(T0, &[t0], &ok(1)).outcomes,
        vec![TxOutcome::Applied { first_leaf: 0 }]
    );
    l.apply_block(T0, &[], &[]);
    let t1 = with_bundle(&t0, |b| b.nullifiers = [Fr::from(8u64), Fr::from(9u64)]);
    assert!(l.is_recent_root(&root0));
    l.apply_block(T0, &[], &[]);
    assert!(!l.is_recent_root(&root0));
    assert_eq!(
        l.apply_block(T0, &[t1], &ok(1)).outcomes,
        vec![TxOutcome::Rejected(Rejection::UnknownAnchor)]
    );
}

#[test]
fn wrong_auditor_issuer_expiry_and_stateless_failures() {
    let mut l = ledger();
    let root = l.frontier().root();
    let other_auditor = transfer().bundle().auditor; // same key in the vectors: make one up
    let mut bad_aud = with_bundle(&transfer(), |b| b.anchor = root);
    if let Transaction::Transfer(b) = &mut bad_aud {
        b.auditor = shoji_primitives::audit::AuditPublicKey((b.auditor.0 + b.audit.epk).into());
    }
    assert_eq!(other_auditor, l.config().auditor);
    let unregistered = with_bundle(&mint(), |b| {
        b.anchor = root;
        b.asset = AssetId(99);
    });
    let expired = with_bundle(&transfer(), |b| {
        b.anchor = root;
        b.expiry_height = 0;
    });
    let unverified = with_bundle(&transfer(), |b| b.anchor = root);
    let stateless = vec![Ok(()), Ok(()), Ok(()), Err(TxError::BadIssuerSignature)];
    let out = l.apply_block(
        T0,
        &[bad_aud, unregistered, expired, unverified],
        &stateless,
    );
    assert_eq!(
        out.outcomes[0],
        TxOutcome::Rejected(Rejection::WrongAuditor)
    );
    assert_eq!(
        out.outcomes[1],
        TxOutcome::Rejected(Rejection::UnauthorizedIssuer(99))
    );
    assert_eq!(out.outcomes[2], TxOutcome::Rejected(Rejection::Expired(0)));
    assert!(matches!(
        out.outcomes[3],
        TxOutcome::Rejected(Rejection::Stateless(_))
    ));
    assert_eq!(l.frontier().size(), 0);
}

/// Two ledgers fed the same blocks reach the same state root; a different block order does not.
#[test]
fn deterministic_state_root() {
    let (mut a, mut b, mut c) = (ledger(), ledger(), ledger());
    let root = a.frontier().root();
    let t1 = with_bundle(&transfer(), |x| x.anchor = root);
    let t2 = with_bundle(&t1, |x| x.nullifiers = [Fr::from(1u64), Fr::from(2u64)]);
    let ra = a.apply_block(T0, &[t1, t2], &ok(2));
    let rb = b.apply_block(T0, &[t1, t2], &ok(2));
    let rc = c.apply_block(T0, &[t2, t1], &ok(2));
    assert_eq!(ra.state_root, rb.state_root);
    assert_ne!(ra.state_root, rc.state_root);
}

/// A ledger restored from its head and nullifiers continues exactly like the original.
#[test]
fn snapshot_and_restore() {
    let mut a = ledger();
    assert_eq!(a.head(), LedgerHead::genesis());
    let root = a.frontier().root();
    let t1 = with_bundle(&transfer(), |x| x.anchor = root);
    a.apply_block(T0, &[t1], &ok(1));
    a.apply_block(T0, &[], &[]);
    let snap = LedgerSnapshot {
        head: a.head(),
        nullifiers: a.nullifiers.clone(),
        accounts: a.accounts.clone(),
    };
    assert_eq!(snap.head.state_root(), a.state_root());
    let mut b = Ledger::restore(a.config().clone(), snap.clone()).unwrap();
    assert_eq!(b.state_root(), a.state_root());
    assert_eq!((b.time_ms(), b.head()), (T0, snap.head.clone()));
    let t2 = with_bundle(&t1, |x| x.nullifiers = [Fr::from(3u64), Fr::from(4u64)]);
    let replay = with_bundle(&t1, |x| x.anchor = root);
    let (oa, ob) = (
        a.apply_block(T0, &[t2, replay], &ok(2)),
        b.apply_block(T0, &[t2, replay], &ok(2)),
    );
    assert_eq!(oa, ob);
    assert_eq!(oa.outcomes[1], TxOutcome::Rejected(Rejection::DoubleSpend));
    let mut bad = snap.clone();
    bad.head.recent_roots.clear();
    assert_eq!(
        Ledger::restore(a.config().clone(), bad).err(),
        Some(RestoreError::NoRoots)
    );
    let mut bad = snap;
    *bad.head.recent_roots.last_mut().unwrap() = Fr::from(1u64);
    assert_eq!(
        Ledger::restore(a.config().clone(), bad).err(),
        Some(RestoreError::RootMismatch)
    );
}

#[test]
fn compact_block_roundtrip_and_strictness() {
    let mut l = ledger();
    let root = l.frontier().root();
    let m = with_bundle(&mint(), |b| b.anchor = root);
    let t = with_bundle(&transfer(), |b| b.anchor = root);
    // The transfer twice: the second copy is a double spend, certified with its reason.
    let out = l.apply_block(T0, &[m, t, t], &ok(3));
    let bytes = out.compact.to_bytes();
    assert_eq!(CompactBlock::from_bytes(&bytes).unwrap(), out.compact);
    assert_eq!(out.compact.txs.len(), 2);
    assert_eq!(
        out.compact.rejected,
        vec![CompactRejection {
            auth_id: t.auth_id(),
            code: RejectionCode::DoubleSpend
        }]
    );
    // The rejection's code is the byte before the (empty) account section's count.
    let mut unknown_code = bytes.clone();
    let at = unknown_code.len() - 5;
    unknown_code[at] = 0;
    assert!(CompactBlock::from_bytes(&unknown_code).is_err());
    let mut phantom_accounts = bytes.clone();
    let at = phantom_accounts.len() - 4;
    phantom_accounts[at] = 1;
    assert!(CompactBlock::from_bytes(&phantom_accounts).is_err());
    assert!(CompactBlock::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(CompactBlock::from_bytes(&longer).is_err());
    assert_eq!(out.compact.time_ms, T0);
    let mut wrong_count = bytes.clone();
    wrong_count[CompactBlock::HEADER_BYTES - 4] = 3;
    assert!(CompactBlock::from_bytes(&wrong_count).is_err());
    for i in (0..bytes.len()).step_by(97) {
        let mut b = bytes.clone();
        b[i] ^= 0x80;
        if let Ok(c) = CompactBlock::from_bytes(&b) {
            assert_ne!(c, out.compact);
        }
    }
}

/// Block time is the proposer's time, clamped so it never decreases: a proposer whose clock (or
/// honesty) goes backwards, and a null block's time 0, get the previous block's time.
#[test]
fn block_time_is_clamped_monotonic() {
    let mut l = ledger();
    assert_eq!(l.time_ms(), 0);
    let proposed = [T0, T0 + 500, T0 + 100, 0, T0 + 500, T0 + 2_000, 1];
    let expected = [
        T0,
        T0 + 500,
        T0 + 500,
        T0 + 500,
        T0 + 500,
        T0 + 2_000,
        T0 + 2_000,
    ];
    for (p, e) in proposed.iter().zip(expected) {
        let out = l.apply_block(*p, &[], &[]);
        assert_eq!(out.time_ms, e, "proposed {p}");
        assert_eq!(out.compact.time_ms, e);
        assert_eq!(l.time_ms(), e);
        assert_eq!(l.head().time_ms, e);
        assert_eq!(l.head().state_root(), out.state_root);
    }
}

/// The state root commits to the block time: validators that disagree on it disagree on the root.
#[test]
fn state_root_commits_to_block_time() {
    let (mut a, mut b) = (ledger(), ledger());
    let ra = a.apply_block(T0, &[], &[]);
    let rb = b.apply_block(T0 + 1, &[], &[]);
    assert_ne!(ra.state_root, rb.state_root);
    // Clamped to the same time, the roots still differ: the scan chain remembers the compact
    // form of block 1, time included. Ledgers with the same history agree.
    let ra = a.apply_block(T0 + 1, &[], &[]);
    let rb = b.apply_block(T0, &[], &[]);
    assert_eq!((ra.time_ms, rb.time_ms), (T0 + 1, T0 + 1));
    assert_ne!(ra.state_root, rb.state_root);
    let mut c = ledger();
    c.apply_block(T0, &[], &[]);
    assert_eq!(c.apply_block(T0 + 1, &[], &[]).state_root, ra.state_root);
}

/// The state root commits to every compact block: an opening of it gives the scan chain, which
/// a client recomputes from the compact blocks it received. One changed byte of any of them
/// gives another chain.
#[test]
fn the_state_root_opens_to_the_chain_of_compact_blocks() {
    let mut l = ledger();
    let mut chain = [0u8; 32];
    let mut blocks = Vec::new();
    for k in 0..3 {
        let out = l.apply_block(T0 + k, &[], &[]);
        chain = chain_compact(&chain, &out.compact.to_bytes());
        blocks.push(out.compact.to_bytes());
        let opening = l.head().opening_with(&l.tree_root());
        assert_eq!(opening.root(), out.state_root);
        assert_eq!(opening.scan_chain, chain);
        assert_eq!(StateOpening::from_bytes(&opening.to_bytes()), Ok(opening));
    }
    let mut forged = blocks.clone();
    forged[1][20] ^= 1;
    let recomputed = forged.iter().fold([0u8; 32], |c, b| chain_compact(&c, b));
    assert_ne!(recomputed, chain);
    let mut opening = l.head().opening_with(&l.tree_root());
    opening.scan_chain[0] ^= 1;
    assert_ne!(opening.root(), l.state_root());
}

/// Revoking the only issuer stops its mints from the next block; registering it again (the
/// next sequence number) lets them through. Replays, skipped numbers and too few approvals are
/// refused deterministically and change nothing.
#[test]
fn governance_registers_and_revokes_issuers_in_sequence() {
    let mut l = ledger();
    let m = mint();
    let (issuer, asset) = (issuer_of(&m), m.bundle().asset);
    let revoke = governance(
        0,
        GovernanceAction::SetIssuer {
            issuer,
            assets: BTreeSet::new(),
        },
        &[0, 2],
    );
    // A mint in the same block as its issuer's revocation still applies: governance is
    // enacted after the block's shielded transactions.
    let root = l.frontier().root();
    let m1 = with_bundle(&m, |b| b.anchor = root);
    let out = l.apply_block_with_governance(T0, &[m1], &ok(1), std::slice::from_ref(&revoke));
    assert_eq!(out.outcomes, vec![TxOutcome::Applied { first_leaf: 0 }]);
    assert_eq!(out.governance, vec![(revoke.id(), TxOutcome::Enacted)]);
    assert_eq!(l.policy().seq, 1);
    assert!(l.policy().issuers.is_empty());

    let root = l.frontier().root();
    let m2 = with_bundle(&m, |b| {
        b.anchor = root;
        b.nullifiers = [Fr::from(5u64), Fr::from(6u64)];
    });
    assert_eq!(
        l.admissible(&m2),
        Err(Rejection::UnauthorizedIssuer(asset.0))
    );
    let register = governance(
        1,
        GovernanceAction::SetIssuer {
            issuer,
            assets: BTreeSet::from([asset]),
        },
        &[1, 2],
    );
    let under = governance(
        1,
        GovernanceAction::SetIssuer {
            issuer,
            assets: BTreeSet::from([asset]),
        },
        &[1],
    );
    let skipped = governance(
        2,
        GovernanceAction::SetIssuer {
            issuer,
            assets: BTreeSet::from([asset]),
        },
        &[0, 1],
    );
    assert!(matches!(
        l.admissible_governance(&under),
        Err(Rejection::Unapproved(_))
    ));
    let before = l.state_root();
    let out = l.apply_block_with_governance(T0, &[m2], &ok(1), &[revoke.clone(), under, skipped]);
    assert_eq!(
        out.outcomes,
        vec![TxOutcome::Rejected(Rejection::UnauthorizedIssuer(asset.0))]
    );
    assert_eq!(
        out.governance[0].1,
        TxOutcome::Rejected(Rejection::GovernanceSequence {
            expected: 1,
            got: 0
        })
    );
    assert!(matches!(
        out.governance[1].1,
        TxOutcome::Rejected(Rejection::Unapproved(_))
    ));
    assert!(matches!(
        out.governance[2].1,
        TxOutcome::Rejected(Rejection::GovernanceSequence { .. })
    ));
    assert_eq!(l.policy().seq, 1);
    assert_ne!(out.state_root, before, "height and time still move");

    let out = l.apply_block_with_governance(T0, &[], &[], std::slice::from_ref(&register));
    assert_eq!(out.governance, vec![(register.id(), TxOutcome::Enacted)]);
    assert_eq!(l.admissible(&m2), Ok(()));
    assert_eq!(
        l.apply_block(T0, &[m2], &ok(1)).outcomes,
        vec![TxOutcome::Applied { first_leaf: 2 }]
    );
}

/// After governance designates another auditor, transactions encrypted to the old key are
/// refused; the policy survives a snapshot, and the state root commits to it.
#[test]
fn governance_rotates_the_auditor_and_the_state_root_commits_to_it() {
    let (mut a, mut b) = (ledger(), ledger());
    let old = a.policy().auditor;
    let new = shoji_primitives::audit::AuditPublicKey((old.0 + old.0).into());
    let rotate = governance(0, GovernanceAction::SetAuditor { auditor: new }, &[0, 1]);
    let ra = a.apply_block_with_governance(T0, &[], &[], std::slice::from_ref(&rotate));
    let rb = b.apply_block(T0, &[], &[]);
    assert_ne!(ra.state_root, rb.state_root);
    assert_eq!(a.policy().auditor, new);
    let root = a.frontier().root();
    let t = with_bundle(&transfer(), |x| x.anchor = root);
    assert_eq!(a.admissible(&t), Err(Rejection::WrongAuditor));
    assert_eq!(b.admissible(&t), Ok(()));

    let snap = LedgerSnapshot {
        head: a.head(),
        nullifiers: a.nullifiers.clone(),
        accounts: a.accounts.clone(),
    };
    assert_eq!(snap.head.state_root(), a.state_root());
    let policy = snap
        .head
        .policy
        .clone()
        .expect("a changed policy is in the head");
    assert_eq!(Policy::from_bytes(&policy.to_bytes()), Ok(policy.clone()));
    let restored = Ledger::restore(a.config().clone(), snap).unwrap();
    assert_eq!(restored.policy(), &policy);
    assert_eq!(restored.state_root(), a.state_root());
    assert_eq!(restored.admissible(&t), Err(Rejection::WrongAuditor));

    // Another network's approvals are worthless here.
    let keys = admins();
    let mut foreign = GovernanceTx::new(1, GovernanceAction::SetAuditor { auditor: old });
    foreign.approve(&keys[0], &[0x5e; 32]);
    foreign.approve(&keys[1], &[0x5e; 32]);
    assert!(matches!(
        a.admissible_governance(&foreign),
        Err(Rejection::Unapproved(_))
    ));
}

#[test]
fn policy_encoding_is_strict() {
    let mut p = Policy::genesis(ledger().config());
    p.seq = 3;
    p.issuers
        .insert([1; 32], BTreeSet::from([AssetId(1), AssetId(2)]));
    let bytes = p.to_bytes();
    assert_eq!(Policy::from_bytes(&bytes), Ok(p));
    for cut in 0..bytes.len() {
        assert!(Policy::from_bytes(&bytes[..cut]).is_err());
    }
    let mut long = bytes;
    long.push(1);
    assert!(Policy::from_bytes(&long).is_err());
}

/// A validator-set change enacted at height `h` takes effect after `round_up(h, K) + L`: the
/// block at that height reports the new epoch, the policy (and so the state root) carries it,
/// and no second change is accepted while one is pending. Growing, re-keying or shrinking
/// below four is refused.
#[test]
fn validator_set_changes_take_effect_at_the_boundary() {
    let five: Validators = (0..5u16).map(|i| (i, [i as u8 + 1; 32])).collect();
    let mut config = ledger().config().clone();
    config.validators = five.clone();
    config.checkpoint_interval = 4;
    config.window_size = 8;
    let mut l = Ledger::genesis(config);
    let four: Validators = five.iter().take(4).map(|(i, k)| (*i, *k)).collect();
    let set = |seq, validators: &Validators| {
        governance(
            seq,
            GovernanceAction::SetValidators {
                validators: validators.clone(),
            },
            &[0, 1],
        )
    };
    let three: Validators = four.iter().take(3).map(|(i, k)| (*i, *k)).collect();
    let mut rekeyed = four.clone();
    rekeyed.insert(0, [42; 32]);
    let mut grown = five.clone();
    grown.insert(7, [7; 32]);
    for bad in [&three, &rekeyed, &grown, &five] {
        assert!(matches!(
            l.admissible_governance(&set(0, bad)),
            Err(Rejection::ValidatorSet(_))
        ));
    }
    l.apply_block(T0, &[], &[]);
    // Enacted at height 2: the epoch ends after round_up(2, 4) + 8 = 12.
    let out = l.apply_block_with_governance(T0, &[], &[], &[set(0, &four)]);
    assert_eq!(out.governance[0].1, TxOutcome::Enacted);
    assert_eq!(out.validators_decided, Some((12, four.clone())));
    assert_eq!(l.policy().next_validators, Some((12, four.clone())));
    assert!(matches!(
        l.admissible_governance(&set(1, &four)),
        Err(Rejection::ValidatorSet(_))
    ));
    let p = l.policy().clone();
    assert_eq!(Policy::from_bytes(&p.to_bytes()), Ok(p));
    for h in 3..12 {
        let out = l.apply_block(T0, &[], &[]);
        assert_eq!((out.height, out.epoch_started), (h, None));
    }
    let out = l.apply_block(T0, &[], &[]);
    assert_eq!(out.height, 12);
    assert_eq!(out.epoch_started, Some((1, four.clone())));
    assert_eq!(
        (
            l.policy().epoch,
            l.policy().epoch_start,
            &l.policy().validators
        ),
        (1, 12, &four)
    );
    assert_eq!(l.policy().next_validators, None);
    assert_eq!(l.apply_block(T0, &[], &[]).epoch_started, None);
}

/// Governance adds a validator: the id, key and address are checked, the next set is the
/// current one and the joiner, the address is recorded in the policy (and so in the state
/// root), and the joiner is a member from the boundary on.
#[test]
fn governance_adds_a_validator_at_the_boundary() {
    let four: Validators = (0..4u16)
        .map(|i| {
            let k = ed25519_dalek::SigningKey::from_bytes(&[i as u8 + 10; 32]);
            (i, k.verifying_key().to_bytes())
        })
        .collect();
    let joiner = ed25519_dalek::SigningKey::from_bytes(&[99; 32])
        .verifying_key()
        .to_bytes();
    let mut config = ledger().config().clone();
    config.validators = four.clone();
    config.checkpoint_interval = 4;
    config.window_size = 8;
    let mut l = Ledger::genesis(config);
    let add = |seq, id: u16, key: [u8; 32], address: &str| {
        governance(
            seq,
            GovernanceAction::AddValidator {
                id,
                key,
                address: address.into(),
            },
            &[0, 2],
        )
    };
    let taken_key = four[&1];
    let not_a_key = (0..=255u8)
        .map(|b| [b; 32])
        .find(|k| ed25519_dalek::VerifyingKey::from_bytes(k).is_err())
        .expect("some byte pattern is not a curve point");
    let mut identity = [0u8; 32];
    identity[0] = 1;
    for bad in [
        add(0, 2, joiner, "10.0.0.9:7004"),    // the id is taken
        add(0, 4, taken_key, "10.0.0.9:7004"), // the key is taken
        add(0, 4, not_a_key, "10.0.0.9:7004"), // not an Ed25519 key
        add(0, 4, identity, "10.0.0.9:7004"),  // a small-order (weak) key
        add(0, 4, joiner, "validator-4:7004"), // not IP:port
    ] {
        assert!(
            matches!(
                l.admissible_governance(&bad),
                Err(Rejection::ValidatorSet(_))
            ),
            "{}",
            bad.action
        );
    }
    let root_before = l.state_root();
    let out = l.apply_block_with_governance(T0, &[], &[], &[add(0, 4, joiner, "10.0.0.9:7004")]);
    assert_eq!(out.governance[0].1, TxOutcome::Enacted);
    let mut five = four.clone();
    five.insert(4, joiner);
    // Enacted at height 1: the epoch ends after round_up(1, 4) + 8 = 12.
    assert_eq!(out.validators_decided, Some((12, five.clone())));
    assert_eq!(
        l.policy().addresses,
        BTreeMap::from([(4, "10.0.0.9:7004".to_string())])
    );
    assert_ne!(l.state_root(), root_before);
    let p = l.policy().clone();
    assert_eq!(Policy::from_bytes(&p.to_bytes()), Ok(p));
    // One change at a time.
    let other = ed25519_dalek::SigningKey::from_bytes(&[98; 32])
        .verifying_key()
        .to_bytes();
    assert!(matches!(
        l.admissible_governance(&add(1, 5, other, "10.0.0.10:7005")),
        Err(Rejection::ValidatorSet(_))
    ));
    for _ in 2..12 {
        assert_eq!(l.apply_block(T0, &[], &[]).epoch_started, None);
    }
    let out = l.apply_block(T0, &[], &[]);
    assert_eq!(out.epoch_started, Some((1, five.clone())));
    assert_eq!(l.policy().validators, five);
}

/// Address lists decode strictly: present only when non-empty, ids in order, canonical.
#[test]
fn policy_addresses_decode_strictly() {
    let mut p = Policy::genesis(ledger().config());
    p.addresses.insert(4, "10.0.0.9:7004".into());
    p.addresses.insert(6, "[::1]:7006".into());
    let bytes = p.to_bytes();
    assert_eq!(Policy::from_bytes(&bytes), Ok(p.clone()));
    // Every cut fails but the one that drops the whole list (a policy without additions).
    let without = Policy::genesis(ledger().config()).to_bytes().len();
    for cut in (0..bytes.len()).filter(|&c| c != without) {
        assert!(Policy::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    // An empty list written explicitly is refused (it is never written).
    let mut empty = Policy::genesis(ledger().config()).to_bytes();
    empty.extend_from_slice(&0u16.to_le_bytes());
    assert!(Policy::from_bytes(&empty).is_err());
    // A non-canonical address is refused.
    let mut q = p.clone();
    q.addresses.insert(4, "10.0.0.09:7004".into());
    assert!(Policy::from_bytes(&q.to_bytes()).is_err());
}

fn participant(seed: u8) -> shoji_primitives::governance::Participant {
    shoji_primitives::governance::Participant {
        addresses: vec![shoji_primitives::keys::SpendingKeys::from_seed(
            &shoji_primitives::keys::WalletSeed([seed; 32]),
        )
        .address()],
        identity: [seed; 32],
    }
}

/// Governance registers, updates and revokes participants; the policy, and so the state root,
/// commits to the registry; revoking a name that is not registered (or twice) is refused.
#[test]
fn governance_keeps_the_participant_registry_in_the_state_root() {
    let mut l = ledger();
    let register = |seq, name: &str, seed| {
        governance(
            seq,
            GovernanceAction::RegisterParticipant {
                name: name.into(),
                participant: participant(seed),
            },
            &[0, 1],
        )
    };
    let revoke = |seq, name: &str| {
        governance(
            seq,
            GovernanceAction::RevokeParticipant { name: name.into() },
            &[0, 1],
        )
    };
    let before = l.state_root();
    let out = l.apply_block_with_governance(T0, &[], &[], &[register(0, "Bank B", 1)]);
    assert!(matches!(out.governance[0].1, TxOutcome::Enacted));
    assert_ne!(l.state_root(), before);
    let entry = &l.policy().registry["Bank B"];
    assert_eq!(
        (entry.participant.clone(), entry.revoked),
        (participant(1), false)
    );
    assert_eq!(
        l.head().opening_with(&l.tree_root()).policy,
        policy_hash(Some(l.policy()))
    );
    // An update replaces the entry, and changes the root again.
    let before = l.state_root();
    l.apply_block_with_governance(T0, &[], &[], &[register(1, "Bank B", 2)]);
    assert_eq!(l.policy().registry["Bank B"].participant, participant(2));
    assert_ne!(l.state_root(), before);
    // Revoking an unknown name is refused; revoking a known one marks it.
    assert!(matches!(
        l.admissible_governance(&revoke(2, "Bank Z")),
        Err(Rejection::Registry(_))
    ));
    let out = l.apply_block_with_governance(T0, &[], &[], &[revoke(2, "Bank B")]);
    assert!(matches!(out.governance[0].1, TxOutcome::Enacted));
    assert!(l.policy().registry["Bank B"].revoked);
    assert!(matches!(
        l.admissible_governance(&revoke(3, "Bank B")),
        Err(Rejection::Registry(_))
    ));
    // The policy with its registry survives its encoding.
    let p = l.policy().clone();
    assert_eq!(Policy::from_bytes(&p.to_bytes()), Ok(p));
}

mod recovery;
