//! The importer on small profiles (one per routing method and shape of
//! input), and on every fixture of `tests/fixtures/azure/`.

use serde_json::{Value, json};

use super::keys::{DNS_KEYS, ENDPOINT_KEYS, Fate, MONITOR_KEYS, PROFILE_KEYS, fate, is_empty};
use super::{Input, import};
use crate::import::Import;
use crate::import::arm::{self, Flat};

fn run(doc: Value) -> Result<Import, Vec<String>> {
    import(
        &[Input {
            file: "p.json".into(),
            doc,
        }],
        "tm.example.test",
    )
}

fn messages(i: &Import) -> String {
    i.notices.iter().map(|n| format!("{n}\n")).collect()
}

fn cli_profile(method: &str, endpoints: Value) -> Value {
    json!({
        "dnsConfig": {"fqdn": "app.trafficmanager.net", "relativeName": "app", "ttl": 30},
        "endpoints": endpoints,
        "id": "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Network/trafficManagerProfiles/app",
        "location": "global",
        "maxReturn": null,
        "monitorConfig": {
            "customHeaders": [{"name": "Host", "value": "app.example.com"}],
            "expectedStatusCodeRanges": [{"min": 200, "max": 299}, {"min": 301, "max": 301}],
            "intervalInSeconds": 10, "path": "/healthz", "port": 443, "profileMonitorStatus": "Online",
            "protocol": "HTTPS", "timeoutInSeconds": 5, "toleratedNumberOfFailures": 2
        },
        "name": "app",
        "profileStatus": "Enabled",
        "resourceGroup": "rg",
        "tags": {},
        "trafficRoutingMethod": method,
        "trafficViewEnrollmentStatus": "Disabled",
        "type": "Microsoft.Network/trafficManagerProfiles"
    })
}

fn ext(name: &str, target: &str) -> Value {
    json!({"name": name, "type": "Microsoft.Network/trafficManagerProfiles/externalEndpoints",
           "target": target, "endpointStatus": "Enabled", "endpointMonitorStatus": "Online"})
}

#[test]
fn priority_profile_maps_every_setting() {
    let mut a = ext("primary", "203.0.113.10");
    a["priority"] = json!(1);
    a["customHeaders"] = json!([{"name": "X-Probe", "value": "1"}]);
    let mut b = ext("secondary", "www.example.net");
    b["priority"] = json!(2);
    b["endpointStatus"] = json!("Disabled");
    let out = run(cli_profile("Priority", json!([a, b]))).unwrap();
    let f = &out.files[0];
    assert_eq!(f.file_name, "app.toml");
    assert_eq!(f.profile, "app.tm.example.test.");
    for line in [
        "name = \"app.tm.example.test.\"",
        "routing = \"priority\"",
        "ttl = 30",
        "protocol = \"https\"",
        "port = 443",
        "path = \"/healthz\"",
        "interval = \"10s\"",
        "timeout = \"5s\"",
        "tolerated_failures = 2",
        "expected_status = [\"200-299\", 301]",
        "headers = { \"Host\" = \"app.example.com\" }",
        "tls_verify = false",
        "target = \"203.0.113.10\"\npriority = 1\nprobe = { headers = { \"X-Probe\" = \"1\" } }",
        "target = \"www.example.net\"\npriority = 2\nenabled = false",
    ] {
        assert!(f.text.contains(line), "no `{line}` in\n{}", f.text);
    }
    // The HTTPS difference, and the keys that describe the resource.
    assert_eq!(
        messages(&out),
        "note: p.json: monitorConfig.protocol: HTTPS: Azure does not verify the certificates of its probes, so `tls_verify = false` is written; Switchyard verifies by default: remove it once the endpoints' certificates name their Host\n\
         note: p.json: id, location, resourceGroup, type, monitorConfig.profileMonitorStatus, endpoints[].endpointMonitorStatus: not carried over: they describe the Azure resource and its state at export (Switchyard probes for itself), not how it routes\n"
    );
    // The text is TOML.
    toml::from_str::<toml::Table>(&f.text).unwrap();
}

#[test]
fn arm_resource_shape_and_unknown_settings() {
    let doc = json!({
        "name": "app", "type": "Microsoft.Network/trafficManagerProfiles",
        "properties": {
            "trafficRoutingMethod": "Weighted", "trafficViewEnrollmentStatus": "Enabled",
            "dnsConfig": {"relativeName": "App", "ttl": 60},
            "monitorConfig": {"protocol": "TCP", "port": 8443, "intervalInSeconds": 30, "timeoutInSeconds": 10, "toleratedNumberOfFailures": 3},
            "futureSetting": true,
            "endpoints": [
                {"name": "blue green", "type": "Microsoft.Network/trafficManagerProfiles/externalEndpoints",
                 "properties": {"target": "192.0.2.1", "weight": 3, "alwaysServe": "Enabled"}},
                {"name": "az", "type": "Microsoft.Network/trafficManagerProfiles/azureEndpoints",
                 "properties": {"targetResourceId": "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/ip1", "weight": 1}}
            ]
        }
    });
    let out = run(doc).unwrap();
    let text = &out.files[0].text;
    assert!(
        text.contains(
            "name = \"blue-green\"\ntarget = \"192.0.2.1\"\nweight = 3\nalways_serve = true"
        ),
        "{text}"
    );
    assert!(text.contains("# Not imported (no address"), "{text}");
    assert!(
        text.contains("port = 8443") && !text.contains("path ="),
        "{text}"
    );
    let m = messages(&out);
    assert!(m.contains("warning: p.json: properties.trafficViewEnrollmentStatus: Traffic View is not carried over"), "{m}");
    assert!(
        m.contains(
            "warning: p.json: properties.futureSetting: setting `futureSetting` = true is unknown"
        ),
        "{m}"
    );
    assert!(m.contains("warning: p.json: properties.endpoints[1].properties.target: endpoint `az` has only the Azure resource id `/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/ip1`"), "{m}");
    assert!(m.contains("note: p.json: properties.endpoints[0].name: endpoint `blue green` is named `blue-green`"), "{m}");
}

#[test]
fn malformed_input_names_the_json_path() {
    let mut doc = cli_profile("Priority", json!([ext("a", "192.0.2.1")]));
    doc["monitorConfig"]["port"] = json!("eighty");
    let err = run(doc).unwrap_err();
    assert!(
        err[0].starts_with("p.json: monitorConfig.port: invalid type: string \"eighty\""),
        "{err:?}"
    );
    let mut doc = cli_profile("Priority", json!([ext("a", "192.0.2.1")]));
    doc["endpoints"][0]["priority"] = json!(true);
    let err = run(doc).unwrap_err();
    assert!(
        err[0].starts_with("p.json: endpoints[0].priority: invalid type: boolean"),
        "{err:?}"
    );
    let err = run(json!([1])).unwrap_err();
    assert!(err[0].contains("[0]"), "{err:?}");
    let mut doc = cli_profile("RoundRobin", json!([ext("a", "192.0.2.1")]));
    doc["dnsConfig"]["ttl"] = json!(5);
    let err = run(doc).unwrap_err();
    assert!(
        err[0].contains("trafficRoutingMethod: unknown routing method `roundrobin`"),
        "{err:?}"
    );
}

#[test]
fn geographic_codes_and_performance_regions() {
    let mut a = ext("eu", "192.0.2.1");
    a["geoMapping"] = json!(["GEO-EU", "de", "US-CA", "CA-BC", "XX", "WORLD"]);
    let mut b = ext("dup", "192.0.2.2");
    b["geoMapping"] = json!(["DE"]);
    let out = run(cli_profile("Geographic", json!([a, b]))).unwrap();
    let text = &out.files[0].text;
    assert!(
        text.contains("regions = [\"GEO-EU\", \"DE\", \"US-CA\", \"CA-BC\", \"WORLD\"]"),
        "{text}"
    );
    assert!(text.contains("# Not imported (no regions)"), "{text}");
    let m = messages(&out);
    assert!(
        m.contains("geoMapping[4]: unknown country code `XX`"),
        "{m}"
    );
    assert!(
        m.contains("endpoints[1].geoMapping[0]: `DE` is already mapped to endpoint `eu`"),
        "{m}"
    );

    let mut a = ext("eu", "192.0.2.1");
    a["endpointLocation"] = json!("West Europe");
    let mut b = ext("us", "192.0.2.2");
    b["endpointLocation"] = json!("East US 2");
    let mut c = ext("rio", "192.0.2.3");
    c["endpointLocation"] = json!("Brazil Southeast");
    let mut d = ext("moon", "192.0.2.4");
    d["endpointLocation"] = json!("Moon Base");
    let out = run(cli_profile("Performance", json!([a, b, c, d]))).unwrap();
    let text = &out.files[0].text;
    assert!(
        text.contains("location = \"westeurope\"  # Azure: \"West Europe\""),
        "{text}"
    );
    assert!(text.contains("location = \"eastus2\""), "{text}");
    assert!(
        text.contains("location = { lat = -22.9, lon = -43.17 }"),
        "{text}"
    );
    assert!(
        text.contains("# Not imported (unknown location `Moon Base`)"),
        "{text}"
    );
}

#[test]
fn subnets_multivalue_and_priorities() {
    let mut a = ext("office", "10.0.0.1");
    a["subnets"] = json!([{"first": "10.0.0.0", "scope": 8}, {"first": "192.0.2.10", "last": "192.0.2.20"}, {"first": "198.51.100.7"}]);
    let mut b = ext("broken", "10.0.0.2");
    b["subnets"] = json!([{"first": "10.1.0.1", "scope": 16}]);
    let c = ext("fallback", "192.0.2.99");
    let out = run(cli_profile("Subnet", json!([a, b, c]))).unwrap();
    let text = &out.files[0].text;
    assert!(
        text.contains("subnets = [\"10.0.0.0/8\", \"192.0.2.10-192.0.2.20\", \"198.51.100.7\"]"),
        "{text}"
    );
    assert!(
        text.contains("# Not imported (no readable subnet)"),
        "{text}"
    );
    assert!(
        messages(&out).contains("has host bits set"),
        "{}",
        messages(&out)
    );

    let mut doc = cli_profile(
        "MultiValue",
        json!([
            ext("a", "192.0.2.1"),
            ext("b", "2001:db8::1"),
            ext("c", "host.example.net")
        ]),
    );
    doc["maxReturn"] = json!(2);
    let out = run(doc).unwrap();
    let text = &out.files[0].text;
    assert!(text.contains("max_answers = 2"), "{text}");
    assert!(
        text.contains("# Not imported (a host name in a multivalue profile)"),
        "{text}"
    );

    // Missing priorities: list order, sorted by the ones given.
    let mut a = ext("a", "192.0.2.1");
    a["priority"] = json!(2);
    let mut b = ext("b", "192.0.2.2");
    b["priority"] = json!(1);
    let c = ext("c", "192.0.2.3");
    let out = run(cli_profile("Priority", json!([a, b, c]))).unwrap();
    let text = &out.files[0].text;
    let pos = |n: &str| text.find(&format!("name = \"{n}\"")).unwrap();
    assert!(pos("b") < pos("a") && pos("a") < pos("c"), "{text}");
    assert!(!text.contains("priority ="), "{text}");
}

#[test]
fn nested_endpoints_become_nested_profiles() {
    let mut parent = cli_profile(
        "Priority",
        json!([
            {"name": "eu", "type": "Microsoft.Network/trafficManagerProfiles/nestedEndpoints",
             "target": "app-eu.trafficmanager.net", "priority": 1, "minChildEndpoints": 2, "minChildEndpointsIPv6": 1,
             "targetResourceId": "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/trafficManagerProfiles/app-eu"},
            {"name": "us", "type": "Microsoft.Network/trafficManagerProfiles/nestedEndpoints",
             "target": "app-us.trafficmanager.net", "priority": 2, "minChildEndpoints": 1,
             "targetResourceId": "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/trafficManagerProfiles/app-us"}
        ]),
    );
    parent["name"] = json!("app");
    let mut child = cli_profile("Weighted", json!([ext("a", "192.0.2.1")]));
    child["name"] = json!("app-eu");
    child["dnsConfig"]["relativeName"] = json!("app-eu");
    child["dnsConfig"]["fqdn"] = json!("app-eu.trafficmanager.net");
    let out = import(
        &[
            Input {
                file: "parent.json".into(),
                doc: parent,
            },
            Input {
                file: "child.json".into(),
                doc: child,
            },
        ],
        "tm.example.test.",
    )
    .unwrap();
    assert_eq!(out.files.len(), 2);
    let text = &out.files[0].text;
    assert!(text.contains("name = \"eu\"\nprofile = \"app-eu.tm.example.test.\"  # nested endpoint\npriority = 1\nmin_child_endpoints = 2"), "{text}");
    assert!(text.contains("name = \"us\"\ntarget = \"app-us.trafficmanager.net\"\npriority = 2\nalways_serve = true"), "{text}");
    let m = messages(&out);
    assert!(
        m.contains("parent.json: endpoints[0].minChildEndpointsIPv6: 1 not carried over"),
        "{m}"
    );
    assert!(
        m.contains(
            "parent.json: endpoints[1].targetResourceId: child profile app-us was not imported"
        ),
        "{m}"
    );
}

#[test]
fn template_expressions_are_reported() {
    let doc = json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "parameters": {"ttl": {"type": "Int", "defaultValue": 30}},
        "resources": [{
            "type": "Microsoft.Network/trafficManagerProfiles", "apiVersion": "2022-04-01", "name": "app", "location": "global",
            "properties": {
                "trafficRoutingMethod": "Priority",
                "dnsConfig": {"relativeName": "app", "ttl": "[parameters('ttl')]"},
                "monitorConfig": {"protocol": "HTTP", "port": 80, "path": "/", "intervalInSeconds": 30},
                "endpoints": [
                    {"name": "a", "type": "Microsoft.Network/trafficManagerProfiles/externalEndpoints",
                     "properties": {"target": "[concat('a', '.example.net')]", "priority": 1}},
                    {"name": "b", "type": "Microsoft.Network/trafficManagerProfiles/externalEndpoints",
                     "properties": {"target": "192.0.2.2", "priority": 2}}
                ]
            }
        }]
    });
    let out = run(doc).unwrap();
    let m = messages(&out);
    assert!(m.contains("warning: p.json: resources[0].properties.dnsConfig.ttl: ARM template expression `[parameters('ttl')]` not carried over (its default would be `30`)"), "{m}");
    assert!(
        m.contains(
            "resources[0].properties.endpoints[0].properties.target: ARM template expression"
        ),
        "{m}"
    );
    assert!(
        out.files[0].text.contains("# Not imported (no address"),
        "{}",
        out.files[0].text
    );
    assert!(
        !out.files[0].text.contains("\nttl ="),
        "{}",
        out.files[0].text
    );
}

#[test]
fn a_profile_without_usable_endpoints_is_an_error() {
    let err = run(cli_profile("Priority", json!([]))).unwrap_err();
    assert!(
        err[0].contains("endpoints: profile `app` has no endpoint that can be written"),
        "{err:?}"
    );
    let err = import(
        &[Input {
            file: "p.json".into(),
            doc: cli_profile("Priority", json!([ext("a", "192.0.2.1")])),
        }],
        "bad zone",
    )
    .unwrap_err();
    assert!(err[0].starts_with("--zone"), "{err:?}");
}

/// Every key with a value in every fixture (`tests/fixtures/azure/`) is
/// carried over, or named by a notice: the importer drops nothing
/// quietly (issue 20: `tags` and a priority profile's
/// `endpointLocation` were).
#[test]
fn every_key_is_carried_over_or_reported() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/azure");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 7);
    for path in files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let input = Input {
            file: file.clone(),
            doc: doc.clone(),
        };
        let out = import(&[input], "tm.example.test").unwrap();
        // The keys the notices name: the last step of each path.
        let reported: std::collections::BTreeSet<&str> = out
            .notices
            .iter()
            .flat_map(|n| n.at.rsplit(": ").next().unwrap_or("").split(", "))
            .map(|p| p.rsplit(['.', ']']).next().unwrap_or(p))
            .collect();
        let (found, _) = arm::profiles(&doc, &file, &mut Vec::new()).unwrap();
        for f in found {
            let routing = f.profile.fields["trafficRoutingMethod"]
                .as_str()
                .unwrap()
                .to_ascii_lowercase();
            let mut objects = vec![(f.profile.clone(), PROFILE_KEYS)];
            for (key, table) in [("dnsConfig", DNS_KEYS), ("monitorConfig", MONITOR_KEYS)] {
                if let Some(v) = f.profile.fields.get(key) {
                    objects.push((Flat::new(String::new(), v), table));
                }
            }
            objects.extend(f.endpoints.iter().map(|e| (e.clone(), ENDPOINT_KEYS)));
            for (flat, table) in objects {
                for (k, v) in &flat.fields {
                    let carried = match fate(table, k) {
                        Some(Fate::Mapped) => true,
                        Some(Fate::Only(m)) => m == routing,
                        _ => false,
                    };
                    assert!(
                        carried || is_empty(v) || reported.contains(k.as_str()),
                        "{file}: `{k}` = {v} is neither carried over nor reported:\n{}",
                        messages(&out)
                    );
                }
            }
        }
    }
}
