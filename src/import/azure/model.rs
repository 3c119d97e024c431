//! The input's shapes, read with serde: a Traffic Manager profile, its
//! `dnsConfig` and `monitorConfig`, and its endpoints, each keeping the
//! keys it does not name (`other`) so that they can be reported.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

// What Azure prints, after `properties` is lifted (`arm::Flat`).

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AzProfile {
    pub(super) traffic_routing_method: Option<String>,
    pub(super) profile_status: Option<String>,
    pub(super) dns_config: Option<AzDns>,
    pub(super) monitor_config: Option<AzMonitor>,
    pub(super) traffic_view_enrollment_status: Option<String>,
    pub(super) max_return: Option<i64>,
    pub(super) allowed_endpoint_record_types: Option<Vec<String>>,
    #[serde(flatten)]
    pub(super) other: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AzDns {
    pub(super) relative_name: Option<String>,
    pub(super) ttl: Option<i64>,
    pub(super) fqdn: Option<String>,
    #[serde(flatten)]
    pub(super) other: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AzMonitor {
    pub(super) protocol: Option<String>,
    pub(super) port: Option<i64>,
    pub(super) path: Option<String>,
    pub(super) interval_in_seconds: Option<i64>,
    pub(super) timeout_in_seconds: Option<i64>,
    pub(super) tolerated_number_of_failures: Option<i64>,
    pub(super) expected_status_code_ranges: Option<Vec<AzRange>>,
    pub(super) custom_headers: Option<Vec<AzHeader>>,
    #[allow(dead_code)]
    pub(super) profile_monitor_status: Option<Value>,
    #[serde(flatten)]
    pub(super) other: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
pub(super) struct AzRange {
    pub(super) min: Option<i64>,
    pub(super) max: Option<i64>,
}

#[derive(Deserialize)]
pub(super) struct AzHeader {
    pub(super) name: Option<String>,
    pub(super) value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AzEndpoint {
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    pub(super) target: Option<String>,
    pub(super) endpoint_status: Option<String>,
    pub(super) weight: Option<i64>,
    pub(super) priority: Option<i64>,
    pub(super) endpoint_location: Option<String>,
    pub(super) min_child_endpoints: Option<i64>,
    #[serde(rename = "minChildEndpointsIPv4")]
    pub(super) min_child_v4: Option<i64>,
    #[serde(rename = "minChildEndpointsIPv6")]
    pub(super) min_child_v6: Option<i64>,
    pub(super) geo_mapping: Option<Vec<String>>,
    pub(super) subnets: Option<Vec<AzSubnet>>,
    pub(super) custom_headers: Option<Vec<AzHeader>>,
    pub(super) always_serve: Option<String>,
    #[serde(flatten)]
    pub(super) other: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
pub(super) struct AzSubnet {
    pub(super) first: Option<String>,
    pub(super) last: Option<String>,
    pub(super) scope: Option<i64>,
}
