//! Zcash Sapling, the construction Shoji's transfer descends from: a 2-in-2-out transaction is
//! two Spend and two Output proofs, each a Groth16 proof over BLS12-381 made by the `groth16`
//! crate (bellman's Groth16, split out) through `sapling-crypto`'s own builder.
//!
//! The parameters come from a random setup of our own, generated once and cached: only time is
//! measured, and Groth16's proving and verifying cost does not depend on who ran the setup.

use anyhow::{anyhow, ensure, Context};
use bls12_381::{Bls12, Scalar};
use group::ff::PrimeField;
use group::Curve;
use incrementalmerkletree::{Hashable, Level, Position};
use rand010::rngs::StdRng;
use sapling_crypto::builder::{BundleType, InProgress, UnauthorizedBundle, Unsigned};
use sapling_crypto::bundle::{Authorized, Bundle};
use sapling_crypto::circuit::{Output, OutputParameters, Spend, SpendParameters};
use sapling_crypto::note_encryption::Zip212Enforcement;
use sapling_crypto::value::NoteValue;
use sapling_crypto::zip32::ExtendedSpendingKey;
use sapling_crypto::{Anchor, BatchValidator, MerklePath, Node, Rseed};
use std::path::{Path, PathBuf};

/// A Sapling Merkle path is 32 levels deep.
const DEPTH: usize = 32;

/// The Spend and Output parameters, each as `sapling-crypto` proves with them and as the
/// `groth16` batch verifier takes them.
pub struct Params {
    /// Proves Spends.
    pub spend: SpendParameters,
    /// Proves Outputs.
    pub output: OutputParameters,
    /// The Spend verifying key for `groth16::batch`.
    pub spend_vk: groth16::VerifyingKey<Bls12>,
    /// The Output verifying key for `groth16::batch`.
    pub output_vk: groth16::VerifyingKey<Bls12>,
}

fn empty_spend() -> Spend {
    Spend {
        value_commitment_opening: None,
        proof_generation_key: None,
        payment_address: None,
        commitment_randomness: None,
        ar: None,
        auth_path: vec![None; DEPTH],
        anchor: None,
    }
}

fn empty_output() -> Output {
    Output {
        value_commitment_opening: None,
        payment_address: None,
        commitment_randomness: None,
        esk: None,
    }
}

/// The file's parameters, or new ones from a random setup written there first.
fn cached<C: bellman::Circuit<Scalar>>(
    path: &Path,
    circuit: impl FnOnce() -> C,
    rng: &mut StdRng,
) -> anyhow::Result<Vec<u8>> {
    if let Ok(bytes) = std::fs::read(path) {
        return Ok(bytes);
    }
    eprintln!(
        "peers: generating {} (once; cached)",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("?")
    );
    let params = groth16::generate_random_parameters::<Bls12, _, _>(circuit(), rng)
        .map_err(|e| anyhow!("Sapling parameter generation: {e}"))?;
    let mut bytes = Vec::new();
    params.write(&mut bytes)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, &bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(bytes)
}

impl Params {
    /// Loads the cached parameters from `dir`, generating them on first use (about a minute
    /// for the Spend circuit on two cores).
    pub fn load_or_generate(dir: &Path, rng: &mut StdRng) -> anyhow::Result<Self> {
        let file = |name: &str| -> PathBuf { dir.join(format!("sapling-{name}-random-v1.params")) };
        let spend = cached(&file("spend"), empty_spend, rng)?;
        let output = cached(&file("output"), empty_output, rng)?;
        let vk = |b: &[u8]| -> anyhow::Result<groth16::VerifyingKey<Bls12>> {
            Ok(groth16::Parameters::<Bls12>::read(b, false)?.vk)
        };
        Ok(Self {
            spend_vk: vk(&spend)?,
            output_vk: vk(&output)?,
            spend: SpendParameters::read(&spend[..], false).context("Spend parameters")?,
            output: OutputParameters::read(&output[..], false).context("Output parameters")?,
        })
    }
}

/// A wallet with two notes in a tree, ready to pay both out to two outputs.
pub struct Wallet {
    extsk: ExtendedSpendingKey,
    anchor: Anchor,
    notes: Vec<(sapling_crypto::Note, MerklePath)>,
}

impl Wallet {
    /// Two notes of 300 and 200 at positions 0 and 1 of an otherwise empty tree.
    pub fn new(rng: &mut StdRng) -> anyhow::Result<Self> {
        use rand010::RngExt;
        let extsk = ExtendedSpendingKey::master(&[7u8; 32]).context("Sapling master key")?;
        let (_, addr) = extsk.to_diversifiable_full_viewing_key().default_address();
        let notes: Vec<sapling_crypto::Note> = [300u64, 200]
            .iter()
            .map(|v| addr.create_note(NoteValue::from_raw(*v), Rseed::AfterZip212(rng.random())))
            .collect();
        let leaves: Vec<Node> = notes.iter().map(|n| Node::from_cmu(&n.cmu())).collect();
        let path = |pos: usize| -> anyhow::Result<MerklePath> {
            let mut elems = vec![leaves[1 - pos]];
            elems.extend((1..DEPTH as u8).map(|l| Node::empty_root(Level::from(l))));
            MerklePath::from_parts(elems, Position::from(pos as u64))
                .map_err(|()| anyhow!("Merkle path of the wrong depth"))
        };
        let paths = [path(0)?, path(1)?];
        let anchor = Anchor::from(paths[0].root(leaves[0]));
        ensure!(
            Anchor::from(paths[1].root(leaves[1])) == anchor,
            "the two notes' paths disagree on the root"
        );
        Ok(Self {
            extsk,
            anchor,
            notes: notes.into_iter().zip(paths).collect(),
        })
    }

    /// Builds the 2-in-2-out bundle (no proofs yet): what the wallet does before proving.
    pub fn build(&self, rng: &mut StdRng) -> anyhow::Result<UnauthorizedBundle<i64>> {
        let dfvk = self.extsk.to_diversifiable_full_viewing_key();
        let (_, addr) = dfvk.default_address();
        let mut b = sapling_crypto::builder::Builder::new(
            Zip212Enforcement::On,
            BundleType::DEFAULT,
            self.anchor,
        );
        for (note, path) in &self.notes {
            b.add_spend(dfvk.fvk().clone(), note.clone(), path.clone())
                .map_err(|e| anyhow!("Sapling spend: {e:?}"))?;
        }
        for v in [250u64, 250] {
            b.add_output(None, addr, NoteValue::from_raw(v), [0u8; 512])
                .map_err(|e| anyhow!("Sapling output: {e:?}"))?;
        }
        let (bundle, _) = b
            .build::<SpendParameters, OutputParameters, _, i64>(
                std::slice::from_ref(&self.extsk),
                rng,
            )
            .map_err(|e| anyhow!("Sapling bundle: {e:?}"))?
            .context("an empty Sapling bundle")?;
        Ok(bundle)
    }

    /// Proves a built bundle: two Spend and two Output proofs.
    pub fn prove(params: &Params, bundle: UnauthorizedBundle<i64>, rng: &mut StdRng) -> Proven {
        bundle.create_proofs(&params.spend, &params.output, rng, ())
    }

    /// Signs a proven bundle (spend authorizations and the binding signature).
    pub fn sign(
        &self,
        proven: Proven,
        rng: &mut StdRng,
    ) -> anyhow::Result<Bundle<Authorized, i64>> {
        proven
            .apply_signatures(rng, SIGHASH, &[self.extsk.expsk().ask().clone()])
            .map_err(|e| anyhow!("Sapling signatures: {e:?}"))
    }
}

/// A bundle with its proofs, not yet signed.
pub type Proven = Bundle<InProgress<sapling_crypto::builder::Proven, Unsigned>, i64>;

/// The transaction digest the signatures sign (any fixed value: only time is measured).
pub const SIGHASH: [u8; 32] = [42u8; 32];

/// One Spend proof's public inputs, as Zcash's consensus rules build them: `rk`, `cv`, the
/// anchor and the nullifier packed into two scalars.
pub fn spend_inputs(
    d: &sapling_crypto::bundle::SpendDescription<Authorized>,
) -> anyhow::Result<[Scalar; 7]> {
    let rk: [u8; 32] = (*d.rk()).into();
    let rk = Option::<jubjub::AffinePoint>::from(jubjub::AffinePoint::from_bytes(rk))
        .context("rk is not a point")?;
    let cv = d.cv().as_inner().to_affine();
    let nf = bellman::gadgets::multipack::compute_multipacking(
        &bellman::gadgets::multipack::bytes_to_bits_le(&d.nullifier().0),
    );
    ensure!(nf.len() == 2, "a nullifier packs into two scalars");
    Ok([
        rk.get_u(),
        rk.get_v(),
        cv.get_u(),
        cv.get_v(),
        *d.anchor(),
        nf[0],
        nf[1],
    ])
}

/// One Output proof's public inputs: `cv`, `epk` and the note commitment.
pub fn output_inputs(
    d: &sapling_crypto::bundle::OutputDescription<sapling_crypto::bundle::GrothProofBytes>,
) -> anyhow::Result<[Scalar; 5]> {
    let cv = d.cv().as_inner().to_affine();
    let epk =
        Option::<jubjub::AffinePoint>::from(jubjub::AffinePoint::from_bytes(d.ephemeral_key().0))
            .context("epk is not a point")?;
    let cmu = Option::<Scalar>::from(Scalar::from_repr(d.cmu().to_bytes()))
        .context("cmu is not canonical")?;
    Ok([cv.get_u(), cv.get_v(), epk.get_u(), epk.get_v(), cmu])
}

/// The `groth16` batch verifier (as Zcash nodes run it) over `n` copies of each of the
/// bundle's Spend and Output proofs; true when every proof checks. Repeating a proof costs
/// what distinct ones would.
pub fn batch_verify_proofs(
    params: &Params,
    bundle: &Bundle<Authorized, i64>,
    n: usize,
) -> anyhow::Result<bool> {
    let mut spends = groth16::batch::Verifier::<Bls12>::new();
    let mut outputs = groth16::batch::Verifier::<Bls12>::new();
    for i in 0..n {
        let s = &bundle.shielded_spends()[i % bundle.shielded_spends().len()];
        let proof = groth16::Proof::<Bls12>::read(&s.zkproof()[..])?;
        spends.queue((proof, spend_inputs(s)?.to_vec()));
        let o = &bundle.shielded_outputs()[i % bundle.shielded_outputs().len()];
        let proof = groth16::Proof::<Bls12>::read(&o.zkproof()[..])?;
        outputs.queue((proof, output_inputs(o)?.to_vec()));
    }
    Ok(spends.verify_multicore(&params.spend_vk).is_ok()
        && outputs.verify_multicore(&params.output_vk).is_ok())
}

/// Zcash's whole batched check of `n` copies of the bundle: every proof and every signature
/// (spend authorizations and the binding signature), as a node validates a block.
pub fn batch_verify_bundles(
    params: &Params,
    bundle: &Bundle<Authorized, i64>,
    n: usize,
    rng: &mut StdRng,
) -> bool {
    let mut v = BatchValidator::new();
    for _ in 0..n {
        if !v.check_bundle(bundle.clone(), SIGHASH) {
            return false;
        }
    }
    v.validate(
        &params.spend.verifying_key(),
        &params.output.verifying_key(),
        rng,
    )
}

/// Counts what a circuit allocates and enforces, without computing any assignment.
#[derive(Default)]
struct Counter {
    inputs: usize,
    aux: usize,
    constraints: usize,
}

impl bellman::ConstraintSystem<Scalar> for Counter {
    type Root = Self;

    fn alloc<F, A, AR>(&mut self, _: A, _: F) -> Result<bellman::Variable, bellman::SynthesisError>
    where
        F: FnOnce() -> Result<Scalar, bellman::SynthesisError>,
        A: FnOnce() -> AR,
        AR: Into<String>,
    {
        self.aux += 1;
        Ok(bellman::Variable::new_unchecked(bellman::Index::Aux(
            self.aux - 1,
        )))
    }

    fn alloc_input<F, A, AR>(
        &mut self,
        _: A,
        _: F,
    ) -> Result<bellman::Variable, bellman::SynthesisError>
    where
        F: FnOnce() -> Result<Scalar, bellman::SynthesisError>,
        A: FnOnce() -> AR,
        AR: Into<String>,
    {
        self.inputs += 1;
        Ok(bellman::Variable::new_unchecked(bellman::Index::Input(
            self.inputs,
        )))
    }

    fn enforce<A, AR, LA, LB, LC>(&mut self, _: A, _: LA, _: LB, _: LC)
    where
        A: FnOnce() -> AR,
        AR: Into<String>,
        LA: FnOnce(bellman::LinearCombination<Scalar>) -> bellman::LinearCombination<Scalar>,
        LB: FnOnce(bellman::LinearCombination<Scalar>) -> bellman::LinearCombination<Scalar>,
        LC: FnOnce(bellman::LinearCombination<Scalar>) -> bellman::LinearCombination<Scalar>,
    {
        self.constraints += 1;
    }

    fn push_namespace<NR: Into<String>, N: FnOnce() -> NR>(&mut self, _: N) {}

    fn pop_namespace(&mut self) {}

    fn get_root(&mut self) -> &mut Self {
        self
    }
}

/// The number of R1CS constraints of the Spend and of the Output circuit.
pub fn constraints() -> anyhow::Result<(usize, usize)> {
    use bellman::Circuit;
    let mut spend = Counter::default();
    empty_spend()
        .synthesize(&mut spend)
        .map_err(|e| anyhow!("Spend circuit: {e}"))?;
    let mut output = Counter::default();
    empty_output()
        .synthesize(&mut output)
        .map_err(|e| anyhow!("Output circuit: {e}"))?;
    Ok((spend.constraints, output.constraints))
}

#[cfg(test)]
mod tests {
    /// The circuits measured are Zcash's: their sizes are the published ones (the Sapling
    /// protocol specification's Spend and Output circuits).
    #[test]
    fn the_circuits_are_sapling_s() {
        assert_eq!(super::constraints().expect("synthesis"), (98_777, 7_827));
    }
}
