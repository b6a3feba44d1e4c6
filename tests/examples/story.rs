//! Starts four validators (PBFT over QUIC on loopback, redb storage) and runs the story on them:
//! mint, two payments, the auditor's report and a verified disclosure.
fn main() -> anyhow::Result<()> {
    let outcome = shoji_tests::run_story(
        Box::new(|config, verifier| {
            Ok(Box::new(shoji_tests::devnet::Devnet::start(
                config, verifier,
            )?))
        }),
        &mut |line| println!("{line}"),
    )?;
    anyhow::ensure!(
        outcome.disclosure_verified && outcome.tampered_disclosure_rejected,
        "disclosure checks failed"
    );
    Ok(())
}
