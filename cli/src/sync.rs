//! The one sync loop every client runs: certified blocks from where the scanner stands to the
//! network's tip, batch by batch, with a progress bar on a terminal.

use crate::{warn_liars, Failure};
use indicatif::{ProgressBar, ProgressStyle};
use shoji_client::Client;
use shoji_ledger::CompactBlock;
use std::time::Instant;

/// Blocks asked of a validator at once.
pub const SYNC_BATCH: u32 = 500;

/// What a sync scanned.
#[derive(Clone, Copy, Debug, Default)]
pub struct Synced {
    /// Blocks scanned.
    pub blocks: u64,
    /// Transactions in them.
    pub transactions: u64,
    /// Seconds from the start.
    pub seconds: f64,
}

impl Synced {
    /// Transactions scanned per second so far.
    pub fn rate(&self) -> f64 {
        if self.seconds > 0.0 {
            self.transactions as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// Scans every certified block above `height` up to the validator's tip (see
/// [`Client::scan_certified`]: each batch is checked against a stable checkpoint, and a
/// validator caught lying is left for another and reported on standard error). Each batch goes
/// to `scan`, with the validator that served it and the totals so far; `scan` saves what it
/// must and returns the progress bar's message. The bar, labelled `label`, is drawn on standard
/// error unless `quiet`.
pub fn sync_certified(
    client: &Client,
    height: u64,
    label: &str,
    quiet: bool,
    mut scan: impl FnMut(&[CompactBlock], u16, &Synced) -> Result<String, Failure>,
) -> Result<Synced, Failure> {
    let start = Instant::now();
    let tip = client.tree_state()?.height;
    let bar = if quiet || tip <= height {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(tip - height);
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{label} {{bar:30}} {{pos}}/{{len}} blocks, {{msg}} [{{elapsed}}, eta {{eta}}]"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    };
    let mut done = Synced::default();
    let liars = client.scan_certified(
        height + 1,
        tip,
        SYNC_BATCH,
        |batch, node| -> Result<(), Failure> {
            done.blocks += batch.len() as u64;
            done.transactions += batch.iter().map(|b| b.txs.len() as u64).sum::<u64>();
            done.seconds = start.elapsed().as_secs_f64();
            let message = scan(batch, node, &done)?;
            if let Some(last) = batch.last() {
                bar.set_position(last.height.saturating_sub(height));
            }
            bar.set_message(message);
            Ok(())
        },
    )?;
    warn_liars(&liars);
    bar.finish_and_clear();
    done.seconds = start.elapsed().as_secs_f64();
    Ok(done)
}
