//! Governance proposal files: how administrators pass a governance transaction around to
//! approve it, one key at a time, possibly on machines that never touch the network, before
//! one of them submits it (`shoji-node governance propose | approve | show | submit`).
//!
//! A proposal file is JSON: the format tag, the network's identifier (its genesis hash: the
//! approvals sign it), a human-readable summary of the action, the approving keys, and the
//! transaction itself in hex. The transaction is what counts; the summary and the list of
//! approvers are recomputed from it whenever the file is written, and checked against it when it
//! is read, so a file edited by hand is refused rather than misread.

use serde::{Deserialize, Serialize};
use shoji_primitives::encoding::{hex_decode, hex_encode};
use shoji_primitives::governance::GovernanceTx;
use std::path::{Path, PathBuf};

/// The `format` of a proposal file.
pub const PROPOSAL_FORMAT: &str = "shoji-governance-v1";

/// A proposal file's JSON form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposalFile {
    /// [`PROPOSAL_FORMAT`].
    pub format: String,
    /// The network it is for (genesis hash), hex.
    pub network_id: String,
    /// Its sequence number.
    pub seq: u64,
    /// What it does, in words.
    pub summary: String,
    /// The administrators who approved it so far (public keys, hex).
    pub approved_by: Vec<String>,
    /// The encoded transaction, hex.
    pub transaction: String,
}

/// Why a proposal file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProposalError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a proposal, or its parts disagree.
    #[error("{path} is not a valid governance proposal: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// A proposal: a governance transaction for one network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// The network's identifier.
    pub network_id: [u8; 32],
    /// The transaction, with the approvals collected so far.
    pub tx: GovernanceTx,
}

impl Proposal {
    /// The file form.
    pub fn to_file(&self) -> ProposalFile {
        ProposalFile {
            format: PROPOSAL_FORMAT.into(),
            network_id: hex_encode(&self.network_id),
            seq: self.tx.seq,
            summary: self.tx.action.to_string(),
            approved_by: self
                .tx
                .approvals
                .iter()
                .map(|a| hex_encode(&a.admin))
                .collect(),
            transaction: hex_encode(&self.tx.to_bytes()),
        }
    }

    /// Checks a file form: the transaction decodes and the other fields say what it says.
    pub fn from_file(f: &ProposalFile) -> Result<Proposal, String> {
        if f.format != PROPOSAL_FORMAT {
            return Err(format!(
                "format {:?}, expected {PROPOSAL_FORMAT:?}",
                f.format
            ));
        }
        let network_id: [u8; 32] = hex_decode("network_id", &f.network_id)
            .map_err(|e| e.to_string())?
            .try_into()
            .map_err(|_| "network_id must be 32 bytes".to_string())?;
        let bytes = hex_decode("transaction", &f.transaction).map_err(|e| e.to_string())?;
        let tx = GovernanceTx::from_bytes(&bytes).map_err(|e| e.to_string())?;
        let p = Proposal { network_id, tx };
        let canonical = p.to_file();
        if canonical.seq != f.seq
            || canonical.summary != f.summary
            || canonical.approved_by != f.approved_by
        {
            return Err("seq, summary or approved_by do not match the transaction".into());
        }
        Ok(p)
    }

    /// Reads and checks a proposal file.
    pub fn load(path: &Path) -> Result<Proposal, ProposalError> {
        let malformed = |reason: String| ProposalError::Malformed {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|source| ProposalError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let f: ProposalFile = serde_json::from_str(&text).map_err(|e| malformed(e.to_string()))?;
        Proposal::from_file(&f).map_err(malformed)
    }

    /// Writes the proposal file atomically.
    pub fn save(&self, path: &Path) -> Result<(), ProposalError> {
        let json = serde_json::to_string_pretty(&self.to_file()).map_err(|e| {
            ProposalError::Malformed {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        })?;
        shoji_client::sealed::write_atomic(path, format!("{json}\n").as_bytes()).map_err(|source| {
            ProposalError::Io {
                path: path.to_path_buf(),
                source,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoji_primitives::governance::{GovernanceAction, GovernanceRules};
    use shoji_primitives::note::AssetId;
    use std::collections::BTreeSet;

    #[test]
    fn approvals_travel_through_files_and_edits_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        let admins = [
            crate::devnet::dev_admin_key(0),
            crate::devnet::dev_admin_key(1),
        ];
        let net = [3u8; 32];
        let p = Proposal {
            network_id: net,
            tx: GovernanceTx::new(
                0,
                GovernanceAction::SetIssuer {
                    issuer: [5; 32],
                    assets: BTreeSet::from([AssetId(978)]),
                },
            ),
        };
        p.save(&path).unwrap();
        for k in &admins {
            let mut q = Proposal::load(&path).unwrap();
            q.tx.approve(k, &q.network_id.clone());
            q.save(&path).unwrap();
        }
        let q = Proposal::load(&path).unwrap();
        assert_eq!(q.tx.approvals.len(), 2);
        let rules = GovernanceRules {
            admins: admins
                .iter()
                .map(|k| k.verifying_key().to_bytes())
                .collect(),
            threshold: 2,
        };
        assert_eq!(q.tx.check_approvals(&rules, &net), Ok(()));
        assert!(q.to_file().summary.contains("978"));

        // A summary that says something else than the transaction.
        let mut f = q.to_file();
        f.summary = "issuer 05… may mint and redeem assets 1".into();
        assert!(Proposal::from_file(&f).is_err());
        let mut f = q.to_file();
        f.seq = 1;
        assert!(Proposal::from_file(&f).is_err());
        let mut f = q.to_file();
        f.transaction.pop();
        assert!(Proposal::from_file(&f).is_err());
        std::fs::write(&path, "{}").unwrap();
        assert!(matches!(
            Proposal::load(&path),
            Err(ProposalError::Malformed { .. })
        ));
        assert!(matches!(
            Proposal::load(&dir.path().join("missing.json")),
            Err(ProposalError::Io { .. })
        ));
    }
}
