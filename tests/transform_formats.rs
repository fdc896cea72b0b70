//! Obligations applied to real GeoJSON, JSON and CSV bodies: what a consumer of a restricted product
//! receives when fields are dropped or pseudonymised and rows filtered.

mod transform_support;

use std::collections::HashSet;

use serde_json::{Value, json};
use sluis::policy::Obligation;
use sluis::source::transform::{TransformError, TransformPlan, Transformer};
use transform_support::*;

fn features(doc: &Value) -> &Vec<Value> {
    doc["features"].as_array().expect("features array")
}

fn unsupported(r: Result<Vec<u8>, TransformError>) -> String {
    match r {
        Err(TransformError::Unsupported(u)) => u.0,
        Err(e) => panic!("expected Unsupported, got {e}"),
        Ok(out) => panic!(
            "expected Unsupported, got {}",
            String::from_utf8_lossy(&out)
        ),
    }
}

fn malformed(r: Result<Vec<u8>, TransformError>) -> String {
    match r {
        Err(e @ TransformError::Malformed { .. }) => e.to_string(),
        Err(e) => panic!("expected Malformed, got {e}"),
        Ok(out) => panic!("expected Malformed, got {}", String::from_utf8_lossy(&out)),
    }
}

// ---------------------------------------------------------------- GeoJSON

#[test]
fn geojson_drop_removes_the_field_and_keeps_everything_else() {
    let input = fixture("wo2_oorlogsschade.geojson");
    let out = run_ok(GEOJSON, plan(&[drop(&["CATEGORIE"])]), &input);
    let (mut expected, got) = (json(&input), json(&out));
    for f in expected["features"].as_array_mut().unwrap() {
        f["properties"].as_object_mut().unwrap().remove("CATEGORIE");
    }
    // No row filter: the counts still tell the truth and stay, as do crs and timeStamp.
    assert_eq!(got, expected);
    assert_eq!(features(&got).len(), 1565);
    // Unchanged values are copied byte for byte, not re-printed.
    let first_geometry = r#"{"type": "Polygon", "coordinates": [[[5.87919078, 51.84320555], [5.87925244, 51.8432521]"#;
    assert!(String::from_utf8_lossy(&out).contains(first_geometry));
}

#[test]
fn geojson_filter_keeps_allowed_rows_and_fixes_the_counts() {
    let input = fixture("wo2_oorlogsschade.geojson");
    let out = run_ok(
        GEOJSON,
        plan(&[filter("CATEGORIE", &["Bombardement 22 feb"])]),
        &input,
    );
    let got = json(&out);
    let kept = features(&got);
    assert_eq!(kept.len(), 575);
    assert!(
        kept.iter()
            .all(|f| f["properties"]["CATEGORIE"] == "Bombardement 22 feb")
    );
    // numberReturned follows the features in this WFS response: recomputed. The totals of the
    // unfiltered layer would tell the consumer how much it is not shown: dropped.
    assert_eq!(got["numberReturned"], 575);
    assert!(got.get("numberMatched").is_none());
    assert!(got.get("totalFeatures").is_none());
    assert_eq!(
        got["crs"]["properties"]["name"],
        "urn:ogc:def:crs:EPSG::4326"
    );
    assert_eq!(got["timeStamp"], "2026-06-18T23:06:17.292Z");
    assert_eq!(got["type"], "FeatureCollection");
}

#[test]
fn geojson_filter_compares_numbers_by_their_text_and_sees_values_before_they_are_dropped() {
    let input = fixture("wo2_oorlogsschade.geojson");
    let out = run_ok(
        GEOJSON,
        plan(&[filter("ID", &["179", "181", "99999"]), drop(&["ID"])]),
        &input,
    );
    let got = json(&out);
    assert_eq!(features(&got).len(), 2);
    let ids: Vec<_> = features(&got).iter().map(|f| f["id"].clone()).collect();
    assert_eq!(
        ids,
        [
            json!("WO2_OORLOGSSCHADE.179"),
            json!("WO2_OORLOGSSCHADE.181")
        ]
    );
    assert!(
        features(&got)
            .iter()
            .all(|f| f["properties"].get("ID").is_none())
    );
}

#[test]
fn geojson_filter_with_no_allowed_values_serves_an_empty_collection() {
    let input = fixture("stadsmuur.geojson");
    let got = json(&run_ok(GEOJSON, plan(&[filter("NUMMER", &[])]), &input));
    assert_eq!(got["features"], json!([]));
    assert_eq!(got["type"], "FeatureCollection");
}

#[test]
fn geojson_pseudonyms_are_keyed_stable_and_joinable() {
    let input = fixture("wo2_oorlogsschade.geojson");
    let once = run_ok(GEOJSON, plan(&[pseudonymise(&["ID"])]), &input);
    let again = run_ok(GEOJSON, plan(&[pseudonymise(&["ID"])]), &input);
    assert_eq!(once, again, "the same key must give the same pseudonyms");
    let other = json(&run_ok(
        GEOJSON,
        plan_with_key(&[pseudonymise(&["ID"])], OTHER_KEY),
        &input,
    ));
    let (orig, got) = (json(&input), json(&once));
    let mut seen = HashSet::new();
    for ((o, g), x) in features(&orig)
        .iter()
        .zip(features(&got))
        .zip(features(&other))
    {
        let id = o["properties"]["ID"].to_string();
        let p = g["properties"]["ID"]
            .as_str()
            .expect("a pseudonym is a string");
        assert_eq!(
            p,
            pseudonym(KEY, &id),
            "HMAC-SHA256 of the JSON text `{id}`"
        );
        assert_eq!(p.len(), 32);
        assert_ne!(
            x["properties"]["ID"], g["properties"]["ID"],
            "another key, another pseudonym"
        );
        assert_eq!(g["properties"]["CATEGORIE"], o["properties"]["CATEGORIE"]);
        seen.insert(p.to_string());
    }
    assert_eq!(seen.len(), 1565, "distinct values keep distinct pseudonyms");
}

#[test]
fn geojson_must_be_a_feature_collection_of_features_with_properties() {
    let p = || plan(&[drop(&["x"])]);
    unsupported(run(
        GEOJSON,
        p(),
        br#"[{"type":"Feature","properties":{}}]"#,
    ));
    unsupported(run(
        GEOJSON,
        p(),
        br#"{"type":"Feature","properties":{"x":1},"geometry":null}"#,
    ));
    let msg = unsupported(run(
        GEOJSON,
        p(),
        br#"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":null,"attrs":{"x":1}}]}"#,
    ));
    assert!(msg.contains("properties"), "{msg}");
    // `properties: null` is a feature without properties: nothing to drop, nothing to match.
    let out = run_ok(
        GEOJSON,
        p(),
        br#"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":null,"properties":null}]}"#,
    );
    assert_eq!(json(&out)["features"][0]["properties"], Value::Null);
    let out = run_ok(
        GEOJSON,
        plan(&[filter("x", &["1"])]),
        br#"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":null,"properties":null}]}"#,
    );
    assert_eq!(json(&out)["features"], json!([]));
}

// ---------------------------------------------------------------- JSON

#[test]
fn json_feature_collection_from_an_api_keeps_its_links() {
    let input = fixture("amsterdam_parking.json");
    let out = run_ok(
        JSON,
        plan(&[
            drop(&["straatnaam"]),
            pseudonymise(&["id"]),
            filter("buurtcode", &["F84b", "A04c"]),
        ]),
        &input,
    );
    let (orig, got) = (json(&input), json(&out));
    let expected: Vec<&Value> = features(&orig)
        .iter()
        .filter(|f| ["F84b", "A04c"].contains(&f["properties"]["buurtcode"].as_str().unwrap_or("")))
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(features(&got).len(), expected.len());
    for (e, g) in expected.iter().zip(features(&got)) {
        assert!(g["properties"].get("straatnaam").is_none());
        let id = e["properties"]["id"].as_str().unwrap();
        assert_eq!(g["properties"]["id"], pseudonym(KEY, id));
        // Nested members are kept as they were: obligations name top-level fields.
        assert_eq!(g["properties"]["regimes"], e["properties"]["regimes"]);
        assert_eq!(g["geometry"], e["geometry"]);
    }
    assert_eq!(got["_links"], orig["_links"]);
    assert_eq!(got["crs"], orig["crs"]);
}

#[test]
fn json_opendatasoft_records_are_transformed_in_their_fields() {
    let input = fixture("eindhoven_parkings.json");
    let out = run_ok(
        JSON,
        plan(&[drop(&["objectid"]), filter("straat", &["van Meursstraat"])]),
        &input,
    );
    let (orig, got) = (json(&input), json(&out));
    let records = got["records"].as_array().unwrap();
    let expected = orig["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["fields"]["straat"] == "van Meursstraat")
        .count();
    assert!(expected > 0 && expected < 10);
    assert_eq!(records.len(), expected);
    for r in records {
        assert!(r["fields"].get("objectid").is_none());
        assert_eq!(r["fields"]["type_en_merk"], "Parkeerplaats");
        assert!(r["recordid"].is_string());
    }
    // nhits counts the whole dataset; facet counts summarise rows the consumer may not see.
    assert!(got.get("nhits").is_none());
    assert!(got.get("facet_groups").is_none());
    assert_eq!(got["parameters"], orig["parameters"]);
}

#[test]
fn json_arcgis_features_are_transformed_in_their_attributes() {
    let input = fixture("arnhem_e6a_parking.json");
    let out = run_ok(
        JSON,
        plan(&[drop(&["STRAAT", "ID"]), filter("WIJKCODE", &["WK020201"])]),
        &input,
    );
    let (orig, got) = (json(&input), json(&out));
    let kept = features(&got);
    assert_eq!(kept.len(), 7);
    for f in kept {
        let a = f["attributes"].as_object().unwrap();
        assert_eq!(a["WIJKCODE"], "WK020201");
        assert!(!a.contains_key("STRAAT") && !a.contains_key("ID"));
        assert!(f["geometry"]["rings"].is_array());
    }
    // The schema list (`fields`) is an array of objects but not records: it stays.
    assert_eq!(got["fields"], orig["fields"]);
    assert_eq!(got["exceededTransferLimit"], orig["exceededTransferLimit"]);
}

#[test]
fn json_array_of_records_is_rewritten_compactly_and_exactly() {
    let input = br#"[ {"a": 1, "b": "x", "c": null},
                      {"a": 2, "b": "y", "c": [1, 2]},
                      {"a": 2.50, "b": "", "c": {"d": true}} ]"#;
    let out = run_ok(
        JSON,
        plan(&[filter("a", &["2", "2.50"]), pseudonymise(&["b", "c"])]),
        input,
    );
    let expected = format!(
        r#"[{{"a":2,"b":"{}","c":"{}"}},{{"a":2.50,"b":"","c":"{}"}}]"#,
        pseudonym(KEY, "y"),
        pseudonym(KEY, "[1, 2]"),
        pseudonym(KEY, r#"{"d": true}"#),
    );
    assert_eq!(String::from_utf8(out).unwrap(), expected);
}

#[test]
fn json_results_wrapper_drops_its_count_when_rows_are_filtered() {
    let input = br#"{"count": 3, "next": null, "results": [{"wijk": "WK026801", "n": 1}, {"wijk": "WK026802", "n": 2}, {"wijk": "WK026801", "n": 3}]}"#;
    let got = json(&run_ok(JSON, plan(&[filter("wijk", &["WK026801"])]), input));
    assert_eq!(
        got,
        json!({"next": null, "results": [{"wijk": "WK026801", "n": 1}, {"wijk": "WK026801", "n": 3}]})
    );
    // Without a filter the count is still true and stays.
    let got = json(&run_ok(JSON, plan(&[drop(&["n"])]), input));
    assert_eq!(got["count"], 3);
}

#[test]
fn json_of_an_unknown_shape_is_refused_before_anything_is_sent() {
    let p = || plan(&[drop(&["bsn"])]);
    for body in [
        &br#"{"meta": {"page": 1}, "rows": [{"bsn": "123456782"}]}"#[..],
        br#"{"results": [{"a": 1}], "extra": [{"bsn": "123456782"}]}"#,
        br#"{"results": [{"a": 1}], "data": [{"bsn": "123456782"}]}"#,
        br#"{"data": {"rows": [{"bsn": "123456782"}]}}"#,
        br#"{"records": [{"recordid": "x", "record": {"fields": {"bsn": "123456782"}}}]}"#,
        br#""just a string""#,
        br#"{}"#,
    ] {
        let result = run_cut(JSON, p(), body, &[]);
        match result {
            Err((TransformError::Unsupported(_), sent)) => {
                assert!(
                    !String::from_utf8_lossy(&sent).contains("123456782"),
                    "{} leaked before refusal",
                    String::from_utf8_lossy(body)
                );
            }
            Err((e, _)) => panic!(
                "{}: expected Unsupported, got {e}",
                String::from_utf8_lossy(body)
            ),
            Ok(out) => panic!(
                "{} served as {}",
                String::from_utf8_lossy(body),
                String::from_utf8_lossy(&out)
            ),
        }
    }
}

#[test]
fn json_repeated_member_names_are_refused() {
    // Parsers disagree on which of two `bsn` members counts: transforming one would leak the other.
    let msg = malformed(run(
        JSON,
        plan(&[drop(&["bsn"])]),
        br#"[{"bsn": "1", "bsn": "2"}]"#,
    ));
    assert!(msg.contains("more than once"), "{msg}");
    malformed(run(
        GEOJSON,
        plan(&[drop(&["bsn"])]),
        br#"{"features":[{"properties":{"a":1},"properties":{"bsn":"2"}}]}"#,
    ));
}

#[test]
fn json_escaped_names_and_non_ascii_values_are_matched_by_their_text() {
    let input = "[{\"wijk\\u006eaam\": \"Nijmegen-Oost \u{2014} Kr\u{f6}ller\", \"na\\\"me\": 1, \"x\": \"\u{1F333}\"}]";
    let out = run_ok(
        JSON,
        plan(&[
            filter("wijknaam", &["Nijmegen-Oost \u{2014} Kr\u{f6}ller"]),
            drop(&["na\"me"]),
            pseudonymise(&["x"]),
        ]),
        input.as_bytes(),
    );
    let got = json(&out);
    assert_eq!(got[0]["wijknaam"], "Nijmegen-Oost \u{2014} Kr\u{f6}ller");
    assert!(got[0].get("na\"me").is_none());
    assert_eq!(got[0]["x"], pseudonym(KEY, "\u{1F333}"));
}

#[test]
fn null_and_empty_values_stay_as_they_are_when_pseudonymised() {
    let out = run_ok(
        JSON,
        plan(&[pseudonymise(&["a", "b"])]),
        br#"[{"a": null, "b": ""}]"#,
    );
    assert_eq!(json(&out), json!([{"a": null, "b": ""}]));
    let out = run_ok(CSV, plan(&[pseudonymise(&["a", "b"])]), b"a,b\n,\"\"\n");
    assert_eq!(out, b"a,b\n,\"\"\n");
}

#[test]
fn the_same_value_gets_the_same_pseudonym_in_every_format() {
    let geo = json(&run_ok(
        GEOJSON,
        plan(&[pseudonymise(&["ID"])]),
        br#"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":null,"properties":{"ID":179}}]}"#,
    ));
    let js = json(&run_ok(
        JSON,
        plan(&[pseudonymise(&["ID"])]),
        br#"[{"ID":"179"}]"#,
    ));
    let csv = run_ok(CSV, plan(&[pseudonymise(&["ID"])]), b"ID\r\n179\r\n");
    let p = pseudonym(KEY, "179");
    assert_eq!(geo["features"][0]["properties"]["ID"], p);
    assert_eq!(js[0]["ID"], p);
    assert_eq!(String::from_utf8(csv).unwrap(), format!("ID\r\n{p}\r\n"));
}

// ---------------------------------------------------------------- CSV

#[test]
fn csv_from_a_real_table_drops_columns_and_filters_rows() {
    let input = fixture("arnhem_e6a_parking.csv");
    let text = String::from_utf8(input.clone()).unwrap();
    assert!(
        !text.contains('"'),
        "this fixture has no quoted fields; the split below relies on it"
    );
    let out = run_ok(
        CSV,
        plan(&[
            drop(&["STRAAT", "BUURTNAAM"]),
            filter("WIJKCODE", &["WK020201"]),
        ]),
        &input,
    );
    let out = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = out.split_terminator("\r\n").collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(header.len(), 15);
    assert!(!header.contains(&"STRAAT") && !header.contains(&"BUURTNAAM"));
    let wijk = header.iter().position(|h| *h == "WIJKCODE").unwrap();
    assert_eq!(lines.len(), 1 + 7);
    for l in &lines[1..] {
        let fields: Vec<&str> = l.split(',').collect();
        assert_eq!(fields.len(), 15);
        assert_eq!(fields[wijk], "WK020201");
        // Every kept row is the original row with two fields taken out.
        let original = text
            .split_terminator("\r\n")
            .find(|o| o.starts_with(&format!("{},", fields[0])))
            .unwrap();
        let mut o: Vec<&str> = original.split(',').collect();
        o.remove(6);
        o.remove(4);
        assert_eq!(fields, o);
    }
}

const TRICKY_CSV: &str = "\u{feff}ID,NAAM,\"OPMERKING\",WIJK,BSN\r\n\
1,\"Jansen, P.\",\"zei \"\"hallo\"\"\",WK026801,123456782\r\n\
2,Müller,\"twee\nregels\",WK026802,\r\n\
3,\"\",\"drie\r\nregels, met komma\",WK026801,987654321\n\
\r\n\
4,\u{1F333}boom,,\"WK026801\",111222333";

#[test]
fn csv_with_quotes_commas_and_line_breaks_in_fields() {
    let out = run_ok(
        CSV,
        plan(&[
            drop(&["NAAM"]),
            pseudonymise(&["BSN"]),
            filter("WIJK", &["WK026801"]),
        ]),
        TRICKY_CSV.as_bytes(),
    );
    let expected = format!(
        "\u{feff}ID,\"OPMERKING\",WIJK,BSN\r\n\
         1,\"zei \"\"hallo\"\"\",WK026801,{}\r\n\
         3,\"drie\r\nregels, met komma\",WK026801,{}\n\
         4,,\"WK026801\",{}",
        pseudonym(KEY, "123456782"),
        pseudonym(KEY, "987654321"),
        pseudonym(KEY, "111222333"),
    );
    assert_eq!(String::from_utf8(out).unwrap(), expected);
}

#[test]
fn csv_that_could_misplace_a_column_is_refused() {
    let p = || plan(&[drop(&["b"])]);
    let msg = malformed(run(CSV, p(), b"a,b\n1,2,3\n"));
    assert!(msg.contains("3 fields where the header has 2"), "{msg}");
    malformed(run(CSV, p(), b"a,b\n1,x\"y\n"));
    malformed(run(CSV, p(), b"a,b\n1,\"x\"y\n"));
    let msg = malformed(run(CSV, p(), b"a,b\n1,\"never closed\n2,3\n"));
    assert!(msg.contains("quoted"), "{msg}");
    let msg = unsupported(run(CSV, p(), b"a;b\n1;2\n"));
    assert!(msg.contains("`;`"), "{msg}");
    malformed(run(CSV, p(), b"a,b,b\n1,2,3\n"));
}

// ---------------------------------------------------------------- plans

#[test]
fn plans_come_from_obligations_and_refuse_what_they_cannot_do() {
    let attribution = Obligation::Attribution {
        duty: "d".into(),
        license: Some("https://creativecommons.org/licenses/by/4.0/".into()),
        text: None,
    };
    assert!(
        TransformPlan::from_obligations(std::slice::from_ref(&attribution), KEY)
            .unwrap()
            .is_none()
    );
    let p = TransformPlan::from_obligations(&[attribution, filter("w", &["1"])], KEY)
        .unwrap()
        .unwrap();
    assert_eq!(p.row_filters().len(), 1);
    assert!(p.without_row_filters().is_none());

    let compensate = Obligation::Action {
        duty: "d".into(),
        action: "http://www.w3.org/ns/odrl/2/compensate".into(),
    };
    assert!(TransformPlan::from_obligations(&[drop(&["a"]), compensate], KEY).is_err());
    let short = TransformPlan::from_obligations(&[pseudonymise(&["a"])], b"short");
    assert!(short.unwrap_err().0.contains("key"));
    assert!(
        TransformPlan::from_obligations(&[drop(&["a"])], b"")
            .unwrap()
            .is_some()
    );

    let e = Transformer::new("application/xml", plan(&[drop(&["a"])]))
        .err()
        .unwrap();
    assert!(matches!(e, TransformError::Unsupported(_)));
    assert!(Transformer::new("application/ld+json", plan(&[drop(&["a"])])).is_ok());
}

#[test]
fn a_field_both_dropped_and_pseudonymised_is_dropped() {
    let out = run_ok(
        JSON,
        plan(&[pseudonymise(&["a"]), drop(&["a"])]),
        br#"[{"a": "x", "b": 1}]"#,
    );
    assert_eq!(json(&out), json!([{"b": 1}]));
}
