//! The options of a benchmark network whose validators are in different cities, on one machine
//! (`shoji-node devnet`, `shoji-bench cluster`): one definition, so that the two programs take
//! the same flags and the benchmark passes them on unchanged.

use shoji_net::relay::PathConditions;
use std::time::Duration;

/// Every validator behind a delaying UDP relay ([`shoji_net::relay`]).
#[derive(clap::Args, Clone, Copy, Debug, Default, PartialEq)]
pub struct DistanceArgs {
    /// Put every validator behind a delaying UDP relay with this round-trip time (milliseconds;
    /// half each way): validators in different cities, on one machine.
    #[arg(long)]
    pub rtt_ms: Option<u64>,
    /// The relays' jitter: each datagram's delay varies by up to this many milliseconds.
    #[arg(long, default_value_t = 0, requires = "rtt_ms")]
    pub jitter_ms: u64,
    /// The relays' loss: the probability of dropping a datagram (0 to 1).
    #[arg(long, default_value_t = 0.0, requires = "rtt_ms", value_parser = probability)]
    pub loss: f64,
    /// Clients reach their validator directly, as a bank's systems reach the validator in their
    /// own data center; only the validators' traffic crosses the relays. Without it, clients
    /// are half a round trip from their validator too.
    #[arg(long, requires = "rtt_ms")]
    pub clients_local: bool,
}

impl DistanceArgs {
    /// The relays' conditions, or `None` when the validators are not behind relays.
    pub fn conditions(&self) -> Option<PathConditions> {
        self.rtt_ms.map(|rtt| {
            PathConditions::from_rtt(
                Duration::from_millis(rtt),
                Duration::from_millis(self.jitter_ms),
                self.loss,
            )
        })
    }

    /// The same options as command-line arguments (none without relays), to pass on to another
    /// program that takes them.
    pub fn to_args(&self) -> Vec<String> {
        let Some(rtt) = self.rtt_ms else {
            return Vec::new();
        };
        let mut args = vec![
            "--rtt-ms".to_string(),
            rtt.to_string(),
            "--jitter-ms".into(),
            self.jitter_ms.to_string(),
            "--loss".into(),
            self.loss.to_string(),
        ];
        if self.clients_local {
            args.push("--clients-local".into());
        }
        args
    }
}

/// A probability, from 0 to 1.
fn probability(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        Ok(_) => Err("a probability, from 0 to 1".into()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Program {
        #[command(flatten)]
        distance: DistanceArgs,
    }

    fn parse(args: &[&str]) -> Result<DistanceArgs, clap::Error> {
        Program::try_parse_from(std::iter::once("program").chain(args.iter().copied()))
            .map(|p| p.distance)
    }

    #[test]
    fn the_arguments_passed_on_parse_back_to_the_same_options() {
        for args in [
            vec![],
            vec!["--rtt-ms", "40"],
            vec!["--rtt-ms", "80", "--jitter-ms", "5", "--loss", "0.01"],
            vec!["--rtt-ms", "20", "--clients-local"],
        ] {
            let options = parse(&args).expect("valid arguments");
            let passed = options.to_args();
            let again = parse(&passed.iter().map(String::as_str).collect::<Vec<_>>())
                .expect("the passed-on arguments parse");
            assert_eq!(again, options, "{args:?} passed on as {passed:?}");
        }
    }

    #[test]
    fn conditions_are_half_the_round_trip_each_way() {
        let options = parse(&["--rtt-ms", "40", "--jitter-ms", "5", "--loss", "0.25"])
            .expect("valid arguments");
        let path = options.conditions().expect("behind relays");
        assert_eq!(path.one_way, Duration::from_millis(20));
        assert_eq!(path.jitter, Duration::from_millis(5));
        assert_eq!(path.loss, 0.25);
        assert_eq!(parse(&[]).expect("no options").conditions(), None);
    }

    #[test]
    fn a_loss_outside_zero_to_one_and_relay_options_without_a_delay_are_refused() {
        for args in [
            vec!["--rtt-ms", "40", "--loss", "1.5"],
            vec!["--rtt-ms", "40", "--loss", "-0.1"],
            vec!["--rtt-ms", "40", "--loss", "some"],
            vec!["--jitter-ms", "5"],
            vec!["--clients-local"],
        ] {
            assert!(parse(&args).is_err(), "{args:?} accepted");
        }
    }
}
