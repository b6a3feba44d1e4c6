//! Shoji's cryptographic primitives, natively and (feature `r1cs`) as circuit gadgets.
//!
//! Each primitive's native code lives in its module; its gadget, where the transfer circuit needs
//! one, beside it in `constraints.rs`, and a test checks the two agree on random inputs.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod account;
pub mod audit;
pub mod encoding;
pub mod encryption;
pub mod governance;
pub mod keys;
pub mod note;
pub mod poseidon;
#[cfg(feature = "r1cs")]
pub mod r1cs_testing;
pub mod recovery;
pub mod tree;
pub mod tx;

/// The scalar field of BLS12-381, where every circuit value lives (= Jubjub's base field).
pub type Fr = ark_bls12_381::Fr;
