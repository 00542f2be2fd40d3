//! A small HTTP/1.1 application and a keep-alive client, both on raw sockets, for the
//! latency-injector tests. The application records when each request arrived and from
//! which peer, so a test can tell which leg carried a delay (request: late arrival at
//! the application; response: late arrival at the client after an early one here) and
//! what address the application saw.
//!
//! Routes: `/stream` answers in two chunks 300 ms apart; `/wait/MS` answers after MS
//! milliseconds; anything else answers `ok METHOD PATH BODY-LEN` at once.
// Test support: a failed step is the test failing, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// One request as the application saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub peer: SocketAddr,
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub body: usize,
}

#[derive(Default)]
struct Log {
    seen: Mutex<Vec<Seen>>,
    accepted: AtomicU64,
    stop: AtomicBool,
}

pub struct HttpApp {
    pub addr: SocketAddr,
    log: Arc<Log>,
    thread: Option<JoinHandle<()>>,
}

impl HttpApp {
    pub fn start() -> HttpApp {
        HttpApp::serve(TcpListener::bind("127.0.0.1:0").expect("bind the app"))
    }

    pub fn serve(listener: TcpListener) -> HttpApp {
        let addr = listener.local_addr().expect("app address");
        let log = Arc::new(Log::default());
        let shared = Arc::clone(&log);
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let thread = thread::spawn(move || {
            while !shared.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, peer)) => {
                        shared.accepted.fetch_add(1, Ordering::Relaxed);
                        let log = Arc::clone(&shared);
                        thread::spawn(move || connection(stream, peer, &log));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        HttpApp {
            addr,
            log,
            thread: Some(thread),
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.log.seen.lock().unwrap().clone()
    }

    /// Connections accepted so far (the proxy dials one per client connection).
    pub fn accepted(&self) -> u64 {
        self.log.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for HttpApp {
    fn drop(&mut self) {
        self.log.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one head (lines up to the empty one); `None` at the end of the stream.
pub fn read_head(reader: &mut impl BufRead) -> Option<Vec<String>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) if line == "\r\n" || line == "\n" => return Some(lines),
            Ok(_) => lines.push(line.trim_end().to_owned()),
        }
    }
}

pub fn header<'a>(head: &'a [String], name: &str) -> Option<&'a str> {
    head.iter()
        .filter_map(|h| h.split_once(':'))
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// Reads a body framed by Content-Length or chunked coding.
pub fn read_body(reader: &mut impl BufRead, head: &[String]) -> Option<Vec<u8>> {
    if header(head, "transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().ends_with("chunked"))
    {
        let mut body = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).ok()?;
            let size = usize::from_str_radix(line.trim().split(';').next()?, 16).ok()?;
            if size == 0 {
                read_head(reader)?; // trailers
                return Some(body);
            }
            let mut chunk = vec![0u8; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            body.extend_from_slice(&chunk[..size]);
        }
    }
    let mut body = vec![
        0u8;
        header(head, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    ];
    reader.read_exact(&mut body).ok()?;
    Some(body)
}

fn connection(stream: TcpStream, peer: SocketAddr, log: &Log) {
    let _ = stream.set_nonblocking(false);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some(head) = read_head(&mut reader) {
        let at = Instant::now();
        let Some(body) = read_body(&mut reader, &head) else {
            return;
        };
        let line = head.first().cloned().unwrap_or_default();
        let mut parts = line.split(' ');
        let (method, path) = (
            parts.next().unwrap_or("").to_owned(),
            parts.next().unwrap_or("").to_owned(),
        );
        log.seen.lock().unwrap().push(Seen {
            peer,
            at,
            method: method.clone(),
            path: path.clone(),
            body: body.len(),
        });
        if answer(&mut writer, &method, &path, body.len()).is_err() {
            return;
        }
    }
}

fn answer(writer: &mut TcpStream, method: &str, path: &str, body: usize) -> std::io::Result<()> {
    if path == "/stream" {
        writer
            .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n6\r\nfirst\n\r\n")?;
        thread::sleep(Duration::from_millis(300));
        return writer.write_all(b"7\r\nsecond\n\r\n0\r\n\r\n");
    }
    if let Some(ms) = path.strip_prefix("/wait/").and_then(|ms| ms.parse().ok()) {
        thread::sleep(Duration::from_millis(ms));
    }
    let text = format!("ok {method} {path} {body}\n");
    let reply = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: text/plain\r\n\r\n{text}",
        text.len()
    );
    writer.write_all(reply.as_bytes())
}

/// A response as a client saw it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: String,
    pub body: String,
    /// When the request's last byte was written.
    pub sent: Instant,
    /// When the response's last byte arrived.
    pub done: Instant,
}

impl Reply {
    pub fn elapsed(&self) -> Duration {
        self.done - self.sent
    }
}

/// A keep-alive HTTP/1.1 client on one connection.
pub struct HttpClient {
    pub reader: BufReader<TcpStream>,
    pub writer: TcpStream,
}

impl HttpClient {
    pub fn connect(addr: SocketAddr) -> HttpClient {
        let writer = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        writer
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        writer.set_nodelay(true).unwrap();
        let reader = BufReader::new(writer.try_clone().unwrap());
        HttpClient { reader, writer }
    }

    pub fn request(&mut self, method: &str, path: &str, body: &str) -> Reply {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nhost: app\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        self.writer
            .write_all(request.as_bytes())
            .unwrap_or_else(|e| panic!("send {method} {path}: {e}"));
        let sent = Instant::now();
        let head = read_head(&mut self.reader)
            .unwrap_or_else(|| panic!("{method} {path}: connection closed"));
        let reply = read_body(&mut self.reader, &head)
            .unwrap_or_else(|| panic!("{method} {path}: body cut"));
        Reply {
            status: head.first().cloned().unwrap_or_default(),
            body: String::from_utf8_lossy(&reply).into_owned(),
            sent,
            done: Instant::now(),
        }
    }
}
