//! Performance routing: the usable endpoint with the lowest measured
//! latency from the client's network, when the latency table knows enough
//! (`min_samples`) for at least two usable endpoints; endpoints within
//! `band` of the best count as equal, and the nearest of them wins. Else
//! the usable endpoint nearest the client by great-circle distance;
//! endpoints at the same distance share traffic evenly; without a client
//! location, list order.

use super::client::Client;
use crate::geo::Point;
use crate::latency::{Estimate, From, Policy};
use crate::snapshot::Endpoint;

/// Endpoints whose estimates a decision keeps on the stack.
const CACHED: usize = 16;

/// Picks by measured latency, looking where [`Client::latency_sources`]
/// says in turn; `None` when no source knows enough (distance decides).
/// Each look is told to `seen` (where, whether it decided, the policy, the
/// usable endpoints' estimates: an iterator never run on the answer path). Lock-free and allocation-free: one shard
/// load per network looked at.
#[inline]
pub fn by_latency(
    eps: &[Endpoint],
    points: &[Point],
    ok: impl Fn(&Endpoint) -> bool,
    client: &mut Client<'_>,
    rng: &mut fastrand::Rng,
    mut seen: impl FnMut(From, bool, &Policy, &mut dyn Iterator<Item = (u32, Estimate)>),
) -> Option<u32> {
    let (latency, sources) = client.latency_sources()?;
    let reader = latency.reader(crate::clock::unix_secs_now());
    if reader.is_empty() {
        return None;
    }
    for from in sources.into_iter().flatten() {
        // With a table to read, an ECS client's answer depends on its
        // network's rows, or on their absence: scoped to its network.
        if let From::Client(net) = from {
            client.decided_by(net.prefix());
        }
        let look = reader.lookup(from);
        if look.is_empty() {
            seen(from, false, look.policy(), &mut std::iter::empty());
            continue;
        }
        // Each usable endpoint's rank (ln ms, when it has enough samples),
        // worked out once (the first CACHED endpoints; a larger profile
        // works the rest out again).
        let mut cache = [f64::NAN; CACHED];
        let mut enough = 0u32;
        let mut best = f64::INFINITY;
        for (i, e) in eps.iter().enumerate() {
            if !ok(e) {
                continue;
            }
            let m = look.rank(e.latency_id);
            if let Some(m) = m {
                enough += 1;
                best = best.min(m);
            }
            if let Some(slot) = cache.get_mut(i) {
                *slot = m.unwrap_or(f64::NAN);
            }
        }
        let measured = |i: usize, e: &Endpoint| match cache.get(i) {
            Some(m) => Some(*m).filter(|m| !m.is_nan()),
            None => look.rank(e.latency_id),
        };
        let decided = enough >= 2;
        seen(
            from,
            decided,
            look.policy(),
            &mut eps
                .iter()
                .enumerate()
                .filter(|(_, e)| ok(e))
                .filter_map(|(i, e)| look.get(e.latency_id).map(|m| (i as u32, m))),
        );
        if !decided {
            continue;
        }
        // Within the band: the nearest wins (ties shared); without a
        // location, the lowest latency.
        let limit = look.policy().band.ln_limit(best);
        let in_band = |i: usize, e: &Endpoint| ok(e) && measured(i, e).is_some_and(|m| m <= limit);
        let mut within = eps.iter().enumerate().filter(|(i, e)| in_band(*i, e));
        let first = within.next().map(|(i, _)| i as u32);
        if within.next().is_none() {
            return first;
        }
        let here = client.location().and_then(|l| l.point);
        if here.is_none() {
            return eps
                .iter()
                .enumerate()
                .position(|(i, e)| ok(e) && measured(i, e).is_some_and(|m| m <= best))
                .map(|i| i as u32);
        }
        return nearest(eps, points, here, in_band, rng);
    }
    None
}

/// Picks the nearest usable endpoint to `client` (ties at random), or the
/// first usable in list order when the client's location is unknown.
pub fn pick(
    eps: &[Endpoint],
    points: &[Point],
    client: Option<Point>,
    usable: impl Fn(&Endpoint) -> bool,
    rng: &mut fastrand::Rng,
) -> Option<u32> {
    nearest(eps, points, client, |_, e| usable(e), rng)
}

/// [`pick`], with `usable` told each endpoint's index too.
fn nearest(
    eps: &[Endpoint],
    points: &[Point],
    client: Option<Point>,
    usable: impl Fn(usize, &Endpoint) -> bool,
    rng: &mut fastrand::Rng,
) -> Option<u32> {
    let Some(here) = client else {
        return eps
            .iter()
            .enumerate()
            .position(|(i, e)| usable(i, e))
            .map(|i| i as u32);
    };
    // Largest closeness = nearest. Reservoir-sample among exact ties so
    // endpoints in one location share evenly, without allocating.
    let mut best: Option<(f64, u32)> = None;
    let mut ties = 0u32;
    for (i, (e, p)) in eps.iter().zip(points).enumerate() {
        if !usable(i, e) {
            continue;
        }
        let c = here.closeness(p);
        match best {
            Some((b, _)) if c < b - 1e-12 => {}
            Some((b, _)) if c <= b + 1e-12 => {
                ties += 1;
                if rng.u32(0..ties) == 0 {
                    best = Some((b, i as u32));
                }
            }
            _ => {
                best = Some((c, i as u32));
                ties = 1;
            }
        }
    }
    best.map(|(_, i)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Status;
    use crate::routing::test_support::ep;

    fn answerable(e: &Endpoint) -> bool {
        e.status().is_answerable()
    }

    #[test]
    fn nearest_then_next_nearest() {
        let dublin = Point::new(53.35, -6.26);
        let sydney = Point::new(-33.86, 151.21);
        let virginia = Point::new(38.9, -77.4);
        let points = [sydney, dublin, virginia];
        let mut eps = [
            ep(1, Status::Online),
            ep(2, Status::Online),
            ep(3, Status::Online),
        ];
        let mut rng = fastrand::Rng::with_seed(1);
        let frankfurt = Point::new(50.11, 8.68);
        assert_eq!(
            pick(&eps, &points, Some(frankfurt), answerable, &mut rng),
            Some(1)
        );
        let perth = Point::new(-31.95, 115.86);
        assert_eq!(
            pick(&eps, &points, Some(perth), answerable, &mut rng),
            Some(0)
        );
        // Dublin down: Frankfurt goes to Virginia, the next nearest.
        eps[1] = ep(2, Status::Degraded);
        assert_eq!(
            pick(&eps, &points, Some(frankfurt), answerable, &mut rng),
            Some(2)
        );
        // Unknown location: list order.
        assert_eq!(pick(&eps, &points, None, answerable, &mut rng), Some(0));
    }

    mod measured {
        use super::*;
        use crate::geo::{self, Location};
        use crate::latency::{Latency, Record};
        use crate::netblock::Network;
        use crate::routing::{Decision, NoTrace, Trace};
        use std::net::IpAddr;

        const NOW_NET: &str = "198.51.100.0/24";

        /// Tells `t` each look, as routing does.
        fn to<T: Trace>(
            t: &mut T,
        ) -> impl FnMut(From, bool, &Policy, &mut dyn Iterator<Item = (u32, Estimate)>) + '_
        {
            move |f, d, p, e| t.latency(f, d, p, e)
        }

        fn rec(l: &Latency, net: &str, ep: u32, ms: f64, samples: u32) {
            let net: Network = net.parse().unwrap();
            let at = crate::clock::unix_secs_now();
            l.ingest(
                &[Record {
                    net,
                    ep,
                    rtt_ms: ms,
                    samples,
                    at,
                }],
                true,
            );
        }

        fn eps() -> [Endpoint; 2] {
            [ep(1, Status::Online), ep(2, Status::Online)]
        }

        fn points() -> [Point; 2] {
            // Dublin, Virginia.
            [Point::new(53.35, -6.26), Point::new(38.9, -77.4)]
        }

        fn ecs_pick<T: Trace>(l: &Latency, trace: &mut T) -> (Option<u32>, u8) {
            let mut cache = geo::Cache::default();
            let resolver: IpAddr = "203.0.113.7".parse().unwrap();
            let mut client =
                Client::from_ecs(Some("198.51.100.0".parse().unwrap()), 24, None, &mut cache)
                    .with_latency(l, resolver);
            let mut rng = fastrand::Rng::with_seed(3);
            let got = by_latency(
                &eps(),
                &points(),
                answerable,
                &mut client,
                &mut rng,
                to(trace),
            );
            (got, client.scope)
        }

        #[test]
        fn the_faster_endpoint_wins_with_enough_samples_for_two() {
            let l = Latency::default();
            rec(&l, NOW_NET, 1, 90.0, 40);
            rec(&l, NOW_NET, 2, 20.0, 40);
            let mut d = Decision::default();
            d.enter(0);
            assert_eq!(
                ecs_pick(&l, &mut d),
                (Some(1), 24),
                "the answer is scoped to the /24"
            );
            let look = &d.steps[0].latency[0];
            assert!(look.decided);
            let text = look.text(&eps(), Some(1), crate::clock::unix_secs_now());
            assert!(text.starts_with("latency from client network 198.51.100.0/24 (ECS): ep2 20 ms (40 samples, newest 0 s ago) < ep1 90 ms (40); "), "{text}");
            assert!(text.ends_with("chosen ep2"), "{text}");
        }

        #[test]
        fn too_few_samples_leave_it_to_distance_and_say_why() {
            let l = Latency::default();
            rec(&l, NOW_NET, 1, 90.0, 12);
            rec(&l, NOW_NET, 2, 20.0, 40);
            let mut d = Decision::default();
            d.enter(0);
            assert_eq!(ecs_pick(&l, &mut d).0, None);
            let text = d.steps[0].latency[0].text(&eps(), None, 0);
            assert_eq!(
                text,
                "distance: latency from client network 198.51.100.0/24 (ECS) has ep2 40 samples, ep1 12 samples (too few); 30 needed for at least two usable endpoints"
            );
            // No samples at all: distance, and the answer is not scoped by latency.
            let empty = Latency::default();
            assert_eq!(ecs_pick(&empty, &mut NoTrace), (None, 0));
        }

        #[test]
        fn resolver_without_ecs_uses_the_clients_behind_it() {
            let l = Latency::default();
            let resolver: Network = "203.0.113.0/24".parse().unwrap();
            let client_net: Network = NOW_NET.parse().unwrap();
            l.record_resolver(resolver, client_net, std::time::SystemTime::now());
            rec(&l, NOW_NET, 1, 90.0, 40);
            rec(&l, NOW_NET, 2, 20.0, 40);
            let mut cache = geo::Cache::default();
            let mut client =
                Client::from_resolver("203.0.113.7".parse().unwrap(), None, &mut cache)
                    .with_latency(&l, "203.0.113.7".parse().unwrap());
            let mut rng = fastrand::Rng::with_seed(3);
            let mut d = Decision::default();
            d.enter(0);
            assert_eq!(
                by_latency(
                    &eps(),
                    &points(),
                    answerable,
                    &mut client,
                    &mut rng,
                    to(&mut d)
                ),
                Some(1)
            );
            assert!(matches!(
                d.steps[0].latency[0].from,
                crate::latency::From::Behind(_)
            ));
        }

        /// An ECS client with no samples of its own goes by distance, even
        /// through a resolver with clients mapped behind it: a resolver that
        /// sends ECS (a public one) serves clients anywhere.
        #[test]
        fn an_ecs_client_without_samples_is_not_routed_by_its_resolvers_mapping() {
            let l = Latency::default();
            let resolver: Network = "203.0.113.0/24".parse().unwrap();
            let mapped: Network = "192.0.2.0/24".parse().unwrap();
            l.record_resolver(resolver, mapped, std::time::SystemTime::now());
            rec(&l, "192.0.2.0/24", 1, 90.0, 40);
            rec(&l, "192.0.2.0/24", 2, 20.0, 40);
            rec(&l, "203.0.113.0/24", 1, 90.0, 40);
            rec(&l, "203.0.113.0/24", 2, 20.0, 40);
            let mut d = Decision::default();
            d.enter(0);
            // 198.51.100.0/24 (the ECS network) has no rows.
            assert_eq!(ecs_pick(&l, &mut d), (None, 24));
            // Only the ECS network is looked at: its rows, its mapping.
            let ecs: Network = "198.51.100.0/24".parse().unwrap();
            for look in &d.steps[0].latency {
                assert_eq!(look.from.network(), ecs, "{:?}", look.from);
            }
            // A client behind a proxy: the resolver asked with ECS
            // 198.51.100.0/24, the beacon came from 192.0.2.0/24.
            l.record_resolver(ecs, mapped, std::time::SystemTime::now());
            assert_eq!(ecs_pick(&l, &mut NoTrace), (Some(1), 24));
            // An ECS address too coarse to name a network: distance alone.
            let mut cache = geo::Cache::default();
            let mut client =
                Client::from_ecs(Some("198.51.0.0".parse().unwrap()), 16, None, &mut cache)
                    .with_latency(&l, "203.0.113.7".parse().unwrap());
            let mut rng = fastrand::Rng::with_seed(3);
            let got = by_latency(
                &eps(),
                &points(),
                answerable,
                &mut client,
                &mut rng,
                to(&mut NoTrace),
            );
            assert_eq!(got, None);
        }

        #[test]
        fn within_the_band_the_nearest_wins() {
            let l = Latency::default();
            let resolver = "203.0.113.7";
            rec(&l, "203.0.113.0/24", 1, 21.0, 40);
            rec(&l, "203.0.113.0/24", 2, 20.0, 40);
            let paris = Location {
                country: None,
                subdivision: None,
                point: Some(Point::new(48.86, 2.35)),
                group: None,
            };
            let mut cache = geo::Cache::default();
            let mut client =
                Client::at(paris, &mut cache).with_latency(&l, resolver.parse().unwrap());
            let mut rng = fastrand::Rng::with_seed(3);
            // 21 ms is within 10% of 20 ms: Dublin, the nearer, wins.
            assert_eq!(
                by_latency(
                    &eps(),
                    &points(),
                    answerable,
                    &mut client,
                    &mut rng,
                    to(&mut NoTrace)
                ),
                Some(0)
            );
            // A narrower band: the faster wins.
            l.set_policy(crate::latency::Policy {
                band: crate::latency::Band::Millis(0.5),
                ..Default::default()
            });
            assert_eq!(
                by_latency(
                    &eps(),
                    &points(),
                    answerable,
                    &mut client,
                    &mut rng,
                    to(&mut NoTrace)
                ),
                Some(1)
            );
            // Only usable endpoints count: the faster one down, not enough left.
            let down = [ep(1, Status::Online), ep(2, Status::Degraded)];
            assert_eq!(
                by_latency(
                    &down,
                    &points(),
                    answerable,
                    &mut client,
                    &mut rng,
                    to(&mut NoTrace)
                ),
                None
            );
        }
    }

    #[test]
    fn same_location_shares_evenly() {
        let fra = Point::new(50.11, 8.68);
        let points = [fra, fra, Point::new(1.35, 103.8)];
        let eps = [
            ep(1, Status::Online),
            ep(2, Status::Online),
            ep(3, Status::Online),
        ];
        let mut rng = fastrand::Rng::with_seed(5);
        let mut counts = [0u32; 3];
        for _ in 0..10_000 {
            let i = pick(
                &eps,
                &points,
                Some(Point::new(48.86, 2.35)),
                answerable,
                &mut rng,
            )
            .unwrap();
            counts[i as usize] += 1;
        }
        assert_eq!(counts[2], 0);
        assert!((counts[0] as i32 - 5000).abs() < 300, "{counts:?}");
    }
}
