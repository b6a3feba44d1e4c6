//! Checking a history archive against the network's certificates, height by height: what
//! `shoji-node archive verify` runs. The archive is trusted for nothing; every object is checked
//! against the validator set of its height, learned the way every client learns it.

use super::{verify_certificate_once, Client, ClientError};
use crate::archive::{decode_block, decode_checkpoint, Archive, ArchiveError};
use shoji_consensus::{BlockHash, CheckpointCertificate};
use shoji_ledger::{chain_compact, CompactBlock};

/// Heights read from the archive at once.
const BATCH: u64 = 64;

/// How far below the first height checked [`Client::verify_archive`] looks for the archived
/// checkpoint to start from, in heights.
const BASE_LOOKBACK: u64 = 4096;

/// What [`Client::verify_archive`] checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArchiveCheck {
    /// The first height checked.
    pub from: u64,
    /// The last height checked (at most the archive's head).
    pub to: u64,
    /// Blocks whose commit certificate verified, each linked to the one before.
    pub blocks: u64,
    /// Checkpoints whose certificate verified and whose state opening matches the compact
    /// blocks up to them.
    pub checkpoints: u64,
    /// Compact blocks above the last archived checkpoint: well formed and in sequence, not yet
    /// covered by a checkpoint.
    pub uncovered: u64,
}

impl Client {
    /// Checks heights `from..=to` of the archive at `url` (up to the head it records):
    ///
    /// - each block's commit certificate against the validator set of its height, and its
    ///   `prev_hash` against the block before;
    /// - each archived checkpoint's certificate, and its state opening against the certified
    ///   state root;
    /// - the compact blocks, folded into the scan chain from the checkpoint below `from`, against
    ///   the scan chain and tree root of every archived checkpoint on the way.
    ///
    /// `progress` is called with each height checked. The first object that does not check is
    /// the error ([`ClientError::Archive`], naming the height).
    pub fn verify_archive(
        &self,
        url: &str,
        from: u64,
        to: u64,
        mut progress: impl FnMut(u64),
    ) -> Result<ArchiveCheck, ClientError> {
        let io = |e: ArchiveError| ClientError::Archive(e.to_string());
        // Opened for this client's runtime: an S3 archive's connections live on the runtime
        // that made them.
        let archive = &Archive::open(url).map_err(io)?;
        let bad = |h: u64, what: String| ClientError::Archive(format!("height {h}: {what}"));
        let head = self.runtime.block_on(archive.head()).map_err(io)?;
        let from = from.max(1);
        let to = to.min(head);
        let mut check = ArchiveCheck {
            from,
            to,
            ..ArchiveCheck::default()
        };
        if from > to {
            return Ok(check);
        }
        // The scan chain where the check starts: genesis's, or the archived checkpoint's at or
        // below the height before `from`.
        let (mut chain, mut covered) = ([0u8; 32], from - 1);
        if from > 1 {
            let (h, cert, opening) = self.archived_base(archive, from)?;
            self.check_archived_checkpoint(h, &cert, &opening)?;
            chain = opening.scan_chain;
            covered = h;
            // The compact blocks between that checkpoint and `from` are folded, not reported.
            if h + 1 < from {
                let compacts = self
                    .runtime
                    .block_on(archive.objects("compact", h + 1..=from - 1))
                    .map_err(io)?;
                for (g, bytes) in (h + 1..from).zip(compacts) {
                    let (bytes, _) = archived_compact(g, bytes)?;
                    chain = chain_compact(&chain, &bytes);
                }
            }
        }
        let mut prev: Option<BlockHash> = None;
        let mut first = from;
        while first <= to {
            let last = to.min(first + BATCH - 1);
            let (blocks, compacts, checkpoints) = self
                .runtime
                .block_on(futures_util::future::try_join3(
                    archive.objects("blocks", first..=last),
                    archive.objects("compact", first..=last),
                    archive.objects("checkpoints", first..=last),
                ))
                .map_err(io)?;
            for (h, ((block, compact), checkpoint)) in
                (first..=last).zip(blocks.into_iter().zip(compacts).zip(checkpoints))
            {
                let block = block.ok_or_else(|| bad(h, "no block".into()))?;
                let (block, cert) = decode_block(h, &block).map_err(|e| bad(h, e.to_string()))?;
                if block.height != h {
                    return Err(bad(h, format!("the object holds block {}", block.height)));
                }
                if prev.is_some_and(|p| p != block.prev_hash) {
                    return Err(bad(h, "the block does not follow the block before".into()));
                }
                let hash = block.hash();
                self.verify_in_epoch(h, |set| verify_certificate_once(set, h, hash, &cert))
                    .map_err(|e| bad(h, format!("commit certificate: {e}")))?;
                prev = Some(hash);
                check.blocks += 1;

                let (bytes, compact) = archived_compact(h, compact)?;
                chain = chain_compact(&chain, &bytes);

                if let Some(checkpoint) = checkpoint {
                    let (cert, opening) =
                        decode_checkpoint(h, &checkpoint).map_err(|e| bad(h, e.to_string()))?;
                    self.check_archived_checkpoint(h, &cert, &opening)?;
                    if opening.scan_chain != chain || opening.tree_root != compact.tree_root {
                        return Err(bad(
                            h,
                            format!(
                                "the compact blocks {}..={h} do not match the certified state",
                                covered + 1
                            ),
                        ));
                    }
                    check.checkpoints += 1;
                    covered = h;
                }
                progress(h);
            }
            first = last + 1;
        }
        check.uncovered = to - covered.max(from - 1);
        Ok(check)
    }

    /// The archived checkpoint at or below the height before `from` (within
    /// [`BASE_LOOKBACK`]), looked for downwards a batch at a time.
    fn archived_base(
        &self,
        archive: &Archive,
        from: u64,
    ) -> Result<(u64, CheckpointCertificate, shoji_ledger::StateOpening), ClientError> {
        let lowest = (from - 1).saturating_sub(BASE_LOOKBACK).max(1);
        let mut last = from - 1;
        while last >= lowest {
            let first = last.saturating_sub(BATCH - 1).max(lowest);
            let found = self
                .runtime
                .block_on(archive.objects("checkpoints", first..=last))
                .map_err(|e| ClientError::Archive(e.to_string()))?;
            let found: Vec<(u64, Option<Vec<u8>>)> = (first..=last).zip(found).collect();
            if let Some((h, bytes)) = found.into_iter().rev().find_map(|(h, b)| b.map(|b| (h, b))) {
                let (cert, opening) = decode_checkpoint(h, &bytes)
                    .map_err(|e| ClientError::Archive(e.to_string()))?;
                return Ok((h, cert, opening));
            }
            last = first - 1;
        }
        Err(ClientError::Archive(format!(
            "no archived checkpoint within {BASE_LOOKBACK} heights below {from} to start from"
        )))
    }

    /// An archived checkpoint, checked: its certificate against the validator set of its
    /// height, its opening against the certified state root.
    fn check_archived_checkpoint(
        &self,
        h: u64,
        cert: &CheckpointCertificate,
        opening: &shoji_ledger::StateOpening,
    ) -> Result<(), ClientError> {
        let bad = |what: String| ClientError::Archive(format!("checkpoint {h}: {what}"));
        if cert.height != h || opening.height != h {
            return Err(bad(format!(
                "the object holds checkpoint {} with the opening of {}",
                cert.height, opening.height
            )));
        }
        let genesis = CheckpointCertificate::genesis();
        self.verify_in_epoch(h, |set| cert.verify(set, &genesis))
            .map_err(|e| bad(format!("certificate: {e}")))?;
        if opening.root() != cert.state_root {
            return Err(bad(
                "the opening does not hash to the certified state root".into()
            ));
        }
        Ok(())
    }
}

/// The archived compact block of `h` (`bytes`, `None` when not archived), its bytes and its
/// decoding, in sequence.
fn archived_compact(
    h: u64,
    bytes: Option<Vec<u8>>,
) -> Result<(Vec<u8>, CompactBlock), ClientError> {
    let bad = |what: String| ClientError::Archive(format!("height {h}: {what}"));
    let bytes = bytes.ok_or_else(|| bad("no compact block".into()))?;
    let block = CompactBlock::from_bytes(&bytes).map_err(|e| bad(format!("compact block: {e}")))?;
    if block.height != h {
        return Err(bad(format!(
            "the object holds compact block {}",
            block.height
        )));
    }
    Ok((bytes, block))
}
