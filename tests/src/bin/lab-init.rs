//! `lab-init LAUNCH.json`: starts one lab container process (see `chaos_tests::lab::init`).
//! Run by the lab's kubelet, as root; not meant to be run by hand.

use std::path::Path;
use std::process::ExitCode;

use chaos_tests::lab::init;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.as_slice() {
        [_, stage, json] if stage == init::STAGE2 => init::container(json),
        [_, launch] if !launch.starts_with('-') => match init::shim(Path::new(launch)) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("lab-init: {e:#}");
                ExitCode::from(init::EXIT_CANNOT_EXEC)
            }
        },
        _ => {
            eprintln!("usage: lab-init LAUNCH.json (started by the lab's kubelet)");
            ExitCode::from(2)
        }
    }
}
