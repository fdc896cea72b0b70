//! The catalog: DCAT-AP-NL 3.0 as JSON-LD (context inlined) and Turtle, paged; every product with
//! its access rights and, when restricted, its ODRL offer; valid against the profile's SHACL
//! shapes; and kept in step with a CKAN portal (created, updated, withdrawn, each audited), which
//! may fail without the catalog losing its last good state.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use sluis::app::Application;
use sluis::catalog::{Access, PortalRule, PortalSettings};
use sluis::config::Settings;

use crate::both_databases;
use crate::ckan_stub::{CSV_BODY, CkanStub, Failure, WFS_BODY};
use crate::helpers::*;

both_databases!(
    catalog_describes_every_product,
    catalog_is_paged,
    portal_datasets_become_products_and_follow_changes,
    portal_failure_keeps_the_last_good_catalog_and_recovers,
    catalog_sync_command_prints_what_changed,
);

const PUBLIC: &str = "http://publications.europa.eu/resource/authority/access-right/PUBLIC";
const RESTRICTED: &str = "http://publications.europa.eu/resource/authority/access-right/RESTRICTED";
/// Harvestable datasets in the fixture (one of the eight has no downloadable resource).
const HARVESTABLE: usize = 7;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn with_policies(s: &mut Settings) {
    s.admin.policies_dir = Some(repo("policies"));
}

fn portal(url: &str) -> PortalSettings {
    PortalSettings {
        url: url.to_string(),
        poll_interval_secs: 1,
        rows: 3,
        timeout_ms: 500,
        id_prefix: String::new(),
        rules: vec![PortalRule {
            organization: None,
            tag: Some("persoonsgegevens".into()),
            name: None,
            access: Access::Restricted,
            policy: Some("oorlogsschade.json".into()),
        }],
    }
}

/// `GET /catalog{query}` as JSON-LD.
async fn catalog(client: &reqwest::Client, public: &str, query: &str) -> Value {
    let res = client
        .get(format!("{public}/catalog{query}"))
        .send()
        .await
        .expect("catalog answers");
    assert_eq!(res.status(), 200, "{query}");
    assert_eq!(res.headers()["content-type"], "application/ld+json");
    res.json().await.expect("JSON")
}

fn nodes_of<'a>(doc: &'a Value, ty: &str) -> Vec<&'a Value> {
    doc["@graph"]
        .as_array()
        .expect("@graph")
        .iter()
        .filter(|n| values(&n["@type"]).iter().any(|t| *t == ty))
        .collect()
}

/// A property's values, whether one or many.
fn values(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        Value::Null => vec![],
        one => vec![one],
    }
}

/// Datasets by `dct:identifier`.
fn datasets(doc: &Value) -> BTreeMap<String, Value> {
    nodes_of(doc, "dcat:Dataset")
        .into_iter()
        .map(|d| {
            let id = d["dct:identifier"]
                .as_str()
                .expect("identifier")
                .to_string();
            (id, d.clone())
        })
        .collect()
}

fn access_rights(d: &Value) -> &str {
    d["dct:accessRights"]["@id"].as_str().unwrap_or_default()
}

fn title(d: &Value) -> &str {
    d["dct:title"]["@value"].as_str().unwrap_or_default()
}

/// Polls `check` until it holds or `limit` passes; returns how long it took.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The application on an existing database (for restarts), stopped by the returned handle.
struct Running {
    public: String,
    admin: String,
    stop: sluis::app::StopHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start_on(db: &TestDb, customize: impl FnOnce(&mut Settings)) -> Running {
    init_logs();
    let mut s = test_settings(db);
    with_policies(&mut s);
    customize(&mut s);
    let app = Application::build(s).await.expect("application starts");
    let public = format!("http://127.0.0.1:{}", app.public_port());
    let admin = format!("http://127.0.0.1:{}", app.admin_port());
    let stop = app.stop_handle();
    let task = tokio::spawn(app.run_until_stopped());
    Running {
        public,
        admin,
        stop,
        task,
    }
}

impl Running {
    async fn finish(self) {
        self.stop.stop().await;
        self.task.await.expect("task").expect("server ran cleanly");
    }
}

async fn harvest_records(url: &str) -> Vec<(String, String)> {
    audit_records(url)
        .await
        .into_iter()
        .filter(|r| r.action == "harvest")
        .map(|r| {
            let reasons: Vec<String> = serde_json::from_str(&r.reasons).expect("reasons");
            (r.product.unwrap_or_default(), reasons.join(","))
        })
        .collect()
}

async fn catalog_describes_every_product(backend: Backend) {
    let app = spawn_app_with(backend, |s, _| with_policies(s)).await;
    let res = app.get("/catalog").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/ld+json");
    let txid = txid(&res);
    let doc: Value = res.json().await.unwrap();

    // The context is inlined: no remote document is needed to read it.
    let context = doc["@context"].as_object().expect("inline context object");
    assert_eq!(context["dcat"], "http://www.w3.org/ns/dcat#");
    assert!(
        !doc.to_string().contains("odrl.jsonld"),
        "the policy's remote context is not carried along"
    );
    let catalogs = nodes_of(&doc, "dcat:Catalog");
    assert_eq!(catalogs.len(), 1);
    assert_eq!(values(&catalogs[0]["dcat:dataset"]).len(), 3);

    let ds = datasets(&doc);
    assert_eq!(
        ds.keys().cloned().collect::<Vec<_>>(),
        ["oorlogsschade", "stadsmuur", "wijken"]
    );
    assert_eq!(access_rights(&ds["stadsmuur"]), PUBLIC);
    assert_eq!(access_rights(&ds["oorlogsschade"]), RESTRICTED);
    assert!(ds["stadsmuur"].get("odrl:hasPolicy").is_none());
    for d in ds.values() {
        for required in [
            "dct:publisher",
            "dcat:contactPoint",
            "dcat:theme",
            "dct:creator",
        ] {
            assert!(d.get(required).is_some(), "{required} in {d}");
        }
    }

    let offer = &ds["oorlogsschade"]["odrl:hasPolicy"];
    assert_eq!(offer["@id"], "urn:sluis:policy:oorlogsschade");
    assert!(values(&offer["@type"]).contains(&&Value::from("odrl:Offer")));
    let permission = &offer["odrl:permission"];
    assert_eq!(permission["odrl:action"]["@id"], "odrl:read");
    assert_eq!(
        permission["odrl:assignee"]["@id"],
        "urn:sluis:group:gemeenten"
    );
    assert_eq!(
        permission["odrl:constraint"]["odrl:operator"]["@id"],
        "odrl:isAnyOf"
    );
    assert!(offer.get("odrl:prohibition").is_some());

    // Each dataset's distribution is reached on this connector.
    let dist_id = ds["wijken"]["dcat:distribution"]["@id"].as_str().unwrap();
    let dist = doc["@graph"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["@id"] == dist_id)
        .expect("distribution node");
    assert_eq!(
        dist["dcat:accessURL"]["@id"],
        format!("{}/products/wijken", app.public)
    );
    assert_eq!(
        dist["dcat:mediaType"]["@id"],
        "https://www.iana.org/assignments/media-types/application/geo+json"
    );
    let rec = audit_record(&app.db.url, &txid).await;
    assert_eq!(
        (rec.path.as_str(), rec.decision.as_str()),
        ("/catalog", "permit")
    );

    // Turtle says the same.
    let res = app
        .client
        .get(format!("{}/catalog", app.public))
        .header("Accept", "text/turtle")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/turtle; charset=utf-8");
    assert_eq!(res.headers()["vary"], "Accept");
    let ttl = res.text().await.unwrap();
    assert!(ttl.starts_with("@prefix "), "{ttl}");
    for id in ["oorlogsschade", "stadsmuur", "wijken"] {
        assert!(ttl.contains(&format!("dct:identifier \"{id}\"")), "{id}");
    }
    assert!(ttl.contains(&format!("dct:accessRights <{RESTRICTED}>")));
    assert!(ttl.contains("<urn:sluis:policy:oorlogsschade> a odrl:Offer"));

    let res = app
        .client
        .post(format!("{}/catalog", app.public))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    app.finish().await;
}

async fn catalog_is_paged(backend: Backend) {
    let app = spawn_app_with(backend, |s, _| {
        with_policies(s);
        for i in 0..247 {
            s.products.push(file_product(
                &format!("laag-{i:03}"),
                demo_file("stadsmuur.geojson"),
            ));
        }
    })
    .await;
    let mut seen = BTreeSet::new();
    for page in 1..=3 {
        let res = app.get(&format!("/catalog?page={page}&per_page=100")).await;
        assert_eq!(res.status(), 200);
        let link = res.headers()["link"].to_str().unwrap().to_string();
        assert_eq!(link.contains("rel=\"next\""), page < 3, "{link}");
        assert_eq!(link.contains("rel=\"prev\""), page > 1, "{link}");
        let doc: Value = res.json().await.unwrap();
        let ds = datasets(&doc);
        assert_eq!(ds.len(), if page < 3 { 100 } else { 50 });
        let catalog = &nodes_of(&doc, "dcat:Catalog")[0];
        assert_eq!(catalog["hydra:totalItems"]["@value"], "250");
        let view = &nodes_of(&doc, "hydra:PartialCollectionView")[0];
        assert_eq!(view.get("hydra:next").is_some(), page < 3);
        for id in ds.keys() {
            assert!(seen.insert(id.clone()), "{id} on two pages");
        }
    }
    assert_eq!(seen.len(), 250, "every product on exactly one page");

    let default = catalog(&app.client, &app.public, "").await;
    assert_eq!(datasets(&default).len(), 100, "the default page size");

    for bad in [
        "?page=4&per_page=100",
        "?page=0",
        "?per_page=0",
        "?per_page=5000",
        "?page=x",
    ] {
        let res = app.get(&format!("/catalog{bad}")).await;
        assert_eq!(res.status(), 400, "{bad}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let p: Value = res.json().await.unwrap();
        assert_eq!(p["code"], "BAD_REQUEST", "{bad}");
    }
    app.finish().await;
}

async fn portal_datasets_become_products_and_follow_changes(backend: Backend) {
    let stub = CkanStub::start().await;
    let app = spawn_app_with(backend, |s, _| {
        with_policies(s);
        s.catalog.portal = Some(portal(&stub.url));
    })
    .await;
    let (client, public) = (app.client.clone(), app.public.clone());
    eventually(Duration::from_secs(10), "first harvest", || async {
        datasets(&catalog(&client, &public, "").await).len() == 3 + HARVESTABLE
    })
    .await;
    let (searches, shows) = stub.calls();
    assert!(
        searches >= 3,
        "8 datasets in pages of 3: {searches} searches"
    );
    assert!(shows > HARVESTABLE, "each new dataset shown: {shows}");

    let ds = datasets(&catalog(&client, &public, "").await);
    assert!(
        !ds.contains_key("begraafplaatsen-archief"),
        "no resource, no product"
    );
    let bomen = &ds["bomen-nijmegen"];
    assert_eq!(title(bomen), "Bomen in Nijmegen");
    assert_eq!(access_rights(bomen), PUBLIC);
    assert_eq!(
        bomen["dcat:landingPage"]["@id"],
        format!("{}/dataset/bomen-nijmegen", stub.url)
    );
    assert_eq!(values(&bomen["dcat:keyword"]).len(), 3);
    assert_eq!(bomen["dct:modified"]["@value"], "2024-11-04T08:15:02Z");
    let meldingen = &ds["meldingen-openbare-ruimte"];
    assert_eq!(
        access_rights(meldingen),
        RESTRICTED,
        "restricted by the tag rule"
    );
    assert_eq!(
        meldingen["odrl:hasPolicy"]["@id"],
        "urn:sluis:policy:oorlogsschade"
    );

    // Harvested products stream from the portal's resource: the data stays at the source.
    let res = app.get("/products/bomen-nijmegen").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/geo+json");
    assert_eq!(res.text().await.unwrap(), WFS_BODY);
    let res = app.get("/products/afvalbakken").await;
    assert_eq!(res.text().await.unwrap(), CSV_BODY);
    assert_eq!(
        app.get("/products/meldingen-openbare-ruimte")
            .await
            .status(),
        401
    );

    // A change, a withdrawal and a new dataset, each visible within one poll interval.
    let mut new = stub.package("speeltoestellen");
    new["id"] = "0b8f8a4e-2a3c-4f4e-9d1e-6a7b8c9d0e1f".into();
    new["name"] = "hondenuitlaatplaatsen".into();
    new["title"] = "Hondenuitlaatplaatsen".into();
    stub.edit("afvalbakken", |p| {
        p["title"] = "Afvalbakken en hondenpoepbakken".into()
    });
    stub.withdraw("laadpalen-elektrisch-vervoer");
    stub.add(new);
    let took = eventually(
        Duration::from_secs(10),
        "change, withdrawal, new",
        || async {
            let ds = datasets(&catalog(&client, &public, "").await);
            ds.get("afvalbakken")
                .is_some_and(|d| title(d) == "Afvalbakken en hondenpoepbakken")
                && !ds.contains_key("laadpalen-elektrisch-vervoer")
                && ds.contains_key("hondenuitlaatplaatsen")
        },
    )
    .await;
    assert!(
        took < Duration::from_millis(2500),
        "one poll interval (1 s) plus the poll itself, took {took:?}"
    );
    assert_eq!(
        app.get("/products/laadpalen-elektrisch-vervoer")
            .await
            .status(),
        404
    );

    let mut records = harvest_records(&app.db.url).await;
    records.sort();
    let created: BTreeSet<&str> = records
        .iter()
        .filter(|(_, r)| r == "created")
        .map(|(p, _)| p.as_str())
        .collect();
    assert_eq!(created.len(), HARVESTABLE + 1, "{records:?}");
    assert!(created.contains("hondenuitlaatplaatsen"));
    assert!(records.contains(&("afvalbakken".into(), "updated".into())));
    assert!(records.contains(&("laadpalen-elektrisch-vervoer".into(), "withdrawn".into())));
    assert_eq!(
        records.len(),
        HARVESTABLE + 3,
        "nothing audited twice: {records:?}"
    );
    assert_chains_intact(&audit_records(&app.db.url).await);
    app.finish().await;
    stub.stop().await;
}

async fn portal_failure_keeps_the_last_good_catalog_and_recovers(backend: Backend) {
    let stub = CkanStub::start().await;
    let db = TestDb::new(backend).await;
    let url = stub.url.clone();
    let app = start_on(&db, |s| s.catalog.portal = Some(portal(&url))).await;
    let client = reqwest::Client::new();
    let public = app.public.clone();
    eventually(Duration::from_secs(10), "first harvest", || async {
        datasets(&catalog(&client, &public, "").await).len() == 3 + HARVESTABLE
    })
    .await;
    let before = datasets(&catalog(&client, &public, "").await);

    // The portal breaks, and meanwhile its data changes: nothing of that reaches the catalog,
    // and in particular nothing is withdrawn.
    stub.fail(Failure::ServerError);
    stub.edit("bomen-nijmegen", |p| {
        p["title"] = "Bomen (gewijzigd)".into()
    });
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(datasets(&catalog(&client, &public, "").await), before);
    assert_eq!(app.get_status("/products/bomen-nijmegen").await, 200);
    // Readiness says so, and stays 200: the last good catalog is still served.
    let ready = client
        .get(format!("{}/health/ready", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(ready["checks"]["portal"]["status"], "failing", "{ready}");
    assert!(
        ready["checks"]["portal"]["consecutive_failures"].as_u64() >= Some(1),
        "{ready}"
    );

    // A restart while the portal hangs serves the last good catalog from the database.
    app.finish().await;
    stub.fail(Failure::Hang);
    let app = start_on(&db, |s| s.catalog.portal = Some(portal(&url))).await;
    let public = app.public.clone();
    let after_restart = datasets(&catalog(&client, &public, "").await);
    assert_eq!(
        after_restart.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    assert_eq!(title(&after_restart["bomen-nijmegen"]), "Bomen in Nijmegen");

    // It recovers by itself once the portal answers again.
    stub.fail(Failure::None);
    eventually(Duration::from_secs(10), "recovery", || async {
        datasets(&catalog(&client, &public, "").await)
            .get("bomen-nijmegen")
            .is_some_and(|d| title(d) == "Bomen (gewijzigd)")
    })
    .await;
    app.finish().await;
    stub.stop().await;
    db.drop_db().await;
}

impl Running {
    async fn get_status(&self, path: &str) -> u16 {
        reqwest::get(format!("{}{path}", self.public))
            .await
            .expect("request")
            .status()
            .as_u16()
    }
}

fn sync_command(config: &Path) -> (Option<i32>, String, String) {
    let out = Command::new(sluis_bin())
        .args(["catalog", "sync", "--config"])
        .arg(config)
        .env("SLUIS_LOG", "error")
        .output()
        .expect("run sluis");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn catalog_sync_command_prints_what_changed(backend: Backend) {
    let stub = CkanStub::start().await;
    let db = TestDb::new(backend).await;
    let config = db.dir().join("sluis.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{}\"\n[admin]\npolicies_dir = \"{}\"\n\
             [auth]\nsigning_key = \"{}\"\ncreate_missing_key = true\n\
             [catalog.portal]\nurl = \"{}\"\nrows = 3\n\
             [[catalog.portal.rules]]\ntag = \"persoonsgegevens\"\npolicy = \"oorlogsschade.json\"\n",
            db.url,
            repo("policies").display(),
            db.dir().join("connector.key").display(),
            stub.url
        ),
    )
    .unwrap();

    let (code, out, err) = sync_command(&config);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("created   bomen-nijmegen\n"), "{out}");
    assert!(
        out.contains("skipped   begraafplaatsen-archief: no resource"),
        "{out}"
    );
    assert!(
        out.ends_with("7 created, 0 updated, 0 withdrawn, 0 unchanged, 1 skipped\n"),
        "{out}"
    );

    stub.withdraw("laadpalen-elektrisch-vervoer");
    stub.edit("afvalbakken", |p| {
        p["notes"] = "Nu ook ondergrondse containers.".into()
    });
    let (code, out, err) = sync_command(&config);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("updated   afvalbakken\n"), "{out}");
    assert!(
        out.contains("withdrawn laadpalen-elektrisch-vervoer\n"),
        "{out}"
    );
    assert!(
        out.ends_with("0 created, 1 updated, 1 withdrawn, 5 unchanged, 1 skipped\n"),
        "{out}"
    );
    assert_eq!(harvest_records(&db.url).await.len(), 9);

    stub.fail(Failure::ServerError);
    let (code, _, err) = sync_command(&config);
    assert_eq!(code, Some(1));
    assert_eq!(
        err.trim(),
        "sluis: portal answered HTTP 500",
        "one line: {err}"
    );

    // The server sees what the command stored, even with the portal down.
    let url = stub.url.clone();
    let app = start_on(&db, |s| s.catalog.portal = Some(portal(&url))).await;
    let ds = datasets(&catalog(&reqwest::Client::new(), &app.public, "").await);
    assert_eq!(ds.len(), 3 + HARVESTABLE - 1);
    assert!(!ds.contains_key("laadpalen-elektrisch-vervoer"));
    assert_eq!(
        ds["afvalbakken"]["dct:description"]["@value"],
        "Nu ook ondergrondse containers."
    );
    app.finish().await;
    stub.stop().await;
    db.drop_db().await;
}

/// The catalog with open, restricted and harvested products, in pages, in both syntaxes, passes
/// the DCAT-AP-NL 3.0 shapes with no violation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_passes_the_dcat_ap_nl_shacl_shapes() {
    let stub = CkanStub::start().await;
    let app = spawn_app_with(Backend::Sqlite, |s, _| {
        with_policies(s);
        s.catalog.portal = Some(portal(&stub.url));
        for i in 0..110 {
            s.products.push(file_product(
                &format!("laag-{i:03}"),
                demo_file("stadsmuur.geojson"),
            ));
        }
    })
    .await;
    let total = 3 + 110 + HARVESTABLE;
    let (client, public) = (app.client.clone(), app.public.clone());
    eventually(Duration::from_secs(10), "harvest", || async {
        nodes_of(
            &catalog(&client, &public, "?per_page=1").await,
            "dcat:Catalog",
        )[0]["hydra:totalItems"]["@value"]
            .as_str()
            == Some(total.to_string().as_str())
    })
    .await;

    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let per_page = 50;
    let pages = total.div_ceil(per_page);
    for page in 1..=pages {
        for (accept, ext, format) in [
            ("application/ld+json", "jsonld", "json-ld"),
            ("text/turtle", "ttl", "turtle"),
        ] {
            let body = client
                .get(format!("{public}/catalog?page={page}&per_page={per_page}"))
                .header("Accept", accept)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let path = dir.path().join(format!("catalog-{page}.{ext}"));
            std::fs::write(&path, body).unwrap();
            files.push(format!("{}:{format}", path.display()));
        }
    }
    let out = run_command(
        Command::new(python_venv(
            "shacl-venv",
            &repo("tests/shacl/requirements.txt"),
        ))
        .arg(repo("tests/shacl/validate.py"))
        .arg(repo("tests/fixtures/dcat-ap-nl/shapes"))
        .args(&files),
    );
    let reports: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON report line"))
        .collect();
    assert_eq!(
        reports.len(),
        files.len(),
        "every document validated: {out}"
    );
    let mut validated = 0;
    let mut with_offer = 0;
    for r in &reports {
        assert_eq!(r["violations"], 0, "SHACL violations: {r:#}");
        assert_eq!(r["catalogs"], 1, "{r}");
        assert!(r["triples"].as_u64().unwrap() > 100, "{r}");
        assert_eq!(r["datasets"], r["distributions"], "{r}");
        validated += r["datasets"].as_u64().unwrap();
        with_offer += r["datasets_with_policy"].as_u64().unwrap();
    }
    assert_eq!(
        validated as usize,
        2 * total,
        "each dataset in JSON-LD and in Turtle"
    );
    assert!(
        with_offer >= 4,
        "restricted products carry their offer: {out}"
    );
    eprintln!("SHACL: {out}");
    app.finish().await;
    stub.stop().await;
}
