//! Where a command-line client gets a passphrase: a file named on the command line (its first
//! line), else an environment variable (for scripts), else the terminal without echo. The
//! explicit choice wins: a `--passphrase-file` given while the variable is set (left over in a
//! shell, say) is the one used.

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

/// Reads a passphrase from `file`, else `env_var`, else the terminal (twice when `confirm`).
pub fn read(
    env_var: &str,
    file: Option<&Path>,
    prompt: &str,
    confirm: bool,
) -> Result<Zeroizing<String>, PassphraseError> {
    let p = if let Some(file) = file {
        let text = Zeroizing::new(
            std::fs::read_to_string(file)
                .map_err(|e| PassphraseError::File(file.display().to_string(), e))?,
        );
        Zeroizing::new(text.lines().next().unwrap_or("").to_string())
    } else if let Ok(p) = std::env::var(env_var) {
        Zeroizing::new(p)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented order: the file named on the command line beats the variable.
    #[test]
    fn the_explicit_file_wins_over_the_variable() {
        // A variable of this test's own, so that no other test sees it.
        let var = "SHOJI_TEST_PASSPHRASE_ORDER";
        std::env::set_var(var, "from the variable");
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("passphrase");
        std::fs::write(&file, "from the file\nsecond line\n").expect("write");
        let p = read(var, Some(&file), "", false).expect("passphrase");
        assert_eq!(p.as_str(), "from the file");
        let p = read(var, None, "", false).expect("passphrase");
        assert_eq!(p.as_str(), "from the variable");
        std::env::remove_var(var);
    }
}
