//! The double's HTTPS forward proxy (`HTTPS_PROXY`): answers `CONNECT <host>:<port>` for any host by tunnelling to the
//! double's own TLS listener, so that names nothing resolves here (OSS's virtual-hosted `<bucket>.oss.double.test`)
//! reach it; every CONNECT target is kept to assert on. Anything but CONNECT is refused (405).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::server::{lock, Shared};

/// Accepts tunnels on `listener` for as long as the double's runtime runs.
pub(crate) async fn serve(listener: TcpListener, double: SocketAddr, shared: Shared) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _ = tunnel(client, double, shared).await;
        });
    }
}

async fn tunnel(mut client: TcpStream, double: SocketAddr, shared: Shared) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = client.read(&mut buf).await?;
        if n == 0 || head.len() > 16 * 1024 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let end = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(head.len(), |p| p + 4);
    let text = String::from_utf8_lossy(&head[..end]).into_owned();
    let mut first = text.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    if method != "CONNECT" {
        client
            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await?;
        return Ok(());
    }
    lock(&shared).proxied.push(target.to_string());
    let mut upstream = TcpStream::connect(double).await?;
    client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await?;
    upstream.write_all(&head[end..]).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}
