//! Wallet keys and addresses (docs/protocol/keys.md).
//!
//! Everything derives from a 32-byte wallet seed with blake3's key-derivation mode, one context
//! string per key:
//! - `ask` (spending key) and `nk` (nullifier key), field elements;
//! - the owner tag `apk = Poseidon_OwnerTag(ask, nk)` — binding `nk` into the owner tag is what
//!   makes the nullifier of a note unique (docs/decisions/0001);
//! - an X25519 key pair for note encryption, and an outgoing key `ovk` that lets a restored
//!   wallet read back what it sent.
//!
//! An [`Address`] is (`apk`, X25519 public key), printed as `shoji1…` with a 40-bit checksum.

use crate::encoding::{fr_from_bytes, fr_to_bytes, EncodingError};
use crate::poseidon::{self, Domain};
use crate::Fr;
use ark_ff::PrimeField;
use curve25519_dalek::montgomery::MontgomeryPoint;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A wallet seed: the one secret a participant must keep.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct WalletSeed(pub [u8; 32]);

impl WalletSeed {
    /// A fresh random seed.
    pub fn random(rng: &mut impl rand_core::CryptoRngCore) -> Self {
        let mut s = [0u8; 32];
        rng.fill_bytes(&mut s);
        Self(s)
    }
}

fn derive_field(context: &str, seed: &[u8; 32]) -> Fr {
    let mut out = [0u8; 64];
    let mut xof = blake3::Hasher::new_derive_key(context);
    xof.update(seed);
    xof.finalize_xof().fill(&mut out);
    Fr::from_le_bytes_mod_order(&out)
}

fn derive_bytes(context: &str, seed: &[u8; 32]) -> [u8; 32] {
    blake3::derive_key(context, seed)
}

/// Computes the owner tag `apk = H_OwnerTag(ask, nk)`.
pub fn owner_tag(ask: &Fr, nk: &Fr) -> Fr {
    poseidon::hash(Domain::OwnerTag, &[*ask, *nk])
}

/// All keys of one wallet.
#[derive(Clone)]
pub struct SpendingKeys {
    /// Spending key: proves ownership of notes inside the circuit.
    pub ask: Fr,
    /// Nullifier key: derives the nullifier of each owned note.
    pub nk: Fr,
    /// Owner tag `H(ask, nk)`: the owner field of every note this wallet receives.
    pub apk: Fr,
    /// X25519 secret for note decryption (clamped when used).
    pub enc_secret: [u8; 32],
    /// Outgoing key: encrypts, for ourselves, what we send.
    pub ovk: [u8; 32],
}

impl Drop for SpendingKeys {
    fn drop(&mut self) {
        self.enc_secret.zeroize();
        self.ovk.zeroize();
        // Field elements have no zeroize implementation; overwrite them.
        self.ask = Fr::from(0u64);
        self.nk = Fr::from(0u64);
    }
}

impl SpendingKeys {
    /// Derives every key of a wallet from its seed.
    pub fn from_seed(seed: &WalletSeed) -> Self {
        let ask = derive_field("shoji 2026 spending key v1", &seed.0);
        let nk = derive_field("shoji 2026 nullifier key v1", &seed.0);
        Self {
            ask,
            nk,
            apk: owner_tag(&ask, &nk),
            enc_secret: derive_bytes("shoji 2026 note encryption key v1", &seed.0),
            ovk: derive_bytes("shoji 2026 outgoing viewing key v1", &seed.0),
        }
    }

    /// This wallet's address.
    pub fn address(&self) -> Address {
        Address {
            apk: self.apk,
            pk_enc: MontgomeryPoint::mul_base_clamped(self.enc_secret).to_bytes(),
        }
    }
}

/// A payment address: where notes are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Address {
    /// The owner tag notes to this address carry.
    pub apk: Fr,
    /// The X25519 public key notes to this address are encrypted to.
    pub pk_enc: [u8; 32],
}

/// Version byte of the address encoding.
pub const ADDRESS_VERSION: u8 = 1;
/// Human-readable prefix of an address.
pub const ADDRESS_PREFIX: &str = "shoji1";
const CHECKSUM_BYTES: usize = 5;
const ADDRESS_PAYLOAD: usize = 1 + 32 + 32;
const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/// Why an address string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressError {
    /// It does not start with `shoji1`.
    #[error("an address starts with \"{ADDRESS_PREFIX}\"")]
    Prefix,
    /// It has a character outside the address alphabet.
    #[error("character {0:?} cannot appear in an address")]
    Character(char),
    /// It is too short or too long.
    #[error("an address has {expected} characters after the prefix, this one has {got}")]
    Length {
        /// Required.
        expected: usize,
        /// Given.
        got: usize,
    },
    /// The checksum does not match: most likely a typo.
    #[error("address checksum does not match (mistyped address?)")]
    Checksum,
    /// An unknown address version.
    #[error("unknown address version {0}")]
    Version(u8),
    /// The owner tag or encryption key is not valid.
    #[error("address contents are invalid: {0}")]
    Contents(#[from] EncodingError),
}

fn checksum(payload: &[u8]) -> [u8; CHECKSUM_BYTES] {
    let h = blake3::derive_key("shoji 2026 address checksum v1", payload);
    let mut out = [0u8; CHECKSUM_BYTES];
    out.copy_from_slice(&h[..CHECKSUM_BYTES]);
    out
}

fn base32_len(bytes: usize) -> usize {
    (bytes * 8).div_ceil(5)
}

impl Address {
    fn payload(&self) -> [u8; ADDRESS_PAYLOAD] {
        let mut p = [0u8; ADDRESS_PAYLOAD];
        p[0] = ADDRESS_VERSION;
        p[1..33].copy_from_slice(&fr_to_bytes(&self.apk));
        p[33..].copy_from_slice(&self.pk_enc);
        p
    }

    /// The 64 raw bytes `apk ‖ pk_enc`.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(&self.payload()[1..]);
        out
    }

    /// Decodes [`Address::to_bytes`], checking both halves.
    pub fn from_bytes(bytes: &[u8; 64]) -> Result<Self, EncodingError> {
        let apk = fr_from_bytes("address owner tag", &bytes[..32])?;
        let mut pk_enc = [0u8; 32];
        pk_enc.copy_from_slice(&bytes[32..]);
        // A low-order X25519 key would make every shared secret predictable.
        let low_order = MontgomeryPoint(pk_enc)
            .to_edwards(0)
            .is_none_or(|p| p.is_small_order());
        if low_order {
            return Err(EncodingError::Invalid(
                "address encryption key is a low-order point",
            ));
        }
        Ok(Self { apk, pk_enc })
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let payload = self.payload();
        let mut data = payload.to_vec();
        data.extend_from_slice(&checksum(&payload));
        let mut s = String::from(ADDRESS_PREFIX);
        let (mut acc, mut bits) = (0u32, 0u32);
        for b in data {
            acc = (acc << 8) | b as u32;
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                s.push(CHARSET[((acc >> bits) & 31) as usize] as char);
            }
        }
        if bits > 0 {
            s.push(CHARSET[((acc << (5 - bits)) & 31) as usize] as char);
        }
        f.write_str(&s)
    }
}

impl std::str::FromStr for Address {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, AddressError> {
        let s = s.trim();
        let lower = s.to_ascii_lowercase();
        let body = lower
            .strip_prefix(ADDRESS_PREFIX)
            .ok_or(AddressError::Prefix)?;
        let total = ADDRESS_PAYLOAD + CHECKSUM_BYTES;
        let expected = base32_len(total);
        if body.chars().count() != expected {
            return Err(AddressError::Length {
                expected,
                got: body.chars().count(),
            });
        }
        let mut bytes = Vec::with_capacity(total);
        let (mut acc, mut bits) = (0u32, 0u32);
        for c in body.chars() {
            let v = CHARSET
                .iter()
                .position(|&x| x as char == c)
                .ok_or(AddressError::Character(c))? as u32;
            acc = (acc << 5) | v;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                bytes.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        // Padding bits must be zero, so each address has exactly one spelling.
        if acc != 0 || bytes.len() != total {
            return Err(AddressError::Checksum);
        }
        let (payload, check) = bytes.split_at(ADDRESS_PAYLOAD);
        if checksum(payload) != check {
            return Err(AddressError::Checksum);
        }
        if payload[0] != ADDRESS_VERSION {
            return Err(AddressError::Version(payload[0]));
        }
        let mut raw = [0u8; 64];
        raw.copy_from_slice(&payload[1..]);
        Ok(Address::from_bytes(&raw)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys(b: u8) -> SpendingKeys {
        SpendingKeys::from_seed(&WalletSeed([b; 32]))
    }

    #[test]
    fn derivation_is_deterministic_and_separated() {
        let (a, b) = (keys(1), keys(1));
        assert_eq!(a.apk, b.apk);
        assert_ne!(a.ask, a.nk);
        assert_ne!(keys(1).apk, keys(2).apk);
        assert_eq!(a.apk, owner_tag(&a.ask, &a.nk));
    }

    #[test]
    fn address_text_roundtrip() {
        let addr = keys(3).address();
        let s = addr.to_string();
        assert!(s.starts_with("shoji1"));
        assert_eq!(s.parse::<Address>().unwrap(), addr);
        assert_eq!(
            s.to_uppercase()
                .replace("SHOJI1", "shoji1")
                .parse::<Address>()
                .unwrap(),
            addr
        );
    }

    #[test]
    fn address_errors_are_specific() {
        let s = keys(4).address().to_string();
        assert_eq!("bitcoin1qq".parse::<Address>(), Err(AddressError::Prefix));
        assert!(matches!(
            s[..s.len() - 1].parse::<Address>(),
            Err(AddressError::Length { .. })
        ));
        let mut bad = s.clone();
        bad.replace_range(10..11, "b");
        assert_eq!(bad.parse::<Address>(), Err(AddressError::Character('b')));
    }

    proptest! {
        /// Any single-character substitution is caught.
        #[test]
        fn typo_rejected(pos in 6usize..118, c in 0usize..32) {
            let s = keys(5).address().to_string();
            prop_assume!(pos < s.len());
            let replacement = CHARSET[c] as char;
            prop_assume!(s.as_bytes()[pos] as char != replacement);
            let mut typo = s.clone();
            typo.replace_range(pos..pos + 1, &replacement.to_string());
            prop_assert!(typo.parse::<Address>().is_err());
        }

        #[test]
        fn parse_never_panics(s in ".{0,200}") {
            let _ = s.parse::<Address>();
        }
    }
}
