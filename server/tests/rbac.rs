//! Role-based access control through the API: built-in roles, custom roles,
//! bindings that take effect at once, `authz/check`, the coverage of every route
//! by a permission, and escalation attempts that must all be refused with nothing
//! written.

mod common;

use basalt_client::*;
use basalt_server::authz::{Access, Permission};
use common::{TestApp, PASSWORD};

fn opts() -> RequestOptions {
    RequestOptions::default()
}

fn user(name: &str) -> CreateUser {
    CreateUser { username: name.into(), password: Some(PASSWORD.into()), ..Default::default() }
}

fn role(name: &str, permissions: &[&str]) -> CreateRole {
    CreateRole {
        name: name.into(),
        permissions: permissions.iter().map(|p| p.to_string()).collect(),
        ..Default::default()
    }
}

#[test]
fn every_route_names_its_permission_and_every_permission_gates_a_route() {
    let routes = basalt_server::api::routes();
    let public: Vec<&str> = routes.iter().filter(|r| r.access == Access::Public).map(|r| r.path).collect();
    assert_eq!(
        public,
        [
            "/healthz",
            "/readyz",
            "/metrics",
            "/v1/openapi.json",
            "/v1/auth/login",
            // The invitation's own secret is the credential (single use, expiring,
            // throttled like login); it only redeems what an administrator issued.
            "/v1/invitations/accept",
        ],
        "only health, metrics, the OpenAPI document, login and accepting an invitation may be public"
    );
    let authenticated: Vec<&str> =
        routes.iter().filter(|r| r.access == Access::Authenticated).map(|r| r.path).collect();
    assert_eq!(authenticated, ["/v1/me", "/v1/authz/check"], "questions about oneself need only a credential");
    let ticketed: Vec<&str> = routes.iter().filter(|r| r.access == Access::ConsoleTicket).map(|r| r.path).collect();
    assert_eq!(ticketed, ["/v1/vms/{id}/console/ws"], "only the console websocket takes a ticket instead of a token");
    let service: Vec<&str> = routes.iter().filter(|r| matches!(r.access, Access::Service(_))).map(|r| r.path).collect();
    assert_eq!(
        service,
        ["/v1/federation/register", "/v1/federation/resolve", "/v1/federation/sync", "/v1/federation/objects/{id}"],
        "only the federation's own calls are signed service calls (never reachable with a user credential)"
    );
    for p in Permission::ALL {
        assert!(
            routes.iter().any(|r| r.access == Access::Permission(*p)),
            "catalog permission {} gates no route",
            p.name()
        );
    }
    println!("catalog permissions: {}", Permission::ALL.len());
}

#[tokio::test]
async fn bindings_take_effect_at_once_and_me_and_check_explain_them() {
    let app = TestApp::spawn().await;
    let (_tenant, _admin, t) = app.tenant_with_user("alpha").await;
    let ops = t.create_user(&user("ops"), &opts()).await.unwrap();
    let as_ops = app.login("ops", Some("alpha")).await;

    // No binding: a credential, but no permission.
    assert_eq!(as_ops.list_users("").await.unwrap_err().code(), Some("permission_denied"));
    assert!(as_ops.me().await.unwrap().permissions.is_empty());

    let viewer = app.bind(&t, &ops, "tenant-viewer").await;
    assert_eq!(viewer.scope, "tenant");
    assert!(as_ops.list_users("").await.is_ok(), "the binding works without a new login");
    let err = as_ops.create_user(&user("x"), &opts()).await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    let check = as_ops.authz_check(&AuthzCheck { permission: "user:list".into(), ..Default::default() }).await.unwrap();
    assert!(check.allowed);
    assert_eq!((check.binding_id, check.role.as_deref()), (Some(viewer.id), Some("tenant-viewer")));
    let check =
        as_ops.authz_check(&AuthzCheck { permission: "user:create".into(), ..Default::default() }).await.unwrap();
    assert!(!check.allowed && check.reason.is_some());
    let typo = as_ops.authz_check(&AuthzCheck { permission: "user:craete".into(), ..Default::default() }).await;
    let typo = typo.unwrap_err();
    assert_eq!(typo.code(), Some("unknown_permission"));
    assert!(format!("{typo}").contains("did you mean user:create"), "{typo}");

    // A custom role, bound: its permissions and nothing more.
    let creator = t.create_role(&role("user-creator", &["user:create", "user:list"]), &opts()).await.unwrap();
    t.create_role_binding(
        &CreateRoleBinding { role_id: creator.id, user_id: Some(ops.id), ..Default::default() },
        &opts(),
    )
    .await
    .unwrap();
    as_ops.create_user(&user("made-by-ops"), &opts()).await.unwrap();
    let me = as_ops.me().await.unwrap();
    assert!(
        me.permissions.contains(&"user:create".to_string()) && !me.permissions.contains(&"role:create".to_string())
    );

    // Unbinding takes effect at once too.
    t.delete_role_binding(viewer.id).await.unwrap();
    let bindings = t.list_role_bindings("").await.unwrap();
    let creator_binding = bindings.items.iter().find(|b| b.role_id == creator.id).unwrap();
    t.delete_role_binding(creator_binding.id).await.unwrap();
    assert_eq!(as_ops.list_users("").await.unwrap_err().status(), Some(403));

    // Role and binding changes are audited with before and after.
    let events = t.list_audit_events("action=role_binding.delete").await.unwrap();
    assert_eq!(events.items.len(), 2);
    assert!(events.items[0].details["before"]["id"].is_string());
    let created = t.list_audit_events("action=role.create").await.unwrap();
    assert_eq!(created.items[0].details["after"]["name"], "user-creator");
    app.stop().await;
}

#[tokio::test]
async fn tenants_see_tenant_roles_only_and_built_in_roles_are_read_only() {
    let app = TestApp::spawn().await;
    let (_tenant, _admin, t) = app.tenant_with_user("alpha").await;
    let roles = t.list_roles("").await.unwrap();
    let names: Vec<&str> = roles.items.iter().map(|r| r.name.as_str()).collect();
    for expected in ["tenant-admin", "tenant-operator", "tenant-viewer", "auditor", "cluster-admin", "cluster-operator"]
    {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }
    assert!(names.iter().all(|n| !n.starts_with("provider-")), "tenants see provider roles: {names:?}");
    let staff_roles = app.admin.list_roles("").await.unwrap();
    assert!(staff_roles.items.iter().any(|r| r.name == "provider-admin"));
    let viewer = roles.items.iter().find(|r| r.name == "tenant-viewer").unwrap();
    assert!(viewer.permissions.contains(&"user:list".to_string()));
    assert!(!viewer.permissions.iter().any(|p| p.starts_with("tenant:create")));
    app.stop().await;
}

/// Each attempt must be refused with the given status and code, and write nothing.
#[tokio::test]
async fn escalation_attempts_are_refused_and_write_nothing() {
    let app = TestApp::spawn().await;
    let (alpha, alpha_admin, a) = app.tenant_with_user("alpha").await;
    let (bravo, bravo_admin, b) = app.tenant_with_user("bravo").await;
    let bravo_role = b.create_role(&role("bravo-ops", &["user:list"]), &opts()).await.unwrap();
    let alpha_role = a.create_role(&role("alpha-reader", &["user:list"]), &opts()).await.unwrap();
    let tenant_admin = basalt_server::authz::builtin_role_named("tenant-admin").unwrap().id;
    let provider_admin = basalt_server::authz::builtin_role_named("provider-admin").unwrap().id;
    let bind = |role_id, user_id| CreateRoleBinding { role_id, user_id: Some(user_id), ..Default::default() };

    // An operator; a delegate who may bind roles but holds little; one who may edit roles.
    let op = a.create_user(&user("op"), &opts()).await.unwrap();
    app.bind(&a, &op, "tenant-operator").await;
    let binder_role = a
        .create_role(&role("binder", &["role_binding:create", "role:read", "user:read", "user:list"]), &opts())
        .await
        .unwrap();
    let binder = a.create_user(&user("binder"), &opts()).await.unwrap();
    a.create_role_binding(&bind(binder_role.id, binder.id), &opts()).await.unwrap();
    let editor_role = a.create_role(&role("editor", &["role:update", "role:read"]), &opts()).await.unwrap();
    let editor = a.create_user(&user("editor"), &opts()).await.unwrap();
    a.create_role_binding(&bind(editor_role.id, editor.id), &opts()).await.unwrap();
    a.create_role_binding(&bind(alpha_role.id, op.id), &opts()).await.unwrap();
    let (as_op, as_binder, as_editor) = (
        app.login("op", Some("alpha")).await,
        app.login("binder", Some("alpha")).await,
        app.login("editor", Some("alpha")).await,
    );
    let staff_in_alpha = app.admin_in(&alpha).await;
    let admin_binding =
        a.list_role_bindings("").await.unwrap().items.into_iter().find(|x| x.user_id == Some(alpha_admin.id)).unwrap();

    let mut conn = app.db.admin().await;
    let no_audit =
        |f: Vec<(String, i64, String)>| f.into_iter().filter(|(t, _, _)| t != "audit_events").collect::<Vec<_>>();
    let before = no_audit(common::db_fingerprint(&mut conn).await);

    let add_delete =
        UpdateRole { permissions: Some(vec!["user:list".into(), "user:delete".into()]), ..Default::default() };
    let attempts: Vec<(&str, Result<(), ClientError>, u16, &str)> = vec![
        (
            "operator binds itself tenant-admin",
            as_op.create_role_binding(&bind(tenant_admin, op.id), &opts()).await.map(drop),
            403,
            "permission_denied",
        ),
        (
            "operator composes a role",
            as_op.create_role(&role("mine", &["user:list"]), &opts()).await.map(drop),
            403,
            "permission_denied",
        ),
        (
            "delegate binds a role stronger than itself",
            as_binder.create_role_binding(&bind(tenant_admin, binder.id), &opts()).await.map(drop),
            403,
            "escalation_refused",
        ),
        (
            "editor adds a permission it lacks to a role",
            as_editor.update_role(alpha_role.id, &add_delete, &opts()).await.map(drop),
            403,
            "escalation_refused",
        ),
        (
            "tenant role with a system permission",
            a.create_role(&role("evil", &["tenant:create"]), &opts()).await.map(drop),
            422,
            "permission_not_grantable",
        ),
        (
            "tenant role with an unknown permission",
            a.create_role(&role("typo", &["user:craete"]), &opts()).await.map(drop),
            422,
            "unknown_permission",
        ),
        (
            "bind the provider-admin role in a tenant",
            a.create_role_binding(&bind(provider_admin, op.id), &opts()).await.map(drop),
            404,
            "not_found",
        ),
        (
            "bind another tenant's role",
            a.create_role_binding(&bind(bravo_role.id, op.id), &opts()).await.map(drop),
            404,
            "not_found",
        ),
        (
            "bind another tenant's user",
            a.create_role_binding(&bind(alpha_role.id, bravo_admin.id), &opts()).await.map(drop),
            404,
            "not_found",
        ),
        (
            "bind naming another tenant",
            a.create_role_binding(
                &CreateRoleBinding { tenant_id: Some(bravo.id), ..bind(alpha_role.id, op.id) },
                &opts(),
            )
            .await
            .map(drop),
            422,
            "tenant_mismatch",
        ),
        (
            "edit a built-in role",
            a.update_role(
                tenant_admin,
                &UpdateRole { description: Some("mine now".into()), ..Default::default() },
                &opts(),
            )
            .await
            .map(drop),
            403,
            "forbidden",
        ),
        ("delete a built-in role", a.delete_role(tenant_admin).await, 403, "forbidden"),
        ("delete a role still bound", a.delete_role(alpha_role.id).await, 409, "role_in_use"),
        ("remove the last tenant admin binding", a.delete_role_binding(admin_binding.id).await, 409, "last_admin"),
        ("delete the last tenant admin", staff_in_alpha.delete_user(alpha_admin.id).await, 409, "last_admin"),
        (
            "bind at a cluster that does not exist",
            a.create_role_binding(
                &CreateRoleBinding { cluster_id: Some(uuid::Uuid::now_v7()), ..bind(alpha_role.id, op.id) },
                &opts(),
            )
            .await
            .map(drop),
            422,
            "invalid_reference",
        ),
        (
            "staff switched in binds another tenant's user",
            staff_in_alpha.create_role_binding(&bind(alpha_role.id, bravo_admin.id), &opts()).await.map(drop),
            404,
            "not_found",
        ),
    ];
    let after = no_audit(common::db_fingerprint(&mut conn).await);
    app.stop().await;
    let failures: Vec<String> = attempts
        .iter()
        .filter_map(|(name, result, status, code)| match result {
            Ok(()) => Some(format!("{name}: succeeded")),
            Err(e) if e.status() == Some(*status) && e.code() == Some(*code) => None,
            Err(e) => Some(format!("{name}: {e} (want {status} {code})")),
        })
        .collect();
    assert!(attempts.len() >= 10);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(before, after, "a refused attempt wrote something");
}

#[test]
fn docs_rbac_md_lists_the_current_catalog() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/rbac.md")).expect("docs/rbac.md");
    assert!(
        doc.ends_with(&basalt_server::authz::catalog_markdown()),
        "docs/rbac.md is stale: regenerate its last section with `basalt-server permissions --markdown`"
    );
}

/// The authorization matrix: every built-in role × every non-public route, as a
/// truth table in `tests/golden/authz_matrix.txt`. A request passes the check when
/// it answers anything but 403 `permission_denied` (a 400 or 404 after the check
/// still means the role may call the route). A policy change shows up as a diff;
/// regenerate with `BASALT_UPDATE_GOLDEN=1 cargo test -p basalt-server --test rbac`.
#[tokio::test]
async fn the_authorization_matrix_matches_the_golden_file() {
    let app = TestApp::spawn().await;
    let (tenant, _admin, t) = app.tenant_with_user("alpha").await;
    let staff_roles = ["provider-admin", "provider-operator", "provider-auditor"];
    let tenant_roles = ["tenant-admin", "tenant-operator", "tenant-viewer", "auditor"];
    let mut callers: Vec<(&str, String)> = Vec::new();
    for (i, role) in staff_roles.iter().enumerate() {
        let name = format!("staff{i}");
        let u = app.admin.create_user(&user(&name), &opts()).await.unwrap();
        app.bind(&app.admin, &u, role).await;
        callers.push((role, app.login(&name, None).await.token().unwrap().to_string()));
    }
    for (i, role) in tenant_roles.iter().enumerate() {
        let name = format!("member{i}");
        let u = t.create_user(&user(&name), &opts()).await.unwrap();
        app.bind(&t, &u, role).await;
        callers.push((role, app.login(&name, Some("alpha")).await.token().unwrap().to_string()));
    }
    // Cluster roles, bound on a cluster alpha holds a quota on.
    let cluster: Cluster = app
        .admin
        .post_at(
            "/v1/clusters",
            &CreateCluster { name: "c1".into(), hosts: vec!["test:///default".into()], ..Default::default() },
            &opts(),
        )
        .await
        .unwrap();
    let quota = CreateQuota {
        tenant_id: tenant.id,
        cluster_id: cluster.id,
        vcpus: 4,
        memory_mib: 1024,
        max_vms: 2,
        disk_gib: None,
    };
    let _: Quota = app.admin.post_at("/v1/quotas", &quota, &opts()).await.unwrap();
    for (i, role) in ["cluster-admin", "cluster-operator"].iter().enumerate() {
        let name = format!("delegate{i}");
        let u = t.create_user(&user(&name), &opts()).await.unwrap();
        let role_id = basalt_server::authz::builtin_role_named(role).unwrap().id;
        let bind =
            CreateRoleBinding { role_id, user_id: Some(u.id), cluster_id: Some(cluster.id), ..Default::default() };
        t.create_role_binding(&bind, &opts()).await.unwrap();
        callers.push((role, app.login(&name, Some("alpha")).await.token().unwrap().to_string()));
    }

    let http = app.http();
    let mut table = String::from(
        "# Authorization matrix (generated by server/tests/rbac.rs): A = passes the permission check,\n\
         # - = 403 permission_denied. Staff act at system scope; members inside tenant `alpha`;\n\
         # cluster roles are bound on one cluster of `alpha` (objects elsewhere are then 404 to them).\n",
    );
    table.push_str(&format!("{:<44}", "# route"));
    for (role, _) in &callers {
        table.push_str(&format!(" {role:>17}"));
    }
    table.push('\n');
    let checked = |a: &Access| matches!(a, Access::Permission(_) | Access::Authenticated);
    for r in basalt_server::api::routes().into_iter().filter(|r| checked(&r.access)) {
        let path = r
            .path
            .replace("{id}", &uuid::Uuid::now_v7().to_string())
            .replace("{region_id}", &uuid::Uuid::now_v7().to_string())
            .replace("{host_id}", &uuid::Uuid::now_v7().to_string())
            .replace("{user_id}", &uuid::Uuid::now_v7().to_string())
            .replace("{token_id}", &uuid::Uuid::now_v7().to_string())
            .replace("{session_id}", &uuid::Uuid::now_v7().to_string())
            .replace("{interface_id}", &uuid::Uuid::now_v7().to_string());
        table.push_str(&format!("{:<44}", format!("{} {}", r.method, r.path)));
        for (_, token) in &callers {
            let body = if r.path == "/v1/auth/switch-tenant" {
                format!("{{\"tenant\":\"{}\"}}", tenant.name)
            } else {
                "{}".into()
            };
            let resp = http
                .request(r.method.clone(), format!("{}{}", app.endpoint, path))
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let code =
                resp.json::<serde_json::Value>().await.ok().and_then(|v| v["error"]["code"].as_str().map(String::from));
            let denied = status == 403 && code.as_deref() == Some("permission_denied");
            table.push_str(&format!(" {:>17}", if denied { "-" } else { "A" }));
        }
        table.push('\n');
    }
    app.stop().await;
    let golden = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/authz_matrix.txt");
    if std::env::var_os("BASALT_UPDATE_GOLDEN").is_some() {
        std::fs::write(golden, &table).unwrap();
    }
    let expected = std::fs::read_to_string(golden).unwrap_or_default();
    assert!(
        expected == table,
        "the authorization matrix changed; review and regenerate with BASALT_UPDATE_GOLDEN=1:\n{table}"
    );
}

/// The delegation scenario: the provider admin creates tenants A and B
/// and clusters X and Y, gives A quota on both, and binds A's user `ops` as
/// cluster-admin on X only. `ops` creates, powers and migrates VMs on X; gets 404
/// for Y and for everything of B; cannot list system objects; cannot grant itself more.
#[tokio::test]
async fn delegation_a_cluster_admin_on_one_cluster() {
    let app = TestApp::spawn().await;
    let cluster =
        |name: &str, host: &str| CreateCluster { name: name.into(), hosts: vec![host.into()], ..Default::default() };
    let x: Cluster = app.admin.post_at("/v1/clusters", &cluster("x", "test:///default?name=x"), &opts()).await.unwrap();
    let y: Cluster = app.admin.post_at("/v1/clusters", &cluster("y", "test:///default?name=y"), &opts()).await.unwrap();
    let (a, _, a_admin) = app.tenant_with_user("tenant-a").await;
    let (b, _, b_admin) = app.tenant_with_user("tenant-b").await;
    for (tenant, c) in [(&a, &x), (&a, &y), (&b, &x)] {
        let q = CreateQuota {
            tenant_id: tenant.id,
            cluster_id: c.id,
            vcpus: 8,
            memory_mib: 4096,
            max_vms: 4,
            disk_gib: None,
        };
        let _: Quota = app.admin.post_at("/v1/quotas", &q, &opts()).await.unwrap();
    }
    let template: Template = app
        .admin
        .post_at(
            "/v1/templates",
            &CreateTemplate { name: "tiny".into(), vcpus: 1, memory_mib: 128, ..Default::default() },
            &opts(),
        )
        .await
        .unwrap();
    let vm = |name: &str, c: &Cluster| CreateVm {
        name: name.into(),
        cluster_id: c.id,
        template_id: template.id,
        ..Default::default()
    };
    let wait = |client: Client, op: Operation| async move {
        let op = client.wait_operation(op.id, std::time::Duration::from_secs(20)).await.unwrap();
        assert!(op.status.is_done());
        op
    };
    let on_y: Operation = a_admin.post_at("/v1/vms", &vm("on-y", &y), &opts()).await.unwrap();
    wait(a_admin.clone(), on_y.clone()).await;
    let b_vm: Operation = b_admin.post_at("/v1/vms", &vm("b-vm", &x), &opts()).await.unwrap();
    wait(b_admin.clone(), b_vm.clone()).await;

    let ops_user = a_admin.create_user(&user("ops"), &opts()).await.unwrap();
    let cluster_admin = basalt_server::authz::builtin_role_named("cluster-admin").unwrap().id;
    let bind = CreateRoleBinding {
        role_id: cluster_admin,
        user_id: Some(ops_user.id),
        cluster_id: Some(x.id),
        ..Default::default()
    };
    a_admin.create_role_binding(&bind, &opts()).await.unwrap();
    let ops = app.login("ops", Some("tenant-a")).await;

    // On X: create, power, migrate (the test driver then fails the migration, but
    // the permission holds), delete.
    let made: Operation = ops.post_at("/v1/vms", &vm("on-x", &x), &opts()).await.expect("create on X");
    let id = wait(ops.clone(), made).await.target_id;
    for action in ["stop", "start", "migrate"] {
        let op: Operation =
            ops.post_at(&format!("/v1/vms/{id}/{action}"), &serde_json::json!({}), &opts()).await.expect(action);
        wait(ops.clone(), op).await;
    }
    // Y and B do not exist for ops.
    let not_found = |r: Result<serde_json::Value, ClientError>| r.unwrap_err().status() == Some(404);
    assert!(not_found(ops.get_at(&format!("/v1/clusters/{}", y.id)).await), "Y's cluster is visible");
    assert!(not_found(ops.get_at(&format!("/v1/vms/{}", on_y.target_id)).await), "a VM on Y is visible");
    assert!(not_found(ops.get_at(&format!("/v1/vms/{}", b_vm.target_id)).await), "B's VM is visible");
    assert!(not_found(ops.get_at(&format!("/v1/operations/{}", b_vm.id)).await), "B's operation is visible");
    let e = ops.post_at::<_, Operation>("/v1/vms", &vm("on-y-too", &y), &opts()).await.unwrap_err();
    assert_eq!(e.status(), Some(422), "ops created a VM on Y");
    assert!(not_found(ops.get_at(&format!("/v1/operations/{}", on_y.id)).await), "an operation on Y is visible");
    let seen: Page<Operation> = ops.get_at("/v1/operations").await.unwrap();
    assert!(seen.items.iter().all(|o| o.target_id == id), "ops sees operations of other clusters");
    let listed: Page<Vm> = ops.get_at("/v1/vms").await.unwrap();
    assert_eq!(listed.items.iter().map(|v| v.id).collect::<Vec<_>>(), vec![id]);
    // No system objects.
    for path in ["/v1/tenants", "/v1/users", "/v1/role-bindings", "/v1/audit-events"] {
        let e = ops.get_at::<serde_json::Value>(path).await.unwrap_err();
        assert_eq!(e.status(), Some(403), "{path}");
    }
    let e = ops.get_at::<serde_json::Value>(&format!("/v1/clusters/{}/hosts", x.id)).await.unwrap_err();
    assert_eq!(e.status(), Some(403));
    // No more power for itself: not tenant-admin, not even its own cluster-admin again.
    let tenant_admin = basalt_server::authz::builtin_role_named("tenant-admin").unwrap().id;
    for role in [tenant_admin, cluster_admin] {
        let e = ops
            .create_role_binding(
                &CreateRoleBinding { role_id: role, user_id: Some(ops_user.id), ..Default::default() },
                &opts(),
            )
            .await
            .unwrap_err();
        assert_eq!(e.status(), Some(403));
    }
    let e = ops.create_role(&role("mine", &["vm:create"]), &opts()).await.unwrap_err();
    assert_eq!(e.status(), Some(403));
    app.stop().await;
}

/// Groups: a role bound to a group is held by its members, from the next
/// request; leaving the group (or the group going) takes it away. Adding a
/// member is a grant: refused to whoever lacks a permission the group's roles
/// hold, with nothing written. Groups live inside tenants only.
#[tokio::test]
async fn a_role_bound_to_a_group_is_held_by_its_members_only() {
    let app = TestApp::spawn().await;
    let (alpha, _, a) = app.tenant_with_user("alpha").await;
    let (_beta, _, b) = app.tenant_with_user("beta").await;
    let carol = a.create_user(&user("carol"), &opts()).await.unwrap();
    let as_carol = app.login("carol", Some("alpha")).await;
    let holds = |client: &Client, p: &'static str| {
        let client = client.clone();
        async move { client.me().await.unwrap().permissions.iter().any(|x| x == p) }
    };
    assert!(!holds(&as_carol, "vm:create").await);

    let ops: Group =
        a.post_at("/v1/groups", &CreateGroup { name: "ops".into(), ..Default::default() }, &opts()).await.unwrap();
    let operator = basalt_server::authz::builtin_role_named("tenant-operator").unwrap().id;
    let binding: RoleBinding = a
        .post_at(
            "/v1/role-bindings",
            &CreateRoleBinding { role_id: operator, group_id: Some(ops.id), ..Default::default() },
            &opts(),
        )
        .await
        .unwrap();
    assert_eq!((binding.user_id, binding.group_id, binding.scope.as_str()), (None, Some(ops.id), "tenant"));
    // PUT answers 204 with no body: plain HTTP, as curl would.
    let put = |client: &Client, path: String| {
        let req = app.http().put(format!("{}{}", app.endpoint, path)).bearer_auth(client.token().unwrap_or_default());
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let code =
                resp.json::<serde_json::Value>().await.ok().and_then(|v| v["error"]["code"].as_str().map(String::from));
            (status, code)
        }
    };
    let member = format!("/v1/groups/{}/members/{}", ops.id, carol.id);
    assert_eq!(put(&a, member.clone()).await, (204, None));
    let members: Vec<GroupMember> = a.get_at(&format!("/v1/groups/{}/members", ops.id)).await.unwrap();
    assert_eq!(members.iter().map(|m| m.username.as_str()).collect::<Vec<_>>(), ["carol"]);
    assert!(holds(&as_carol, "vm:create").await, "a member holds the group's role");
    assert!(!holds(&as_carol, "user:create").await, "and only that role");

    // Escalation through a group: a user who may add members but holds little.
    let adder_role =
        a.create_role(&role("adder", &["group_member:add", "group:read", "user:read"]), &opts()).await.unwrap();
    let dave = a.create_user(&user("dave"), &opts()).await.unwrap();
    a.create_role_binding(
        &CreateRoleBinding { role_id: adder_role.id, user_id: Some(dave.id), ..Default::default() },
        &opts(),
    )
    .await
    .unwrap();
    let as_dave = app.login("dave", Some("alpha")).await;
    let joined = put(&as_dave, format!("/v1/groups/{}/members/{}", ops.id, dave.id)).await;
    assert_eq!(joined, (403, Some("escalation_refused".into())), "joining a stronger group");
    let members: Vec<GroupMember> = a.get_at(&format!("/v1/groups/{}/members", ops.id)).await.unwrap();
    assert_eq!(members.len(), 1, "nothing was written");

    // Another tenant's group is not there; groups do not exist at system scope.
    let e = b.get_at::<Group>(&format!("/v1/groups/{}", ops.id)).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    let e = b
        .post_at::<_, RoleBinding>(
            "/v1/role-bindings",
            &CreateRoleBinding { role_id: operator, group_id: Some(ops.id), ..Default::default() },
            &opts(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404), "binding another tenant's group");
    let e = app
        .admin
        .post_at::<_, Group>("/v1/groups", &CreateGroup { name: "staff".into(), ..Default::default() }, &opts())
        .await
        .unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(403), Some("permission_denied")), "groups are tenants' only");
    let e = a
        .post_at::<_, RoleBinding>(
            "/v1/role-bindings",
            &CreateRoleBinding { role_id: operator, ..Default::default() },
            &opts(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400), "neither a user nor a group");

    // Leaving the group takes the role away; so does deleting the group.
    a.delete_at(&member).await.unwrap();
    assert!(!holds(&as_carol, "vm:create").await, "a former member holds nothing");
    assert_eq!(put(&a, member.clone()).await, (204, None));
    assert!(holds(&as_carol, "vm:create").await);
    a.delete_at(&format!("/v1/groups/{}", ops.id)).await.unwrap();
    assert!(!holds(&as_carol, "vm:create").await, "the group's bindings went with it");
    let e = a.get_role_binding(binding.id).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    let _ = alpha;
    app.stop().await;
}
