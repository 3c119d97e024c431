//! Azure Resource Manager shapes: finding Traffic Manager profiles and
//! their endpoints in what `az ... show` prints (flat), in an ARM resource
//! (`{"properties": {...}}`), in a list of either, or in an exported
//! template (`{"$schema": ..., "resources": [...]}`, endpoints inline or as
//! resources of their own), and the few template expressions needed to
//! tell which profile an endpoint resource belongs to.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::{Level, Notice};

/// A JSON object with the keys of its `properties` object (if any) lifted
/// beside its own, remembering which came from where, so a message can
/// name the key's real path.
#[derive(Debug, Clone, Default)]
pub struct Flat {
    /// JSON path of the object in its file (`""` for the document itself).
    pub at: String,
    /// The keys: the object's own and its `properties`' (those win).
    pub fields: Map<String, Value>,
    /// Keys that came from `properties`.
    from_properties: BTreeSet<String>,
    /// Whether the object had `properties` (where missing keys belong).
    has_properties: bool,
}

impl Flat {
    /// Lifts `properties` of `v` (an object; anything else gives no keys).
    pub fn new(at: String, v: &Value) -> Flat {
        let mut fields = Map::new();
        let mut from_properties = BTreeSet::new();
        let has_properties = v.get("properties").is_some_and(Value::is_object);
        if let Some(obj) = v.as_object() {
            for (k, v) in obj {
                if k != "properties" || !v.is_object() {
                    fields.insert(k.clone(), v.clone());
                }
            }
            if let Some(props) = obj.get("properties").and_then(Value::as_object) {
                for (k, v) in props {
                    fields.insert(k.clone(), v.clone());
                    from_properties.insert(k.clone());
                }
            }
        }
        Flat {
            at,
            fields,
            from_properties,
            has_properties,
        }
    }

    /// The JSON path of `key` (or of a path below it, `key.rest`).
    pub fn path(&self, key: &str) -> String {
        let first = key.split(['.', '[']).next().unwrap_or(key);
        let missing = !self.fields.contains_key(first);
        let full = if self.from_properties.contains(first) || (self.has_properties && missing) {
            format!("properties.{key}")
        } else {
            key.to_string()
        };
        join(&self.at, &full)
    }
}

/// `a` + `.b` (or `[i]`), for JSON paths.
pub fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else if b.is_empty() || b.starts_with('[') {
        format!("{a}{b}")
    } else {
        format!("{a}.{b}")
    }
}

/// A Traffic Manager profile found in an input, and its endpoints.
#[derive(Debug, Clone)]
pub struct FoundProfile {
    /// The profile object.
    pub profile: Flat,
    /// Its Azure resource name, when known (nested endpoints name it).
    pub resource_name: Option<String>,
    /// Its endpoints, inline ones first, then endpoint resources of a
    /// template (which replace inline ones of the same name).
    pub endpoints: Vec<Flat>,
}

/// The parameters and variables of a template, for [`eval`].
#[derive(Debug, Clone, Default)]
pub struct Template {
    parameters: Map<String, Value>,
    variables: Map<String, Value>,
}

const PROFILE_TYPE: &str = "microsoft.network/trafficmanagerprofiles";

/// Finds every Traffic Manager profile in `doc`; `file` names the input in
/// notices. Whatever else the input holds is reported, not dropped quietly.
pub fn profiles(
    doc: &Value,
    file: &str,
    notices: &mut Vec<Notice>,
) -> Result<(Vec<FoundProfile>, Template), String> {
    let mut out = Vec::new();
    let mut tpl = Template::default();
    match doc {
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                out.push(profile(format!("[{i}]"), v, &tpl));
            }
        }
        Value::Object(obj) if obj.get("resources").is_some_and(Value::is_array) => {
            tpl.parameters = obj
                .get("parameters")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            tpl.variables = obj
                .get("variables")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let resources = obj["resources"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let mut endpoint_resources = Vec::new();
            for (i, r) in resources.iter().enumerate() {
                let at = format!("resources[{i}]");
                let kind = r
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_ascii_lowercase();
                if kind == PROFILE_TYPE {
                    let mut p = profile(at.clone(), r, &tpl);
                    // Child resources declared inside the profile resource.
                    for (j, c) in r
                        .get("resources")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .enumerate()
                    {
                        let cat = format!("{at}.resources[{j}]");
                        let ckind = c.get("type").and_then(Value::as_str).unwrap_or("");
                        if ckind.to_ascii_lowercase().ends_with("endpoints") {
                            add_endpoint(&mut p, Flat::new(cat, c), None, &tpl, file, notices);
                        } else {
                            notices.push(ignored(file, &cat, ckind));
                        }
                    }
                    out.push(p);
                } else if kind.starts_with(PROFILE_TYPE) && kind.ends_with("endpoints") {
                    endpoint_resources.push((at, r));
                } else if kind.contains("trafficmanagerusermetricskeys") {
                    notices.push(Notice {
                        level: Level::Warning,
                        at: format!("{file}: {at}"),
                        message: "Real User Measurements (a user metrics key) not carried over: Switchyard's performance routing ranks endpoints by distance from the client's GeoIP location, not by measured latency; drop the RUM JavaScript from your pages".into(),
                    });
                } else {
                    let raw = r.get("type").and_then(Value::as_str).unwrap_or("(no type)");
                    notices.push(ignored(file, &at, raw));
                }
            }
            for (at, r) in endpoint_resources {
                // `name` is `PROFILE/ENDPOINT`.
                let name = r.get("name").and_then(Value::as_str).unwrap_or("");
                let full = if is_expression(name) {
                    eval(name, &tpl)
                } else {
                    Some(name.to_string())
                };
                let (parent, endpoint) = match full.as_deref().and_then(|f| f.rsplit_once('/')) {
                    Some((p, e)) => (Some(p.to_string()), Some(e.to_string())),
                    None => (None, full.clone()),
                };
                let target = match &parent {
                    Some(pn) => out.iter().position(|p| {
                        p.resource_name
                            .as_deref()
                            .is_some_and(|n| n.eq_ignore_ascii_case(pn))
                    }),
                    None => None,
                }
                .or(if out.len() == 1 { Some(0) } else { None });
                match target {
                    Some(t) => add_endpoint(
                        &mut out[t],
                        Flat::new(at, r),
                        endpoint,
                        &tpl,
                        file,
                        notices,
                    ),
                    None => notices.push(Notice {
                        level: Level::Warning,
                        at: format!("{file}: {}", join(&at, "name")),
                        message: format!(
                            "endpoint resource `{name}` belongs to no profile of this template; not carried over: give it the literal name PROFILE/ENDPOINT of a profile in the template"
                        ),
                    }),
                }
            }
        }
        Value::Object(_) => out.push(profile(String::new(), doc, &tpl)),
        _ => {
            return Err(format!(
                "{file}: expected a Traffic Manager profile (a JSON object, as `az network traffic-manager profile show` prints it), a list of them, or an ARM template"
            ));
        }
    }
    if out.is_empty() {
        return Err(format!(
            "{file}: no resource of type Microsoft.Network/trafficManagerProfiles found"
        ));
    }
    Ok((out, tpl))
}

fn ignored(file: &str, at: &str, kind: &str) -> Notice {
    Notice {
        level: Level::Note,
        at: format!("{file}: {at}"),
        message: format!(
            "resource of type `{kind}` ignored: not part of a Traffic Manager profile"
        ),
    }
}

fn profile(at: String, v: &Value, tpl: &Template) -> FoundProfile {
    let flat = Flat::new(at, v);
    let resource_name = flat
        .fields
        .get("name")
        .and_then(Value::as_str)
        .and_then(|n| {
            if is_expression(n) {
                eval(n, tpl)
            } else {
                Some(n.to_string())
            }
        });
    let endpoints = match flat.fields.get("endpoints") {
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, e)| Flat::new(flat.path(&format!("endpoints[{i}]")), e))
            .collect(),
        _ => Vec::new(),
    };
    FoundProfile {
        profile: flat,
        resource_name,
        endpoints,
    }
}

/// Adds an endpoint resource to `p`, replacing an inline endpoint of the
/// same name (the template deploys the resource after the profile).
fn add_endpoint(
    p: &mut FoundProfile,
    mut e: Flat,
    name: Option<String>,
    tpl: &Template,
    file: &str,
    notices: &mut Vec<Notice>,
) {
    let name = name.or_else(|| {
        let n = e.fields.get("name").and_then(Value::as_str)?;
        if is_expression(n) {
            eval(n, tpl)
        } else {
            Some(n.to_string())
        }
    });
    let Some(name) = name else {
        notices.push(Notice {
            level: Level::Warning,
            at: format!("{file}: {}", e.path("name")),
            message: "endpoint resource whose name cannot be read (an ARM expression); not carried over: write its literal name".into(),
        });
        return;
    };
    let name = name.rsplit('/').next().unwrap_or(&name).to_string();
    e.fields.insert("name".into(), Value::String(name.clone()));
    let same = p.endpoints.iter().position(|x| {
        x.fields
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| n.eq_ignore_ascii_case(&name))
    });
    match same {
        Some(i) => p.endpoints[i] = e,
        None => p.endpoints.push(e),
    }
}

/// Is `s` an ARM template expression (`[...]`; `[[` escapes a literal)?
pub fn is_expression(s: &str) -> bool {
    let t = s.trim();
    t.starts_with('[') && t.ends_with(']') && !t.starts_with("[[")
}

/// Evaluates the expressions that name things in exported templates:
/// string literals, `parameters('x')` (its `defaultValue`),
/// `variables('x')`, `concat(...)` and `resourceId(...)` (the type and
/// names joined by `/`). Anything else is `None`.
pub fn eval(expr: &str, tpl: &Template) -> Option<String> {
    let t = expr.trim();
    let inner = t.strip_prefix('[')?.strip_suffix(']')?;
    let mut p = Parser {
        s: inner.as_bytes(),
        i: 0,
        tpl,
        depth: 0,
    };
    let v = p.expr()?;
    p.ws();
    (p.i == p.s.len()).then_some(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    tpl: &'a Template,
    depth: u8,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn expr(&mut self) -> Option<String> {
        self.depth += 1;
        if self.depth > 16 {
            return None;
        }
        self.ws();
        let r = if self.s.get(self.i) == Some(&b'\'') {
            self.literal()
        } else {
            self.call()
        };
        self.depth -= 1;
        r
    }

    fn literal(&mut self) -> Option<String> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.s.get(self.i)? {
                b'\'' if self.s.get(self.i + 1) == Some(&b'\'') => {
                    out.push(b'\'');
                    self.i += 2;
                }
                b'\'' => {
                    self.i += 1;
                    return String::from_utf8(out).ok();
                }
                c => {
                    out.push(*c);
                    self.i += 1;
                }
            }
        }
    }

    fn call(&mut self) -> Option<String> {
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i].is_ascii_alphanumeric() {
            self.i += 1;
        }
        let name = std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .to_ascii_lowercase();
        self.ws();
        if self.s.get(self.i) != Some(&b'(') {
            return None;
        }
        self.i += 1;
        let mut args = Vec::new();
        loop {
            self.ws();
            if self.s.get(self.i) == Some(&b')') {
                self.i += 1;
                break;
            }
            args.push(self.expr()?);
            self.ws();
            match self.s.get(self.i)? {
                b',' => self.i += 1,
                b')' => {
                    self.i += 1;
                    break;
                }
                _ => return None,
            }
        }
        match name.as_str() {
            "parameters" => {
                let [p] = args.as_slice() else { return None };
                scalar(self.tpl.parameters.get(p)?.get("defaultValue")?)
            }
            "variables" => {
                let [v] = args.as_slice() else { return None };
                let s = scalar(self.tpl.variables.get(v)?)?;
                if is_expression(&s) {
                    let mut inner = Parser {
                        s: s.as_bytes(),
                        i: 0,
                        tpl: self.tpl,
                        depth: self.depth,
                    };
                    let t = std::str::from_utf8(inner.s).ok()?.trim();
                    inner.s = t.strip_prefix('[')?.strip_suffix(']')?.as_bytes();
                    inner.expr()
                } else {
                    Some(s)
                }
            }
            "concat" => Some(args.concat()),
            "resourceid" if !args.is_empty() => Some(args.join("/")),
            _ => None,
        }
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tpl() -> Template {
        Template {
            parameters: json!({
                "trafficManagerProfiles_app_name": {"defaultValue": "app", "type": "String"},
                "noDefault": {"type": "String"}
            })
            .as_object()
            .unwrap()
            .clone(),
            variables:
                json!({"child": "[parameters('trafficManagerProfiles_app_name')]", "lit": "eu"})
                    .as_object()
                    .unwrap()
                    .clone(),
        }
    }

    #[test]
    fn expressions_that_name_things() {
        let t = tpl();
        assert!(is_expression("[parameters('x')]"));
        assert!(!is_expression("[[literal]"));
        assert!(!is_expression("app"));
        assert_eq!(
            eval("[parameters('trafficManagerProfiles_app_name')]", &t).as_deref(),
            Some("app")
        );
        assert_eq!(
            eval(
                "[concat(parameters('trafficManagerProfiles_app_name'), '/primary')]",
                &t
            )
            .as_deref(),
            Some("app/primary")
        );
        assert_eq!(
            eval(
                "[resourceId('Microsoft.Network/trafficManagerProfiles', variables('lit'))]",
                &t
            )
            .as_deref(),
            Some("Microsoft.Network/trafficManagerProfiles/eu")
        );
        assert_eq!(eval("[variables('child')]", &t).as_deref(), Some("app"));
        assert_eq!(eval("['it''s']", &t).as_deref(), Some("it's"));
        // Not evaluated: no default, unknown functions, malformed.
        assert_eq!(eval("[parameters('noDefault')]", &t), None);
        assert_eq!(eval("[uniqueString(resourceGroup().id)]", &t), None);
        assert_eq!(eval("[concat('a', ]", &t), None);
        assert_eq!(eval("[concat('a') trailing]", &t), None);
    }

    #[test]
    fn flat_paths_name_properties() {
        let f = Flat::new(
            "resources[0]".into(),
            &json!({"name": "x", "properties": {"dnsConfig": {"ttl": 5}}}),
        );
        assert_eq!(f.path("name"), "resources[0].name");
        assert_eq!(
            f.path("dnsConfig.ttl"),
            "resources[0].properties.dnsConfig.ttl"
        );
        assert_eq!(
            f.path("endpoints[2]"),
            "resources[0].properties.endpoints[2]"
        );
        let root = Flat::new(String::new(), &json!({"dnsConfig": {}}));
        assert_eq!(root.path("dnsConfig"), "dnsConfig");
    }

    #[test]
    fn template_endpoint_resources_attach_to_their_profile() {
        let doc = json!({
            "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
            "parameters": {"p": {"defaultValue": "app", "type": "String"}},
            "resources": [
                {"type": "Microsoft.Network/trafficManagerProfiles", "name": "[parameters('p')]",
                 "properties": {"endpoints": [{"name": "a", "properties": {"target": "192.0.2.1"}}]}},
                {"type": "Microsoft.Network/trafficManagerProfiles/externalEndpoints",
                 "name": "[concat(parameters('p'), '/a')]", "properties": {"target": "192.0.2.9"}},
                {"type": "Microsoft.Network/trafficManagerProfiles/externalEndpoints",
                 "name": "app/b", "properties": {"target": "192.0.2.2"}},
                {"type": "Microsoft.Network/trafficmanagerusermetricskeys", "name": "default"},
                {"type": "Microsoft.Web/sites", "name": "site"}
            ]
        });
        let mut notices = Vec::new();
        let (found, _) = profiles(&doc, "t.json", &mut notices).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].resource_name.as_deref(), Some("app"));
        let eps: Vec<(&str, &str)> = found[0]
            .endpoints
            .iter()
            .map(|e| {
                (
                    e.fields["name"].as_str().unwrap(),
                    e.fields["target"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(eps, [("a", "192.0.2.9"), ("b", "192.0.2.2")]);
        assert_eq!(
            found[0].endpoints[1].path("target"),
            "resources[2].properties.target"
        );
        assert_eq!(notices.len(), 2, "{notices:?}");
        assert!(notices[0].message.contains("Real User Measurements"));
        assert!(notices[1].message.contains("Microsoft.Web/sites"));
    }
}
