//! Where a command-line client gets a passphrase: an environment variable (for scripts), a file
//! (first line), or the terminal without echo.

use std::io::IsTerminal;
use std::path::Path;
use zeroize::Zeroizing;

/// Why no passphrase could be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PassphraseError {
    /// There is no terminal to ask on and no other source was given.
    #[error("no passphrase: set {0} or pass --passphrase-file (there is no terminal to ask on)")]
    NoSource(String),
    /// The file could not be read.
    #[error("cannot read the passphrase file {0}: {1}")]
    File(String, std::io::Error),
    /// Reading from the terminal failed.
    #[error("cannot read the passphrase: {0}")]
    Terminal(std::io::Error),
    /// Empty passphrases are refused.
    #[error("the passphrase must not be empty")]
    Empty,
    /// The two entries differ.
    #[error("the passphrases do not match")]
    Mismatch,
}

/// Reads a passphrase from `env_var`, else `file`, else the terminal (twice when `confirm`).
pub fn read(
    env_var: &str,
    file: Option<&Path>,
    prompt: &str,
    confirm: bool,
) -> Result<Zeroizing<String>, PassphraseError> {
    let p = if let Ok(p) = std::env::var(env_var) {
        Zeroizing::new(p)
    } else if let Some(file) = file {
        let text = Zeroizing::new(
            std::fs::read_to_string(file)
                .map_err(|e| PassphraseError::File(file.display().to_string(), e))?,
        );
        Zeroizing::new(text.lines().next().unwrap_or("").to_string())
    } else if std::io::stdin().is_terminal() {
        let p =
            Zeroizing::new(rpassword::prompt_password(prompt).map_err(PassphraseError::Terminal)?);
        if confirm {
            let again = Zeroizing::new(
                rpassword::prompt_password("Repeat the passphrase: ")
                    .map_err(PassphraseError::Terminal)?,
            );
            if *again != *p {
                return Err(PassphraseError::Mismatch);
            }
        }
        p
    } else {
        return Err(PassphraseError::NoSource(env_var.to_string()));
    };
    if p.is_empty() {
        return Err(PassphraseError::Empty);
    }
    Ok(p)
}
