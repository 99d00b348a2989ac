//! The API as tenants and provider staff use it: isolation between tenants (another
//! tenant's object answers exactly like a missing one), the tenant lifecycle,
//! login and the deliberate tenant switch, API tokens, the audit trail,
//! idempotency keys and versions.

mod common;

use basalt_client::*;
use common::{TestApp, PASSWORD};
use uuid::Uuid;

fn opts() -> RequestOptions {
    RequestOptions::default()
}

fn new_user(name: &str) -> CreateUser {
    CreateUser { username: name.into(), password: Some(PASSWORD.into()), ..Default::default() }
}

#[tokio::test]
async fn another_tenants_objects_answer_exactly_like_missing_ones() {
    let app = TestApp::spawn().await;
    let (_a, _a_admin, a) = app.tenant_with_user("alpha").await;
    let (b_tenant, b_admin, b) = app.tenant_with_user("bravo").await;
    let b_user = b.create_user(&new_user("bob"), &opts()).await.unwrap();

    for target in [b_user.id, b_admin.id] {
        let foreign = a.get_user(target).await.unwrap_err();
        let missing = a.get_user(Uuid::now_v7()).await.unwrap_err();
        assert_eq!(foreign.status(), Some(404));
        assert_eq!(format!("{foreign}"), format!("{missing}"), "a foreign id must look missing");
        let patch = UpdateUser { email: Some("x@example.com".into()), ..Default::default() };
        assert_eq!(a.update_user(target, &patch, &opts()).await.unwrap_err().status(), Some(404));
        assert_eq!(a.delete_user(target).await.unwrap_err().status(), Some(404));
    }
    assert_eq!(a.get_tenant(b_tenant.id).await.unwrap_err().status(), Some(404));
    let users = a.list_users("limit=500").await.unwrap();
    assert!(users.items.iter().all(|u| u.tenant_id != Some(b_tenant.id)));
    assert_eq!(users.items.len(), 1, "alpha sees only its own admin");
    // B's objects are untouched.
    let still = b.get_user(b_user.id).await.unwrap();
    assert_eq!(still.email, None);
    // The provider at system scope does not see tenant users either: it switches in.
    let staff = app.admin.list_users("").await.unwrap();
    assert!(staff.items.iter().all(|u| u.tenant_id.is_none()));
    app.stop().await;
}

#[tokio::test]
async fn tenant_users_cannot_reach_system_routes() {
    let app = TestApp::spawn().await;
    let (_t, _u, a) = app.tenant_with_user("alpha").await;
    let err = a.list_tenants("").await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert_eq!(err.code(), Some("permission_denied"));
    if let ClientError::Api { body, .. } = err {
        assert_eq!(body.error.details["permission"], "tenant:list");
    }
    let err = a.create_tenant(&CreateTenant { name: "evil".into(), ..Default::default() }, &opts()).await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert_eq!(app.admin.list_tenants("name=evil").await.unwrap().items.len(), 0);
    app.stop().await;
}

#[tokio::test]
async fn suspend_blocks_changes_but_not_reads_and_resume_restores() {
    let app = TestApp::spawn().await;
    let (tenant, user, t) = app.tenant_with_user("alpha").await;
    let suspended = app.admin.suspend_tenant(tenant.id).await.unwrap();
    assert_eq!(suspended.state, TenantState::Suspended);

    assert_eq!(t.get_user(user.id).await.unwrap().id, user.id, "reads work while suspended");
    assert_eq!(t.list_users("").await.unwrap().items.len(), 1);
    let err = t.create_user(&new_user("carol"), &opts()).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(423), Some("tenant_suspended")));
    let err = t
        .update_user(user.id, &UpdateUser { email: Some("a@example.com".into()), ..Default::default() }, &opts())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(423));
    let err = t.create_api_token(&CreateApiToken { name: "ci".into(), ..Default::default() }).await.unwrap_err();
    assert_eq!(err.status(), Some(423));
    // Login still works (to read).
    let again = app.login("admin", Some("alpha")).await;
    assert!(again.me().await.is_ok());

    let resumed = app.admin.resume_tenant(tenant.id).await.unwrap();
    assert_eq!(resumed.state, TenantState::Active);
    t.create_user(&new_user("carol"), &opts()).await.unwrap();

    // Transitions are audited in the system log.
    let events = app.admin.list_audit_events(&format!("target_id={}", tenant.id)).await.unwrap();
    let actions: Vec<&str> = events.items.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"tenant.suspend") && actions.contains(&"tenant.resume"), "{actions:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_deleted_tenant_is_gone_and_its_credentials_stop_working() {
    let app = TestApp::spawn_with(|c| c.tenant_retention_days = 0).await;
    let (tenant, _user, t) = app.tenant_with_user("alpha").await;
    let token = t.create_api_token(&CreateApiToken { name: "ci".into(), ..Default::default() }).await.unwrap();
    app.admin.delete_tenant(tenant.id).await.unwrap();

    assert_eq!(app.admin.get_tenant(tenant.id).await.unwrap_err().status(), Some(404));
    assert!(app.admin.list_tenants("").await.unwrap().items.iter().all(|x| x.id != tenant.id));
    assert_eq!(t.me().await.map(|_| ()).unwrap_err().status(), Some(401), "user token of a deleted tenant");
    let pipeline = app.anonymous().with_token(token.secret);
    assert_eq!(pipeline.list_users("").await.unwrap_err().status(), Some(401));
    let login = app
        .anonymous()
        .login(&LoginRequest { username: "admin".into(), password: PASSWORD.into(), tenant: Some("alpha".into()) })
        .await;
    assert_eq!(login.unwrap_err().status(), Some(401));
    assert_eq!(app.admin.switch_tenant("alpha").await.unwrap_err().status(), Some(404));
    // The name is free again at once.
    let again = app.create_tenant("alpha").await;
    assert_ne!(again.id, tenant.id);

    // With zero retention the purge removes the row and everything it owned.
    let purged = basalt_server::jobs::purge(&app.state.db).await.unwrap();
    assert_eq!(purged, Some(1));
    let mut admin = app.db.admin().await;
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM users WHERE tenant_id = $1")
        .bind(tenant.id)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(n, 0);
    app.stop().await;
}

#[tokio::test]
async fn login_switch_and_me() {
    let app = TestApp::spawn().await;
    let (tenant, user, t) = app.tenant_with_user("alpha").await;
    let me = t.me().await.unwrap();
    assert_eq!((me.user.id, me.scope, me.tenant_id), (user.id, Scope::Tenant, Some(tenant.id)));
    assert_eq!(me.tenant_name.as_deref(), Some("alpha"));
    assert!(me.permissions.contains(&"user:create".to_string()));
    assert!(!me.permissions.contains(&"tenant:create".to_string()));

    // Wrong password, unknown user, unknown tenant: the same 401.
    for (u, p, ten) in [
        ("admin", "wrong password!!", Some("alpha")),
        ("nobody", PASSWORD, Some("alpha")),
        ("admin", PASSWORD, Some("nope")),
    ] {
        let err = app
            .anonymous()
            .login(&LoginRequest { username: u.into(), password: p.into(), tenant: ten.map(String::from) })
            .await
            .unwrap_err();
        assert_eq!((err.status(), err.code()), (Some(401), Some("unauthenticated")));
        assert_eq!(format!("{err}"), "401 unauthenticated: wrong username, password or tenant");
    }

    // Provider staff switch deliberately, by name or id; the switch is audited in both logs.
    let by_name = app.admin.switch_tenant("alpha").await.unwrap();
    let by_id = app.admin.switch_tenant(&tenant.id.to_string()).await.unwrap();
    assert_eq!(by_name.tenant_id, Some(tenant.id));
    assert_eq!(by_id.tenant_id, Some(tenant.id));
    let inside = app.admin.with_token(by_name.token);
    let me = inside.me().await.unwrap();
    assert_eq!((me.scope, me.tenant_id, me.user.tenant_id), (Scope::Tenant, Some(tenant.id), None));
    assert!(inside.list_users("").await.unwrap().items.iter().any(|u| u.id == user.id));
    let tenant_log = t.list_audit_events("action=tenant.switch").await.unwrap();
    assert_eq!(tenant_log.items.len(), 3, "two switches by staff plus the harness's");
    assert!(tenant_log.items.iter().all(|e| e.actor_name == "admin" && e.tenant_id == Some(tenant.id)));
    let system_log = app.admin.list_audit_events("action=tenant.switch").await.unwrap();
    assert_eq!(system_log.items.len(), 3);

    // A tenant user cannot switch into another tenant: it does not exist for them.
    app.create_tenant("bravo").await;
    assert_eq!(t.switch_tenant("bravo").await.unwrap_err().status(), Some(404));
    app.stop().await;
}

#[tokio::test]
async fn api_tokens_work_until_revoked_and_store_only_a_hash() {
    let app = TestApp::spawn().await;
    let (tenant, _u, t) = app.tenant_with_user("alpha").await;
    let created = t.create_api_token(&CreateApiToken { name: "ci".into(), ..Default::default() }).await.unwrap();
    assert_eq!(created.token.tenant_id, Some(tenant.id));
    let pipeline = app.anonymous().with_token(created.secret.clone());
    assert_eq!(pipeline.me().await.unwrap().tenant_id, Some(tenant.id));
    let listed = t.list_api_tokens().await.unwrap();
    assert_eq!(listed.items.len(), 1);
    let raw = serde_json::to_string(&listed).unwrap();
    assert!(!raw.contains(&created.secret[10..]), "the secret is listed");

    // The database holds no secret.
    let mut admin = app.db.admin().await;
    let dump = common::db_fingerprint(&mut admin).await;
    let (stored,): (String,) =
        sqlx::query_as("SELECT string_agg(t::text, '') FROM api_tokens t").fetch_one(&mut admin).await.unwrap();
    let secret_part = created.secret.rsplit('_').next().unwrap();
    assert!(!stored.contains(secret_part), "the token secret is stored in clear");
    assert!(!dump.is_empty());

    // A tampered secret is refused; a revoked token is refused.
    let mut tampered = created.secret.clone();
    tampered.pop();
    tampered.push(if created.secret.ends_with('0') { '1' } else { '0' });
    assert_eq!(app.anonymous().with_token(tampered).me().await.unwrap_err().status(), Some(401));
    t.revoke_api_token(created.token.id).await.unwrap();
    let err = pipeline.me().await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(format!("{err}").contains("revoked"));

    // Provider staff can mint a token bound to one tenant.
    let bound = app
        .admin
        .create_api_token(&CreateApiToken {
            name: "alpha-ci".into(),
            tenant: Some("alpha".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let bound_client = app.anonymous().with_token(bound.secret);
    let me = bound_client.me().await.unwrap();
    assert_eq!((me.scope, me.tenant_id), (Scope::Tenant, Some(tenant.id)));
    assert_eq!(bound_client.list_tenants("").await.unwrap_err().status(), Some(403));
    app.stop().await;
}

#[tokio::test]
async fn every_mutation_is_audited_in_its_tenant() {
    let app = TestApp::spawn().await;
    let (tenant, _u, t) = app.tenant_with_user("alpha").await;
    let (_b, _bu, b) = app.tenant_with_user("bravo").await;
    let carol = t.create_user(&new_user("carol"), &opts()).await.unwrap();
    t.update_user(carol.id, &UpdateUser { disabled: Some(true), ..Default::default() }, &opts()).await.unwrap();
    t.delete_user(carol.id).await.unwrap();
    let events = t.list_audit_events(&format!("target_id={}", carol.id)).await.unwrap();
    let actions: Vec<&str> = events.items.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["user.delete", "user.update", "user.create"], "newest first");
    assert!(events.items.iter().all(|e| e.tenant_id == Some(tenant.id)
        && e.outcome == "success"
        && !e.request_id.as_deref().unwrap_or("").is_empty()));
    // Bravo's log has none of it.
    let theirs = b.list_audit_events("limit=500").await.unwrap();
    assert!(theirs.items.iter().all(|e| e.target_id != Some(carol.id) && e.tenant_id != Some(tenant.id)));
    app.stop().await;
}

#[tokio::test]
async fn idempotency_keys_make_retries_safe() {
    let app = TestApp::spawn().await;
    let key = RequestOptions { idempotency_key: Some("create-acme-1".into()), ..Default::default() };
    let req = CreateTenant { name: "acme".into(), display_name: Some("Acme".into()), ..Default::default() };
    let first = app.admin.create_tenant(&req, &key).await.unwrap();
    let second = app.admin.create_tenant(&req, &key).await.unwrap();
    assert_eq!(first, second, "a retry answers the same object");
    assert_eq!(app.admin.list_tenants("name=acme").await.unwrap().items.len(), 1);
    // Same key, different body: refused.
    let other = CreateTenant { name: "acme-2".into(), ..Default::default() };
    let err = app.admin.create_tenant(&other, &key).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(422), Some("idempotency_key_reused")));
    // Concurrent retries still create one object.
    let key = RequestOptions { idempotency_key: Some("race".into()), ..Default::default() };
    let req = CreateTenant { name: "racer".into(), ..Default::default() };
    let (x, y) = tokio::join!(app.admin.create_tenant(&req, &key), app.admin.create_tenant(&req, &key));
    assert_eq!(x.unwrap().id, y.unwrap().id);
    // Deleting the object forgets its key: the same create with the same key makes
    // a new object (Terraform re-creating a destroyed one repeats its key).
    let key = RequestOptions { idempotency_key: Some("create-acme-1".into()), ..Default::default() };
    app.admin.delete_tenant(first.id).await.unwrap();
    let acme = CreateTenant { name: "acme".into(), display_name: Some("Acme".into()), ..Default::default() };
    let again = app.admin.create_tenant(&acme, &key).await.unwrap();
    assert_ne!(again.id, first.id, "a deleted object was replayed");
    assert_eq!(app.admin.get_tenant(again.id).await.unwrap().name, "acme");
    // Without a key, a second create is a conflict.
    let err = app
        .admin
        .create_tenant(&CreateTenant { name: "acme".into(), ..Default::default() }, &opts())
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(409), Some("already_exists")));
    app.stop().await;
}

#[tokio::test]
async fn stale_if_match_is_a_conflict() {
    let app = TestApp::spawn().await;
    let t = app.create_tenant("acme").await;
    let v1 = RequestOptions { if_match: Some(t.version), ..Default::default() };
    let updated = app
        .admin
        .update_tenant(t.id, &UpdateTenant { display_name: Some("Acme Corp".into()), ..Default::default() }, &v1)
        .await
        .unwrap();
    assert_eq!(updated.version, t.version + 1);
    let err = app
        .admin
        .update_tenant(t.id, &UpdateTenant { display_name: Some("Lost update".into()), ..Default::default() }, &v1)
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(409), Some("version_mismatch")));
    assert_eq!(app.admin.get_tenant(t.id).await.unwrap().display_name, "Acme Corp");
    app.stop().await;
}

#[tokio::test]
async fn lists_paginate_with_opaque_cursors() {
    let app = TestApp::spawn().await;
    for i in 0..7 {
        app.create_tenant(&format!("t{i}")).await;
    }
    let mut seen = Vec::new();
    let mut query = "limit=3".to_string();
    loop {
        let page = app.admin.list_tenants(&query).await.unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|t| t.name.clone()));
        match page.next_cursor {
            Some(c) => query = format!("limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, (0..7).map(|i| format!("t{i}")).collect::<Vec<_>>());
    app.stop().await;
}

#[tokio::test]
async fn health_readiness_metrics_and_the_openapi_document() {
    let app = TestApp::spawn().await;
    let http = app.http();
    let get = |p: &str| http.get(format!("{}{}", app.endpoint, p)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    let resp = get("/v1/me").await.unwrap();
    assert!(resp.headers().get("x-request-id").is_some(), "every answer carries a request id");
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("basalt_http_requests_total{method=\"GET\",route=\"/v1/me\",status=\"401\"}"),
        "{metrics}"
    );
    let served: serde_json::Value = get("/v1/openapi.json").await.unwrap().json().await.unwrap();
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json"))
            .expect("docs/openapi.json"),
    )
    .unwrap();
    assert!(served == committed, "docs/openapi.json is stale: run `basalt-server openapi > docs/openapi.json`");
    // Every route of the table is documented.
    for r in basalt_server::api::routes() {
        let path = &served["paths"][r.path];
        assert!(
            path[r.method.as_str().to_lowercase()].is_object(),
            "{} {} is not in the OpenAPI document",
            r.method,
            r.path
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_disabled_or_deleted_users_token_stops_working_at_once() {
    let app = TestApp::spawn().await;
    let (_tenant, _u, t) = app.tenant_with_user("alpha").await;
    let carol = t.create_user(&new_user("carol"), &opts()).await.unwrap();
    app.bind(&t, &carol, "tenant-viewer").await;
    let as_carol = app.login("carol", Some("alpha")).await;
    assert!(as_carol.list_users("").await.is_ok());

    t.update_user(carol.id, &UpdateUser { disabled: Some(true), ..Default::default() }, &opts()).await.unwrap();
    let err = as_carol.list_users("").await.unwrap_err();
    assert_eq!(err.status(), Some(401), "a disabled user's token still works");
    t.update_user(carol.id, &UpdateUser { disabled: Some(false), ..Default::default() }, &opts()).await.unwrap();
    assert!(as_carol.list_users("").await.is_ok());

    // The same through the dedicated routes.
    let off: User =
        t.post_at(&format!("/v1/users/{}/disable", carol.id), &serde_json::json!({}), &opts()).await.unwrap();
    assert!(off.disabled);
    assert_eq!(as_carol.list_users("").await.unwrap_err().status(), Some(401));
    let on: User = t.post_at(&format!("/v1/users/{}/enable", carol.id), &serde_json::json!({}), &opts()).await.unwrap();
    assert!(!on.disabled);
    assert!(as_carol.list_users("").await.is_ok());

    t.delete_user(carol.id).await.unwrap();
    assert_eq!(as_carol.list_users("").await.unwrap_err().status(), Some(401), "a deleted user's token still works");
    app.stop().await;
}

/// Disabling the last administrator is refused like removing it: a disabled
/// administrator administers nothing. With a second administrator it is allowed.
#[tokio::test]
async fn the_last_administrator_cannot_be_disabled() {
    let app = TestApp::spawn().await;
    let (tenant, admin, _t) = app.tenant_with_user("alpha").await;
    let staff = app.admin_in(&tenant).await;
    let path = format!("/v1/users/{}/disable", admin.id);
    let e = staff.post_at::<_, User>(&path, &serde_json::json!({}), &opts()).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(409), Some("last_admin")));
    let e = staff
        .update_user(admin.id, &UpdateUser { disabled: Some(true), ..Default::default() }, &opts())
        .await
        .unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(409), Some("last_admin")), "the same through PATCH");
    let second = staff.create_user(&new_user("bob"), &opts()).await.unwrap();
    app.bind(&staff, &second, "tenant-admin").await;
    let off: User = staff.post_at(&path, &serde_json::json!({}), &opts()).await.unwrap();
    assert!(off.disabled, "with another administrator it is allowed");
    app.stop().await;
}

/// A user reads one of its own API tokens (never the secret, never another's).
#[tokio::test]
async fn a_user_reads_its_own_api_token_only() {
    let app = TestApp::spawn().await;
    let (_tenant, _u, t) = app.tenant_with_user("alpha").await;
    let made =
        t.create_api_token(&basalt_client::CreateApiToken { name: "ci".into(), ..Default::default() }).await.unwrap();
    let read: basalt_client::ApiToken = t.get_at(&format!("/v1/tokens/{}", made.token.id)).await.unwrap();
    assert_eq!((read.id, read.name.as_str()), (made.token.id, "ci"));
    let e = app.admin.get_at::<basalt_client::ApiToken>(&format!("/v1/tokens/{}", made.token.id)).await.unwrap_err();
    assert_eq!(e.status(), Some(404), "another user's token does not exist for the caller");
    app.stop().await;
}

#[tokio::test]
async fn repeated_failed_logins_are_throttled_per_user() {
    let app = TestApp::spawn().await;
    let (_tenant, _u, t) = app.tenant_with_user("alpha").await;
    t.create_user(&new_user("carol"), &opts()).await.unwrap();
    let attempt = |user: &str, password: &str| LoginRequest {
        username: user.into(),
        password: password.into(),
        tenant: Some("alpha".into()),
    };
    for _ in 0..10 {
        let err = app.anonymous().login(&attempt("admin", "not the password")).await.unwrap_err();
        assert_eq!(err.status(), Some(401));
    }
    // Now even the right password waits: the guesses ran out.
    let resp = app
        .http()
        .post(format!("{}/v1/auth/login", app.endpoint))
        .json(&attempt("admin", PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("900"));
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // Another user of the same tenant is not affected.
    assert!(app.anonymous().login(&attempt("carol", PASSWORD)).await.is_ok());
    app.stop().await;
}

/// An administrator sees a user's API tokens (never their secrets) and revokes
/// one: it stops working at once. Another tenant's administrator sees nothing.
#[tokio::test]
async fn an_administrator_revokes_a_users_api_token() {
    let app = TestApp::spawn().await;
    let (_tenant, _u, t) = app.tenant_with_user("alpha").await;
    let (_beta, _, b) = app.tenant_with_user("beta").await;
    let carol = t.create_user(&new_user("carol"), &opts()).await.unwrap();
    app.bind(&t, &carol, "tenant-viewer").await;
    let as_carol = app.login("carol", Some("alpha")).await;
    let made =
        as_carol.create_api_token(&CreateApiToken { name: "laptop".into(), ..Default::default() }).await.unwrap();
    let with_token = Client::new(&app.endpoint, Some(made.secret.clone()));
    assert!(with_token.list_users("").await.is_ok());

    let listed: Page<ApiToken> = t.get_at(&format!("/v1/users/{}/tokens", carol.id)).await.unwrap();
    assert_eq!(listed.items.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(), ["laptop"]);
    let raw = serde_json::to_string(&listed).unwrap();
    assert!(!raw.contains(&made.secret), "never the secret");
    let e = b.get_at::<Page<ApiToken>>(&format!("/v1/users/{}/tokens", carol.id)).await.unwrap_err();
    assert_eq!(e.status(), Some(404), "another tenant's user does not exist");
    let e = b.delete_at(&format!("/v1/users/{}/tokens/{}", carol.id, made.token.id)).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    assert!(with_token.list_users("").await.is_ok(), "nothing was revoked by the other tenant");

    t.delete_at(&format!("/v1/users/{}/tokens/{}", carol.id, made.token.id)).await.unwrap();
    assert_eq!(with_token.list_users("").await.unwrap_err().status(), Some(401), "revoked at once");
    let e = t.delete_at(&format!("/v1/users/{}/tokens/{}", carol.id, made.token.id)).await.unwrap_err();
    assert_eq!(e.status(), Some(404), "a revoked token is not revoked twice");
    app.stop().await;
}
