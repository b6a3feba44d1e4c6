//! Passphrase-sealed files: a wallet's or an auditor's secrets at rest.
//!
//! Layout: `kind (8 bytes) ‖ version (1) ‖ m_cost KiB (u32 LE) ‖ t_cost (u32 LE) ‖ lanes (u32
//! LE) ‖ salt (16) ‖ nonce (24) ‖ XChaCha20-Poly1305 ciphertext`. The key is Argon2id of the
//! passphrase and salt; everything before the ciphertext is authenticated as associated data, so
//! changing the header, the kind or any ciphertext byte makes the file fail to open.
//!
//! A [`SealedFile`] holds an exclusive lock on `<file>.lock` for its lifetime (a second process
//! is refused, not blocked) and replaces the file atomically on every save: a crash leaves either
//! the old or the new contents, never a mix.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::{OsRng, RngCore};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

const VERSION: u8 = 1;
const HEADER_BYTES: usize = 8 + 1 + 12 + 16;
const NONCE_BYTES: usize = 24;
/// Most Argon2id memory a sealed file may ask for when opened (256 MiB, 13 times the default):
/// no single flipped bit of the default turns it into more.
const MAX_M_COST_KIB: u32 = 256 * 1024;
/// Most Argon2id passes a sealed file may ask for.
const MAX_T_COST: u32 = 16;
/// Most Argon2id lanes a sealed file may ask for.
const MAX_LANES: u32 = 16;

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Passes.
    pub t_cost: u32,
    /// Lanes.
    pub lanes: u32,
}

impl Default for KdfParams {
    /// 19 MiB, 2 passes, 1 lane: the OWASP password-storage recommendation for Argon2id.
    fn default() -> Self {
        Self {
            m_cost_kib: 19 * 1024,
            t_cost: 2,
            lanes: 1,
        }
    }
}

/// Why a sealed file could not be created, opened or saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The passphrase does not open the file (or the file was altered).
    #[error("wrong passphrase for {0} (or the file has been altered)")]
    WrongPassphrase(PathBuf),
    /// Another process has the file open.
    #[error("{0} is in use by another process")]
    Locked(PathBuf),
    /// There is no such file.
    #[error("{0} does not exist")]
    NotFound(PathBuf),
    /// Creating would overwrite an existing file.
    #[error("{0} already exists; refusing to overwrite it")]
    Exists(PathBuf),
    /// The file is not of the expected kind, or is truncated.
    #[error("{path} is not a {kind} file: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What was expected.
        kind: String,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing failed (a full disk, permissions); the previous file is untouched.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SealError + 'a {
    move |source| SealError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn derive_key(
    passphrase: &[u8],
    salt: &[u8; 16],
    params: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, String> {
    let p = argon2::Params::new(params.m_cost_kib, params.t_cost, params.lanes, Some(32))
        .map_err(|e| format!("bad key-derivation parameters: {e}"))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase, salt, key.as_mut())
        .map_err(|e| format!("key derivation failed: {e}"))?;
    Ok(key)
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, flushed to disk, renamed
/// over `path`, and the directory flushed. Owner-only permissions on Unix.
///
/// The temporary file has a random name and is created exclusively, never through a link: a
/// link planted beside `path` (in a shared directory, say) cannot redirect the secret keys
/// written here into a file of the planter's choosing.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    let mut suffix = [0u8; 8];
    OsRng.fill_bytes(&mut suffix);
    tmp_name.push(format!(".tmp-{}", u64::from_le_bytes(suffix)));
    let tmp = dir.join(tmp_name);
    let mut options = OpenOptions::new();
    // Exclusive: fails on anything already there, a link included (O_CREAT | O_EXCL).
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    // Nothing was created if this fails, so there is nothing to remove.
    let mut f = options.open(&tmp)?;
    let result = (|| {
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = File::open(&dir) {
            // Directories cannot be synced on every platform; the rename is done either way.
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// An open sealed file: its key (derived once), its lock, and where to save.
pub struct SealedFile {
    path: PathBuf,
    kind: [u8; 8],
    params: KdfParams,
    salt: [u8; 16],
    key: Zeroizing<[u8; 32]>,
    _lock: File,
}

impl std::fmt::Debug for SealedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn lock(path: &Path) -> Result<File, SealError> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(io("locking", &lock_path))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(SealError::Locked(path.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => Err(io("locking", &lock_path)(e)),
    }
}

impl SealedFile {
    /// Creates `path` (which must not exist) holding `payload`, sealed under `passphrase`.
    pub fn create(
        path: &Path,
        kind: &[u8; 8],
        passphrase: &[u8],
        params: KdfParams,
        payload: &[u8],
    ) -> Result<SealedFile, SealError> {
        let lock = lock(path)?;
        if path.exists() {
            return Err(SealError::Exists(path.to_path_buf()));
        }
        let mut salt = [0u8; 16];
        OsRng.fill_bytes(&mut salt);
        let key = derive_key(passphrase, &salt, params).map_err(|reason| SealError::Malformed {
            path: path.to_path_buf(),
            kind: String::from_utf8_lossy(kind).into(),
            reason,
        })?;
        let f = SealedFile {
            path: path.to_path_buf(),
            kind: *kind,
            params,
            salt,
            key,
            _lock: lock,
        };
        f.save(payload)?;
        Ok(f)
    }

    /// Opens `path`, returning the file (locked) and its payload.
    pub fn open(
        path: &Path,
        kind: &[u8; 8],
        passphrase: &[u8],
    ) -> Result<(SealedFile, Zeroizing<Vec<u8>>), SealError> {
        let lock = lock(path)?;
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SealError::NotFound(path.to_path_buf()))
            }
            Err(e) => return Err(io("reading", path)(e)),
        };
        let malformed = |reason: &str| SealError::Malformed {
            path: path.to_path_buf(),
            kind: String::from_utf8_lossy(kind).into(),
            reason: reason.into(),
        };
        if bytes.len() < HEADER_BYTES + NONCE_BYTES + 16 {
            return Err(malformed("too short"));
        }
        if bytes[..8] != kind[..] {
            return Err(malformed("wrong file type"));
        }
        if bytes[8] != VERSION {
            return Err(malformed(&format!("unsupported version {}", bytes[8])));
        }
        let u32_at =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let params = KdfParams {
            m_cost_kib: u32_at(9),
            t_cost: u32_at(13),
            lanes: u32_at(17),
        };
        // The header is authenticated only once the key is derived: bound what deriving it may
        // cost first. A flipped bit must not make opening allocate gigabytes.
        if params.m_cost_kib > MAX_M_COST_KIB
            || params.t_cost > MAX_T_COST
            || params.lanes > MAX_LANES
            || params.m_cost_kib == 0
        {
            return Err(malformed(&format!(
                "the file is damaged: its key-derivation parameters ({} KiB, {} passes, {} lanes) \
                 are outside what this program writes (at most {MAX_M_COST_KIB} KiB, \
                 {MAX_T_COST} passes, {MAX_LANES} lanes)",
                params.m_cost_kib, params.t_cost, params.lanes
            )));
        }
        let mut salt = [0u8; 16];
        salt.copy_from_slice(&bytes[21..37]);
        let key = derive_key(passphrase, &salt, params).map_err(|r| malformed(&r))?;
        let nonce = XNonce::from_slice(&bytes[HEADER_BYTES..HEADER_BYTES + NONCE_BYTES]);
        let cipher = XChaCha20Poly1305::new(key.as_ref().into());
        let payload = cipher
            .decrypt(
                nonce,
                Payload {
                    msg: &bytes[HEADER_BYTES + NONCE_BYTES..],
                    aad: &bytes[..HEADER_BYTES + NONCE_BYTES],
                },
            )
            .map_err(|_| SealError::WrongPassphrase(path.to_path_buf()))?;
        Ok((
            SealedFile {
                path: path.to_path_buf(),
                kind: *kind,
                params,
                salt,
                key,
                _lock: lock,
            },
            Zeroizing::new(payload),
        ))
    }

    /// Replaces the file's payload (atomically, with a fresh nonce).
    pub fn save(&self, payload: &[u8]) -> Result<(), SealError> {
        let mut out = Vec::with_capacity(HEADER_BYTES + NONCE_BYTES + payload.len() + 16);
        out.extend_from_slice(&self.kind);
        out.push(VERSION);
        out.extend_from_slice(&self.params.m_cost_kib.to_le_bytes());
        out.extend_from_slice(&self.params.t_cost.to_le_bytes());
        out.extend_from_slice(&self.params.lanes.to_le_bytes());
        out.extend_from_slice(&self.salt);
        let mut nonce = [0u8; NONCE_BYTES];
        OsRng.fill_bytes(&mut nonce);
        out.extend_from_slice(&nonce);
        let cipher = XChaCha20Poly1305::new(self.key.as_ref().into());
        let ct = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: payload,
                    aad: &out,
                },
            )
            .map_err(|_| SealError::Malformed {
                path: self.path.clone(),
                kind: String::from_utf8_lossy(&self.kind).into(),
                reason: "encryption failed".into(),
            })?;
        out.extend_from_slice(&ct);
        write_atomic(&self.path, &out).map_err(io("writing", &self.path))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIND: &[u8; 8] = b"SHOJITST";
    const FAST: KdfParams = KdfParams {
        m_cost_kib: 256,
        t_cost: 1,
        lanes: 1,
    };

    #[test]
    fn round_trip_and_resave() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w");
        let f = SealedFile::create(&path, KIND, b"pw", FAST, b"hello").unwrap();
        f.save(b"second").unwrap();
        drop(f);
        let (_, payload) = SealedFile::open(&path, KIND, b"pw").unwrap();
        assert_eq!(&payload[..], b"second");
        assert!(!std::fs::read(&path)
            .unwrap()
            .windows(6)
            .any(|w| w == b"second"));
    }

    #[test]
    fn wrong_passphrase_and_every_flipped_byte_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w");
        drop(SealedFile::create(&path, KIND, b"pw", FAST, b"secret payload").unwrap());
        assert!(matches!(
            SealedFile::open(&path, KIND, b"pW"),
            Err(SealError::WrongPassphrase(_))
        ));
        let good = std::fs::read(&path).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            std::fs::write(&path, &bad).unwrap();
            assert!(SealedFile::open(&path, KIND, b"pw").is_err(), "byte {i}");
        }
        std::fs::write(&path, &good[..good.len() - 1]).unwrap();
        assert!(SealedFile::open(&path, KIND, b"pw").is_err());
        std::fs::write(&path, &good).unwrap();
        assert!(SealedFile::open(&path, KIND, b"pw").is_ok());
    }

    #[test]
    fn second_opener_is_refused_and_create_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w");
        let f = SealedFile::create(&path, KIND, b"pw", FAST, b"x").unwrap();
        assert!(matches!(
            SealedFile::open(&path, KIND, b"pw"),
            Err(SealError::Locked(_))
        ));
        drop(f);
        assert!(matches!(
            SealedFile::create(&path, KIND, b"pw", FAST, b"y"),
            Err(SealError::Exists(_))
        ));
        assert!(matches!(
            SealedFile::open(&path, b"SHOJIXXX", b"pw"),
            Err(SealError::Malformed { .. })
        ));
        assert!(matches!(
            SealedFile::open(&dir.path().join("none"), KIND, b"pw"),
            Err(SealError::NotFound(_))
        ));
    }

    #[test]
    fn a_failed_write_leaves_what_was_there_and_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // A non-empty directory where the file should go: the rename fails.
        let path = dir.path().join("w");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), b"old").unwrap();
        assert!(write_atomic(&path, b"new").is_err());
        assert_eq!(std::fs::read(path.join("inside")).unwrap(), b"old");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "a temporary file was left behind");
    }

    /// The temporary file's name used to be predictable (`.<name>.tmp<pid>`) and opened through
    /// links: whoever could write the directory planted a link there and had the validator's
    /// or issuer's key written into a file of its choosing. Now no planted link is followed.
    #[cfg(unix)]
    #[test]
    fn a_planted_link_does_not_receive_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"untouched").unwrap();
        let path = dir.path().join("validator.key");
        let predicted = dir
            .path()
            .join(format!(".validator.key.tmp{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &predicted).unwrap();
        write_atomic(&path, b"secret key").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
        assert_eq!(std::fs::read(&path).unwrap(), b"secret key");
        assert!(!std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink());
    }

    /// One flipped bit of the memory cost (19 MiB to 2 GiB) made opening allocate 2 GiB before
    /// the authentication could fail, and abort where that memory was not available. The
    /// parameters are bounded before the key is derived and the file is called damaged.
    #[test]
    fn a_flipped_bit_in_the_kdf_header_is_damage_not_an_allocation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let f = SealedFile::create(&path, KIND, b"pw", KdfParams::default(), b"x").unwrap();
        drop(f);
        let mut bytes = std::fs::read(&path).unwrap();
        // m_cost is the u32 at offset 9: bit 21 is in its third byte.
        bytes[9 + 2] ^= 1 << 5;
        std::fs::write(&path, &bytes).unwrap();
        match SealedFile::open(&path, KIND, b"pw") {
            Err(SealError::Malformed { reason, .. }) => {
                assert!(reason.contains("damaged"), "{reason}")
            }
            Err(e) => panic!("expected a damaged file, got {e}"),
            Ok(_) => panic!("a damaged file opened"),
        }
    }
}
