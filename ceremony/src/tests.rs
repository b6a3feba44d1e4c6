use crate::phase1::{contribute_known, Phase1};
use crate::phase2::{CircuitShape, Phase2};
use crate::{CeremonyError, KnowledgeProof};
use ark_bls12_381::{Bls12_381, Fr, G1Affine, G1Projective, G2Affine};
use ark_ec::{AffineRepr, CurveGroup};
use ark_groth16::Groth16;
use ark_poly::{EvaluationDomain, GeneralEvaluationDomain};
use ark_relations::gr1cs::{
    ConstraintSynthesizer, ConstraintSystemRef, LinearCombination, SynthesisError, Variable,
};
use ark_snark::SNARK;
use rand_chacha::rand_core::SeedableRng;
use std::sync::OnceLock;

/// A small circuit with two public inputs: `y = x^(2^8)` and `w = 3·y + 2·x`.
#[derive(Clone)]
struct Toy {
    x: Option<Fr>,
}

impl Toy {
    fn outputs(x: Fr) -> (Fr, Fr) {
        let mut y = x;
        for _ in 0..8 {
            y *= y;
        }
        (y, y * Fr::from(3u64) + x * Fr::from(2u64))
    }
}

impl ConstraintSynthesizer<Fr> for Toy {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        let x_val = self.x;
        let outs = x_val.map(Toy::outputs);
        let y =
            cs.new_input_variable(|| outs.map(|o| o.0).ok_or(SynthesisError::AssignmentMissing))?;
        let w =
            cs.new_input_variable(|| outs.map(|o| o.1).ok_or(SynthesisError::AssignmentMissing))?;
        let x = cs.new_witness_variable(|| x_val.ok_or(SynthesisError::AssignmentMissing))?;
        let mut v = x;
        let mut v_val = x_val;
        for i in 0..8 {
            let next_val = v_val.map(|a| a * a);
            let next = if i == 7 {
                y
            } else {
                cs.new_witness_variable(|| next_val.ok_or(SynthesisError::AssignmentMissing))?
            };
            cs.enforce_r1cs_constraint(
                || LinearCombination::from(v),
                || LinearCombination::from(v),
                || LinearCombination::from(next),
            )?;
            v = next;
            v_val = next_val;
        }
        cs.enforce_r1cs_constraint(
            || LinearCombination::from(y) * Fr::from(3u64) + (Fr::from(2u64), x),
            || LinearCombination::from(Variable::One),
            || LinearCombination::from(w),
        )?;
        Ok(())
    }
}

fn rng(seed: u64) -> rand_chacha::ChaCha20Rng {
    rand_chacha::ChaCha20Rng::seed_from_u64(seed)
}

/// Phase 1 of size 2^4 with three contributions, verified once.
fn phase1() -> &'static Phase1 {
    static P: OnceLock<Phase1> = OnceLock::new();
    P.get_or_init(|| {
        let mut p = Phase1::new(4).unwrap();
        for seed in 1..=3 {
            p.contribute(&mut rng(seed));
        }
        p
    })
}

fn shape() -> CircuitShape {
    CircuitShape::of(Toy { x: None }).unwrap()
}

/// Phase 2 of the toy circuit with two contributions.
fn phase2() -> &'static Phase2 {
    static P: OnceLock<Phase2> = OnceLock::new();
    P.get_or_init(|| {
        let mut p = Phase2::new(phase1(), &shape()).unwrap();
        for seed in 10..12 {
            p.contribute(&mut rng(seed));
        }
        p
    })
}

fn bad_index(e: CeremonyError) -> usize {
    match e {
        CeremonyError::BadContribution { index, .. } => index,
        other => panic!("expected a bad contribution, got {other}"),
    }
}

fn inconsistent(e: CeremonyError) -> String {
    match e {
        CeremonyError::Inconsistent(what) => what,
        other => panic!("expected an inconsistency, got {other}"),
    }
}

fn bump1(p: &G1Affine) -> G1Affine {
    (*p + G1Affine::generator()).into_affine()
}

fn bump2(p: &G2Affine) -> G2Affine {
    (*p + G2Affine::generator()).into_affine()
}

#[test]
fn phase1_contributions_verify_and_their_hashes_are_the_published_ones() {
    let mut p = Phase1::new(4).unwrap();
    assert!(p.verify().unwrap().is_empty());
    let published: Vec<[u8; 32]> = (1..=3).map(|s| p.contribute(&mut rng(s))).collect();
    assert_eq!(p.verify().unwrap(), published);
    assert_eq!(p.hashes(), published);
    assert_eq!(&p, phase1());
    assert_ne!(p.tau_g1[1], G1Affine::generator());

    let mut bytes = Vec::new();
    p.write(&mut bytes).unwrap();
    assert_eq!(Phase1::read(&mut &bytes[..]).unwrap(), p);
    // A truncated file, trailing bytes, another kind, another version.
    assert!(Phase1::read(&mut &bytes[..bytes.len() - 1]).is_err());
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(Phase1::read(&mut &longer[..]).is_err());
    let mut kind = bytes.clone();
    kind[15] = 2;
    assert!(matches!(
        Phase1::read(&mut &kind[..]),
        Err(CeremonyError::NotTranscript { .. })
    ));
    let mut version = bytes.clone();
    version[14] = 9;
    assert!(matches!(
        Phase1::read(&mut &version[..]),
        Err(CeremonyError::Version { found: 9 })
    ));
    // A point off the curve.
    let mut off = bytes.clone();
    off[16 + 8 + 96 * 3 + 5] ^= 1;
    assert!(matches!(
        Phase1::read(&mut &off[..]),
        Err(CeremonyError::Malformed(_))
    ));
}

#[test]
fn phase1_refuses_tampered_parameters_naming_the_check() {
    let good = phase1();
    type Tamper = fn(&mut Phase1);
    let cases: [(&str, Tamper); 8] = [
        ("consecutive powers of τ", |p| {
            p.tau_g1[9] = bump1(&p.tau_g1[9])
        }),
        ("τⁱ·G₂", |p| p.tau_g2[5] = bump2(&p.tau_g2[5])),
        ("α·τⁱ·G₁", |p| {
            p.alpha_tau_g1[7] = bump1(&p.alpha_tau_g1[7])
        }),
        ("β·τⁱ·G₁", |p| {
            p.beta_tau_g1[3] = bump1(&p.beta_tau_g1[3])
        }),
        ("β·G₂", |p| p.beta_g2 = bump2(&p.beta_g2)),
        ("generator", |p| p.tau_g1[0] = bump1(&p.tau_g1[0])),
        ("last contribution", |p| {
            p.alpha_tau_g1[0] = bump1(&p.alpha_tau_g1[0])
        }),
        ("lengths", |p| {
            p.beta_tau_g1.pop();
        }),
    ];
    for (what, tamper) in cases {
        let mut p = good.clone();
        tamper(&mut p);
        let why = inconsistent(p.verify().unwrap_err());
        let expected = match what {
            "consecutive powers of τ" => "τⁱ·G₁ are not consecutive",
            "generator" => "τ⁰",
            "last contribution" => "last contribution",
            "lengths" => "lengths",
            other => other,
        };
        assert!(why.contains(expected), "{what}: {why}");
    }
}

#[test]
fn phase1_refuses_a_bad_contribution_naming_it() {
    let good = phase1();
    // A proof of knowledge taken from another contribution.
    let mut p = good.clone();
    p.contributions[1].tau_proof = p.contributions[0].tau_proof;
    assert_eq!(bad_index(p.verify().unwrap_err()), 2);
    // A contribution dropped from the middle: the next one's proofs are bound to a hash that
    // is no longer the one before it.
    let mut p = good.clone();
    p.contributions.remove(1);
    assert_eq!(bad_index(p.verify().unwrap_err()), 2);
    // A recorded element that is not the proven multiple of the one before.
    let mut p = good.clone();
    p.contributions[2].beta_g1 = bump1(&p.contributions[2].beta_g1);
    assert_eq!(bad_index(p.verify().unwrap_err()), 3);
    // A proof with an identity point.
    let mut p = good.clone();
    p.contributions[0].alpha_proof.s = G1Affine::zero();
    assert_eq!(bad_index(p.verify().unwrap_err()), 1);
    // The error names the contribution by its position and by its hash as it stands.
    let mut p = good.clone();
    p.contributions[1].tau_g1 = bump1(&p.contributions[1].tau_g1);
    let msg = p.verify().unwrap_err().to_string();
    assert!(msg.contains("contribution 2"), "{msg}");
    assert!(msg.contains(&crate::hex(&p.hashes()[1])), "{msg}");
}

#[test]
fn a_knowledge_proof_is_bound_to_its_transcript_hash_label_and_secret() {
    let x = Fr::from(77u64);
    let digest = [3u8; 32];
    let proof = KnowledgeProof::new(&x, &digest, b"tau", &mut rng(1));
    let (r, r_x) = proof.verify(&digest, b"tau").unwrap();
    assert_eq!((r * x).into_affine(), r_x);
    assert!(
        proof.verify(&[4u8; 32], b"tau").is_err(),
        "another transcript"
    );
    assert!(proof.verify(&digest, b"beta").is_err(), "another label");
    let mut forged = proof;
    forged.s_x = (forged.s * Fr::from(78u64)).into_affine();
    assert!(forged.verify(&digest, b"tau").is_err(), "another secret");
    let mut forged = proof;
    forged.r_x = bump2(&forged.r_x);
    assert!(forged.verify(&digest, b"tau").is_err(), "another x·R");
}

/// With the same τ, α, β, the start of phase 2 is exactly what ark-groth16's generator makes
/// with γ = δ = 1: the domain, the Lagrange convention and the input constraints agree.
#[test]
fn phase2_start_is_ark_groth16s_keys_for_the_same_secrets() {
    let shape = shape();
    let domain = GeneralEvaluationDomain::<Fr>::new(shape.domain_size()).unwrap();
    let seeded = rng(99);
    let tau = domain.sample_element_outside_domain(&mut seeded.clone());
    let (alpha, beta) = (Fr::from(5u64), Fr::from(7u64));
    let mut p1 = Phase1::new(4).unwrap();
    contribute_known(&mut p1, tau, alpha, beta);
    p1.verify().unwrap();
    let mine = Phase2::new(&p1, &shape).unwrap().pk;
    let theirs = Groth16::<Bls12_381>::generate_parameters_with_qap(
        Toy { x: None },
        alpha,
        beta,
        Fr::from(1u64),
        Fr::from(1u64),
        G1Projective::from(G1Affine::generator()),
        G2Affine::generator().into_group(),
        &mut seeded.clone(),
    )
    .unwrap();
    assert_eq!(mine.a_query, theirs.a_query);
    assert_eq!(mine.b_g1_query, theirs.b_g1_query);
    assert_eq!(mine.b_g2_query, theirs.b_g2_query);
    assert_eq!(mine.h_query, theirs.h_query);
    assert_eq!(mine.l_query, theirs.l_query);
    assert_eq!(mine.vk, theirs.vk);
    assert_eq!(mine, theirs);
}

#[test]
fn phase2_keys_prove_and_verify_and_the_transcript_verifies() {
    let p1 = phase1();
    p1.verify().unwrap();
    let p2 = phase2();
    let hashes = p2.verify(p1, &shape()).unwrap();
    assert_eq!(hashes, p2.hashes());
    assert_eq!(hashes.len(), 2);
    let (pk, vk) = p2.keys();
    assert_ne!(vk.delta_g2, G2Affine::generator());

    let x = Fr::from(3u64);
    let (y, w) = Toy::outputs(x);
    let proof = Groth16::<Bls12_381>::prove(&pk, Toy { x: Some(x) }, &mut rng(5)).unwrap();
    let pvk = ark_groth16::prepare_verifying_key(&vk);
    assert!(Groth16::<Bls12_381>::verify_with_processed_vk(&pvk, &[y, w], &proof).unwrap());
    assert!(!Groth16::<Bls12_381>::verify_with_processed_vk(
        &pvk,
        &[y, w + Fr::from(1u64)],
        &proof
    )
    .unwrap());

    let mut bytes = Vec::new();
    p2.write(&mut bytes).unwrap();
    assert_eq!(&Phase2::read(&mut &bytes[..]).unwrap(), p2);
    assert!(Phase2::read(&mut &bytes[..bytes.len() - 1]).is_err());
    let mut kind = bytes.clone();
    kind[15] = 1;
    assert!(matches!(
        Phase2::read(&mut &kind[..]),
        Err(CeremonyError::NotTranscript { .. })
    ));
}

#[test]
fn phase2_refuses_tampered_keys_naming_the_check() {
    let (p1, good, shape) = (phase1(), phase2(), shape());
    type Tamper = fn(&mut Phase2);
    let cases: [(&str, Tamper); 9] = [
        ("L query", |p| p.pk.l_query[2] = bump1(&p.pk.l_query[2])),
        ("H query", |p| p.pk.h_query[4] = bump1(&p.pk.h_query[4])),
        ("A or B query", |p| {
            p.pk.a_query[1] = bump1(&p.pk.a_query[1])
        }),
        ("A or B query", |p| {
            p.pk.b_g2_query[1] = bump2(&p.pk.b_g2_query[1])
        }),
        ("input bases", |p| {
            p.pk.vk.gamma_abc_g1[1] = bump1(&p.pk.vk.gamma_abc_g1[1])
        }),
        ("α, β or γ", |p| {
            p.pk.vk.gamma_g2 = bump2(&p.pk.vk.gamma_g2)
        }),
        ("δ·G₂", |p| p.pk.vk.delta_g2 = bump2(&p.pk.vk.delta_g2)),
        ("δ·G₁ is not the last", |p| {
            p.pk.delta_g1 = bump1(&p.pk.delta_g1)
        }),
        ("wrong length", |p| {
            p.pk.h_query.pop();
        }),
    ];
    for (what, tamper) in cases {
        let mut p = good.clone();
        tamper(&mut p);
        let why = inconsistent(p.verify(p1, &shape).unwrap_err());
        assert!(why.contains(what), "{what}: {why}");
    }
}

#[test]
fn phase2_refuses_bad_contributions_and_another_start() {
    let (p1, good, shape) = (phase1(), phase2(), shape());
    let mut p = good.clone();
    p.contributions[1].proof = p.contributions[0].proof;
    assert_eq!(bad_index(p.verify(p1, &shape).unwrap_err()), 2);
    let mut p = good.clone();
    p.contributions.remove(0);
    assert_eq!(bad_index(p.verify(p1, &shape).unwrap_err()), 1);
    let mut p = good.clone();
    p.contributions[0].delta_g1 = bump1(&p.contributions[0].delta_g1);
    assert_eq!(bad_index(p.verify(p1, &shape).unwrap_err()), 1);
    // δ·G₁ the identity: with a well-formed proof of another δ', and with a proof of δ' = 0
    // (whose points are the identity), refused either way.
    let mut p = good.clone();
    p.contributions[0].delta_g1 = G1Affine::zero();
    assert_eq!(bad_index(p.verify(p1, &shape).unwrap_err()), 1);
    let mut p = good.clone();
    let start = p.start_hash();
    p.contributions[0].proof =
        KnowledgeProof::new(&Fr::from(0u64), &start, crate::phase2::DELTA, &mut rng(5));
    p.contributions[0].delta_g1 = G1Affine::zero();
    assert_eq!(bad_index(p.verify(p1, &shape).unwrap_err()), 1);

    // Started from another phase-1 transcript, or for another circuit.
    let mut other = p1.clone();
    other.contribute(&mut rng(4));
    assert!(matches!(
        good.verify(&other, &shape),
        Err(CeremonyError::WrongPhase1 { .. })
    ));
    let mut p = good.clone();
    p.phase1 = other.hash();
    assert!(matches!(
        p.verify(&other, &shape),
        Err(CeremonyError::Inconsistent(_))
    ));
    let mut renamed = good.clone();
    renamed.circuit[0] ^= 1;
    assert!(matches!(
        renamed.verify(p1, &shape),
        Err(CeremonyError::WrongCircuit { .. })
    ));
}

/// Writes `p` as a response file of Zcash's Powers of Tau software: the challenge hash, the
/// accumulator compressed, and a public key (zeros: it is not read).
fn zcash_response(p: &Phase1) -> Vec<u8> {
    use ark_serialize::CanonicalSerialize;
    let mut out = vec![0xab; 64];
    for g in &p.tau_g1 {
        g.serialize_compressed(&mut out).unwrap();
    }
    for g in &p.tau_g2 {
        g.serialize_compressed(&mut out).unwrap();
    }
    for g in p.alpha_tau_g1.iter().chain(&p.beta_tau_g1) {
        g.serialize_compressed(&mut out).unwrap();
    }
    p.beta_g2.serialize_compressed(&mut out).unwrap();
    out.extend_from_slice(&[0u8; 3 * 192 + 6 * 96]);
    out
}

/// ark-bls12-381 encodes points as Zcash does: the compressed G₁ generator is the published
/// `97f1d3a7…` (zkcrypto's bls12_381 and the IETF pairing-friendly-curves draft).
#[test]
fn points_are_encoded_as_zcash_encodes_them() {
    use ark_serialize::CanonicalSerialize;
    let mut g = Vec::new();
    G1Affine::generator().serialize_compressed(&mut g).unwrap();
    let hex: String = g.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        "97f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb"
    );
}

#[test]
fn a_zcash_response_starts_a_transcript_truncated_to_the_size_needed() {
    // A "Zcash" ceremony of 2^5 with two contributions, written in its response layout.
    let mut source = Phase1::new(5).unwrap();
    source.contribute(&mut rng(41));
    source.contribute(&mut rng(42));
    let file = zcash_response(&source);
    let mut imported = Phase1::import_zcash(&mut &file[..], 5, 4).unwrap();
    assert_eq!(imported.tau_g1[..], source.tau_g1[..31]);
    assert_eq!(imported.tau_g2[..], source.tau_g2[..16]);
    assert_eq!(imported.beta_tau_g1[..], source.beta_tau_g1[..16]);
    assert_eq!(imported.beta_g2, source.beta_g2);
    assert_eq!(imported.origin.unwrap().source_hash, [0xab; 64]);
    imported.verify().unwrap();
    // Contributions build on it, and phase 2 runs from it.
    imported.contribute(&mut rng(43));
    imported.verify().unwrap();
    let mut bytes = Vec::new();
    imported.write(&mut bytes).unwrap();
    assert_eq!(Phase1::read(&mut &bytes[..]).unwrap(), imported);
    let mut p2 = Phase2::new(&imported, &shape()).unwrap();
    p2.contribute(&mut rng(44));
    p2.verify(&imported, &shape()).unwrap();
    let (pk, vk) = p2.keys();
    let x = Fr::from(9u64);
    let (y, w) = Toy::outputs(x);
    let proof = Groth16::<Bls12_381>::prove(&pk, Toy { x: Some(x) }, &mut rng(45)).unwrap();
    let pvk = ark_groth16::prepare_verifying_key(&vk);
    assert!(Groth16::<Bls12_381>::verify_with_processed_vk(&pvk, &[y, w], &proof).unwrap());

    // A file that ends early, a point off the curve, an import larger than the source.
    assert!(Phase1::import_zcash(&mut &file[..file.len() - 1200], 5, 4).is_err());
    let mut bad = file.clone();
    bad[64 + 48 * 3 + 10] ^= 0x40;
    assert!(Phase1::import_zcash(&mut &bad[..], 5, 4).is_err());
    assert!(Phase1::import_zcash(&mut &file[..], 5, 6).is_err());
    // Imported parameters that are not consistent powers are refused by verification.
    let mut swapped = source.clone();
    swapped.tau_g1.swap(3, 4);
    let mut imported = Phase1::import_zcash(&mut &zcash_response(&swapped)[..], 5, 4).unwrap();
    assert!(matches!(
        imported.verify(),
        Err(CeremonyError::Inconsistent(_))
    ));
    // An origin that is not the parameters' start is refused too.
    imported = Phase1::import_zcash(&mut &file[..], 5, 4).unwrap();
    if let Some(o) = imported.origin.as_mut() {
        o.alpha_g1 = bump1(&o.alpha_g1);
    }
    assert!(matches!(
        imported.verify(),
        Err(CeremonyError::Inconsistent(_))
    ));
}
