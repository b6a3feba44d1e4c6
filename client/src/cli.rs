//! What the command-line clients share at their edge: exit codes for the errors they have in
//! common, how a failure is reported, and how times are shown.

use crate::network::NetworkError;
use crate::passphrase::{self, PassphraseError};
use crate::sealed::{KdfParams, SealError, SealedFile};
use crate::ClientError;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use zeroize::Zeroizing;

/// Exit code of an error no more specific code describes.
pub const OTHER: u8 = 1;
/// Usage errors.
pub const USAGE: u8 = 2;
/// Unknown asset.
pub const UNKNOWN_ASSET: u8 = 4;
/// Malformed or mistyped address.
pub const BAD_ADDRESS: u8 = 5;
/// Wrong passphrase.
pub const WRONG_PASSPHRASE: u8 = 6;
/// No validator reachable.
pub const UNREACHABLE: u8 = 7;
/// Transaction refused or rejected by the network.
pub const REJECTED: u8 = 8;
/// A file in use by another process.
pub const IN_USE: u8 = 10;
/// A file missing, or already there.
pub const FILE: u8 = 11;

/// The exit code of the first cause in `e` that the clients share a code for, or [`OTHER`].
pub fn common_code(e: &(dyn std::error::Error + 'static)) -> u8 {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(NetworkError::UnknownAsset(..)) = c.downcast_ref::<NetworkError>() {
            return UNKNOWN_ASSET;
        }
        if c.downcast_ref::<shoji_primitives::keys::AddressError>()
            .is_some()
        {
            return BAD_ADDRESS;
        }
        if let Some(SecretFileError::Missing { .. } | SecretFileError::Exists { .. }) =
            c.downcast_ref::<SecretFileError>()
        {
            return FILE;
        }
        match c.downcast_ref::<SealError>() {
            Some(SealError::WrongPassphrase(_)) => return WRONG_PASSPHRASE,
            Some(SealError::Locked(_)) => return IN_USE,
            Some(SealError::NotFound(_) | SealError::Exists(_)) => return FILE,
            _ => {}
        }
        match c.downcast_ref::<ClientError>() {
            Some(ClientError::Unreachable(_) | ClientError::Connection { .. }) => {
                return UNREACHABLE
            }
            Some(ClientError::Refused(_) | ClientError::Rejected { .. }) => return REJECTED,
            _ => {}
        }
        cause = c.source();
    }
    OTHER
}

/// Why a client's secret file could not be opened or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretFileError {
    /// There is no such file.
    #[error("no {what} at {path} ({hint})")]
    Missing {
        /// What the file holds.
        what: String,
        /// Where it was looked for.
        path: PathBuf,
        /// How to create one.
        hint: String,
    },
    /// Creating would overwrite a file.
    #[error("{path} already exists; refusing to overwrite a {what}")]
    Exists {
        /// What the file holds.
        what: String,
        /// The file.
        path: PathBuf,
    },
    /// No passphrase could be had.
    #[error("{0}")]
    Passphrase(#[source] PassphraseError),
    /// The sealed file refused to open or be written.
    #[error("{0}")]
    Seal(#[source] SealError),
}

/// A client's sealed secret file and where its passphrase comes from.
pub struct SecretFile<'a> {
    /// The file.
    pub path: &'a Path,
    /// Its sealed-file kind.
    pub kind: &'a [u8; 8],
    /// What it holds, for messages ("wallet", "auditor key").
    pub what: &'a str,
    /// How to create one, for the message when it is missing.
    pub hint: &'a str,
    /// The environment variable that may hold the passphrase.
    pub env_var: &'a str,
    /// A file whose first line is the passphrase.
    pub passphrase_file: Option<&'a Path>,
}

impl SecretFile<'_> {
    /// Opens the file (locked) with its passphrase and returns its payload.
    pub fn open(&self) -> Result<(SealedFile, Zeroizing<Vec<u8>>), SecretFileError> {
        if !self.path.exists() {
            return Err(SecretFileError::Missing {
                what: self.what.into(),
                path: self.path.into(),
                hint: self.hint.into(),
            });
        }
        let prompt = format!("Passphrase for the {}: ", self.what);
        let pass = passphrase::read(self.env_var, self.passphrase_file, &prompt, false)
            .map_err(SecretFileError::Passphrase)?;
        SealedFile::open(self.path, self.kind, pass.as_bytes()).map_err(SecretFileError::Seal)
    }

    /// Creates the file holding `payload` under a new passphrase (asked twice on a terminal).
    pub fn create(&self, payload: &[u8]) -> Result<SealedFile, SecretFileError> {
        if self.path.exists() {
            return Err(SecretFileError::Exists {
                what: self.what.into(),
                path: self.path.into(),
            });
        }
        let prompt = format!("New passphrase for the {}: ", self.what);
        let pass = passphrase::read(self.env_var, self.passphrase_file, &prompt, true)
            .map_err(SecretFileError::Passphrase)?;
        SealedFile::create(
            self.path,
            self.kind,
            pass.as_bytes(),
            KdfParams::default(),
            payload,
        )
        .map_err(SecretFileError::Seal)
    }
}

/// Reports a failure (`message`, with `code`) on standard error, and as one JSON object on
/// standard output when `json`; returns the exit code.
pub fn report_failure(json: bool, code: u8, message: &str) -> ExitCode {
    if json {
        println!(
            "{}",
            serde_json::json!({"error": message, "exit_code": code})
        );
    }
    eprintln!("error: {message}");
    ExitCode::from(code)
}

/// RFC 3339 in UTC, to the millisecond; the bare number if it is out of range.
pub fn format_time(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// Warns, on standard error, that `network` is marked insecure, with the reason its genesis
/// gives (development keys or parameters): every validator, wallet and auditor says so.
pub fn warn_if_insecure(network: &crate::Network) {
    if let Some(why) = &network.insecure {
        eprintln!("{}", crate::network::insecure_warning(why));
    }
}

/// Tells the user, on standard error, of each validator caught answering what the network did
/// not certify (the `(validator, what it got wrong)` pairs
/// [`crate::Client::scan_certified`] returns): nothing it sent was used.
pub fn warn_liars(liars: &[(u16, String)]) {
    for (node, what) in liars {
        eprintln!(
            "warning: validator {node} answered what the network did not certify ({what}); \
             nothing it sent was used"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_cause_chain() {
        let e = ClientError::Refused("double spend".into());
        assert_eq!(common_code(&e), REJECTED);
        let e = SealError::Locked("w".into());
        assert_eq!(common_code(&e), IN_USE);
        let e = SecretFileError::Seal(SealError::WrongPassphrase("w".into()));
        assert_eq!(common_code(&e), WRONG_PASSPHRASE);
        let e = SecretFileError::Exists {
            what: "wallet".into(),
            path: "w".into(),
        };
        assert_eq!(common_code(&e), FILE);
        let e = std::io::Error::other("disk");
        assert_eq!(common_code(&e), OTHER);
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time(u64::MAX), format!("{} ms", u64::MAX));
    }
}
