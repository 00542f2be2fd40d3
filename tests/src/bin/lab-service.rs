//! `lab-service`: the lab's stand-in for the Lomash Wood services; its role and settings
//! come from the environment (`LAB_ROLE`, see `chaos_tests::lab::backend::config`).

use std::process::ExitCode;

use chaos_tests::lab::backend::{self, config::Config};

fn main() -> ExitCode {
    if std::env::args()
        .nth(1)
        .is_some_and(|a| a == "--help" || a == "-h")
    {
        println!(
            "lab-service: set LAB_ROLE (api-gateway, product-service, …, postgres) and run; see docs/lab.md"
        );
        return ExitCode::SUCCESS;
    }
    let cfg = match Config::from_env(std::env::vars()) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("lab-service: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lab-service: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(backend::run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lab-service: {e:#}");
            ExitCode::FAILURE
        }
    }
}
