//! `lab-stripe`: a Stripe-like webhook sender for the lab (see
//! `chaos_tests::lab::backend::sender`). Prints one JSON document per delivery on stdout.

use std::process::ExitCode;
use std::time::Duration;

use chaos_tests::lab::backend::sender::{self, Sender};
use clap::{Parser, Subcommand};
use serde_json::Value;

/// Delivers signed Stripe-like webhook events and retries as Stripe does (shortened clock).
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// The webhook endpoint (http://HOST:PORT/v1/webhooks/stripe).
    #[arg(long)]
    url: String,
    /// Endpoint secret for the Stripe-Signature header (STRIPE_WEBHOOK_SECRET of the service).
    #[arg(long, default_value = "whsec_lab")]
    secret: String,
    /// Per-attempt timeout, milliseconds.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// Attempts per event (Stripe: many, over three days).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=50))]
    attempts: u32,
    /// First retry delay, milliseconds (doubles each time).
    #[arg(long, default_value_t = 1000)]
    retry_base_ms: u64,
    /// Longest retry delay, milliseconds.
    #[arg(long, default_value_t = 30_000)]
    retry_max_ms: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One event, as `stripe trigger EVENT` sends it.
    Trigger {
        /// payment_intent.succeeded or payment_intent.payment_failed.
        event: String,
        /// The payment intent the event is about (default: a new one).
        #[arg(long)]
        payment_intent: Option<String>,
        /// The event id (default: a new one; repeat one to test idempotency).
        #[arg(long)]
        event_id: Option<String>,
    },
    /// payment_intent.succeeded for every PENDING_PAYMENT order of the service.
    Settle {
        /// The orders inspection endpoint (http://HOST:PORT/v1/payments/orders).
        #[arg(long)]
        orders_url: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = sender::split_url(&cli.url) {
        eprintln!("lab-stripe: --url: {e:#}");
        return ExitCode::from(2);
    }
    if let Command::Trigger { event, .. } = &cli.command {
        if !matches!(
            event.as_str(),
            "payment_intent.succeeded" | "payment_intent.payment_failed"
        ) {
            eprintln!(
                "lab-stripe: EVENT must be payment_intent.succeeded or payment_intent.payment_failed, not {event:?}"
            );
            return ExitCode::from(2);
        }
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lab-stripe: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("lab-stripe: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}_lab{nanos:x}{}", std::process::id())
}

/// Delivers every event; true when all were delivered.
async fn run(cli: Cli) -> anyhow::Result<bool> {
    let s = Sender {
        url: cli.url.clone(),
        secret: cli.secret.clone(),
        timeout: Duration::from_millis(cli.timeout_ms),
        attempts: cli.attempts,
        retry_base: Duration::from_millis(cli.retry_base_ms),
        retry_max: Duration::from_millis(cli.retry_max_ms),
    };
    let events: Vec<Value> = match cli.command {
        Command::Trigger {
            event,
            payment_intent,
            event_id,
        } => {
            let intent = payment_intent.unwrap_or_else(|| unique("pi"));
            vec![sender::event(
                &event_id.unwrap_or_else(|| unique("evt")),
                &event,
                &intent,
            )]
        }
        Command::Settle { orders_url } => pending_intents(&orders_url)
            .await?
            .iter()
            .enumerate()
            .map(|(i, pi)| {
                sender::event(
                    &format!("{}_{i}", unique("evt")),
                    "payment_intent.succeeded",
                    pi,
                )
            })
            .collect(),
    };
    let deliveries = futures_util::future::join_all(events.iter().map(|e| s.deliver(e))).await;
    let mut all = true;
    for d in deliveries {
        let d = d?;
        all &= d.delivered;
        println!("{}", serde_json::to_string(&d)?);
    }
    Ok(all)
}

async fn pending_intents(orders_url: &str) -> anyhow::Result<Vec<String>> {
    let (authority, path) = sender::split_url(orders_url)?;
    let path = format!("{path}?status=PENDING_PAYMENT");
    let req =
        chaos_tests::lab::backend::http::request(hyper::Method::GET, &authority, &path, None)?;
    let up = chaos_tests::lab::backend::http::call(&authority, req, Duration::from_secs(30))
        .await
        .map_err(|e| anyhow::anyhow!("cannot list the pending orders at {orders_url}: {e}"))?;
    let body = up.json().unwrap_or_default();
    Ok(body["data"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|o| o["paymentIntentId"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}
