//! Progress for the observe phase: a bar on a terminal, a log line every 10 s otherwise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::info;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    Bar,
    Log,
    Off,
}

impl ProgressMode {
    /// A bar when stderr is a terminal and logs are for people; log lines otherwise.
    pub fn detect(json_logs: bool) -> ProgressMode {
        if !json_logs && std::io::stderr().is_terminal() {
            ProgressMode::Bar
        } else {
            ProgressMode::Log
        }
    }
}

/// Stops reporting progress when dropped.
pub struct ProgressGuard {
    task: Option<tokio::task::JoinHandle<()>>,
    bar: Option<ProgressBar>,
}

impl Drop for ProgressGuard {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

pub fn start(mode: ProgressMode, tool: &'static str, duration: Duration) -> ProgressGuard {
    let started = Instant::now();
    match mode {
        ProgressMode::Off => ProgressGuard {
            task: None,
            bar: None,
        },
        ProgressMode::Bar => {
            let bar = ProgressBar::with_draw_target(
                Some(duration.as_millis() as u64),
                ProgressDrawTarget::stderr_with_hz(4),
            );
            if let Ok(style) =
                ProgressStyle::with_template("{msg} [{bar:40}] {elapsed} / {duration}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(tool);
            let shown = bar.clone();
            let task = tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(250));
                loop {
                    tick.tick().await;
                    shown.set_position(started.elapsed().as_millis() as u64);
                }
            });
            ProgressGuard {
                task: Some(task),
                bar: Some(bar),
            }
        }
        ProgressMode::Log => {
            let task = tokio::spawn(async move {
                let period = Duration::from_secs(10);
                let mut tick =
                    tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                loop {
                    tick.tick().await;
                    info!(
                        "{tool}: {}s of {}s elapsed",
                        started.elapsed().as_secs(),
                        duration.as_secs()
                    );
                }
            });
            ProgressGuard {
                task: Some(task),
                bar: None,
            }
        }
    }
}
