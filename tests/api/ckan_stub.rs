//! A CKAN-compatible portal on a free port, built from the CKAN Action API documentation:
//! `GET /api/3/action/package_search?q=&sort=&rows=&start=` answers
//! `{"success": true, "result": {"count", "results": [package...]}}` and
//! `GET /api/3/action/package_show?id=<id or name>` answers `{"success": true, "result": package}`
//! or a 404 with `{"success": false, "error": {"message", "__type": "Not Found Error"}}`. It also
//! serves the resources the datasets point at (a WFS-like GeoJSON endpoint and files), so
//! harvested products can be streamed. Tests change the datasets and make the portal fail.

use std::path::Path;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    None,
    /// Every action answers 500 with an HTML error page (a portal behind a broken proxy).
    ServerError,
    /// Every action hangs past the client's timeout.
    Hang,
}

struct State {
    packages: Vec<Value>,
    failure: Failure,
    searches: usize,
    shows: usize,
}

#[derive(Clone)]
pub struct CkanStub {
    pub url: String,
    state: Arc<Mutex<State>>,
    handle: actix_web::dev::ServerHandle,
}

pub const WFS_BODY: &str = r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"ID":1,"BOOMSOORT":"Quercus robur","PLANTJAAR":1962,"WIJKNAAM":"Hunnerberg"},"geometry":{"type":"Point","coordinates":[5.8721,51.8425]}}]}"#;
pub const CSV_BODY: &str = "ID;WIJK;CATEGORIE\n1;Oost;Zwerfafval\n2;Lindenholt;Losliggende tegel\n";

fn fixture() -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ckan/packages.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("fixture"))
        .expect("fixture is JSON");
    doc["packages"].as_array().expect("packages").clone()
}

impl CkanStub {
    pub async fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind stub");
        let port = listener.local_addr().expect("addr").port();
        let url = format!("http://127.0.0.1:{port}");
        let packages = fixture()
            .into_iter()
            .map(|p| serde_json::from_str(&p.to_string().replace("{{BASE}}", &url)).expect("json"))
            .collect();
        let state = Arc::new(Mutex::new(State {
            packages,
            failure: Failure::None,
            searches: 0,
            shows: 0,
        }));
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route(
                    "/api/3/action/package_search",
                    web::get().to(package_search),
                )
                .route("/api/3/action/package_show", web::get().to(package_show))
                .route(
                    "/geoserver/wfs",
                    web::get().to(|| async {
                        HttpResponse::Ok()
                            .content_type("application/json;charset=UTF-8")
                            .body(WFS_BODY)
                    }),
                )
                .route(
                    "/data/{file}",
                    web::get().to(|| async {
                        HttpResponse::Ok().content_type("text/csv").body(CSV_BODY)
                    }),
                )
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { url, state, handle }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().expect("stub state"))
    }

    /// Changes one dataset as an editor would: the change moves `metadata_modified`.
    pub fn edit(&self, name: &str, change: impl FnOnce(&mut Value)) {
        self.with(|s| {
            let p = s
                .packages
                .iter_mut()
                .find(|p| p["name"] == name)
                .unwrap_or_else(|| panic!("no dataset {name}"));
            change(p);
            p["metadata_modified"] = json!(
                chrono::Utc::now()
                    .naive_utc()
                    .format("%Y-%m-%dT%H:%M:%S%.6f")
                    .to_string()
            );
        });
    }

    /// The dataset leaves the portal (deleted or made private: search no longer lists it).
    pub fn withdraw(&self, name: &str) {
        self.with(|s| s.packages.retain(|p| p["name"] != name));
    }

    pub fn add(&self, package: Value) {
        self.with(|s| s.packages.push(package));
    }

    pub fn package(&self, name: &str) -> Value {
        self.with(|s| {
            s.packages
                .iter()
                .find(|p| p["name"] == name)
                .cloned()
                .unwrap_or_else(|| panic!("no dataset {name}"))
        })
    }

    pub fn fail(&self, failure: Failure) {
        self.with(|s| s.failure = failure);
    }

    /// How many package_search and package_show calls were answered.
    pub fn calls(&self) -> (usize, usize) {
        self.with(|s| (s.searches, s.shows))
    }

    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

async fn failing(state: &Mutex<State>) -> Option<HttpResponse> {
    let failure = state.lock().expect("stub state").failure;
    match failure {
        Failure::None => None,
        Failure::ServerError => Some(
            HttpResponse::InternalServerError()
                .content_type("text/html")
                .body("<html><body><h1>500 Internal Server Error</h1></body></html>"),
        ),
        Failure::Hang => {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            Some(HttpResponse::GatewayTimeout().finish())
        }
    }
}

fn query(req: &HttpRequest) -> std::collections::HashMap<String, String> {
    web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default()
}

async fn package_search(req: HttpRequest, state: web::Data<Mutex<State>>) -> HttpResponse {
    if let Some(res) = failing(&state).await {
        return res;
    }
    let q = query(&req);
    let rows: usize = q.get("rows").and_then(|r| r.parse().ok()).unwrap_or(10);
    let start: usize = q.get("start").and_then(|r| r.parse().ok()).unwrap_or(0);
    let mut s = state.lock().expect("stub state");
    s.searches += 1;
    let mut all = s.packages.clone();
    if q.get("sort").map(String::as_str) == Some("name asc") {
        all.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    }
    let count = all.len();
    let results: Vec<Value> = all.into_iter().skip(start).take(rows.min(1000)).collect();
    HttpResponse::Ok().json(json!({
        "help": "http://localhost/api/3/action/help_show?name=package_search",
        "success": true,
        "result": {"count": count, "facets": {}, "results": results, "sort": "name asc", "search_facets": {}}
    }))
}

async fn package_show(req: HttpRequest, state: web::Data<Mutex<State>>) -> HttpResponse {
    if let Some(res) = failing(&state).await {
        return res;
    }
    let q = query(&req);
    let id = q.get("id").cloned().unwrap_or_default();
    let mut s = state.lock().expect("stub state");
    s.shows += 1;
    match s
        .packages
        .iter()
        .find(|p| p["id"] == id.as_str() || p["name"] == id.as_str())
    {
        Some(p) => HttpResponse::Ok().json(json!({
            "help": "http://localhost/api/3/action/help_show?name=package_show",
            "success": true,
            "result": p,
        })),
        None => HttpResponse::NotFound().json(json!({
            "help": "http://localhost/api/3/action/help_show?name=package_show",
            "success": false,
            "error": {"message": "Not found", "__type": "Not Found Error"},
        })),
    }
}
