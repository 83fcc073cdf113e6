//! Table tests on the real provider fixtures (`fetcher/tests/fixtures/provider/`, with their
//! provenance) and on the traps the issue names.

use super::*;
use rust_decimal::Decimal;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/provider");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).expect("fixture")
}

fn parse_all(body: &[u8]) -> (Vec<Record>, Result<ParseSummary, FeedError>) {
    let mut records = Vec::new();
    let result = parse(body, Limits::default(), &mut |r| records.push(r));
    (records, result)
}

fn plans(records: &[Record]) -> Vec<&PlanRecord> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Plan(p) => Some(p),
            _ => None,
        })
        .collect()
}

fn rejected(records: &[Record]) -> Vec<&Rejected> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Rejected(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn dec(s: &str) -> Decimal {
    s.parse().expect("decimal")
}

#[test]
fn the_first_sample_gives_its_four_plans_keyed_by_base_plan_and_plan() {
    let (records, result) = parse_all(&fixture("planlist_response_1.xml"));
    assert_eq!(result.expect("parses").plans, 4);
    let keys: Vec<_> = plans(&records)
        .iter()
        .map(|p| (p.base_plan_id.as_str(), p.plan_id.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("291", "291"),
            ("322", "1642"),
            ("322", "1643"),
            ("1591", "1642")
        ]
    );
    let p291 = plans(&records)[0].clone();
    assert_eq!(p291.title, "Camela en concierto");
    assert_eq!(p291.sell_mode, "online");
    assert_eq!(p291.starts_at.to_string(), "2021-06-30 21:00:00");
    assert_eq!(p291.ends_at.to_string(), "2021-06-30 22:00:00");
    assert_eq!(p291.zones.len(), 3);
    assert_eq!(p291.zones[0].capacity, 243);
    assert_eq!(
        (p291.min_price(), p291.max_price()),
        (Some(dec("15.00")), Some(dec("30.00")))
    );
    assert_eq!(
        p291.min_price().map(|d| d.to_string()).as_deref(),
        Some("15.00")
    );
    let p1591 = plans(&records)[3].clone();
    assert_eq!(p1591.organizer_company_id.as_deref(), Some("1"));
    // Zone 186 twice, once numbered and once not: two zones, both priced.
    assert_eq!(p1591.zones.len(), 2);
    assert_eq!(
        (p1591.min_price(), p1591.max_price()),
        (Some(dec("65.00")), Some(dec("75.00")))
    );
    assert!(rejected(&records).is_empty());
}

#[test]
fn the_legacy_sample_gives_the_changed_values_and_refuses_the_bad_date() {
    let (records, result) = parse_all(&fixture("eventlist_response_2.xml"));
    assert_eq!(
        result.expect("parses"),
        ParseSummary {
            plans: 2,
            rejected: 1
        }
    );
    let got = plans(&records);
    assert_eq!(
        (got[0].base_plan_id.as_str(), got[0].plan_id.as_str()),
        ("291", "291")
    );
    assert_eq!(got[0].zones[0].capacity, 240);
    assert_eq!(got[0].zones[1].capacity, 50);
    assert_eq!(
        (got[1].base_plan_id.as_str(), got[1].plan_id.as_str()),
        ("1591", "1642")
    );
    assert_eq!(got[1].ends_at.to_string(), "2021-07-31 21:20:00");
    let bad = rejected(&records);
    assert_eq!(bad[0].base_plan_id.as_deref(), Some("444"));
    assert_eq!(bad[0].plan_id.as_deref(), Some("1642"));
    assert!(bad[0].reason.contains("2021-09-31"), "{}", bad[0].reason);
}

#[test]
fn malformed_xml_is_an_error_with_a_position() {
    let (records, result) = parse_all(&fixture("malformed_response.xml"));
    let err = result.expect_err("malformed");
    assert!(matches!(err, FeedError::Malformed { .. }), "{err}");
    assert!(err.position().is_some_and(|p| p > 0));
    assert!(records.is_empty());
}

#[test]
fn records_before_a_break_are_kept() {
    let body = fixture("planlist_response_1.xml");
    let cut = body.len() * 2 / 3;
    let (records, result) = parse_all(&body[..cut]);
    assert!(result.is_err());
    assert!(!plans(&records).is_empty());
}

const ONE: &str = r#"<planList><output><base_plan base_plan_id="1" sell_mode="online" title="T">
<plan plan_start_date="2021-01-01T10:00:00" plan_end_date="2021-01-01T11:00:00" plan_id="2" sell_from="2020-01-01T00:00:00" sell_to="2021-01-01T09:00:00" sold_out="false">ZONES</plan>
<plan plan_start_date="2021-01-02T10:00:00" plan_end_date="2021-01-02T11:00:00" plan_id="3" sell_from="2020-01-01T00:00:00" sell_to="2021-01-01T09:00:00" sold_out="false"><zone zone_id="1" capacity="1" price="1.5" name="A" numbered="true"/></plan>
</base_plan></output></planList>"#;

#[test]
fn each_bad_value_refuses_its_plan_with_a_reason_and_the_rest_is_parsed() {
    let cases = [
        (
            r#"<zone zone_id="1" capacity="1" price="abc" name="A" numbered="true"/>"#,
            "price",
        ),
        (
            r#"<zone zone_id="1" capacity="1" name="A" numbered="true"/>"#,
            "missing attribute price",
        ),
        (
            r#"<zone zone_id="1" capacity="x" price="1" name="A" numbered="true"/>"#,
            "capacity",
        ),
        (
            r#"<zone zone_id="1" capacity="1" price="1" name="&ent;" numbered="true"/>"#,
            "malformed",
        ),
        (
            r#"<zone zone_id="1" capacity="1" price="1" name="A" numbered="maybe"/>"#,
            "numbered",
        ),
    ];
    for (zones, needle) in cases {
        let body = ONE.replace("ZONES", zones);
        let (records, result) = parse_all(body.as_bytes());
        assert_eq!(
            result.expect("parses"),
            ParseSummary {
                plans: 1,
                rejected: 1
            },
            "{zones}"
        );
        let bad = rejected(&records);
        assert_eq!(bad[0].plan_id.as_deref(), Some("2"));
        assert!(
            bad[0].reason.contains(needle),
            "{needle}: {}",
            bad[0].reason
        );
        assert_eq!(plans(&records)[0].plan_id, "3");
    }
}

#[test]
fn an_exact_duplicate_zone_is_refused_alone() {
    let zone = r#"<zone zone_id="9" capacity="1" price="2.00" name="A" numbered="true"/>"#;
    let body = ONE.replace("ZONES", &format!("{zone}{zone}"));
    let (records, result) = parse_all(body.as_bytes());
    assert_eq!(
        result.expect("parses"),
        ParseSummary {
            plans: 2,
            rejected: 1
        }
    );
    assert_eq!(plans(&records)[0].zones.len(), 1);
    assert_eq!(rejected(&records)[0].zone_id.as_deref(), Some("9"));
}

#[test]
fn a_plan_ending_before_it_starts_or_missing_a_date_is_refused() {
    let body = ONE.replace(
        r#"plan_end_date="2021-01-01T11:00:00""#,
        r#"plan_end_date="2021-01-01T09:00:00""#,
    );
    let (records, _) = parse_all(body.replace("ZONES", "").as_bytes());
    assert!(rejected(&records)[0].reason.contains("before it starts"));
    let body = ONE.replace(r#"plan_end_date="2021-01-01T11:00:00""#, "");
    let (records, _) = parse_all(body.replace("ZONES", "").as_bytes());
    assert!(rejected(&records)[0].reason.contains("plan_end_date"));
}

#[test]
fn a_doctype_with_an_entity_is_refused() {
    let body = r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><planList>&xxe;</planList>"#;
    let (records, result) = parse_all(body.as_bytes());
    assert!(matches!(result, Err(FeedError::Doctype { .. })));
    assert!(records.is_empty());
}

#[test]
fn size_and_depth_are_bounded() {
    let body = fixture("planlist_response_1.xml");
    let small = Limits {
        max_bytes: 100,
        max_depth: 32,
    };
    assert!(matches!(
        parse(body.as_slice(), small, &mut |_| {}),
        Err(FeedError::TooLarge { .. })
    ));
    let deep = "<a>".repeat(100);
    let (_, result) = parse_all(deep.as_bytes());
    assert!(matches!(result, Err(FeedError::TooDeep { limit: 32, .. })));
}

/// Parse throughput on a generated feed (same format), streamed from a file as the fetcher
/// streams a body, memory by the process's peak RSS. A benchmark, not a check:
/// `cargo test --release -p eye-fetcher -- --ignored --nocapture parse_throughput` (size in
/// MB from `EYE_BENCH_FEED_MB`, default 100).
#[test]
#[ignore = "benchmark"]
fn parse_throughput() {
    use std::io::Write;
    let mb: usize = std::env::var("EYE_BENCH_FEED_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let block = r#"<base_plan base_plan_id="ID" sell_mode="online" title="Camela en concierto">
<plan plan_start_date="2021-06-30T21:00:00" plan_end_date="2021-06-30T22:00:00" plan_id="ID" sell_from="2020-07-01T00:00:00" sell_to="2021-06-30T20:00:00" sold_out="false">
<zone zone_id="40" capacity="243" price="20.00" name="Platea" numbered="true" />
<zone zone_id="38" capacity="100" price="15.00" name="Grada 2" numbered="false" />
<zone zone_id="30" capacity="90" price="30.00" name="A28" numbered="true" />
</plan></base_plan>
"#;
    let path = std::env::temp_dir().join(format!("eye-feed-{}.xml", std::process::id()));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("feed file"));
    let mut written = 0usize;
    let mut n = 0u64;
    file.write_all(b"<planList><output>").expect("write");
    while written < mb * 1024 * 1024 {
        let text = block.replace("ID", &n.to_string());
        file.write_all(text.as_bytes()).expect("write");
        written += text.len();
        n += 1;
    }
    file.write_all(b"</output></planList>").expect("write");
    drop(file);
    let size = std::fs::metadata(&path).expect("feed size").len();
    let rss_before = peak_rss_kb();
    let started = std::time::Instant::now();
    let mut plans = 0usize;
    let limits = Limits {
        max_bytes: usize::MAX,
        max_depth: 32,
    };
    let body = std::io::BufReader::with_capacity(
        64 * 1024,
        std::fs::File::open(&path).expect("open feed"),
    );
    let summary = parse(body, limits, &mut |r| {
        if matches!(r, Record::Plan(_)) {
            plans += 1;
        }
    })
    .expect("parses");
    let secs = started.elapsed().as_secs_f64();
    std::fs::remove_file(&path).expect("remove feed");
    assert_eq!(summary.plans as u64, n);
    println!(
        "parsed {:.0} MB, {plans} plans in {secs:.2} s: {:.0} MB/s; peak RSS {} MB before parsing, {} MB after",
        size as f64 / 1e6,
        size as f64 / 1e6 / secs,
        rss_before / 1024,
        peak_rss_kb() / 1024
    );
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

proptest::proptest! {
    /// Any cut of a real document parses without panicking, and what it yields before the
    /// cut is a prefix of the whole document's records.
    #[test]
    fn any_truncation_yields_a_prefix_of_the_records(cut in 0usize..2200) {
        let body = fixture("planlist_response_1.xml");
        let (whole, _) = parse_all(&body);
        let cut = cut.min(body.len());
        let (part, _) = parse_all(&body[..cut]);
        proptest::prop_assert!(part.len() <= whole.len());
        proptest::prop_assert_eq!(&whole[..part.len()], &part[..]);
    }

    /// Arbitrary bytes never panic the parser.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
        let _ = parse_all(&bytes);
    }
}

mod bounds;
