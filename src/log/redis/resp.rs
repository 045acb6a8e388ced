//! RESP2, the Redis wire format, sans-I/O: commands are encoded into a
//! buffer, replies are decoded from one. [`decode`] answers `Ok(None)` on a
//! partial reply and the bytes consumed on a whole one, so a pipelined stream
//! of replies is taken one at a time from the front of the read buffer.
//!
//! Written here rather than taken from `redis-protocol`: what picochat needs
//! is the five RESP2 types over a `&[u8]` (about a hundred lines), and that
//! crate works on `bytes::Bytes` with `nom` and `cookie-factory` behind it.
//! No sockets live here (`link.rs`).

/// One reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `+OK`
    Status(String),
    /// `-ERR ...`: Redis refused the command (or a script raised an error).
    Error(String),
    Int(i64),
    /// `$-1` is `Nil`.
    Bulk(Vec<u8>),
    Nil,
    /// `*-1` is `Nil` too.
    Array(Vec<Value>),
}

/// The stream is not RESP: the link must be dropped.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// Deepest nesting accepted (Redis replies here are at most 3 deep).
const MAX_DEPTH: usize = 8;
/// Largest bulk string or array accepted (Redis' own proto-max-bulk-len is 512 MB).
const MAX_LEN: usize = 512 << 20;

/// Decodes one reply from the front of `buf`: `Ok(None)` if it is not all
/// there yet, else the reply and how many bytes it took.
pub fn decode(buf: &[u8]) -> Result<Option<(Value, usize)>, Malformed> {
    let mut pos = 0;
    match value(buf, &mut pos, 0)? {
        Some(v) => Ok(Some((v, pos))),
        None => Ok(None),
    }
}

fn line<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let rest = buf.get(*pos..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    *pos += end + 2;
    Some(&rest[..end])
}

fn int(digits: &[u8]) -> Result<i64, Malformed> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(Malformed("bad integer"))
}

fn len(digits: &[u8]) -> Result<Option<usize>, Malformed> {
    match int(digits)? {
        -1 => Ok(None),
        n if (0..=MAX_LEN as i64).contains(&n) => Ok(Some(n as usize)),
        _ => Err(Malformed("bad length")),
    }
}

fn value(buf: &[u8], pos: &mut usize, depth: usize) -> Result<Option<Value>, Malformed> {
    if depth > MAX_DEPTH {
        return Err(Malformed("nested too deep"));
    }
    let Some(&kind) = buf.get(*pos) else {
        return Ok(None);
    };
    let mut at = *pos + 1;
    let Some(head) = line(buf, &mut at) else {
        return Ok(None);
    };
    let text = || String::from_utf8_lossy(head).into_owned();
    let v = match kind {
        b'+' => Value::Status(text()),
        b'-' => Value::Error(text()),
        b':' => Value::Int(int(head)?),
        b'$' => match len(head)? {
            None => Value::Nil,
            Some(n) => {
                let Some(body) = buf.get(at..at + n + 2) else {
                    return Ok(None);
                };
                if &body[n..] != b"\r\n" {
                    return Err(Malformed("bulk string not ended by CRLF"));
                }
                at += n + 2;
                Value::Bulk(body[..n].to_vec())
            }
        },
        b'*' => match len(head)? {
            None => Value::Nil,
            Some(n) => {
                let mut items = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    match value(buf, &mut at, depth + 1)? {
                        Some(v) => items.push(v),
                        None => return Ok(None),
                    }
                }
                Value::Array(items)
            }
        },
        _ => return Err(Malformed("unknown reply type")),
    };
    *pos = at;
    Ok(Some(v))
}

/// Appends one command (an array of bulk strings) to `out`.
pub fn encode<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    push_len(out, b'*', args.len());
    for a in args {
        let a = a.as_ref();
        push_len(out, b'$', a.len());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

fn push_len(out: &mut Vec<u8>, kind: u8, n: usize) {
    out.push(kind);
    out.extend_from_slice(n.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
}

impl Value {
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(b) => Some(b),
            Value::Status(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// An integer, from `:n` or a bulk string of digits (Lua returns either).
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Int(n) => u64::try_from(*n).ok(),
            Value::Bulk(b) => std::str::from_utf8(b).ok()?.parse().ok(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(input: &[u8]) -> Value {
        let (v, used) = decode(input).unwrap().unwrap();
        assert_eq!(used, input.len());
        v
    }

    #[test]
    fn every_type_decodes() {
        assert_eq!(whole(b"+OK\r\n"), Value::Status("OK".into()));
        assert_eq!(whole(b"-ERR no\r\n"), Value::Error("ERR no".into()));
        assert_eq!(whole(b":-42\r\n"), Value::Int(-42));
        assert_eq!(
            whole(b"$5\r\nhe\r\no\r\n"),
            Value::Bulk(b"he\r\no".to_vec())
        );
        assert_eq!(whole(b"$-1\r\n"), Value::Nil);
        assert_eq!(whole(b"*-1\r\n"), Value::Nil);
        assert_eq!(
            whole(b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n"),
            Value::Array(vec![
                Value::Bulk(b"a".to_vec()),
                Value::Array(vec![Value::Int(1)])
            ])
        );
    }

    #[test]
    fn every_prefix_of_a_reply_is_partial_and_pipelined_replies_come_one_at_a_time() {
        let two = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\nabc\r\n+OK\r\n";
        let first = two.len() - 5;
        for cut in 0..first {
            assert_eq!(decode(&two[..cut]), Ok(None), "cut at {cut}");
        }
        let (_, used) = decode(two).unwrap().unwrap();
        assert_eq!(used, first);
        assert_eq!(
            decode(&two[used..]).unwrap().unwrap().0,
            Value::Status("OK".into())
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for bad in [
            &b"?x\r\n"[..],
            b"$abc\r\n",
            b"$-2\r\n",
            b"$2\r\nabcd",
            b":1x\r\n",
            b"*99999999999\r\n",
        ] {
            assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = "*1\r\n".repeat(20) + ":1\r\n";
        assert!(decode(deep.as_bytes()).is_err());
    }

    #[test]
    fn the_limits_are_errors_and_their_edges_are_not() {
        // Nesting: MAX_DEPTH levels of arrays are a reply, one more is not.
        let at = "*1\r\n".repeat(MAX_DEPTH) + ":1\r\n";
        assert_eq!(decode(at.as_bytes()).unwrap().unwrap().1, at.len());
        let past = "*1\r\n".repeat(MAX_DEPTH + 1) + ":1\r\n";
        assert_eq!(decode(past.as_bytes()), Err(Malformed("nested too deep")));
        // A bulk string of MAX_LEN is waited for; one byte more is refused at once.
        let at = format!("${MAX_LEN}\r\nabc");
        assert_eq!(decode(at.as_bytes()), Ok(None));
        let past = format!("${}\r\n", MAX_LEN + 1);
        assert_eq!(decode(past.as_bytes()), Err(Malformed("bad length")));
        assert_eq!(whole(b"$0\r\n\r\n"), Value::Bulk(Vec::new()));
        assert_eq!(whole(b"*0\r\n"), Value::Array(Vec::new()));
        assert_eq!(whole(b":-9223372036854775808\r\n"), Value::Int(i64::MIN));
    }

    #[test]
    fn commands_encode_as_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        encode(&mut out, &["SET", "k", ""]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
        assert_eq!(decode(&out).unwrap().unwrap().1, out.len());
    }
}
