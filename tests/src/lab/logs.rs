//! Container logs as the CRI writes them: one file per container instance
//! (`<pod dir>/logs/<container>/<restartCount>.log`), one record per line:
//! `<RFC 3339 nanoseconds> <stdout|stderr> F <text>`. `--previous` reads the file of the
//! instance before the current one; `--since` and `--timestamps` use the record times.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use k8s_openapi::chrono::{DateTime, SecondsFormat, Utc};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::clock;

/// Longest line kept as one record; longer lines are split (the CRI's 16 KiB).
const MAX_LINE: usize = 16 * 1024;

pub fn log_path(pod_dir: &Path, container: &str, instance: u32) -> PathBuf {
    pod_dir
        .join("logs")
        .join(container)
        .join(format!("{instance}.log"))
}

/// The open log file of one container instance, shared by its stdout and stderr pumps.
#[derive(Clone)]
pub struct LogSink {
    file: Arc<Mutex<File>>,
}

impl LogSink {
    pub fn create(path: &Path) -> Result<LogSink> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("mkdir {}", dir.display()))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(LogSink {
            file: Arc::new(Mutex::new(file)),
        })
    }

    /// Appends one record now.
    pub fn record(&self, stream: &str, text: &[u8]) {
        let line = format_record(clock::now(), stream, text);
        if let Ok(mut file) = self.file.lock() {
            // A full disk loses log lines, never the container.
            let _ = file.write_all(line.as_bytes());
        }
    }

    /// Copies `pipe` line by line into the log until it closes.
    pub async fn pump(self, stream: &'static str, pipe: impl AsyncRead + Unpin) {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match read_record(&mut reader, &mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => self.record(stream, &buf),
            }
        }
    }
}

async fn read_record(
    reader: &mut BufReader<impl AsyncRead + Unpin>,
    buf: &mut Vec<u8>,
) -> std::io::Result<usize> {
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(buf.len());
        }
        let room = MAX_LINE - buf.len();
        let window = &available[..available.len().min(room)];
        if let Some(i) = window.iter().position(|b| *b == b'\n') {
            buf.extend_from_slice(&window[..i]);
            reader.consume(i + 1);
            return Ok(buf.len() + 1);
        }
        let n = window.len();
        buf.extend_from_slice(window);
        reader.consume(n);
        if buf.len() >= MAX_LINE {
            return Ok(buf.len());
        }
    }
}

pub fn format_record(at: DateTime<Utc>, stream: &str, text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    let text = text.strip_suffix('\r').unwrap_or(&text);
    format!(
        "{} {stream} F {text}\n",
        at.to_rfc3339_opts(SecondsFormat::Nanos, true)
    )
}

/// One parsed record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub at: DateTime<Utc>,
    pub stream: String,
    pub text: String,
}

pub fn parse_record(line: &str) -> Option<Record> {
    let mut parts = line.splitn(4, ' ');
    let at = DateTime::parse_from_rfc3339(parts.next()?)
        .ok()?
        .with_timezone(&Utc);
    let stream = parts.next()?.to_owned();
    let _tag = parts.next()?;
    let text = parts.next().unwrap_or_default().to_owned();
    Some(Record { at, stream, text })
}

/// What `kubectl logs` asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogQuery {
    pub since: Option<DateTime<Utc>>,
    pub tail_lines: Option<usize>,
    pub timestamps: bool,
    pub limit_bytes: Option<usize>,
}

/// Renders the records of `text` (a log file's content) for `query`.
pub fn render(text: &str, query: &LogQuery) -> String {
    let records: Vec<Record> = text
        .lines()
        .filter_map(parse_record)
        .filter(|r| query.since.is_none_or(|s| r.at >= s))
        .collect();
    let skip = query
        .tail_lines
        .map_or(0, |n| records.len().saturating_sub(n));
    let mut out = String::new();
    for r in &records[skip..] {
        out.push_str(&render_one(r, query.timestamps));
    }
    if let Some(limit) = query.limit_bytes {
        let mut cut = limit.min(out.len());
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

pub fn render_one(r: &Record, timestamps: bool) -> String {
    if timestamps {
        format!(
            "{} {}\n",
            r.at.to_rfc3339_opts(SecondsFormat::Nanos, true),
            r.text
        )
    } else {
        format!("{}\n", r.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn records_round_trip() {
        let line = format_record(at("2025-01-02T03:04:05.5Z"), "stderr", b"hello world\r");
        assert_eq!(
            line,
            "2025-01-02T03:04:05.500000000Z stderr F hello world\n"
        );
        let r = parse_record(line.trim_end()).unwrap();
        assert_eq!(r.stream, "stderr");
        assert_eq!(r.text, "hello world");
    }

    #[test]
    fn since_tail_and_timestamps() {
        let text = [
            format_record(at("2025-01-01T00:00:01Z"), "stdout", b"one"),
            format_record(at("2025-01-01T00:00:02Z"), "stdout", b"two"),
            format_record(at("2025-01-01T00:00:03Z"), "stderr", b"three"),
        ]
        .concat();
        let q = LogQuery {
            since: Some(at("2025-01-01T00:00:02Z")),
            ..Default::default()
        };
        assert_eq!(render(&text, &q), "two\nthree\n");
        let q = LogQuery {
            tail_lines: Some(1),
            timestamps: true,
            ..Default::default()
        };
        assert_eq!(render(&text, &q), "2025-01-01T00:00:03.000000000Z three\n");
        let q = LogQuery {
            limit_bytes: Some(5),
            ..Default::default()
        };
        assert_eq!(render(&text, &q), "one\nt");
    }

    #[tokio::test]
    async fn pump_splits_lines_and_keeps_a_last_line_without_newline() {
        let dir = std::env::temp_dir().join(format!("lab-logs-{}", std::process::id()));
        let path = dir.join("x.log");
        let sink = LogSink::create(&path).unwrap();
        sink.clone().pump("stdout", &b"a\nb\nlast"[..]).await;
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(render(&text, &LogQuery::default()), "a\nb\nlast\n");
    }
}
