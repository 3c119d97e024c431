//! Priority routing: the usable endpoint with the lowest priority number.

use crate::snapshot::Endpoint;

/// Returns the index of the first usable endpoint in priority `order`.
pub fn pick(eps: &[Endpoint], order: &[u32], usable: impl Fn(&Endpoint) -> bool) -> Option<u32> {
    order
        .iter()
        .copied()
        .find(|&i| eps.get(i as usize).is_some_and(&usable))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Status;
    use crate::routing::test_support::ep;

    #[test]
    fn lowest_usable_priority_wins() {
        let eps = [
            ep(1, Status::Online),
            ep(2, Status::Online),
            ep(3, Status::Degraded),
        ];
        let answerable = |e: &Endpoint| e.status().is_answerable();
        assert_eq!(pick(&eps, &[2, 1, 0], answerable), Some(1));
        assert_eq!(pick(&eps, &[0, 1, 2], answerable), Some(0));
        assert_eq!(pick(&eps, &[2], answerable), None);
        assert_eq!(pick(&eps, &[], answerable), None);
    }
}
