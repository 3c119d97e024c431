//! Shedding, measured: the share of client networks moved and that they
//! are the same every time.

use super::test_support::*;
use super::*;
use crate::geo;

/// The endpoint each of `n` client /24 networks gets (priority routing,
/// the primary shedding `permille`).
fn answers(permille: u32, n: u32) -> Vec<u32> {
    answers_with(
        |rt| {
            rt.set_shed(permille, 910, 850);
        },
        n,
    )
}

/// The endpoint each of `n` client /24 networks gets (priority routing),
/// the primary's runtime set by `set`.
fn answers_with(set: impl Fn(&crate::snapshot::EndpointRuntime), n: u32) -> Vec<u32> {
    let p = profile(priority(2), 2, OnAllDown::ServeAll);
    let eps = vec![ep(1, Status::Online), ep(2, Status::Online)];
    set(&eps[0].runtime);
    let mut rng = fastrand::Rng::with_seed(7);
    (0..n)
        .map(|i| {
            let addr = std::net::Ipv4Addr::from(0x0A00_0000 + (i << 8) + (i % 200));
            let mut cache = geo::Cache::default();
            let mut c = Client::from_resolver(addr.into(), None, &mut cache);
            let mut picks = Picks::default();
            let status = |e: &Endpoint| e.status();
            route_traced(
                &p,
                &eps,
                status,
                Family::V4,
                &mut c,
                &mut rng,
                &mut picks,
                &mut NoTrace,
            );
            picks.as_slice()[0]
        })
        .collect()
}

#[test]
fn thirty_percent_of_ten_thousand_networks_move_the_same_every_time() {
    let first = answers(300, 10_000);
    let moved = first.iter().filter(|&&i| i == 1).count();
    eprintln!("shed 30 %: {moved} of 10000 networks moved");
    assert!((2800..=3200).contains(&moved), "moved {moved} of 10000");
    assert_eq!(answers(300, 10_000), first, "the same networks every time");
    // A larger share moves a superset; none moves none.
    let more = answers(500, 10_000);
    assert!(first.iter().zip(&more).all(|(a, b)| *a == 0 || *b == 1));
    assert!(answers(0, 1_000).iter().all(|&i| i == 0));
}

#[test]
fn a_shed_endpoint_still_answers_when_it_is_the_only_one() {
    let p = profile(priority(2), 2, OnAllDown::ServeAll);
    let eps = vec![ep(1, Status::Online), ep(2, Status::Degraded)];
    eps[0].runtime.set_shed(1000, 990, 850);
    let mut cache = geo::Cache::default();
    let mut c = Client::from_resolver("192.0.2.1".parse().unwrap(), None, &mut cache);
    let mut picks = Picks::default();
    let mut d = Decision::default();
    d.enter(0);
    let status = |e: &Endpoint| e.status();
    let mut rng = fastrand::Rng::with_seed(1);
    route_traced(
        &p,
        &eps,
        status,
        Family::V4,
        &mut c,
        &mut rng,
        &mut picks,
        &mut d,
    );
    assert_eq!(picks.as_slice(), [0]);
    assert!(d.steps[0].shed.is_empty());
    assert_eq!(
        eps[0].runtime.shed_text().unwrap(),
        "shed 100 % (load 0.99 > 0.85)"
    );
}

#[test]
fn a_shed_by_hand_moves_the_same_networks_as_one_by_load() {
    use crate::snapshot::OverrideState;
    let by_load = answers(300, 10_000);
    let by_hand = answers_with(
        |rt| {
            rt.apply(OverrideState::Shed {
                permille: 300,
                until_ms: None,
            })
        },
        10_000,
    );
    assert_eq!(by_hand, by_load);
    // Both at once: the larger share, a superset of the smaller.
    let both = answers_with(
        |rt| {
            rt.set_shed(200, 910, 850);
            rt.apply(OverrideState::Shed {
                permille: 300,
                until_ms: None,
            });
        },
        10_000,
    );
    assert_eq!(both, by_load);
    // A drain's ramp, at its fourth of ten steps: 40 %, the same first.
    let now = crate::clock::now_millis();
    let ramp = answers_with(
        |rt| {
            rt.apply(OverrideState::Off {
                until_ms: None,
                drain: true,
                at_ms: now - 35_000,
                ramp: Some((now - 35_000, now + 65_000)),
            })
        },
        10_000,
    );
    let moved = ramp.iter().filter(|&&i| i == 1).count();
    assert!((3800..=4200).contains(&moved), "moved {moved} of 10000");
    assert!(by_load.iter().zip(&ramp).all(|(a, b)| *a == 0 || *b == 1));
}
