//! Parameters of the transfer circuit.
//!
//! Every key is pinned by hash. The development verifying key's compressed bytes must have
//! exactly [`DEV_VK_BYTES`] bytes and the blake3 hash [`DEV_VK_HASH`] (size first, then hash, as
//! `zcash_proofs` checks its parameter files); anything else is refused with an error that names
//! the file. A network made from a ceremony's parameters (`shoji-ceremony`) pins its own: its
//! genesis pins its verifying key's hash, and its network file also
//! names the proving key's hash, which wallets check before proving ([`load_proving_key_pinned`]).
//!
//! With the `setup` feature, [`dev`] generates the **insecure development parameters** from a fixed
//! seed (anyone can recompute the toxic waste: never use them for real value) and caches them on
//! disk, so setup runs once per machine.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "setup")]
pub mod dev;

use ark_bls12_381::Bls12_381;
use ark_groth16::{PreparedVerifyingKey, ProvingKey, VerifyingKey};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize, Compress, Validate};
use std::path::{Path, PathBuf};

/// Length of the development verifying key, compressed.
pub const DEV_VK_BYTES: usize = 1208;
/// blake3 of the development verifying key, compressed.
pub const DEV_VK_HASH: &str = "9ecde6cc0597d37635d1c1005fc6f53d0adb838e22cc0f89df78f88d4a57af93";
/// Length of the development proving key as cached (uncompressed).
pub const DEV_PK_BYTES: usize = 9306000;
/// blake3 of the development proving key as cached (uncompressed).
pub const DEV_PK_HASH: &str = "0cddaca16691eb80b07655c2d7cefaff03eae1c0eded657a256469ce524eb38e";

/// Why parameters were refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParamsError {
    /// The file could not be read or written.
    #[error("parameter file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file has the wrong size.
    #[error("parameter file {path} has {got} bytes, expected {expected}: it is not the pinned parameter set (delete it to regenerate development parameters)")]
    Size {
        /// The file.
        path: PathBuf,
        /// Expected size.
        expected: usize,
        /// Actual size.
        got: usize,
    },
    /// The file's hash differs from the pinned one.
    #[error("parameter file {path} has hash {got}, expected {expected}: it is not the pinned parameter set (delete it to regenerate development parameters)")]
    Hash {
        /// The file.
        path: PathBuf,
        /// Pinned hash.
        expected: String,
        /// Actual hash.
        got: String,
    },
    /// The file is not the key the network pins.
    #[error("parameter file {path} has hash {got}, but the network pins {expected}: it is not this network's key")]
    NotPinned {
        /// The file.
        path: PathBuf,
        /// The network's pinned hash.
        expected: String,
        /// Actual hash.
        got: String,
    },
    /// The bytes are not a valid key.
    #[error("parameter file {path} is malformed: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Setup failed.
    #[error("parameter generation failed: {0}")]
    Setup(String),
}

/// Checks `bytes` against a pinned size and hash, naming `path` in the error.
pub fn check_pinned(path: &Path, bytes: &[u8], size: usize, hash: &str) -> Result<(), ParamsError> {
    if bytes.len() != size {
        return Err(ParamsError::Size {
            path: path.into(),
            expected: size,
            got: bytes.len(),
        });
    }
    let got = blake3::hash(bytes).to_hex().to_string();
    if got != hash {
        return Err(ParamsError::Hash {
            path: path.into(),
            expected: hash.into(),
            got,
        });
    }
    Ok(())
}

/// Decodes a compressed verifying key that matches the pinned development key, validating every
/// point, and checks it has one input slot per public input.
pub fn verifying_key_from_bytes(
    path: &Path,
    bytes: &[u8],
) -> Result<VerifyingKey<Bls12_381>, ParamsError> {
    check_pinned(path, bytes, DEV_VK_BYTES, DEV_VK_HASH)?;
    decode_verifying_key(path, bytes)
}

/// Decodes a compressed verifying key, validating every point, and checks it has one input
/// slot per public input of the transfer circuit; `path` names the file in errors.
pub fn decode_verifying_key(
    path: &Path,
    bytes: &[u8],
) -> Result<VerifyingKey<Bls12_381>, ParamsError> {
    let vk = VerifyingKey::<Bls12_381>::deserialize_with_mode(bytes, Compress::Yes, Validate::Yes)
        .map_err(|e| ParamsError::Malformed {
            path: path.into(),
            reason: e.to_string(),
        })?;
    if vk.gamma_abc_g1.len() != shoji_primitives::tx::NUM_PUBLIC_INPUTS + 1 {
        return Err(ParamsError::Malformed {
            path: path.into(),
            reason: "wrong number of public inputs".into(),
        });
    }
    Ok(vk)
}

/// blake3 of a verifying key's compressed encoding: what a genesis pins.
pub fn verifying_key_hash(vk: &VerifyingKey<Bls12_381>) -> [u8; 32] {
    *blake3::hash(&verifying_key_to_bytes(vk)).as_bytes()
}

/// The pinned hash of the development verifying key, as bytes.
pub fn dev_verifying_key_hash() -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&DEV_VK_HASH[2 * i..2 * i + 2], 16).unwrap_or(0);
    }
    out
}

/// Reads `path`, whose blake3 must be `hash` (a network's pin), else refuses it naming both.
pub fn read_pinned(path: &Path, hash: &[u8; 32]) -> Result<Vec<u8>, ParamsError> {
    let bytes = std::fs::read(path).map_err(|source| ParamsError::Io {
        path: path.into(),
        source,
    })?;
    let got = blake3::hash(&bytes);
    if got.as_bytes() != hash {
        return Err(ParamsError::NotPinned {
            path: path.into(),
            expected: blake3::Hash::from_bytes(*hash).to_hex().to_string(),
            got: got.to_hex().to_string(),
        });
    }
    Ok(bytes)
}

/// Reads a verifying-key file whose blake3 must be `hash` (a network's pinned key, from a
/// ceremony or the development setup), validating every point and the number of inputs.
pub fn load_verifying_key_pinned(
    path: &Path,
    hash: &[u8; 32],
) -> Result<PreparedVerifyingKey<Bls12_381>, ParamsError> {
    let bytes = read_pinned(path, hash)?;
    Ok(ark_groth16::prepare_verifying_key(&decode_verifying_key(
        path, &bytes,
    )?))
}

/// File name of a network's verifying key, as `shoji-ceremony phase2 finalize` writes it.
pub const VERIFYING_KEY_FILE: &str = "transfer.vk";
/// File name of a network's proving key, as `shoji-ceremony phase2 finalize` writes it.
pub const PROVING_KEY_FILE: &str = "transfer.pk";

/// Reads a proving-key file (uncompressed, as `shoji-ceremony phase2 finalize` writes it) whose
/// blake3 must be `hash`, the hash a network file names. The hash fixes every byte, so points are
/// not re-validated (seconds for a key this size); the key's own verifying key must then hash to
/// `vk_pin`, the key the network's validators verify with, so a proving key of
/// another network is refused even where a network file names the wrong file.
pub fn load_proving_key_pinned(
    path: &Path,
    hash: &[u8; 32],
    vk_pin: &[u8; 32],
) -> Result<ProvingKey<Bls12_381>, ParamsError> {
    decode_proving_key(path, &read_pinned(path, hash)?, vk_pin)
}

/// Decodes a proving key read from `path` whose bytes are already pinned by hash (points are
/// not re-validated: see [`load_proving_key_pinned`]), and checks that its verifying key
/// hashes to `vk_pin`.
pub fn decode_proving_key(
    path: &Path,
    bytes: &[u8],
    vk_pin: &[u8; 32],
) -> Result<ProvingKey<Bls12_381>, ParamsError> {
    let pk = ProvingKey::<Bls12_381>::deserialize_with_mode(bytes, Compress::No, Validate::No)
        .map_err(|e| ParamsError::Malformed {
            path: path.into(),
            reason: e.to_string(),
        })?;
    if pk.vk.gamma_abc_g1.len() != shoji_primitives::tx::NUM_PUBLIC_INPUTS + 1 {
        return Err(ParamsError::Malformed {
            path: path.into(),
            reason: "wrong number of public inputs".into(),
        });
    }
    let vk_hash = verifying_key_hash(&pk.vk);
    if &vk_hash != vk_pin {
        return Err(ParamsError::Malformed {
            path: path.into(),
            reason: format!(
                "it proves for verifying key {}, but the network verifies with {}",
                blake3::Hash::from_bytes(vk_hash).to_hex(),
                blake3::Hash::from_bytes(*vk_pin).to_hex()
            ),
        });
    }
    Ok(pk)
}

/// Reads and checks a verifying-key file against the development key's pin.
pub fn load_verifying_key(path: &Path) -> Result<PreparedVerifyingKey<Bls12_381>, ParamsError> {
    let bytes = std::fs::read(path).map_err(|source| ParamsError::Io {
        path: path.into(),
        source,
    })?;
    Ok(ark_groth16::prepare_verifying_key(
        &verifying_key_from_bytes(path, &bytes)?,
    ))
}

/// The compressed encoding of a verifying key.
pub fn verifying_key_to_bytes(vk: &VerifyingKey<Bls12_381>) -> Vec<u8> {
    let mut out = Vec::new();
    vk.serialize_compressed(&mut out)
        .expect("serializing to a Vec cannot fail");
    out
}

/// Where parameters are cached: `$SHOJI_PARAMS_DIR`, else `$XDG_CACHE_HOME/shoji`, else
/// `$HOME/.cache/shoji`, else a `shoji-params` folder in the system's temporary directory.
pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SHOJI_PARAMS_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("shoji");
    }
    if let Some(h) = std::env::var_os("HOME") {
        return PathBuf::from(h).join(".cache").join("shoji");
    }
    std::env::temp_dir().join("shoji-params")
}

/// File name of the cached verifying key. It names the pinned hash, so a circuit change
/// regenerates into new files instead of tripping over the old ones.
pub fn vk_file() -> String {
    format!("transfer-insecure-dev-{}.vk", &DEV_VK_HASH[..16])
}

/// File name of the cached proving key (see [`vk_file`]).
pub fn pk_file() -> String {
    format!("transfer-insecure-dev-{}.pk", &DEV_VK_HASH[..16])
}
