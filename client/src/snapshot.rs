//! Fetching a state snapshot for a validator that joins: offers from every validator, the
//! newest certified one first, each chunk from the validators in turn until one serves bytes
//! that match the manifest, and the whole checked against the certificate
//! ([`shoji_ledger::snapshot::SnapshotAssembler`]). A validator that serves a chunk that does
//! not match, or a manifest whose chunks do not make the certified state, is reported and left
//! for the others; the fetch fails only when no validator serves a snapshot that checks.

use crate::{Client, ClientError};
use shoji_consensus::CheckpointCertificate;
use shoji_ledger::snapshot::{SnapshotAssembler, SnapshotManifest, VerifiedSnapshot};

/// A validator to fetch snapshot pieces from ([`Client`] is one).
pub trait SnapshotSource {
    /// The validator's replica id.
    fn node(&self) -> u16;
    /// Its newest snapshot, with a checkpoint certificate already checked against the
    /// validator set ([`Client::snapshot_offer`]).
    fn offer(&self) -> Result<Option<(CheckpointCertificate, SnapshotManifest)>, ClientError>;
    /// Chunk `index` of its snapshot of `height` (empty: it does not have it).
    fn chunk(&self, height: u64, index: u32) -> Result<Vec<u8>, ClientError>;
}

impl SnapshotSource for Client {
    fn node(&self) -> u16 {
        Client::node(self)
    }

    fn offer(&self) -> Result<Option<(CheckpointCertificate, SnapshotManifest)>, ClientError> {
        self.snapshot_offer()
    }

    fn chunk(&self, height: u64, index: u32) -> Result<Vec<u8>, ClientError> {
        self.snapshot_chunk(height, index)
    }
}

/// A snapshot that checks against its certificate, and what was refused on the way.
#[derive(Debug)]
pub struct FetchedSnapshot {
    /// The stable checkpoint whose state the snapshot is.
    pub checkpoint: CheckpointCertificate,
    /// The state.
    pub snapshot: VerifiedSnapshot,
    /// Validators whose answers were refused, with why: report them to the operators.
    pub refused: Vec<(u16, String)>,
}

/// Fetches the newest snapshot any of `sources` offers that checks against its certificate
/// (see the module documentation). `Ok(None)` when none offers a snapshot at all; an error
/// when some do but none checks.
pub fn fetch_snapshot(
    sources: &[&dyn SnapshotSource],
) -> Result<Option<FetchedSnapshot>, ClientError> {
    let mut refused = Vec::new();
    let mut offers = Vec::new();
    for s in sources {
        match s.offer() {
            Ok(Some((cert, manifest))) => offers.push((cert, manifest, s.node())),
            Ok(None) => {}
            Err(e) => refused.push((s.node(), e.to_string())),
        }
    }
    if offers.is_empty() {
        return match refused.is_empty() {
            true => Ok(None),
            false => Err(ClientError::Unreachable(describe(&refused))),
        };
    }
    // The newest first; among equals, in validator order.
    offers.sort_by(|a, b| b.0.height.cmp(&a.0.height).then(a.2.cmp(&b.2)));
    for (cert, manifest, offerer) in offers {
        let mut assembler = match SnapshotAssembler::new(manifest, &cert.state_root) {
            Ok(a) => a,
            Err(e) => {
                refused.push((offerer, e.to_string()));
                continue;
            }
        };
        if let Err(why) = fill(&mut assembler, cert.height, sources, &mut refused) {
            refused.push((offerer, why));
            continue;
        }
        match assembler.finish() {
            Ok(snapshot) => {
                return Ok(Some(FetchedSnapshot {
                    checkpoint: cert,
                    snapshot,
                    refused,
                }))
            }
            Err(e) => refused.push((
                offerer,
                format!("its snapshot of height {}: {e}", cert.height),
            )),
        }
    }
    Err(ClientError::Server(format!(
        "no validator serves a snapshot that checks against its certificate: {}",
        describe(&refused)
    )))
}

/// Fetches every chunk the assembler lacks, chunk `i` first from source `i mod n` and then
/// from the others; the error says which chunk no source served.
fn fill(
    assembler: &mut SnapshotAssembler,
    height: u64,
    sources: &[&dyn SnapshotSource],
    refused: &mut Vec<(u16, String)>,
) -> Result<(), String> {
    let n = sources.len();
    for index in assembler.missing() {
        let mut got = false;
        for k in 0..n {
            let s = sources[(index + k) % n];
            let Ok(i) = u32::try_from(index) else {
                return Err(format!("chunk {index} is out of range"));
            };
            match s.chunk(height, i) {
                Ok(bytes) if bytes.is_empty() => continue,
                Ok(bytes) => match assembler.accept(index, &bytes) {
                    Ok(()) => {
                        got = true;
                        break;
                    }
                    Err(e) => refused.push((s.node(), format!("snapshot {height}: {e}"))),
                },
                Err(e) => refused.push((s.node(), e.to_string())),
            }
        }
        if !got {
            return Err(format!(
                "no validator served chunk {index} of its snapshot of height {height} as listed"
            ));
        }
    }
    Ok(())
}

fn describe(refused: &[(u16, String)]) -> String {
    refused
        .iter()
        .map(|(n, why)| format!("validator {n}: {why}"))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoji_consensus::BlockHash;
    use shoji_ledger::snapshot::SnapshotWriter;
    use shoji_ledger::{chain_nullifier, LedgerHead};
    use std::cell::Cell;

    /// What a source does wrong.
    #[derive(Clone, Copy, PartialEq)]
    enum Fault {
        None,
        /// Flips a byte of every chunk.
        Tamper,
        /// Drops the last byte of every chunk.
        Truncate,
        /// Offers the snapshot of one height under the certificate of another.
        OtherRoot,
        /// Offers a higher snapshot whose chunks (listed honestly by hash) leave a nullifier
        /// out.
        DropNullifier,
    }

    struct Source {
        node: u16,
        fault: Fault,
        cert: CheckpointCertificate,
        manifest: SnapshotManifest,
        chunks: Vec<Vec<u8>>,
        served: Cell<usize>,
    }

    /// A state at `height` with `n` nullifiers, cut into chunks of 1 KiB, and its
    /// certificate (no signatures: a [`SnapshotSource`] hands out checked certificates).
    fn state(
        height: u64,
        n: u64,
        drop: bool,
    ) -> (CheckpointCertificate, SnapshotManifest, Vec<Vec<u8>>) {
        let nfs: Vec<[u8; 32]> = (0..n)
            .map(|i| blake3::derive_key("test nullifier", &i.to_le_bytes()))
            .collect();
        let mut head = LedgerHead::genesis();
        head.height = height;
        head.nullifier_chain = nfs.iter().fold([0; 32], |c, nf| chain_nullifier(&c, nf));
        let root = head.frontier.root();
        let mut chunks = Vec::new();
        let mut w = SnapshotWriter::new(&head, &root, 1024, |_, b: &[u8]| {
            chunks.push(b.to_vec());
            Ok::<(), ()>(())
        })
        .unwrap();
        for (i, nf) in nfs.iter().enumerate() {
            if !(drop && i == 5) {
                w.nullifier(nf).unwrap();
            }
        }
        let manifest = w.finish().unwrap();
        let cert = CheckpointCertificate {
            height,
            block_hash: BlockHash([1; 32]),
            state_root: head.state_root_with(&root),
            signatures: Vec::new(),
        };
        (cert, manifest, chunks)
    }

    fn source(node: u16, fault: Fault) -> Source {
        let (cert, manifest, chunks) = match fault {
            Fault::DropNullifier => {
                let (mut cert, mut manifest, chunks) = state(16, 100, true);
                // The certificate of height 16 signs the honest state: the lying manifest
                // keeps the honest opening and lists its own chunks.
                let (honest, honest_manifest, _) = state(16, 100, false);
                cert.state_root = honest.state_root;
                manifest.opening = honest_manifest.opening;
                (cert, manifest, chunks)
            }
            Fault::OtherRoot => {
                let (_, manifest, chunks) = state(8, 100, false);
                let (cert, _, _) = state(16, 100, false);
                (cert, manifest, chunks)
            }
            _ => state(8, 100, false),
        };
        Source {
            node,
            fault,
            cert,
            manifest,
            chunks,
            served: Cell::new(0),
        }
    }

    impl SnapshotSource for Source {
        fn node(&self) -> u16 {
            self.node
        }

        fn offer(&self) -> Result<Option<(CheckpointCertificate, SnapshotManifest)>, ClientError> {
            Ok(Some((self.cert.clone(), self.manifest.clone())))
        }

        fn chunk(&self, height: u64, index: u32) -> Result<Vec<u8>, ClientError> {
            if height != self.cert.height && self.fault != Fault::OtherRoot {
                return Ok(Vec::new());
            }
            let Some(mut c) = self.chunks.get(index as usize).cloned() else {
                return Ok(Vec::new());
            };
            self.served.set(self.served.get() + 1);
            match self.fault {
                Fault::Tamper => c[3] ^= 1,
                Fault::Truncate => {
                    c.pop();
                }
                _ => {}
            }
            Ok(c)
        }
    }

    #[test]
    fn honest_validators_serve_a_snapshot_split_between_them() {
        let (a, b) = (source(0, Fault::None), source(1, Fault::None));
        let got = fetch_snapshot(&[&a, &b]).unwrap().unwrap();
        assert_eq!(got.checkpoint.height, 8);
        assert_eq!(got.snapshot.nullifier_log.len(), 100);
        assert!(got.refused.is_empty());
        assert!(a.served.get() > 0 && b.served.get() > 0);
    }

    #[test]
    fn tampered_and_truncated_chunks_are_fetched_from_another_validator() {
        for fault in [Fault::Tamper, Fault::Truncate] {
            let (bad, good) = (source(0, fault), source(1, Fault::None));
            let got = fetch_snapshot(&[&bad, &good]).unwrap().unwrap();
            assert_eq!(got.snapshot.nullifier_log.len(), 100);
            assert!(!got.refused.is_empty());
            assert!(
                got.refused.iter().all(|(n, _)| *n == 0),
                "{:?}",
                got.refused
            );
        }
    }

    #[test]
    fn a_snapshot_for_another_state_root_or_a_lying_manifest_falls_back_to_an_honest_one() {
        for fault in [Fault::OtherRoot, Fault::DropNullifier] {
            let (bad, good) = (source(0, fault), source(1, Fault::None));
            let got = fetch_snapshot(&[&bad, &good]).unwrap().unwrap();
            // The honest snapshot of height 8, although the liar offered height 16.
            assert_eq!(got.checkpoint.height, 8);
            assert_eq!(got.snapshot.nullifier_log.len(), 100);
            assert!(
                got.refused.iter().any(|(n, _)| *n == 0),
                "{:?}",
                got.refused
            );
        }
        // With no honest validator, the fetch fails and says why.
        let bad = source(0, Fault::Tamper);
        let err = fetch_snapshot(&[&bad]).unwrap_err().to_string();
        assert!(err.contains("chunk"), "{err}");
    }
}
