//! nginx (Debian nginx-light) for the tests: one process (`master_process off`) on a free
//! loopback port, serving files from a temporary directory, with `keepalive_timeout 2s`
//! and an access log that records each client's address; killed when the value drops.
// Test support: a failed step is the test failing, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::KillOnDrop;

pub struct Nginx {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    _process: KillOnDrop,
}

impl Nginx {
    /// nginx listening on `addr` (a free loopback port when `None`), started through
    /// `prefix` (e.g. `ip netns exec NS`).
    pub fn start(addr: Option<SocketAddr>, prefix: &[&str]) -> Nginx {
        let addr = addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], super::free_port())));
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("html")).unwrap();
        std::fs::write(root.join("html/small.txt"), "hello from nginx\n").unwrap();
        let d = root.display();
        let conf = format!(
            "daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 4096; }}
http {{
  log_format peers '$remote_addr:$remote_port $request $status';
  access_log {d}/access.log peers;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  keepalive_timeout 2s;
  keepalive_requests 100000;
  server {{
    listen {addr};
    root {d}/html;
    location = /nc {{ return 204; }}
    location = /held {{ return 200 'held\\n'; }}
    location / {{ }}
  }}
}}
"
        );
        std::fs::write(root.join("nginx.conf"), conf).unwrap();
        let mut cmd = match prefix.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg("nginx");
                cmd
            }
            None => Command::new("nginx"),
        };
        let child = cmd
            .arg("-p")
            .arg(root)
            .arg("-c")
            .arg(root.join("nginx.conf"))
            .args(["-e", &format!("{d}/error.log")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start nginx (Debian package nginx-light): {e}"));
        let nginx = Nginx {
            addr,
            dir,
            _process: KillOnDrop(child),
        };
        if prefix.is_empty() {
            super::wait_until("nginx listens", Duration::from_secs(10), || {
                TcpStream::connect(addr).is_ok()
            });
        }
        nginx
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join("html").join(name)
    }

    /// The access log: one `ADDR:PORT REQUEST STATUS` line per request.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }
}
