//! Federation end to end, with real processes: one global controller and two
//! regions (`basalt-server serve --mode ...`), each on its own Postgres database,
//! health-checked every second, on loopback.
//!
//! One test walks the story in order (starting processes is the expensive part):
//! registration and health, entitlements (a tenant sees only its regions),
//! creating a VM through the controller, calling a region directly, tenant
//! suspension reaching both regions, a region outage and its recovery, signature
//! attacks on a region, and key rotation without a failed call.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method};
use basalt_server::federation::signing::{self, Caller, Keyring, Secret};
use basalt_server::testing::TestDb;
use common::procs::{eventually, free_port, write_atomically, Api, Proc, BIN};
use serde_json::json;
use uuid::Uuid;

async fn region_health(api: &Api, global: &str, admin: &str, name: &str) -> String {
    let (_, v, _) = api.call(Method::GET, &format!("{global}/v1/regions"), admin, None).await;
    v["items"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["name"] == name))
        .map_or(String::new(), |r| r["health"].as_str().unwrap_or("").to_string())
}

/// A signed call to a region, as the controller would make it (or an attacker).
#[allow(clippy::too_many_arguments)]
async fn signed_call(
    http: &reqwest::Client,
    base: &str,
    key_id: &str,
    key: &Secret,
    region: &str,
    path: &str,
    body: &[u8],
    now: i64,
    tamper: impl FnOnce(&mut HeaderMap, &mut Vec<u8>, &mut String),
) -> u16 {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().expect("value"));
    add_system_caller(&mut headers);
    signing::sign(key_id, key, Caller::Global, region, &Method::GET, path, None, &mut headers, body, now);
    let mut body = body.to_vec();
    let mut path = path.to_string();
    tamper(&mut headers, &mut body, &mut path);
    let resp = http.get(format!("{base}{path}")).headers(headers).body(body).send().await.expect("send");
    resp.status().as_u16()
}

/// The forwarded caller a lookup needs: someone at system scope with no grants.
fn add_system_caller(h: &mut HeaderMap) {
    let fp = json!({"user_id": Uuid::nil(), "username": "x", "home_tenant": null, "tenant": null, "api_token": null, "grants": []});
    let v = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, fp.to_string());
    h.insert(signing::PRINCIPAL, v.parse().expect("value"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_federated_install_isolates_tenants_by_region_and_survives_an_outage() {
    let dir = std::env::temp_dir().join(format!("basalt-fed-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (gdb, r1db, r2db) =
        (TestDb::new().await.expect("db"), TestDb::new().await.expect("db"), TestDb::new().await.expect("db"));

    // Keys: the controller's master keyring, and each region's derived one (by the CLI).
    let master_path = dir.join("global.keys");
    let k1 = format!("k1 {}\n", hex::encode(rand::random::<[u8; 32]>()));
    write_atomically(&master_path, &k1);
    let region_keys = |name: &str| {
        let out = Command::new(BIN)
            .args(["federation", "region-keys", "--keys", master_path.to_str().expect("path"), "--region", name])
            .output()
            .expect("region-keys");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf8")
    };
    let r1_keys = dir.join("r1.keys");
    let r2_keys = dir.join("r2.keys");
    write_atomically(&r1_keys, &region_keys("r1"));
    write_atomically(&r2_keys, &region_keys("r2"));

    // The provider admin, made on the controller's database by the CLI.
    let out = Command::new(BIN)
        .args(["create-admin", "--database-url", &gdb.url, "--state-dir", dir.join("g").to_str().expect("path")])
        .output()
        .expect("create-admin");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let admin = String::from_utf8(out.stdout).expect("utf8").trim().to_string();

    let (gp, p1, p2) = (free_port(), free_port(), free_port());
    let global_url = format!("http://127.0.0.1:{gp}");
    let global = Proc::start(
        vec![
            "serve".into(),
            "--mode".into(),
            "global".into(),
            "--database-url".into(),
            gdb.url.clone(),
            "--state-dir".into(),
            dir.join("g").display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{gp}"),
            "--federation-keys".into(),
            master_path.display().to_string(),
            "--health-interval-seconds".into(),
            "1".into(),
        ],
        gp,
        dir.join("global.log"),
    );
    let region_args = |name: &str, port: u16, db: &str, keys: &Path| -> Vec<String> {
        vec![
            "serve".into(),
            "--mode".into(),
            "region".into(),
            "--region-name".into(),
            name.into(),
            "--database-url".into(),
            db.into(),
            "--state-dir".into(),
            dir.join(name).display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--public-url".into(),
            format!("http://127.0.0.1:{port}"),
            "--global-url".into(),
            global_url.clone(),
            "--federation-keys".into(),
            keys.display().to_string(),
        ]
    };
    let r1 = Proc::start(region_args("r1", p1, &r1db.url, &r1_keys), p1, dir.join("r1.log"));
    let mut r2 = Proc::start(region_args("r2", p2, &r2db.url, &r2_keys), p2, dir.join("r2.log"));
    let api = Api { http: reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("client") };
    let g = global.url();

    // --- Registration and health --------------------------------------------
    for name in ["r1", "r2"] {
        eventually(Duration::from_secs(60), &format!("{name} registers and is healthy"), || async {
            region_health(&api, &g, &admin, name).await == "healthy"
        })
        .await;
    }

    // --- The estate, through the controller ----------------------------------
    let c1 = api
        .ok(
            Method::POST,
            &format!("{g}/v1/clusters"),
            &admin,
            Some(json!({"name": "c1", "region": "r1", "hosts": ["test:///default"]})),
        )
        .await;
    let c2 = api
        .ok(
            Method::POST,
            &format!("{g}/v1/clusters"),
            &admin,
            Some(json!({"name": "c2", "region": "r2", "hosts": ["test:///default"]})),
        )
        .await;
    assert_eq!((c1["region"].as_str(), c2["region"].as_str()), (Some("r1"), Some("r2")));
    let (status, err, _) = api
        .call(
            Method::POST,
            &format!("{g}/v1/clusters"),
            &admin,
            Some(json!({"name": "c3", "hosts": ["test:///default"]})),
        )
        .await;
    assert_eq!((status, err["error"]["code"].as_str()), (422, Some("region_required")), "{err}");
    let t1 = api
        .ok(
            Method::POST,
            &format!("{g}/v1/templates"),
            &admin,
            Some(json!({"name": "tiny", "vcpus": 1, "memory_mib": 128, "region": "r1"})),
        )
        .await;
    let t2 = api
        .ok(
            Method::POST,
            &format!("{g}/v1/templates"),
            &admin,
            Some(json!({"name": "tiny", "vcpus": 1, "memory_mib": 128, "region": "r2"})),
        )
        .await;

    // Tenants: acme gets capacity in r1 only; beta in both.
    let mut users = Vec::new();
    for (name, clusters) in [("acme", vec![&c1]), ("beta", vec![&c1, &c2])] {
        let tenant = api.ok(Method::POST, &format!("{g}/v1/tenants"), &admin, Some(json!({"name": name}))).await;
        for c in clusters {
            api.ok(Method::POST, &format!("{g}/v1/quotas"), &admin,
                Some(json!({"tenant_id": tenant["id"], "cluster_id": c["id"], "vcpus": 8, "memory_mib": 8192, "max_vms": 4}))).await;
        }
        let token = api.tenant_admin(&g, &g, &admin, name).await;
        users.push((tenant, token));
    }
    let (_, acme_token) = users[0].clone();
    let (beta, beta_token) = users[1].clone();

    // --- A tenant sees only its regions --------------------------------------
    let regions = api.ok(Method::GET, &format!("{g}/v1/regions"), &acme_token, None).await;
    let names: Vec<&str> =
        regions["items"].as_array().expect("items").iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["r1"], "acme is entitled to r1 only");
    assert_eq!(regions["items"][0]["endpoint"], "", "tenants do not learn a gateway's address");
    let me = api.ok(Method::GET, &format!("{g}/v1/me"), &acme_token, None).await;
    assert_eq!(me["regions"], json!(["r1"]));
    let entitled = api
        .ok(Method::GET, &format!("{g}/v1/tenants/{}/regions", beta["id"].as_str().expect("id")), &admin, None)
        .await;
    assert_eq!(entitled["items"].as_array().map(Vec::len), Some(2));

    // A VM in r1, created and polled through the controller.
    let (status, vm, headers) = api
        .call(
            Method::POST,
            &format!("{g}/v1/vms"),
            &acme_token,
            Some(json!({"name": "web", "cluster_id": c1["id"], "template_id": t1["id"]})),
        )
        .await;
    assert_eq!(status, 202, "{vm}");
    let operation = headers.get("location").and_then(|v| v.to_str().ok()).expect("Location").to_string();
    eventually(Duration::from_secs(30), "the VM create finishes", || async {
        let op = api.ok(Method::GET, &format!("{g}{operation}"), &acme_token, None).await;
        assert_ne!(op["status"], "failed", "{op}");
        op["status"] == "succeeded"
    })
    .await;
    let vm_id = vm["target_id"].as_str().expect("the operation names its VM").to_string();
    let listed = api.ok(Method::GET, &format!("{g}/v1/vms"), &acme_token, None).await;
    assert_eq!(
        listed["items"].as_array().map(|a| a.iter().map(|v| v["id"].clone()).collect::<Vec<_>>()),
        Some(vec![json!(vm_id)])
    );

    // r2's objects do not exist for acme; nor does acme's VM for beta.
    for path in [
        format!("/v1/clusters/{}", c2["id"].as_str().expect("id")),
        format!("/v1/templates/{}", t2["id"].as_str().expect("id")),
    ] {
        let (status, body, _) = api.call(Method::GET, &format!("{g}{path}"), &acme_token, None).await;
        assert_eq!(status, 404, "acme reads {path}: {body}");
    }
    let (status, _, _) = api.call(Method::GET, &format!("{g}/v1/vms/{vm_id}"), &beta_token, None).await;
    assert_eq!(status, 404, "beta reads acme's VM");
    let (status, _, _) = api
        .call(
            Method::POST,
            &format!("{g}/v1/vms"),
            &acme_token,
            Some(json!({"name": "far", "cluster_id": c2["id"], "template_id": t2["id"]})),
        )
        .await;
    assert_eq!(status, 422, "acme cannot name a cluster of a region it is not entitled to");

    // Calling a region directly with the controller's token works where entitled.
    let direct = api.ok(Method::GET, &format!("{}/v1/vms/{vm_id}", r1.url()), &acme_token, None).await;
    assert_eq!(direct["name"], "web");
    let (status, body, _) = api.call(Method::GET, &format!("{}/v1/vms", r2.url()), &acme_token, None).await;
    assert_eq!(status, 403, "r2 refuses a tenant not entitled to it: {body}");
    let (status, _, _) = api.call(Method::GET, &format!("{}/v1/vms", r1.url()), "not-a-token", None).await;
    assert_eq!(status, 401);
    let (status, body, _) = api.call(Method::GET, &format!("{}/v1/users", r1.url()), &acme_token, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (421, Some("misdirected")));

    // Networks, volumes and security groups are region-held: a create goes to its cluster's
    // region, lists merge the regions, and another tenant reads nothing of them.
    let net = api
        .ok(
            Method::POST,
            &format!("{g}/v1/networks"),
            &beta_token,
            Some(json!({"name": "lan", "cluster_id": c2["id"], "cidr": "10.0.0.0/24"})),
        )
        .await;
    let vol = api
        .ok(
            Method::POST,
            &format!("{g}/v1/volumes"),
            &beta_token,
            Some(json!({"name": "data", "cluster_id": c2["id"], "size_gib": 1})),
        )
        .await;
    // Security groups too (perm-f), and their rules follow the group's region.
    let sg = api
        .ok(
            Method::POST,
            &format!("{g}/v1/security-groups"),
            &beta_token,
            Some(json!({"name": "web", "cluster_id": c2["id"]})),
        )
        .await;
    let sg_rules = format!("{g}/v1/security-groups/{}/rules", sg["id"].as_str().expect("id"));
    let rule = json!({"direction": "ingress", "protocol": "tcp", "port_from": 443, "remote_cidr": "0.0.0.0/0"});
    api.ok(Method::POST, &sg_rules, &beta_token, Some(rule)).await;
    let listed = api.ok(Method::GET, &sg_rules, &beta_token, None).await;
    assert_eq!(listed["items"][0]["port_to"], 443, "{listed}");
    let (status, _, _) = api.call(Method::GET, &sg_rules, &acme_token, None).await;
    assert_eq!(status, 404, "acme reads beta's rules");
    for (path, obj) in [("networks", &net), ("volumes", &vol), ("security-groups", &sg)] {
        let id = obj["id"].as_str().expect("id");
        let direct = api.ok(Method::GET, &format!("{}/v1/{path}/{id}", r2.url()), &beta_token, None).await;
        assert_eq!(direct["id"], obj["id"], "{path} live in r2");
        let listed = api.ok(Method::GET, &format!("{g}/v1/{path}"), &beta_token, None).await;
        assert_eq!(listed["items"].as_array().map(Vec::len), Some(1), "{path}: {listed}");
        let (status, _, _) = api.call(Method::GET, &format!("{g}/v1/{path}/{id}"), &acme_token, None).await;
        assert_eq!(status, 404, "acme reads beta's {path}");
    }
    // IP pools and floating IPs are region-held too: the pool (a system row)
    // goes to its cluster's region, and so does the address allocated from it.
    let pool = api
        .ok(
            Method::POST,
            &format!("{g}/v1/ip-pools"),
            &admin,
            Some(json!({"name": "public", "cluster_id": c2["id"], "cidr": "203.0.113.0/28"})),
        )
        .await;
    let fip =
        api.ok(Method::POST, &format!("{g}/v1/floating-ips"), &beta_token, Some(json!({"cluster_id": c2["id"]}))).await;
    assert_eq!((fip["address"].as_str(), &fip["ip_pool_id"]), (Some("203.0.113.1"), &pool["id"]));
    let id = fip["id"].as_str().expect("id");
    let direct = api.ok(Method::GET, &format!("{}/v1/floating-ips/{id}", r2.url()), &beta_token, None).await;
    assert_eq!(direct["id"], fip["id"], "floating IPs live in r2");
    let (status, _, _) = api.call(Method::GET, &format!("{g}/v1/floating-ips/{id}"), &acme_token, None).await;
    assert_eq!(status, 404, "acme reads beta's floating IP");

    // Snapshot schedules go to their VM's region, maintenance windows to their
    // cluster's; a tenant reads the windows of its quota clusters only (perm-e).
    let schedule = api
        .ok(
            Method::POST,
            &format!("{g}/v1/snapshot-schedules"),
            &acme_token,
            Some(json!({"vm_id": vm_id, "name": "hourly", "interval_minutes": 60, "keep": 2})),
        )
        .await;
    let id = schedule["id"].as_str().expect("id");
    let direct = api.ok(Method::GET, &format!("{}/v1/snapshot-schedules/{id}", r1.url()), &acme_token, None).await;
    assert_eq!(direct["vm_id"], json!(vm_id), "the schedule lives in r1");
    let (status, _, _) = api.call(Method::GET, &format!("{g}/v1/snapshot-schedules/{id}"), &beta_token, None).await;
    assert_eq!(status, 404, "beta reads acme's schedule");
    let starts = chrono::Utc::now() + chrono::Duration::days(1);
    let window = |c: &serde_json::Value| json!({"cluster_id": c["id"], "title": "upgrade", "starts_at": starts, "ends_at": starts + chrono::Duration::hours(2)});
    let w2 = api.ok(Method::POST, &format!("{g}/v1/maintenance-windows"), &admin, Some(window(&c2))).await;
    let w2_id = w2["id"].as_str().expect("id");
    api.ok(Method::GET, &format!("{}/v1/maintenance-windows/{w2_id}", r2.url()), &admin, None).await;
    let seen = api.ok(Method::GET, &format!("{g}/v1/maintenance-windows"), &beta_token, None).await;
    assert_eq!(seen["items"].as_array().map(Vec::len), Some(1), "beta holds a quota on c2: {seen}");
    let seen = api.ok(Method::GET, &format!("{g}/v1/maintenance-windows"), &acme_token, None).await;
    assert_eq!(seen["items"].as_array().map(Vec::len), Some(0), "acme holds none on c2: {seen}");
    let (status, _, _) = api.call(Method::GET, &format!("{g}/v1/maintenance-windows/{w2_id}"), &acme_token, None).await;
    assert_eq!(status, 404, "acme reads c2's window");

    // --- Suspension reaches both regions within one interval ------------------
    let suspended_at = Instant::now();
    api.ok(Method::POST, &format!("{g}/v1/tenants/{}/suspend", beta["id"].as_str().expect("id")), &admin, None).await;
    for (base, cluster, template) in [(r1.url(), &c1, &t1), (r2.url(), &c2, &t2)] {
        eventually(Duration::from_secs(2), &format!("{base} refuses beta's changes"), || async {
            let (status, _, _) = api
                .call(
                    Method::POST,
                    &format!("{base}/v1/vms"),
                    &beta_token,
                    Some(json!({"name": "x", "cluster_id": cluster["id"], "template_id": template["id"]})),
                )
                .await;
            status == 423
        })
        .await;
    }
    println!("suspension reached both regions in {:?}", suspended_at.elapsed());
    let (status, _, _) = api
        .call(
            Method::POST,
            &format!("{g}/v1/vms"),
            &beta_token,
            Some(json!({"name": "x", "cluster_id": c1["id"], "template_id": t1["id"]})),
        )
        .await;
    assert_eq!(status, 423, "and through the controller");

    // --- A region outage: fail fast, the rest keeps serving, recovery ---------
    r2.kill();
    eventually(Duration::from_secs(5), "r2 becomes unreachable", || async {
        region_health(&api, &g, &admin, "r2").await == "unreachable"
    })
    .await;
    let start = Instant::now();
    let (status, body, _) =
        api.call(Method::GET, &format!("{g}/v1/clusters/{}", c2["id"].as_str().expect("id")), &admin, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str(), body["error"]["details"]["region"].as_str()),
        (503, Some("region_unavailable"), Some("r2")),
        "{body}"
    );
    assert!(start.elapsed() < Duration::from_secs(1), "fails fast: {:?}", start.elapsed());
    api.ok(Method::GET, &format!("{g}/v1/clusters/{}", c1["id"].as_str().expect("id")), &admin, None).await;
    api.ok(Method::GET, &format!("{g}/v1/vms/{vm_id}"), &acme_token, None).await;
    let (status, listed, headers) = api.call(Method::GET, &format!("{g}/v1/clusters"), &admin, None).await;
    assert_eq!(status, 200);
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1), "the list holds r1's cluster");
    assert_eq!(headers.get("basalt-unavailable-regions").and_then(|v| v.to_str().ok()), Some("r2"));
    let regions = api.ok(Method::GET, &format!("{g}/v1/regions"), &admin, None).await;
    let r2_row = regions["items"].as_array().and_then(|a| a.iter().find(|r| r["name"] == "r2")).cloned().expect("r2");
    assert!(r2_row["last_error"].as_str().is_some_and(|e| !e.is_empty()), "{r2_row}");
    r2.restart();
    eventually(Duration::from_secs(30), "r2 is healthy again", || async {
        region_health(&api, &g, &admin, "r2").await == "healthy"
    })
    .await;
    api.ok(Method::GET, &format!("{g}/v1/clusters/{}", c2["id"].as_str().expect("id")), &admin, None).await;

    // --- Signature attacks on a region: each a 401, each logged ---------------
    let master = Keyring::load(&master_path).expect("keys");
    let (_, m1) = master.signing();
    let r1_key = m1.derive_region_key("r1");
    let r2_key = m1.derive_region_key("r2");
    let now = chrono::Utc::now().timestamp();
    let probe = format!("/v1/federation/objects/{vm_id}");
    let http = &api.http;
    let base = r1.url();
    // A well-signed call is answered (404: the system context holds no VM), so
    // the refusals below are the signature's doing.
    let mut headers = HeaderMap::new();
    add_system_caller(&mut headers);
    signing::sign("k1", &r1_key, Caller::Global, "r1", &Method::GET, &probe, None, &mut headers, b"", now);
    let good =
        http.get(format!("{base}{probe}")).headers(headers.clone()).send().await.expect("send").status().as_u16();
    assert_eq!(good, 404);
    let replay = http.get(format!("{base}{probe}")).headers(headers).send().await.expect("send").status().as_u16();
    assert_eq!(replay, 401, "replayed nonce");
    let attacks: Vec<(&str, u16)> = vec![
        (
            "tampered body",
            signed_call(http, &base, "k1", &r1_key, "r1", &probe, b"", now, |_, b, _| b.extend_from_slice(b"{}")).await,
        ),
        (
            "tampered path",
            signed_call(http, &base, "k1", &r1_key, "r1", &probe, b"", now, |_, _, p| {
                *p = format!("/v1/federation/objects/{}", Uuid::now_v7())
            })
            .await,
        ),
        (
            "timestamp outside the window",
            signed_call(http, &base, "k1", &r1_key, "r1", &probe, b"", now - 301, |_, _, _| {}).await,
        ),
        ("unknown key id", signed_call(http, &base, "k9", &r1_key, "r1", &probe, b"", now, |_, _, _| {}).await),
        (
            "r2's key speaking for r1",
            signed_call(http, &base, "k1", &r2_key, "r1", &probe, b"", now, |_, _, _| {}).await,
        ),
        (
            "r2's key speaking as r2 to r1",
            signed_call(http, &base, "k1", &r2_key, "r2", &probe, b"", now, |_, _, _| {}).await,
        ),
    ];
    for (what, status) in &attacks {
        assert_eq!(*status, 401, "{what}");
    }
    let logged = r1.log_text().matches("signed call refused").count();
    assert!(logged > attacks.len(), "every refusal is logged ({logged})");
    assert!(!r1.log_text().contains(&r1_key.to_hex()), "keys are never logged");

    // --- Key rotation with no failed call in between ---------------------------
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic = {
        let (http, stop) = (api.http.clone(), stop.clone());
        let url = format!("{g}/v1/vms/{vm_id}");
        let token = acme_token.clone();
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let status = http.get(&url).bearer_auth(&token).send().await.map(|r| r.status().as_u16()).unwrap_or(0);
                if status == 200 {
                    ok += 1
                } else {
                    failed.push(status)
                }
            }
            (ok, failed)
        })
    };
    let k2 = format!("k2 {}\n", hex::encode(rand::random::<[u8; 32]>()));
    let derive =
        |text: &str, region: &str| Keyring::parse(text, "t").expect("ring").derive_for_region(region).to_file_text();
    let set_all = |text: &str| {
        write_atomically(&r1_keys, &derive(text, "r1"));
        write_atomically(&r2_keys, &derive(text, "r2"));
        write_atomically(&master_path, text);
    };
    set_all(&format!("{k1}{k2}")); // add k2 everywhere (k1 still signs)
    tokio::time::sleep(Duration::from_millis(1500)).await;
    set_all(&format!("{k2}{k1}")); // switch: k2 signs, k1 still accepted
    tokio::time::sleep(Duration::from_millis(1500)).await;
    set_all(&k2); // retire k1
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = traffic.await.expect("traffic");
    assert!(ok > 10 && failed.is_empty(), "calls during rotation: {ok} ok, failed {failed:?}");
    for name in ["r1", "r2"] {
        assert_eq!(region_health(&api, &g, &admin, name).await, "healthy", "{name} after rotation");
    }
    let retired =
        signed_call(http, &base, "k1", &r1_key, "r1", &probe, b"", chrono::Utc::now().timestamp(), |_, _, _| {}).await;
    assert_eq!(retired, 401, "a retired key");

    // Deregistering a region with live VMs is refused (unless forced).
    let regions = api.ok(Method::GET, &format!("{g}/v1/regions"), &admin, None).await;
    let r1_id = regions["items"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["name"] == "r1"))
        .map(|r| r["id"].clone())
        .expect("r1");
    let (status, body, _) =
        api.call(Method::DELETE, &format!("{g}/v1/regions/{}", r1_id.as_str().expect("id")), &admin, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("region_in_use")), "{body}");

    drop((global, r1, r2));
    for db in [gdb, r1db, r2db] {
        db.drop_db().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The database's side of a region, at the SQL level: a tenant enters only if
/// entitled here, and changes only while the controller's last push is recent;
/// the delegated entry exists only in a region's database.
#[tokio::test]
async fn a_region_database_refuses_unentitled_tenants_and_unconfirmed_changes() {
    use basalt_server::db::{Db, DbScope};
    use sqlx::Connection;
    let db = TestDb::new().await.expect("db");
    let mut admin = db.admin().await.expect("admin");
    let app = Db::connect(&db.app_url().expect("url"), 2).await.expect("app pool");
    let (tenant, other, region) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let code = |e: sqlx::Error| e.as_database_error().and_then(|d| d.code()).map(|c| c.to_string());

    // Not a region's database yet: the delegated entry is refused outright.
    let refused = app.begin_delegated(DbScope::System, None, false).await.map(drop).map_err(code);
    assert_eq!(refused, Err(Some("42501".into())), "delegated entry outside a region");

    for (id, name) in [(tenant, "t1"), (other, "t2")] {
        sqlx::query("INSERT INTO tenants (id, name) VALUES ($1, $2)")
            .bind(id)
            .bind(name)
            .execute(&mut admin)
            .await
            .expect("tenant");
    }
    sqlx::query("INSERT INTO regions (id, name, endpoint) VALUES ($1, 'r1', 'http://r1')")
        .bind(region)
        .execute(&mut admin)
        .await
        .expect("region");
    sqlx::query("INSERT INTO tenant_regions (tenant_id, region_id) VALUES ($1, $2)")
        .bind(tenant)
        .bind(region)
        .execute(&mut admin)
        .await
        .expect("entitle");
    let confirm = |until: &'static str| {
        format!(
            "INSERT INTO federation_state (region_id, region_name, global_url, confirmed_until)
             VALUES ('{region}', 'r1', 'http://g', now() + interval '{until}')
             ON CONFLICT (id) DO UPDATE SET confirmed_until = EXCLUDED.confirmed_until"
        )
    };
    sqlx::query(&confirm("1 minute")).execute(&mut admin).await.expect("confirm");

    let enter = |t: Uuid, mutating: bool| {
        let app = app.clone();
        async move { app.begin_delegated(DbScope::Tenant(t), Some(Uuid::now_v7()), mutating).await.map(drop).map_err(code) }
    };
    assert_eq!(enter(tenant, true).await, Ok(()), "entitled and confirmed");
    assert_eq!(enter(other, false).await, Err(Some("BS403".into())), "not entitled to this region");
    // The same check guards the local entry (basalt_enter) in a region's database.
    let local = app.begin(DbScope::Tenant(other), None, false).await.map(drop).map_err(code);
    assert_eq!(local, Err(Some("BS403".into())));

    // The last push is too old: reads go on, changes are refused.
    sqlx::query(&confirm("-1 second")).execute(&mut admin).await.expect("lapse");
    assert_eq!(enter(tenant, false).await, Ok(()), "reads while unconfirmed");
    assert_eq!(enter(tenant, true).await, Err(Some("BS503".into())), "changes while unconfirmed");

    admin.close().await.expect("close");
    app.pool().close().await;
    db.drop_db().await;
}
