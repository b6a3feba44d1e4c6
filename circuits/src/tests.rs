//! The transfer circuit against valid and invalid statements: one negative test per constraint
//! family, each changing one witness value or one public input of a valid statement.

use super::*;
use ark_ec::{AffineRepr, CurveGroup};
use ark_ed_on_bls12_381::EdwardsAffine;
use ark_relations::gr1cs::ConstraintSystem;
use ark_std::UniformRand;
use rand_core::OsRng;
use shoji_primitives::audit::{AuditPublicKey, AuditSecretKey};
use shoji_primitives::keys::{SpendingKeys, WalletSeed};
use shoji_primitives::note::pack_asset_value;
use shoji_primitives::tree::{Frontier, IncrementalWitness};

/// A tree holding notes of the sender (values 600 and 400), of another owner, and of another asset.
struct World {
    sender: SpendingKeys,
    frontier: Frontier,
    mine: Vec<(Note, IncrementalWitness)>,
    stranger_note: (Note, IncrementalWitness),
    other_asset_note: (Note, IncrementalWitness),
    auditor: AuditSecretKey,
}

const ASSET: AssetId = AssetId(7);

fn world() -> World {
    let sender = SpendingKeys::from_seed(&WalletSeed([1; 32]));
    let stranger = SpendingKeys::from_seed(&WalletSeed([2; 32]));
    let mut frontier = Frontier::new();
    let mut witnesses: Vec<(Note, IncrementalWitness)> = Vec::new();
    let add =
        |note: Note, frontier: &mut Frontier, witnesses: &mut Vec<(Note, IncrementalWitness)>| {
            let (w, completed) = IncrementalWitness::append(frontier, note.commitment()).unwrap();
            for (_, other) in witnesses.iter_mut() {
                other.observe(&completed);
            }
            witnesses.push((note, w));
        };
    for i in 0..5u64 {
        frontier.append(Fr::from(1000 + i)).unwrap();
    }
    let mk = |value: u64, owner: Fr, asset: AssetId| Note {
        asset,
        value: Amount(value),
        owner,
        rho: Fr::rand(&mut OsRng),
        rcm: Fr::rand(&mut OsRng),
    };
    add(mk(600, sender.apk, ASSET), &mut frontier, &mut witnesses);
    add(mk(400, sender.apk, ASSET), &mut frontier, &mut witnesses);
    add(mk(50, stranger.apk, ASSET), &mut frontier, &mut witnesses);
    add(
        mk(70, sender.apk, AssetId(8)),
        &mut frontier,
        &mut witnesses,
    );
    for i in 0..3u64 {
        let c = frontier.append(Fr::from(2000 + i)).unwrap();
        for (_, w) in witnesses.iter_mut() {
            w.observe(&c);
        }
    }
    let other_asset_note = witnesses.pop().unwrap();
    let stranger_note = witnesses.pop().unwrap();
    World {
        sender,
        frontier,
        mine: witnesses,
        stranger_note,
        other_asset_note,
        auditor: AuditSecretKey::random(&mut OsRng),
    }
}

impl World {
    fn input(&self, (note, w): &(Note, IncrementalWitness)) -> InputWitness {
        InputWitness {
            note: *note,
            path: w.path(&self.frontier).unwrap(),
        }
    }
}

/// Public inputs consistent with `private` (what an honest prover publishes).
fn public_for(
    private: &TransferPrivate,
    anchor: Fr,
    auditor: AuditPublicKey,
    value_in: u64,
    value_out: u64,
    asset_pub: AssetId,
) -> TransferPublic {
    let outs = private.output_notes();
    TransferPublic {
        anchor,
        nullifiers: private.nullifiers(),
        commitments: [outs[0].commitment(), outs[1].commitment()],
        value_in: Amount(value_in),
        value_out: Amount(value_out),
        asset: asset_pub,
        auditor,
        audit: audit::encrypt(&auditor, &private.audit_plaintext(), &private.audit_e),
        binding: Fr::from(12345u64),
    }
}

/// Public inputs of an honest transfer (no public value) for `private` in `w`.
fn transfer_public(w: &World, private: &TransferPrivate) -> TransferPublic {
    public_for(
        private,
        w.frontier.root(),
        w.auditor.public_key(),
        0,
        0,
        AssetId(0),
    )
}

/// Alice pays 250 of her 1000 to a receiver, 750 back to herself.
fn valid(w: &World) -> (TransferPublic, TransferPrivate) {
    let receiver = SpendingKeys::from_seed(&WalletSeed([3; 32]));
    let private = TransferPrivate {
        ask: w.sender.ask,
        nk: w.sender.nk,
        asset: ASSET,
        inputs: [w.input(&w.mine[0]), w.input(&w.mine[1])],
        outputs: [
            OutputWitness {
                owner: receiver.apk,
                value: Amount(250),
                rcm: Fr::rand(&mut OsRng),
            },
            OutputWitness {
                owner: w.sender.apk,
                value: Amount(750),
                rcm: Fr::rand(&mut OsRng),
            },
        ],
        audit_e: audit::AuditEphemeral::random(&mut OsRng),
    };
    let public = transfer_public(w, &private);
    (public, private)
}

fn satisfied(public: &TransferPublic, private: &TransferPrivate) -> bool {
    let cs = ConstraintSystem::<Fr>::new_ref();
    TransferCircuit::new(*public, private.clone())
        .generate_constraints(cs.clone())
        .unwrap();
    cs.is_satisfied().unwrap()
}

#[test]
fn valid_transfer_is_satisfied_and_shape_is_pinned() {
    let w = world();
    let (public, private) = valid(&w);
    let cs = ConstraintSystem::<Fr>::new_ref();
    TransferCircuit::new(public, private)
        .generate_constraints(cs.clone())
        .unwrap();
    assert!(cs.is_satisfied().unwrap());
    // A change here changes the verifying key: regenerate parameters on purpose, not by accident.
    assert_eq!(
        cs.num_instance_variables(),
        1 + shoji_primitives::tx::NUM_PUBLIC_INPUTS
    );
    assert_eq!(
        cs.num_constraints(),
        PINNED_CONSTRAINTS,
        "transfer circuit constraint count changed"
    );
}

/// The constraint count of the transfer circuit.
const PINNED_CONSTRAINTS: usize = 15_999;

#[test]
fn setup_mode_needs_no_values() {
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_mode(ark_relations::gr1cs::SynthesisMode::Setup);
    TransferCircuit::blank()
        .generate_constraints(cs.clone())
        .unwrap();
    assert_eq!(cs.num_constraints(), PINNED_CONSTRAINTS);
}

#[test]
fn mint_with_dummy_inputs_is_satisfied() {
    let w = world();
    let (_, mut private) = valid(&w);
    for i in 0..2 {
        private.inputs[i] = InputWitness {
            note: Note::dummy(ASSET, w.sender.apk, &mut OsRng),
            path: MerklePath::dummy(),
        };
    }
    private.outputs[0].value = Amount(1000);
    private.outputs[1].value = Amount(0);
    let public = public_for(
        &private,
        w.frontier.root(),
        w.auditor.public_key(),
        1000,
        0,
        ASSET,
    );
    assert!(satisfied(&public, &private));
    // The same mint claiming another public asset is refused.
    let mut wrong = public;
    wrong.asset = AssetId(8);
    assert!(!satisfied(&wrong, &private));
    // A mint of 1001 from 1000 public is refused.
    let mut more = public;
    more.value_in = Amount(999);
    assert!(!satisfied(&more, &private));
}

#[test]
fn redeem_is_satisfied() {
    let w = world();
    let (_, mut private) = valid(&w);
    private.outputs[0].value = Amount(100);
    private.outputs[1].value = Amount(0);
    let public = public_for(
        &private,
        w.frontier.root(),
        w.auditor.public_key(),
        0,
        900,
        ASSET,
    );
    assert!(satisfied(&public, &private));
}

#[test]
fn wrong_merkle_path_rejected() {
    let w = world();
    let (public, mut private) = valid(&w);
    private.inputs[0].path.siblings[5][1] += Fr::from(1u64);
    assert!(!satisfied(&public, &private));
}

#[test]
fn wrong_anchor_rejected() {
    let w = world();
    let (mut public, private) = valid(&w);
    public.anchor += Fr::from(1u64);
    assert!(!satisfied(&public, &private));
}

#[test]
fn wrong_nullifier_rejected() {
    let w = world();
    for i in 0..2 {
        let (mut public, private) = valid(&w);
        public.nullifiers[i] += Fr::from(1u64);
        assert!(!satisfied(&public, &private), "nullifier {i}");
    }
    // A nullifier computed with another nullifier key.
    let (mut public, mut private) = valid(&w);
    private.nk += Fr::from(1u64);
    public.nullifiers = private.nullifiers();
    assert!(!satisfied(&public, &private));
}

#[test]
fn wrong_spending_key_rejected() {
    let w = world();
    let (public, mut private) = valid(&w);
    private.ask += Fr::from(1u64);
    assert!(!satisfied(&public, &private));
}

#[test]
fn inputs_of_two_owners_rejected() {
    let w = world();
    let (_, mut private) = valid(&w);
    private.inputs[1] = w.input(&w.stranger_note);
    private.outputs[1].value = Amount(600 + 50 - 250);
    let public = transfer_public(&w, &private);
    assert!(!satisfied(&public, &private));
}

#[test]
fn imbalance_by_one_rejected() {
    let w = world();
    for delta in [1i64, -1] {
        let (_, mut private) = valid(&w);
        private.outputs[1].value = Amount((750 + delta) as u64);
        let public = transfer_public(&w, &private);
        assert!(!satisfied(&public, &private), "delta {delta}");
    }
}

/// The field wrap-around attempt: an output "bit" that is not a bit would let an output exceed
/// 2^64 (or be negative). Setting bit 0 of output 0 to 2 must violate that bit's boolean
/// constraint `(1 − b)·b = 0` specifically.
#[test]
fn value_beyond_64_bits_rejected() {
    use shoji_primitives::r1cs_testing::{satisfied_with, violated_rows};
    let w = world();
    let (public, private) = valid(&w);
    let cs = ConstraintSystem::<Fr>::new_ref();
    let handles = TransferCircuit::new(public, private)
        .synthesize(cs.clone())
        .unwrap();
    assert!(satisfied_with(&cs, &[]));
    let bit = handles.output_value_bits[0][0];
    let violated = violated_rows(&cs, &[(bit, Fr::from(2u64))]);
    assert!(!violated.is_empty());
    let boolean_row = violated.iter().any(|(a, b, c)| {
        let idx = |v: ark_relations::gr1cs::Variable| {
            let n = cs.num_instance_variables();
            n + v.index().unwrap()
        };
        let i = idx(bit);
        c.is_empty()
            && b == &vec![(Fr::from(1u64), i)]
            && a.contains(&(Fr::from(1u64), 0))
            && a.contains(&(-Fr::from(1u64), i))
    });
    assert!(
        boolean_row,
        "the bit's boolean constraint must be among the violated ones"
    );
}

#[test]
fn mixed_assets_rejected() {
    let w = world();
    let (_, mut private) = valid(&w);
    private.inputs[1] = w.input(&w.other_asset_note);
    private.outputs[1].value = Amount(600 + 70 - 250);
    let public = transfer_public(&w, &private);
    assert!(!satisfied(&public, &private));
}

#[test]
fn dummy_input_with_value_rejected() {
    let w = world();
    let (_, mut private) = valid(&w);
    // A note that is not in the tree, with a made-up path, claiming value.
    private.inputs[1] = InputWitness {
        note: Note {
            value: Amount(400),
            ..Note::dummy(ASSET, w.sender.apk, &mut OsRng)
        },
        path: MerklePath::dummy(),
    };
    let public = transfer_public(&w, &private);
    assert!(!satisfied(&public, &private));
    // The same with value zero is a valid dummy (and the outputs shrink accordingly).
    private.inputs[1].note.value = Amount(0);
    private.outputs[1].value = Amount(350);
    let public = transfer_public(&w, &private);
    assert!(satisfied(&public, &private));
}

#[test]
fn output_rho_not_derived_rejected() {
    let w = world();
    let (mut public, private) = valid(&w);
    let mut out = private.output_notes()[0];
    out.rho = Fr::rand(&mut OsRng);
    public.commitments[0] = out.commitment();
    assert!(!satisfied(&public, &private));
    // Taking the other input's nullifier is not allowed either.
    let mut swapped = private.output_notes()[0];
    swapped.rho = private.nullifiers()[1];
    public.commitments[0] = swapped.commitment();
    assert!(!satisfied(&public, &private));
}

#[test]
fn output_commitment_changed_rejected() {
    let w = world();
    let (mut public, private) = valid(&w);
    let out = private.output_notes()[1];
    public.commitments[1] = Note {
        value: Amount(751),
        ..out
    }
    .commitment();
    assert!(!satisfied(&public, &private));
}

#[test]
fn audit_ciphertext_changed_rejected() {
    let w = world();
    let (public, private) = valid(&w);
    for i in 0..AUDIT_ELEMENTS {
        let mut p = public;
        p.audit.ciphertext[i] += Fr::from(1u64);
        assert!(!satisfied(&p, &private), "ciphertext element {i}");
    }
    let mut p = public;
    p.audit.epk = (p.audit.epk + EdwardsAffine::generator()).into_affine();
    assert!(!satisfied(&p, &private), "ephemeral key");
    // A record that lies: it names another receiver, correctly encrypted.
    let mut lie = private.audit_plaintext();
    lie.receivers[0] = Fr::from(99u64);
    let mut p = public;
    p.audit = audit::encrypt(&public.auditor, &lie, &private.audit_e);
    assert!(!satisfied(&p, &private), "lying record");
}

#[test]
fn auditor_key_swapped_rejected() {
    let w = world();
    let (mut public, private) = valid(&w);
    public.auditor = AuditSecretKey::random(&mut OsRng).public_key();
    assert!(!satisfied(&public, &private));
    assert!(public.auditor.0.is_on_curve());
}

/// The designated auditor recovers exactly the statement's sender, receivers and values.
#[test]
fn auditor_reads_the_truth() {
    let w = world();
    let (public, private) = valid(&w);
    assert_eq!(
        public.audit,
        audit::encrypt(
            &public.auditor,
            &private.audit_plaintext(),
            &private.audit_e
        )
    );
    let pt = w.auditor.decrypt(&public.audit).unwrap();
    assert_eq!(pt.sender, w.sender.apk);
    assert_eq!(pt.values, [Amount(250), Amount(750)]);
    assert_eq!(pt.asset, ASSET);
    assert_eq!(
        pack_asset_value(ASSET, Amount(1)),
        Fr::from((7u128 << 64) + 1)
    );
}

/// Every public input is used by at least one constraint (docs/protocol/statement.md, Rule 1): a column of the
/// constraint matrices that is all zero would leave that input unbound.
#[test]
fn every_public_input_is_constrained() {
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_mode(ark_relations::gr1cs::SynthesisMode::Setup);
    TransferCircuit::blank()
        .generate_constraints(cs.clone())
        .unwrap();
    cs.finalize();
    let matrices = cs.to_matrices().unwrap();
    let m = &matrices[ark_relations::gr1cs::R1CS_PREDICATE_LABEL];
    for input in 1..=shoji_primitives::tx::NUM_PUBLIC_INPUTS {
        let used = m.iter().any(|mat| {
            mat.iter()
                .any(|row| row.iter().any(|(c, i)| *i == input && !c.is_zero()))
        });
        assert!(used, "public input {input} appears in no constraint");
    }
}

use ark_ff::Zero;
