//! `/search` with open ends, as the challenge's published contract allows (both parameters
//! `required: false`): an absent `starts_at` is from the beginning, an absent `ends_at` to
//! the end; bad values and reversed ranges still answer 400. Long answers are streamed page
//! by page and must be the same JSON, in the same order, with nothing lost or repeated.

use eye_testkit::{ProviderSim, Reply, TestApi, TestEnv, fixture};
use sea_orm::{ConnectionTrait, FromQueryResult, JsonValue, Statement};
use serde_json::Value;
use uuid::Uuid;

use super::{WITHIN, search, search_text};

/// (title, "start_date start_time") of each event found, in the answer's order.
fn starts(body: &Value) -> Vec<(String, String)> {
    body["data"]["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["title"].as_str().expect("title").to_owned(),
                format!(
                    "{} {}",
                    e["start_date"].as_str().expect("start_date"),
                    e["start_time"].as_str().expect("start_time")
                ),
            )
        })
        .collect()
}

fn plan(title: &str, start: &str) -> (String, String) {
    (title.to_owned(), start.to_owned())
}

/// An api whose store holds the four plans of `planlist_response_1.xml`, through the real
/// fetcher, broker and worker.
async fn with_fixture_plans(env: &TestEnv) -> TestApi {
    let api = env.spawn_api().await;
    let _worker = env.spawn_worker().await;
    let sim = ProviderSim::start(vec![Reply::Body(fixture("planlist_response_1.xml"))]).await;
    env.fetcher(&sim.url(), &[])
        .await
        .run_once()
        .await
        .expect("fetch");
    assert_eq!(env.wait_for_plans(WITHIN, |p| p.len() == 4).await.len(), 4);
    api
}

#[tokio::test]
async fn an_absent_bound_is_an_open_end_of_the_range() {
    let env = TestEnv::new().await;
    let api = with_fixture_plans(&env).await;
    let pantomima_10 = plan("Pantomima Full", "2021-02-10 20:00:00");
    let pantomima_11 = plan("Pantomima Full", "2021-02-11 20:00:00");
    let camela = plan("Camela en concierto", "2021-06-30 21:00:00");
    let morancos = plan("Los Morancos", "2021-07-31 20:00:00");
    let every = vec![
        pantomima_10.clone(),
        pantomima_11.clone(),
        camela.clone(),
        morancos.clone(),
    ];
    let cases = [
        // Neither: every plan ever online, from the beginning to the end.
        ("/search", every.clone()),
        // Unknown parameters are still ignored.
        ("/search?page=2", every.clone()),
        // Only starts_at: to the end; the edge stays inclusive.
        (
            "/search?starts_at=2021-06-30T21:00:00",
            vec![camela.clone(), morancos.clone()],
        ),
        (
            "/search?starts_at=2021-06-30T21:00:01",
            vec![morancos.clone()],
        ),
        ("/search?starts_at=2017-07-21T17:32:28Z", every.clone()),
        ("/search?starts_at=2021-08-01", vec![]),
        // Only ends_at: from the beginning; a plan must have ended by it (inclusive).
        (
            "/search?ends_at=2021-02-11T21:30:00",
            vec![pantomima_10.clone(), pantomima_11.clone()],
        ),
        (
            "/search?ends_at=2021-02-11T21:29:59",
            vec![pantomima_10.clone()],
        ),
        ("/search?ends_at=2021-07-21T17:32:28Z", every[..3].to_vec()),
        ("/search?ends_at=2021-01-01", vec![]),
    ];
    for (query, expected) in cases {
        let (status, body) = search(&api, query).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(body["error"], Value::Null, "{query}");
        assert_eq!(starts(&body), expected, "{query}");
    }
    // A whole plan as the open range shows it: the challenge's field names and forms.
    let (_, body) = search(&api, "/search?ends_at=2021-06-30T22:00:00").await;
    let camela = &body["data"]["events"][2];
    assert_eq!(camela["end_date"], "2021-06-30");
    assert_eq!(camela["end_time"], "22:00:00");
    assert_eq!(
        (camela["min_price"].as_f64(), camela["max_price"].as_f64()),
        (Some(15.0), Some(30.0))
    );
    assert!(
        camela["id"]
            .as_str()
            .and_then(|id| id.parse::<Uuid>().ok())
            .is_some()
    );
}

#[tokio::test]
async fn bad_values_and_reversed_ranges_still_answer_400_naming_the_parameter() {
    let env = TestEnv::new().await;
    let api = with_fixture_plans(&env).await;
    for (query, field) in [
        ("/search?starts_at=yesterday", "starts_at"),
        ("/search?ends_at=tomorrow", "ends_at"),
        ("/search?starts_at=", "starts_at"),
        ("/search?ends_at=", "ends_at"),
        ("/search?starts_at=2021-09-31T00:00:00", "starts_at"),
        ("/search?ends_at=-5000-01-01", "ends_at"),
        ("/search?starts_at=%2B10000-01-01T00:00:00", "starts_at"),
        ("/search?ends_at=22:38:19", "ends_at"),
        (
            "/search?starts_at=2021-02-01T00:00:00&ends_at=2021-01-01T00:00:00",
            "starts_at must not be after ends_at",
        ),
        ("/search?starts_at=2021-01-01&ends_at=bad", "ends_at"),
    ] {
        let (status, body) = search(&api, query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["data"], Value::Null, "{query}");
        assert_eq!(body["error"]["code"], "bad_request", "{query}");
        let message = body["error"]["message"].as_str().expect("message");
        assert!(message.contains(field), "{query}: {message}");
    }
}

/// Inserts `n` plans, three to each start (so a page can end between plans that start
/// together), one in ten (g % 10 = 1) never online, starting 2021-01-01 and five minutes apart.
async fn seed_plans(env: &TestEnv, n: u32) {
    env.db
        .execute_unprepared(&format!(
            "INSERT INTO provider_plans (provider, base_plan_id, plan_id, id, title, starts_at, \
             ends_at, min_price, max_price, sell_mode, ever_online, content_hash, data, \
             first_seen, last_seen) \
             SELECT 'fever', g::text, g::text, gen_random_uuid(), 'Plan ' || g, \
                    timestamp '2021-01-01' + ((g / 3) * interval '5 minutes'), \
                    timestamp '2021-01-01' + ((g / 3) * interval '5 minutes') + interval '1 hour', \
                    10.50, 20.00, CASE WHEN g % 10 = 1 THEN 'offline' ELSE 'online' END, \
                    g % 10 <> 1, md5(g::text), '{{}}'::jsonb, now(), now() \
             FROM generate_series(1, {n}) AS g"
        ))
        .await
        .expect("seed plans");
}

/// The ids the store holds in range, in the answer's order (start, then id).
async fn stored_ids(env: &TestEnv, filter: &str) -> Vec<String> {
    let rows = JsonValue::find_by_statement(Statement::from_string(
        env.db.get_database_backend(),
        format!(
            "SELECT id::text AS id FROM provider_plans \
             WHERE ever_online {filter} ORDER BY starts_at, id"
        ),
    ))
    .all(&env.db)
    .await
    .expect("stored ids");
    rows.iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect()
}

fn ids(body: &Value) -> Vec<String> {
    body["data"]["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn a_long_open_range_is_streamed_whole_in_order_without_repeats() {
    let env = TestEnv::new().await;
    seed_plans(&env, 3000).await;
    let api = env.spawn_api().await;

    // 2,700 online plans: more than two pages of 1,000, streamed.
    let response = api
        .client
        .get(api.url("/search"))
        .send()
        .await
        .expect("search");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().ok(),
        Some("application/json")
    );
    assert!(
        response.content_length().is_none(),
        "a streamed answer has no length"
    );
    let text = response.text().await.expect("body");
    let body: Value = serde_json::from_str(&text).expect("the streamed answer is one JSON");
    assert_eq!(body["error"], Value::Null);
    let all = stored_ids(&env, "").await;
    assert_eq!(all.len(), 2700);
    assert_eq!(ids(&body), all);
    // Written as the whole answer writes it: exact prices, the challenge's forms.
    assert!(
        text.starts_with(r#"{"data":{"events":[{"id":""#),
        "{}",
        &text[..80]
    );
    assert!(text.ends_with(r#"}]},"error":null}"#));
    assert!(text.contains(r#""min_price":10.50,"max_price":20.00"#));

    // Exactly one page (1,000 plans) is streamed too, with an empty second page.
    // Starts 0..=370 (g < 1113, those with g % 10 = 1 offline): 1,000 online plans.
    let query = "/search?ends_at=2021-01-02T07:50:00";
    let (status, text) = search_text(&api, query).await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_str(&text).expect("json");
    let expected = stored_ids(&env, "AND ends_at <= '2021-01-02T07:50:00'").await;
    assert_eq!(expected.len(), 1000);
    assert_eq!(ids(&body), expected);

    // Only starts_at, crossing page ends between plans that start together.
    let (status, body) = search(&api, "/search?starts_at=2021-01-01T12:00:00").await;
    assert_eq!(status, 200);
    let expected = stored_ids(&env, "AND starts_at >= '2021-01-01T12:00:00'").await;
    assert!(expected.len() > 2000, "{}", expected.len());
    assert_eq!(ids(&body), expected);

    // A short range is still answered whole, with its length.
    let response = api
        .client
        .get(api.url("/search?starts_at=2021-01-01&ends_at=2021-01-01T02:00:00"))
        .send()
        .await
        .expect("search");
    assert!(response.content_length().is_some());
}
