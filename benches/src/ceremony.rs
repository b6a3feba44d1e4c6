//! `shoji-bench ceremony`: the cost of a contribution and of its verification, in each phase.

use shoji_ceremony::phase1::Phase1;
use shoji_ceremony::phase2::{CircuitShape, Phase2};
use std::time::Instant;

/// What to measure.
pub struct CeremonyOptions {
    /// Phase 1's size, `log₂ N`.
    pub power: u32,
    /// Phase-2 contributions to make and verify.
    pub contributions: usize,
}

fn secs(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

fn file_size(write: impl FnOnce(&mut Vec<u8>) -> anyhow::Result<()>) -> anyhow::Result<usize> {
    let mut bytes = Vec::new();
    write(&mut bytes)?;
    Ok(bytes.len())
}

/// Runs phase 1 at `2^power` (one contribution, verified), then phase 2 of the transfer
/// circuit from a phase 1 of the circuit's own size, with `contributions` contributions;
/// returns one JSON object of seconds and bytes.
pub fn run(opts: &CeremonyOptions) -> anyhow::Result<serde_json::Value> {
    let mut rng = shoji_ceremony::contribution_rng(b"shoji-bench");
    let t = Instant::now();
    let mut p1 = Phase1::new(opts.power)?;
    let phase1_new = secs(t);
    let t = Instant::now();
    p1.contribute(&mut rng);
    let phase1_contribute = secs(t);
    let t = Instant::now();
    p1.verify()?;
    let phase1_verify = secs(t);
    let phase1_bytes = file_size(|b| Ok(p1.write(b)?))?;
    drop(p1);

    let t = Instant::now();
    let shape = CircuitShape::of(shoji_circuits::TransferCircuit::blank())?;
    let synthesize = secs(t);
    let power = shape.domain_size().trailing_zeros();
    let mut small = Phase1::new(power)?;
    small.contribute(&mut rng);
    let t = Instant::now();
    let mut p2 = Phase2::new(&small, &shape)?;
    let phase2_new = secs(t);
    let mut contribute = Vec::new();
    for _ in 0..opts.contributions.max(1) {
        let t = Instant::now();
        p2.contribute(&mut rng);
        contribute.push(secs(t));
    }
    let t = Instant::now();
    p2.verify(&small, &shape)?;
    let phase2_verify = secs(t);
    let phase2_bytes = file_size(|b| Ok(p2.write(b)?))?;
    Ok(serde_json::json!({
        "bench": "ceremony",
        "threads": rayon::current_num_threads(),
        "phase1_power": opts.power,
        "phase1_new_s": phase1_new,
        "phase1_contribute_s": phase1_contribute,
        "phase1_verify_s": phase1_verify,
        "phase1_file_bytes": phase1_bytes,
        "circuit_domain": shape.domain_size(),
        "circuit_synthesis_s": synthesize,
        "phase2_new_s": phase2_new,
        "phase2_contribute_s": crate::median(&mut contribute),
        "phase2_contributions": opts.contributions.max(1),
        "phase2_verify_s": phase2_verify,
        "phase2_file_bytes": phase2_bytes,
    }))
}
