use super::*;

fn net(s: &str) -> Network {
    s.parse().unwrap()
}

fn at(secs: u32) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(secs))
}

const T0: u32 = 1_800_000_000;

fn est(l: &Latency, n: &str, ep: &str, now: u32) -> Option<Estimate> {
    let reader = l.reader(now);
    reader.lookup(From::Client(net(n))).get(endpoint_id(ep))
}

fn known(l: &Latency, n: Network) -> bool {
    !l.reader(T0).lookup(From::Client(n)).is_empty()
}

#[test]
fn estimate_is_a_geometric_mean_robust_to_outliers() {
    let l = Latency::default();
    for i in 0..40 {
        let ms = if i % 2 == 0 { 20 } else { 80 };
        l.record(
            net("192.0.2.0/24"),
            "p/a",
            Duration::from_millis(ms),
            at(T0),
        )
        .unwrap();
    }
    let e = est(&l, "192.0.2.0/24", "p/a", T0).unwrap();
    assert!((e.rtt_ms - 40.0).abs() < 6.0, "{e:?}");
    assert!((e.samples - 40.0).abs() < 0.5, "{e:?}");
    assert_eq!(e.newest, T0);
    // One 30 s outlier moves an established 40 ms estimate by a factor, not seconds.
    l.record(net("192.0.2.0/24"), "p/a", Duration::from_secs(30), at(T0))
        .unwrap();
    let after = est(&l, "192.0.2.0/24", "p/a", T0).unwrap();
    assert!(after.rtt_ms < 45.0, "{after:?}");
}

#[test]
fn estimate_follows_a_change_within_tens_of_samples() {
    let l = Latency::default();
    for _ in 0..1000 {
        l.record(
            net("192.0.2.0/24"),
            "p/a",
            Duration::from_millis(100),
            at(T0),
        )
        .unwrap();
    }
    for _ in 0..100 {
        l.record(
            net("192.0.2.0/24"),
            "p/a",
            Duration::from_millis(20),
            at(T0),
        )
        .unwrap();
    }
    let e = est(&l, "192.0.2.0/24", "p/a", T0).unwrap();
    assert!(e.rtt_ms < 25.0, "{e:?}");
}

#[test]
fn counts_decay_with_age() {
    let l = Latency::default();
    l.record_many(
        net("192.0.2.0/24"),
        "p/a",
        Duration::from_millis(30),
        64,
        at(T0),
    )
    .unwrap();
    let day = 86_400;
    let e = est(&l, "192.0.2.0/24", "p/a", T0 + day).unwrap();
    assert!((e.samples - 32.0).abs() < 0.5, "{e:?}");
    let e = est(&l, "192.0.2.0/24", "p/a", T0 + 2 * day).unwrap();
    assert!((e.samples - 16.0).abs() < 0.3, "{e:?}");
    // An older sample arriving late (gossip) counts decayed.
    l.record(
        net("192.0.2.0/24"),
        "p/a",
        Duration::from_millis(30),
        at(T0 - day),
    )
    .unwrap();
    let e = est(&l, "192.0.2.0/24", "p/a", T0).unwrap();
    assert!((e.samples - 64.5).abs() < 0.5, "{e:?}");
    assert_eq!(e.newest, T0);
    // Forgotten once decayed away.
    l.forget_old(at(T0 + 30 * day));
    assert_eq!(l.stats.networks.load(Ordering::Relaxed), 0);
    assert!(est(&l, "192.0.2.0/24", "p/a", T0).is_none());
}

#[test]
fn absurd_timings_are_rejected_and_counted() {
    let l = Latency::default();
    let n = net("192.0.2.0/24");
    assert_eq!(
        l.record(n, "p/a", Duration::ZERO, at(T0)),
        Err(Rejected::NotPositive)
    );
    assert!(matches!(
        l.record(n, "p/a", Duration::from_secs(3600), at(T0)),
        Err(Rejected::TooLong(_))
    ));
    assert!(matches!(
        l.record(n, "no-slash", Duration::from_millis(5), at(T0)),
        Err(Rejected::Endpoint(_))
    ));
    assert_eq!(l.stats.rejected.load(Ordering::Relaxed), 3);
    assert_eq!(l.stats.networks.load(Ordering::Relaxed), 0);
}

#[test]
fn band_in_percent_and_milliseconds() {
    assert_eq!(Band::parse("10%"), Ok(Band::Percent(10.0)));
    assert_eq!(Band::parse("10ms"), Ok(Band::Millis(10.0)));
    assert!(Band::parse("10").is_err());
    assert!(Band::parse("-5%").is_err());
    assert!(Band::Percent(10.0).within(100.0, 110.0));
    assert!(!Band::Percent(10.0).within(100.0, 111.0));
    assert!(Band::Millis(10.0).within(20.0, 30.0));
    assert!(!Band::Millis(10.0).within(20.0, 30.5));
    // The same limits in logarithms, as routing compares them.
    let ln = f64::ln;
    assert!(ln(110.0) <= Band::Percent(10.0).ln_limit(ln(100.0)));
    assert!(ln(111.0) > Band::Percent(10.0).ln_limit(ln(100.0)));
    assert!(ln(30.0) <= Band::Millis(10.0).ln_limit(ln(20.0)));
    assert!(ln(30.5) > Band::Millis(10.0).ln_limit(ln(20.0)));
}

#[test]
fn full_table_drops_the_oldest_and_least_used() {
    // 4096 shards x 1 network each.
    let l = Latency::new(Policy {
        max_networks: table::SHARDS,
        ..Policy::default()
    });
    let strong = net("10.0.0.0/24");
    l.record_many(strong, "p/a", Duration::from_millis(5), 100, at(T0))
        .unwrap();
    // A shard keeps one network: a newcomer always gets in, and the
    // weakest other (here the only one) makes room.
    let shard = table::shard_of(strong.key());
    let other = (1u32..)
        .map(|i| Network::V4(0x0a_0000 + i))
        .find(|n| table::shard_of(n.key()) == shard)
        .unwrap();
    let weak_old = (1u32..)
        .map(|i| Network::V4(0x0b_0000 + i))
        .find(|n| table::shard_of(n.key()) == shard)
        .unwrap();
    l.record(other, "p/a", Duration::from_millis(5), at(T0))
        .unwrap();
    assert!(!known(&l, strong), "the only other network made room");
    assert_eq!(l.stats.evicted.load(Ordering::Relaxed), 1);
    // Now two candidates at cap 1: the newcomer pushes out the weakest.
    let l = Latency::new(Policy {
        max_networks: 2 * table::SHARDS,
        ..Policy::default()
    });
    l.record_many(strong, "p/a", Duration::from_millis(5), 100, at(T0))
        .unwrap();
    l.record(weak_old, "p/a", Duration::from_millis(5), at(T0 - 86_400))
        .unwrap();
    l.record(other, "p/a", Duration::from_millis(5), at(T0))
        .unwrap();
    assert!(known(&l, strong));
    assert!(!known(&l, weak_old), "old and little used: dropped");
    assert!(known(&l, other));
    assert_eq!(l.stats.networks.load(Ordering::Relaxed), 2);
}

#[test]
fn resolver_mapping_is_bounded_and_weighted() {
    let l = Latency::default();
    let r = net("203.0.113.0/24");
    for i in 0..12u32 {
        for _ in 0..=i {
            l.record_resolver(r, Network::V4(0x0a_0000 + i), at(T0));
        }
    }
    let behind = l.clients_of(r, T0);
    assert_eq!(behind.as_slice().len(), MAX_CLIENTS_PER_RESOLVER);
    // Strongest first: the 12-beacon network.
    assert_eq!(behind.as_slice()[0].0, Network::V4(0x0a_000b));
    assert!((behind.as_slice()[0].1 - 12.0).abs() < 1e-6);
    assert_eq!(l.stats.resolvers.load(Ordering::Relaxed), 1);
}

#[test]
fn file_rows_stand_in_until_learned_has_enough() {
    let l = Latency::default();
    let csv = "network,endpoint,rtt_ms,samples\n# a comment\n\n192.0.2.0/24,p/a,50,100\n";
    l.set_file(FileTable::parse(csv, "lat.csv").unwrap());
    let e = est(&l, "192.0.2.0/24", "p/a", T0).unwrap();
    assert!(e.from_file && (e.rtt_ms - 50.0).abs() < 1e-9 && e.samples == 100.0);
    for _ in 0..10 {
        l.record(
            net("192.0.2.0/24"),
            "p/a",
            Duration::from_millis(10),
            at(T0),
        )
        .unwrap();
    }
    assert!(est(&l, "192.0.2.0/24", "p/a", T0).unwrap().from_file);
    for _ in 0..30 {
        l.record(
            net("192.0.2.0/24"),
            "p/a",
            Duration::from_millis(10),
            at(T0),
        )
        .unwrap();
    }
    let e = est(&l, "192.0.2.0/24", "p/a", T0).unwrap();
    assert!(!e.from_file && (e.rtt_ms - 10.0).abs() < 0.1, "{e:?}");
}

#[test]
fn bad_csv_rows_name_file_line_and_field() {
    let cases = [
        ("net,ep\n", 1, "header"),
        (
            "network,endpoint,rtt_ms,samples\n192.0.2.0/25,p/a,5,1\n",
            2,
            "network",
        ),
        (
            "network,endpoint,rtt_ms,samples\n192.0.2.0/24,pa,5,1\n",
            2,
            "endpoint",
        ),
        (
            "network,endpoint,rtt_ms,samples\n192.0.2.0/24,p/a,-5,1\n",
            2,
            "rtt_ms",
        ),
        (
            "network,endpoint,rtt_ms,samples\n192.0.2.0/24,p/a,5,0\n",
            2,
            "samples",
        ),
        (
            "network,endpoint,rtt_ms,samples\n192.0.2.0/24,p/a,5\n",
            2,
            "row",
        ),
        (
            "network,endpoint,rtt_ms,samples\n192.0.2.0/24,p/a,5,1\n192.0.2.0/24,p/a,6,1\n",
            3,
            "endpoint",
        ),
        ("", 0, "header"),
    ];
    for (text, line, field) in cases {
        let e = FileTable::parse(text, "lat.csv").unwrap_err();
        assert_eq!((e.line, e.field), (line, field), "{text:?}: {e}");
        assert!(
            e.to_string()
                .starts_with(&format!("lat.csv:{line}: {field}: ")),
            "{e}"
        );
    }
}

#[test]
fn saved_and_restored_exactly_and_corruption_is_reported() {
    let dir = std::env::temp_dir().join(format!("sy-lat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state.latency");
    let l = Latency::default();
    l.record_many(
        net("192.0.2.0/24"),
        "p/a",
        Duration::from_millis(23),
        40,
        at(T0),
    )
    .unwrap();
    l.record_many(
        net("2001:db8:aa00::/56"),
        "p/b",
        Duration::from_millis(87),
        7,
        at(T0),
    )
    .unwrap();
    l.record_resolver(net("203.0.113.0/24"), net("192.0.2.0/24"), at(T0));
    save(&l, &path).unwrap();
    let back = Latency::default();
    assert_eq!(load_saved(&back, &path), Ok(2));
    assert_eq!(
        est(&back, "192.0.2.0/24", "p/a", T0),
        est(&l, "192.0.2.0/24", "p/a", T0)
    );
    assert_eq!(
        est(&back, "2001:db8:aa00::/56", "p/b", T0),
        est(&l, "2001:db8:aa00::/56", "p/b", T0)
    );
    assert_eq!(
        back.clients_of(net("203.0.113.0/24"), T0).as_slice().len(),
        1
    );
    // Flip a byte: reported, nothing loaded.
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let fresh = Latency::default();
    let err = load_saved(&fresh, &path).unwrap_err();
    assert!(err.contains("corrupt"), "{err}");
    assert_eq!(fresh.stats.networks.load(Ordering::Relaxed), 0);
    std::fs::write(&path, b"junk").unwrap();
    assert!(load_saved(&fresh, &path).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn rows_are_twenty_bytes() {
    assert_eq!(std::mem::size_of::<Sample>(), 20);
    assert_eq!(std::mem::size_of::<Mapping>(), 24);
}

#[test]
fn endpoint_ids_compare_profiles_as_dns_names() {
    assert_eq!(
        endpoint_id("WWW.Example.com./eu"),
        endpoint_id("www.example.com/eu")
    );
    assert_eq!(
        endpoint_id("www.example.com/eu"),
        endpoint_id_of("www.example.com.", "eu")
    );
    assert_ne!(
        endpoint_id("www.example.com/eu"),
        endpoint_id("www.example.com/EU")
    );
}

#[test]
fn the_bound_holds_under_many_distinct_networks() {
    let max = 2 * table::SHARDS;
    let l = Latency::new(Policy {
        max_networks: max,
        ..Policy::default()
    });
    let eps = ["p/a", "p/b", "p/c", "p/d"];
    for i in 0..20_000u32 {
        let records: Vec<Record> = eps
            .iter()
            .map(|ep| Record {
                net: Network::V4(0x0a_0000 + i),
                ep: endpoint_id(ep),
                rtt_ms: 20.0,
                samples: 1,
                at: T0 + i,
            })
            .collect();
        l.ingest(&records, true);
    }
    let networks = l.stats.networks.load(Ordering::Relaxed);
    assert!(networks <= max, "{networks} > {max}");
    assert!(networks > max * 9 / 10, "{networks}");
    // Rows of 20 bytes (a shard's vector holds at most an eighth more,
    // or room for one batch), and the shards' fixed cost.
    let bytes = l.stats.bytes.load(Ordering::Relaxed);
    let rows = max * 4 * 20;
    assert!(
        bytes <= rows + rows / 8 + table::SHARDS * 4 * 20 + 2 * table::SHARDS * 64,
        "{bytes}"
    );
    assert_eq!(
        l.stats.evicted.load(Ordering::Relaxed) as usize,
        20_000 - networks
    );
    // The newest networks are the ones kept.
    assert!(known(&l, Network::V4(0x0a_0000 + 19_999)));
    // The gossip outbox is bounded too.
    let (queued, last) = l.outbox_since(0, usize::MAX);
    assert_eq!(queued.len(), OUTBOX);
    assert_eq!(last, 80_000);
}

/// Routing's check (`rank`) and explain's (`enough`) agree on a count that
/// decayed a little: one sample a minute old meets `min_samples = 1`, and
/// 30 samples (which bf16 keeps as 29.875) meet 30.
#[test]
fn rank_and_enough_agree_on_a_slightly_decayed_count() {
    for (count, min) in [(1u32, 1u32), (30, 30)] {
        let l = Latency::default();
        l.set_policy(Policy {
            min_samples: min,
            ..Default::default()
        });
        for _ in 0..count {
            l.record(
                net("192.0.2.0/24"),
                "p/a",
                Duration::from_millis(20),
                at(T0),
            )
            .unwrap();
        }
        let reader = l.reader(T0 + 60);
        let look = reader.lookup(From::Client(net("192.0.2.0/24")));
        let e = look.get(endpoint_id("p/a")).unwrap();
        assert!(e.samples < f64::from(min), "{e:?}");
        assert!(look.enough(&e), "{count} samples, {min} needed: {e:?}");
        assert!(
            look.rank(endpoint_id("p/a")).is_some(),
            "{count} samples, {min} needed"
        );
    }
}
