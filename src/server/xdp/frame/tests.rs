use super::*;
use etherparse::PacketBuilder;

const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const SERVER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const DNS: &[u8] = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x00\x00\x01\x00\x01";

fn v4(src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC, SERVER_MAC)
        .ipv4(src, dst, 64)
        .udp(40000, 53);
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

fn v6(src: [u8; 16], dst: [u8; 16], payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC, SERVER_MAC)
        .ipv6(src, dst, 64)
        .udp(40000, 53);
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

const C6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const S6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

#[test]
fn a_query_over_ipv4_reads_and_its_answer_checks_out() {
    let f = v4([10, 0, 0, 2], [10, 0, 0, 1], DNS);
    let q = parse(&f).unwrap();
    assert_eq!(q.peer, "10.0.0.2:40000".parse().unwrap());
    assert_eq!(q.local, "10.0.0.1:53".parse().unwrap());
    assert_eq!(&f[q.payload.clone()], DNS);
    let mut buf = [0u8; 2048];
    let answer = b"an answer of some length";
    let n = write_answer(&q, answer, &mut buf).unwrap();
    // The answer is itself a well-formed frame, the other way round,
    // with every checksum right.
    let back = parse(&buf[..n]).unwrap();
    assert_eq!(back.peer, q.local);
    assert_eq!(back.local, q.peer);
    assert_eq!(&buf[back.payload.clone()], answer);
    assert_eq!(&buf[..6], &CLIENT_MAC);
    assert_eq!(&buf[6..12], &SERVER_MAC);
    assert_eq!(buf[14 + 8], TTL);
    assert_eq!(buf[14 + 6] & 0x40, 0x40, "Don't Fragment");
}

#[test]
fn a_query_over_ipv6_reads_and_its_answer_checks_out() {
    let f = v6(C6, S6, DNS);
    let q = parse(&f).unwrap();
    assert_eq!(q.peer, "[fd00::2]:40000".parse().unwrap());
    let mut buf = [0u8; 2048];
    let n = write_answer(&q, b"answer", &mut buf).unwrap();
    let back = parse(&buf[..n]).unwrap();
    assert_eq!(back.peer, q.local);
    assert_eq!(&buf[back.payload.clone()], b"answer");
    assert_eq!(buf[14 + 7], TTL);
    // Too small a buffer: no frame, no panic.
    assert_eq!(write_answer(&q, &[0; 100], &mut [0u8; 120]), None);
}

#[test]
fn padding_after_the_datagram_is_not_payload() {
    let mut f = v4([10, 0, 0, 2], [10, 0, 0, 1], b"ab");
    f.extend_from_slice(&[0; 16]); // Ethernet's minimum frame padding
    let q = parse(&f).unwrap();
    assert_eq!(&f[q.payload], b"ab");
}

#[test]
fn bad_frames_are_refused_with_their_reason() {
    let good = v4([10, 0, 0, 2], [10, 0, 0, 1], DNS);
    let mut cases: Vec<(Vec<u8>, Malformed)> = Vec::new();
    // Every truncation of a good frame.
    for n in 0..good.len() {
        let r = parse(&good[..n]);
        assert!(r.is_err(), "cut at {n}: {r:?}");
    }
    let mut f = good.clone();
    f[14 + 10] ^= 1; // IPv4 header checksum
    cases.push((f, Malformed::IpChecksum));
    let mut f = good.clone();
    *f.last_mut().unwrap() ^= 0x40; // a payload bit: the UDP checksum no longer matches
    cases.push((f, Malformed::UdpChecksum));
    let mut f = good.clone();
    f[14 + 6] |= 0x20; // more fragments
    cases.push((f, Malformed::NotPlainUdp));
    let mut f = good.clone();
    f[12] = 0x81; // a VLAN tag's type
    f[13] = 0x00;
    cases.push((f, Malformed::NotIp));
    let mut f = good.clone();
    f[14 + 2] = 0xff; // total length past the frame
    cases.push((f, Malformed::Length));
    let mut f = good.clone();
    f[14 + 20 + 4] = 0; // UDP length 9: disagrees with IP's
    f[14 + 20 + 5] = 9;
    cases.push((f, Malformed::Length));
    cases.push((
        v4([10, 0, 0, 2], [255, 255, 255, 255], DNS),
        Malformed::Address,
    ));
    cases.push((v4([0, 0, 0, 0], [10, 0, 0, 1], DNS), Malformed::Address));
    cases.push((v4([224, 0, 0, 1], [10, 0, 0, 1], DNS), Malformed::Address));
    cases.push((v4([127, 0, 0, 1], [10, 0, 0, 1], DNS), Malformed::Address));
    let mut f = good.clone();
    f[0] = 0xff; // to the broadcast MAC
    cases.push((f, Malformed::Address));
    // IPv6: a zero UDP checksum is not allowed.
    let mut f = v6(C6, S6, DNS);
    f[14 + 40 + 6] = 0;
    f[14 + 40 + 7] = 0;
    cases.push((f, Malformed::UdpChecksum));
    let mut multicast = S6;
    multicast[0] = 0xff;
    cases.push((v6(C6, multicast, DNS), Malformed::Address));
    for (i, (frame, want)) in cases.iter().enumerate() {
        assert_eq!(parse(frame), Err(*want), "case {i}");
    }
}

#[test]
fn a_zero_ipv4_udp_checksum_means_none() {
    let mut f = v4([10, 0, 0, 2], [10, 0, 0, 1], DNS);
    f[14 + 20 + 6] = 0;
    f[14 + 20 + 7] = 0;
    assert!(parse(&f).is_ok());
}

#[test]
fn a_checksum_left_to_the_hardware_by_a_local_sender_is_accepted() {
    // What dig's datagram looked like on a veth: the field holds the
    // pseudo-header's sum (10.99.7.2 -> 10.99.7.1, UDP, length 72).
    let mut f = v4([10, 99, 7, 2], [10, 99, 7, 1], &[0u8; 64]);
    f[14 + 20 + 6] = 0x23;
    f[14 + 20 + 7] = 0x22;
    assert!(parse(&f).is_ok());
    // One off is not.
    f[14 + 20 + 7] = 0x23;
    assert_eq!(parse(&f), Err(Malformed::UdpChecksum));
}
