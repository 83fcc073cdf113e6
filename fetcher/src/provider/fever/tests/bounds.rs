//! The storable bounds at parse time: NUL, sizes, years and zone counts refuse their record
//! (a rejected record naming why), never the document, and what is emitted is storable.

use super::{ONE, parse_all, plans, rejected};
use crate::provider::Record;
use eye_core::provider::fields::{MAX_ID_BYTES, MAX_REASON_BYTES, MAX_ZONES};

#[test]
fn a_nul_in_an_id_refuses_its_plan_with_the_id_escaped() {
    let body = ONE
        .replace("ZONES", "")
        .replace(r#"plan_id="2""#, "plan_id=\"2\0x\"");
    let (records, result) = parse_all(body.as_bytes());
    result.expect("parses");
    let bad = rejected(&records);
    assert_eq!(bad.len(), 1, "{records:?}");
    assert_eq!(bad[0].plan_id.as_deref(), Some("2\\u{0}x"));
    assert!(bad[0].reason.contains("NUL"), "{}", bad[0].reason);
    assert_eq!(plans(&records)[0].plan_id, "3");

    // In the title, the whole base plan's plans are refused.
    let body = ONE
        .replace("ZONES", "")
        .replace(r#"title="T""#, "title=\"T\0\"");
    let (records, _) = parse_all(body.as_bytes());
    assert!(plans(&records).is_empty());
    assert!(rejected(&records).iter().all(|r| r.reason.contains("NUL")));
}

#[test]
fn a_year_postgresql_cannot_store_refuses_its_plan() {
    for date in [
        "-5000-01-01T00:00:00",
        "0000-12-31T23:00:00",
        "+10000-01-01T00:00:00",
    ] {
        let body = ONE
            .replace("ZONES", "")
            .replace(
                r#"plan_start_date="2021-01-01T10:00:00""#,
                &format!(r#"plan_start_date="{date}""#),
            )
            .replace(
                r#"plan_end_date="2021-01-01T11:00:00""#,
                &format!(r#"plan_end_date="{date}""#),
            );
        let (records, result) = parse_all(body.as_bytes());
        result.expect("parses");
        let bad = rejected(&records);
        assert_eq!(bad.len(), 1, "{date}: {records:?}");
        assert_eq!(bad[0].plan_id.as_deref(), Some("2"));
        assert!(
            bad[0].reason.contains("starts_at") || bad[0].reason.contains("plan_start_date"),
            "{date}: {}",
            bad[0].reason
        );
        assert_eq!(plans(&records).len(), 1, "{date}");
    }
}

#[test]
fn over_long_fields_refuse_their_plan_with_a_short_reason() {
    let long = "x".repeat(3000);
    let cases = [
        (
            r#"title="T""#.to_owned(),
            format!(r#"title="{long}""#),
            "title",
        ),
        (
            r#"plan_id="2""#.to_owned(),
            format!(r#"plan_id="{long}""#),
            "plan_id",
        ),
        (
            r#"base_plan_id="1""#.to_owned(),
            format!(r#"base_plan_id="{long}""#),
            "base_plan_id",
        ),
        (
            r#"name="A""#.to_owned(),
            format!(r#"name="{long}""#),
            "zone name",
        ),
        (
            r#"zone_id="1""#.to_owned(),
            format!(r#"zone_id="{long}""#),
            "zone_id",
        ),
    ];
    let zone = r#"<zone zone_id="1" capacity="1" price="1.5" name="A" numbered="true"/>"#;
    for (from, to, field) in cases {
        let body = ONE.replace("ZONES", zone).replace(&from, &to);
        let (records, result) = parse_all(body.as_bytes());
        result.expect("parses");
        let bad = rejected(&records);
        assert!(!bad.is_empty(), "{field}");
        assert!(
            bad[0].reason.contains(field) && bad[0].reason.contains("3000 bytes"),
            "{field}: {}",
            bad[0].reason
        );
        for r in bad {
            let ids = [&r.base_plan_id, &r.plan_id, &r.zone_id];
            assert!(
                ids.iter()
                    .all(|id| id.as_ref().is_none_or(|id| id.len() < 200))
            );
            assert!(r.reason.len() < MAX_REASON_BYTES + 64);
        }
    }
}

#[test]
fn a_plan_with_too_many_zones_is_refused_in_linear_time() {
    // 200,000 distinct zones: the old duplicate check compared each with all before it.
    let zones: String = (0..200_000)
        .map(|i| {
            format!(r#"<zone zone_id="{i}" capacity="1" price="1" name="Z" numbered="true"/>"#)
        })
        .collect();
    let body = ONE.replace("ZONES", &zones);
    let started = std::time::Instant::now();
    let (records, result) = parse_all(body.as_bytes());
    let took = started.elapsed();
    result.expect("parses");
    // The quadratic check took minutes here (2e10 comparisons); linear work takes well under a
    // second. The bound is loose so a loaded machine cannot fail it, and still catches that.
    assert!(took < std::time::Duration::from_secs(60), "{took:?}");
    let bad = rejected(&records);
    assert_eq!(bad.len(), 1);
    assert!(
        bad[0]
            .reason
            .contains(&format!("more than {MAX_ZONES} zones"))
    );

    // At the limit, duplicates among them are still refused one by one.
    let zones: String = (0..MAX_ZONES)
        .map(|i| {
            format!(
                r#"<zone zone_id="{}" capacity="1" price="1" name="Z" numbered="true"/>"#,
                i % 500
            )
        })
        .collect();
    let (records, _) = parse_all(ONE.replace("ZONES", &zones).as_bytes());
    assert_eq!(plans(&records)[0].zones.len(), 500);
    assert_eq!(rejected(&records).len(), 500);
}

proptest::proptest! {
    /// Whatever the attribute values (NUL, control characters, any length), every plan
    /// emitted is within the storable bounds and every rejection is storable.
    #[test]
    fn every_record_emitted_is_storable(
        id in "[\\x00-\\x7f]{0,300}",
        title in "(.|\\x00){0,1500}",
        name in "[a\\x00\\x01é]{0,400}",
    ) {
        let escape = |s: &str| s.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;");
        let body = ONE
            .replace(r#"plan_id="2""#, &format!(r#"plan_id="{}""#, escape(&id)))
            .replace(r#"title="T""#, &format!(r#"title="{}""#, escape(&title)))
            .replace("ZONES", &format!(
                r#"<zone zone_id="1" capacity="1" price="1" name="{}" numbered="true"/>"#,
                escape(&name)
            ));
        let (records, _) = parse_all(body.as_bytes());
        for record in &records {
            match record {
                Record::Plan(plan) => proptest::prop_assert_eq!(plan.problem(), None),
                Record::Rejected(r) => {
                    for id in [&r.base_plan_id, &r.plan_id, &r.zone_id].into_iter().flatten() {
                        proptest::prop_assert!(!id.contains('\0') && id.len() <= MAX_ID_BYTES + 64);
                    }
                    proptest::prop_assert!(!r.reason.contains('\0'));
                    proptest::prop_assert!(r.reason.len() <= MAX_REASON_BYTES + 64);
                }
                Record::Item(_) => proptest::prop_assert!(false, "the XML feed has no items"),
            }
        }
    }
}
