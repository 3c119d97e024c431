//! Stage: `[dns.xdp]`, the AF_XDP fast path's interfaces, addresses and
//! fallback. Whether the machine can do XDP is found out at start (it
//! needs the interface, privileges and a kernel that `check` may not run
//! on); this stage checks what the file says.

use super::*;
use crate::config::XdpSettings;
use crate::config::raw::RawXdp;

/// Queues per interface the XDP program can steer to (its socket map's
/// size).
pub const MAX_QUEUE: u32 = 1023;

/// `[dns.xdp]`, checked against `dns.listen` (`dns_listen`).
pub(super) fn xdp(
    r: &mut Report,
    src: usize,
    raw: &Spanned<RawXdp>,
    dns_listen: &[SocketAddr],
) -> Option<XdpSettings> {
    let x = raw.get_ref();
    let mut k = r.section(src);
    let mut out = XdpSettings {
        interfaces: Vec::new(),
        listen: Vec::new(),
        fallback_to_sockets: false,
    };
    match &x.interfaces {
        None => {
            k.r.err(src, raw, "dns.xdp.interfaces", "required: the interfaces to serve, e.g. interfaces = [\"eth0\"] (every queue) or [\"eth0@0\"] (queue 0)");
            k.fail();
        }
        Some(list) => {
            let i = interfaces(k.r, src, list);
            out.interfaces = k.take(i).unwrap_or_default();
        }
    }
    match &x.listen {
        None => {
            k.r.err(
                src,
                raw,
                "dns.xdp.listen",
                "required: the addresses to answer through XDP, e.g. listen = [\"192.0.2.1:53\"]",
            );
            k.fail();
        }
        Some(list) => {
            let l = addresses(k.r, src, list, dns_listen);
            out.listen = k.take(l).unwrap_or_default();
        }
    }
    if let Some(f) = &x.fallback {
        match f.get_ref().as_str() {
            "error" => {}
            "sockets" => out.fallback_to_sockets = true,
            other => {
                k.r.err(src, f, "dns.xdp.fallback", format!("\"{other}\" is not a fallback: \"error\" (refuse to start when XDP cannot) or \"sockets\" (serve with sockets alone, logged)"));
                k.fail();
            }
        }
    }
    k.done(out)
}

/// `dns.xdp.interfaces`: `NAME` or `NAME@QUEUE`, none twice and no queue
/// of an interface also listed whole.
fn interfaces(
    r: &mut Report,
    src: usize,
    list: &Spanned<Vec<Spanned<String>>>,
) -> Option<Vec<(String, Option<u32>)>> {
    let mut k = r.section(src);
    if list.get_ref().is_empty() {
        k.r.err(
            src,
            list,
            "dns.xdp.interfaces",
            "at least one interface is required, e.g. [\"eth0\"]",
        );
        k.fail();
    }
    let mut out: Vec<(String, Option<u32>)> = Vec::new();
    for (i, v) in list.get_ref().iter().enumerate() {
        let field = format!("dns.xdp.interfaces[{i}]");
        match parse_interface(v.get_ref()) {
            Err(e) => {
                k.r.err(src, v, &field, e);
                k.fail();
            }
            Ok((name, queue)) => {
                let clash = out
                    .iter()
                    .any(|(n, q)| *n == name && (q.is_none() || queue.is_none() || *q == queue));
                if clash {
                    k.r.err(src, v, &field, format!("{} is listed twice (an interface without @QUEUE means all of its queues)", v.get_ref()));
                    k.fail();
                } else {
                    out.push((name, queue));
                }
            }
        }
    }
    k.done(out)
}

/// `"eth0"` or `"eth0@3"`.
pub fn parse_interface(text: &str) -> Result<(String, Option<u32>), String> {
    let (name, queue) = match text.split_once('@') {
        Some((n, q)) => {
            let queue = q
                .parse::<u32>()
                .ok()
                .filter(|q| *q <= MAX_QUEUE)
                .ok_or_else(|| format!("\"{q}\" is not a queue number (0-{MAX_QUEUE}): write \"{n}@0\" for queue 0, or \"{n}\" for every queue"))?;
            (n, Some(queue))
        }
        None => (text, None),
    };
    // Linux interface names: 1-15 bytes, no slash, colon or white space.
    let bad = name.is_empty()
        || name.len() > 15
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
    if bad {
        return Err(format!(
            "\"{name}\" is not an interface name (1-15 characters, no '/', ':' or spaces), e.g. \"eth0\""
        ));
    }
    Ok((name.to_string(), queue))
}

/// `dns.xdp.listen`: each address also served by `dns.listen`, so DNS
/// over TCP (truncated answers retry there) and the frames the program
/// passes to the kernel are answered too.
fn addresses(
    r: &mut Report,
    src: usize,
    list: &Spanned<Vec<Spanned<String>>>,
    dns_listen: &[SocketAddr],
) -> Option<Vec<SocketAddr>> {
    let mut k = r.section(src);
    if list.get_ref().is_empty() {
        k.r.err(
            src,
            list,
            "dns.xdp.listen",
            "at least one address is required, e.g. [\"192.0.2.1:53\"]",
        );
        k.fail();
    }
    let mut out = Vec::new();
    for (i, v) in list.get_ref().iter().enumerate() {
        let field = format!("dns.xdp.listen[{i}]");
        match v.get_ref().parse::<SocketAddr>() {
            Err(_) => {
                k.r.err(
                    src,
                    v,
                    &field,
                    format!(
                        "\"{}\" is not ADDRESS:PORT, e.g. \"192.0.2.1:53\" or \"[2001:db8::1]:53\"",
                        v.get_ref()
                    ),
                );
                k.fail();
            }
            Ok(a) if out.contains(&a) => {
                k.r.err(src, v, &field, format!("{a} is listed twice"));
                k.fail();
            }
            Ok(a) if !covered(a, dns_listen) => {
                k.r.err(src, v, &field, format!("{a} is not served by dns.listen: add it there too, so DNS over TCP and the packets XDP passes to the kernel (fragments, VLAN tags, IP options) are answered"));
                k.fail();
            }
            Ok(a) => out.push(a),
        }
    }
    k.done(out)
}

/// Whether a `dns.listen` socket receives what is sent to `a`.
fn covered(a: SocketAddr, dns_listen: &[SocketAddr]) -> bool {
    dns_listen.iter().any(|l| {
        l.port() == a.port()
            && (l.ip() == a.ip() || l.ip().is_unspecified() && l.is_ipv4() == a.is_ipv4())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces_with_and_without_queues() {
        assert_eq!(parse_interface("eth0"), Ok(("eth0".into(), None)));
        assert_eq!(parse_interface("veth-a@3"), Ok(("veth-a".into(), Some(3))));
        for bad in [
            "",
            "eth0@",
            "eth0@x",
            "eth0@1024",
            "a/b",
            "sixteen-chars-xx",
            "e th0",
            "@1",
        ] {
            assert!(parse_interface(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_xdp_address_must_be_served_by_sockets_too() {
        let v4: SocketAddr = "192.0.2.1:53".parse().unwrap();
        assert!(covered(v4, &["192.0.2.1:53".parse().unwrap()]));
        assert!(covered(v4, &["0.0.0.0:53".parse().unwrap()]));
        assert!(!covered(v4, &["[::]:53".parse().unwrap()]));
        assert!(!covered(v4, &["192.0.2.1:5353".parse().unwrap()]));
        assert!(!covered(v4, &["192.0.2.2:53".parse().unwrap()]));
    }
}
