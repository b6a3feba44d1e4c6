//! The proving key's five multi-scalar multiplications on arkworks and on blst's Pippenger,
//! over the same bases and scalars (uniform, and half of them bits, as a witness has), checked
//! equal; medians of five. `cargo run --release -p shoji-benches --example msm_probe`
//! (`taskset -c 0` for one thread): what moving the prover's MSMs to blst would gain.
use ark_bls12_381::{Fr, G1Affine, G1Projective, G2Affine, G2Projective};
use ark_ec::{CurveGroup, VariableBaseMSM};
use ark_ff::{BigInteger, PrimeField, UniformRand};
use ark_serialize::{CanonicalSerialize, Compress};
use blst::MultiPoint;
use std::time::Instant;

fn g1(p: &G1Affine) -> blst::blst_p1_affine {
    let mut b = [0u8; 96];
    p.serialize_with_mode(&mut b[..], Compress::No).unwrap();
    let mut o = blst::blst_p1_affine::default();
    // SAFETY: `b` holds the 96 bytes blst reads; `o` is a valid output.
    unsafe { blst::blst_p1_deserialize(&mut o, b.as_ptr()) };
    o
}
fn g2(p: &G2Affine) -> blst::blst_p2_affine {
    let mut b = [0u8; 192];
    p.serialize_with_mode(&mut b[..], Compress::No).unwrap();
    let mut o = blst::blst_p2_affine::default();
    // SAFETY: `b` holds the 192 bytes blst reads; `o` is a valid output.
    unsafe { blst::blst_p2_deserialize(&mut o, b.as_ptr()) };
    o
}
fn med(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Times `ark` and `blst` five times each, alternating, checks their results (as blst affine
/// points) equal, and prints one JSON line.
fn compare<P: PartialEq + std::fmt::Debug>(
    name: &str,
    mixed: bool,
    n: usize,
    mut ark: impl FnMut() -> P,
    mut blst: impl FnMut() -> P,
) {
    let (mut ta, mut tb) = (vec![], vec![]);
    let (mut ra, mut rb) = (None, None);
    for _ in 0..5 {
        let m = Instant::now();
        ra = Some(ark());
        ta.push(m.elapsed().as_secs_f64() * 1e3);
        let m = Instant::now();
        rb = Some(blst());
        tb.push(m.elapsed().as_secs_f64() * 1e3);
    }
    assert_eq!(ra, rb, "{name} differs");
    println!(
        "{{\"msm\":\"{name}\",\"mixed\":{mixed},\"n\":{n},\"ark_ms\":{:.1},\"blst_ms\":{:.1}}}",
        med(ta),
        med(tb)
    );
}

fn main() {
    let prover = shoji_prover::Prover::dev().unwrap();
    let pk = prover.proving_key();
    let mut rng: rand_chacha::ChaCha20Rng = rand_core::SeedableRng::seed_from_u64(5);
    for mixed in [false, true] {
        let scalars = |n: usize, rng: &mut rand_chacha::ChaCha20Rng| -> Vec<Fr> {
            (0..n)
                .map(|i| {
                    if mixed && i % 2 == 0 {
                        Fr::from((i / 2 % 2) as u64)
                    } else {
                        Fr::rand(rng)
                    }
                })
                .collect()
        };
        let bytes = |s: &[Fr]| -> Vec<u8> {
            s.iter()
                .flat_map(|x| x.into_bigint().to_bytes_le())
                .collect()
        };
        for (name, bases) in [
            ("a", &pk.a_query),
            ("b_g1", &pk.b_g1_query),
            ("l", &pk.l_query),
            ("h", &pk.h_query),
        ] {
            let s = scalars(bases.len(), &mut rng);
            let sb = bytes(&s);
            let bl: Vec<_> = bases.iter().map(g1).collect();
            compare(
                name,
                mixed,
                bases.len(),
                || g1(&G1Projective::msm_unchecked(bases, &s).into_affine()),
                || {
                    let mut aff = blst::blst_p1_affine::default();
                    // SAFETY: both are valid blst points.
                    unsafe { blst::blst_p1_to_affine(&mut aff, &bl.as_slice().mult(&sb, 255)) };
                    aff
                },
            );
        }
        let bases = &pk.b_g2_query;
        let s = scalars(bases.len(), &mut rng);
        let sb = bytes(&s);
        let bl: Vec<_> = bases.iter().map(g2).collect();
        compare(
            "b_g2",
            mixed,
            bases.len(),
            || g2(&G2Projective::msm_unchecked(bases, &s).into_affine()),
            || {
                let mut aff = blst::blst_p2_affine::default();
                // SAFETY: both are valid blst points.
                unsafe { blst::blst_p2_to_affine(&mut aff, &bl.as_slice().mult(&sb, 255)) };
                aff
            },
        );
    }
}
