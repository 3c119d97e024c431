//! Gossip over UDP, sealed with the cluster key: chitchat's messages, each
//! encrypted and authenticated with ChaCha20-Poly1305 (`ring`), under a key
//! derived from the configured secret with HKDF-SHA256.
//!
//! A datagram is `MAGIC | count | index | message id | nonce | ciphertext |
//! tag`, each sealed on its own with its header as associated data. Each
//! plaintext starts with the sender's advertised address and the time it
//! was sealed:
//! a packet whose source address differs is dropped (a replayed packet
//! cannot make a node answer a third party), and so is one sealed more
//! than [`MAX_AGE`] away from now (stale replays). chitchat fills a
//! message up to the largest UDP payload, so the few bytes sealing adds
//! can take a message over it: such a message goes as two datagrams, each
//! authenticated before it is kept.
//!
//! Nothing about a packet is kept before it authenticates; at most 16
//! authenticated halves wait for their other half (bounded memory whatever
//! arrives). Rejected packets are counted by reason and logged at most
//! once per 10 s.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use chitchat::transport::{Socket, Transport};
use chitchat::{ChitchatMessage, Deserializable, Serializable};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use tracing::warn;

/// First bytes of every datagram (and the AEAD's associated data).
const MAGIC: &[u8; 4] = b"SYG1";
/// MAGIC, count, index, message id.
const HEADER: usize = 4 + 1 + 1 + 4;
/// Largest UDP payload (IPv4).
const MAX_DATAGRAM: usize = 65_507;
/// Largest chunk of a sealed message in one datagram.
const CHUNK: usize = MAX_DATAGRAM - HEADER - SEAL - PREFIX;
/// Sender address (family, 16 address bytes, port) and sealing time (ms).
const PREFIX: usize = 1 + 16 + 2 + 8;
/// Nonce and tag.
const SEAL: usize = 12 + 16;
/// Packets sealed further than this from the receiver's clock are stale.
pub const MAX_AGE: Duration = Duration::from_secs(120);
/// First halves of split messages kept while waiting for the second.
const PENDING: usize = 16;
/// How long a first half waits.
const PENDING_FOR: Duration = Duration::from_secs(2);
/// Rejected packets are logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Why a packet was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// Not ours, cut short, or a chunk without its other half.
    Malformed = 0,
    /// Fails authentication: another key, or tampered with.
    Auth = 1,
    /// Authentic, but from another address than the sender's.
    Address = 2,
    /// Authentic, but sealed too long ago (or in the future).
    Stale = 3,
}

impl Reject {
    /// Every reason, in declaration order.
    pub const ALL: [Reject; 4] = [
        Reject::Malformed,
        Reject::Auth,
        Reject::Address,
        Reject::Stale,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        crate::metrics::GOSSIP_REJECTS[self as usize]
    }
}

pub use crate::metrics::GossipStats as Stats;

/// The cluster key, ready to seal and open.
pub struct Sealer {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl Sealer {
    /// Derives the AEAD key from the configured secret.
    pub fn new(secret: &[u8]) -> Sealer {
        struct Len(usize);
        impl ring::hkdf::KeyType for Len {
            fn len(&self) -> usize {
                self.0
            }
        }
        let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"switchyard cluster gossip v1")
            .extract(secret);
        let mut bytes = [0u8; 32];
        // Cannot fail: 32 bytes is well within HKDF-SHA256's output limit.
        if let Ok(okm) = prk.expand(&[b"chacha20-poly1305"], Len(32)) {
            let _ = okm.fill(&mut bytes);
        }
        let key = LessSafeKey::new(
            UnboundKey::new(&CHACHA20_POLY1305, &bytes).unwrap_or_else(|_| unreachable!()),
        );
        Sealer {
            key,
            rng: SystemRandom::new(),
        }
    }

    /// Appends `nonce | seal(from, now, payload) | tag` to `out`, binding
    /// `header` (sent in the clear) as associated data.
    pub fn seal(
        &self,
        header: &[u8],
        from: SocketAddr,
        now: SystemTime,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) {
        let mut nonce = [0u8; 12];
        let _ = self.rng.fill(&mut nonce);
        out.extend_from_slice(&nonce);
        let start = out.len();
        encode_addr(from, out);
        out.extend_from_slice(&crate::clock::unix_millis(now).to_be_bytes());
        out.extend_from_slice(payload);
        let mut body = out.split_off(start);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(header),
                &mut body,
            )
            .unwrap_or_else(|_| unreachable!());
        out.extend_from_slice(&body);
        out.extend_from_slice(tag.as_ref());
    }

    /// Opens a sealed message from `from`, checking its sender and age;
    /// returns the payload.
    pub fn open<'a>(
        &self,
        header: &[u8],
        sealed: &'a mut [u8],
        from: SocketAddr,
        now: SystemTime,
    ) -> Result<&'a [u8], Reject> {
        if sealed.len() < SEAL + PREFIX {
            return Err(Reject::Malformed);
        }
        let (nonce, body) = sealed.split_at_mut(12);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Reject::Malformed)?;
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(header), body)
            .map_err(|_| Reject::Auth)?;
        let (prefix, payload) = plain.split_at(PREFIX);
        // A dual-stack socket (`[::]`) sees IPv4 peers as ::ffff:a.b.c.d.
        let canonical = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
        if decode_addr(&prefix[..19]).map(canonical) != Some(canonical(from)) {
            return Err(Reject::Address);
        }
        let sealed_at = u64::from_be_bytes(prefix[19..27].try_into().unwrap_or_default());
        let now = crate::clock::unix_millis(now);
        if now.abs_diff(sealed_at) > MAX_AGE.as_millis() as u64 {
            return Err(Reject::Stale);
        }
        Ok(payload)
    }
}

fn encode_addr(a: SocketAddr, out: &mut Vec<u8>) {
    let (family, ip) = match a.ip() {
        IpAddr::V4(v4) => (4u8, v4.to_ipv6_mapped().octets()),
        IpAddr::V6(v6) => (6u8, v6.octets()),
    };
    out.push(family);
    out.extend_from_slice(&ip);
    out.extend_from_slice(&a.port().to_be_bytes());
}

fn decode_addr(b: &[u8]) -> Option<SocketAddr> {
    let ip: [u8; 16] = b.get(1..17)?.try_into().ok()?;
    let ip = std::net::Ipv6Addr::from(ip);
    let ip = match b[0] {
        4 => IpAddr::V4(ip.to_ipv4_mapped()?),
        6 => IpAddr::V6(ip),
        _ => return None,
    };
    let port = u16::from_be_bytes(b.get(17..19)?.try_into().ok()?);
    Some(SocketAddr::new(ip, port))
}

/// Opens sealed UDP sockets for chitchat.
pub struct SealedUdp {
    sealer: Arc<Sealer>,
    advertise: SocketAddr,
    stats: Arc<Stats>,
}

impl SealedUdp {
    /// Sealed gossip as `advertise`, counted into `stats`.
    pub fn new(secret: &[u8], advertise: SocketAddr, stats: Arc<Stats>) -> SealedUdp {
        SealedUdp {
            sealer: Arc::new(Sealer::new(secret)),
            advertise,
            stats,
        }
    }
}

#[async_trait]
impl Transport for SealedUdp {
    async fn open(&self, listen: SocketAddr) -> anyhow::Result<Box<dyn Socket>> {
        let socket = tokio::net::UdpSocket::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen} (cluster.listen): {e}"))?;
        Ok(Box::new(SealedSocket {
            socket,
            sealer: self.sealer.clone(),
            advertise: self.advertise,
            stats: self.stats.clone(),
            plain: Vec::with_capacity(MAX_DATAGRAM),
            datagrams: Vec::new(),
            recv: vec![0; MAX_DATAGRAM + 1].into_boxed_slice(),
            reassembly: Reassembly::default(),
            last_log: None,
            unlogged: 0,
        }))
    }
}

/// An authenticated half of a message waiting for the other half.
struct Pending {
    from: SocketAddr,
    id: u32,
    index: u8,
    at: Instant,
    chunk: Vec<u8>,
}

struct SealedSocket {
    socket: tokio::net::UdpSocket,
    sealer: Arc<Sealer>,
    advertise: SocketAddr,
    stats: Arc<Stats>,
    plain: Vec<u8>,
    datagrams: Vec<Vec<u8>>,
    recv: Box<[u8]>,
    reassembly: Reassembly,
    last_log: Option<Instant>,
    unlogged: u64,
}

impl SealedSocket {
    fn reject(&mut self, why: Reject, from: SocketAddr) {
        self.stats.rejected[why as usize].fetch_add(1, Ordering::Relaxed);
        self.unlogged += 1;
        if self.last_log.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            let hint = match why {
                Reject::Auth => {
                    "; a node with another cluster.key (every node needs the same), or tampered packets"
                }
                Reject::Address => {
                    "; packets from another address than the sender advertises (NAT between nodes, or a replay)"
                }
                Reject::Stale => {
                    "; clocks more than 2 minutes apart (run NTP on every node), or a replay"
                }
                Reject::Malformed => "; not Switchyard gossip",
            };
            warn!(from = %from, reason = why.as_str(), dropped = self.unlogged, "gossip packets dropped (counted in switchyard_cluster_gossip_rejected_total){hint}");
            self.last_log = Some(Instant::now());
            self.unlogged = 0;
        }
    }

    /// One datagram: a whole message, or half of one.
    fn accept(&mut self, len: usize, from: SocketAddr) -> Option<ChitchatMessage> {
        let result =
            self.reassembly
                .accept(&self.sealer, &mut self.recv[..len], from, SystemTime::now());
        let plain = match result {
            Ok(Some(plain)) => plain,
            Ok(None) => {
                self.stats
                    .bytes_received
                    .fetch_add(len as u64, Ordering::Relaxed);
                return None;
            }
            Err(why) => {
                self.reject(why, from);
                return None;
            }
        };
        let mut buf = plain;
        match ChitchatMessage::deserialize(&mut buf) {
            Ok(message) => {
                self.stats
                    .bytes_received
                    .fetch_add(len as u64, Ordering::Relaxed);
                Some(message)
            }
            Err(_) => {
                self.reject(Reject::Malformed, from);
                None
            }
        }
    }
}

/// Splits `plain` into sealed datagrams (one, or two when it does not fit
/// in one), appended to `out`.
pub fn frames(
    sealer: &Sealer,
    from: SocketAddr,
    now: SystemTime,
    plain: &[u8],
    out: &mut Vec<Vec<u8>>,
) -> Result<(), String> {
    let count = plain.len().div_ceil(CHUNK).max(1);
    if count > 2 {
        return Err(format!(
            "{} bytes: too large for two datagrams",
            plain.len()
        ));
    }
    let mut id = [0u8; 4];
    let _ = sealer.rng.fill(&mut id);
    for i in 0..count {
        let chunk = &plain[(i * CHUNK).min(plain.len())..((i + 1) * CHUNK).min(plain.len())];
        let mut d = Vec::with_capacity(HEADER + SEAL + PREFIX + chunk.len());
        d.extend_from_slice(MAGIC);
        d.push(count as u8);
        d.push(i as u8);
        d.extend_from_slice(&id);
        let header: [u8; HEADER] = d[..HEADER].try_into().unwrap_or([0; HEADER]);
        sealer.seal(&header, from, now, chunk, &mut d);
        out.push(d);
    }
    Ok(())
}

/// Received datagrams, authenticated one by one and joined into messages.
#[derive(Default)]
pub struct Reassembly {
    pending: Vec<Pending>,
    plain: Vec<u8>,
}

impl Reassembly {
    /// Opens one datagram from `from`: `Ok(Some(message))` when it completes
    /// a message, `Ok(None)` when it is an authentic half kept for its
    /// other half, `Err` when it is dropped. Nothing is kept before it
    /// authenticates, and at most 16 halves are kept.
    pub fn accept(
        &mut self,
        sealer: &Sealer,
        datagram: &mut [u8],
        from: SocketAddr,
        now: SystemTime,
    ) -> Result<Option<&[u8]>, Reject> {
        if datagram.len() < HEADER || &datagram[..4] != MAGIC {
            return Err(Reject::Malformed);
        }
        let (count, index) = (datagram[4], datagram[5]);
        if !matches!((count, index), (1, 0) | (2, 0) | (2, 1)) {
            return Err(Reject::Malformed);
        }
        let id = u32::from_be_bytes([datagram[6], datagram[7], datagram[8], datagram[9]]);
        let (header, sealed) = datagram.split_at_mut(HEADER);
        let payload = sealer.open(header, sealed, from, now)?;
        self.plain.clear();
        if count == 1 {
            self.plain.extend_from_slice(payload);
            return Ok(Some(&self.plain));
        }
        self.pending.retain(|p| p.at.elapsed() < PENDING_FOR);
        match self
            .pending
            .iter()
            .position(|p| p.from == from && p.id == id && p.index != index)
        {
            Some(i) => {
                let other = self.pending.swap_remove(i);
                let (first, second) = if index == 0 {
                    (payload, other.chunk.as_slice())
                } else {
                    (other.chunk.as_slice(), payload)
                };
                self.plain.extend_from_slice(first);
                self.plain.extend_from_slice(second);
                Ok(Some(&self.plain))
            }
            None => {
                if self.pending.len() >= PENDING {
                    self.pending.remove(0);
                }
                self.pending.push(Pending {
                    from,
                    id,
                    index,
                    at: Instant::now(),
                    chunk: payload.to_vec(),
                });
                Ok(None)
            }
        }
    }
}

#[async_trait]
impl Socket for SealedSocket {
    async fn send(&mut self, to: SocketAddr, message: ChitchatMessage) -> anyhow::Result<()> {
        self.plain.clear();
        message.serialize(&mut self.plain);
        self.datagrams.clear();
        if let Err(e) = frames(
            &self.sealer,
            self.advertise,
            SystemTime::now(),
            &self.plain,
            &mut self.datagrams,
        ) {
            // chitchat keeps every message within one UDP payload.
            warn!(to = %to, "gossip message not sent: {e}");
            return Ok(());
        }
        let mut sent = 0;
        for d in &self.datagrams {
            // A send that fails (no route yet, buffer full) is a lost
            // datagram, which gossip tolerates; it must not stop chitchat.
            match self.socket.send_to(d, to).await {
                Ok(n) => sent += n,
                Err(e) => tracing::debug!(to = %to, error = %e, "gossip send failed"),
            }
        }
        self.stats
            .bytes_sent
            .fetch_add(sent as u64, Ordering::Relaxed);
        Ok(())
    }

    async fn recv(&mut self) -> anyhow::Result<(SocketAddr, ChitchatMessage)> {
        loop {
            let (len, from) = match self.socket.recv_from(&mut self.recv).await {
                Ok(r) => r,
                // ICMP errors from earlier sends, and the like: not fatal.
                Err(e) => {
                    tracing::debug!(error = %e, "gossip receive failed");
                    continue;
                }
            };
            if len > MAX_DATAGRAM {
                self.reject(Reject::Malformed, from);
                continue;
            }
            if let Some(message) = self.accept(len, from) {
                return Ok((from, message));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const H: &[u8] = b"SYG1\x01\x00abcd";

    #[test]
    fn seals_and_opens_and_rejects_what_it_should() {
        let a = Sealer::new(b"0123456789abcdef0123");
        let now = SystemTime::now();
        let mut sealed = Vec::new();
        a.seal(H, addr("127.0.0.2:7946"), now, b"hello", &mut sealed);
        let open = |s: &Sealer, h: &[u8], d: &[u8], from: &str, at: SystemTime| {
            let mut copy = d.to_vec();
            s.open(h, &mut copy, addr(from), at).map(|p| p.to_vec())
        };
        assert_eq!(
            open(&a, H, &sealed, "127.0.0.2:7946", now).unwrap(),
            b"hello"
        );
        // Another key.
        let b = Sealer::new(b"another key entirely....");
        assert_eq!(
            open(&b, H, &sealed, "127.0.0.2:7946", now),
            Err(Reject::Auth)
        );
        // Tampered with: the body, or the header sent in the clear.
        let mut t = sealed.clone();
        let last = t.len() - 20;
        t[last] ^= 1;
        assert_eq!(open(&a, H, &t, "127.0.0.2:7946", now), Err(Reject::Auth));
        assert_eq!(
            open(&a, b"SYG1\x02\x00abcd", &sealed, "127.0.0.2:7946", now),
            Err(Reject::Auth)
        );
        // Replayed from another address.
        assert_eq!(
            open(&a, H, &sealed, "192.0.2.1:7946", now),
            Err(Reject::Address)
        );
        // Replayed later.
        let later = now + MAX_AGE + Duration::from_secs(1);
        assert_eq!(
            open(&a, H, &sealed, "127.0.0.2:7946", later),
            Err(Reject::Stale)
        );
        // Cut short.
        assert_eq!(
            open(&a, H, &sealed[..10], "127.0.0.2:7946", now),
            Err(Reject::Malformed)
        );
        // An IPv4 sender seen by a dual-stack socket.
        assert_eq!(
            open(&a, H, &sealed, "[::ffff:127.0.0.2]:7946", now).unwrap(),
            b"hello"
        );
        // IPv6 senders too.
        let mut v6 = Vec::new();
        a.seal(H, addr("[::1]:7946"), now, b"", &mut v6);
        assert_eq!(open(&a, H, &v6, "[::1]:7946", now).unwrap(), b"");
    }

    #[test]
    fn large_messages_go_as_two_authenticated_halves() {
        let s = Sealer::new(b"0123456789abcdef0123");
        let from = addr("127.0.0.2:7946");
        let now = SystemTime::now();
        let plain: Vec<u8> = (0..MAX_DATAGRAM as u32 + 5000).map(|i| i as u8).collect();
        let mut out = Vec::new();
        frames(&s, from, now, &plain, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|d| d.len() <= MAX_DATAGRAM));
        // In either order, and despite forged halves from the same address.
        for order in [[0, 1], [1, 0]] {
            let mut r = Reassembly::default();
            for _ in 0..(PENDING * 2) {
                let mut forged = out[0].clone();
                forged[HEADER + 20] ^= 0xff;
                assert_eq!(r.accept(&s, &mut forged, from, now), Err(Reject::Auth));
            }
            let mut first = out[order[0]].clone();
            assert_eq!(r.accept(&s, &mut first, from, now), Ok(None));
            let mut second = out[order[1]].clone();
            let got = r
                .accept(&s, &mut second, from, now)
                .unwrap()
                .unwrap()
                .to_vec();
            assert_eq!(got, plain);
        }
        // A half from another sender completes nothing.
        let mut r = Reassembly::default();
        let mut first = out[0].clone();
        assert_eq!(r.accept(&s, &mut first, from, now), Ok(None));
        let mut second = out[1].clone();
        assert_eq!(
            r.accept(&s, &mut second, addr("127.0.0.3:7946"), now),
            Err(Reject::Address)
        );
        // Small messages are one datagram; too large ones are refused.
        let mut out = Vec::new();
        frames(&s, from, now, b"small", &mut out).unwrap();
        assert_eq!(out.len(), 1);
        let mut r = Reassembly::default();
        assert_eq!(
            r.accept(&s, &mut out[0], from, now).unwrap(),
            Some(&b"small"[..])
        );
        assert!(frames(&s, from, now, &vec![0; 3 * MAX_DATAGRAM], &mut Vec::new()).is_err());
    }
}
