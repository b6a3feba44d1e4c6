//! The transfer statement (docs/protocol/statement.md): one circuit for transfers, mints and redeems.
//!
//! Public inputs, in order: `anchor, nf_0, nf_1, cm_0, cm_1, value_in, value_out, asset_pub, PK.x,
//! PK.y, E.x, E.y, c_0..c_3, tx_binding` ([`shoji_primitives::tx::TransferPublic`]).
//!
//! The statement: the prover knows `ask`, `nk`, two input notes and two output notes such that
//! 1. `apk = H(ask, nk)` owns both inputs (one sender);
//! 2. each input's commitment is in the tree under `anchor`, unless its value is zero (a dummy);
//! 3. `nf_i = H(nk, rho_i)`;
//! 4. output `j` has `rho = nf_j` and commitment `cm_j`;
//! 5. all values and the asset are 64-bit; `in_0 + in_1 + value_in = out_0 + out_1 + value_out`;
//!    all four notes share one asset, equal to `asset_pub` whenever a public value is non-zero;
//! 6. `(E, c)` encrypts (sender apk, output owners, output values, asset) to `PK` (see
//!    [`shoji_primitives::audit`]);
//! 7. `tx_binding` is bound by a constraint (docs/protocol/statement.md, Rule 1).
//!
//! Public values (`value_in`, `value_out`, `asset_pub`) are not range-checked here: the verifier
//! builds them from 64-bit fields of the transaction, so they are below 2^64 by construction.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use ark_ed_on_bls12_381::constraints::EdwardsVar;
use ark_ff::Field;
use ark_r1cs_std::{
    alloc::AllocVar, boolean::Boolean, eq::EqGadget, fields::fp::FpVar, fields::FieldVar,
};
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystemRef, SynthesisError};
use shoji_primitives::audit::{self, constraints as audit_gadget, AUDIT_ELEMENTS};
use shoji_primitives::keys::owner_tag;
use shoji_primitives::note::constraints::{self as note_gadget, U64Var};
use shoji_primitives::note::{output_rho, Amount, AssetId, Note};
use shoji_primitives::tree::{constraints::MerklePathVar, MerklePath};
use shoji_primitives::tx::TransferPublic;
use shoji_primitives::Fr;

/// A note being spent and its path to the anchor.
#[derive(Clone, Debug)]
pub struct InputWitness {
    /// The note (its owner must be the sender's `apk`).
    pub note: Note,
    /// Its authentication path (ignored for a zero-value dummy).
    pub path: MerklePath,
}

/// A note being created (its `rho` is the nullifier of the input with the same index).
#[derive(Clone, Copy, Debug)]
pub struct OutputWitness {
    /// Receiver's owner tag.
    pub owner: Fr,
    /// Value.
    pub value: Amount,
    /// Commitment randomness.
    pub rcm: Fr,
}

/// Everything the prover knows and the verifier does not. Its `Debug` output is redacted.
#[derive(Clone)]
pub struct TransferPrivate {
    /// Sender's spending key.
    pub ask: Fr,
    /// Sender's nullifier key.
    pub nk: Fr,
    /// The one asset of all four notes.
    pub asset: AssetId,
    /// The two inputs.
    pub inputs: [InputWitness; 2],
    /// The two outputs.
    pub outputs: [OutputWitness; 2],
    /// The audit record's ephemeral exponent.
    pub audit_e: audit::AuditEphemeral,
}

impl std::fmt::Debug for TransferPrivate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TransferPrivate(<secret>)")
    }
}

impl TransferPrivate {
    /// The nullifiers the inputs reveal.
    pub fn nullifiers(&self) -> [Fr; 2] {
        [0, 1].map(|i| self.inputs[i].note.nullifier(&self.nk))
    }

    /// The output notes (with their derived `rho`).
    pub fn output_notes(&self) -> [Note; 2] {
        let nfs = self.nullifiers();
        [0, 1].map(|j| Note {
            asset: self.asset,
            value: self.outputs[j].value,
            owner: self.outputs[j].owner,
            rho: output_rho(&nfs, j),
            rcm: self.outputs[j].rcm,
        })
    }

    /// What the audit record must say.
    pub fn audit_plaintext(&self) -> audit::AuditPlaintext {
        audit::AuditPlaintext {
            sender: owner_tag(&self.ask, &self.nk),
            receivers: [self.outputs[0].owner, self.outputs[1].owner],
            values: [self.outputs[0].value, self.outputs[1].value],
            asset: self.asset,
        }
    }
}

/// The transfer circuit. With `None` values it describes the constraint system only (setup).
#[derive(Clone, Debug, Default)]
pub struct TransferCircuit {
    /// Public inputs.
    pub public: Option<TransferPublic>,
    /// Witness.
    pub private: Option<TransferPrivate>,
}

impl TransferCircuit {
    /// The circuit without values, for parameter generation.
    pub fn blank() -> Self {
        Self::default()
    }

    /// The circuit for one statement.
    pub fn new(public: TransferPublic, private: TransferPrivate) -> Self {
        Self {
            public: Some(public),
            private: Some(private),
        }
    }
}

fn get<T, U>(v: &Option<T>, f: impl FnOnce(&T) -> U) -> Result<U, SynthesisError> {
    v.as_ref().map(f).ok_or(SynthesisError::AssignmentMissing)
}

/// Variables of one synthesis that tests reach for.
#[derive(Clone, Debug, Default)]
pub struct Handles {
    /// The 64 bits of each output value, little-endian.
    pub output_value_bits: Vec<Vec<ark_relations::gr1cs::Variable>>,
}

impl ConstraintSynthesizer<Fr> for TransferCircuit {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        self.synthesize(cs).map(|_| ())
    }
}

impl TransferCircuit {
    /// Generates the constraints and returns handles to some of the variables.
    pub fn synthesize(self, cs: ConstraintSystemRef<Fr>) -> Result<Handles, SynthesisError> {
        let mut handles = Handles::default();
        let (public, private) = (&self.public, &self.private);
        let input =
            |f: &dyn Fn(&TransferPublic) -> Fr| FpVar::new_input(cs.clone(), || get(public, f));
        let witness =
            |f: &dyn Fn(&TransferPrivate) -> Fr| FpVar::new_witness(cs.clone(), || get(private, f));

        // Public inputs, in TransferPublic::to_field_elements order.
        let anchor = input(&|p| p.anchor)?;
        let nf_pub = [input(&|p| p.nullifiers[0])?, input(&|p| p.nullifiers[1])?];
        let cm_pub = [input(&|p| p.commitments[0])?, input(&|p| p.commitments[1])?];
        let value_in = input(&|p| Fr::from(p.value_in.0))?;
        let value_out = input(&|p| Fr::from(p.value_out.0))?;
        let asset_pub = input(&|p| Fr::from(p.asset.0))?;
        let pk = EdwardsVar::new(input(&|p| p.auditor.0.x)?, input(&|p| p.auditor.0.y)?);
        let epk = [input(&|p| p.audit.epk.x)?, input(&|p| p.audit.epk.y)?];
        let mut ct_pub = Vec::with_capacity(AUDIT_ELEMENTS);
        for i in 0..AUDIT_ELEMENTS {
            ct_pub.push(input(&|p| p.audit.ciphertext[i])?);
        }
        let binding = input(&|p| p.binding)?;

        // (1) One sender owns both inputs.
        let ask = witness(&|w| w.ask)?;
        let nk = witness(&|w| w.nk)?;
        let apk = note_gadget::owner_tag(&ask, &nk)?;

        // (5) One 64-bit asset for all notes; it is the public asset whenever value is public.
        let asset = U64Var::new_witness(cs.clone(), || get(private, |w| w.asset.0))?;
        (&asset.value - &asset_pub).mul_equals(&(&value_in + &value_out), &FpVar::zero())?;

        // (2, 3) Inputs.
        let mut sum_in = value_in.clone();
        for (i, nf) in nf_pub.iter().enumerate() {
            let value =
                U64Var::new_witness(cs.clone(), || get(private, |w| w.inputs[i].note.value.0))?;
            let rho = witness(&|w| w.inputs[i].note.rho)?;
            let rcm = witness(&|w| w.inputs[i].note.rcm)?;
            let packed = note_gadget::pack_asset_value(&asset.value, &value.value);
            let cm = note_gadget::note_commitment(&packed, &apk, &rho, &rcm)?;
            let path = MerklePathVar::new_witness(cs.clone(), || {
                get(private, |w| w.inputs[i].path.clone())
            })?;
            let root = path.root(&cm)?;
            // The path must reach the anchor unless the note is worth nothing.
            (&root - &anchor).mul_equals(&value.value, &FpVar::zero())?;
            note_gadget::nullifier(&nk, &rho)?.enforce_equal(nf)?;
            sum_in += &value.value;
        }

        // (4) Outputs: rho_j = nf_j.
        let mut sum_out = value_out.clone();
        let mut out_values = Vec::with_capacity(2);
        let mut out_owners = Vec::with_capacity(2);
        for j in 0..2 {
            let value = U64Var::new_witness(cs.clone(), || get(private, |w| w.outputs[j].value.0))?;
            let owner = witness(&|w| w.outputs[j].owner)?;
            let rcm = witness(&|w| w.outputs[j].rcm)?;
            let packed = note_gadget::pack_asset_value(&asset.value, &value.value);
            note_gadget::note_commitment(&packed, &owner, &nf_pub[j], &rcm)?
                .enforce_equal(&cm_pub[j])?;
            sum_out += &value.value;
            handles.output_value_bits.push(
                value
                    .bits
                    .iter()
                    .map(|b| match b {
                        Boolean::Var(v) => v.variable(),
                        Boolean::Constant(_) => ark_relations::gr1cs::Variable::Zero,
                    })
                    .collect(),
            );
            out_values.push(value.value);
            out_owners.push(owner);
        }

        // (5) Balance. Every term is below 2^64, so the field sum cannot wrap.
        sum_in.enforce_equal(&sum_out)?;

        // (6) The audit record.
        let e_bits_native = private.as_ref().map(|w| w.audit_e.bits());
        let e_bits = (0..audit::EPHEMERAL_BITS)
            .map(|i| Boolean::new_witness(cs.clone(), || get(&e_bits_native, |b| b[i])))
            .collect::<Result<Vec<_>, _>>()?;
        let packed_amounts = &asset.value * Fr::from(2u64).pow([128u64])
            + &out_values[1] * Fr::from(1u128 << 64)
            + &out_values[0];
        let plaintext = [
            apk,
            out_owners[0].clone(),
            out_owners[1].clone(),
            packed_amounts,
        ];
        let record = audit_gadget::encrypt(&pk, &plaintext, &e_bits)?;
        record.epk.x.enforce_equal(&epk[0])?;
        record.epk.y.enforce_equal(&epk[1])?;
        for (c, p) in record.ciphertext.iter().zip(&ct_pub) {
            c.enforce_equal(p)?;
        }

        // (7) tx_binding appears in a constraint (Rule 1).
        let _ = binding.square()?;
        Ok(handles)
    }
}

#[cfg(test)]
mod tests;
