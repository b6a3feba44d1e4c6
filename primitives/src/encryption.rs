//! Note encryption, outside the circuit (docs/protocol/notes.md, "Note encryption").
//!
//! For each output, the sender picks an ephemeral X25519 key `esk`, agrees a secret with the
//! receiver's encryption key and seals the note plaintext with ChaCha20-Poly1305 under
//! `blake3_derive("shoji 2026 note key v1", shared ‖ epk)`. It also seals, under a key derived from
//! its own outgoing key `ovk`, the receiver's address and `esk`, so a wallet restored from its seed
//! can read back what it sent. Every ciphertext has the same size; keys are used once, so the
//! nonce is fixed.
//!
//! `rho` is not in the plaintext: the receiver derives it from the transaction's nullifiers, and
//! checks the decrypted note against the published commitment before accepting it.

use crate::encoding::{fr_from_bytes, fr_to_bytes};
use crate::keys::{Address, SpendingKeys};
use crate::note::{Amount, AssetId, Note};
use crate::Fr;
use ark_ff::UniformRand;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use curve25519_dalek::montgomery::MontgomeryPoint;
use zeroize::Zeroize;

mod x25519;

/// Memo bytes carried with every note (zero-padded).
pub const MEMO_BYTES: usize = 128;
/// Note plaintext: version, asset, value, rcm, memo.
pub const NOTE_PLAINTEXT_BYTES: usize = 1 + 8 + 8 + 32 + MEMO_BYTES;
/// Poly1305 tag.
pub const TAG_BYTES: usize = 16;
/// Encrypted note.
pub const ENC_CIPHERTEXT_BYTES: usize = NOTE_PLAINTEXT_BYTES + TAG_BYTES;
/// Outgoing plaintext: receiver address (64) and `esk` (32).
pub const OUT_PLAINTEXT_BYTES: usize = 64 + 32;
/// Encrypted outgoing plaintext.
pub const OUT_CIPHERTEXT_BYTES: usize = OUT_PLAINTEXT_BYTES + TAG_BYTES;
/// One output's ciphertexts: `epk ‖ enc ‖ out`.
pub const NOTE_CIPHERTEXT_BYTES: usize = 32 + ENC_CIPHERTEXT_BYTES + OUT_CIPHERTEXT_BYTES;
const NOTE_PLAINTEXT_VERSION: u8 = 1;

/// A fixed-size memo.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Memo(pub [u8; MEMO_BYTES]);

impl Memo {
    /// The empty memo.
    pub fn empty() -> Self {
        Self([0; MEMO_BYTES])
    }

    /// A memo holding `text` (UTF-8), or `None` if it is longer than [`MEMO_BYTES`].
    pub fn from_text(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        if b.len() > MEMO_BYTES {
            return None;
        }
        let mut m = [0u8; MEMO_BYTES];
        m[..b.len()].copy_from_slice(b);
        Some(Self(m))
    }

    /// The memo as text, trailing zero bytes removed (lossy for non-UTF-8).
    pub fn to_text(&self) -> String {
        let end = self.0.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        String::from_utf8_lossy(&self.0[..end]).into_owned()
    }
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Memo({:?})", self.to_text())
    }
}

/// The ciphertexts of one output, as published in a transaction.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NoteCiphertext {
    /// Ephemeral X25519 public key.
    pub epk: [u8; 32],
    /// The note, for the receiver.
    pub enc: [u8; ENC_CIPHERTEXT_BYTES],
    /// Receiver address and `esk`, for the sender's outgoing key.
    pub out: [u8; OUT_CIPHERTEXT_BYTES],
}

impl NoteCiphertext {
    /// `epk ‖ enc ‖ out`.
    pub fn to_bytes(&self) -> [u8; NOTE_CIPHERTEXT_BYTES] {
        let mut b = [0u8; NOTE_CIPHERTEXT_BYTES];
        b[..32].copy_from_slice(&self.epk);
        b[32..32 + ENC_CIPHERTEXT_BYTES].copy_from_slice(&self.enc);
        b[32 + ENC_CIPHERTEXT_BYTES..].copy_from_slice(&self.out);
        b
    }

    /// Splits [`NoteCiphertext::to_bytes`] (any bytes are accepted: ciphertexts are opaque).
    pub fn from_bytes(b: &[u8; NOTE_CIPHERTEXT_BYTES]) -> Self {
        let mut c = Self {
            epk: [0; 32],
            enc: [0; ENC_CIPHERTEXT_BYTES],
            out: [0; OUT_CIPHERTEXT_BYTES],
        };
        c.epk.copy_from_slice(&b[..32]);
        c.enc.copy_from_slice(&b[32..32 + ENC_CIPHERTEXT_BYTES]);
        c.out.copy_from_slice(&b[32 + ENC_CIPHERTEXT_BYTES..]);
        c
    }
}

fn note_key(shared: &[u8; 32], epk: &[u8; 32]) -> Key {
    let mut h = blake3::Hasher::new_derive_key("shoji 2026 note key v1");
    h.update(shared);
    h.update(epk);
    Key::from(*h.finalize().as_bytes())
}

fn out_key(ovk: &[u8; 32], cm: &Fr, epk: &[u8; 32]) -> Key {
    let mut h = blake3::Hasher::new_derive_key("shoji 2026 outgoing key v1");
    h.update(ovk);
    h.update(&fr_to_bytes(cm));
    h.update(epk);
    Key::from(*h.finalize().as_bytes())
}

fn seal(key: &Key, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    ChaCha20Poly1305::new(key)
        .encrypt(
            &Nonce::default(),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("ChaCha20-Poly1305 encryption of a short buffer cannot fail")
}

fn open(key: &Key, ciphertext: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    ChaCha20Poly1305::new(key)
        .decrypt(
            &Nonce::default(),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .ok()
}

/// Encrypts `note` (already committed as `cm`) to `to`, and to the sender's outgoing key `ovk`.
pub fn encrypt_note(
    note: &Note,
    memo: &Memo,
    to: &Address,
    ovk: &[u8; 32],
    rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
) -> NoteCiphertext {
    let mut esk = [0u8; 32];
    rng.fill_bytes(&mut esk);
    let epk = MontgomeryPoint::mul_base_clamped(esk).to_bytes();
    let shared = MontgomeryPoint(to.pk_enc).mul_clamped(esk);
    let cm = note.commitment();
    let cm_bytes = fr_to_bytes(&cm);

    let mut pt = [0u8; NOTE_PLAINTEXT_BYTES];
    pt[0] = NOTE_PLAINTEXT_VERSION;
    pt[1..9].copy_from_slice(&note.asset.0.to_le_bytes());
    pt[9..17].copy_from_slice(&note.value.0.to_le_bytes());
    pt[17..49].copy_from_slice(&fr_to_bytes(&note.rcm));
    pt[49..].copy_from_slice(&memo.0);
    let enc = seal(&note_key(shared.as_bytes(), &epk), &pt, &cm_bytes);

    let mut out_pt = [0u8; OUT_PLAINTEXT_BYTES];
    out_pt[..64].copy_from_slice(&to.to_bytes());
    out_pt[64..].copy_from_slice(&esk);
    let out = seal(&out_key(ovk, &cm, &epk), &out_pt, &cm_bytes);
    esk.zeroize();

    let mut c = NoteCiphertext {
        epk,
        enc: [0; ENC_CIPHERTEXT_BYTES],
        out: [0; OUT_CIPHERTEXT_BYTES],
    };
    c.enc.copy_from_slice(&enc);
    c.out.copy_from_slice(&out);
    c
}

fn parse_plaintext(pt: &[u8], owner: Fr, rho: Fr, cm: &Fr) -> Option<(Note, Memo)> {
    if pt.len() != NOTE_PLAINTEXT_BYTES || pt[0] != NOTE_PLAINTEXT_VERSION {
        return None;
    }
    let u64_at = |i: usize| u64::from_le_bytes(pt[i..i + 8].try_into().expect("8 bytes"));
    let note = Note {
        asset: AssetId(u64_at(1)),
        value: Amount(u64_at(9)),
        owner,
        rho,
        rcm: fr_from_bytes("note rcm", &pt[17..49]).ok()?,
    };
    // A ciphertext that decrypts but does not open the published commitment is worthless.
    if note.commitment() != *cm {
        return None;
    }
    let mut memo = [0u8; MEMO_BYTES];
    memo.copy_from_slice(&pt[49..]);
    Some((note, Memo(memo)))
}

/// Trial-decrypts an output as its receiver. `cm` and `rho` come from the transaction (the output's
/// commitment and [`crate::note::output_rho`] of its nullifiers). `None` if the note is not ours.
pub fn try_decrypt_note(
    keys: &SpendingKeys,
    c: &NoteCiphertext,
    cm: &Fr,
    rho: Fr,
) -> Option<(Note, Memo)> {
    let shared = MontgomeryPoint(c.epk).mul_clamped(keys.enc_secret);
    let pt = open(
        &note_key(shared.as_bytes(), &c.epk),
        &c.enc,
        &fr_to_bytes(cm),
    )?;
    parse_plaintext(&pt, keys.apk, rho, cm)
}

/// One output to trial-decrypt: its ciphertexts, commitment and `rho`, as for
/// [`try_decrypt_note`].
#[derive(Clone, Copy, Debug)]
pub struct TrialOutput<'a> {
    /// The output's ciphertexts.
    pub ciphertext: &'a NoteCiphertext,
    /// The output's commitment, published in the transaction.
    pub cm: Fr,
    /// [`crate::note::output_rho`] of the transaction's nullifiers.
    pub rho: Fr,
}

/// Trial-decrypts many outputs as their receiver: entry `i` is exactly
/// `try_decrypt_note(keys, outputs[i].ciphertext, &outputs[i].cm, outputs[i].rho)`, each
/// ciphertext checked by its own tag and the commitment it opens, but the key agreements are
/// computed several at a time (the same secret for all), which is about twice as fast.
pub fn try_decrypt_notes(
    keys: &SpendingKeys,
    outputs: &[TrialOutput<'_>],
) -> Vec<Option<(Note, Memo)>> {
    let epks: Vec<[u8; 32]> = outputs.iter().map(|o| o.ciphertext.epk).collect();
    let mut shared = x25519::mul_clamped_many(&keys.enc_secret, &epks);
    let found = outputs
        .iter()
        .zip(&shared)
        .map(|(o, s)| {
            let c = o.ciphertext;
            let pt = open(&note_key(s, &c.epk), &c.enc, &fr_to_bytes(&o.cm))?;
            parse_plaintext(&pt, keys.apk, o.rho, &o.cm)
        })
        .collect();
    shared.zeroize();
    found
}

/// Recovers an output the holder of `ovk` sent: the note, its receiver and the memo.
pub fn try_recover_outgoing(
    ovk: &[u8; 32],
    c: &NoteCiphertext,
    cm: &Fr,
    rho: Fr,
) -> Option<(Note, Address, Memo)> {
    let cm_bytes = fr_to_bytes(cm);
    let out = open(&out_key(ovk, cm, &c.epk), &c.out, &cm_bytes)?;
    let to = Address::from_bytes(out[..64].try_into().ok()?).ok()?;
    let esk: [u8; 32] = out[64..].try_into().ok()?;
    if MontgomeryPoint::mul_base_clamped(esk).to_bytes() != c.epk {
        return None;
    }
    let shared = MontgomeryPoint(to.pk_enc).mul_clamped(esk);
    let pt = open(&note_key(shared.as_bytes(), &c.epk), &c.enc, &cm_bytes)?;
    let (note, memo) = parse_plaintext(&pt, to.apk, rho, cm)?;
    Some((note, to, memo))
}

/// A random `rcm`.
pub fn random_rcm(rng: &mut impl rand_core::RngCore) -> Fr {
    Fr::rand(rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::WalletSeed;
    use rand_core::OsRng;

    fn setup() -> (SpendingKeys, SpendingKeys, Note, Memo, NoteCiphertext) {
        let alice = SpendingKeys::from_seed(&WalletSeed([1; 32]));
        let bob = SpendingKeys::from_seed(&WalletSeed([2; 32]));
        let note = Note {
            asset: AssetId(3),
            value: Amount(250),
            owner: bob.apk,
            rho: Fr::from(17u64),
            rcm: random_rcm(&mut OsRng),
        };
        let memo = Memo::from_text("invoice 42").unwrap();
        let c = encrypt_note(&note, &memo, &bob.address(), &alice.ovk, &mut OsRng);
        (alice, bob, note, memo, c)
    }

    #[test]
    fn receiver_decrypts_and_sender_recovers() {
        let (alice, bob, note, memo, c) = setup();
        let cm = note.commitment();
        assert_eq!(
            try_decrypt_note(&bob, &c, &cm, note.rho),
            Some((note, memo))
        );
        assert_eq!(try_decrypt_note(&alice, &c, &cm, note.rho), None);
        let (n, to, m) = try_recover_outgoing(&alice.ovk, &c, &cm, note.rho).unwrap();
        assert_eq!((n, to, m), (note, bob.address(), memo));
        assert!(try_recover_outgoing(&bob.ovk, &c, &cm, note.rho).is_none());
        assert_eq!(memo.to_text(), "invoice 42");
        assert_eq!(NoteCiphertext::from_bytes(&c.to_bytes()), c);
    }

    /// A flipped byte anywhere, a wrong commitment or a wrong rho: nothing decrypts.
    #[test]
    fn tampering_is_detected() {
        let (alice, bob, note, _, c) = setup();
        let cm = note.commitment();
        for i in [0usize, 31, 32, 100, 32 + ENC_CIPHERTEXT_BYTES - 1] {
            let mut b = c.to_bytes();
            b[i] ^= 1;
            assert!(
                try_decrypt_note(&bob, &NoteCiphertext::from_bytes(&b), &cm, note.rho).is_none(),
                "byte {i}"
            );
        }
        let mut b = c.to_bytes();
        b[NOTE_CIPHERTEXT_BYTES - 1] ^= 1;
        assert!(
            try_recover_outgoing(&alice.ovk, &NoteCiphertext::from_bytes(&b), &cm, note.rho)
                .is_none()
        );
        assert!(try_decrypt_note(&bob, &c, &(cm + Fr::from(1u64)), note.rho).is_none());
        assert!(try_decrypt_note(&bob, &c, &cm, note.rho + Fr::from(1u64)).is_none());
    }

    /// The batched trial decryption agrees with the one-by-one one on every entry of a batch
    /// longer than a chunk of lanes: ours, a stranger's, and ours with one byte flipped (in `epk`,
    /// `enc`, or its tag), or checked against a wrong commitment.
    #[test]
    fn batch_agrees_with_single() {
        let (alice, bob, note, memo, c) = setup();
        let cm = note.commitment();
        let carol = SpendingKeys::from_seed(&WalletSeed([3; 32]));
        let other = encrypt_note(&note, &memo, &carol.address(), &alice.ovk, &mut OsRng);
        let mut cts = vec![c, other];
        for i in [0usize, 31, 40, 32 + ENC_CIPHERTEXT_BYTES - 1] {
            let mut b = c.to_bytes();
            b[i] ^= 0x10;
            cts.push(NoteCiphertext::from_bytes(&b));
        }
        cts.extend([c; 5]);
        let mut inputs: Vec<TrialOutput<'_>> = cts
            .iter()
            .map(|ct| TrialOutput {
                ciphertext: ct,
                cm,
                rho: note.rho,
            })
            .collect();
        inputs[8].cm = cm + Fr::from(1u64);
        let got = try_decrypt_notes(&bob, &inputs);
        let want: Vec<_> = inputs
            .iter()
            .map(|o| try_decrypt_note(&bob, o.ciphertext, &o.cm, o.rho))
            .collect();
        assert_eq!(got, want);
        let found: Vec<usize> = (0..got.len()).filter(|&i| got[i].is_some()).collect();
        assert_eq!(found, vec![0, 6, 7, 9, 10]);
        assert_eq!(got[0], Some((note, memo)));
        assert!(try_decrypt_notes(&alice, &inputs)
            .iter()
            .all(Option::is_none));
        assert!(try_decrypt_notes(&bob, &[]).is_empty());
    }

    #[test]
    fn memo_limits() {
        assert!(Memo::from_text(&"x".repeat(MEMO_BYTES)).is_some());
        assert!(Memo::from_text(&"x".repeat(MEMO_BYTES + 1)).is_none());
    }
}
