//! The differential harness of latency-injector: the same case (a scripted client and a
//! scripted server on raw sockets) is run directly and through the injector, and what
//! each side received (every byte, and how the connection ended: FIN, reset, still open)
//! is compared. Each side also notes when it sent or received what, so a case can check
//! that the only difference is the delay, on the leg that should carry it.
// Test support: a failed step is the test failing, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long a side waits for more before calling the connection still open.
pub const IDLE: Duration = Duration::from_secs(5);
/// Bytes kept verbatim per transcript (beyond this only the length and hash grow).
const KEEP: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The peer closed (FIN).
    Fin,
    /// The peer reset the connection (or connect was refused: `Refused`).
    Reset,
    Refused,
    /// Nothing came for [`IDLE`].
    Open,
    /// This side reset the connection itself.
    Aborted,
}

/// What one side received.
#[derive(Clone, PartialEq, Eq)]
pub struct Transcript {
    pub len: u64,
    /// FNV-1a of every byte.
    pub hash: u64,
    /// The first [`KEEP`] bytes.
    pub bytes: Vec<u8>,
    pub ending: Ending,
}

impl std::fmt::Debug for Transcript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = &self.bytes[..self.bytes.len().min(600)];
        write!(
            f,
            "{} bytes (hash {:016x}) then {:?}: {:?}",
            self.len,
            self.hash,
            self.ending,
            String::from_utf8_lossy(shown)
        )
    }
}

/// Records what is read through it.
struct Tee {
    stream: TcpStream,
    seen: Arc<Mutex<Transcript>>,
}

impl Read for Tee {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.stream.read(buf)?;
        let mut seen = self.seen.lock().unwrap();
        for &b in &buf[..n] {
            seen.hash = (seen.hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        seen.len += n as u64;
        let room = KEEP.saturating_sub(seen.bytes.len()).min(n);
        seen.bytes.extend_from_slice(&buf[..room]);
        Ok(n)
    }
}

/// One side of a connection: reads are recorded; `notes` says when what happened.
pub struct Peer {
    reader: BufReader<Tee>,
    pub stream: TcpStream,
    seen: Arc<Mutex<Transcript>>,
    pub notes: Vec<(String, Instant)>,
    /// The script asked to end with a reset instead of reading to the end.
    abort_at_end: bool,
    reset_on_write: bool,
}

fn empty() -> Transcript {
    Transcript {
        len: 0,
        hash: 0xcbf2_9ce4_8422_2325,
        bytes: Vec::new(),
        ending: Ending::Open,
    }
}

impl Peer {
    pub fn new(stream: TcpStream) -> Peer {
        stream.set_read_timeout(Some(IDLE)).unwrap();
        stream.set_nodelay(true).unwrap();
        let seen = Arc::new(Mutex::new(empty()));
        let tee = Tee {
            stream: stream.try_clone().unwrap(),
            seen: Arc::clone(&seen),
        };
        Peer {
            reader: BufReader::with_capacity(64 * 1024, tee),
            stream,
            seen,
            notes: Vec::new(),
            abort_at_end: false,
            reset_on_write: false,
        }
    }

    pub fn connect(addr: SocketAddr) -> Result<Peer, Ending> {
        match TcpStream::connect(addr) {
            Ok(stream) => Ok(Peer::new(stream)),
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => Err(Ending::Refused),
            Err(e) => panic!("connect {addr}: {e}"),
        }
    }

    pub fn note(&mut self, what: &str) {
        self.notes.push((what.to_owned(), Instant::now()));
    }

    pub fn when(&self, what: &str) -> Instant {
        self.notes
            .iter()
            .find(|(n, _)| n == what)
            .map(|(_, at)| *at)
            .unwrap_or_else(|| panic!("no note {what:?} in {:?}", self.notes))
    }

    /// Writes `bytes`. A reset reported to a write is kept for the transcript (the
    /// kernel reports it once: a later read only sees the end).
    pub fn send(&mut self, bytes: &[u8]) {
        if let Err(e) = self.stream.write_all(bytes)
            && e.kind() == ErrorKind::ConnectionReset
        {
            self.reset_on_write = true;
        }
    }

    /// Notes now as `what` (before the first byte leaves), and sends.
    pub fn send_noted(&mut self, what: &str, bytes: &[u8]) {
        self.note(what);
        self.send(bytes);
    }

    /// One head, through its empty line; `None` at the end of the stream.
    pub fn head(&mut self) -> Option<String> {
        let mut head = Vec::new();
        loop {
            let mut line = Vec::new();
            match self.reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            let blank = line == b"\r\n" || line == b"\n";
            head.extend_from_slice(&line);
            if blank && head.len() > line.len() {
                return Some(String::from_utf8_lossy(&head).into_owned());
            }
            if blank {
                head.clear();
            }
        }
    }

    /// Waits until something arrives (recorded like everything read); false at the end.
    pub fn wait_for_bytes(&mut self) -> bool {
        self.reader.fill_buf().is_ok_and(|b| !b.is_empty())
    }

    /// Reads exactly `n` bytes (recorded); false if the stream ends first.
    pub fn read_exact(&mut self, n: usize) -> bool {
        let mut buf = vec![0u8; n];
        self.reader.read_exact(&mut buf).is_ok()
    }

    fn line(&mut self) -> Option<String> {
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line).ok()?;
        Some(String::from_utf8_lossy(&line).into_owned())
    }

    /// Reads the body `head` announces (Content-Length, or chunked and its trailers);
    /// `no_body` for responses to HEAD and 1xx/204/304.
    pub fn body(&mut self, head: &str, no_body: bool) -> Option<u64> {
        if no_body {
            return Some(0);
        }
        let header = |name: &str| {
            head.lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_ascii_lowercase())
        };
        if header("transfer-encoding").is_some_and(|te| te.ends_with("chunked")) {
            let mut total = 0;
            loop {
                let size = u64::from_str_radix(self.line()?.trim().split(';').next()?, 16).ok()?;
                if size == 0 {
                    while self.line()?.trim() != "" {}
                    return Some(total);
                }
                std::io::copy(&mut (&mut self.reader).take(size + 2), &mut std::io::sink()).ok()?;
                total += size;
            }
        }
        let length: u64 = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let copied =
            std::io::copy(&mut (&mut self.reader).take(length), &mut std::io::sink()).ok()?;
        (copied == length).then_some(length)
    }

    /// One response to a request of `method`: its status code (interim ones included).
    pub fn response(&mut self, method: &str) -> Option<u16> {
        let head = self.head()?;
        let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
        let no_body =
            method == "HEAD" || (100..200).contains(&status) || status == 204 || status == 304;
        self.body(&head, no_body)?;
        Some(status)
    }

    pub fn half_close(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Closes with a reset (SO_LINGER 0); what was received so far.
    pub fn abort(self) -> Transcript {
        let socket = nix::sys::socket::sockopt::Linger;
        let linger = nix::libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        nix::sys::socket::setsockopt(&self.stream, socket, &linger).unwrap();
        let mut seen = self.seen.lock().unwrap().clone();
        seen.ending = Ending::Aborted;
        seen
    }

    /// Server scripts: end with a reset once the script returns.
    pub fn abort_at_end(&mut self) {
        self.abort_at_end = true;
    }

    /// Reads what is left until the peer ends the connection (or [`IDLE`] passes).
    pub fn finish(mut self) -> Transcript {
        let mut rest = Vec::new();
        let ending = match self.reader.read_to_end(&mut rest) {
            Ok(_) if self.reset_on_write => Ending::Reset,
            Ok(_) => Ending::Fin,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => Ending::Reset,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Ending::Open
            }
            Err(e) => panic!("read: {e}"),
        };
        let mut seen = self.seen.lock().unwrap().clone();
        seen.ending = ending;
        seen
    }
}

type Script = Arc<dyn Fn(&mut Peer) + Send + Sync>;

/// What the server side of one connection saw.
#[derive(Debug, Clone)]
pub struct ServerSide {
    pub transcript: Transcript,
    pub notes: Vec<(String, Instant)>,
    pub peer: SocketAddr,
}

/// A scripted server: every connection accepted after [`Server::arm`] runs the script,
/// then reads until the peer ends; probes accepted before (the injector checks that its
/// upstream answers) are dropped.
pub struct Server {
    pub addr: SocketAddr,
    listener: Option<TcpListener>,
    script: Script,
    sides: Arc<Mutex<Vec<ServerSide>>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(listener: TcpListener, script: Script) -> Server {
        Server {
            addr: listener.local_addr().unwrap(),
            listener: Some(listener),
            script,
            sides: Arc::default(),
            thread: None,
        }
    }

    /// Drops the connections queued so far, then serves `connections` more.
    pub fn arm(&mut self, connections: usize) {
        let listener = self.listener.take().expect("armed twice");
        listener.set_nonblocking(true).unwrap();
        while listener.accept().is_ok() {}
        listener.set_nonblocking(false).unwrap();
        let (script, sides) = (Arc::clone(&self.script), Arc::clone(&self.sides));
        self.thread = Some(thread::spawn(move || {
            let handlers: Vec<JoinHandle<()>> = (0..connections)
                .filter_map(|_| listener.accept().ok())
                .map(|(stream, peer)| {
                    let (script, sides) = (Arc::clone(&script), Arc::clone(&sides));
                    thread::spawn(move || {
                        let mut side = Peer::new(stream);
                        script(&mut side);
                        let notes = std::mem::take(&mut side.notes);
                        let transcript = if side.abort_at_end {
                            side.abort()
                        } else {
                            side.finish()
                        };
                        sides.lock().unwrap().push(ServerSide {
                            transcript,
                            notes,
                            peer,
                        });
                    })
                })
                .collect();
            for handler in handlers {
                let _ = handler.join();
            }
        }));
    }

    /// Waits for every armed connection to end; what the server saw, in end order.
    pub fn sides(mut self) -> Vec<ServerSide> {
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        self.sides.lock().unwrap().clone()
    }
}

/// What the client side saw.
#[derive(Debug, Clone)]
pub struct ClientSide {
    pub transcript: Transcript,
    pub notes: Vec<(String, Instant)>,
}

impl ClientSide {
    /// Resets the connection now.
    pub fn aborted(peer: Peer) -> ClientSide {
        let notes = peer.notes.clone();
        ClientSide {
            transcript: peer.abort(),
            notes,
        }
    }

    /// Ends the connection and collects what came.
    pub fn of(peer: Peer) -> ClientSide {
        let notes = peer.notes.clone();
        ClientSide {
            transcript: peer.finish(),
            notes,
        }
    }

    pub fn when(&self, what: &str) -> Instant {
        self.notes
            .iter()
            .find(|(n, _)| n == what)
            .map(|(_, at)| *at)
            .unwrap_or_else(|| panic!("no client note {what:?} in {:?}", self.notes))
    }
}

impl ServerSide {
    pub fn when(&self, what: &str) -> Instant {
        self.notes
            .iter()
            .find(|(n, _)| n == what)
            .map(|(_, at)| *at)
            .unwrap_or_else(|| panic!("no server note {what:?} in {:?}", self.notes))
    }
}

/// One run of a case.
#[derive(Debug)]
pub struct Run {
    pub client: ClientSide,
    pub servers: Vec<ServerSide>,
    pub report: Option<serde_json::Value>,
}

pub type Client<'a> = &'a (dyn Fn(SocketAddr) -> ClientSide + Sync);

fn script_of(script: impl Fn(&mut Peer) + Send + Sync + 'static) -> Script {
    Arc::new(script)
}

/// The case directly: the client against the server.
pub fn direct(script: impl Fn(&mut Peer) + Send + Sync + 'static, client: Client<'_>) -> Run {
    let mut server = Server::start(TcpListener::bind("127.0.0.1:0").unwrap(), script_of(script));
    server.arm(1);
    let addr = server.addr;
    let client = client(addr);
    Run {
        client,
        servers: server.sides(),
        report: None,
    }
}

/// The case through an explicit injector started with `args`.
pub fn through(
    args: &[&str],
    script: impl Fn(&mut Peer) + Send + Sync + 'static,
    client: Client<'_>,
) -> Run {
    let mut server = Server::start(TcpListener::bind("127.0.0.1:0").unwrap(), script_of(script));
    let (injector, listen) = super::injector::Injector::explicit(server.addr, args);
    server.arm(1);
    let client = client(listen);
    let servers = server.sides();
    let (code, report, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
    Run {
        client,
        servers,
        report: Some(report),
    }
}

/// Runs the case directly and through the injector; asserts that both sides received
/// the same bytes and saw the same ending. Returns both runs for the timing checks.
pub fn differential<S>(name: &str, args: &[&str], script: S, client: Client<'_>) -> (Run, Run)
where
    S: Fn(&mut Peer) + Send + Sync + Clone + 'static,
{
    let direct = direct(script.clone(), client);
    let through = through(args, script, client);
    assert_eq!(
        through.client.transcript, direct.client.transcript,
        "{name} {args:?}: the client saw something else through the injector"
    );
    let sides = |run: &Run| {
        run.servers
            .iter()
            .map(|s| s.transcript.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        sides(&through),
        sides(&direct),
        "{name} {args:?}: the server saw something else through the injector"
    );
    (direct, through)
}
