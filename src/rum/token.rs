//! Measurement tokens: stateless, one per page view, bound to the key and
//! the client network they were issued to, valid for
//! `rum.token_lifetime`.
//!
//! A token is 24 bytes, `expiry (4, Unix seconds) | nonce (8, random) |
//! MAC (12)`, written as 48 lowercase hex digits (one DNS label). The MAC
//! is HMAC-SHA256 under the token secret over the key's id, the client
//! network, the expiry and the nonce, cut to 96 bits. The secret is
//! derived from the cluster key when there is a cluster, so every node
//! accepts every node's tokens; alone, it is random at each start (tokens
//! live two minutes). Used tokens are remembered until they expire, by
//! nonce ([`Used`]): a replay is refused.

use std::collections::HashMap;

use ring::hmac;

use crate::netblock::Network;
use crate::sightings::{TOKEN_LEN, Token};

/// Bytes of MAC kept.
const MAC_LEN: usize = 12;
/// Most used tokens remembered (about 24 bytes each, ~6 MiB with the
/// map's overhead): 2,000 beacons a second for two minutes.
pub const USED_CAP: usize = 1 << 18;

/// Why a token is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// Not made by this secret for this key and network, or not a token.
    Forged,
    /// Past its expiry.
    Expired,
}

/// Makes and checks tokens.
pub struct Minter {
    key: hmac::Key,
}

impl std::fmt::Debug for Minter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Minter(<redacted>)")
    }
}

/// A rum key's id: the first 8 bytes of its SHA-256 (the MAC binds a token
/// to it without the key itself in the MAC's input).
pub fn key_id(key: &str) -> [u8; 8] {
    let d = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let mut id = [0u8; 8];
    id.copy_from_slice(&d.as_ref()[..8]);
    id
}

impl Minter {
    /// Tokens under a secret derived from `shared` (the cluster key), or a
    /// random one.
    pub fn new(shared: Option<&[u8]>) -> Minter {
        let secret: Vec<u8> = match shared {
            Some(s) => {
                let k = hmac::Key::new(hmac::HMAC_SHA256, s);
                hmac::sign(&k, b"switchyard rum token secret v1")
                    .as_ref()
                    .to_vec()
            }
            None => {
                use ring::rand::SecureRandom;
                let mut b = [0u8; 32];
                if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
                    // No system randomness: still unguessable enough for
                    // two-minute tokens, and logged nowhere.
                    for chunk in b.chunks_mut(8) {
                        chunk.copy_from_slice(&fastrand::u64(..).to_le_bytes());
                    }
                }
                b.to_vec()
            }
        };
        Minter {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
        }
    }

    fn mac(&self, key: &[u8; 8], net: Network, head: &[u8]) -> [u8; MAC_LEN] {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(b"rum1");
        ctx.update(key);
        ctx.update(&net.key().to_be_bytes());
        ctx.update(head);
        let tag = ctx.sign();
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&tag.as_ref()[..MAC_LEN]);
        out
    }

    /// A new token for `key` and `net`, expiring at `expiry` (Unix s).
    pub fn issue(&self, key: &[u8; 8], net: Network, expiry: u32) -> Token {
        let mut t = [0u8; TOKEN_LEN];
        t[..4].copy_from_slice(&expiry.to_be_bytes());
        t[4..12].copy_from_slice(&fastrand::u64(..).to_le_bytes());
        let mac = self.mac(key, net, &t[..12]);
        t[12..].copy_from_slice(&mac);
        t
    }

    /// Whether `t` was issued for `key` and `net` and is not past its
    /// expiry at `now` (Unix s); its expiry when it is good.
    pub fn check(&self, t: &Token, key: &[u8; 8], net: Network, now: u32) -> Result<u32, Invalid> {
        let mac = self.mac(key, net, &t[..12]);
        if !same(&mac, &t[12..]) {
            return Err(Invalid::Forged);
        }
        let expiry = u32::from_be_bytes([t[0], t[1], t[2], t[3]]);
        if now > expiry {
            return Err(Invalid::Expired);
        }
        Ok(expiry)
    }
}

/// Whether `a` and `b` are equal, in time that depends on their length
/// only.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A token as its label: 48 lowercase hex digits.
pub fn to_hex(t: &Token) -> String {
    data_encoding::HEXLOWER.encode(t)
}

/// The token a string spells, if it is one.
pub fn from_hex(s: &str) -> Option<Token> {
    crate::sightings::token_of_label(s.as_bytes())
}

/// The nonce of a token: what [`Used`] remembers.
pub fn nonce(t: &Token) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&t[4..12]);
    u64::from_le_bytes(b)
}

/// Tokens used, by nonce, until they expire.
#[derive(Debug, Default)]
pub struct Used {
    seen: HashMap<u64, u32>,
}

/// What [`Used::take`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Take {
    /// First use: now remembered.
    First,
    /// Used before.
    Again,
    /// No room to remember it (every remembered token still live).
    Full,
}

impl Used {
    /// Marks the token with `nonce`, expiring at `expiry`, as used.
    pub fn take(&mut self, nonce: u64, expiry: u32, now: u32) -> Take {
        if self.seen.contains_key(&nonce) {
            return Take::Again;
        }
        if self.seen.len() >= USED_CAP {
            self.seen.retain(|_, e| *e >= now);
            if self.seen.len() >= USED_CAP {
                return Take::Full;
            }
        }
        self.seen.insert(nonce, expiry);
        Take::First
    }

    /// Tokens remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Nothing remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Network {
        s.parse().unwrap()
    }

    #[test]
    fn a_token_is_good_for_its_key_and_network_until_it_expires() {
        let m = Minter::new(None);
        let (k, n) = (key_id("key-one-0123456789"), net("192.0.2.0/24"));
        let t = m.issue(&k, n, 1000);
        assert_eq!(m.check(&t, &k, n, 999), Ok(1000));
        assert_eq!(m.check(&t, &k, n, 1000), Ok(1000));
        assert_eq!(m.check(&t, &k, n, 1001), Err(Invalid::Expired));
        assert_eq!(
            m.check(&t, &key_id("key-two-0123456789"), n, 999),
            Err(Invalid::Forged)
        );
        assert_eq!(
            m.check(&t, &k, net("192.0.3.0/24"), 999),
            Err(Invalid::Forged)
        );
        // A later expiry written over the token breaks its MAC.
        let mut longer = t;
        longer[..4].copy_from_slice(&5000u32.to_be_bytes());
        assert_eq!(m.check(&longer, &k, n, 999), Err(Invalid::Forged));
        // Another secret's token.
        assert_eq!(
            Minter::new(None).check(&t, &k, n, 999),
            Err(Invalid::Forged)
        );
        assert_eq!(from_hex(&to_hex(&t)), Some(t));
        assert_eq!(to_hex(&t).len(), 48);
    }

    #[test]
    fn nodes_with_one_cluster_key_accept_each_others_tokens() {
        let (a, b) = (
            Minter::new(Some(b"k".as_slice())),
            Minter::new(Some(b"k".as_slice())),
        );
        let (k, n) = (key_id("key-one-0123456789"), net("2001:db8:aa00::/56"));
        assert!(b.check(&a.issue(&k, n, 10), &k, n, 5).is_ok());
    }

    #[test]
    fn a_token_is_used_once() {
        let mut u = Used::default();
        assert_eq!(u.take(7, 100, 50), Take::First);
        assert_eq!(u.take(7, 100, 60), Take::Again);
        assert_eq!(u.take(8, 100, 60), Take::First);
        assert_eq!(u.len(), 2);
    }
}
