//! Cloud region names (Azure, AWS, Google Cloud) and where they are, for
//! `location = "westeurope"` in performance routing. Coordinates are those
//! of the city each provider names for the region.

/// `(name, latitude, longitude)`, sorted by name.
static REGIONS: &[(&str, f64, f64)] = &[
    // AWS
    ("af-south-1", -33.93, 18.42),
    ("ap-east-1", 22.27, 114.16),
    ("ap-northeast-1", 35.68, 139.77),
    ("ap-northeast-2", 37.57, 126.98),
    ("ap-northeast-3", 34.69, 135.50),
    ("ap-south-1", 19.08, 72.88),
    ("ap-south-2", 17.39, 78.49),
    ("ap-southeast-1", 1.35, 103.82),
    ("ap-southeast-2", -33.87, 151.21),
    ("ap-southeast-3", -6.21, 106.85),
    ("ap-southeast-4", -37.81, 144.96),
    ("ap-southeast-5", 3.139, 101.69),
    ("ca-central-1", 45.50, -73.57),
    ("ca-west-1", 51.05, -114.07),
    ("eu-central-1", 50.11, 8.68),
    ("eu-central-2", 47.37, 8.54),
    ("eu-north-1", 59.33, 18.07),
    ("eu-south-1", 45.46, 9.19),
    ("eu-south-2", 41.65, -0.88),
    ("eu-west-1", 53.35, -6.26),
    ("eu-west-2", 51.51, -0.13),
    ("eu-west-3", 48.86, 2.35),
    ("il-central-1", 32.08, 34.78),
    ("me-central-1", 24.45, 54.38),
    ("me-south-1", 26.07, 50.56),
    ("mx-central-1", 20.59, -100.39),
    ("sa-east-1", -23.55, -46.63),
    ("us-east-1", 38.90, -77.44),
    ("us-east-2", 39.96, -83.00),
    ("us-west-1", 37.35, -121.96),
    ("us-west-2", 45.84, -119.70),
    // Google Cloud
    ("africa-south1", -26.20, 28.05),
    ("asia-east1", 24.05, 120.52),
    ("asia-east2", 22.32, 114.17),
    ("asia-northeast1", 35.69, 139.69),
    ("asia-northeast2", 34.69, 135.50),
    ("asia-northeast3", 37.57, 126.98),
    ("asia-south1", 19.08, 72.88),
    ("asia-south2", 28.61, 77.21),
    ("asia-southeast1", 1.34, 103.71),
    ("asia-southeast2", -6.21, 106.85),
    ("australia-southeast1", -33.87, 151.21),
    ("australia-southeast2", -37.81, 144.96),
    ("europe-central2", 52.23, 21.01),
    ("europe-north1", 60.57, 27.19),
    ("europe-southwest1", 40.42, -3.70),
    ("europe-west1", 50.47, 3.82),
    ("europe-west10", 52.52, 13.40),
    ("europe-west12", 45.07, 7.69),
    ("europe-west2", 51.51, -0.13),
    ("europe-west3", 50.11, 8.68),
    ("europe-west4", 53.44, 6.84),
    ("europe-west6", 47.37, 8.54),
    ("europe-west8", 45.46, 9.19),
    ("europe-west9", 48.86, 2.35),
    ("me-central1", 25.29, 51.53),
    ("me-central2", 26.43, 50.10),
    ("me-west1", 32.08, 34.78),
    ("northamerica-northeast1", 45.50, -73.57),
    ("northamerica-northeast2", 43.65, -79.38),
    ("southamerica-east1", -23.55, -46.63),
    ("southamerica-west1", -33.45, -70.67),
    ("us-central1", 41.26, -95.86),
    ("us-east1", 33.20, -80.01),
    ("us-east4", 39.04, -77.49),
    ("us-east5", 39.96, -83.00),
    ("us-south1", 32.78, -96.80),
    ("us-west1", 45.60, -121.18),
    ("us-west2", 34.05, -118.24),
    ("us-west3", 40.76, -111.89),
    ("us-west4", 36.17, -115.14),
    // Azure
    ("australiacentral", -35.31, 149.12),
    ("australiaeast", -33.86, 151.21),
    ("australiasoutheast", -37.81, 144.96),
    ("brazilsouth", -23.55, -46.63),
    ("canadacentral", 43.65, -79.38),
    ("canadaeast", 46.82, -71.22),
    ("centralindia", 18.58, 73.92),
    ("centralus", 41.59, -93.62),
    ("chilecentral", -33.45, -70.67),
    ("eastasia", 22.27, 114.19),
    ("eastus", 37.37, -79.82),
    ("eastus2", 36.67, -78.39),
    ("francecentral", 48.86, 2.35),
    ("francesouth", 43.30, 5.37),
    ("germanynorth", 53.07, 8.81),
    ("germanywestcentral", 50.11, 8.68),
    ("indonesiacentral", -6.21, 106.85),
    ("israelcentral", 31.77, 35.21),
    ("italynorth", 45.46, 9.19),
    ("japaneast", 35.68, 139.77),
    ("japanwest", 34.69, 135.50),
    ("koreacentral", 37.57, 126.98),
    ("koreasouth", 35.18, 129.08),
    ("malaysiawest", 3.139, 101.69),
    ("mexicocentral", 20.59, -100.39),
    ("newzealandnorth", -36.85, 174.76),
    ("northcentralus", 41.88, -87.63),
    ("northeurope", 53.35, -6.26),
    ("norwayeast", 59.91, 10.75),
    ("norwaywest", 58.97, 5.73),
    ("polandcentral", 52.23, 21.01),
    ("qatarcentral", 25.29, 51.53),
    ("southafricanorth", -25.73, 28.22),
    ("southafricawest", -34.08, 18.84),
    ("southcentralus", 29.42, -98.49),
    ("southeastasia", 1.28, 103.83),
    ("southindia", 12.98, 80.16),
    ("spaincentral", 40.42, -3.70),
    ("swedencentral", 60.67, 17.14),
    ("switzerlandnorth", 47.45, 8.56),
    ("switzerlandwest", 46.20, 6.14),
    ("uaecentral", 24.47, 54.37),
    ("uaenorth", 25.27, 55.32),
    ("uksouth", 51.51, -0.13),
    ("ukwest", 51.48, -3.18),
    ("westcentralus", 41.14, -104.82),
    ("westeurope", 52.37, 4.90),
    ("westindia", 19.09, 72.87),
    ("westus", 37.78, -122.42),
    ("westus2", 47.23, -119.85),
    ("westus3", 33.45, -112.07),
];

/// The coordinates of a known region (case-insensitive; Azure's display
/// spellings with spaces, like "West Europe", are accepted).
pub fn lookup(name: &str) -> Option<(f64, f64)> {
    let key = normalise(name);
    REGIONS
        .iter()
        .find(|(n, _, _)| *n == key)
        .map(|&(_, lat, lon)| (lat, lon))
}

fn normalise(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    // "West Europe" -> "westeurope", but keep AWS/GCP hyphens.
    if lower.contains(' ') {
        lower.replace(' ', "")
    } else {
        lower
    }
}

/// Up to three known names closest to `name`, for error messages.
pub fn suggest(name: &str) -> Vec<&'static str> {
    super::suggest(&normalise(name), REGIONS.iter().map(|(n, _, _)| *n), 0.8)
}

/// Every known region name.
pub fn names() -> impl Iterator<Item = &'static str> {
    REGIONS.iter().map(|(n, _, _)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_and_spellings() {
        assert_eq!(lookup("westeurope"), Some((52.37, 4.90)));
        assert_eq!(lookup("West Europe"), lookup("westeurope"));
        assert_eq!(lookup("EU-CENTRAL-1"), Some((50.11, 8.68)));
        assert!(lookup("europe-west3").is_some());
        assert!(lookup("moon-base-1").is_none());
        let mut sorted: Vec<_> = names().collect();
        let len = sorted.len();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), len, "duplicate region names");
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("westeurop")[0], "westeurope");
        assert!(suggest("eu-central-9").contains(&"eu-central-1"));
        assert!(suggest("zzzzzz").is_empty());
    }
}
