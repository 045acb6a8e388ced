//! Signed tokens (`--auth token`): the operator's own web app signs a JWT
//! with HS256 and a secret it shares with picochat (`--jwt-secret-file`),
//! Centrifugo's connection-token convention: `sub` is the user's id, `exp`
//! is required, `name` is the name shown, and an optional `rooms` lists the
//! only rooms the user may join. The JWS compact form is checked here
//! (RFC 7515/7519): the header must say `HS256` (so `alg: none` or any other
//! algorithm is refused, whatever the signature), the HMAC-SHA-256 is
//! compared in constant time, then the claims get picochat's rules. The
//! clock is passed in: no time is read here.

use super::protocol;
use data_encoding::BASE64URL_NOPAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::fmt;

/// Longest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 4096;
/// Clock difference allowed on `exp` and `nbf`.
pub const LEEWAY_SECS: i64 = 60;

/// The HS256 key, never printed.
pub struct TokenKey(Hmac<Sha256>);

impl TokenKey {
    pub fn new(secret: &[u8]) -> TokenKey {
        // HMAC takes a key of any length (a long one is hashed first).
        TokenKey(Hmac::new_from_slice(secret).unwrap_or_else(|_| unreachable!()))
    }

    /// HMAC-SHA256 of `data` with this key.
    pub fn mac(&self, data: &[u8]) -> [u8; 32] {
        let mut m = self.0.clone();
        m.update(data);
        m.finalize().into_bytes().into()
    }
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("TokenKey(***)")
    }
}

/// Who a valid token says the user is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenUser {
    /// `sub`: the operator's id for the user (what owns its messages).
    pub subject: String,
    /// `name`, checked like any username.
    pub name: String,
    /// `rooms`: the only rooms the user may join, when given (checked like room names).
    pub rooms: Option<Vec<String>>,
}

/// The JOSE header: only the algorithm matters, and extensions we would
/// have to understand (`crit`) are refused.
#[derive(serde::Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

#[derive(serde::Deserialize)]
struct Claims {
    /// NumericDate: seconds since the epoch (a fraction allowed, RFC 7519 §2).
    exp: Option<f64>,
    nbf: Option<f64>,
    sub: String,
    name: String,
    #[serde(default)]
    rooms: Option<Vec<String>>,
}

/// Why a token was refused (for the server's log; the client only hears `bad_token`).
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    TooLong,
    Malformed,
    Signature,
    Expired,
    NotYet,
    Claims,
}

/// Checks `token` at wall-clock `now_ms`.
pub fn verify(key: &TokenKey, token: &str, now_ms: u64) -> Result<TokenUser, Refusal> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Refusal::TooLong);
    }
    let mut parts = token.split('.');
    let (Some(head), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed);
    };
    let decode = |part: &str| {
        BASE64URL_NOPAD
            .decode(part.as_bytes())
            .map_err(|_| Refusal::Malformed)
    };
    let header: Header = serde_json::from_slice(&decode(head)?).map_err(|_| Refusal::Malformed)?;
    if header.alg != "HS256" || header.crit.is_some() {
        return Err(Refusal::Signature);
    }
    let signature = decode(signature)?;
    // The signing input is the first two parts as they arrived, with their dot.
    let mut mac = key.0.clone();
    mac.update(&token.as_bytes()[..head.len() + 1 + payload.len()]);
    mac.verify_slice(&signature)
        .map_err(|_| Refusal::Signature)?;
    let claims: Claims = serde_json::from_slice(&decode(payload)?).map_err(|_| Refusal::Claims)?;
    let now = now_ms as f64 / 1000.0;
    let leeway = LEEWAY_SECS as f64;
    match claims.exp {
        None => return Err(Refusal::Claims),
        Some(exp) if now > exp + leeway => return Err(Refusal::Expired),
        Some(_) => {}
    }
    if claims.nbf.is_some_and(|nbf| nbf > now + leeway) {
        return Err(Refusal::NotYet);
    }
    let name = protocol::username(&claims.name).map_err(|_| Refusal::Claims)?;
    if claims.sub.is_empty() || claims.sub.len() > 256 {
        return Err(Refusal::Claims);
    }
    let rooms = match &claims.rooms {
        None => None,
        Some(list) => Some(
            list.iter()
                .map(|r| protocol::room_name(r).ok_or(Refusal::Claims))
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    Ok(TokenUser {
        subject: claims.sub,
        name: name.to_string(),
        rooms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use jwt_compact::alg::{Hs256, Hs256Key};
    use jwt_compact::{AlgorithmExt, Claims, Header};

    const SECRET: &[u8] = b"a-secret-of-at-least-16-bytes";
    const NOW: u64 = 1_800_000_000_000;

    fn sign(claims: serde_json::Value, exp: Option<i64>, nbf: Option<i64>) -> String {
        let at = |s: i64| DateTime::<Utc>::from_timestamp(s, 0).unwrap();
        let mut c = Claims::new(claims);
        c.expiration = exp.map(at);
        c.not_before = nbf.map(at);
        Hs256
            .token(&Header::empty(), &c, &Hs256Key::new(SECRET))
            .unwrap()
    }

    fn now_s() -> i64 {
        (NOW / 1000) as i64
    }

    #[test]
    fn a_good_token_gives_its_user() {
        let key = TokenKey::new(SECRET);
        let t = sign(
            serde_json::json!({"sub": "u-42", "name": " Ada ", "rooms": ["Dev", "ops"]}),
            Some(now_s() + 3600),
            Some(now_s() - 10),
        );
        assert_eq!(
            verify(&key, &t, NOW),
            Ok(TokenUser {
                subject: "u-42".into(),
                name: "Ada".into(),
                rooms: Some(vec!["dev".into(), "ops".into()]),
            })
        );
    }

    #[test]
    fn expired_early_forged_unsigned_and_malformed_tokens_are_refused() {
        let key = TokenKey::new(SECRET);
        let user = serde_json::json!({"sub": "u", "name": "ann"});
        let exp = |d| sign(user.clone(), Some(now_s() + d), None);
        assert!(
            verify(&key, &exp(-LEEWAY_SECS + 1), NOW).is_ok(),
            "within the leeway"
        );
        assert_eq!(
            verify(&key, &exp(-LEEWAY_SECS - 1), NOW),
            Err(Refusal::Expired)
        );
        assert_eq!(
            verify(&key, &sign(user.clone(), None, None), NOW),
            Err(Refusal::Claims),
            "exp required"
        );
        let early = sign(
            user.clone(),
            Some(now_s() + 3600),
            Some(now_s() + LEEWAY_SECS + 5),
        );
        assert_eq!(verify(&key, &early, NOW), Err(Refusal::NotYet));
        // Signed with another secret.
        let other = Hs256
            .token(
                &Header::empty(),
                &Claims::new(user.clone()),
                &Hs256Key::new(b"another-secret-entirely"),
            )
            .unwrap();
        assert_eq!(verify(&key, &other, NOW), Err(Refusal::Signature));
        // `alg: none` and another algorithm, with the same claims.
        let body = exp(3600).split('.').nth(1).unwrap().to_string();
        // Headers {"alg":"none","typ":"JWT"} and {"alg":"HS512","typ":"JWT"}, base64url.
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{body}.");
        assert_eq!(
            verify(&key, &none, NOW),
            Err(Refusal::Signature),
            "alg none"
        );
        let hs512 = format!("eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.{body}.c2ln");
        assert_eq!(
            verify(&key, &hs512, NOW),
            Err(Refusal::Signature),
            "another algorithm"
        );
        for bad in ["", "a.b", "not a token", "a.b.c.d"] {
            assert!(verify(&key, bad, NOW).is_err(), "{bad:?}");
        }
        let long = format!("{}{}", exp(3600), "A".repeat(MAX_TOKEN_BYTES));
        assert_eq!(verify(&key, &long, NOW), Err(Refusal::TooLong));
        // Claims that break picochat's rules.
        for claims in [
            serde_json::json!({"sub": "u", "name": "bad\u{7}name"}),
            serde_json::json!({"sub": "u", "name": ""}),
            serde_json::json!({"sub": "", "name": "ann"}),
            serde_json::json!({"name": "ann"}),
            serde_json::json!({"sub": "u", "name": "ann", "rooms": ["not a room"]}),
        ] {
            let t = sign(claims.clone(), Some(now_s() + 3600), None);
            assert_eq!(verify(&key, &t, NOW), Err(Refusal::Claims), "{claims}");
        }
        assert_eq!(format!("{key:?}"), "TokenKey(***)");
    }
}
