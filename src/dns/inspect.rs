//! Answers a synthetic query exactly as the server would, for `explain`:
//! the query is built, answered by the real answer path, and the response
//! read back, so the explanation can never disagree with the server.

use std::net::IpAddr;
use std::str::FromStr;

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RecordType};

use super::answer::{Answerer, Transport};
use crate::geo::GeoDb;
use crate::snapshot::Snapshot;

/// The response, as text.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AnswerView {
    /// NOERROR, NXDOMAIN, ...
    pub rcode: String,
    /// Answer records as `name TTL TYPE data`.
    pub answers: Vec<String>,
    /// Authority records.
    pub authority: Vec<String>,
    /// The first answer's TTL (or the negative TTL).
    pub ttl: Option<u32>,
    /// ECS scope in the response, when ECS was sent.
    pub ecs_scope: Option<u8>,
    /// What routing decided while answering (empty for names without a
    /// profile on their way).
    #[serde(skip)]
    pub decision: crate::routing::Decision,
}

/// Builds and answers a query for `name`/`qtype` from `client`, with an ECS
/// option when `ecs` (`address/prefix`) is given.
pub fn answer_for(
    table: &Snapshot,
    geo: Option<&GeoDb>,
    name: &str,
    qtype: &str,
    client: IpAddr,
    ecs: Option<(IpAddr, u8)>,
) -> Result<AnswerView, String> {
    answer_with(table, geo, None, name, qtype, client, ecs)
}

/// [`answer_for`], with performance routing reading `latency` as the
/// server's answers do.
pub fn answer_with(
    table: &Snapshot,
    geo: Option<&GeoDb>,
    latency: Option<std::sync::Arc<crate::latency::Latency>>,
    name: &str,
    qtype: &str,
    client: IpAddr,
    ecs: Option<(IpAddr, u8)>,
) -> Result<AnswerView, String> {
    let shown = crate::fsutil::shown;
    let name = Name::from_ascii(name)
        .map_err(|e| format!("`{}` is not a domain name: {e}", shown(name)))?;
    let qtype = RecordType::from_str(&qtype.to_ascii_uppercase())
        .map_err(|_| format!("`{}` is not a record type", shown(qtype)))?;
    let mut q = Message::query();
    q.add_query(Query::query(name, qtype));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    if let Some((addr, prefix)) = ecs {
        edns.options_mut()
            .insert(EdnsOption::Subnet(ClientSubnet::new(addr, prefix, 0)));
    }
    q.set_edns(edns);
    let pkt = q
        .to_vec()
        .map_err(|e| format!("cannot build the query: {e}"))?;
    let mut out = Vec::new();
    let mut answerer = Answerer::uncounted();
    if let Some(l) = latency {
        answerer = answerer.with_latency(l);
    }
    let mut decision = crate::routing::Decision::default();
    answerer
        .answer_traced(
            table,
            geo,
            &pkt,
            Transport::Tcp,
            client,
            &mut out,
            &mut decision,
        )
        .ok_or("the query was dropped")?;
    let m = Message::from_vec(&out).map_err(|e| format!("unreadable response: {e}"))?;
    let text = |r: &hickory_proto::rr::Record| {
        format!("{} {} {} {}", r.name, r.ttl, r.record_type(), r.data)
    };
    let ecs_scope = match m.edns.as_ref().and_then(|e| e.option(EdnsCode::Subnet)) {
        Some(EdnsOption::Subnet(s)) => Some(s.scope_prefix()),
        _ => None,
    };
    Ok(AnswerView {
        rcode: super::wire::rcode::name(u16::from(m.metadata.response_code)).to_string(),
        answers: m.answers.iter().map(text).collect(),
        authority: m.authorities.iter().map(text).collect(),
        ttl: m.answers.first().or(m.authorities.first()).map(|r| r.ttl),
        ecs_scope,
        decision,
    })
}
