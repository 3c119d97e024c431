//! Performance routing: the usable endpoint nearest the client by
//! great-circle distance; endpoints at the same distance share traffic
//! evenly; without a client location, list order.

use crate::geo::Point;
use crate::snapshot::Endpoint;

/// Picks the nearest usable endpoint to `client` (ties at random), or the
/// first usable in list order when the client's location is unknown.
pub fn pick(
    eps: &[Endpoint],
    points: &[Point],
    client: Option<Point>,
    usable: impl Fn(&Endpoint) -> bool,
    rng: &mut fastrand::Rng,
) -> Option<u32> {
    let Some(here) = client else {
        return eps.iter().position(&usable).map(|i| i as u32);
    };
    // Largest closeness = nearest. Reservoir-sample among exact ties so
    // endpoints in one location share evenly, without allocating.
    let mut best: Option<(f64, u32)> = None;
    let mut ties = 0u32;
    for (i, (e, p)) in eps.iter().zip(points).enumerate() {
        if !usable(e) {
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
