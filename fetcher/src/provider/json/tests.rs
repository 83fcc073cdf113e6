use super::*;

fn parse(body: &str, limits: Limits) -> (Vec<Record>, Result<ParseSummary, FeedError>) {
    let mut records = Vec::new();
    let outcome =
        JsonApi::default().parse_resource("comments", &mut body.as_bytes(), limits, &mut |r| {
            records.push(r)
        });
    (records, outcome)
}

#[test]
fn records_come_with_their_id_and_parent() {
    let body = r#"[{"postId": 1, "id": 1, "name": "a", "body": "x"},
                   {"postId": "7", "id": "c-2", "name": "b"}]"#;
    let (records, outcome) = parse(body, Limits::default());
    assert_eq!(
        outcome.expect("read"),
        ParseSummary {
            plans: 2,
            rejected: 0
        }
    );
    let keys: Vec<_> = records
        .iter()
        .map(|r| match r {
            Record::Item(i) => (i.remote_id.clone(), i.parent_id.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("1".to_owned(), Some("1".to_owned())),
            ("c-2".to_owned(), Some("7".to_owned()))
        ]
    );
}

#[test]
fn bad_elements_are_rejected_and_the_rest_read() {
    let body = r#"[1, {"name": "no id"}, {"id": 1.5}, {"id": 3, "t": "a\u0000"}, {"id": 4}]"#;
    let (records, outcome) = parse(body, Limits::default());
    assert_eq!(
        outcome.expect("read"),
        ParseSummary {
            plans: 1,
            rejected: 4
        }
    );
    let reasons: Vec<_> = records
        .iter()
        .filter_map(|r| match r {
            Record::Rejected(r) => Some(r.reason.clone()),
            _ => None,
        })
        .collect();
    assert!(reasons[0].contains("not a JSON object"), "{reasons:?}");
    assert!(reasons[1].contains("no `id`"), "{reasons:?}");
    assert!(reasons[3].contains("NUL"), "{reasons:?}");
}

#[test]
fn a_malformed_document_stops_with_its_position_after_the_records_before() {
    let body = r#"[{"id": 1}, {"id": 2}, {"id": 3"#;
    let (records, outcome) = parse(body, Limits::default());
    assert_eq!(records.len(), 2);
    match outcome {
        Err(FeedError::Malformed { position, .. }) => assert!(position > 20, "{position}"),
        other => panic!("{other:?}"),
    }
    let (_, outcome) = parse(r#"{"id": 1}"#, Limits::default());
    assert!(
        matches!(outcome, Err(FeedError::Malformed { .. })),
        "{outcome:?}"
    );
    let (_, outcome) = parse("<html>503</html>", Limits::default());
    assert!(
        matches!(outcome, Err(FeedError::Malformed { .. })),
        "{outcome:?}"
    );
    let (_, outcome) = parse("[] trailing", Limits::default());
    assert!(
        matches!(outcome, Err(FeedError::Malformed { .. })),
        "{outcome:?}"
    );
}

#[test]
fn a_document_over_the_limit_is_refused() {
    let body = format!("[{}]", vec![r#"{"id": 1}"#; 100].join(","));
    let limits = Limits {
        max_bytes: 64,
        ..Limits::default()
    };
    let (_, outcome) = parse(&body, limits);
    assert_eq!(outcome, Err(FeedError::TooLarge { limit: 64 }));
}

#[test]
fn listings_are_one_per_resource_and_pages_use_page_and_limit() {
    let api = JsonApi {
        page_size: 50,
        ..JsonApi::default()
    };
    let listings = api.listings("http://h:1/api/");
    assert_eq!(listings.len(), 3);
    assert_eq!(
        listings[1].page_url(3),
        "http://h:1/api/comments?_page=3&_limit=50"
    );
    let plain = JsonApi::default().listings("http://h:1");
    assert_eq!(plain[0].page_url(1), "http://h:1/posts");
}
