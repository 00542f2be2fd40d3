//! A small network lab for integration tests: network namespaces joined by veth pairs,
//! addressed from 198.51.100.0/24 (TEST-NET-2), with helpers to run commands and code
//! inside a namespace, TCP echo listeners and UDP counters living in one, and a Drop
//! guard that deletes every namespace even when the test fails.
//!
//! ```ignore
//! let mut lab = Lab::new("np");
//! let client = lab.namespace("c");
//! let a = lab.namespace("a");
//! let (client_ip, a_ip) = lab.link(&client, &a); // 198.51.100.1 <-> 198.51.100.2 (/30)
//! let _echo = lab.tcp_echo(&a, SocketAddr::new(a_ip, 8080));
//! let ok = lab.in_namespace(&client, move || tcp_connect(SocketAddr::new(a_ip, 8080), Duration::from_secs(1)));
//! ```
//!
//! Names are `<tag><pid>-<n><role>` (interfaces `v<pid>-<n>a|b`, at most 15 characters),
//! so labs of tests running in parallel never collide. Needs root and `ip` (iproute2).

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sched::{CloneFlags, setns};

static LAB_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Namespaces and links of one test; everything is deleted on drop.
pub struct Lab {
    tag: String,
    namespaces: Vec<String>,
    links: u8,
}

impl Lab {
    /// `tag`: 1-3 letters naming the test suite (namespace names start with it).
    pub fn new(tag: &str) -> Lab {
        let n = LAB_COUNTER.fetch_add(1, Ordering::SeqCst);
        Lab {
            tag: format!("{tag}{}-{n}", std::process::id()),
            namespaces: Vec::new(),
            links: 0,
        }
    }

    /// Creates a namespace named after the lab and `role`, with `lo` up; returns its name.
    pub fn namespace(&mut self, role: &str) -> String {
        let name = format!("{}{role}", self.tag);
        ip(&["netns", "add", &name]);
        self.namespaces.push(name.clone());
        self.exec_ok(&name, &["ip", "link", "set", "lo", "up"]);
        name
    }

    /// Joins two namespaces with a veth pair on the next free /30 of 198.51.100.0/24;
    /// returns the addresses of the `a` side and the `b` side.
    pub fn link(&mut self, a: &str, b: &str) -> (IpAddr, IpAddr) {
        let n = self.links;
        assert!(n < 64, "198.51.100.0/24 holds 64 links");
        self.links += 1;
        let (if_a, if_b) = (
            format!("v{}-{n}a", std::process::id()),
            format!("v{}-{n}b", std::process::id()),
        );
        assert!(if_a.len() <= 15, "interface name {if_a} is too long");
        ip(&[
            "link", "add", &if_a, "netns", a, "type", "veth", "peer", "name", &if_b, "netns", b,
        ]);
        let base = 4 * n;
        let addr_a = IpAddr::V4(Ipv4Addr::new(198, 51, 100, base + 1));
        let addr_b = IpAddr::V4(Ipv4Addr::new(198, 51, 100, base + 2));
        for (ns, iface, addr) in [(a, &if_a, addr_a), (b, &if_b, addr_b)] {
            self.exec_ok(
                ns,
                &["ip", "addr", "add", &format!("{addr}/30"), "dev", iface],
            );
            self.exec_ok(ns, &["ip", "link", "set", iface, "up"]);
        }
        (addr_a, addr_b)
    }

    /// `ip netns exec NS program`, ready for args, pipes, spawn.
    pub fn command(&self, ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).arg(program);
        cmd
    }

    /// Runs `argv` inside `ns` and returns its output.
    pub fn exec(&self, ns: &str, argv: &[&str]) -> Output {
        super::run(self.command(ns, argv[0]).args(&argv[1..]))
    }

    /// Runs `argv` inside `ns`; panics with its stderr if it fails.
    pub fn exec_ok(&self, ns: &str, argv: &[&str]) -> String {
        let out = self.exec(ns, argv);
        assert!(
            out.status.success(),
            "in {ns}: {argv:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `f` on a thread that has joined `ns` (sockets it opens live there).
    pub fn in_namespace<T: Send + 'static>(
        &self,
        ns: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let ns = ns.to_owned();
        std::thread::spawn(move || {
            enter(&ns);
            f()
        })
        .join()
        .unwrap_or_else(|_| panic!("thread in namespace panicked"))
    }

    /// A TCP echo server on `addr` inside `ns`, stopped when the returned value drops.
    pub fn tcp_echo(&self, ns: &str, addr: SocketAddr) -> Server {
        let listener = self.in_namespace(ns, move || TcpListener::bind(addr));
        let listener = listener.unwrap_or_else(|e| panic!("bind {addr} in {ns}: {e}"));
        Server::spawn(move |stop, _| echo_loop(&listener, &stop))
    }

    /// A UDP socket on `addr` inside `ns` counting the datagrams it receives.
    pub fn udp_counter(&self, ns: &str, addr: SocketAddr) -> Server {
        let socket = self.in_namespace(ns, move || UdpSocket::bind(addr));
        let socket = socket.unwrap_or_else(|e| panic!("bind udp {addr} in {ns}: {e}"));
        Server::spawn(move |stop, count| {
            let _ = socket.set_read_timeout(Some(Duration::from_millis(20)));
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                if socket.recv(&mut buf).is_ok() {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting a namespace removes its veth ends (and so their peers) with it.
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

fn ip(args: &[&str]) {
    let out = super::run(Command::new("ip").args(args));
    assert!(
        out.status.success(),
        "ip {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Moves the calling thread into the network namespace `ns`.
pub fn enter(ns: &str) {
    let path = format!("/run/netns/{ns}");
    let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    setns(&file, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns {path}: {e}"));
}

/// A background server thread; `count` is what it counted (connections or datagrams).
pub struct Server {
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn spawn(body: impl FnOnce(Arc<AtomicBool>, Arc<AtomicU64>) + Send + 'static) -> Server {
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        let (s, c) = (stop.clone(), count.clone());
        let thread = std::thread::spawn(move || body(s, c));
        Server {
            stop,
            count,
            thread: Some(thread),
        }
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn echo_loop(listener: &TcpListener, stop: &Arc<AtomicBool>) {
    let _ = listener.set_nonblocking(true);
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let stop = stop.clone();
                std::thread::spawn(move || echo_one(stream, &stop));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn echo_one(mut stream: TcpStream, stop: &AtomicBool) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// A TCP connect with a timeout (call inside [`Lab::in_namespace`]).
pub fn tcp_connect(addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    TcpStream::connect_timeout(&addr, timeout)
}

/// Writes `payload` and waits up to `timeout` for it to come back from an echo server.
pub fn echo_roundtrip(
    stream: &mut TcpStream,
    payload: &[u8],
    timeout: Duration,
) -> std::io::Result<()> {
    stream.write_all(payload)?;
    stream.set_read_timeout(Some(timeout))?;
    let mut back = vec![0u8; payload.len()];
    stream.read_exact(&mut back)?;
    if back != payload {
        return Err(std::io::Error::other("echo returned different bytes"));
    }
    Ok(())
}
