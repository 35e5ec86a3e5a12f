//! A real `redis-server` for tests: `REDIS_URL` when set, otherwise one spawned on a free
//! loopback port (killed on drop). Neither possible → the test fails loudly; it never skips.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub struct TestRedis {
    pub url: String,
    port: u16,
    child: Option<Child>,
}

/// A key prefix no other test uses (tests may share one `REDIS_URL`).
pub fn unique_prefix(test: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "t:{test}:{}:{}:",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

impl TestRedis {
    /// `REDIS_URL` if set, else a fresh server.
    pub fn start() -> Self {
        if let Ok(url) = std::env::var("REDIS_URL") {
            return Self {
                url,
                port: 0,
                child: None,
            };
        }
        Self::spawn()
    }

    /// Always a fresh server of our own (never `REDIS_URL`): for tests that stop it, or watch it.
    pub fn spawn() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self {
            url: format!("redis://127.0.0.1:{port}"),
            port,
            child: None,
        };
        redis.restart();
        redis
    }

    /// Starts (again) the spawned server on its port.
    pub fn restart(&mut self) {
        assert!(self.port != 0, "only a spawned server can be restarted");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (or REDIS_URL set) for the Redis tests; .ci/run installs it");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
    }

    /// Stops the spawned server (its data is gone: it keeps nothing on disk).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the spawned server (SIGSTOP): connections stay open, nothing is answered.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Resumes a frozen server (SIGCONT): it answers everything it received meanwhile, in order.
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("a spawned server").id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// A plain connection for assertions.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the test redis")
    }

    /// Every key under `prefix` has a TTL (none is kept forever).
    pub async fn assert_all_keys_expire(&self, prefix: &str) {
        let mut conn = self.connection().await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut conn)
            .await
            .unwrap();
        for key in keys {
            let ttl: i64 = redis::cmd("PTTL")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap();
            // -1: no TTL. -2 (or 0): it expired between KEYS and PTTL, as short-lived
            // rate-limit keys do; that is the point of a TTL.
            assert_ne!(ttl, -1, "key {key} has no TTL");
        }
    }

    /// Watches the server with `MONITOR` (through `redis-cli`): what clients send, one line per
    /// command; commands run inside scripts are marked `lua` and are not round trips.
    pub fn monitor(&self) -> Monitor {
        let mut child = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "monitor"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-cli (installed with redis-server) runs MONITOR");
        let stdout = child.stdout.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                sink.lock().unwrap().push(line);
            }
        });
        // MONITOR answers OK first; wait for it so nothing before this point is counted.
        let deadline = Instant::now() + Duration::from_secs(5);
        while lines.lock().unwrap().is_empty() {
            assert!(Instant::now() < deadline, "MONITOR did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        Monitor { child, lines }
    }
}

/// A running `MONITOR`.
pub struct Monitor {
    child: Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Monitor {
    /// Commands clients sent since the monitor started (script-internal ones excluded).
    pub fn client_commands(&self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(200));
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(" [") && !l.contains(" lua]"))
            .cloned()
            .collect()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
