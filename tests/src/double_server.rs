//! The server thread every plain-HTTP double runs on: its own Tokio runtime (tests may block without starving
//! it), a listener bound before `start` returns, and a stop-and-join on drop.
use std::future::Future;
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

pub struct DoubleServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl DoubleServer {
    /// Binds `bind` and runs `serve(listener, stop)` on a thread named `name` with `workers` runtime threads;
    /// `serve` must return once `stop` resolves.
    pub fn start<F, Fut>(
        name: &str,
        bind: SocketAddr,
        workers: usize,
        serve: F,
    ) -> std::io::Result<Self>
    where
        F: FnOnce(tokio::net::TcpListener, oneshot::Receiver<()>) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let std_listener = std::net::TcpListener::bind(bind)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .thread_name(name)
            .build()?;
        let (tx, rx) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(std_listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    serve(listener, rx).await;
                });
                // Tasks still running (slow answers, open streams) are dropped with the runtime.
                runtime.shutdown_timeout(Duration::from_millis(100));
            })?;
        ready_rx.recv().map_err(|_| {
            std::io::Error::other(format!("{name}: the server thread exited early"))
        })??;
        Ok(DoubleServer {
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// Serves an axum router until stopped.
    pub fn axum(
        name: &str,
        bind: SocketAddr,
        workers: usize,
        app: axum::Router,
    ) -> std::io::Result<Self> {
        Self::start(name, bind, workers, |listener, stop| async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop.await;
                })
                .await;
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for DoubleServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
