//! Small network helpers the fixtures that start real servers share: a free port, waiting for a listener.

use std::net::{IpAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A port nobody listens on at `ip` now (bound and released).
pub fn free_port(ip: IpAddr) -> Result<u16, String> {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port on {ip}: {e}"))
}

/// Waits until something accepts connections on `ip:port`; false after `timeout`.
pub fn wait_listening(ip: IpAddr, port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect((ip, port)).is_err() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}
