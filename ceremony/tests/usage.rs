//! `shoji-ceremony` as a user first meets it: help, bad usage, a missing file, a file that is
//! not a transcript.

use std::process::Command;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_shoji-ceremony"))
        .args(args)
        .output()
        .expect("run shoji-ceremony")
}

#[test]
fn help_bad_usage_and_files_that_are_not_transcripts() {
    let help = run(&["--help"]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("phase1") && text.contains("phase2"), "{text}");

    let bad = run(&["phase1", "contribute"]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "missing arguments are bad usage"
    );

    let tmp = tempfile::tempdir().expect("tempdir");
    let missing = tmp.path().join("tau.0");
    let out = run(&["phase1", "verify", missing.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tau.0"));

    let junk = tmp.path().join("junk");
    std::fs::write(&junk, b"not a transcript").expect("write");
    let out = run(&[
        "phase2",
        "contribute",
        junk.to_str().expect("utf-8"),
        "--out",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a phase-2 transcript"), "{err}");
}
