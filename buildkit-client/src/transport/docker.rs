//! The Docker daemon's doors to its embedded BuildKit: `POST /grpc` and
//! `POST /session`, each upgraded from HTTP/1.1 to HTTP/2 cleartext (`h2c`)
//! the way buildx's docker driver dials them.
//!
//! After `101 Switching Protocols` the socket speaks HTTP/2: on `/grpc` we are
//! the client of the Control API; on `/session` the daemon is the client and we
//! serve the session's gRPC services.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::io::{BoxedStream, Prefixed};

/// The longest response head we accept before the upgrade.
const MAX_HEAD: usize = 64 * 1024;

/// Sends an upgrade request for `path` with extra `headers` and returns the
/// stream, now speaking HTTP/2, or an error saying what the daemon answered.
pub(crate) async fn upgrade(
    mut stream: BoxedStream,
    path: &str,
    headers: &[(String, String)],
) -> Result<BoxedStream, String> {
    let mut request =
        format!("POST {path} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n");
    for (name, value) in headers {
        if name.contains(['\r', '\n', ':']) || value.contains(['\r', '\n']) {
            return Err(format!(
                "header {name:?} cannot be sent in an HTTP/1.1 request"
            ));
        }
        request.push_str(name);
        request.push_str(": ");
        request.push_str(value);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|err| format!("sending POST {path}: {err}"))?;
    let (head, rest) = read_head(&mut stream)
        .await
        .map_err(|err| format!("reading the answer to POST {path}: {err}"))?;
    let status_line = head.lines().next().unwrap_or_default();
    let code = status_line.split_whitespace().nth(1).unwrap_or_default();
    if code != "101" {
        let body = String::from_utf8_lossy(&rest);
        let body = body.trim();
        return Err(format!(
            "POST {path} was answered {status_line:?} instead of 101 Switching Protocols{}{}",
            if body.is_empty() { "" } else { ": " },
            truncate(body, 300)
        ));
    }
    Ok(Box::new(Prefixed::new(rest, stream)))
}

/// A Docker API answer: its head (status line and headers) and its body.
#[derive(Debug)]
pub(crate) struct Response {
    head: String,
    /// The body, de-chunked.
    pub(crate) body: Vec<u8>,
}

impl Response {
    /// The value of header `name` (case-insensitive), trimmed.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Performs a plain `GET` on the Docker API and returns its answer.
pub(crate) async fn get(mut stream: BoxedStream, path: &str) -> Result<Response, String> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|err| format!("sending GET {path}: {err}"))?;
    let (head, rest) = read_head(&mut stream)
        .await
        .map_err(|err| format!("reading GET {path}: {err}"))?;
    let mut body = rest.to_vec();
    stream
        .read_to_end(&mut body)
        .await
        .map_err(|err| format!("reading GET {path}: {err}"))?;
    let status_line = head.lines().next().unwrap_or_default().to_string();
    if status_line.split_whitespace().nth(1) != Some("200") {
        return Err(format!("GET {path} was answered {status_line:?}"));
    }
    let chunked = head.lines().any(|line| {
        let lower = line.to_ascii_lowercase();
        lower.starts_with("transfer-encoding:") && lower.contains("chunked")
    });
    if chunked {
        body = dechunk(&body).ok_or_else(|| format!("GET {path}: malformed chunked body"))?;
    }
    Ok(Response { head, body })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((index, _)) => &text[..index],
        None => text,
    }
}

/// Reads up to the blank line ending an HTTP/1.1 response head; returns the
/// head as text and whatever was read past it.
async fn read_head(stream: &mut BoxedStream) -> std::io::Result<(String, Bytes)> {
    let mut buffer = BytesMut::with_capacity(1024);
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = buffer.split_to(end + 4);
            return Ok((String::from_utf8_lossy(&head).into_owned(), buffer.freeze()));
        }
        if buffer.len() > MAX_HEAD {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "response head too long",
            ));
        }
        let read = stream.read_buf(&mut buffer).await?;
        if read == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the daemon closed the connection before answering",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_headers_are_found_by_name() {
        let response = Response {
            head: "HTTP/1.1 200 OK\r\nApi-Version: 1.45\r\nServer: Docker/26.1.5+dfsg1 (linux)\r\n\r\n"
                .into(),
            body: b"OK".to_vec(),
        };
        assert_eq!(
            response.header("server"),
            Some("Docker/26.1.5+dfsg1 (linux)")
        );
        assert_eq!(response.header("API-VERSION"), Some("1.45"));
        assert_eq!(response.header("Swarm"), None);
        assert_eq!(response.header("HTTP/1.1 200 OK"), None);
    }

    #[test]
    fn dechunks() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n").as_deref(),
            Some(&b"abcde"[..])
        );
        assert_eq!(dechunk(b"5\r\nab"), None);
    }

    #[tokio::test]
    async fn upgrade_keeps_bytes_read_past_the_head() {
        let (client, mut server) = tokio::io::duplex(4096);
        let task = tokio::spawn(async move {
            let mut seen = vec![0u8; 4096];
            let n = server.read(&mut seen).await.unwrap();
            let text = String::from_utf8_lossy(&seen[..n]).to_string();
            server
                .write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\nEXTRA")
                .await
                .unwrap();
            text
        });
        let mut upgraded = upgrade(
            Box::new(client),
            "/session",
            &[("X-Docker-Expose-Session-Uuid".into(), "abc".into())],
        )
        .await
        .unwrap();
        let request = task.await.unwrap();
        assert!(request.starts_with("POST /session HTTP/1.1\r\n"));
        assert!(request.contains("Upgrade: h2c\r\n"));
        assert!(request.contains("X-Docker-Expose-Session-Uuid: abc\r\n"));
        let mut extra = [0u8; 5];
        upgraded.read_exact(&mut extra).await.unwrap();
        assert_eq!(&extra, b"EXTRA");
    }

    #[tokio::test]
    async fn refused_upgrade_says_what_the_daemon_answered() {
        let (client, mut server) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            let mut seen = [0u8; 1024];
            let _ = server.read(&mut seen).await;
            let _ = server
                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found")
                .await;
        });
        let err = match upgrade(Box::new(client), "/grpc", &[]).await {
            Ok(_) => panic!("upgrade succeeded"),
            Err(err) => err,
        };
        assert!(
            err.contains("404") && err.contains("/grpc") && err.contains("not found"),
            "{err}"
        );
    }
}
