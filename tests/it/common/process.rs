//! Running the real gateway binary: waiting for it to exit within a deadline, free ports.

use std::process::{Child, Output};
use std::time::{Duration, Instant};

/// How long one run of the binary may take (a cold debug binary on a busy machine included).
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Waits for `child` to exit (killing it and failing past [`DEADLINE`]) and collects its output.
pub fn wait_for_exit(mut child: Child) -> Output {
    let start = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("the gateway did not exit within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}
