//! The Fever feed (`GET /api/events` of the code challenge), in both of its wordings:
//! `planList/output/base_plan/plan/zone` and the legacy `eventList/output/base_event/event/zone`.
//!
//! Parsed with quick-xml's streaming reader straight from the body as it arrives (any
//! [`BufRead`]): no DOM, no copy of the document, one reused event buffer, attribute values
//! borrowed unless they hold escapes, each plan handed to the sink when its end tag is read,
//! so memory stays flat whatever the document's size. quick-xml never expands entities it
//! does not know (only the five XML ones), and a DOCTYPE is refused outright.
//!
//! Bad data never stops a document: a plan with an invalid date, a missing or non-numeric
//! attribute, an unknown sell mode, or a bad zone becomes a [`Rejected`] record with the
//! reason; a zone repeating both the id and the `numbered` flag of an earlier zone of the same
//! plan is rejected alone (the provider uses one zone id for the numbered and the unnumbered
//! part of a zone, so id alone is not a key). Field sizes are checked as each element is read
//! (a base plan's over-long title refuses its plans without copying the title into each),
//! and every plan passes the shared bounds of [`eye_core::provider::fields`] when it closes.

mod attrs;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::io::BufRead;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::capped::Capped;
use super::{FeedError, Limits, ParseSummary, Provider, Record, Rejected};
use attrs::{Attrs, Problem};
use eye_core::provider::fields::{
    MAX_ID_BYTES, MAX_NAME_BYTES, MAX_TITLE_BYTES, MAX_ZONES, printable, text_problem,
};
use eye_core::provider::{PlanRecord, ZoneRecord};

/// The Fever provider.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fever;

impl Provider for Fever {
    fn name(&self) -> &str {
        "fever"
    }

    fn parse(
        &self,
        body: &mut dyn BufRead,
        limits: Limits,
        sink: &mut dyn FnMut(Record),
    ) -> Result<ParseSummary, FeedError> {
        parse(body, limits, sink)
    }
}

/// The base plan being read: its attributes, or why they are unusable.
#[derive(Debug, Default)]
struct Base {
    id: Option<String>,
    sell_mode: String,
    title: String,
    organizer_company_id: Option<String>,
    problem: Option<String>,
}

/// The plan being read, collecting its zones, or the first reason it is refused.
#[derive(Debug)]
struct Open {
    plan_id: Option<String>,
    position: u64,
    plan: Result<PlanRecord, String>,
    /// Zones refused on their own (duplicates), reported after the plan.
    zones_refused: Vec<Rejected>,
    /// (zone id, numbered) of the zones kept: the duplicate check in constant time.
    zone_keys: HashSet<(String, bool)>,
    /// Zone elements read, duplicates included (bounded by [`MAX_ZONES`]).
    zones_seen: usize,
}

/// Parses a Fever document, handing each plan (or rejected record) to `sink`.
pub fn parse<R: BufRead>(
    body: R,
    limits: Limits,
    sink: &mut dyn FnMut(Record),
) -> Result<ParseSummary, FeedError> {
    let mut reader = Reader::from_reader(Capped::new(body, limits.max_bytes));
    reader.config_mut().check_end_names = true;
    let mut buf = Vec::with_capacity(4096);
    let mut summary = ParseSummary::default();
    let mut emit = |record: Record, summary: &mut ParseSummary| {
        match &record {
            Record::Plan(_) | Record::Item(_) => summary.plans += 1,
            Record::Rejected(_) => summary.rejected += 1,
        }
        sink(record);
    };
    let mut depth = 0usize;
    let mut base: Option<Base> = None;
    let mut open: Option<Open> = None;
    loop {
        buf.clear();
        let position = reader.buffer_position();
        let event = match reader.read_event_into(&mut buf) {
            Ok(event) => event,
            Err(e) => return Err(feed_error(&reader, e, limits)),
        };
        match event {
            Event::Empty(e) => {
                open_element(&e, position, &mut base, &mut open);
                close_element(e.local_name().as_ref(), &mut base, &mut open, &mut |r| {
                    emit(r, &mut summary)
                });
            }
            Event::Start(e) => {
                depth += 1;
                if depth > limits.max_depth {
                    return Err(FeedError::TooDeep {
                        limit: limits.max_depth,
                        position,
                    });
                }
                open_element(&e, position, &mut base, &mut open);
            }
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                close_element(e.local_name().as_ref(), &mut base, &mut open, &mut |r| {
                    emit(r, &mut summary)
                });
            }
            Event::DocType(_) => return Err(FeedError::Doctype { position }),
            Event::Eof => {
                if depth > 0 {
                    return Err(FeedError::Malformed {
                        position,
                        message: format!("document ends with {depth} element(s) still open"),
                    });
                }
                return Ok(summary);
            }
            _ => {}
        }
    }
}

/// Why reading stopped: the size cap, the body's transport, or the XML itself.
fn feed_error<R>(reader: &Reader<Capped<R>>, e: quick_xml::Error, limits: Limits) -> FeedError {
    if reader.get_ref().exceeded() {
        return FeedError::TooLarge {
            limit: limits.max_bytes,
        };
    }
    match e {
        quick_xml::Error::Io(io) => FeedError::Read(io.to_string()),
        e => FeedError::Malformed {
            position: reader.error_position(),
            message: e.to_string(),
        },
    }
}

/// Handles an opening tag (of a start or an empty element).
fn open_element(
    e: &BytesStart<'_>,
    position: u64,
    base: &mut Option<Base>,
    open: &mut Option<Open>,
) {
    match e.local_name().as_ref() {
        b"base_plan" | b"base_event" => *base = Some(read_base(e)),
        b"plan" | b"event" => *open = Some(read_plan(e, position, base.as_ref())),
        b"zone" => {
            if let Some(open) = open.as_mut() {
                add_zone(e, position, base.as_ref(), open);
            }
        }
        _ => {}
    }
}

/// Handles a closing tag: a plan is complete (emitted, with any zone it refused) or a base
/// plan ends.
fn close_element(
    name: &[u8],
    base: &mut Option<Base>,
    open: &mut Option<Open>,
    emit: &mut dyn FnMut(Record),
) {
    match name {
        b"plan" | b"event" => {
            let Some(done) = open.take() else { return };
            match done.plan {
                Ok(plan) => emit(plan.into_record(done.position)),
                Err(reason) => emit(Record::Rejected(Rejected::new(
                    base.as_ref().and_then(|b| b.id.as_deref()),
                    done.plan_id.as_deref(),
                    None,
                    done.position,
                    &reason,
                ))),
            }
            done.zones_refused
                .into_iter()
                .map(Record::Rejected)
                .for_each(emit);
        }
        b"base_plan" | b"base_event" => *base = None,
        _ => {}
    }
}

fn read_base(e: &BytesStart<'_>) -> Base {
    let mut attrs = Attrs::read(e);
    let id = attrs.text_either("base_plan_id", "base_event_id");
    let sell_mode = attrs.text("sell_mode");
    let title = attrs.text("title");
    let organizer = attrs.optional("organizer_company_id");
    let mut problem = attrs.problem().map(Problem::describe);
    let sell_mode = sell_mode.unwrap_or_default();
    let title = title.unwrap_or_default();
    if problem.is_none() && !matches!(sell_mode.as_str(), "online" | "offline") {
        problem = Some(format!(
            "sell_mode {:?} is neither online nor offline",
            printable(&sell_mode, 64)
        ));
    }
    problem = problem.or_else(|| {
        [
            ("base_plan_id", id.as_deref().unwrap_or(""), MAX_ID_BYTES),
            ("title", &title, MAX_TITLE_BYTES),
            (
                "organizer_company_id",
                organizer.as_deref().unwrap_or(""),
                MAX_ID_BYTES,
            ),
        ]
        .into_iter()
        .find_map(|(name, value, max)| text_problem(name, value, max))
    });
    // A refused base plan keeps no title: its plans are all rejected, none copies it.
    let title = if problem.is_none() {
        title
    } else {
        String::new()
    };
    Base {
        id,
        sell_mode,
        title,
        organizer_company_id: organizer,
        problem: problem.map(|p| format!("base plan: {p}")),
    }
}

fn read_plan(e: &BytesStart<'_>, position: u64, base: Option<&Base>) -> Open {
    let mut attrs = Attrs::read(e);
    let plan_id = attrs.text_either("plan_id", "event_id");
    let starts_at = attrs.datetime_either("plan_start_date", "event_start_date");
    let ends_at = attrs.datetime_either("plan_end_date", "event_end_date");
    let sell_from = attrs.datetime("sell_from");
    let sell_to = attrs.datetime("sell_to");
    let sold_out = attrs.boolean("sold_out");
    let plan = match (base, attrs.problem()) {
        (None, _) => Err("plan outside a base plan".to_owned()),
        (
            Some(Base {
                problem: Some(p), ..
            }),
            _,
        ) => Err(p.clone()),
        (Some(_), Some(problem)) => Err(problem.describe()),
        (Some(base), None) => match (plan_id.clone(), starts_at, ends_at, sell_from, sell_to) {
            (Some(plan_id), Some(s), Some(e), Some(f), Some(t)) if e >= s => Ok(PlanRecord {
                base_plan_id: base.id.clone().unwrap_or_default(),
                plan_id,
                title: base.title.clone(),
                sell_mode: base.sell_mode.clone(),
                organizer_company_id: base.organizer_company_id.clone(),
                starts_at: s,
                ends_at: e,
                sell_from: f,
                sell_to: t,
                sold_out: sold_out.unwrap_or(false),
                zones: Vec::new(),
            }),
            (Some(_), Some(s), Some(e), ..) if e < s => {
                Err(format!("plan ends ({e}) before it starts ({s})"))
            }
            _ => Err("plan: missing attribute".to_owned()),
        },
    };
    Open {
        plan_id,
        position,
        plan,
        zones_refused: Vec::new(),
        zone_keys: HashSet::new(),
        zones_seen: 0,
    }
}

fn add_zone(e: &BytesStart<'_>, position: u64, base: Option<&Base>, open: &mut Open) {
    let Ok(plan) = open.plan.as_mut() else {
        return;
    };
    open.zones_seen += 1;
    if open.zones_seen > MAX_ZONES {
        // The rest of the plan's zones are skipped unread, and its duplicates are moot.
        open.plan = Err(format!("more than {MAX_ZONES} zones in the plan"));
        open.zones_refused.clear();
        return;
    }
    let mut attrs = Attrs::read(e);
    let zone_id = attrs.text("zone_id");
    let capacity = attrs.integer("capacity");
    let price = attrs.decimal("price");
    let name = attrs.text("name");
    let numbered = attrs.boolean("numbered");
    let zone = match (attrs.problem(), zone_id, capacity, price, name, numbered) {
        (None, Some(zone_id), Some(capacity), Some(price), Some(name), Some(numbered)) => {
            let oversize = text_problem("zone_id", &zone_id, MAX_ID_BYTES)
                .or_else(|| text_problem("zone name", &name, MAX_NAME_BYTES));
            if let Some(reason) = oversize {
                open.plan = Err(format!("zone: {reason}"));
                return;
            }
            ZoneRecord {
                zone_id,
                capacity,
                price,
                name,
                numbered,
            }
        }
        (problem, ..) => {
            let reason = problem.map_or_else(|| "missing attribute".to_owned(), Problem::describe);
            open.plan = Err(format!("zone: {reason}"));
            return;
        }
    };
    if !open.zone_keys.insert((zone.zone_id.clone(), zone.numbered)) {
        open.zones_refused.push(Rejected::new(
            base.and_then(|b| b.id.as_deref()),
            open.plan_id.as_deref(),
            Some(&zone.zone_id),
            position,
            &format!(
                "duplicate zone {} (numbered={}) in the plan; the first one is kept",
                zone.zone_id, zone.numbered
            ),
        ));
        return;
    }
    plan.zones.push(zone);
}
