//! The insecure development setup: deterministic, cached on disk, checked against the pinned
//! hashes every time it is loaded.

use crate::{
    check_pinned, default_dir, pk_file, verifying_key_from_bytes, verifying_key_to_bytes, vk_file,
    ParamsError,
};
use crate::{DEV_PK_BYTES, DEV_PK_HASH};
use ark_bls12_381::Bls12_381;
use ark_groth16::{Groth16, ProvingKey, VerifyingKey};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize, Compress, Validate};
use rand_chacha::rand_core::SeedableRng;
use shoji_circuits::TransferCircuit;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The seed of the development setup. Public: the resulting parameters are NOT secure.
pub const INSECURE_DEV_SEED: [u8; 32] = *b"shoji insecure dev setup v1 !!!!";

/// Proving and verifying key.
pub struct Parameters {
    /// The proving key.
    pub pk: ProvingKey<Bls12_381>,
    /// The verifying key.
    pub vk: VerifyingKey<Bls12_381>,
}

/// Runs the development setup (seconds to minutes; prefer [`parameters`], which caches).
pub fn generate() -> Result<Parameters, ParamsError> {
    let mut rng = rand_chacha::ChaCha20Rng::from_seed(INSECURE_DEV_SEED);
    let pk = Groth16::<Bls12_381>::generate_random_parameters_with_reduction(
        TransferCircuit::blank(),
        &mut rng,
    )
    .map_err(|e| ParamsError::Setup(e.to_string()))?;
    let vk = pk.vk.clone();
    Ok(Parameters { pk, vk })
}

fn pk_to_bytes(pk: &ProvingKey<Bls12_381>) -> Vec<u8> {
    let mut out = Vec::new();
    pk.serialize_uncompressed(&mut out)
        .expect("serializing to a Vec cannot fail");
    out
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ParamsError> {
    let io = |source| ParamsError::Io {
        path: path.into(),
        source,
    };
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)
}

/// Loads the cached development parameters from `dir`, generating and caching them first if they
/// are missing. A cached file that does not match the pinned size and hash is an error naming it.
/// Concurrent callers (parallel test processes) wait on a lock file instead of all generating.
pub fn load_or_generate(dir: &Path) -> Result<Parameters, ParamsError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ParamsError::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    let lock_path = dir.join("setup.lock");
    let lock = File::create(&lock_path).map_err(io(&lock_path))?;
    lock.lock().map_err(io(&lock_path))?;

    let (vk_path, pk_path) = (dir.join(vk_file()), dir.join(pk_file()));
    if !vk_path.exists() || !pk_path.exists() {
        let params = generate()?;
        write_atomic(&pk_path, &pk_to_bytes(&params.pk))?;
        write_atomic(&vk_path, &verifying_key_to_bytes(&params.vk))?;
    }
    let vk_bytes = fs::read(&vk_path).map_err(io(&vk_path))?;
    let vk = verifying_key_from_bytes(&vk_path, &vk_bytes)?;
    let pk_bytes = fs::read(&pk_path).map_err(io(&pk_path))?;
    drop(lock);
    check_pinned(&pk_path, &pk_bytes, DEV_PK_BYTES, DEV_PK_HASH)?;
    // The pinned hash fixes every byte, so point validation would only repeat what the hash proved.
    let pk =
        ProvingKey::<Bls12_381>::deserialize_with_mode(&pk_bytes[..], Compress::No, Validate::No)
            .map_err(|e| ParamsError::Malformed {
            path: pk_path.clone(),
            reason: e.to_string(),
        })?;
    if pk.vk != vk {
        return Err(ParamsError::Malformed {
            path: pk_path,
            reason: "proving key does not match the verifying key".into(),
        });
    }
    Ok(Parameters { pk, vk })
}

/// The development parameters from the default cache directory, loaded once per process.
pub fn parameters() -> Result<&'static Parameters, ParamsError> {
    static PARAMS: OnceLock<Result<Parameters, String>> = OnceLock::new();
    PARAMS
        .get_or_init(|| load_or_generate(&default_dir()).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| ParamsError::Setup(e.clone()))
}

/// The path of the cached verifying key in the default directory.
pub fn verifying_key_path() -> PathBuf {
    default_dir().join(vk_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cached parameters match the pinned hashes, and a corrupted cache file is refused with
    /// an error naming it.
    #[test]
    fn pinned_parameters_and_corruption() {
        let params = parameters().unwrap();
        let vk_bytes = verifying_key_to_bytes(&params.vk);
        let path = Path::new("test.vk");
        assert!(verifying_key_from_bytes(path, &vk_bytes).is_ok());
        let mut flipped = vk_bytes.clone();
        flipped[10] ^= 1;
        let err = verifying_key_from_bytes(path, &flipped).unwrap_err();
        assert!(matches!(err, ParamsError::Hash { .. }), "{err}");
        assert!(err.to_string().contains("test.vk"));
        let err = verifying_key_from_bytes(path, &vk_bytes[1..]).unwrap_err();
        assert!(matches!(err, ParamsError::Size { .. }), "{err}");

        let dir = std::env::temp_dir().join(format!("shoji-params-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(vk_file()), &vk_bytes).unwrap();
        let mut pk = pk_to_bytes(&params.pk);
        let n = pk.len();
        pk[n / 2] ^= 1;
        fs::write(dir.join(pk_file()), &pk).unwrap();
        let err = load_or_generate(&dir).err().unwrap();
        assert!(matches!(err, ParamsError::Hash { .. }), "{err}");
        assert!(err.to_string().contains(&pk_file()));
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A network's pinned key loads only from a file with that hash.
    #[test]
    fn a_pinned_key_loads_only_with_its_hash() {
        let params = parameters().unwrap();
        let bytes = verifying_key_to_bytes(&params.vk);
        assert_eq!(
            crate::verifying_key_hash(&params.vk),
            crate::dev_verifying_key_hash()
        );
        assert_eq!(
            blake3::hash(&bytes).to_hex().to_string(),
            crate::DEV_VK_HASH
        );
        let dir = std::env::temp_dir().join(format!("shoji-pinned-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("transfer.vk");
        fs::write(&path, &bytes).unwrap();
        let pvk =
            crate::load_verifying_key_pinned(&path, &crate::dev_verifying_key_hash()).unwrap();
        assert_eq!(pvk.vk, params.vk);
        let err = crate::load_verifying_key_pinned(&path, &[7; 32]).unwrap_err();
        assert!(matches!(err, ParamsError::NotPinned { .. }), "{err}");
        assert!(err.to_string().contains("transfer.vk"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A proving key loads only from a file with the hash the network names, and only if it
    /// proves for the verifying key the network verifies with.
    #[test]
    fn a_proving_key_loads_only_with_its_hash_and_its_networks_verifying_key() {
        let params = parameters().unwrap();
        let bytes = pk_to_bytes(&params.pk);
        let dir = std::env::temp_dir().join(format!("shoji-pk-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(crate::PROVING_KEY_FILE);
        fs::write(&path, &bytes).unwrap();
        let hash = *blake3::hash(&bytes).as_bytes();
        let vk_hash = crate::dev_verifying_key_hash();
        let pk = crate::load_proving_key_pinned(&path, &hash, &vk_hash).unwrap();
        assert!(pk.vk == params.vk);
        let err = crate::load_proving_key_pinned(&path, &[7; 32], &vk_hash).unwrap_err();
        assert!(matches!(err, ParamsError::NotPinned { .. }), "{err}");
        assert!(err.to_string().contains("transfer.pk"), "{err}");
        let err = crate::load_proving_key_pinned(&path, &hash, &[7; 32]).unwrap_err();
        assert!(matches!(err, ParamsError::Malformed { .. }), "{err}");
        assert!(err.to_string().contains("network verifies with"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
