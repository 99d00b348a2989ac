//! Identity administration in depth, through the API: invitations (single use,
//! escalation-checked, public acceptance), the tenant policy and where it is
//! enforced, unlocking a throttled user, another user's effective permissions,
//! service accounts and their tokens (escalation-checked), and the NDJSON audit
//! export. Refusals write nothing; another tenant's objects are 404.

mod common;

use basalt_client::*;
use common::{TestApp, PASSWORD};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

fn opts() -> RequestOptions {
    RequestOptions::default()
}

fn user(name: &str) -> CreateUser {
    CreateUser { username: name.into(), password: Some(PASSWORD.into()), ..Default::default() }
}

fn role_id(name: &str) -> Uuid {
    basalt_server::authz::builtin_role_named(name).unwrap().id
}

fn invite(email: &str, role: Option<Uuid>) -> CreateInvitation {
    CreateInvitation { email: email.into(), role_id: role, ..Default::default() }
}

fn accept(token: &str, username: &str, password: &str) -> AcceptInvitation {
    AcceptInvitation { token: token.into(), username: username.into(), password: password.into() }
}

/// Status and code of a refusal (panics on success).
fn refusal<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (u16, String) {
    let e = r.expect_err("must be refused");
    (e.status().unwrap_or(0), e.code().unwrap_or("").to_string())
}

/// The database minus the security bookkeeping that refusals are expected to grow.
async fn fingerprint(conn: &mut PgConnection) -> Vec<(String, i64, String)> {
    common::db_fingerprint(conn)
        .await
        .into_iter()
        .filter(|(t, _, _)| t != "audit_events" && t != "login_failures")
        .collect()
}

/// A custom role of the tenant bound to a new user; the user's client.
async fn delegate(app: &TestApp, admin: &Client, tenant: &str, name: &str, permissions: &[&str]) -> (User, Client) {
    let role = admin
        .create_role(
            &CreateRole {
                name: format!("{name}-role"),
                permissions: permissions.iter().map(|p| p.to_string()).collect(),
                ..Default::default()
            },
            &opts(),
        )
        .await
        .unwrap();
    let u = admin.create_user(&user(name), &opts()).await.unwrap();
    admin
        .create_role_binding(
            &CreateRoleBinding { role_id: role.id, user_id: Some(u.id), ..Default::default() },
            &opts(),
        )
        .await
        .unwrap();
    (u, app.login(name, Some(tenant)).await)
}

#[tokio::test]
async fn an_invitation_creates_its_user_once_with_its_role() {
    let app = TestApp::spawn().await;
    let (alpha, _, a) = app.tenant_with_user("alpha").await;
    let (_, _, b) = app.tenant_with_user("bravo").await;
    let anyone = app.anonymous();
    let mut conn = app.db.admin().await;

    let created: CreatedInvitation = a
        .post_at("/v1/invitations", &invite("dana@example.com", Some(role_id("tenant-viewer"))), &opts())
        .await
        .unwrap();
    assert!(created.token.starts_with("bsi_"), "{}", created.token);
    assert_eq!(created.invitation.state, "pending");
    assert_eq!(created.invitation.tenant_id, Some(alpha.id));
    let week = created.invitation.expires_at - created.invitation.created_at;
    assert!((week.num_hours() - 168).abs() <= 1, "default lifetime is a week: {week}");
    // The secret is never stored or logged: only its digest, nowhere in the trail.
    let secret = created.token.rsplit('_').next().unwrap().to_string();
    let (leaks,): (i64,) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM audit_events WHERE details::text LIKE '%' || $1 || '%')
              + (SELECT count(*) FROM invitations WHERE encode(secret_sha256, 'escape') LIKE '%' || $1 || '%')",
    )
    .bind(&secret)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(leaks, 0, "the invitation secret is stored somewhere");
    let listed: Page<Invitation> = a.get_at("/v1/invitations").await.unwrap();
    assert_eq!(listed.items.len(), 1);
    let read: Invitation = a.get_at(&format!("/v1/invitations/{}", created.invitation.id)).await.unwrap();
    assert_eq!(read, created.invitation);
    // Another tenant's invitation does not exist.
    let path = format!("/v1/invitations/{}", created.invitation.id);
    assert_eq!(refusal(b.get_at::<Invitation>(&path).await).0, 404);
    assert_eq!(refusal(b.post_at::<_, Invitation>(&format!("{path}/revoke"), &json!({}), &opts()).await).0, 404);

    // Refused acceptances write nothing: a short password (the policy's 12), a
    // bad username, a wrong secret, garbage, an unknown invitation.
    let before = fingerprint(&mut conn).await;
    let wrong_secret = format!("{}{}", &created.token[..created.token.len() - 4], "beef");
    let ghost = format!("bsi_{}_00", Uuid::now_v7().simple());
    let attempts = [
        (accept(&created.token, "dana", "short pass"), 400, "invalid_field"),
        (accept(&created.token, "da na", PASSWORD), 400, "invalid_field"),
        (accept(&wrong_secret, "dana", PASSWORD), 401, "unauthenticated"),
        (accept("garbage", "dana", PASSWORD), 401, "unauthenticated"),
        (accept(&ghost, "dana", PASSWORD), 401, "unauthenticated"),
    ];
    for (body, status, code) in &attempts {
        let r = anyone.post_at::<_, User>("/v1/invitations/accept", body, &opts()).await;
        assert_eq!(refusal(r), (*status, code.to_string()), "{}", body.username);
    }
    assert_eq!(before, fingerprint(&mut conn).await, "a refused acceptance wrote something");
    // The wrong secret for a real invitation is counted like a failed login.
    let (counted,): (i64,) = sqlx::query_as("SELECT count(*) FROM login_failures WHERE username = $1")
        .bind(format!("(invitation {})", created.invitation.id))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(counted, 1);

    // Accepted: the user exists in alpha, with the role, and can log in.
    let dana: User =
        anyone.post_at("/v1/invitations/accept", &accept(&created.token, "dana", PASSWORD), &opts()).await.unwrap();
    assert_eq!((dana.tenant_id, dana.email.as_deref()), (Some(alpha.id), Some("dana@example.com")));
    let as_dana = app.login("dana", Some("alpha")).await;
    let me = as_dana.me().await.unwrap();
    assert!(me.permissions.contains(&"user:list".to_string()) && !me.permissions.contains(&"user:create".to_string()));
    let read: Invitation = a.get_at(&path).await.unwrap();
    assert_eq!((read.state.as_str(), read.accepted_user_id), ("accepted", Some(dana.id)));
    let trail = a.list_audit_events("action=invitation.accept").await.unwrap();
    assert_eq!(trail.items.len(), 1);
    assert_eq!(trail.items[0].details["user_id"], json!(dana.id));

    // Single use: a second acceptance is the same 401, and writes nothing.
    let before = fingerprint(&mut conn).await;
    let again =
        anyone.post_at::<_, User>("/v1/invitations/accept", &accept(&created.token, "eve", PASSWORD), &opts()).await;
    assert_eq!(refusal(again), (401, "unauthenticated".into()));
    assert_eq!(before, fingerprint(&mut conn).await, "a used invitation wrote something");
    // Revoked and expired invitations alike.
    let revoked: CreatedInvitation =
        a.post_at("/v1/invitations", &invite("r@example.com", None), &opts()).await.unwrap();
    let expired: CreatedInvitation =
        a.post_at("/v1/invitations", &invite("x@example.com", None), &opts()).await.unwrap();
    let r: Invitation =
        a.post_at(&format!("/v1/invitations/{}/revoke", revoked.invitation.id), &json!({}), &opts()).await.unwrap();
    assert_eq!(r.state, "revoked");
    let twice = a
        .post_at::<_, Invitation>(&format!("/v1/invitations/{}/revoke", revoked.invitation.id), &json!({}), &opts())
        .await;
    assert_eq!(refusal(twice), (409, "invitation_not_pending".into()));
    let accepted_twice = a
        .post_at::<_, Invitation>(&format!("/v1/invitations/{}/revoke", created.invitation.id), &json!({}), &opts())
        .await;
    assert_eq!(refusal(accepted_twice).0, 409);
    sqlx::query("UPDATE invitations SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(expired.invitation.id)
        .execute(&mut conn)
        .await
        .unwrap();
    let before = fingerprint(&mut conn).await;
    for token in [&revoked.token, &expired.token] {
        let r = anyone.post_at::<_, User>("/v1/invitations/accept", &accept(token, "frank", PASSWORD), &opts()).await;
        assert_eq!(refusal(r), (401, "unauthenticated".into()));
    }
    assert_eq!(before, fingerprint(&mut conn).await, "a dead invitation wrote something");
    let e: Invitation = a.get_at(&format!("/v1/invitations/{}", expired.invitation.id)).await.unwrap();
    assert_eq!(e.state, "expired");

    // A username already taken is a conflict, and the invitation stays pending.
    let taken: CreatedInvitation = a.post_at("/v1/invitations", &invite("t@example.com", None), &opts()).await.unwrap();
    let r = anyone.post_at::<_, User>("/v1/invitations/accept", &accept(&taken.token, "dana", PASSWORD), &opts()).await;
    assert_eq!(refusal(r).0, 409);
    let t: Invitation = a.get_at(&format!("/v1/invitations/{}", taken.invitation.id)).await.unwrap();
    assert_eq!(t.state, "pending");
    app.stop().await;
}

#[tokio::test]
async fn inviting_with_a_role_is_a_grant_and_escalation_is_refused() {
    let app = TestApp::spawn().await;
    let (_, _, a) = app.tenant_with_user("alpha").await;
    let (_, _, b) = app.tenant_with_user("bravo").await;
    let bravo_role = b
        .create_role(
            &CreateRole { name: "b-ops".into(), permissions: vec!["user:list".into()], ..Default::default() },
            &opts(),
        )
        .await
        .unwrap();
    let (_, inviter) =
        delegate(&app, &a, "alpha", "inviter", &["invitation:create", "invitation:list", "user:list", "role:read"])
            .await;
    let op = a.create_user(&user("op"), &opts()).await.unwrap();
    app.bind(&a, &op, "tenant-operator").await;
    let as_op = app.login("op", Some("alpha")).await;

    let mut conn = app.db.admin().await;
    let before = fingerprint(&mut conn).await;
    let attempts = [
        ("a role stronger than the inviter", inviter.clone(), Some(role_id("tenant-admin")), 403, "escalation_refused"),
        ("another tenant's role", inviter.clone(), Some(bravo_role.id), 404, "not_found"),
        ("a provider role in a tenant", a.clone(), Some(role_id("provider-admin")), 404, "not_found"),
        ("an operator may not invite", as_op.clone(), None, 403, "permission_denied"),
    ];
    for (name, client, role, status, code) in attempts {
        let r =
            client.post_at::<_, CreatedInvitation>("/v1/invitations", &invite("z@example.com", role), &opts()).await;
        assert_eq!(refusal(r), (status, code.to_string()), "{name}");
    }
    assert_eq!(before, fingerprint(&mut conn).await, "a refused invitation wrote something");
    // What the inviter holds itself it may hand on.
    let mine = a
        .create_role(
            &CreateRole { name: "lister".into(), permissions: vec!["user:list".into()], ..Default::default() },
            &opts(),
        )
        .await
        .unwrap();
    let ok: CreatedInvitation =
        inviter.post_at("/v1/invitations", &invite("ok@example.com", Some(mine.id)), &opts()).await.unwrap();
    assert_eq!(ok.invitation.role_id, Some(mine.id));
    // A deleted role takes its pending invitations with it.
    a.delete_role(mine.id).await.unwrap();
    let gone = a.get_at::<Invitation>(&format!("/v1/invitations/{}", ok.invitation.id)).await;
    assert_eq!(refusal(gone).0, 404);
    app.stop().await;
}

#[tokio::test]
async fn the_tenant_policy_governs_passwords_and_token_lifetimes() {
    let app = TestApp::spawn().await;
    let (_, admin, a) = app.tenant_with_user("alpha").await;
    let policy: TenantPolicy = a.get_at("/v1/tenant-policy").await.unwrap();
    assert_eq!((policy.password_min_length, policy.token_max_ttl_days, policy.version), (12, None, 0));
    // Tenant scope only: provider staff switch in to see it.
    assert_eq!(refusal(app.admin.get_at::<TenantPolicy>("/v1/tenant-policy").await), (403, "permission_denied".into()));
    let viewer = a.create_user(&user("viewer"), &opts()).await.unwrap();
    app.bind(&a, &viewer, "tenant-viewer").await;
    let as_viewer = app.login("viewer", Some("alpha")).await;
    as_viewer.get_at::<TenantPolicy>("/v1/tenant-policy").await.unwrap();
    let r =
        as_viewer.patch_at::<_, TenantPolicy>("/v1/tenant-policy", &json!({"password_min_length": 20}), &opts()).await;
    assert_eq!(refusal(r), (403, "permission_denied".into()));

    let stale = RequestOptions { if_match: Some(3), ..Default::default() };
    let r = a.patch_at::<_, TenantPolicy>("/v1/tenant-policy", &json!({"password_min_length": 16}), &stale).await;
    assert_eq!(refusal(r), (409, "version_mismatch".into()));
    let first = RequestOptions { if_match: Some(0), ..Default::default() };
    let body = json!({"password_min_length": 16, "token_max_ttl_days": 1});
    let p: TenantPolicy = a.patch_at("/v1/tenant-policy", &body, &first).await.unwrap();
    assert_eq!((p.password_min_length, p.token_max_ttl_days, p.version), (16, Some(1), 1));
    let trail = a.list_audit_events("action=tenant_policy.update").await.unwrap();
    assert_eq!(trail.items[0].details["before"]["password_min_length"], 12);
    assert_eq!(trail.items[0].details["after"]["password_min_length"], 16);

    // Passwords: 15 characters are now too short, everywhere one is set.
    let fifteen = "fifteen chars!!";
    let sixteen = "sixteen chars!!!";
    let short = CreateUser { password: Some(fifteen.into()), ..user("shorty") };
    let e = a.create_user(&short, &opts()).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(400), Some("invalid_field")));
    assert!(format!("{e}").contains("password"), "{e}");
    a.create_user(&CreateUser { password: Some(sixteen.into()), ..user("longer") }, &opts()).await.unwrap();
    let change = UpdateUser { password: Some(fifteen.into()), ..Default::default() };
    assert_eq!(refusal(a.update_user(admin.id, &change, &opts()).await).0, 400);
    let inv: CreatedInvitation = a.post_at("/v1/invitations", &invite("p@example.com", None), &opts()).await.unwrap();
    let r = app
        .anonymous()
        .post_at::<_, User>("/v1/invitations/accept", &accept(&inv.token, "pat", fifteen), &opts())
        .await;
    assert_eq!(refusal(r).0, 400);
    app.anonymous()
        .post_at::<_, User>("/v1/invitations/accept", &accept(&inv.token, "pat", sixteen), &opts())
        .await
        .unwrap();

    // Tokens: at most a day, and never without an expiry.
    for ttl in [None, Some(2 * 86_400)] {
        let r = a.create_api_token(&CreateApiToken { name: "ci".into(), ttl_seconds: ttl, ..Default::default() }).await;
        let e = r.unwrap_err();
        assert_eq!((e.status(), e.code()), (Some(400), Some("invalid_field")), "{ttl:?}");
        assert!(format!("{e}").contains("ttl_seconds"), "{e}");
    }
    a.create_api_token(&CreateApiToken { name: "ci".into(), ttl_seconds: Some(3600), ..Default::default() })
        .await
        .unwrap();

    // null lifts the limit; the minimum may go down to 8.
    let next = RequestOptions { if_match: Some(1), ..Default::default() };
    let p: TenantPolicy = a
        .patch_at("/v1/tenant-policy", &json!({"token_max_ttl_days": null, "password_min_length": 8}), &next)
        .await
        .unwrap();
    assert_eq!((p.password_min_length, p.token_max_ttl_days, p.version), (8, None, 2));
    a.create_api_token(&CreateApiToken { name: "forever".into(), ..Default::default() }).await.unwrap();
    a.create_user(&CreateUser { password: Some("eight ch".into()), ..user("brief") }, &opts()).await.unwrap();
    // Another tenant keeps the defaults.
    let (_, _, b) = app.tenant_with_user("bravo").await;
    let theirs: TenantPolicy = b.get_at("/v1/tenant-policy").await.unwrap();
    assert_eq!((theirs.password_min_length, theirs.version), (12, 0));
    let e =
        b.create_user(&CreateUser { password: Some("eight ch".into()), ..user("brief") }, &opts()).await.unwrap_err();
    assert_eq!(e.status(), Some(400));
    app.stop().await;
}

#[tokio::test]
async fn unlock_clears_the_login_throttle_of_a_user_of_the_context() {
    let app = TestApp::spawn().await;
    let (_, _, a) = app.tenant_with_user("alpha").await;
    let (_, _, b) = app.tenant_with_user("bravo").await;
    let bob = a.create_user(&user("bob"), &opts()).await.unwrap();
    let wrong =
        LoginRequest { username: "bob".into(), password: "not the password".into(), tenant: Some("alpha".into()) };
    for _ in 0..10 {
        let _ = app.anonymous().login(&wrong).await;
    }
    let right = LoginRequest { password: PASSWORD.into(), ..wrong.clone() };
    assert_eq!(refusal(app.anonymous().login(&right).await), (429, "rate_limited".into()));

    let path = format!("/v1/users/{}/unlock", bob.id);
    let op = a.create_user(&user("op"), &opts()).await.unwrap();
    app.bind(&a, &op, "tenant-operator").await;
    let as_op = app.login("op", Some("alpha")).await;
    assert_eq!(refusal(as_op.post_at::<_, User>(&path, &json!({}), &opts()).await), (403, "permission_denied".into()));
    assert_eq!(refusal(b.post_at::<_, User>(&path, &json!({}), &opts()).await).0, 404);
    assert_eq!(refusal(app.anonymous().login(&right).await).0, 429, "a refused unlock unlocked");

    let unlocked: User = a.post_at(&path, &json!({}), &opts()).await.unwrap();
    assert_eq!(unlocked.id, bob.id);
    app.anonymous().login(&right).await.expect("bob logs in again at once");
    let trail = a.list_audit_events("action=user.unlock").await.unwrap();
    assert_eq!(trail.items[0].details["failures_cleared"], 10);
    app.stop().await;
}

#[tokio::test]
async fn a_users_permissions_name_the_binding_or_group_granting_each() {
    let app = TestApp::spawn().await;
    let (_, admin, a) = app.tenant_with_user("alpha").await;
    let (_, _, b) = app.tenant_with_user("bravo").await;
    let carol = a.create_user(&user("carol"), &opts()).await.unwrap();
    let direct = app.bind(&a, &carol, "tenant-viewer").await;
    let ops: Group =
        a.post_at("/v1/groups", &CreateGroup { name: "ops".into(), ..Default::default() }, &opts()).await.unwrap();
    let operator = role_id("tenant-operator");
    let through_group: RoleBinding = a
        .post_at(
            "/v1/role-bindings",
            &CreateRoleBinding { role_id: operator, group_id: Some(ops.id), ..Default::default() },
            &opts(),
        )
        .await
        .unwrap();
    let put = app
        .http()
        .put(format!("{}/v1/groups/{}/members/{}", app.endpoint, ops.id, carol.id))
        .bearer_auth(a.token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 204);

    let path = format!("/v1/users/{}/permissions", carol.id);
    let held: UserPermissions = a.get_at(&path).await.unwrap();
    let find = |p: &str| held.permissions.iter().find(|h| h.permission == p).cloned();
    let vm_create = find("vm:create").expect("vm:create through the group");
    assert_eq!((vm_create.binding_id, vm_create.group_id), (through_group.id, Some(ops.id)));
    assert_eq!(vm_create.role, "tenant-operator");
    let user_list = find("user:list").expect("user:list");
    assert!(user_list.binding_id == direct.id || user_list.binding_id == through_group.id);
    assert!(find("user:create").is_none(), "carol holds no identity administration");
    assert!(held.cluster_permissions.is_empty());
    // What carol's own /v1/me says, exactly.
    let me = app.login("carol", Some("alpha")).await.me().await.unwrap();
    let names: Vec<String> = held.permissions.iter().map(|h| h.permission.clone()).collect();
    assert_eq!(names, me.permissions);
    // The administrator's own, read by a viewer; another tenant's user is 404.
    let as_carol = app.login("carol", Some("alpha")).await;
    let admins: UserPermissions = as_carol.get_at(&format!("/v1/users/{}/permissions", admin.id)).await.unwrap();
    assert!(admins.permissions.iter().any(|h| h.permission == "tenant_policy:update"));
    assert_eq!(refusal(b.get_at::<UserPermissions>(&path).await).0, 404);
    app.stop().await;
}

#[tokio::test]
async fn service_accounts_hold_roles_and_use_tokens_issued_without_escalation() {
    let app = TestApp::spawn().await;
    let (_, _, a) = app.tenant_with_user("alpha").await;
    let (_, _, b) = app.tenant_with_user("bravo").await;
    let sa: ServiceAccount = a
        .post_at(
            "/v1/service-accounts",
            &CreateServiceAccount {
                name: "ci-bot".into(),
                description: Some("pipelines".into()),
                ..Default::default()
            },
            &opts(),
        )
        .await
        .unwrap();
    assert_eq!((sa.name.as_str(), sa.description.as_str(), sa.disabled), ("ci-bot", "pipelines", false));
    // A user of kind service: listed with the users, with no password, ever.
    let as_user = a.get_user(sa.id).await.unwrap();
    assert_eq!((as_user.kind, as_user.has_password), (UserKind::Service, false));
    let pw = UpdateUser { password: Some(PASSWORD.into()), ..Default::default() };
    assert_eq!(refusal(a.update_user(sa.id, &pw, &opts()).await), (422, "service_account_password".into()));
    let login = LoginRequest { username: "ci-bot".into(), password: PASSWORD.into(), tenant: Some("alpha".into()) };
    assert_eq!(refusal(app.anonymous().login(&login).await).0, 401);
    let human = a.create_user(&user("human"), &opts()).await.unwrap();
    assert_eq!(refusal(a.get_at::<ServiceAccount>(&format!("/v1/service-accounts/{}", human.id)).await).0, 404);
    let listed: Page<ServiceAccount> = a.get_at("/v1/service-accounts").await.unwrap();
    assert_eq!(listed.items.iter().map(|s| s.id).collect::<Vec<_>>(), vec![sa.id]);
    let dup = a
        .post_at::<_, ServiceAccount>(
            "/v1/service-accounts",
            &CreateServiceAccount { name: "human".into(), ..Default::default() },
            &opts(),
        )
        .await;
    assert_eq!(refusal(dup).0, 409);

    // Roles bind to it unchanged.
    app.bind(&a, &as_user, "tenant-operator").await;
    let sa_path = format!("/v1/service-accounts/{}", sa.id);
    let tokens_path = format!("{sa_path}/tokens");

    // Escalation: a delegate who may issue tokens but holds less than the account.
    let (_, minter) = delegate(
        &app,
        &a,
        "alpha",
        "minter",
        &["service_account_token:create", "service_account:read", "service_account_token:list"],
    )
    .await;
    let mut conn = app.db.admin().await;
    let before = fingerprint(&mut conn).await;
    let body = CreateServiceAccountToken { name: "deploy".into(), ttl_seconds: None };
    let e = minter.post_at::<_, CreatedApiToken>(&tokens_path, &body, &opts()).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(403), Some("escalation_refused")));
    assert_eq!(refusal(b.post_at::<_, CreatedApiToken>(&tokens_path, &body, &opts()).await).0, 404);
    assert_eq!(refusal(b.get_at::<ServiceAccount>(&sa_path).await).0, 404);
    assert_eq!(refusal(b.delete_at(&sa_path).await).0, 404);
    assert_eq!(before, fingerprint(&mut conn).await, "a refused token issue wrote something");

    // The administrator holds everything it holds: the token works as the account.
    let issued: CreatedApiToken = a.post_at(&tokens_path, &body, &opts()).await.unwrap();
    assert!(issued.secret.starts_with("bst_"));
    assert_eq!(issued.token.user_id, sa.id);
    let (stored,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM api_tokens WHERE user_id = $1 AND length(secret_sha256) = 32")
            .bind(sa.id)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(stored, 1);
    let bot = app.anonymous().with_token(issued.secret.clone());
    let me = bot.me().await.unwrap();
    assert_eq!(me.user.id, sa.id);
    bot.get_at::<Page<Vm>>("/v1/vms").await.expect("an operator lists VMs");
    assert_eq!(refusal(bot.create_user(&user("x"), &opts()).await), (403, "permission_denied".into()));
    let tokens: Page<ApiToken> = minter.get_at(&tokens_path).await.unwrap();
    assert_eq!(tokens.items.len(), 1);

    // Disabling the account stops its tokens; enabling restores them.
    let sa1: ServiceAccount = a
        .patch_at(&sa_path, &UpdateServiceAccount { disabled: Some(true), ..Default::default() }, &opts())
        .await
        .unwrap();
    assert!(sa1.disabled);
    assert_eq!(refusal(bot.me().await).0, 401);
    let stale = RequestOptions { if_match: Some(sa.version), ..Default::default() };
    let r = a
        .patch_at::<_, ServiceAccount>(
            &sa_path,
            &UpdateServiceAccount { disabled: Some(false), ..Default::default() },
            &stale,
        )
        .await;
    assert_eq!(refusal(r), (409, "version_mismatch".into()));
    a.patch_at::<_, ServiceAccount>(
        &sa_path,
        &UpdateServiceAccount { disabled: Some(false), ..Default::default() },
        &opts(),
    )
    .await
    .unwrap();
    bot.me().await.unwrap();
    let trail = a.list_audit_events("action=service_account.update").await.unwrap();
    assert_eq!(trail.items.len(), 2);
    assert_eq!(trail.items[1].details["before"]["disabled"], false);

    // Revoking the token stops it.
    a.delete_at(&format!("{tokens_path}/{}", issued.token.id)).await.unwrap();
    assert_eq!(refusal(bot.me().await).0, 401);
    assert_eq!(refusal(a.delete_at(&format!("{tokens_path}/{}", issued.token.id)).await).0, 404);

    // The tenant policy limits its tokens too.
    let p = json!({"token_max_ttl_days": 1});
    a.patch_at::<_, TenantPolicy>("/v1/tenant-policy", &p, &opts()).await.unwrap();
    let e = a.post_at::<_, CreatedApiToken>(&tokens_path, &body, &opts()).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(400), Some("invalid_field")));

    // Deleting it takes its tokens and bindings.
    a.post_at::<_, CreatedApiToken>(
        &tokens_path,
        &CreateServiceAccountToken { name: "short".into(), ttl_seconds: Some(600) },
        &opts(),
    )
    .await
    .unwrap();
    a.delete_at(&sa_path).await.unwrap();
    let (left,): (i64,) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM api_tokens WHERE user_id = $1) + (SELECT count(*) FROM role_bindings WHERE user_id = $1)",
    )
    .bind(sa.id)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(left, 0);
    assert_eq!(refusal(a.get_at::<ServiceAccount>(&sa_path).await).0, 404);
    app.stop().await;
}

#[tokio::test]
async fn the_audit_export_streams_the_whole_window_as_ndjson() {
    let app = TestApp::spawn().await;
    let (alpha, _, a) = app.tenant_with_user("alpha").await;
    let (bravo, _, _) = app.tenant_with_user("bravo").await;
    let mut conn = app.db.admin().await;
    // More events than one internal page, in both tenants.
    for tenant in [alpha.id, bravo.id] {
        sqlx::query(
            "INSERT INTO audit_events (id, tenant_id, at, actor_name, action, target_type, outcome)
             SELECT gen_random_uuid(), $1, now() - make_interval(secs => 1200 - n), 'seed', 'seed.event', 'seed', 'success'
               FROM generate_series(1, 1200) n",
        )
        .bind(tenant)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let (total,): (i64,) = sqlx::query_as("SELECT count(*) FROM audit_events WHERE tenant_id = $1")
        .bind(alpha.id)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(total > 1200);

    let http = app.http();
    let get = |query: String| {
        let req = http.get(format!("{}/v1/audit-events/export{query}", app.endpoint)).bearer_auth(a.token().unwrap());
        async move { req.send().await.unwrap() }
    };
    let resp = get(String::new()).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let body = resp.text().await.unwrap();
    let events: Vec<AuditEvent> = body.lines().map(|l| serde_json::from_str(l).expect(l)).collect();
    assert_eq!(events.len() as i64, total, "every event of the context, once");
    assert!(events.iter().all(|e| e.tenant_id == Some(alpha.id)), "another tenant's events were exported");
    let mut ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), events.len());

    // A window: the seeded events of the last ten minutes.
    let since = (chrono::Utc::now() - chrono::Duration::minutes(10)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let until = (chrono::Utc::now() - chrono::Duration::minutes(2)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let windowed = get(format!("?since={since}&until={until}")).await.text().await.unwrap();
    let n = windowed.lines().count();
    assert!((470..=490).contains(&n), "{n} events in an 8-minute window of one a second");
    let bad = get(format!("?since={until}&until={since}")).await;
    assert_eq!(bad.status().as_u16(), 400);

    // Reading the trail is not a viewer's.
    let viewer = a.create_user(&user("viewer"), &opts()).await.unwrap();
    app.bind(&a, &viewer, "tenant-viewer").await;
    let as_viewer = app.login("viewer", Some("alpha")).await;
    let denied = http
        .get(format!("{}/v1/audit-events/export", app.endpoint))
        .bearer_auth(as_viewer.token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status().as_u16(), 403);
    app.stop().await;
}
