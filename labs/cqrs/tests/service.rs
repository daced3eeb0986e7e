//! The lab's services in one process, over the in-process bus, or over NATS JetStream when
//! `NATS_URL` is set (`cargo xtask test` runs this target again against a throwaway
//! `nats-server -js`): the whole path from a command to both views, read-your-writes with the
//! position token, `/metrics`, a rebuild while reads continue, and hostile input to both APIs.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use lab_cqrs::projection::Settings;
use lab_cqrs::system::{self, Pieces, Started};
use lab_cqrs::write::TOKEN_HEADER;
use lab_runtime::serve::Running;
use serde_json::{Value, json};

struct Lab {
    _started: Started,
    _server: Running,
    base: String,
    dir: PathBuf,
    client: reqwest::Client,
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cqrs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn lab(name: &str) -> Lab {
    let dir = scratch(name);
    let nats = std::env::var("NATS_URL").ok();
    let started = system::start(&dir, Pieces::ALL, nats.as_deref(), Settings::default())
        .await
        .unwrap();
    let listener = lab_runtime::serve::bind_loopback(0).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = lab_runtime::serve::spawn_on(listener, started.router.clone()).unwrap();
    Lab {
        _started: started,
        _server: server,
        base,
        dir,
        client: reqwest::Client::new(),
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Lab {
    async fn post(&self, path: &str, body: &str) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    /// Posts and returns the position token.
    async fn write(&self, path: &str, body: Value) -> u64 {
        let response = self.post(path, &body.to_string()).await;
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.headers()[TOKEN_HEADER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    async fn get(&self, path: &str, token: Option<u64>) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header(TOKEN_HEADER, token);
        }
        request.send().await.unwrap()
    }

    fn head(&self) -> u64 {
        lab_cqrs::read::store_head(&self.dir.join("store.db")).unwrap()
    }
}

async fn an_order(lab: &Lab, id: &str, customer: &str) -> u64 {
    let path = format!("/orders/{id}");
    lab.write(
        &path,
        json!({ "type": "CreateOrder", "order_id": id, "customer": customer }),
    )
    .await;
    lab.write(
        &path,
        json!({ "type": "AddItem", "sku": "mug", "quantity": 2, "unit_price_cents": 450 }),
    )
    .await;
    lab.write(&path, json!({ "type": "PlaceOrder" })).await
}

async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_reaches_both_views_and_a_read_with_its_token_sees_it() {
    let lab = lab("path").await;
    lab.write("/customers/c1", json!({ "name": "Ada" })).await;
    lab.write("/products/mug", json!({ "name": "Blue mug" }))
        .await;
    let token = an_order(&lab, "o1", "c1").await;
    assert_eq!(
        token,
        lab.head(),
        "the token is the position of the write's last event"
    );

    let details = lab.get("/orders/o1", Some(token)).await;
    assert_eq!(details.status(), 200);
    assert_eq!(details.headers()["read-freshness"], "fresh");
    let details: Value = details.json().await.unwrap();
    assert_eq!(
        details["row"]["customer_name"], "Ada",
        "denormalised: the customer's name is in the row"
    );
    assert_eq!(details["row"]["lines"]["mug"]["product_name"], "Blue mug");
    assert_eq!(details["row"]["total_cents"], 900);
    assert_eq!(details["row"]["status"], "placed");

    let summary: Value = lab
        .get("/customers/c1/summary", Some(token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(summary["freshness"], "fresh");
    assert_eq!(
        (
            summary["row"]["placed"].clone(),
            summary["row"]["spent_cents"].clone()
        ),
        (json!(1), json!(900))
    );

    // A rename reaches the order rows already written.
    let token = lab
        .write("/customers/c1", json!({ "name": "Ada L." }))
        .await;
    let details: Value = lab
        .get("/orders/o1", Some(token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(details["row"]["customer_name"], "Ada L.");

    let metrics = lab.get("/metrics", None).await.text().await.unwrap();
    assert!(
        metrics.contains(&format!("cqrs_store_head {token}")),
        "{metrics}"
    );
    for name in system::VIEWS {
        assert!(
            metrics.contains(&format!(
                "cqrs_projection_lag_positions{{projection=\"{name}\"}} 0"
            )),
            "{metrics}"
        );
        assert!(
            metrics.contains(&format!("cqrs_projection_lag_ms{{projection=\"{name}\"}}")),
            "{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_whose_token_the_view_has_not_reached_answers_stale_after_the_wait() {
    let lab = lab("stale").await;
    let held = lab._started.details.as_ref().unwrap().pause().await;
    let token = an_order(&lab, "o1", "c1").await;
    let response = lab
        .get(&format!("/orders/o1?wait_ms=50&token={token}"), None)
        .await;
    assert_eq!(
        response.headers()["read-freshness"],
        "stale",
        "the projector is held: the wait ends stale"
    );
    let body = problem(response, 404).await;
    assert!(body["detail"].as_str().unwrap().contains("stale"), "{body}");
    drop(held);
    let response = lab.get("/orders/o1?wait_ms=5000", Some(token)).await;
    assert_eq!(response.headers()["read-freshness"], "fresh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_commands_are_problem_json_4xx_and_write_nothing() {
    let lab = lab("hostile-write").await;
    an_order(&lab, "o1", "c1").await;
    let head = lab.head();
    let cases: [(&str, &str, u16, &str); 10] = [
        ("/orders/o%FF", r#"{"type":"PlaceOrder"}"#, 400, "UTF-8"),
        ("/orders/o2", "{not json", 400, "not an order command"),
        (
            "/orders/o2",
            r#"{"type":"Teleport"}"#,
            400,
            "unknown variant",
        ),
        (
            "/orders/o2",
            r#"{"type":"CreateOrder","order_id":"o3","customer":"c1"}"#,
            400,
            "was sent to /orders/o2",
        ),
        (
            "/orders/o2",
            r#"{"type":"CreateOrder","order_id":"o2","customer":"c 1"}"#,
            400,
            "customer id",
        ),
        ("/orders/o%20x", r#"{"type":"PlaceOrder"}"#, 400, "order id"),
        (
            "/orders/o2",
            r#"{"type":"PlaceOrder"}"#,
            422,
            "create it first",
        ),
        (
            "/orders/o1",
            r#"{"type":"AddItem","sku":"tea","quantity":1,"unit_price_cents":1}"#,
            422,
            "placed or cancelled",
        ),
        ("/customers/c1", r#"{"name":"   "}"#, 400, "not blank"),
        (
            "/products/mug",
            r#"{"name":"Mug","price":3}"#,
            400,
            "unknown field",
        ),
    ];
    for (path, body, status, says) in cases {
        let body = problem(lab.post(path, body).await, status).await;
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.contains(says),
            "{path}: {detail:?} should say {says:?}"
        );
    }
    let huge = format!(r#"{{"name":"{}"}}"#, "x".repeat(20_000));
    problem(lab.post("/customers/c9", &huge).await, 413).await;
    assert_eq!(lab.head(), head, "no refused write appended anything");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_reads_are_problem_json_4xx() {
    let lab = lab("hostile-read").await;
    let token = an_order(&lab, "o1", "c1").await;
    let body = problem(lab.get("/orders/o1", Some(token + 1)).await, 400).await;
    assert!(
        body["detail"].as_str().unwrap().contains("from the future"),
        "{body}"
    );
    let body = problem(lab.get("/orders/o1?token=abc", None).await, 400).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("not a whole number"),
        "{body}"
    );
    problem(lab.get("/orders/o1?wait_ms=999999", None).await, 400).await;
    problem(lab.get("/orders/nobody", Some(token)).await, 404).await;
    let body = problem(
        lab.post("/admin/projections/top-secret/rebuild", "").await,
        404,
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("top-secret"),
        "{body}"
    );
    problem(lab.get("/admin/projections/nope", None).await, 404).await;
    problem(lab.get("/nowhere", None).await, 404).await;
}

async fn wait_idle(lab: &Lab, name: &str) -> Value {
    for _ in 0..2_000 {
        let status: Value = lab
            .get(&format!("/admin/projections/{name}"), None)
            .await
            .json()
            .await
            .unwrap();
        if status["phase"] == "idle" && status["last_equal_to_live"] != Value::Null {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the rebuild of {name} did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_while_reads_continue_equals_the_incremental_view() {
    let lab = lab("rebuild").await;
    lab.write("/customers/c1", json!({ "name": "Ada" })).await;
    let mut token = 0;
    for n in 0..30 {
        token = an_order(&lab, &format!("o{n}"), "c1").await;
    }
    let before: Value = lab
        .get("/customers/c1/summary", Some(token))
        .await
        .json()
        .await
        .unwrap();
    for name in system::VIEWS {
        let started = lab
            .post(&format!("/admin/projections/{name}/rebuild"), "")
            .await;
        assert_eq!(started.status(), 202, "{name}");
        let body: Value = started.json().await.unwrap();
        assert_eq!(body["phase"], "building");
        let read = lab.get("/customers/c1/summary", None).await;
        assert_eq!(
            read.status(),
            200,
            "the old generation serves during the rebuild"
        );
        let done = wait_idle(&lab, name).await;
        assert_eq!(done["serving"], 2, "{name}: the new generation serves");
        assert_eq!(
            done["last_equal_to_live"], true,
            "{name}: the rebuilt view equals the live one"
        );
    }
    let after: Value = lab
        .get("/customers/c1/summary", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["row"], before["row"]);
    let token = an_order(&lab, "late", "c1").await;
    let after: Value = lab
        .get("/customers/c1/summary", Some(token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        after["row"]["placed"], 31,
        "the live projection goes on in the new generation"
    );
    let files =
        rusqlite::Connection::open(system::view_path(&lab.dir, "customer-summary")).unwrap();
    let old: u64 = files
        .query_row(
            "SELECT COUNT(*) FROM rows WHERE generation = 1",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(old, 0, "the old generation is dropped");
}
