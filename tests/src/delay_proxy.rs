//! A user-space TCP delay proxy for benchmarks and fault tests (this kernel has no netem): listens on
//! 127.0.0.1, forwards every accepted connection to one target, delays each chunk by a fixed one-way delay in
//! both directions (so RTT = 2 × delay, bandwidth unchanged), counts connections and bytes, and can cut every
//! open connection at once (a dropped network path, not a clean shutdown).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Counters of a [`DelayProxy`] since it started (or since [`DelayProxy::reset_counters`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// TCP connections accepted (one per SSH connection).
    pub connections: u64,
    /// Bytes sent client → target (what the client uploaded, including protocol overhead).
    pub bytes_up: u64,
    /// Bytes sent target → client.
    pub bytes_down: u64,
}

#[derive(Default)]
struct Shared {
    connections: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    stopped: AtomicBool,
    /// Open connections by id: (client side, target side); removed when the client→target direction ends.
    open: Mutex<HashMap<u64, (TcpStream, TcpStream)>>,
    next_id: AtomicU64,
    /// Benchmarks: markers and the arrival times of the chunks (either direction) that contained them.
    taps: Mutex<Vec<(Vec<u8>, Vec<Instant>)>>,
}

/// A running proxy; dropping it stops accepting and cuts every open connection.
pub struct DelayProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl DelayProxy {
    /// Starts a proxy on `127.0.0.1:<free port>` forwarding to `target` with `one_way` added per direction.
    pub fn start(target: SocketAddr, one_way: Duration) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect_timeout(&target, Duration::from_secs(10))
                else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                s.connections.fetch_add(1, Ordering::SeqCst);
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let id = s.next_id.fetch_add(1, Ordering::SeqCst);
                if let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) {
                    if let Ok(mut open) = s.open.lock() {
                        open.insert(id, (c2, s2));
                    }
                }
                pipe(&client, &server, one_way, s.clone(), Some(id));
                pipe(&server, &client, one_way, s.clone(), None);
            }
        });
        Ok(Self { addr, shared })
    }

    /// The listening address (127.0.0.1:port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn stats(&self) -> ProxyStats {
        ProxyStats {
            connections: self.shared.connections.load(Ordering::SeqCst),
            bytes_up: self.shared.bytes_up.load(Ordering::SeqCst),
            bytes_down: self.shared.bytes_down.load(Ordering::SeqCst),
        }
    }

    pub fn reset_counters(&self) {
        self.shared.connections.store(0, Ordering::SeqCst);
        self.shared.bytes_up.store(0, Ordering::SeqCst);
        self.shared.bytes_down.store(0, Ordering::SeqCst);
    }

    /// Records the arrival time of every chunk, in either direction, that contains `marker` (a route's path in
    /// a request, an event in a stream).
    pub fn tap(&self, marker: &[u8]) {
        if let Ok(mut t) = self.shared.taps.lock() {
            t.push((marker.to_vec(), Vec::new()));
        }
    }

    /// The arrival times recorded for `marker` so far.
    pub fn tapped(&self, marker: &[u8]) -> Vec<Instant> {
        let taps = self.shared.taps.lock();
        taps.ok()
            .and_then(|t| t.iter().find(|(m, _)| m == marker).map(|(_, v)| v.clone()))
            .unwrap_or_default()
    }

    /// Cuts every connection open right now (both sides see a reset/EOF mid-stream); new ones still work.
    /// Returns how many TCP connections were cut.
    pub fn cut_all(&self) -> usize {
        let open = match self.shared.open.lock() {
            Ok(mut open) => std::mem::take(&mut *open),
            Err(_) => HashMap::new(),
        };
        for (client, server) in open.values() {
            let _ = client.shutdown(Shutdown::Both);
            let _ = server.shutdown(Shutdown::Both);
        }
        open.len()
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.cut_all();
        // Wake the accept loop so it sees `stopped`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// One direction: a reader thread stamps chunks, a writer thread releases each at stamp + delay. `up_id` is
/// `Some(connection id)` for the client → target direction, whose end forgets the connection.
fn pipe(
    from: &TcpStream,
    to: &TcpStream,
    delay: Duration,
    shared: Arc<Shared>,
    up_id: Option<u64>,
) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let tap_shared = shared.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Ok(mut taps) = tap_shared.taps.lock() {
                        for (marker, times) in taps.iter_mut() {
                            if buf[..n]
                                .windows(marker.len())
                                .any(|w| w == marker.as_slice())
                            {
                                times.push(Instant::now());
                            }
                        }
                    }
                    if tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        // Channel closes when tx drops; the writer then half-closes its side.
    });
    std::thread::spawn(move || {
        for (due, chunk) in rx {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            // Counted before the write, so a reader that got the bytes sees them counted.
            let counter = if up_id.is_some() {
                &shared.bytes_up
            } else {
                &shared.bytes_down
            };
            counter.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
        if let (Some(id), Ok(mut open)) = (up_id, shared.open.lock()) {
            open.remove(&id);
        }
    });
}
