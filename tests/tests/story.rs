//! The story end to end: balances, the auditor's report, disclosure, a non-designated auditor.

#[test]
fn mint_pay_pay_audit_disclose_on_the_ledger() {
    check(
        shoji_tests::run_story(
            Box::new(|config, verifier| {
                Ok(Box::new(shoji_tests::LocalChain::new(config, verifier)))
            }),
            &mut |_| {},
        )
        .expect("story runs"),
    );
}

#[test]
fn mint_pay_pay_audit_disclose_on_four_validators() {
    check(
        shoji_tests::run_story(
            Box::new(|config, verifier| {
                Ok(Box::new(shoji_tests::devnet::Devnet::start(
                    config, verifier,
                )?))
            }),
            &mut |_| {},
        )
        .expect("story runs"),
    );
}

fn check(out: shoji_tests::StoryOutcome) {
    assert_eq!(out.balances, [750, 150, 100]);
    let payments: Vec<(&str, &str, u64)> = out
        .payments
        .iter()
        .map(|p| (p.from.as_str(), p.to.as_str(), p.amount.0))
        .collect();
    assert_eq!(payments, vec![("alice", "bob", 250), ("bob", "carol", 100)]);
    let issued: Vec<(&str, u64)> = out
        .issuances
        .iter()
        .map(|p| (p.to.as_str(), p.amount.0))
        .collect();
    assert_eq!(issued, vec![("alice", 1000)]);
    assert!(out.disclosure_verified);
    assert!(out.tampered_disclosure_rejected);
    assert_eq!(
        out.other_auditor_entries, 0,
        "a key that is not designated reads nothing"
    );
}
