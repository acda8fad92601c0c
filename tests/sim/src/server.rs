//! The listener and its connections: serve, stop (closing every connection) and serve
//! again on the same port.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use crate::error::{Error, Result};
use crate::http;
use crate::state::Shared;

/// Binds with `SO_REUSEADDR` so a restart can take the same port at once.
pub fn bind(addr: SocketAddr) -> Result<TcpListener> {
    let err = |source| Error::Bind { addr, source };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(err)?;
    socket.set_reuseaddr(true).map_err(err)?;
    socket.bind(addr).map_err(err)?;
    socket.listen(1024).map_err(err)
}

struct Running {
    task: JoinHandle<()>,
    stop: oneshot::Sender<()>,
}

/// The serving task, if any; aborted (with every connection) on drop.
#[derive(Default)]
pub struct Server {
    running: Mutex<Option<Running>>,
}

impl Server {
    /// Serves `listener` until stopped.
    pub fn serve(&self, shared: Arc<Shared>, listener: TcpListener) {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(shared, listener, stopped));
        let old = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(Running { task, stop });
        if let Some(old) = old {
            old.task.abort();
        }
    }

    /// Closes the listener and every connection, and waits until they are gone.
    pub async fn stop(&self) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(r) = running {
            let _ = r.stop.send(());
            let _ = r.task.await;
        }
    }

    /// Whether the server is serving.
    pub fn is_running(&self) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|r| !r.task.is_finished())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(r) = self
            .running
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            r.task.abort();
        }
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, mut stop: oneshot::Receiver<()>) {
    // Dropping the set (on stop, or when this task is aborted) aborts every connection.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((sock, _)) => {
                    conns.spawn(serve_conn(shared.clone(), sock));
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    conns.shutdown().await;
}

async fn serve_conn(shared: Arc<Shared>, sock: TcpStream) {
    let _ = sock.set_nodelay(true);
    let svc = service_fn(move |req| http::handle(shared.clone(), req));
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // A client hanging up mid-request is normal; nothing to report.
    let _ = builder.serve_connection(TokioIo::new(sock), svc).await;
}
