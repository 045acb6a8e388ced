//! Images mixed into a run (`--images-rate`): clients that do not send take
//! turns uploading a PNG of `--image-size` as picochat's page does (the
//! `upload` announcement, then the bytes as one binary message), and every
//! client that receives the image's message fetches it as a page showing it
//! would: `GET /u/...` on a connection of its own, read to its last byte.
//! Upload times run from the announcement to the uploader's own copy of the
//! message; fetch times from the message's arrival to the image's last byte.
//! The fetches are sockets of the same poll, with tokens above the clients'.

use super::requests::Timed;
use super::*;

/// Tokens of fetches start here; below are the clients' slab keys.
pub(super) const FETCH_TOKEN: usize = usize::MAX / 2 + 1;

/// One image being fetched.
struct Fetch {
    stream: Conn,
    connecting: bool,
    request: Vec<u8>,
    written: usize,
    /// The response's head, until its blank line.
    head: Vec<u8>,
    /// Body bytes still to come, once the head is read.
    body_left: Option<u64>,
    body: u64,
    /// When the message naming the image arrived (µs on the run's clock).
    since_us: u64,
}

/// What happened to the images of a run.
#[derive(Default)]
pub struct Images {
    /// The PNG every upload sends (made once).
    png: Vec<u8>,
    /// Announced and sent, and stored (the uploader got its message back).
    pub uploads: Timed,
    /// Announcements answered with an error (`unavailable`, `slow_mode`, ...).
    pub refused: u64,
    /// Fetches started, and read to the end with 200.
    pub fetches: Timed,
    pub fetch_failed: u64,
    pub fetched_bytes: u64,
    open: Slab<Fetch>,
}

impl Images {
    /// The image's size, when images are part of the run.
    pub fn size(&self) -> Option<usize> {
        (!self.png.is_empty()).then_some(self.png.len())
    }

    /// Fetches still open.
    pub fn busy(&self) -> bool {
        !self.open.is_empty()
    }
}

/// The caption an upload carries: the uploader's key and when it announced.
fn caption(key: usize, sent_us: u64) -> String {
    format!("I{key}.{sent_us}")
}

/// The `"url":"/u/..."` of a message's attachment, and its caption's
/// uploader and announcement time when it is one of ours.
pub(super) fn attachment(payload: &[u8]) -> Option<(String, Option<(usize, u64)>)> {
    const URL: &[u8] = b"\"url\":\"/u/";
    let at = payload.windows(URL.len()).position(|w| w == URL)? + URL.len() - 3;
    let len = payload[at..].iter().position(|&b| b == b'"')?;
    let url = std::str::from_utf8(&payload[at..at + len])
        .ok()?
        .to_string();
    const CAPTION: &[u8] = b"\"message\":\"I";
    let ours = payload
        .windows(CAPTION.len())
        .position(|w| w == CAPTION)
        .and_then(|c| {
            let rest = &payload[c + CAPTION.len()..];
            let end = rest.iter().position(|&b| b == b'"')?;
            let (key, sent) = std::str::from_utf8(&rest[..end]).ok()?.split_once('.')?;
            Some((key.parse().ok()?, sent.parse().ok()?))
        });
    Some((url, ours))
}

/// A response head read with `httparse` (as the server reads requests):
/// its length, status and Content-Length; `Ok(None)` until it is complete.
fn response_head(buf: &[u8]) -> Result<Option<(usize, u16, Option<u64>)>, httparse::Error> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(len) = response.parse(buf)? else {
        return Ok(None);
    };
    let length = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok());
    Ok(Some((len, response.code.unwrap_or(0), length)))
}

impl Gen {
    /// Makes the run's image (exactly `--image-size` bytes).
    pub(super) fn prepare_images(&mut self) {
        if self.args.images_rate > 0.0 {
            let data = self.args.image_size.saturating_sub(57);
            self.images.png = picochat::image::make::dense_png(data);
        }
    }

    /// Whether this client may upload now: open, in a room, nothing of its own asked.
    pub(super) fn can_upload(&self, key: usize) -> bool {
        self.clients.get(key).is_some_and(|c| {
            matches!(c.state, State::Open)
                && c.room.is_some()
                && c.uploading.is_none()
                && c.asked_page.is_none()
                && !c.searcher
        })
    }

    /// Announces the image in the client's room, then sends its bytes.
    pub(super) fn upload(&mut self, key: usize) {
        let now_us = self.now_us();
        let Some(room) = self.clients.get(key).and_then(|c| c.room) else {
            return;
        };
        let json = format!(
            r#"{{"type":"upload","room":"load-{room}","bytes":{},"message":"{}"}}"#,
            self.images.png.len(),
            caption(key, now_us)
        );
        let mask = self.mask();
        let binary = ws::encode_masked(OpCode::Data(Data::Binary), &self.images.png, mask);
        let mask = self.mask();
        let Some(c) = self.clients.get_mut(key) else {
            return;
        };
        c.uploading = Some(now_us);
        c.out.extend_from_slice(&ws::encode_masked(
            OpCode::Data(Data::Text),
            json.as_bytes(),
            mask,
        ));
        c.out.extend_from_slice(&binary);
        self.images.uploads.sent += 1;
        self.flush(key);
    }

    /// The uploader's own copy of its image's message: the upload is stored.
    pub(super) fn uploaded(&mut self, key: usize, sent_us: u64, now_us: u64) {
        if let Some(c) = self.clients.get_mut(key) {
            if c.uploading.take().is_some() {
                self.images.uploads.answered += 1;
                self.images
                    .uploads
                    .hist
                    .record(now_us.saturating_sub(sent_us));
            }
        }
    }

    /// An error frame while the client's upload was waiting: refused.
    pub(super) fn upload_refused(&mut self, key: usize, error: &str) {
        if let Some(c) = self.clients.get_mut(key) {
            if c.uploading.take().is_some() {
                self.images.refused += 1;
                self.c
                    .first_error
                    .get_or_insert_with(|| format!("upload refused: {error}"));
            }
        }
    }

    /// Fetches `url` for client `key`, as its page would show the image
    /// (in runs with `--images-rate` only: a run without measures chat alone,
    /// whatever another generator posts in its rooms).
    pub(super) fn fetch(&mut self, key: usize, url: &str, now_us: u64) {
        if self.images.size().is_none() {
            return;
        }
        let Some(node) = self.clients.get(key).map(|c| c.node) else {
            return;
        };
        self.images.fetches.sent += 1;
        let target = &self.args.targets[node];
        let request = format!(
            "GET {url} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            target.host
        );
        let opened = TcpStream::connect(target.addr).and_then(|tcp| self.wrap(tcp, node));
        let mut stream = match opened {
            Ok(s) => s,
            Err(e) => return self.fetch_failed(None, format!("fetch {url}: {e}")),
        };
        let entry = self.images.open.vacant_entry();
        let token = Token(FETCH_TOKEN + entry.key());
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self.poll.registry().register(stream.tcp(), token, interest) {
            return self.fetch_failed(None, format!("fetch {url}: {e}"));
        }
        entry.insert(Fetch {
            stream,
            connecting: true,
            request: request.into_bytes(),
            written: 0,
            head: Vec::new(),
            body_left: None,
            body: 0,
            since_us: now_us,
        });
    }

    fn fetch_failed(&mut self, key: Option<usize>, why: String) {
        self.images.fetch_failed += 1;
        if let Some(mut f) = key.and_then(|k| self.images.open.try_remove(k)) {
            let _ = self.poll.registry().deregister(f.stream.tcp());
        }
        self.c.first_error.get_or_insert(why);
    }

    /// Readiness of fetch `key`: the request written, the response read.
    pub(super) fn fetch_ready(&mut self, key: usize, readable: bool, writable: bool) {
        let Some(f) = self.images.open.get_mut(key) else {
            return;
        };
        if writable || f.connecting {
            if f.connecting {
                if let Ok(Some(e)) | Err(e) = f.stream.tcp().take_error() {
                    return self.fetch_failed(Some(key), format!("fetch: connect: {e}"));
                }
                if f.stream.tcp().peer_addr().is_err() {
                    return; // not connected yet
                }
                f.connecting = false;
            }
            while f.written < f.request.len() {
                match f.stream.write(&f.request[f.written..]) {
                    Ok(n) => f.written += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return self.fetch_failed(Some(key), format!("fetch: write: {e}")),
                }
            }
            match f.stream.flush() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return self.fetch_failed(Some(key), format!("fetch: write: {e}")),
            }
        }
        if readable {
            self.fetch_read(key);
        }
    }

    fn fetch_read(&mut self, key: usize) {
        loop {
            let Some(f) = self.images.open.get_mut(key) else {
                return;
            };
            let n = match f.stream.read(&mut self.scratch) {
                Ok(0) => {
                    let why = format!(
                        "fetch: closed after {} of {:?} body bytes",
                        f.body, f.body_left
                    );
                    return self.fetch_failed(Some(key), why);
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.fetch_failed(Some(key), format!("fetch: read: {e}")),
            };
            let mut body = &self.scratch[..n];
            if f.body_left.is_none() {
                f.head.extend_from_slice(body);
                let (end, status, length) = match response_head(&f.head) {
                    Ok(Some(head)) => head,
                    Ok(None) if f.head.len() <= 16 * 1024 => continue,
                    Ok(None) => {
                        return self.fetch_failed(Some(key), "fetch: no end of head".into());
                    }
                    Err(e) => return self.fetch_failed(Some(key), format!("fetch: {e}")),
                };
                if status != 200 {
                    let why = format!("fetch: HTTP status {status}");
                    return self.fetch_failed(Some(key), why);
                }
                let Some(length) = length else {
                    return self.fetch_failed(Some(key), "fetch: no Content-Length".into());
                };
                let extra = f.head.len() - end;
                body = &self.scratch[n - extra..n];
                f.body_left = Some(length);
                f.head = Vec::new();
            }
            let left = f.body_left.unwrap_or(0);
            let take = (body.len() as u64).min(left);
            f.body += take;
            f.body_left = Some(left - take);
            if left == take {
                let now_us = self.now_us();
                let Some(mut f) = self.images.open.try_remove(key) else {
                    return;
                };
                let _ = self.poll.registry().deregister(f.stream.tcp());
                let img = &mut self.images;
                img.fetches.answered += 1;
                img.fetched_bytes += f.body;
                img.fetches.hist.record(now_us.saturating_sub(f.since_us));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attachment_s_url_and_our_caption_are_read_from_its_message() {
        let m = br#"{"type":"message","room":"load-0","id":7,"username":"load3","message":"I3.12345","attachment":{"url":"/u/AbC-d_123456789012.png","type":"image/png","bytes":9}}"#;
        assert_eq!(
            attachment(m),
            Some(("/u/AbC-d_123456789012.png".into(), Some((3, 12345))))
        );
        let theirs = br#"{"type":"message","message":"a cat","attachment":{"url":"/u/x.jpg"}}"#;
        assert_eq!(attachment(theirs), Some(("/u/x.jpg".into(), None)));
        assert_eq!(attachment(br#"{"type":"message","message":"I3.1"}"#), None);
    }

    #[test]
    fn a_response_head_gives_its_length_status_and_content_length() {
        let head =
            b"HTTP/1.1 200 OK\r\ncontent-type: image/png\r\nContent-Length: 1234\r\n\r\nbody";
        assert_eq!(
            response_head(head),
            Ok(Some((head.len() - 4, 200, Some(1234))))
        );
        let missing = b"HTTP/1.1 404 Not Found\r\n\r\n";
        assert_eq!(response_head(missing), Ok(Some((missing.len(), 404, None))));
        assert_eq!(response_head(b"HTTP/1.1 200 OK\r\nConte"), Ok(None));
        assert!(response_head(b"garbage\r\n\r\n").is_err());
    }
}
