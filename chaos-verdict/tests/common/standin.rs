//! A stand-in HTTP service on loopback for the k6 and runbook tests: it records every
//! request and answers according to a mode that a test, or a toy fault through a mode
//! file, switches: `ok`, `slow:MS` (answer after MS ms), `fail:PERCENT` (that share of
//! requests get 503). With `latch`, the first degraded mode it sees sticks even after the
//! file says `ok` again: a service that does not recover.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    Ok,
    Slow(u64),
    Fail(u64),
}

impl Mode {
    pub fn parse(text: &str) -> Mode {
        let text = text.trim();
        if let Some(ms) = text.strip_prefix("slow:") {
            return Mode::Slow(ms.parse().unwrap_or(0));
        }
        if let Some(p) = text.strip_prefix("fail:") {
            return Mode::Fail(p.parse().unwrap_or(100));
        }
        Mode::Ok
    }
}

#[derive(Debug, Default)]
struct Shared {
    requests: Mutex<Vec<Recorded>>,
    mode: Mutex<Option<Mode>>,
    latched: Mutex<Option<Mode>>,
    counter: AtomicU64,
    stop: AtomicBool,
}

#[derive(Debug)]
pub struct StandIn {
    pub url: String,
    pub mode_file: Option<PathBuf>,
    latch: bool,
    shared: Arc<Shared>,
}

impl StandIn {
    /// Starts on 127.0.0.1 (a free port). `mode_file`: read at each request when set.
    pub fn start(mode_file: Option<PathBuf>, latch: bool) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared::default());
        let s = StandIn {
            url,
            mode_file,
            latch,
            shared,
        };
        let ctx = s.context();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                if ctx.shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                let ctx = ctx.clone();
                std::thread::spawn(move || ctx.serve(conn));
            }
        });
        s
    }

    fn context(&self) -> Ctx {
        Ctx {
            shared: Arc::clone(&self.shared),
            mode_file: self.mode_file.clone(),
            latch: self.latch,
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = Some(mode);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

#[derive(Debug, Clone)]
struct Ctx {
    shared: Arc<Shared>,
    mode_file: Option<PathBuf>,
    latch: bool,
}

impl Ctx {
    fn mode(&self) -> Mode {
        let mut mode = *self.shared.mode.lock().unwrap();
        if let Some(file) = &self.mode_file {
            if let Ok(text) = std::fs::read_to_string(file) {
                mode = Some(Mode::parse(&text));
            }
        }
        let mode = mode.unwrap_or(Mode::Ok);
        if self.latch {
            let mut latched = self.shared.latched.lock().unwrap();
            if let Some(l) = *latched {
                return l;
            }
            if mode != Mode::Ok {
                *latched = Some(mode);
            }
        }
        mode
    }

    fn serve(&self, conn: TcpStream) {
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut writer = conn;
        loop {
            let Some(req) = read_request(&mut reader) else {
                return;
            };
            if self.shared.stop.load(Ordering::SeqCst) {
                return;
            }
            let (status, body) = self.answer(&req);
            self.shared.requests.lock().unwrap().push(req);
            let reason = if status == 200 {
                "OK"
            } else {
                "Service Unavailable"
            };
            let head = format!(
                "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            if writer
                .write_all(head.as_bytes())
                .and_then(|()| writer.write_all(body.as_bytes()))
                .is_err()
            {
                return;
            }
        }
    }

    fn answer(&self, req: &Recorded) -> (u16, String) {
        let n = self.shared.counter.fetch_add(1, Ordering::SeqCst);
        match self.mode() {
            Mode::Slow(ms) => std::thread::sleep(Duration::from_millis(ms)),
            Mode::Fail(p) if n % 100 < p => return (503, r#"{"error":"stand-in failing"}"#.into()),
            _ => {}
        }
        let body = match req.path.as_str() {
            "/v1/auth/login" => {
                r#"{"accessToken":"standin-token","tokenType":"Bearer","expiresIn":3600}"#
            }
            _ => r#"{"ok":true}"#,
        };
        (200, body.into())
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Recorded> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Recorded {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
