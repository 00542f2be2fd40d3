//! The stand-in backend on loopback (no root needed): a real redis-server, the database
//! stand-in and the services wired by URL, checked for the behaviours the experiments
//! assume, well-behaved and with LAB_MODE=fragile, and the Stripe-like sender.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn bin(name: &str) -> PathBuf {
    let path = chaos_tests::lab::testing::bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} is not built: cargo build -p chaos-tests --bins",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A process killed when the test ends; its stdout goes to a file.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

impl Proc {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn service(role: &str, port: u16, env: &[(&str, String)]) -> Proc {
    let log = std::env::temp_dir().join(format!(
        "lab-backend-{}-{role}-{port}.log",
        std::process::id()
    ));
    let mut cmd = Command::new(bin("lab-service"));
    cmd.env_clear()
        .env("LAB_ROLE", role)
        .env("PORT", port.to_string())
        .env("LAB_WORK_MS", "1")
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let proc = Proc {
        child: cmd.spawn().unwrap(),
        log,
    };
    wait_listening(port);
    proc
}

fn redis(port: u16) -> Proc {
    let log = std::env::temp_dir().join(format!(
        "lab-backend-{}-redis-{port}.log",
        std::process::id()
    ));
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (Debian package redis-server)");
    let proc = Proc { child, log };
    wait_listening(port);
    proc
}

struct Reply {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Value,
}

fn http(
    method: &str,
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> std::io::Result<Reply> {
    let mut s = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port)))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let body = body.unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes())?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    Ok(Reply {
        status,
        headers,
        body: serde_json::from_str(body).unwrap_or(Value::Null),
    })
}

fn get(port: u16, path: &str) -> Reply {
    http("GET", port, path, &[], None).unwrap()
}

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// postgres + auth + product + order-payment + gateway, with Redis at `redis_port`.
struct Stack {
    ports: BTreeMap<&'static str, u16>,
    procs: BTreeMap<&'static str, Proc>,
}

impl Stack {
    fn start(
        redis_port: u16,
        payment_env: &[(&str, String)],
        product_env: &[(&str, String)],
    ) -> Stack {
        let roles = [
            "postgres",
            "auth-service",
            "product-service",
            "order-payment-service",
            "api-gateway",
        ];
        let ports: BTreeMap<&str, u16> = roles.iter().map(|r| (*r, free_port())).collect();
        let common = vec![
            ("REDIS_URL", format!("redis://127.0.0.1:{redis_port}")),
            (
                "DATABASE_URL",
                format!("postgresql://lw:lw@127.0.0.1:{}/lomash", ports["postgres"]),
            ),
            ("AUTH_SERVICE_URL", url(ports["auth-service"])),
            ("PRODUCT_SERVICE_URL", url(ports["product-service"])),
            (
                "ORDER_PAYMENT_SERVICE_URL",
                url(ports["order-payment-service"]),
            ),
            ("LAB_DB_LATENCY_MS", "5".to_owned()),
        ];
        let mut procs = BTreeMap::new();
        for role in roles {
            let mut env = common.clone();
            match role {
                "order-payment-service" => env.extend(payment_env.iter().cloned()),
                "product-service" => env.extend(product_env.iter().cloned()),
                _ => {}
            }
            procs.insert(role, service(role, ports[role], &env));
        }
        Stack { ports, procs }
    }

    fn port(&self, role: &str) -> u16 {
        self.ports[role]
    }

    fn login(&self) -> String {
        let r = http(
            "POST",
            self.port("api-gateway"),
            "/v1/auth/login",
            &[("Content-Type", "application/json")],
            Some(r#"{"email":"c@lomash-wood.test","password":"Password123!"}"#),
        )
        .unwrap();
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body["accessToken"].as_str().unwrap().to_owned()
    }

    fn create_intent(&self, token: &str) -> Reply {
        let auth = format!("Bearer {token}");
        http(
            "POST",
            self.port("api-gateway"),
            "/v1/payments/create-intent",
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/json"),
            ],
            Some(r#"{"amount":129900,"currency":"gbp"}"#),
        )
        .unwrap()
    }

    fn summary(&self) -> Value {
        get(
            self.port("order-payment-service"),
            "/v1/payments/orders/summary",
        )
        .body["data"]
            .clone()
    }
}

#[test]
fn lab_backend_products_fall_back_to_the_database_when_redis_goes() {
    let redis_port = free_port();
    let mut cache = Some(redis(redis_port));
    // The stand-in's 100 ms Redis deadline is what a service would use; on a loaded
    // 2-core machine a healthy redis-server can miss it (a first "BYPASS" was seen in CI
    // at load 12). What is tested here is the fallback when Redis is gone (connections
    // refused at once), so the healthy phase gets a deadline that load cannot miss.
    let stack = Stack::start(
        redis_port,
        &[],
        &[
            ("REDIS_BREAKER_MS", "300".to_owned()),
            ("REDIS_TIMEOUT_MS", "3000".to_owned()),
        ],
    );
    let fragile_port = free_port();
    let _fragile = service(
        "product-service",
        fragile_port,
        &[
            ("REDIS_URL", format!("redis://127.0.0.1:{redis_port}")),
            (
                "DATABASE_URL",
                format!("postgresql://x@127.0.0.1:{}/x", stack.port("postgres")),
            ),
            ("LAB_MODE", "fragile".to_owned()),
        ],
    );
    let gw = stack.port("api-gateway");
    let first = get(gw, "/v1/products");
    assert_eq!(first.status, 200);
    assert_eq!(first.body["count"], 12);
    assert_eq!(first.headers["x-cache"], "MISS");
    assert_eq!(get(gw, "/v1/products").headers["x-cache"], "HIT");
    assert_eq!(
        get(gw, "/v1/products/prod_003").body["data"]["name"],
        "Ash coffee table"
    );
    assert_eq!(
        get(stack.port("product-service"), "/health").body["redis"],
        "ok"
    );
    assert_eq!(get(fragile_port, "/v1/products").status, 200);

    cache.take();
    let down = get(gw, "/v1/products");
    assert_eq!(
        (down.status, down.headers["x-cache"].as_str()),
        (200, "BYPASS")
    );
    assert_eq!(down.body["count"], 12);
    assert_eq!(
        get(stack.port("product-service"), "/health").body["redis"],
        "degraded"
    );
    assert_eq!(get(stack.port("product-service"), "/health").status, 200);
    let login = http(
        "POST",
        gw,
        "/v1/auth/login",
        &[],
        Some(r#"{"email":"a@b.c","password":"Password123!"}"#),
    )
    .unwrap();
    assert_eq!(
        login.status, 200,
        "login must survive Redis: {:?}",
        login.body
    );
    assert_eq!(get(fragile_port, "/v1/products").status, 500);
    let log = stack.procs["product-service"].log();
    assert!(
        log.contains("\"level\":\"warn\"") && log.contains("serving products from the database"),
        "{log}"
    );

    // Redis back: the breaker closes and the cache is used again.
    let _cache = redis(redis_port);
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(gw, "/v1/products").headers["x-cache"] == "BYPASS" {
        assert!(Instant::now() < deadline, "the cache never came back");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        get(stack.port("product-service"), "/health").body["redis"],
        "ok"
    );
}

#[test]
fn lab_backend_pool_exhaustion_answers_503_and_logs_prisma_error() {
    let redis_port = free_port();
    let _cache = redis(redis_port);
    let env = [
        ("DATABASE_CONNECTION_LIMIT", "2".to_owned()),
        ("DATABASE_POOL_TIMEOUT_MS", "300".to_owned()),
        ("STRIPE_API_LATENCY_MS", "150".to_owned()),
    ];
    let stack = Stack::start(redis_port, &env, &[]);
    let token = stack.login();
    assert_eq!(stack.create_intent(&token).status, 201);
    let t0 = Instant::now();
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|_| s.spawn(|| stack.create_intent(&token).status))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let took = t0.elapsed();
    let count = |c| statuses.iter().filter(|s| **s == c).count();
    assert!(count(503) >= 20, "{statuses:?}");
    assert!(count(201) >= 2, "{statuses:?}");
    assert_eq!(
        count(201) + count(503),
        50,
        "only 201 and 503: {statuses:?}"
    );
    assert!(
        took < Duration::from_secs(10),
        "answers, not timeouts: {took:?}"
    );
    let log = stack.procs["order-payment-service"].log();
    assert!(log.contains("PrismaClientKnownRequestError: Timed out fetching a new connection from the connection pool"), "{log}");
    assert!(log.contains("connection limit: 2"));
    // Recovers when the load is gone.
    assert_eq!(stack.create_intent(&token).status, 201);
    assert_eq!(
        stack.summary()["byStatus"]["PENDING_PAYMENT"],
        count(201) + 2
    );

    // Fragile: the same load kills the process.
    let mut fragile_env = env.to_vec();
    fragile_env.push(("LAB_MODE", "fragile".to_owned()));
    let fragile = Stack::start(redis_port, &fragile_env, &[]);
    let token = fragile.login();
    std::thread::scope(|s| {
        for _ in 0..20 {
            s.spawn(|| {
                let _ = fragile.create_intent(&token);
            });
        }
    });
    let mut procs = fragile.procs;
    let payment = procs.get_mut("order-payment-service").unwrap();
    let status = payment.child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(payment.log().contains("PrismaClientKnownRequestError"));
}

#[test]
fn lab_backend_auth_outage_is_a_clear_503_without_partial_writes() {
    let redis_port = free_port();
    let _cache = redis(redis_port);
    let stack = Stack::start(redis_port, &[("AUTH_TIMEOUT_MS", "500".to_owned())], &[]);
    let token = stack.login();
    let bad = stack.create_intent("lw1.forged.0.00");
    assert_eq!(bad.status, 401);
    let mut procs = stack.procs;
    drop(procs.remove("auth-service"));
    let stack = Stack {
        ports: stack.ports,
        procs,
    };
    let r = stack.create_intent(&token);
    assert_eq!(r.status, 503);
    assert_eq!(
        r.body["error"],
        "authentication service unavailable, try again later"
    );
    assert_eq!(stack.summary()["total"], 0, "nothing written");
    let log = stack.procs["order-payment-service"].log();
    assert!(log.contains("upstream auth-service unavailable"), "{log}");

    // Fragile writes first and answers 500.
    let fragile = Stack::start(redis_port, &[("LAB_MODE", "fragile".to_owned())], &[]);
    let token = fragile.login();
    let mut procs = fragile.procs;
    drop(procs.remove("auth-service"));
    let fragile = Stack {
        ports: fragile.ports,
        procs,
    };
    assert_eq!(fragile.create_intent(&token).status, 500);
    assert_eq!(
        fragile.summary()["byStatus"]["PENDING_PAYMENT"],
        1,
        "a partial write"
    );
}

fn stripe(url: &str, args: &[&str]) -> (i32, Vec<Value>) {
    let out = Command::new(bin("lab-stripe"))
        .args([
            "--url",
            url,
            "--retry-base-ms",
            "50",
            "--timeout-ms",
            "2000",
            "--attempts",
            "3",
        ])
        .args(args)
        .output()
        .unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (out.status.code().unwrap_or(-1), lines)
}

#[test]
fn lab_backend_webhooks_are_idempotent_unless_fragile() {
    let redis_port = free_port();
    let _cache = redis(redis_port);
    for fragile in [false, true] {
        let env: Vec<(&str, String)> = if fragile {
            vec![("LAB_MODE", "fragile".to_owned())]
        } else {
            vec![]
        };
        let stack = Stack::start(redis_port, &env, &[]);
        let token = stack.login();
        let intent = stack.create_intent(&token).body["paymentIntentId"]
            .as_str()
            .unwrap()
            .to_owned();
        let hook = format!("{}/v1/webhooks/stripe", url(stack.port("api-gateway")));
        for _ in 0..2 {
            let (code, d) = stripe(
                &hook,
                &[
                    "trigger",
                    "payment_intent.succeeded",
                    "--payment-intent",
                    &intent,
                    "--event-id",
                    "evt_1",
                ],
            );
            assert_eq!(code, 0, "{d:?}");
            assert_eq!(d[0]["attempts"].as_array().unwrap().len(), 1);
        }
        let summary = stack.summary();
        if fragile {
            assert_eq!(summary["duplicateIntents"], json!([intent]), "{summary}");
        } else {
            assert_eq!(summary["duplicateIntents"], json!([]), "{summary}");
            assert_eq!(summary["byStatus"], json!({"PAID": 1}), "{summary}");
        }
        // A wrong secret is a 400 every time: the sender retries, then gives up.
        let (code, d) = stripe(
            &hook,
            &[
                "--secret",
                "whsec_wrong",
                "trigger",
                "payment_intent.succeeded",
            ],
        );
        assert_eq!(code, 1);
        let attempts = d[0]["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 3);
        assert!(attempts.iter().all(|a| a["status"] == 400), "{attempts:?}");
    }
}

#[test]
fn lab_backend_sender_retries_a_timeout_and_settles_pending_orders() {
    let redis_port = free_port();
    let _cache = redis(redis_port);
    let stack = Stack::start(redis_port, &[], &[]);
    let token = stack.login();
    for _ in 0..3 {
        assert_eq!(stack.create_intent(&token).status, 201);
    }
    // Nothing listens: connection errors are retried, then given up.
    let (code, d) = stripe(
        &format!("http://127.0.0.1:{}/v1/webhooks/stripe", free_port()),
        &["trigger", "payment_intent.succeeded"],
    );
    assert_eq!(code, 1);
    assert!(
        d[0]["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["error"].as_str().unwrap().contains("connect"))
    );
    let hook = format!("{}/v1/webhooks/stripe", url(stack.port("api-gateway")));
    let orders = format!("{}/v1/payments/orders", url(stack.port("api-gateway")));
    let (code, d) = stripe(&hook, &["settle", "--orders-url", &orders]);
    assert_eq!((code, d.len()), (0, 3), "{d:?}");
    assert_eq!(stack.summary()["byStatus"], json!({"PAID": 3}));
    let metrics = http(
        "GET",
        stack.port("order-payment-service"),
        "/metrics",
        &[],
        None,
    )
    .unwrap();
    assert_eq!(metrics.status, 200);
}

#[test]
fn lab_backend_warmup_answers_503_while_health_says_ok() {
    let port = free_port();
    let started = Instant::now();
    let svc = service(
        "notification-service",
        port,
        &[("LAB_WARMUP_MS", "1500".to_owned())],
    );
    let cold = get(port, "/v1/notifications");
    assert_eq!(cold.status, 503, "{:?}", cold.body);
    assert!(
        cold.body["error"].as_str().unwrap().contains("warming up"),
        "{:?}",
        cold.body
    );
    assert_eq!(get(port, "/health").status, 200, "Ready while warming up");
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(port, "/v1/notifications").status == 503 {
        assert!(Instant::now() < deadline, "never warmed up");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "served after {:?}, before LAB_WARMUP_MS",
        started.elapsed()
    );
    assert!(
        svc.log().contains("warming up for 1500 ms"),
        "{}",
        svc.log()
    );
}

#[test]
fn lab_backend_fail_switch_answers_500_for_the_time_asked_then_serves() {
    let port = free_port();
    let svc = service("notification-service", port, &[]);
    assert_eq!(get(port, "/v1/notifications").status, 200);
    let bad = http("POST", port, "/lab/fail?ms=soon", &[], None).unwrap();
    assert_eq!(bad.status, 400, "{:?}", bad.body);
    let on = http("POST", port, "/lab/fail?ms=60000", &[], None).unwrap();
    assert_eq!(on.status, 200, "{:?}", on.body);
    let failed = get(port, "/v1/notifications");
    assert_eq!(failed.status, 500, "{:?}", failed.body);
    assert!(
        failed.body["error"].as_str().unwrap().contains("/lab/fail"),
        "{:?}",
        failed.body
    );
    assert_eq!(
        get(port, "/health").status,
        200,
        "still Ready while failing"
    );
    let off = http("POST", port, "/lab/fail?ms=0", &[], None).unwrap();
    assert_eq!(off.status, 200);
    assert_eq!(get(port, "/v1/notifications").status, 200, "ms=0 ends it");
    // A short failure ends by itself.
    http("POST", port, "/lab/fail?ms=300", &[], None).unwrap();
    assert_eq!(get(port, "/v1/notifications").status, 500);
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(port, "/v1/notifications").status == 500 {
        assert!(Instant::now() < deadline, "the failure never ended");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(svc.log().contains("fail switch on"), "{}", svc.log());
}
