use proptest::collection::vec;
use proptest::prelude::*;

use super::*;

fn t(s: i64) -> Time {
    DateTime::from_timestamp(s, 0).expect("in range")
}

/// A row: (partition, stored_at offset within it, application a?, timestamp, id).
type Row = (usize, i64, bool, i64, u8);

/// Partitions i = 0..n store `[10 i, 10 i + 10)` (the first from MINVALUE); `open[i]` says
/// which are not over yet.
fn layout(open: &[bool], rows: &[Row]) -> Vec<PartView> {
    open.iter()
        .enumerate()
        .map(|(i, &open)| {
            let of_a = rows.iter().filter(|r| r.0 == i && r.2).map(|r| r.3);
            let span = match (open, of_a.clone().min(), of_a.max()) {
                (true, _, _) => Span::Open,
                (false, Some(lo), Some(hi)) => Span::Within(t(lo), t(hi)),
                _ => Span::Empty,
            };
            PartView {
                from: (i > 0).then(|| t(10 * i as i64)),
                to: Some(t(10 * i as i64 + 10)),
                span,
            }
        })
        .collect()
}

fn within(ranges: &Option<Ranges>, at: Time) -> bool {
    ranges.as_ref().is_none_or(|ranges| {
        ranges
            .iter()
            .any(|(from, to)| from.is_none_or(|f| f <= at) && to.is_none_or(|to| at < to))
    })
}

proptest! {
    /// Whatever the partitions hold (timestamps overlapping across partitions, outliers,
    /// partitions without the application's rows, open ones), the steps of a plan return
    /// exactly the page a read of every partition returns.
    #[test]
    fn plan_reads_the_same_page_as_a_full_scan(
        open in vec(any::<bool>(), 1..8),
        rows in vec((0usize..8, 0i64..10, any::<bool>(), 0i64..200, any::<u8>()), 0..80),
        from in proptest::option::of(0i64..200),
        to in proptest::option::of(0i64..200),
        cursor in proptest::option::of((0i64..200, any::<u8>())),
        limit in 1usize..20,
    ) {
        let rows: Vec<Row> = rows.into_iter().filter(|r| r.0 < open.len()).collect();
        let parts = layout(&open, &rows);
        let matches = |r: &&Row| {
            r.2 && from.is_none_or(|f| r.3 >= f) && to.is_none_or(|to| r.3 < to)
                && cursor.is_none_or(|c| (r.3, r.4) > c)
        };
        let page = |mut found: Vec<(i64, u8)>, n: usize| {
            found.sort();
            found.truncate(n);
            found
        };
        let all = page(rows.iter().filter(matches).map(|r| (r.3, r.4)).collect(), limit + 1);
        let lo = match (from, cursor) {
            (Some(f), Some((c, _))) => Some(f.max(c)),
            (f, c) => f.or(c.map(|c| c.0)),
        };
        let steps = plan(&parts, lo.map(t), to.map(t));
        prop_assert!(!steps.is_empty() && steps.len() <= 2);
        let mut got = Vec::new();
        for step in &steps {
            if got.len() > limit {
                break;
            }
            let found = rows
                .iter()
                .filter(matches)
                .filter(|r| within(&step.stored_in, t(10 * r.0 as i64 + r.1)))
                .filter(|r| step.until.is_none_or(|u| t(r.3) <= u))
                .filter(|r| step.after.is_none_or(|a| t(r.3) > a))
                .map(|r| (r.3, r.4))
                .collect();
            got.extend(page(found, limit + 1 - got.len()));
        }
        prop_assert_eq!(got, all);
    }
}

#[test]
fn the_first_step_reads_only_the_earliest_partition_and_the_open_ones() {
    // Four weeks over, each holding one week of timestamps, and the current one.
    let week = |i: i64| t(i * 7 * 86_400);
    let mut parts: Vec<PartView> = (0..4)
        .map(|i| PartView {
            from: Some(week(i)),
            to: Some(week(i + 1)),
            span: Span::Within(week(i), week(i + 1) - chrono::Duration::seconds(1)),
        })
        .collect();
    parts.push(PartView {
        from: Some(week(4)),
        to: Some(week(5)),
        span: Span::Open,
    });
    let steps = plan(&parts, None, None);
    let horizon = week(1) - chrono::Duration::seconds(1);
    assert_eq!(
        steps,
        vec![
            Step {
                stored_in: Some(vec![(None, Some(week(1))), (Some(week(4)), None)]),
                until: Some(horizon),
                after: None,
            },
            Step {
                stored_in: Some(vec![(None, Some(week(0))), (Some(week(1)), None)]),
                until: None,
                after: Some(horizon),
            },
        ]
    );
    // A one-day window in week 2: that partition and the open one, in one step.
    let day = chrono::Duration::days(1);
    assert_eq!(
        plan(&parts, Some(week(2)), Some(week(2) + day)),
        vec![Step {
            stored_in: Some(vec![
                (None, Some(week(0))),
                (Some(week(2)), Some(week(3))),
                (Some(week(4)), None)
            ]),
            ..Step::default()
        }]
    );
}

#[test]
fn nothing_over_means_no_restriction() {
    let open = PartView {
        from: None,
        to: Some(t(10)),
        span: Span::Open,
    };
    assert_eq!(plan(&[open], None, None), vec![Step::default()]);
    assert_eq!(plan(&[], None, None), vec![Step::default()]);
}

#[test]
fn complement_of_adjacent_and_overlapping_ranges() {
    assert_eq!(
        complement(vec![(Some(t(10)), Some(t(20))), (None, Some(t(10)))]),
        vec![(Some(t(20)), None)]
    );
    assert_eq!(
        complement(vec![(Some(t(10)), Some(t(30))), (Some(t(15)), Some(t(20)))]),
        vec![(None, Some(t(10))), (Some(t(30)), None)]
    );
    assert_eq!(complement(vec![(None, None)]), vec![]);
}
