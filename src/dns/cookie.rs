//! DNS cookies (RFC 7873) with the interoperable server cookie of RFC 9018.
//!
//! A client sends a random client cookie; the server answers with a server
//! cookie that only it can make: `version 1 | reserved | timestamp | hash`,
//! the hash being SipHash-2-4 over the client cookie, the first half of the
//! server cookie and the client's address, keyed with the server secret. A
//! client that returns a valid server cookie has proved it receives the
//! answers sent to its address: it is not a spoofed victim, so rate
//! limiting does not apply to it.
//!
//! Secrets rotate without breaking clients: cookies made with the previous
//! secret stay valid (and are answered with a fresh one), and every server
//! cookie expires after an hour (RFC 9018 §4.3). Servers that share a
//! secret (anycast, a cluster) accept each other's cookies.

use std::hash::Hasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};

use siphasher::sip::SipHasher24;

use super::wire::Cookie;

pub use crate::proto::cookie::{FOREVER, LIFETIME, Secret, Secrets};

/// What a query's cookie turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Only a client cookie (a first query, or a client that lost its
    /// server cookie).
    ClientOnly,
    /// A server cookie we made for this client, not expired.
    Valid,
    /// A server cookie we did not make, made for another address, or
    /// expired.
    Invalid,
}

/// Seconds a cookie may be stamped ahead of our clock (clock skew between
/// servers sharing a secret).
const SKEW: u32 = 300;
/// Cookies older than this are replaced by a fresh one in the response.
const RENEW_AFTER: u32 = 1800;

/// The cookie of the response to a query carrying `cookie` from `client`
/// at `now` (seconds since the epoch, mod 2^32): the verdict, and the server
/// cookie to send (the client's own when it is valid and fresh).
pub fn respond(
    secrets: &Secrets,
    cookie: &Cookie,
    client: IpAddr,
    now: u32,
) -> (Verdict, [u8; 16]) {
    let verdict = match cookie.server() {
        None => Verdict::ClientOnly,
        Some(server) => match check(secrets, &cookie.client, server, client, now) {
            Some(reuse) => {
                if let Some(same) = reuse {
                    return (Verdict::Valid, same);
                }
                Verdict::Valid
            }
            None => Verdict::Invalid,
        },
    };
    (
        verdict,
        make(&secrets.current, &cookie.client, client, now, [0; 3]),
    )
}

/// A worker's memory of the server cookies it made or checked recently,
/// so a client asking many times a second costs one SipHash, not one per
/// query. Direct-mapped by client cookie and address. An entry remembers
/// the secret that made its server cookie (always the current one), so a
/// reload that changes the secret invalidates it.
pub struct Cache {
    entries: Box<[Entry; CACHE_SLOTS]>,
}

#[derive(Clone, Copy, Default)]
struct Entry {
    secret: Secret,
    client_cookie: [u8; 8],
    client: u128,
    server: [u8; 16],
}

const CACHE_SLOTS: usize = 64;

impl Default for Cache {
    fn default() -> Self {
        Cache {
            entries: Box::new([Entry::default(); CACHE_SLOTS]),
        }
    }
}

impl Cache {
    /// [`respond`], remembering the result: the same client in the same
    /// second, or returning the cookie it was given, is answered from
    /// memory.
    pub fn respond(
        &mut self,
        secrets: &Secrets,
        cookie: &Cookie,
        client: IpAddr,
        now: u32,
    ) -> (Verdict, [u8; 16]) {
        let ip = match client.to_canonical() {
            IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
            IpAddr::V6(v6) => u128::from(v6),
        };
        let slot = (u64::from_le_bytes(cookie.client) ^ ip as u64 ^ (ip >> 64) as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            >> 58;
        let e = &mut self.entries[slot as usize];
        if e.secret == secrets.current && e.client_cookie == cookie.client && e.client == ip {
            let stamp = u32::from_be_bytes([e.server[4], e.server[5], e.server[6], e.server[7]]);
            match cookie.server() {
                None if stamp == now => return (Verdict::ClientOnly, e.server),
                Some(s) if s == e.server && now.wrapping_sub(stamp) <= RENEW_AFTER => {
                    return (Verdict::Valid, e.server);
                }
                _ => {}
            }
        }
        let (verdict, server) = respond(secrets, cookie, client, now);
        *e = Entry {
            secret: secrets.current,
            client_cookie: cookie.client,
            client: ip,
            server,
        };
        (verdict, server)
    }
}

/// `Some(Some(cookie))`: valid, and fresh enough to send back as is;
/// `Some(None)`: valid, renew it; `None`: not valid.
fn check(
    secrets: &Secrets,
    client_cookie: &[u8; 8],
    server: &[u8],
    client: IpAddr,
    now: u32,
) -> Option<Option<[u8; 16]>> {
    if server.len() != 16 || server[0] != 1 {
        return None;
    }
    let stamp = u32::from_be_bytes([server[4], server[5], server[6], server[7]]);
    let age = now.wrapping_sub(stamp);
    let ahead = stamp.wrapping_sub(now);
    if age > LIFETIME && ahead > SKEW {
        return None;
    }
    let mut got = [0u8; 16];
    got.copy_from_slice(server);
    let reserved = [server[1], server[2], server[3]];
    let previous = secrets
        .previous
        .as_ref()
        .filter(|_| secrets.previous_until == FOREVER || now <= secrets.previous_until);
    for (i, secret) in std::iter::once(&secrets.current)
        .chain(previous)
        .enumerate()
    {
        if make(secret, client_cookie, client, stamp, reserved) == got {
            let fresh = i == 0 && (age <= RENEW_AFTER || ahead <= SKEW);
            return Some(fresh.then_some(got));
        }
    }
    None
}

/// The server cookie for `client_cookie` from `client` stamped `stamp`.
fn make(
    secret: &Secret,
    client_cookie: &[u8; 8],
    client: IpAddr,
    stamp: u32,
    reserved: [u8; 3],
) -> [u8; 16] {
    let mut cookie = [0u8; 16];
    cookie[0] = 1;
    cookie[1..4].copy_from_slice(&reserved);
    cookie[4..8].copy_from_slice(&stamp.to_be_bytes());
    // One contiguous input, hashed in one call: client cookie, version,
    // reserved, timestamp, client address.
    let mut input = [0u8; 32];
    input[..8].copy_from_slice(client_cookie);
    input[8..16].copy_from_slice(&cookie[..8]);
    let len = match client.to_canonical() {
        IpAddr::V4(v4) => {
            input[16..20].copy_from_slice(&v4.octets());
            20
        }
        IpAddr::V6(v6) => {
            input[16..32].copy_from_slice(&v6.octets());
            32
        }
    };
    let mut h = SipHasher24::new_with_key(secret);
    h.write(&input[..len]);
    cookie[8..].copy_from_slice(&h.finish().to_le_bytes());
    cookie
}

/// Seconds since the epoch, mod 2^32 (the cookie timestamp), from a clock
/// a background thread advances every 100 ms: reading it costs one relaxed
/// load on the answer path, and cookies only need the second.
pub fn now() -> u32 {
    static NOW: AtomicU32 = AtomicU32::new(0);
    static TICKER: std::sync::Once = std::sync::Once::new();
    let wall = || crate::clock::unix_secs(std::time::SystemTime::now());
    TICKER.call_once(|| {
        NOW.store(wall(), Ordering::Relaxed);
        let _ = std::thread::Builder::new()
            .name("cookie-clock".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    NOW.store(wall(), Ordering::Relaxed);
                }
            });
    });
    NOW.load(Ordering::Relaxed)
}

/// Parses a secret written as 32 hexadecimal digits.
pub fn parse_secret(text: &str) -> Result<Secret, String> {
    let t = text.trim();
    if t.len() != 32 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "a cookie secret is 32 hexadecimal digits (128 bits), not {} characters; make one with `head -c16 /dev/urandom | xxd -p`",
            t.len()
        ));
    }
    let mut s = [0u8; 16];
    for (i, b) in s.iter_mut().enumerate() {
        *b = u8::from_str_radix(&t[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    fn cookie(s: &str) -> Cookie {
        let b = hex(s);
        let mut c = Cookie {
            client: [0; 8],
            server: [0; 32],
            server_len: (b.len() - 8) as u8,
        };
        c.client.copy_from_slice(&b[..8]);
        c.server[..b.len() - 8].copy_from_slice(&b[8..]);
        c
    }

    fn secrets(current: &str, previous: Option<&str>) -> Secrets {
        Secrets {
            current: parse_secret(current).unwrap(),
            previous: previous.map(|p| parse_secret(p).unwrap()),
            previous_until: FOREVER,
            configured: true,
        }
    }

    /// Rotations by reload: the replaced secret is accepted for an hour and
    /// never inherited further; removing a configured previous secret or
    /// the secret itself retires them.
    #[test]
    fn secrets_are_retired() {
        let a = [1u8; 16];
        let b = [2u8; 16];
        let c = [3u8; 16];
        let t = 1_000_000;
        let s1 = Secrets::next(Some(a), None, None, t);
        assert_eq!((s1.current, s1.previous), (a, None));
        // A -> B: A accepted for an hour.
        let s2 = Secrets::next(Some(b), None, Some(&s1), t + 10);
        assert_eq!(
            (s2.current, s2.previous, s2.previous_until),
            (b, Some(a), t + 10 + 3600)
        );
        // An unchanged reload keeps it until then, not after.
        let s3 = Secrets::next(Some(b), None, Some(&s2), t + 20);
        assert_eq!(s3.previous, Some(a));
        let s4 = Secrets::next(Some(b), None, Some(&s3), t + 4000);
        assert_eq!(s4.previous, None);
        // B -> C: only B is accepted, never A.
        let s5 = Secrets::next(Some(c), None, Some(&s3), t + 30);
        assert_eq!(s5.previous, Some(b));
        // A configured previous secret lasts while configured, and goes
        // when it is removed.
        let s6 = Secrets::next(Some(b), Some(a), Some(&s1), t);
        assert_eq!((s6.previous, s6.previous_until), (Some(a), FOREVER));
        let s7 = Secrets::next(Some(b), None, Some(&s6), t + 5);
        assert_eq!(s7.previous, None);
        // Removing the configured secret: a random one, the old one for an
        // hour; a random one is kept across reloads.
        let s8 = Secrets::next(None, None, Some(&s7), t + 6);
        assert!(!s8.configured && s8.current != b && s8.previous == Some(b));
        let s9 = Secrets::next(None, None, Some(&s8), t + 7);
        assert_eq!(s9.current, s8.current);
        // A retired previous secret's cookies are refused.
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let made = make(&a, &[5; 8], ip, t + 100, [0; 3]);
        let mut ck = Cookie {
            client: [5; 8],
            server: [0; 32],
            server_len: 16,
        };
        ck.server[..16].copy_from_slice(&made);
        assert_eq!(respond(&s2, &ck, ip, t + 200).0, Verdict::Valid);
        let expired = Secrets {
            previous_until: t + 150,
            ..s2.clone()
        };
        assert_eq!(respond(&expired, &ck, ip, t + 200).0, Verdict::Invalid);
        assert_eq!(respond(&s4, &ck, ip, t + 200).0, Verdict::Invalid);
    }

    /// RFC 9018 Appendix A, every example.
    #[test]
    fn rfc_9018_test_vectors() {
        let s = secrets("e5e973e5a6b2a43f48e7dc849e37bfcf", None);
        let ip: IpAddr = "198.51.100.100".parse().unwrap();
        // A.1: a new server cookie for a client cookie alone.
        let (v, c) = respond(&s, &cookie("2464c4abcf10c957"), ip, 1559731985);
        assert_eq!(v, Verdict::ClientOnly);
        assert_eq!(c.to_vec(), hex("010000005cf79f111f8130c3eee29480"));
        // A.2: 40 minutes later it is still valid, and renewed.
        let (v, c) = respond(
            &s,
            &cookie("2464c4abcf10c957010000005cf79f111f8130c3eee29480"),
            ip,
            1559734385,
        );
        assert_eq!(v, Verdict::Valid);
        assert_eq!(c.to_vec(), hex("010000005cf7a871d4a564a1442aca77"));
        // A.3: another client's cookie, with reserved bits set by the
        // server that made it (they are part of the hash). It is valid
        // while fresh; the example's reply comes 1h52m after it was made,
        // past the one-hour lifetime, so that reply is a new cookie.
        let ip3: IpAddr = "203.0.113.203".parse().unwrap();
        let old = cookie("fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5");
        assert_eq!(respond(&s, &old, ip3, 0x5cf78f71 + 60).0, Verdict::Valid);
        let (v, c) = respond(&s, &old, ip3, 1559734700);
        assert_eq!(v, Verdict::Invalid);
        assert_eq!(c.to_vec(), hex("010000005cf7a9acf73a7810aca2381e"));
        // A.4: IPv6, after a rotation: the old secret's cookie is accepted
        // and replaced by one made with the new secret.
        let s = secrets(
            "445536bcd2513298075a5d379663c962",
            Some("dd3bdf9344b678b185a6f5cb60fca715"),
        );
        let ip6: IpAddr = "2001:db8:220:1:59de:d0f4:8769:82b8".parse().unwrap();
        let (v, c) = respond(
            &s,
            &cookie("22681ab97d52c298010000005cf7c57926556bd0934c72f8"),
            ip6,
            1559741961,
        );
        assert_eq!(v, Verdict::Valid);
        assert_eq!(c.to_vec(), hex("010000005cf7c609a6bb79d16625507a"));
    }

    /// The cache answers exactly as `respond` does.
    #[test]
    fn the_cache_agrees_with_respond() {
        let s = std::sync::Arc::new(secrets("e5e973e5a6b2a43f48e7dc849e37bfcf", None));
        let other = std::sync::Arc::new(secrets("00000000000000000000000000000001", None));
        let mut cache = Cache::default();
        let mut rng = fastrand::Rng::with_seed(4);
        let ips: Vec<IpAddr> = vec!["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap()];
        let mut issued: Vec<(Cookie, IpAddr)> = Vec::new();
        let t0 = 1_700_000_000u32;
        for i in 0..20_000u32 {
            let now = t0 + i / 7;
            let ip = ips[rng.usize(..2)];
            let sec = if rng.u8(..10) == 0 { &other } else { &s };
            let c = match rng.u8(..4) {
                0 if !issued.is_empty() => issued[rng.usize(..issued.len())].0,
                1 => {
                    let mut c = cookie("0102030405060708");
                    c.client[0] = rng.u8(..4);
                    c
                }
                _ => {
                    let mut c = cookie("0102030405060708ffffffffffffffffffffffffffffffff");
                    c.client[0] = rng.u8(..4);
                    c.server[15] = rng.u8(..);
                    c
                }
            };
            let want = respond(sec, &c, ip, now);
            assert_eq!(cache.respond(sec, &c, ip, now), want, "query {i}");
            let mut back = c;
            back.server[..16].copy_from_slice(&want.1);
            back.server_len = 16;
            issued.push((back, ip));
        }
    }

    #[test]
    fn invalid_cookies() {
        let s = secrets("e5e973e5a6b2a43f48e7dc849e37bfcf", None);
        let ip: IpAddr = "198.51.100.100".parse().unwrap();
        let good = "2464c4abcf10c957010000005cf79f111f8130c3eee29480";
        let at = 1559731985;
        assert_eq!(respond(&s, &cookie(good), ip, at).0, Verdict::Valid);
        // Fresh: echoed as is.
        assert_eq!(
            respond(&s, &cookie(good), ip, at).1.to_vec(),
            hex(&good[16..])
        );
        // Another address, an hour and a second later, five minutes and a
        // second early, a flipped bit, another secret.
        let other: IpAddr = "198.51.100.101".parse().unwrap();
        assert_eq!(respond(&s, &cookie(good), other, at).0, Verdict::Invalid);
        assert_eq!(
            respond(&s, &cookie(good), ip, at + 3601).0,
            Verdict::Invalid
        );
        assert_eq!(respond(&s, &cookie(good), ip, at + 3600).0, Verdict::Valid);
        assert_eq!(respond(&s, &cookie(good), ip, at - 301).0, Verdict::Invalid);
        assert_eq!(respond(&s, &cookie(good), ip, at - 300).0, Verdict::Valid);
        let flipped = good.replace("eee29480", "eee29481");
        assert_eq!(respond(&s, &cookie(&flipped), ip, at).0, Verdict::Invalid);
        let s2 = secrets("00000000000000000000000000000001", None);
        assert_eq!(respond(&s2, &cookie(good), ip, at).0, Verdict::Invalid);
        // A server cookie of another size or version is not ours.
        let short = "2464c4abcf10c9570100000011111111";
        assert_eq!(respond(&s, &cookie(short), ip, at).0, Verdict::Invalid);
    }

    #[test]
    fn secrets_parse_as_hex_and_never_print() {
        assert!(parse_secret("e5e973e5a6b2a43f48e7dc849e37bfcf").is_ok());
        assert!(parse_secret("e5e973e5").is_err());
        assert!(parse_secret("zz e973e5a6b2a43f48e7dc849e37bfcf").is_err());
        let s = secrets("e5e973e5a6b2a43f48e7dc849e37bfcf", None);
        assert!(!format!("{s:?}").contains("e5"));
        assert_ne!(Secrets::random().current, Secrets::random().current);
    }
}
