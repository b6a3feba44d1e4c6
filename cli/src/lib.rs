//! The shell every Shoji command-line program shares, so that each program's `main` holds only
//! its own commands:
//!
//! - [`Exit`]: one table of exit codes, from which both the codes and the `--help` text come
//!   ([`Exit::help`]);
//! - [`Failure`]: an error with its exit code, found from the first cause that has one
//!   ([`common_code`]), and [`Failure::report`] on standard error (and standard output as JSON);
//! - [`SecretFile`]: a passphrase-sealed secret file (wallet, auditor key), locked while open;
//! - [`load_network`]: the network file, with the warning an insecure network gets;
//! - [`sync_certified`]: the one sync loop (certified blocks, a progress bar) of every client;
//! - [`DistanceArgs`]: the delaying relays of a benchmark network, one set of flags;
//! - [`format_time`], [`warn_liars`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod distance;
mod sync;
pub use distance::DistanceArgs;
pub use sync::{sync_certified, Synced, SYNC_BATCH};

use anyhow::Context;
use shoji_client::network::NetworkError;
use shoji_client::passphrase::{self, PassphraseError};
use shoji_client::sealed::{KdfParams, SealError, SealedFile};
use shoji_client::{ClientError, Network};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use zeroize::Zeroizing;

/// Every exit code a Shoji client program returns; each program lists the ones it uses in its
/// `--help` ([`Exit::help`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// An error no more specific code describes.
    Other = 1,
    /// Bad usage: an unknown option, a malformed argument.
    Usage = 2,
    /// Not enough funds for the payment.
    InsufficientFunds = 3,
    /// An asset the network does not name.
    UnknownAsset = 4,
    /// A malformed or mistyped address.
    BadAddress = 5,
    /// The passphrase does not open the file.
    WrongPassphrase = 6,
    /// No validator could be reached.
    Unreachable = 7,
    /// The network refused or rejected the transaction.
    Rejected = 8,
    /// The local state is behind the network.
    OutOfDate = 9,
    /// The secret file is in use by another process.
    InUse = 10,
    /// The secret file is missing, or already exists.
    File = 11,
    /// A disclosure that does not verify.
    InvalidDisclosure = 12,
    /// A transaction that is not among the records designated to this key.
    NotFound = 13,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// What the code means, for `--help`; `file` names the program's secret file ("wallet
    /// file", "key file").
    pub fn meaning(self, file: &str) -> String {
        match self {
            Exit::Other => "any other error".into(),
            Exit::Usage => "usage error".into(),
            Exit::InsufficientFunds => "insufficient funds".into(),
            Exit::UnknownAsset => "unknown asset".into(),
            Exit::BadAddress => "malformed or mistyped address".into(),
            Exit::WrongPassphrase => "wrong passphrase".into(),
            Exit::Unreachable => "no validator reachable".into(),
            Exit::Rejected => "transaction refused or rejected by the network".into(),
            Exit::OutOfDate => "wallet out of date (run `shoji-wallet sync`)".into(),
            Exit::InUse => format!("{file} in use by another process"),
            Exit::File => format!("{file} missing, or already exists"),
            Exit::InvalidDisclosure => {
                "the disclosure is invalid (tampered, or not about that transaction)".into()
            }
            Exit::NotFound => {
                "transaction not found among the records designated to this key".into()
            }
        }
    }

    /// The `--help` table of `codes` (0, success, first).
    pub fn help(file: &str, codes: &[Exit]) -> String {
        let mut out = String::from("Exit codes:\n  0  success");
        for c in codes {
            out.push_str(&format!("\n  {:<2} {}", c.code(), c.meaning(file)));
        }
        out
    }
}

/// An error and the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub code: Exit,
    /// The error, with its causes.
    pub error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        let error = e.into();
        Failure {
            code: common_code(error.as_ref()),
            error,
        }
    }
}

impl Failure {
    /// A failure with an explicit code.
    pub fn new(code: Exit, error: anyhow::Error) -> Failure {
        Failure { code, error }
    }

    /// Reports the failure on standard error, and as one JSON object on standard output when
    /// `json`; returns the exit code.
    pub fn report(&self, json: bool) -> ExitCode {
        let message = format!("{:#}", self.error);
        if json {
            println!(
                "{}",
                serde_json::json!({"error": message, "exit_code": self.code.code()})
            );
        }
        eprintln!("error: {message}");
        ExitCode::from(self.code.code())
    }
}

/// A failure with an explicit code.
pub fn fail(code: Exit, error: anyhow::Error) -> Failure {
    Failure::new(code, error)
}

/// Reads and checks the network file at `path`, and warns on standard error if it is marked
/// insecure.
pub fn load_network(path: &Path) -> Result<Network, Failure> {
    let net = Network::load(path).context(
        "the network file says which validators to trust (start a local network with \
         `shoji-node devnet`, or pass --network)",
    )?;
    warn_if_insecure(&net);
    Ok(net)
}

/// The exit code of the first cause in `e` that the clients share a code for, or
/// [`Exit::Other`].
pub fn common_code(e: &(dyn std::error::Error + 'static)) -> Exit {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(NetworkError::UnknownAsset(..)) = c.downcast_ref::<NetworkError>() {
            return Exit::UnknownAsset;
        }
        if c.downcast_ref::<shoji_primitives::keys::AddressError>()
            .is_some()
        {
            return Exit::BadAddress;
        }
        if let Some(SecretFileError::Missing { .. } | SecretFileError::Exists { .. }) =
            c.downcast_ref::<SecretFileError>()
        {
            return Exit::File;
        }
        match c.downcast_ref::<SealError>() {
            Some(SealError::WrongPassphrase(_)) => return Exit::WrongPassphrase,
            Some(SealError::Locked(_)) => return Exit::InUse,
            Some(SealError::NotFound(_) | SealError::Exists(_)) => return Exit::File,
            _ => {}
        }
        match c.downcast_ref::<ClientError>() {
            Some(ClientError::Unreachable(_) | ClientError::Connection { .. }) => {
                return Exit::Unreachable
            }
            Some(ClientError::Refused(_) | ClientError::Rejected { .. }) => return Exit::Rejected,
            _ => {}
        }
        cause = c.source();
    }
    Exit::Other
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
pub fn warn_if_insecure(network: &Network) {
    if let Some(why) = &network.insecure {
        eprintln!("{}", shoji_client::network::insecure_warning(why));
    }
}

/// Tells the user, on standard error, of each validator caught answering what the network did
/// not certify (the `(validator, what it got wrong)` pairs
/// [`shoji_client::Client::scan_certified`] returns): nothing it sent was used.
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
        assert_eq!(common_code(&e), Exit::Rejected);
        let e = SealError::Locked("w".into());
        assert_eq!(common_code(&e), Exit::InUse);
        let e = SecretFileError::Seal(SealError::WrongPassphrase("w".into()));
        assert_eq!(common_code(&e), Exit::WrongPassphrase);
        let e = SecretFileError::Exists {
            what: "wallet".into(),
            path: "w".into(),
        };
        assert_eq!(common_code(&e), Exit::File);
        let e = std::io::Error::other("disk");
        assert_eq!(common_code(&e), Exit::Other);
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time(u64::MAX), format!("{} ms", u64::MAX));
    }

    /// The help table lists each code once, with the program's own file name.
    #[test]
    fn the_help_table_comes_from_the_codes() {
        let help = Exit::help("wallet file", &[Exit::Other, Exit::InUse]);
        assert_eq!(
            help,
            "Exit codes:\n  0  success\n  1  any other error\n  10 wallet file in use by another process"
        );
        assert_eq!(Exit::NotFound.code(), 13);
    }
}
