//! Guardian shares of the wallet seed: losing the wallet file and its phrase does not lose the
//! money, as long as `T` of `N` guardians keep their shares.
//!
//! The seed is sealed (ChaCha20-Poly1305) under a key derived from a random scalar `K` of the
//! Ristretto group, and `K` is shared with Shamir's scheme of threshold `T` over the group's
//! scalar field. Feldman commitments `Cⱼ = aⱼ·G` to the polynomial's coefficients travel in every
//! share, so a guardian checks that its share `sᵢ` belongs to the set (`sᵢ·G = Σ iʲ·Cⱼ`) without
//! learning anything of `K` beyond `C₀ = K·G` (whose discrete logarithm is as hard as the group).
//! Any `T` shares rebuild `K` by Lagrange interpolation at 0; fewer say nothing of it.
//!
//! A share file (JSON, [`SHARE_FORMAT`]) names its set (a hash of the commitments and the
//! sealed seed), its index, `T` and `N`, and holds the share as 24 BIP-39 words, whose
//! checksum catches a mistyped word before any arithmetic.
//!
//! A share may instead be encrypted to its guardian's key ([`guardian_public`], derived from the
//! guardian's own wallet seed): an ephemeral Ristretto Diffie–Hellman, ChaCha20-Poly1305 over the
//! share value with the set and index as associated data. The guardian opens it
//! ([`open_share`]) to check it or to hand it over; nobody else can read it, whoever holds the
//! file.

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT as G;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use serde::{Deserialize, Serialize};
use shoji_primitives::encoding::{hex_decode, hex_encode};
use shoji_primitives::keys::WalletSeed;
use zeroize::Zeroizing;

/// The format name every share file carries.
pub const SHARE_FORMAT: &str = "shoji-guardian-share-v1";

/// One guardian's share, as written to its file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareFile {
    /// [`SHARE_FORMAT`].
    pub format: String,
    /// The set this share belongs to (16 hex digits).
    pub set: String,
    /// This share's index, 1 to `shares`.
    pub index: u8,
    /// How many shares rebuild the seed.
    pub threshold: u8,
    /// How many shares the set has.
    pub shares: u8,
    /// The Feldman commitments to the sharing polynomial's coefficients (compressed Ristretto
    /// points, hex), `threshold` of them.
    pub commitments: Vec<String>,
    /// The seed, sealed under the shared key (hex, 48 bytes).
    pub sealed_seed: String,
    /// The share itself: 24 BIP-39 words (empty when the share is encrypted to a guardian).
    pub words: String,
    /// The guardian key the share is encrypted to (hex), if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_to: Option<String>,
    /// The encrypted share value (hex: ephemeral point ‖ ciphertext ‖ tag), if encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_share: Option<String>,
}

/// Why shares could not be made, checked or combined.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackupError {
    /// A threshold or count out of range.
    #[error("the threshold must be between 1 and the number of shares, and there can be at most 255 shares (got {threshold} of {shares})")]
    Parameters {
        /// The threshold asked for.
        threshold: u8,
        /// The number of shares asked for.
        shares: u8,
    },
    /// A share that does not check: a mistyped word, an edited field, a share of no set.
    #[error("share {name} is corrupted: {why}")]
    Corrupted {
        /// Which share (its file name).
        name: String,
        /// What is wrong with it.
        why: String,
    },
    /// Shares of two different sets.
    #[error("share {name} belongs to set {theirs}, the others to set {ours}: shares of different backups cannot be combined")]
    MixedSets {
        /// Which share.
        name: String,
        /// Its set.
        theirs: String,
        /// The first share's set.
        ours: String,
    },
    /// The same share twice.
    #[error("share {name} is share {index} again: each share counts once")]
    Duplicate {
        /// Which share.
        name: String,
        /// Its index.
        index: u8,
    },
    /// A share encrypted to a guardian, given where its words are needed.
    #[error("share {name} is encrypted to guardian key {guardian}: its guardian opens it first (shoji-wallet backup open)")]
    Encrypted {
        /// Which share.
        name: String,
        /// The guardian key (hex prefix).
        guardian: String,
    },
    /// A share that this guardian's key does not open.
    #[error("share {name} is not encrypted to this wallet's guardian key")]
    NotYours {
        /// Which share.
        name: String,
    },
    /// A guardian key that is not a point.
    #[error("{0:?} is not a guardian key (64 hex digits from `shoji-wallet backup guardian-key`)")]
    BadGuardianKey(String),
    /// Fewer shares than the threshold.
    #[error("{have} shares given, {need} needed: this set was split {need}-of-{shares}")]
    TooFew {
        /// Shares given.
        have: usize,
        /// The threshold.
        need: u8,
        /// The set's size.
        shares: u8,
    },
}

pub(crate) fn set_id(commitments: &[CompressedRistretto], sealed: &[u8]) -> String {
    let mut h = blake3::Hasher::new_derive_key("shoji 2026 guardian share set v1");
    for c in commitments {
        h.update(c.as_bytes());
    }
    h.update(sealed);
    hex_encode(&h.finalize().as_bytes()[..8])
}

fn seal_key(k: &Scalar) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(blake3::derive_key(
        "shoji 2026 guardian share seed key v1",
        k.as_bytes(),
    ))
}

/// The sealed seed's associated data: the set's parameters and commitments.
fn aad(threshold: u8, shares: u8, commitments: &[CompressedRistretto]) -> Vec<u8> {
    let mut out = vec![threshold, shares];
    for c in commitments {
        out.extend_from_slice(c.as_bytes());
    }
    out
}

fn cipher(key: &[u8; 32]) -> chacha20poly1305::ChaCha20Poly1305 {
    use chacha20poly1305::KeyInit;
    chacha20poly1305::ChaCha20Poly1305::new(key.into())
}

/// The guardian secret of a wallet: what opens the shares encrypted to it.
pub(crate) fn guardian_secret(seed: &WalletSeed) -> Zeroizing<Scalar> {
    let mut wide = Zeroizing::new([0u8; 64]);
    blake3::Hasher::new_derive_key("shoji 2026 guardian key v1")
        .update(&seed.0)
        .finalize_xof()
        .fill(&mut wide[..]);
    Zeroizing::new(Scalar::from_bytes_mod_order_wide(&wide))
}

/// The guardian key of the wallet of `seed` (what a participant encrypts a share to), hex.
pub fn guardian_public(seed: &WalletSeed) -> String {
    hex_encode((*guardian_secret(seed) * G).compress().as_bytes())
}

/// Parses a guardian key (hex).
pub fn parse_guardian(hex: &str) -> Result<RistrettoPoint, BackupError> {
    hex_decode("guardian key", hex.trim())
        .ok()
        .and_then(|b| CompressedRistretto::from_slice(&b).ok())
        .and_then(|c| c.decompress())
        .ok_or_else(|| BackupError::BadGuardianKey(hex.to_string()))
}

fn wrap_key(ephemeral: &CompressedRistretto, shared: &RistrettoPoint) -> Zeroizing<[u8; 32]> {
    let mut h = blake3::Hasher::new_derive_key("shoji 2026 guardian share wrap v1");
    h.update(ephemeral.as_bytes());
    h.update(shared.compress().as_bytes());
    Zeroizing::new(*h.finalize().as_bytes())
}

fn wrap_aad(set: &str, index: u8) -> Vec<u8> {
    let mut out = set.as_bytes().to_vec();
    out.push(index);
    out
}

/// Encrypts share `file` (with its words) to `guardian`: the words are removed.
pub(crate) fn wrap(
    file: &mut ShareFile,
    value: &Scalar,
    guardian: &RistrettoPoint,
    rng: &mut impl rand_core::CryptoRngCore,
) -> Result<(), BackupError> {
    use chacha20poly1305::aead::{Aead, Payload};
    let r = Zeroizing::new(Scalar::random(rng));
    let ephemeral = (*r * G).compress();
    let key = wrap_key(&ephemeral, &(*r * guardian));
    let sealed = cipher(&key)
        .encrypt(
            &[0u8; 12].into(),
            Payload {
                msg: value.as_bytes(),
                aad: &wrap_aad(&file.set, file.index),
            },
        )
        .map_err(|_| BackupError::BadGuardianKey("encryption failed".into()))?;
    let mut out = ephemeral.as_bytes().to_vec();
    out.extend_from_slice(&sealed);
    file.encrypted_to = Some(hex_encode(guardian.compress().as_bytes()));
    file.encrypted_share = Some(hex_encode(&out));
    file.words = String::new();
    Ok(())
}

/// Opens a share encrypted to the guardian whose wallet seed is `seed`: the same share with
/// its words (what the guardian checks, and hands over for a restore).
pub fn open_share(
    file: &ShareFile,
    name: &str,
    seed: &WalletSeed,
) -> Result<ShareFile, BackupError> {
    use chacha20poly1305::aead::{Aead, Payload};
    let not_yours = || BackupError::NotYours { name: name.into() };
    let (Some(to), Some(sealed)) = (&file.encrypted_to, &file.encrypted_share) else {
        return Ok(file.clone());
    };
    let secret = guardian_secret(seed);
    if *to != hex_encode((*secret * G).compress().as_bytes()) {
        return Err(not_yours());
    }
    let corrupt = |why: &str| BackupError::Corrupted {
        name: name.into(),
        why: why.into(),
    };
    let raw = hex_decode("encrypted share", sealed)
        .map_err(|_| corrupt("its encrypted share is not hex"))?;
    if raw.len() != 32 + 32 + 16 {
        return Err(corrupt("its encrypted share has the wrong length"));
    }
    let ephemeral =
        CompressedRistretto::from_slice(&raw[..32]).map_err(|_| corrupt("bad point"))?;
    let point = ephemeral
        .decompress()
        .ok_or_else(|| corrupt("its encrypted share's point is not a point"))?;
    let key = wrap_key(&ephemeral, &(*secret * point));
    let value = Zeroizing::new(
        cipher(&key)
            .decrypt(
                &[0u8; 12].into(),
                Payload {
                    msg: &raw[32..],
                    aad: &wrap_aad(&file.set, file.index),
                },
            )
            .map_err(|_| {
                corrupt("its encrypted share does not open (edited, or of another set or index)")
            })?,
    );
    let words = bip39::Mnemonic::from_entropy(&value)
        .map_err(|_| corrupt("its share value is malformed"))?;
    let mut plain = file.clone();
    plain.words = words.to_string();
    plain.encrypted_to = None;
    plain.encrypted_share = None;
    Ok(plain)
}

/// Splits `seed` into `shares` shares of which any `threshold` rebuild it; with `guardians`
/// (one key per share, in order, or none), share `i` is encrypted to guardian `i`.
pub fn split(
    seed: &WalletSeed,
    threshold: u8,
    shares: u8,
    guardians: &[RistrettoPoint],
    rng: &mut impl rand_core::CryptoRngCore,
) -> Result<Vec<ShareFile>, BackupError> {
    use chacha20poly1305::aead::{Aead, Payload};
    if threshold == 0
        || threshold > shares
        || !(guardians.is_empty() || guardians.len() == usize::from(shares))
    {
        return Err(BackupError::Parameters { threshold, shares });
    }
    let coefficients: Zeroizing<Vec<Scalar>> =
        Zeroizing::new((0..threshold).map(|_| Scalar::random(&mut *rng)).collect());
    let commitments: Vec<CompressedRistretto> =
        coefficients.iter().map(|a| (a * G).compress()).collect();
    let key = seal_key(&coefficients[0]);
    // The key is used once: a fixed nonce is safe.
    let sealed = cipher(&key)
        .encrypt(
            &[0u8; 12].into(),
            Payload {
                msg: &seed.0,
                aad: &aad(threshold, shares, &commitments),
            },
        )
        .map_err(|_| BackupError::Parameters { threshold, shares })?;
    let set = set_id(&commitments, &sealed);
    (1..=shares)
        .map(|i| {
            let x = Scalar::from(u64::from(i));
            // Horner: f(x) = a₀ + x(a₁ + x(a₂ + …)).
            let value = Zeroizing::new(
                coefficients
                    .iter()
                    .rev()
                    .fold(Scalar::ZERO, |acc, a| acc * x + a),
            );
            let words = bip39::Mnemonic::from_entropy(value.as_bytes())
                .map_err(|_| BackupError::Parameters { threshold, shares })?;
            let mut file = ShareFile {
                format: SHARE_FORMAT.into(),
                set: set.clone(),
                index: i,
                threshold,
                shares,
                commitments: commitments
                    .iter()
                    .map(|c| hex_encode(c.as_bytes()))
                    .collect(),
                sealed_seed: hex_encode(&sealed),
                words: words.to_string(),
                encrypted_to: None,
                encrypted_share: None,
            };
            if let Some(g) = guardians.get(usize::from(i) - 1) {
                wrap(&mut file, &value, g, &mut *rng)?;
            }
            Ok(file)
        })
        .collect()
}

/// A share that checked.
pub(crate) struct Share {
    pub(crate) index: u8,
    pub(crate) value: Zeroizing<Scalar>,
}

/// What a share file says, checked: its format, words (their checksum), commitments and set
/// id, and that its value lies on the committed polynomial (Feldman). What a guardian runs on
/// its own share; needs no other share and learns nothing of the seed.
pub fn check(file: &ShareFile, name: &str) -> Result<(), BackupError> {
    parse(file, name).map(|_| ())
}

pub(crate) fn parse(
    file: &ShareFile,
    name: &str,
) -> Result<(Share, Vec<RistrettoPoint>, Vec<u8>), BackupError> {
    let bad = |why: &str| BackupError::Corrupted {
        name: name.into(),
        why: why.into(),
    };
    if file.format != SHARE_FORMAT {
        return Err(bad(&format!("unknown format {:?}", file.format)));
    }
    if let Some(to) = &file.encrypted_to {
        return Err(BackupError::Encrypted {
            name: name.into(),
            guardian: to.chars().take(16).collect(),
        });
    }
    if file.index == 0 || file.index > file.shares || file.threshold == 0 {
        return Err(bad("its index or threshold is out of range"));
    }
    if file.commitments.len() != usize::from(file.threshold) {
        return Err(bad("it does not hold one commitment per coefficient"));
    }
    let compressed: Vec<CompressedRistretto> = file
        .commitments
        .iter()
        .map(|c| {
            hex_decode("commitment", c)
                .ok()
                .and_then(|b| CompressedRistretto::from_slice(&b).ok())
                .ok_or_else(|| bad("a commitment is not a point"))
        })
        .collect::<Result<_, _>>()?;
    let points: Vec<RistrettoPoint> = compressed
        .iter()
        .map(|c| {
            c.decompress()
                .ok_or_else(|| bad("a commitment is not a point"))
        })
        .collect::<Result<_, _>>()?;
    let sealed = hex_decode("sealed seed", &file.sealed_seed)
        .map_err(|_| bad("the sealed seed is not hex"))?;
    if set_id(&compressed, &sealed) != file.set {
        return Err(bad(
            "its set id does not match its commitments and sealed seed",
        ));
    }
    let words = file.words.split_whitespace().collect::<Vec<_>>().join(" ");
    let mnemonic = bip39::Mnemonic::parse_normalized(&words)
        .map_err(|e| bad(&format!("its words do not check ({e})")))?;
    let entropy = Zeroizing::new(mnemonic.to_entropy());
    let bytes: [u8; 32] = entropy
        .as_slice()
        .try_into()
        .map_err(|_| bad("a share has 24 words"))?;
    let value = Zeroizing::new(
        Option::<Scalar>::from(Scalar::from_canonical_bytes(bytes))
            .ok_or_else(|| bad("its words are not a share value"))?,
    );
    // Feldman: sᵢ·G = Σ iʲ·Cⱼ.
    let x = Scalar::from(u64::from(file.index));
    let expected = points
        .iter()
        .rev()
        .fold(RistrettoPoint::default(), |acc, c| acc * x + c);
    if *value * G != expected {
        return Err(bad("its value is not on the committed polynomial"));
    }
    Ok((
        Share {
            index: file.index,
            value,
        },
        points,
        sealed,
    ))
}

/// Rebuilds the seed from at least `threshold` shares of one set (`(name, file)` pairs, the
/// name used in errors).
pub fn combine(files: &[(String, ShareFile)]) -> Result<WalletSeed, BackupError> {
    use chacha20poly1305::aead::{Aead, Payload};
    let Some((_, first)) = files.first() else {
        return Err(BackupError::TooFew {
            have: 0,
            need: 1,
            shares: 1,
        });
    };
    let mut shares: Vec<Share> = Vec::new();
    let mut context = None;
    for (name, f) in files {
        let (share, points, sealed) = parse(f, name)?;
        if f.set != first.set || f.threshold != first.threshold || f.shares != first.shares {
            return Err(BackupError::MixedSets {
                name: name.clone(),
                theirs: f.set.clone(),
                ours: first.set.clone(),
            });
        }
        if shares.iter().any(|s| s.index == share.index) {
            return Err(BackupError::Duplicate {
                name: name.clone(),
                index: share.index,
            });
        }
        context.get_or_insert((points, sealed));
        shares.push(share);
    }
    let need = first.threshold;
    if shares.len() < usize::from(need) {
        return Err(BackupError::TooFew {
            have: shares.len(),
            need,
            shares: first.shares,
        });
    }
    let Some((points, sealed)) = context else {
        return Err(BackupError::TooFew {
            have: 0,
            need,
            shares: first.shares,
        });
    };
    // Lagrange at 0 over the first `threshold` shares.
    let used = &shares[..usize::from(need)];
    let mut k = Zeroizing::new(Scalar::ZERO);
    for s in used {
        let xi = Scalar::from(u64::from(s.index));
        let (mut num, mut den) = (Scalar::ONE, Scalar::ONE);
        for o in used.iter().filter(|o| o.index != s.index) {
            let xo = Scalar::from(u64::from(o.index));
            num *= xo;
            den *= xo - xi;
        }
        *k += *s.value * num * den.invert();
    }
    let corrupted = |why: &str| BackupError::Corrupted {
        name: "set".into(),
        why: why.into(),
    };
    if *k * G != points[0] {
        return Err(corrupted("the shares do not rebuild the committed key"));
    }
    let compressed: Vec<CompressedRistretto> = points.iter().map(|p| p.compress()).collect();
    let key = seal_key(&k);
    let seed = Zeroizing::new(
        cipher(&key)
            .decrypt(
                &[0u8; 12].into(),
                Payload {
                    msg: &sealed,
                    aad: &aad(first.threshold, first.shares, &compressed),
                },
            )
            .map_err(|_| corrupted("the sealed seed does not open under the rebuilt key"))?,
    );
    let bytes: [u8; 32] = seed
        .as_slice()
        .try_into()
        .map_err(|_| corrupted("the sealed seed is not 32 bytes"))?;
    Ok(WalletSeed(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    fn named(files: &[ShareFile], pick: &[usize]) -> Vec<(String, ShareFile)> {
        pick.iter()
            .map(|&i| (format!("share-{}", i + 1), files[i].clone()))
            .collect()
    }

    #[test]
    fn any_threshold_of_the_shares_rebuilds_the_seed_and_fewer_do_not() {
        let seed = WalletSeed([42; 32]);
        let files = split(&seed, 3, 5, &[], &mut OsRng).unwrap();
        assert_eq!(files.len(), 5);
        for f in &files {
            check(f, "f").unwrap();
            assert_eq!(f.words.split_whitespace().count(), 24);
        }
        for a in 0..5 {
            for b in a + 1..5 {
                for c in b + 1..5 {
                    let got = combine(&named(&files, &[c, a, b])).unwrap();
                    assert_eq!(got.0, seed.0, "{a} {b} {c}");
                }
            }
        }
        assert_eq!(combine(&named(&files, &[0, 1, 2, 3, 4])).unwrap().0, seed.0);
        assert_eq!(
            combine(&named(&files, &[0, 4])).err(),
            Some(BackupError::TooFew {
                have: 2,
                need: 3,
                shares: 5
            })
        );
        assert!(matches!(
            split(&seed, 0, 3, &[], &mut OsRng),
            Err(BackupError::Parameters { .. })
        ));
        assert!(matches!(
            split(&seed, 4, 3, &[], &mut OsRng),
            Err(BackupError::Parameters { .. })
        ));
        // One of one works too.
        let one = split(&seed, 1, 1, &[], &mut OsRng).unwrap();
        assert_eq!(combine(&named(&one, &[0])).unwrap().0, seed.0);
    }

    #[test]
    fn mixed_sets_duplicates_and_corrupted_shares_are_refused_by_name() {
        let seed = WalletSeed([7; 32]);
        let files = split(&seed, 2, 3, &[], &mut OsRng).unwrap();
        let other = split(&seed, 2, 3, &[], &mut OsRng).unwrap();
        let mut mixed = named(&files, &[0]);
        mixed.push(("theirs".into(), other[1].clone()));
        assert!(matches!(
            combine(&mixed),
            Err(BackupError::MixedSets { name, .. }) if name == "theirs"
        ));
        let mut twice = named(&files, &[1]);
        twice.push(("again".into(), files[1].clone()));
        assert_eq!(
            combine(&twice).err(),
            Some(BackupError::Duplicate {
                name: "again".into(),
                index: 2
            })
        );

        // A mistyped word: the checksum, or the polynomial, refuses it, naming the file.
        let mut typo = files[2].clone();
        let mut words: Vec<&str> = typo.words.split_whitespace().collect();
        words[5] = if words[5] == "abandon" {
            "ability"
        } else {
            "abandon"
        };
        typo.words = words.join(" ");
        let mut set = named(&files, &[0]);
        set.push(("typo.json".into(), typo));
        assert!(matches!(
            combine(&set),
            Err(BackupError::Corrupted { name, .. }) if name == "typo.json"
        ));

        // A value moved by one, re-encoded with a valid checksum: off the polynomial.
        let mut moved = files[2].clone();
        let value = {
            let m = bip39::Mnemonic::parse_normalized(&moved.words).unwrap();
            let b: [u8; 32] = m.to_entropy().try_into().unwrap();
            Scalar::from_canonical_bytes(b).unwrap() + Scalar::ONE
        };
        moved.words = bip39::Mnemonic::from_entropy(value.as_bytes())
            .unwrap()
            .to_string();
        let err = check(&moved, "moved").unwrap_err();
        assert!(
            err.to_string().contains("not on the committed polynomial"),
            "{err}"
        );

        // An edited commitment, index or sealed seed no longer matches the set id, or the
        // polynomial.
        let mut edited = files[0].clone();
        edited.commitments[1] = files[1].commitments[0].clone();
        assert!(check(&edited, "e").is_err());
        let mut edited = files[0].clone();
        edited.index = 2;
        assert!(check(&edited, "e").is_err());
        let mut edited = files[0].clone();
        edited.sealed_seed = other[0].sealed_seed.clone();
        assert!(check(&edited, "e").is_err());
        let mut edited = files[0].clone();
        edited.format = "shoji-guardian-share-v0".into();
        assert!(check(&edited, "e").is_err());
    }

    #[test]
    fn a_share_encrypted_to_its_guardian_opens_only_with_that_guardian() {
        let seed = WalletSeed([9; 32]);
        let guardians: Vec<WalletSeed> = (1..=3u8).map(|i| WalletSeed([i; 32])).collect();
        let keys: Vec<RistrettoPoint> = guardians
            .iter()
            .map(|g| parse_guardian(&guardian_public(g)).unwrap())
            .collect();
        let files = split(&seed, 2, 3, &keys, &mut OsRng).unwrap();
        for f in &files {
            assert!(f.words.is_empty(), "the words do not travel in the clear");
        }
        // Sealed, a share is neither checked nor combined: its guardian opens it first.
        assert!(matches!(
            check(&files[0], "g1"),
            Err(BackupError::Encrypted { .. })
        ));
        // Another guardian cannot open it.
        assert_eq!(
            open_share(&files[0], "g1", &guardians[1]).err(),
            Some(BackupError::NotYours { name: "g1".into() })
        );
        let opened: Vec<ShareFile> = files
            .iter()
            .zip(&guardians)
            .map(|(f, g)| open_share(f, "f", g).unwrap())
            .collect();
        for f in &opened {
            check(f, "f").unwrap();
        }
        assert_eq!(combine(&named(&opened, &[2, 0])).unwrap().0, seed.0);
        // An encrypted share moved to another index, or edited, does not open.
        let mut moved = files[1].clone();
        moved.index = 3;
        assert!(open_share(&moved, "m", &guardians[1]).is_err());
        let mut edited = files[1].clone();
        let mut raw = hex_decode("e", edited.encrypted_share.as_deref().unwrap()).unwrap();
        raw[40] ^= 1;
        edited.encrypted_share = Some(hex_encode(&raw));
        assert!(open_share(&edited, "e", &guardians[1]).is_err());
        // One key per share, or none.
        assert!(split(&seed, 2, 3, &keys[..2], &mut OsRng).is_err());
        assert!(parse_guardian("00").is_err());
    }
}
