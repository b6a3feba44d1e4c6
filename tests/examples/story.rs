//! Runs the end-to-end story and prints each step.
fn main() -> anyhow::Result<()> {
    let outcome = shoji_tests::run_story(&mut |line| println!("{line}"))?;
    anyhow::ensure!(
        outcome.disclosure_verified && outcome.tampered_disclosure_rejected,
        "disclosure checks failed"
    );
    Ok(())
}
