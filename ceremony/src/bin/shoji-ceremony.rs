//! `shoji-ceremony`: run the multi-party setup of the transfer circuit's parameters.
//!
//! ```text
//! shoji-ceremony phase1 new --power 16 --out tau.0
//! shoji-ceremony phase1 contribute tau.0 --out tau.1      # prints the contribution's hash
//! shoji-ceremony phase1 verify tau.1
//! shoji-ceremony phase2 new --phase1 tau.1 --out transfer.0
//! shoji-ceremony phase2 contribute transfer.0 --out transfer.1
//! shoji-ceremony phase2 verify transfer.1 --phase1 tau.1
//! shoji-ceremony phase2 finalize transfer.1 --phase1 tau.1 --out params/
//! ```

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use shoji_ceremony::phase1::Phase1;
use shoji_ceremony::phase2::{CircuitShape, Phase2};
use shoji_ceremony::{hex, CeremonyError};
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "shoji-ceremony",
    version,
    about = "The multi-party setup of Shoji's transfer-circuit parameters: sound if one contributor keeps its secrets secret"
)]
struct Cli {
    #[command(subcommand)]
    phase: Phase,
}

#[derive(Subcommand)]
enum Phase {
    /// Powers of tau over BLS12-381, for any circuit up to the chosen size.
    #[command(subcommand)]
    Phase1(Phase1Cmd),
    /// The transfer circuit's keys, from a phase-1 transcript.
    #[command(subcommand)]
    Phase2(Phase2Cmd),
}

#[derive(clap::Args)]
struct Entropy {
    /// Extra entropy mixed with the operating system's (type anything; it is not stored).
    #[arg(long)]
    entropy: Option<String>,
    /// A file of extra entropy (dice rolls, a hardware generator's output).
    #[arg(long, conflicts_with = "entropy")]
    entropy_file: Option<PathBuf>,
}

impl Entropy {
    fn rng(&self) -> anyhow::Result<rand_chacha::ChaCha20Rng> {
        let extra = match (&self.entropy, &self.entropy_file) {
            (Some(s), _) => zeroize::Zeroizing::new(s.as_bytes().to_vec()),
            (None, Some(f)) => zeroize::Zeroizing::new(
                std::fs::read(f).with_context(|| format!("reading {}", f.display()))?,
            ),
            (None, None) => zeroize::Zeroizing::new(Vec::new()),
        };
        Ok(shoji_ceremony::contribution_rng(&extra))
    }
}

#[derive(Subcommand)]
enum Phase1Cmd {
    /// Start a phase-1 transcript of size 2^power (insecure until someone contributes).
    New {
        /// log₂ of the largest circuit domain it will serve (the transfer circuit needs 14).
        #[arg(long, default_value_t = 16)]
        power: u32,
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
    },
    /// Start a phase-1 transcript from a response file of Zcash's public Powers of Tau
    /// ceremony for BLS12-381, keeping the first 2^power powers (not yet tried on the
    /// published file: see the README).
    ImportZcash {
        /// The response file.
        response: PathBuf,
        /// The size of that ceremony, log₂ (21 for Zcash's public one).
        #[arg(long, default_value_t = 21)]
        source_power: u32,
        /// log₂ of the size to keep.
        #[arg(long, default_value_t = 16)]
        power: u32,
        /// Where to write the transcript.
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify a transcript, add your contribution, and print its hash: publish the hash.
    Contribute {
        /// The transcript received.
        input: PathBuf,
        /// Where to write the transcript with your contribution.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        entropy: Entropy,
    },
    /// Verify every contribution and the parameters; print each contribution's hash.
    Verify {
        /// The transcript.
        input: PathBuf,
    },
}

#[derive(Subcommand)]
enum Phase2Cmd {
    /// Start the transfer circuit's phase 2 from a verified phase-1 transcript.
    New {
        /// The phase-1 transcript.
        #[arg(long)]
        phase1: PathBuf,
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify a phase-2 transcript, add your contribution, and print its hash: publish it.
    Contribute {
        /// The transcript received.
        input: PathBuf,
        /// The phase-1 transcript it started from: with it, the whole transcript is verified
        /// before you contribute; without it, only the contributions are.
        #[arg(long)]
        phase1: Option<PathBuf>,
        /// Where to write the transcript with your contribution.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        entropy: Entropy,
    },
    /// Verify a phase-2 transcript against its phase 1 and the circuit; print each
    /// contribution's hash.
    Verify {
        /// The phase-2 transcript.
        input: PathBuf,
        /// The phase-1 transcript it started from.
        #[arg(long)]
        phase1: PathBuf,
    },
    /// Verify, then write the proving and verifying keys and print their hashes.
    Finalize {
        /// The phase-2 transcript.
        input: PathBuf,
        /// The phase-1 transcript it started from.
        #[arg(long)]
        phase1: PathBuf,
        /// The directory to write `transfer.pk` and `transfer.vk` into.
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            let invalid = e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<CeremonyError>(),
                    Some(
                        CeremonyError::BadContribution { .. }
                            | CeremonyError::Inconsistent(_)
                            | CeremonyError::WrongPhase1 { .. }
                            | CeremonyError::WrongCircuit { .. }
                    )
                )
            });
            // 3: the transcript does not verify; 1: anything else.
            ExitCode::from(if invalid { 3 } else { 1 })
        }
    }
}

/// Runs `f` under a spinner that shows `what` and the time spent.
fn step<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.set_message(what.to_string());
    pb.enable_steady_tick(Duration::from_millis(120));
    let out = f();
    pb.finish_and_clear();
    eprintln!("{what}: done in {:.1} s", pb.elapsed().as_secs_f64());
    out
}

/// Overwrites the generator the secrets came from (its state would regenerate them) in place.
fn forget_secrets(rng: &mut rand_chacha::ChaCha20Rng) {
    use rand_chacha::rand_core::SeedableRng;
    *rng = rand_chacha::ChaCha20Rng::from_seed([0; 32]);
}

fn open(path: &Path) -> anyhow::Result<BufReader<std::fs::File>> {
    Ok(BufReader::new(
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
    ))
}

/// Writes through a temporary file beside `path`, renamed into place when complete.
fn save(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<std::fs::File>) -> Result<(), CeremonyError>,
) -> anyhow::Result<()> {
    if path.exists() {
        bail!(
            "{} exists: choose another name (a transcript is never overwritten)",
            path.display()
        );
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut w = BufWriter::new(file);
    write(&mut w).with_context(|| format!("writing {}", tmp.display()))?;
    let file = w
        .into_inner()
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", tmp.display()))?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

fn read_phase1(path: &Path) -> anyhow::Result<Phase1> {
    step(&format!("reading {}", path.display()), || {
        Phase1::read(&mut open(path)?).with_context(|| format!("reading {}", path.display()))
    })
}

fn read_phase2(path: &Path) -> anyhow::Result<Phase2> {
    step(&format!("reading {}", path.display()), || {
        Phase2::read(&mut open(path)?).with_context(|| format!("reading {}", path.display()))
    })
}

fn verify_phase1(p: &Phase1, path: &Path) -> anyhow::Result<Vec<[u8; 32]>> {
    step(&format!("verifying {}", path.display()), || {
        p.verify()
            .with_context(|| format!("{} does not verify", path.display()))
    })
}

fn transfer_circuit() -> anyhow::Result<CircuitShape> {
    step("building the transfer circuit", || {
        Ok(CircuitShape::of(shoji_circuits::TransferCircuit::blank())?)
    })
}

fn verify_phase2(
    p: &Phase2,
    phase1: &Phase1,
    circuit: &CircuitShape,
    path: &Path,
) -> anyhow::Result<Vec<[u8; 32]>> {
    step(&format!("verifying {}", path.display()), || {
        p.verify(phase1, circuit)
            .with_context(|| format!("{} does not verify", path.display()))
    })
}

/// What a contributor is told: where its transcript is, and the hash to publish.
fn contributed(out: &Path, count: usize, hash: &[u8; 32]) {
    println!("Wrote {} with contribution {count}.", out.display());
    println!("Your contribution's hash (publish it): {}", hex(hash));
}

fn list(hashes: &[[u8; 32]]) {
    if hashes.is_empty() {
        println!("No contributions yet: these parameters are NOT secure.");
    }
    for (i, h) in hashes.iter().enumerate() {
        println!("contribution {}: {}", i + 1, hex(h));
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.phase {
        Phase::Phase1(Phase1Cmd::New { power, out }) => {
            let p = step(&format!("starting phase 1 of size 2^{power}"), || {
                Phase1::new(power)
            })?;
            save(&out, |w| p.write(w))?;
            println!("Wrote {} (2^{power}, no contributions yet).", out.display());
            println!("Transcript hash: {}", hex(&p.hash()));
        }
        Phase::Phase1(Phase1Cmd::ImportZcash {
            response,
            source_power,
            power,
            out,
        }) => {
            let p = step(&format!("reading {}", response.display()), || {
                Phase1::import_zcash(&mut open(&response)?, source_power, power)
                    .with_context(|| format!("reading {}", response.display()))
            })?;
            verify_phase1(&p, &out)?;
            save(&out, |w| p.write(w))?;
            println!(
                "Wrote {} (2^{power} of a 2^{source_power} Zcash response; contribute on top of it).",
                out.display()
            );
            println!("Transcript hash: {}", hex(&p.hash()));
        }
        Phase::Phase1(Phase1Cmd::Contribute {
            input,
            out,
            entropy,
        }) => {
            let mut rng = entropy.rng()?;
            let mut p = read_phase1(&input)?;
            verify_phase1(&p, &input)?;
            let hash = step("contributing (multiplying your secrets in)", || {
                p.contribute(&mut rng)
            });
            forget_secrets(&mut rng);
            save(&out, |w| p.write(w))?;
            contributed(&out, p.contributions.len(), &hash);
        }
        Phase::Phase1(Phase1Cmd::Verify { input }) => {
            let p = read_phase1(&input)?;
            let hashes = verify_phase1(&p, &input)?;
            println!("{}: phase 1 of size 2^{}, valid.", input.display(), p.power);
            list(&hashes);
        }
        Phase::Phase2(Phase2Cmd::New { phase1, out }) => {
            let p1 = read_phase1(&phase1)?;
            verify_phase1(&p1, &phase1)?;
            let circuit = transfer_circuit()?;
            let p = step(
                "computing the circuit's keys from phase 1 (a minute or two)",
                || Phase2::new(&p1, &circuit),
            )?;
            save(&out, |w| p.write(w))?;
            println!("Wrote {} (no contributions yet).", out.display());
            println!("Circuit hash: {}", hex(&circuit.hash()));
            println!("Transcript hash: {}", hex(&p.hash()));
        }
        Phase::Phase2(Phase2Cmd::Contribute {
            input,
            phase1,
            out,
            entropy,
        }) => {
            let mut rng = entropy.rng()?;
            let mut p = read_phase2(&input)?;
            match phase1 {
                Some(phase1) => {
                    let p1 = read_phase1(&phase1)?;
                    verify_phase1(&p1, &phase1)?;
                    let circuit = transfer_circuit()?;
                    verify_phase2(&p, &p1, &circuit, &input)?;
                }
                None => {
                    step(
                        &format!("verifying the contributions of {}", input.display()),
                        || {
                            p.verify_contributions()
                                .with_context(|| format!("{} does not verify", input.display()))
                        },
                    )?;
                    eprintln!("note: the keys were not checked against phase 1 (no --phase1); `phase2 verify` does that");
                }
            }
            let hash = step("contributing (multiplying your δ in)", || {
                p.contribute(&mut rng)
            });
            forget_secrets(&mut rng);
            save(&out, |w| p.write(w))?;
            contributed(&out, p.contributions.len(), &hash);
        }
        Phase::Phase2(Phase2Cmd::Verify { input, phase1 }) => {
            let p1 = read_phase1(&phase1)?;
            verify_phase1(&p1, &phase1)?;
            let circuit = transfer_circuit()?;
            let p = read_phase2(&input)?;
            let hashes = verify_phase2(&p, &p1, &circuit, &input)?;
            println!(
                "{}: the transfer circuit's phase 2, valid.",
                input.display()
            );
            list(&hashes);
        }
        Phase::Phase2(Phase2Cmd::Finalize { input, phase1, out }) => {
            let p1 = read_phase1(&phase1)?;
            verify_phase1(&p1, &phase1)?;
            let circuit = transfer_circuit()?;
            let p = read_phase2(&input)?;
            let hashes = verify_phase2(&p, &p1, &circuit, &input)?;
            if hashes.is_empty() {
                bail!(
                    "{} has no contributions: its keys are not secure",
                    input.display()
                );
            }
            let (pk, vk) = p.keys();
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let vk_bytes = shoji_params::verifying_key_to_bytes(&vk);
            let mut pk_bytes = Vec::new();
            ark_serialize::CanonicalSerialize::serialize_uncompressed(&pk, &mut pk_bytes)
                .context("encoding the proving key")?;
            let (vk_path, pk_path) = (out.join("transfer.vk"), out.join("transfer.pk"));
            save(&vk_path, |w| Ok(w.write_all(&vk_bytes)?))?;
            save(&pk_path, |w| Ok(w.write_all(&pk_bytes)?))?;
            list(&hashes);
            println!("Wrote {} and {}.", vk_path.display(), pk_path.display());
            println!(
                "Verifying key hash (blake3): {}",
                blake3::hash(&vk_bytes).to_hex()
            );
            println!(
                "Proving key hash (blake3):   {}",
                blake3::hash(&pk_bytes).to_hex()
            );
        }
    }
    Ok(())
}
