//! The isolation attack suite: a seeded random walk of API calls against one
//! real server (and its real Postgres), checking the isolation invariant from
//! the outside after every call.
//!
//! # The world
//! Provider staff create two clusters (test-driver hosts), a public template and
//! three tenants. Each tenant gets a quota on both clusters and one user at each
//! tenant built-in role (`tenant-admin`, `tenant-operator`, `tenant-viewer`,
//! `auditor`) plus two cluster delegates (`cluster-admin` on one cluster,
//! `cluster-operator` on the other); the provider admin acts at system scope and,
//! switched in, inside each tenant.
//!
//! # The walk
//! Every step picks a weighted action from a seeded RNG (`StdRng`), either
//! legitimate work by a random caller of a random tenant, whose 403s are answers
//! like any other: create/read/update/delete of users, roles, role bindings,
//! tokens and templates; VM create, power, migrate and delete; snapshots; console
//! tickets; paged lists (`limit=2`, following cursors); audit reads; tenant
//! switches (also staff hopping from one tenant into another); lists of the
//! newer families ([`EXTRAS`]: groups, service accounts, invitations, quota
//! requests, networks, volumes, placement groups, security groups, floating IPs
//! from a provider pool per cluster, paused snapshot schedules, disabled
//! webhooks), of which every
//! tenant holds one object (per cluster where they live on one) made at setup.
//! Or an attack:
//! * another tenant's ids (harvested from that tenant's own answers: creations,
//!   operations, its audit trail's events, targets and actors) in paths, in
//!   bodies (`tenant_id`, `user_id`, `role_id`, `template_id`, `vm_id`, a token's
//!   `tenant`) and in query strings (`target_id`, unknown filters);
//! * another tenant's cursors; random UUIDs;
//! * a tenant switch, an API token, a login naming another tenant (and a burst of
//!   failed logins that reaches the login throttle);
//! * console websocket tickets: one's own on another tenant's VM, or forged;
//! * cluster delegates reaching for their own tenant's other cluster (its VMs,
//!   snapshots, operations, quota, the cluster itself, a VM created there, and
//!   its networks, volumes, placement groups, quota requests, security groups,
//!   floating IPs and snapshot schedules);
//! * every route acting on a newer family's object, with another tenant's id:
//!   read, update, delete and their actions (attach a foreign volume to one's own
//!   VM, plug one's own VM into a foreign network, attach a foreign security
//!   group or floating IP to it, add oneself to a foreign group, issue a token
//!   for a foreign service account, run a foreign snapshot schedule, rotate
//!   the secret of or ping a foreign webhook, approve,
//!   cancel or revoke foreign requests and invitations).
//!
//! VM work is a small share; operations run in the background and a VM that is
//! still busy answers 409, which is a legitimate answer.
//!
//! # The invariant, checked after every call
//! * **No leak**: a registry records who owns every id and every unique name
//!   (all names carry a `zz` token): a tenant, and for VMs and what hangs on them
//!   also a cluster; clusters; the system; provider internals. Each answer to a
//!   tenant-scoped caller is scanned whole (UUIDs, simple-form UUIDs, names,
//!   decoded cursors, every `tenant_id` field, and for delegates every
//!   `cluster_id`) for anything owned elsewhere, and for provider internals
//!   (libvirt URIs, host ids, provider cluster names, provider roles). The only
//!   echo allowed is the path of a refused request in the caller's own audit
//!   trail, and only of what that tenant itself sent.
//! * **No oracle**: an attack never answers 2xx, only 400/401/403/404/422 (429:
//!   the login throttle), and answers exactly what the same request answers with
//!   a random UUID or name in place of the foreign one (status, code, message).
//!   Login attempts are paired with one non-existent "ghost" tenant per victim, so
//!   a stateful throttle sees the same history on both sides.
//! * **No change**: the victim tenant's rows (a fingerprint taken through an
//!   administrative connection, bypassing RLS, with the columns background
//!   operations move masked) are the same before and after each attack. Every
//!   1,000 calls and at the end, each tenant's users, roles, bindings,
//!   templates, VMs, snapshots, quotas, every member's tokens and the objects of
//!   the newer families, as the tenant itself lists them, equal the model the
//!   walk keeps.
//! * **No 5xx**, ever; read-only roles (`tenant-viewer`, `auditor`) never change
//!   anything.
//!
//! The report at the end prints the seed, the calls (setup, legitimate, attack,
//! check), leaks and violations by kind, the answers attacks got, and counts and
//! time per action.
//!
//! # Replaying
//! The seed comes from `BASALT_ATTACK_SEED` (random otherwise) and is printed
//! first; every failure names the seed and the call number:
//! `BASALT_ATTACK_SEED=<seed> cargo test -p basalt-server --test attack_walk -- --nocapture`.
//! `BASALT_ATTACK_CALLS` changes the length (default: 10,000 calls after setup).
//! A replay makes the same choices; only the timing of background VM operations
//! can differ.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Debug;
use std::time::{Duration, Instant};

use basalt_client::{ApiToken, Quota, Role, RoleBinding, Snapshot, Template, User, Vm};
use base64::Engine;
use common::{TestApp, PASSWORD};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgConnection;
use uuid::Uuid;

const TENANTS: usize = 3;
const CLUSTERS: usize = 2;
const DEFAULT_CALLS: u64 = 10_000;
const CHECKPOINT_EVERY: u64 = 1_000;
const WRONG_PASSWORD: &str = "wrong horse battery staple";
/// Statuses an attack may answer: refused before or at the lookup (429: a login
/// throttle, which must treat a missing tenant alike).
const REFUSALS: [u16; 6] = [400, 401, 403, 404, 422, 429];

/// 409 `vm_busy`: the VM in the path is the caller's own and has an operation
/// running, answered before the foreign id in the path is looked at (a foreign
/// VM is a 404 first). Its twin may see the operation finished: not an oracle.
fn own_vm_busy(r: &Resp) -> bool {
    r.status == 409 && r.code() == "vm_busy"
}

/// Columns that background operations change on their own (masked in the
/// fingerprint); rows they add or remove come from creates and deletes, which
/// the walk waits for before fingerprinting.
const VOLATILE: &[(&str, &str)] = &[
    ("vms", "state"),
    ("vms", "operation_id"),
    ("vms", "version"),
    ("vms", "updated_at"),
    ("quotas", "vcpus_used"),
    ("quotas", "memory_used_mib"),
    ("quotas", "vms_used"),
    ("quotas", "updated_at"),
    ("operations", "status"),
    ("operations", "progress"),
    ("operations", "error"),
    ("operations", "updated_at"),
    ("operations", "finished_at"),
    ("api_tokens", "last_used_at"),
];

/// Permissions custom roles are composed from (all grantable in a tenant).
const ROLE_PERMISSIONS: &[&str] = &[
    "user:list",
    "user:read",
    "role:list",
    "role:read",
    "role_binding:list",
    "template:list",
    "template:read",
    "vm:list",
    "vm:read",
    "vm:power",
    "operation:list",
    "operation:read",
    "audit:read",
    "quota:list",
    "cluster:list",
    "snapshot:list",
];

/// The actions of the walk and their weights. Attacks are about half.
const ACTIONS: &[(&str, u32)] = &[
    ("me", 8),
    ("tenant.get", 8),
    ("user.list", 25),
    ("user.get", 20),
    ("user.create", 12),
    ("user.update", 12),
    ("user.delete", 6),
    ("role.list", 12),
    ("role.get", 12),
    ("role.create", 8),
    ("role.update", 8),
    ("role.delete", 5),
    ("binding.list", 12),
    ("binding.get", 10),
    ("binding.create", 8),
    ("binding.delete", 5),
    ("token.list", 8),
    ("token.create", 6),
    ("token.revoke", 4),
    ("template.list", 12),
    ("template.get", 10),
    ("template.create", 6),
    ("template.update", 6),
    ("template.delete", 3),
    ("vm.list", 15),
    ("vm.get", 15),
    ("vm.create", 4),
    ("vm.power", 6),
    ("vm.migrate", 2),
    ("vm.delete", 3),
    ("snapshot.list", 6),
    ("snapshot.create", 3),
    ("snapshot.revert", 2),
    ("snapshot.delete", 2),
    ("console.ticket", 3),
    ("op.list", 10),
    ("op.get", 10),
    ("audit.list", 20),
    ("quota.list", 8),
    ("cluster.list", 8),
    ("authz.check", 6),
    ("switch.own", 4),
    ("switch.staff", 3),
    ("system.read", 5),
    ("extra.list", 15),
    ("atk.path", 150),
    ("atk.body", 60),
    ("atk.query", 25),
    ("atk.cursor", 20),
    ("atk.switch", 15),
    ("atk.login", 2),
    ("atk.delegate", 40),
    ("atk.random", 40),
    ("atk.console", 10),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Admin,
    Operator,
    Viewer,
    Auditor,
    ClusterAdmin,
    ClusterOperator,
    Staff,
}

/// The tenant members made at setup, with the built-in role each holds.
const MEMBERS: [(Kind, &str); 6] = [
    (Kind::Admin, "tenant-admin"),
    (Kind::Operator, "tenant-operator"),
    (Kind::Viewer, "tenant-viewer"),
    (Kind::Auditor, "auditor"),
    (Kind::ClusterAdmin, "cluster-admin"),
    (Kind::ClusterOperator, "cluster-operator"),
];

/// Who owns an id or a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    /// Shared with every tenant (built-in roles, the public template, staff).
    System,
    /// Never shown to a tenant (hosts, provider cluster names).
    Internal,
    /// A cluster: every tenant here holds a quota on both, delegates see theirs.
    Cluster(usize),
    /// A tenant's object, bound to one cluster when it lives on one.
    Tenant(usize, Option<usize>),
}

/// Whose eyes an answer is for: a tenant context (and a delegate's cluster), or
/// the system scope (`tenant: None`, not scanned: staff see the estate).
#[derive(Clone, Copy, Debug)]
struct Viewer {
    tenant: Option<usize>,
    cluster: Option<usize>,
    /// Provider staff switched into the tenant: they may see their own
    /// (provider) roles, nothing of another tenant.
    staff: bool,
}

const SYSTEM: Viewer = Viewer { tenant: None, cluster: None, staff: true };

fn foreign(owner: Owner, viewer: Viewer) -> bool {
    match (viewer.tenant, owner) {
        (None, _) => false,
        (Some(_), Owner::System) => false,
        (Some(_), Owner::Internal) => true,
        (Some(_), Owner::Cluster(c)) => viewer.cluster.is_some_and(|d| d != c),
        (Some(t), Owner::Tenant(t2, c)) => t2 != t || matches!((viewer.cluster, c), (Some(d), Some(c)) if d != c),
    }
}

struct Caller {
    label: String,
    tenant: Option<usize>,
    kind: Kind,
    cluster: Option<usize>,
    user_id: Uuid,
    username: String,
    token: String,
}

impl Caller {
    fn viewer(&self) -> Viewer {
        Viewer { tenant: self.tenant, cluster: self.cluster, staff: self.kind == Kind::Staff }
    }
}

#[derive(Clone, Copy)]
enum Who {
    Caller(usize),
    /// A caller's credential, scanned for another viewer.
    As(usize, Viewer),
    Anonymous(Viewer),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Setup,
    Legit,
    Attack,
    Check,
}

struct Resp {
    status: u16,
    text: String,
    json: Value,
}

impl Resp {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }

    fn uuid(&self, key: &str) -> Option<Uuid> {
        self.json[key].as_str().and_then(|s| Uuid::parse_str(s).ok())
    }

    fn items(&self) -> Vec<Value> {
        self.json["items"].as_array().cloned().unwrap_or_default()
    }
}

struct UserM {
    id: Uuid,
    username: String,
    email: Option<String>,
    disabled: bool,
    version: i64,
    alive: bool,
    /// Made by the walk (free to change); setup users are the callers.
    walk: bool,
}

struct RoleM {
    id: Uuid,
    name: String,
    description: String,
    permissions: Vec<String>,
    version: i64,
    alive: bool,
}

struct BindingM {
    id: Uuid,
    user: Option<Uuid>,
    role: Uuid,
    cluster: Option<Uuid>,
    alive: bool,
    walk: bool,
}

struct TemplateM {
    id: Uuid,
    name: String,
    vcpus: i32,
    memory_mib: i64,
    version: i64,
    alive: bool,
}

struct VmM {
    id: Uuid,
    name: String,
    cluster: usize,
    alive: bool,
}

struct SnapM {
    id: Uuid,
    vm: Uuid,
    name: String,
    cluster: usize,
    alive: bool,
}

struct TokenM {
    id: Uuid,
    caller: usize,
    name: String,
    revoked: bool,
}

/// One object of a newer family, made at setup (see [`EXTRAS`]).
struct ExtraM {
    kind: &'static str,
    id: Uuid,
    cluster: Option<usize>,
    /// The VM it hangs on, for kinds that go with their VM.
    vm: Option<Uuid>,
}

/// What a create body of a newer family may name: its registered name, its
/// tenant, its cluster (index and id) and the tenant's seeded VM there.
struct Seed<'a> {
    name: &'a str,
    t: usize,
    c: usize,
    cluster: Uuid,
    vm: Uuid,
}

/// What an attack route may use of the attacker's own tenant.
struct OwnRefs {
    vm: Option<Uuid>,
    user: Uuid,
}

type Route = (Method, String, Option<Value>);

/// The newer families the walk holds one object of in every tenant (one per
/// cluster where they live on a cluster): made at setup, attacked by id (in
/// paths and bodies, by other tenants and by delegates of the other cluster),
/// listed with cursors, and checked against the model at every checkpoint. The
/// walk never changes them itself, so any change is an attack that got through.
struct ExtraKind {
    kind: &'static str,
    collection: &'static str,
    on_cluster: bool,
    /// The create body.
    create: fn(&Seed) -> Value,
    /// Whether the object hangs on the seeded VM (and goes when it is deleted).
    on_vm: bool,
    /// Routes acting on the object `{X}` (`{X}` may also sit in a body).
    routes: fn(&OwnRefs) -> Vec<Route>,
}

fn object_routes(collection: &str, patch: Option<Value>, actions: &[(&str, Value)]) -> Vec<Route> {
    let one = format!("{collection}/{{X}}");
    let mut routes = vec![(Method::GET, one.clone(), None), (Method::DELETE, one.clone(), None)];
    routes.extend(patch.map(|body| (Method::PATCH, one.clone(), Some(body))));
    routes.extend(actions.iter().map(|(action, body)| (Method::POST, format!("{one}/{action}"), Some(body.clone()))));
    routes
}

const EXTRAS: &[ExtraKind] = &[
    ExtraKind {
        kind: "group",
        collection: "/v1/groups",
        on_cluster: false,
        create: |s| json!({ "name": s.name, "description": "seed" }),
        on_vm: false,
        routes: |own| {
            let mut r = object_routes("/v1/groups", Some(json!({ "description": "owned" })), &[]);
            r.push((Method::GET, "/v1/groups/{X}/members".into(), None));
            r.push((Method::PUT, format!("/v1/groups/{{X}}/members/{}", own.user), None));
            r
        },
    },
    ExtraKind {
        kind: "service_account",
        collection: "/v1/service-accounts",
        on_cluster: false,
        create: |s| json!({ "name": s.name }),
        on_vm: false,
        routes: |_| {
            let mut r = object_routes("/v1/service-accounts", Some(json!({ "disabled": true })), &[]);
            r.push((Method::GET, "/v1/service-accounts/{X}/tokens".into(), None));
            r.push((Method::POST, "/v1/service-accounts/{X}/tokens".into(), Some(json!({ "name": "owned" }))));
            r
        },
    },
    ExtraKind {
        kind: "invitation",
        collection: "/v1/invitations",
        on_cluster: false,
        create: |s| json!({ "email": format!("{}@example.com", s.name) }),
        on_vm: false,
        routes: |_| {
            vec![
                (Method::GET, "/v1/invitations/{X}".into(), None),
                (Method::POST, "/v1/invitations/{X}/revoke".into(), Some(json!({}))),
            ]
        },
    },
    ExtraKind {
        kind: "quota_request",
        collection: "/v1/quota-requests",
        on_cluster: true,
        create: |s| json!({ "cluster_id": s.cluster, "vcpus": 1, "memory_mib": 64, "max_vms": 1, "reason": s.name }),
        on_vm: false,
        routes: |_| {
            vec![
                (Method::GET, "/v1/quota-requests/{X}".into(), None),
                (Method::POST, "/v1/quota-requests/{X}/cancel".into(), Some(json!({}))),
                (Method::POST, "/v1/quota-requests/{X}/approve".into(), Some(json!({}))),
                (Method::POST, "/v1/quota-requests/{X}/reject".into(), Some(json!({ "reason": "owned" }))),
            ]
        },
    },
    ExtraKind {
        kind: "network",
        collection: "/v1/networks",
        on_cluster: true,
        create: |s| json!({ "cluster_id": s.cluster, "name": s.name, "cidr": format!("10.{}.{}.0/24", s.c, s.t) }),
        on_vm: false,
        routes: |own| {
            let mut r = object_routes("/v1/networks", Some(json!({ "description": "owned" })), &[]);
            if let Some(vm) = own.vm {
                r.push((Method::POST, format!("/v1/vms/{vm}/interfaces"), Some(json!({ "network_id": "{X}" }))));
            }
            r
        },
    },
    ExtraKind {
        kind: "volume",
        collection: "/v1/volumes",
        on_cluster: true,
        create: |s| json!({ "cluster_id": s.cluster, "name": s.name, "size_gib": 1 }),
        on_vm: false,
        routes: |own| {
            let attach = own.vm.map(|vm| ("attach", json!({ "vm_id": vm })));
            let actions: Vec<(&str, Value)> = attach.into_iter().chain([("detach", json!({}))]).collect();
            object_routes("/v1/volumes", Some(json!({ "description": "owned" })), &actions)
        },
    },
    ExtraKind {
        kind: "placement_group",
        collection: "/v1/placement-groups",
        on_cluster: true,
        create: |s| json!({ "cluster_id": s.cluster, "name": s.name }),
        on_vm: false,
        routes: |_| object_routes("/v1/placement-groups", Some(json!({ "description": "owned" })), &[]),
    },
    ExtraKind {
        kind: "security_group",
        collection: "/v1/security-groups",
        on_cluster: true,
        create: |s| json!({ "cluster_id": s.cluster, "name": s.name }),
        on_vm: false,
        routes: |own| {
            let rule =
                json!({ "direction": "ingress", "protocol": "tcp", "port_from": 22, "remote_cidr": "0.0.0.0/0" });
            let mut r = object_routes("/v1/security-groups", Some(json!({ "description": "owned" })), &[]);
            r.push((Method::GET, "/v1/security-groups/{X}/rules".into(), None));
            r.push((Method::POST, "/v1/security-groups/{X}/rules".into(), Some(rule)));
            if let Some(vm) = own.vm {
                r.push((
                    Method::POST,
                    format!("/v1/vms/{vm}/security-groups"),
                    Some(json!({ "security_group_id": "{X}" })),
                ));
            }
            r
        },
    },
    ExtraKind {
        kind: "floating_ip",
        collection: "/v1/floating-ips",
        on_cluster: true,
        create: |s| json!({ "cluster_id": s.cluster, "description": s.name }),
        on_vm: false,
        routes: |own| {
            let attach = own.vm.map(|vm| ("attach", json!({ "vm_id": vm })));
            let actions: Vec<(&str, Value)> = attach.into_iter().chain([("detach", json!({}))]).collect();
            object_routes("/v1/floating-ips", Some(json!({ "description": "owned" })), &actions)
        },
    },
    ExtraKind {
        kind: "snapshot_schedule",
        collection: "/v1/snapshot-schedules",
        on_cluster: true,
        // Paused: the schedule job must not add snapshots the walk's model does not know.
        create: |s| json!({ "vm_id": s.vm, "name": s.name, "interval_minutes": 60, "keep": 2, "enabled": false }),
        on_vm: true,
        routes: |_| {
            object_routes("/v1/snapshot-schedules", Some(json!({ "description": "owned" })), &[("run", json!({}))])
        },
    },
    ExtraKind {
        kind: "webhook",
        collection: "/v1/webhooks",
        on_cluster: false,
        // Disabled, at a public address (private ones are refused): nothing is
        // ever sent from the walk.
        create: |s| json!({ "url": "https://93.184.216.34/basalt", "events": ["vm.*"], "enabled": false, "description": s.name }),
        on_vm: false,
        routes: |_| {
            let actions = [("rotate-secret", json!({})), ("test", json!({}))];
            let mut r = object_routes("/v1/webhooks", Some(json!({ "description": "owned" })), &actions);
            r.push((Method::GET, "/v1/webhooks/{X}/deliveries".into(), None));
            r
        },
    },
];

fn extra_kind(kind: &str) -> Option<&'static ExtraKind> {
    EXTRAS.iter().find(|e| e.kind == kind)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PendingKind {
    Create,
    Delete,
}

struct TenantM {
    id: Uuid,
    name: String,
    /// Callers in this tenant: the staff switched in, then the six members.
    callers: Vec<usize>,
    users: Vec<UserM>,
    roles: Vec<RoleM>,
    bindings: Vec<BindingM>,
    templates: Vec<TemplateM>,
    vms: Vec<VmM>,
    snaps: Vec<SnapM>,
    tokens: Vec<TokenM>,
    extras: Vec<ExtraM>,
    ops: Vec<(Uuid, usize)>,
    quotas: Vec<(Uuid, usize)>,
    cursors: Vec<String>,
    /// Ids read from the tenant's own audit trail (events, targets, actors).
    audit_ids: Vec<Uuid>,
    harvested: HashSet<Uuid>,
    /// VM operations that add or remove rows when they finish.
    pending: Vec<(Uuid, Uuid, PendingKind)>,
    /// A tenant name that does not exist, standing in for this one in login twins.
    ghost: String,
    /// Console tickets issued to this tenant's callers (unused: the walk never
    /// opens a console), with their VM and when.
    tickets: Vec<(String, Uuid, Instant)>,
}

struct ClusterM {
    id: Uuid,
}

type Fp = BTreeMap<String, (i64, String)>;

/// Ids of one kind of a tenant's objects (with the VM of a snapshot).
type Pool = (&'static str, Vec<(Uuid, Option<Uuid>)>);

/// What an attack must answer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Never 2xx; a refusal, identical to the random twin's.
    Refused,
    /// Whatever the random twin answers (a filter that finds nothing).
    SameAsTwin,
    /// Any non-5xx answer without a leak (another tenant's cursor).
    Scan,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Twin {
    None,
    Uuid,
    /// A fresh random tenant-like name.
    Name,
    /// The victim's ghost: one non-existent tenant name per victim, so stateful
    /// answers (a login throttle) see the same history for both.
    Ghost,
}

/// A call on its way: what the checks of its answer need.
struct Sent {
    viewer: Viewer,
    method: Method,
    path: String,
    body_text: String,
}

async fn transport(rb: reqwest::RequestBuilder) -> Result<(u16, String), String> {
    let resp = rb.send().await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await.unwrap_or_default()))
}

struct Attack {
    who: Who,
    victim: usize,
    method: Method,
    /// `{X}` stands for the foreign value, in the path and in the body.
    path: String,
    body: Option<Value>,
    foreign: String,
    twin: Twin,
    expect: Expect,
    /// A delegate against its own tenant: the caller's audit trail moves.
    same_tenant: bool,
    headers: Vec<(&'static str, String)>,
}

struct Walk {
    endpoint: String,
    http: reqwest::Client,
    db: PgConnection,
    fp_sql: String,
    fp_cache: Vec<Option<Fp>>,
    rng: StdRng,
    seed: u64,
    step: u64,
    action: String,
    class: Class,
    calls: u64,
    calls_by_class: BTreeMap<&'static str, u64>,
    actions: BTreeMap<String, u64>,
    attacks: u64,
    legit: u64,
    leaks: u64,
    violations: Vec<String>,
    violation_kinds: BTreeMap<&'static str, u64>,
    callers: Vec<Caller>,
    tenants: Vec<TenantM>,
    clusters: Vec<ClusterM>,
    public_template: Uuid,
    registry: HashMap<String, Owner>,
    /// Per tenant: every id and name its callers sent (their audit trail may echo them).
    echo: Vec<HashSet<String>>,
    internal_strings: Vec<String>,
    /// While seeding: every action is the tenant admin's.
    forced: Option<usize>,
    /// Time in fingerprints, in waiting for operations, in HTTP.
    timing: [Duration; 3],
    fp_queries: u64,
    action_time: BTreeMap<String, Duration>,
    attack_outcomes: BTreeMap<String, u64>,
    legit_outcomes: BTreeMap<String, u64>,
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

fn looks_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { *c == b'-' } else { is_hex(*c) })
}

/// Every UUID (hyphenated or simple), and every `zz` name token, in `text`.
fn extract(text: &str, out: &mut Vec<String>) {
    let b = text.as_bytes();
    let n = b.len();
    let mut i = 0;
    while i < n {
        let boundary_before = i == 0 || !(is_hex(b[i - 1]) || b[i - 1] == b'-');
        if boundary_before && i + 36 <= n && looks_uuid(&b[i..i + 36]) && (i + 36 == n || !is_hex(b[i + 36])) {
            out.push(text[i..i + 36].to_string());
            i += 36;
            continue;
        }
        if boundary_before
            && i + 32 <= n
            && b[i..i + 32].iter().all(|c| is_hex(*c))
            && (i + 32 == n || !(is_hex(b[i + 32]) || b[i + 32] == b'-'))
        {
            if let Ok(u) = Uuid::try_parse(&text[i..i + 32]) {
                out.push(u.to_string());
            }
            i += 32;
            continue;
        }
        if b[i] == b'z' && i + 12 <= n && b[i + 1] == b'z' && b[i + 2..i + 12].iter().all(|c| is_hex(*c)) {
            out.push(text[i..i + 12].to_string());
            i += 12;
            continue;
        }
        i += 1;
    }
}

fn decode_cursor(c: &str) -> Option<String> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).ok()?;
    let text = String::from_utf8(raw).ok()?;
    Uuid::try_parse(text.strip_prefix("v1:")?).ok().map(|u| u.to_string())
}

fn diff<T: Ord + Debug>(what: String, api: BTreeSet<T>, model: BTreeSet<T>) -> Option<String> {
    if api == model {
        return None;
    }
    let only_api: Vec<&T> = api.difference(&model).collect();
    let only_model: Vec<&T> = model.difference(&api).collect();
    Some(format!("{what}: only in the API {only_api:?}; only in the model {only_model:?}"))
}

fn parse<T: serde::de::DeserializeOwned>(items: Vec<Value>) -> Vec<T> {
    items.into_iter().filter_map(|v| serde_json::from_value(v).ok()).collect()
}

impl Walk {
    // --- plumbing ----------------------------------------------------------

    fn violation(&mut self, kind: &'static str, msg: String) {
        let line =
            format!("seed {} call {} step {} action {}: {kind}: {msg}", self.seed, self.calls, self.step, self.action);
        eprintln!("VIOLATION {line}");
        *self.violation_kinds.entry(kind).or_default() += 1;
        self.violations.push(line);
    }

    /// A fresh unique name `<prefix>-zz<10 hex>`, registered to `owner`.
    fn name(&mut self, prefix: &str, owner: Owner) -> String {
        let n: u64 = self.rng.gen::<u64>() & 0xff_ffff_ffff;
        let key = format!("zz{n:010x}");
        self.registry.insert(key.clone(), owner);
        format!("{prefix}-{key}")
    }

    fn own(&mut self, id: impl ToString, owner: Owner) {
        self.registry.entry(id.to_string()).or_insert(owner);
    }

    /// Registers every id an answer to tenant `t` holds that nobody owns yet
    /// (request ids, audit event ids): from then on they are `t`'s.
    fn harvest(&mut self, t: usize, r: &Resp) {
        let mut toks = Vec::new();
        extract(&r.text, &mut toks);
        for tok in toks {
            self.registry.entry(tok).or_insert(Owner::Tenant(t, None));
        }
        if let Some(c) = r.json["next_cursor"].as_str() {
            self.tenants[t].cursors.push(c.to_string());
        }
    }

    async fn send(
        &mut self,
        who: Who,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, String)],
    ) -> Resp {
        let (sent, rb) = self.prepare(who, method, path, body, headers);
        let began = Instant::now();
        let answer = transport(rb).await;
        self.timing[2] += began.elapsed();
        self.finish(sent, answer)
    }

    /// Several calls at once (setup: argon2 makes user creation and login slow);
    /// bookkeeping and checks stay in order.
    async fn send_all(&mut self, calls: Vec<(Who, &str, Value)>) -> Vec<Resp> {
        let prepared: Vec<(Sent, reqwest::RequestBuilder)> =
            calls.iter().map(|(who, path, body)| self.prepare(*who, Method::POST, path, Some(body), &[])).collect();
        let (sent, builders): (Vec<Sent>, Vec<reqwest::RequestBuilder>) = prepared.into_iter().unzip();
        let began = Instant::now();
        let answers = futures_util::future::join_all(builders.into_iter().map(transport)).await;
        self.timing[2] += began.elapsed();
        sent.into_iter().zip(answers).map(|(s, a)| self.finish(s, a)).collect()
    }

    /// Counts the call, notes what the caller's tenant sent, and builds the request.
    fn prepare(
        &mut self,
        who: Who,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, String)],
    ) -> (Sent, reqwest::RequestBuilder) {
        self.calls += 1;
        let class = match self.class {
            Class::Setup => "setup",
            Class::Legit => "legitimate",
            Class::Attack => "attack",
            Class::Check => "check",
        };
        *self.calls_by_class.entry(class).or_default() += 1;
        match self.class {
            Class::Legit => self.legit += 1,
            Class::Attack => self.attacks += 1,
            _ => {}
        }
        let (token, viewer) = match who {
            Who::Caller(i) => (Some(self.callers[i].token.clone()), self.callers[i].viewer()),
            Who::As(i, v) => (Some(self.callers[i].token.clone()), v),
            Who::Anonymous(v) => (None, v),
        };
        let body_text = body.map(|b| b.to_string()).unwrap_or_default();
        if let Some(t) = viewer.tenant {
            let mut sent = Vec::new();
            extract(path, &mut sent);
            extract(&body_text, &mut sent);
            self.echo[t].extend(sent);
            self.fp_cache[t] = None;
        }
        let mut rb = self.http.request(method.clone(), format!("{}{}", self.endpoint, path));
        if let Some(tok) = token {
            rb = rb.bearer_auth(tok);
        }
        for (k, v) in headers {
            rb = rb.header(*k, v);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        (Sent { viewer, method, path: path.to_string(), body_text }, rb)
    }

    /// Checks an answer: no 5xx, nothing the viewer must not see.
    fn finish(&mut self, sent: Sent, answer: Result<(u16, String), String>) -> Resp {
        let Sent { viewer, method, path, body_text } = sent;
        let (status, text) = match answer {
            Ok(a) => a,
            Err(e) => {
                self.violation("transport", format!("{method} {path}: {e}"));
                return Resp { status: 0, text: String::new(), json: Value::Null };
            }
        };
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        let r = Resp { status, text, json };
        if status >= 500 {
            self.violation("server_error", format!("{method} {path} {body_text} answered {status}: {}", r.text));
        }
        let outcome = format!("{status} {}", r.code());
        match self.class {
            Class::Attack => *self.attack_outcomes.entry(outcome).or_default() += 1,
            Class::Legit => *self.legit_outcomes.entry(outcome).or_default() += 1,
            _ => {}
        }
        if viewer.tenant.is_some() {
            let findings = self.scan(viewer, &r, path.starts_with("/v1/audit-events"));
            for f in findings {
                self.leaks += 1;
                self.violation("leak", format!("{method} {path} {body_text} → {status}: {f}\n  answer: {}", r.text));
            }
        }
        r
    }

    /// What of the answer `r` the viewer must not see.
    fn scan(&self, viewer: Viewer, r: &Resp, audit: bool) -> Vec<String> {
        let Some(t) = viewer.tenant else { return Vec::new() };
        let mut out = Vec::new();
        // The audit trail records refused requests with the path the caller sent:
        // that echo (and only that, and only of what this tenant itself sent) is
        // not a leak. Everything else of the answer is scanned.
        let mut json = r.json.clone();
        if audit {
            if let Some(items) = json["items"].as_array_mut() {
                for item in items.iter_mut().filter(|i| i["outcome"] == "denied") {
                    let Some(path) = item["details"]["path"].as_str() else { continue };
                    let mut sent = Vec::new();
                    extract(path, &mut sent);
                    for tok in sent.into_iter().filter(|tok| !self.echo[t].contains(tok)) {
                        out.push(format!("{tok} in a refused path this tenant never sent"));
                    }
                    item["details"]["path"] = Value::Null;
                }
            }
        }
        let text = if audit { json.to_string() } else { r.text.clone() };
        let mut toks = Vec::new();
        extract(&text, &mut toks);
        if let Some(id) = json["next_cursor"].as_str().and_then(decode_cursor) {
            toks.push(id);
        }
        for tok in toks {
            if let Some(owner) = self.registry.get(&tok) {
                if foreign(*owner, viewer) {
                    out.push(format!("{tok} belongs to {owner:?} (viewer {viewer:?})"));
                }
            }
        }
        for s in &self.internal_strings {
            if viewer.staff && s.starts_with("provider-") {
                continue;
            }
            if r.text.contains(s.as_str()) {
                out.push(format!("provider-internal {s:?}"));
            }
        }
        let own = self.tenants[t].id.to_string();
        let cluster = viewer.cluster.map(|c| self.clusters[c].id.to_string());
        let mut stack = vec![&json];
        while let Some(v) = stack.pop() {
            match v {
                Value::Object(m) => {
                    for (k, v) in m {
                        if let Value::String(s) = v {
                            if k == "tenant_id" && *s != own {
                                out.push(format!("tenant_id {s} is not the caller's tenant"));
                            }
                            if k == "cluster_id" && cluster.as_ref().is_some_and(|c| c != s) {
                                out.push(format!("cluster_id {s} is outside the delegate's cluster"));
                            }
                        }
                        stack.push(v);
                    }
                }
                Value::Array(a) => stack.extend(a.iter()),
                _ => {}
            }
        }
        out
    }

    async fn get(&mut self, who: Who, path: &str) -> Resp {
        self.send(who, Method::GET, path, None, &[]).await
    }

    async fn post(&mut self, who: Who, path: &str, body: Value) -> Resp {
        self.send(who, Method::POST, path, Some(&body), &[]).await
    }

    /// Every item of a list, page after page, as `who` sees it.
    async fn list_all(&mut self, who: Who, path: &str) -> Option<Vec<Value>> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let url = match &cursor {
                Some(c) => format!("{path}{sep}limit=500&cursor={c}"),
                None => format!("{path}{sep}limit=500"),
            };
            let r = self.get(who, &url).await;
            if !r.ok() {
                self.violation("check", format!("GET {url} as the tenant's admin answered {}: {}", r.status, r.text));
                return None;
            }
            items.extend(r.items());
            match r.json["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return Some(items),
            }
        }
    }

    /// Waits for tenant `t`'s creates and deletes, and applies their outcome to the model.
    async fn drain(&mut self, t: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.tenants[t].pending.is_empty() {
            let ids: Vec<Uuid> = self.tenants[t].pending.iter().map(|p| p.0).collect();
            let rows: Vec<(Uuid, String)> = sqlx::query_as("SELECT id, status FROM operations WHERE id = ANY($1)")
                .bind(&ids)
                .fetch_all(&mut self.db)
                .await
                .expect("operation status");
            for (id, status) in rows {
                if status != "succeeded" && status != "failed" {
                    continue;
                }
                let Some(pos) = self.tenants[t].pending.iter().position(|p| p.0 == id) else { continue };
                let (_, vm, kind) = self.tenants[t].pending.remove(pos);
                let gone = match kind {
                    PendingKind::Create => status == "failed",
                    PendingKind::Delete => status == "succeeded",
                };
                if gone {
                    let tm = &mut self.tenants[t];
                    tm.vms.iter_mut().filter(|v| v.id == vm).for_each(|v| v.alive = false);
                    tm.snaps.iter_mut().filter(|s| s.vm == vm).for_each(|s| s.alive = false);
                    // What hangs on the VM goes with it (its snapshot schedules).
                    tm.extras.retain(|x| x.vm != Some(vm));
                }
            }
            if self.tenants[t].pending.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                self.violation("stuck", format!("tenant {t}: operations still running after 30 s"));
                self.tenants[t].pending.clear();
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Tenant `t`'s rows, as the administrator sees them (RLS bypassed).
    async fn fingerprint(&mut self, t: usize) -> Fp {
        if let Some(fp) = &self.fp_cache[t] {
            return fp.clone();
        }
        let d = Instant::now();
        self.drain(t).await;
        self.timing[1] += d.elapsed();
        let f = Instant::now();
        let rows: Vec<(String, i64, String)> =
            sqlx::query_as(&self.fp_sql).bind(self.tenants[t].id).fetch_all(&mut self.db).await.expect("fingerprint");
        self.timing[0] += f.elapsed();
        self.fp_queries += 1;
        let fp: Fp = rows.into_iter().map(|(table, n, sum)| (table, (n, sum))).collect();
        self.fp_cache[t] = Some(fp.clone());
        fp
    }

    // --- choices -------------------------------------------------------------

    fn tenant(&mut self) -> usize {
        self.rng.gen_range(0..TENANTS)
    }

    fn other_tenant(&mut self, t: usize) -> usize {
        (t + self.rng.gen_range(1..TENANTS)) % TENANTS
    }

    fn caller_of(&self, t: usize, kind: Kind) -> usize {
        *self.tenants[t].callers.iter().find(|c| self.callers[**c].kind == kind).expect("caller")
    }

    /// A caller of `t` of one of `kinds` (weighted towards the able ones).
    fn pick_caller(&mut self, t: usize, kinds: &[Kind]) -> usize {
        if let Some(c) = self.forced.filter(|c| self.callers[*c].tenant == Some(t)) {
            return c;
        }
        let options: Vec<(usize, u32)> = self.tenants[t]
            .callers
            .iter()
            .copied()
            .filter(|c| kinds.contains(&self.callers[*c].kind))
            .map(|c| {
                let w = match self.callers[c].kind {
                    Kind::Admin | Kind::Staff => 3,
                    Kind::Operator => 2,
                    _ => 1,
                };
                (c, w)
            })
            .collect();
        options.choose_weighted(&mut self.rng, |o| o.1).expect("a caller").0
    }

    fn any_caller(&mut self, t: usize) -> usize {
        self.pick_caller(
            t,
            &[
                Kind::Admin,
                Kind::Operator,
                Kind::Viewer,
                Kind::Auditor,
                Kind::ClusterAdmin,
                Kind::ClusterOperator,
                Kind::Staff,
            ],
        )
    }

    /// A caller that may work on VMs, and the cluster it is confined to.
    fn vm_caller(&mut self, t: usize) -> (usize, Option<usize>) {
        let c = self.pick_caller(
            t,
            &[Kind::Admin, Kind::Operator, Kind::Staff, Kind::ClusterAdmin, Kind::ClusterOperator, Kind::Viewer],
        );
        (c, self.callers[c].cluster)
    }

    fn pick_vm(&mut self, t: usize, cluster: Option<usize>) -> Option<(Uuid, usize)> {
        let vms: Vec<(Uuid, usize)> = self.tenants[t]
            .vms
            .iter()
            .filter(|v| v.alive && cluster.is_none_or(|c| c == v.cluster))
            .map(|v| (v.id, v.cluster))
            .collect();
        vms.choose(&mut self.rng).copied()
    }

    fn walk_users(&self, t: usize) -> Vec<Uuid> {
        self.tenants[t].users.iter().filter(|u| u.alive && u.walk).map(|u| u.id).collect()
    }

    fn is_read_only(&self, who: usize) -> bool {
        matches!(self.callers[who].kind, Kind::Viewer | Kind::Auditor)
    }

    /// A read-only member must never change anything (its own tokens aside).
    fn check_read_only(&mut self, who: usize, method: &Method, path: &str, r: &Resp) {
        let mutating = *method != Method::GET;
        let self_service = path.starts_with("/v1/tokens") || path.starts_with("/v1/authz/check");
        if self.is_read_only(who) && mutating && !self_service && r.ok() {
            let label = self.callers[who].label.clone();
            self.violation("read_only_changed", format!("{label}: {method} {path} answered {}", r.status));
        }
    }

    /// A legitimate call: sent, checked for read-only roles, harvested.
    async fn call(&mut self, who: usize, method: Method, path: &str, body: Option<Value>) -> Resp {
        self.call_with(who, method, path, body, &[]).await
    }

    async fn call_with(
        &mut self,
        who: usize,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, String)],
    ) -> Resp {
        let r = self.send(Who::Caller(who), method.clone(), path, body.as_ref(), headers).await;
        self.check_read_only(who, &method, path, &r);
        if r.ok() {
            if let Some(t) = self.callers[who].tenant {
                self.harvest(t, &r);
            }
        }
        r
    }

    /// Sometimes an `Idempotency-Key` from a small pool shared by every tenant:
    /// a key another tenant used must never answer that tenant's object.
    fn idem(&mut self) -> Vec<(&'static str, String)> {
        if self.rng.gen_bool(0.15) {
            vec![("Idempotency-Key", format!("shared-key-{}", self.rng.gen_range(0..4)))]
        } else {
            Vec::new()
        }
    }

    fn record_op(&mut self, t: usize, r: &Resp, cluster: usize) -> Option<Uuid> {
        let id = r.uuid("id")?;
        self.own(id, Owner::Tenant(t, Some(cluster)));
        self.tenants[t].ops.push((id, cluster));
        Some(id)
    }

    /// A paged read with `limit=2`, following up to `pages` cursors.
    async fn paged(&mut self, who: usize, path: &str, pages: usize) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..pages {
            let sep = if path.contains('?') { '&' } else { '?' };
            let url = match &cursor {
                Some(c) => format!("{path}{sep}limit=2&cursor={c}"),
                None => format!("{path}{sep}limit=2"),
            };
            let r = self.call(who, Method::GET, &url, None).await;
            if !r.ok() {
                break;
            }
            items.extend(r.items());
            match r.json["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        items
    }

    // --- legitimate actions ----------------------------------------------------

    async fn legit(&mut self, action: &str, t: usize) {
        match action {
            "me" => {
                let who = self.any_caller(t);
                self.call(who, Method::GET, "/v1/me", None).await;
            }
            "tenant.get" => {
                let who = self.any_caller(t);
                let id = self.tenants[t].id;
                self.call(who, Method::GET, &format!("/v1/tenants/{id}"), None).await;
            }
            "user.list" => {
                let who = self.any_caller(t);
                let pages = self.rng.gen_range(1..4);
                self.paged(who, "/v1/users", pages).await;
            }
            "user.get" => {
                let who = self.any_caller(t);
                let ids: Vec<Uuid> = self.tenants[t].users.iter().map(|u| u.id).collect();
                let id = *ids.choose(&mut self.rng).expect("users");
                self.call(who, Method::GET, &format!("/v1/users/{id}"), None).await;
            }
            "user.create" => {
                let who = self.any_caller(t);
                let username = self.name("u", Owner::Tenant(t, None));
                let mut body = json!({ "username": username });
                if self.rng.gen_bool(0.5) {
                    let mail = self.name("m", Owner::Tenant(t, None));
                    body["email"] = json!(format!("{mail}@example.com"));
                }
                if self.rng.gen_bool(0.2) {
                    body["tenant_id"] = json!(self.tenants[t].id);
                }
                let headers = self.idem();
                let r = self.call_with(who, Method::POST, "/v1/users", Some(body), &headers).await;
                if r.status == 201 {
                    if let Ok(u) = serde_json::from_value::<User>(r.json.clone()) {
                        self.own(u.id, Owner::Tenant(t, None));
                        if !self.tenants[t].users.iter().any(|m| m.id == u.id) {
                            self.tenants[t].users.push(UserM {
                                id: u.id,
                                username: u.username,
                                email: u.email,
                                disabled: u.disabled,
                                version: u.version,
                                alive: true,
                                walk: true,
                            });
                        }
                    }
                }
            }
            "user.update" => {
                let Some(&id) = self.walk_users(t).choose(&mut self.rng) else { return };
                let who = self.any_caller(t);
                let body = if self.rng.gen_bool(0.5) {
                    let mail = self.name("m", Owner::Tenant(t, None));
                    json!({ "email": format!("{mail}@example.com") })
                } else {
                    json!({ "disabled": self.rng.gen_bool(0.5) })
                };
                let mut headers = Vec::new();
                if self.rng.gen_bool(0.3) {
                    let v = self.tenants[t].users.iter().find(|u| u.id == id).map_or(1, |u| u.version);
                    let v = if self.rng.gen_bool(0.2) { v + 7 } else { v };
                    headers.push(("If-Match", format!("\"{v}\"")));
                }
                let r = self.call_with(who, Method::PATCH, &format!("/v1/users/{id}"), Some(body), &headers).await;
                if r.status == 200 {
                    if let Ok(u) = serde_json::from_value::<User>(r.json.clone()) {
                        if let Some(m) = self.tenants[t].users.iter_mut().find(|m| m.id == u.id) {
                            m.email = u.email;
                            m.disabled = u.disabled;
                            m.version = u.version;
                        }
                    }
                }
            }
            "user.delete" => {
                let Some(&id) = self.walk_users(t).choose(&mut self.rng) else { return };
                let who = self.any_caller(t);
                let r = self.call(who, Method::DELETE, &format!("/v1/users/{id}"), None).await;
                if r.status == 204 {
                    let tm = &mut self.tenants[t];
                    tm.users.iter_mut().filter(|u| u.id == id).for_each(|u| u.alive = false);
                    tm.bindings.iter_mut().filter(|b| b.user == Some(id)).for_each(|b| b.alive = false);
                }
            }
            "role.list" => {
                let who = self.any_caller(t);
                let pages = self.rng.gen_range(1..5);
                self.paged(who, "/v1/roles", pages).await;
            }
            "role.get" => {
                let who = self.any_caller(t);
                let mut ids: Vec<Uuid> = self.tenants[t].roles.iter().map(|r| r.id).collect();
                ids.push(basalt_server::authz::builtin_role_named("tenant-viewer").expect("role").id);
                let id = *ids.choose(&mut self.rng).expect("roles");
                self.call(who, Method::GET, &format!("/v1/roles/{id}"), None).await;
            }
            "role.create" => {
                let who = self.any_caller(t);
                let name = self.name("r", Owner::Tenant(t, None));
                let n = self.rng.gen_range(1..4);
                let permissions: Vec<&str> = ROLE_PERMISSIONS.choose_multiple(&mut self.rng, n).copied().collect();
                let mut body = json!({ "name": name, "permissions": permissions });
                if self.rng.gen_bool(0.5) {
                    let d = self.name("d", Owner::Tenant(t, None));
                    body["description"] = json!(d);
                }
                let headers = self.idem();
                let r = self.call_with(who, Method::POST, "/v1/roles", Some(body), &headers).await;
                if r.status == 201 {
                    self.model_role(t, &r);
                }
            }
            "role.update" => {
                let roles: Vec<(Uuid, i64)> =
                    self.tenants[t].roles.iter().filter(|r| r.alive).map(|r| (r.id, r.version)).collect();
                let Some(&(id, version)) = roles.choose(&mut self.rng) else { return };
                let who = self.any_caller(t);
                let body = if self.rng.gen_bool(0.5) {
                    json!({ "description": self.name("d", Owner::Tenant(t, None)) })
                } else {
                    let n = self.rng.gen_range(1..4);
                    let p: Vec<&str> = ROLE_PERMISSIONS.choose_multiple(&mut self.rng, n).copied().collect();
                    json!({ "permissions": p })
                };
                let headers =
                    if self.rng.gen_bool(0.3) { vec![("If-Match", format!("\"{version}\""))] } else { Vec::new() };
                let r = self.call_with(who, Method::PATCH, &format!("/v1/roles/{id}"), Some(body), &headers).await;
                if r.status == 200 {
                    self.model_role(t, &r);
                }
            }
            "role.delete" => {
                let roles: Vec<Uuid> = self.tenants[t].roles.iter().filter(|r| r.alive).map(|r| r.id).collect();
                let Some(&id) = roles.choose(&mut self.rng) else { return };
                let who = self.any_caller(t);
                let r = self.call(who, Method::DELETE, &format!("/v1/roles/{id}"), None).await;
                if r.status == 204 {
                    self.tenants[t].roles.iter_mut().filter(|r| r.id == id).for_each(|r| r.alive = false);
                }
            }
            "binding.list" => {
                let who = self.any_caller(t);
                let pages = self.rng.gen_range(1..4);
                self.paged(who, "/v1/role-bindings", pages).await;
            }
            "binding.get" => {
                let who = self.any_caller(t);
                let ids: Vec<Uuid> = self.tenants[t].bindings.iter().map(|b| b.id).collect();
                let id = *ids.choose(&mut self.rng).expect("bindings");
                self.call(who, Method::GET, &format!("/v1/role-bindings/{id}"), None).await;
            }
            "binding.create" => {
                let Some(&user) = self.walk_users(t).choose(&mut self.rng) else { return };
                let who = self.any_caller(t);
                let custom: Vec<Uuid> = self.tenants[t].roles.iter().filter(|r| r.alive).map(|r| r.id).collect();
                let mut cluster = None;
                let role = match self.rng.gen_range(0..4) {
                    0 if !custom.is_empty() => *custom.choose(&mut self.rng).expect("role"),
                    1 => {
                        let c = self.rng.gen_range(0..CLUSTERS);
                        cluster = Some(self.clusters[c].id);
                        basalt_server::authz::builtin_role_named("cluster-operator").expect("role").id
                    }
                    _ => {
                        let name = *["tenant-viewer", "auditor", "tenant-operator"].choose(&mut self.rng).expect("x");
                        basalt_server::authz::builtin_role_named(name).expect("role").id
                    }
                };
                let mut body = json!({ "role_id": role, "user_id": user });
                if let Some(c) = cluster {
                    body["cluster_id"] = json!(c);
                }
                let headers = self.idem();
                let r = self.call_with(who, Method::POST, "/v1/role-bindings", Some(body), &headers).await;
                if r.status == 201 {
                    if let Ok(b) = serde_json::from_value::<RoleBinding>(r.json.clone()) {
                        self.own(b.id, Owner::Tenant(t, None));
                        if !self.tenants[t].bindings.iter().any(|m| m.id == b.id) {
                            self.tenants[t].bindings.push(BindingM {
                                id: b.id,
                                user: b.user_id,
                                role: b.role_id,
                                cluster: b.cluster_id,
                                alive: true,
                                walk: true,
                            });
                        }
                    }
                }
            }
            "binding.delete" => {
                let ids: Vec<Uuid> =
                    self.tenants[t].bindings.iter().filter(|b| b.alive && b.walk).map(|b| b.id).collect();
                let Some(&id) = ids.choose(&mut self.rng) else { return };
                let who = self.any_caller(t);
                let r = self.call(who, Method::DELETE, &format!("/v1/role-bindings/{id}"), None).await;
                if r.status == 204 {
                    self.tenants[t].bindings.iter_mut().filter(|b| b.id == id).for_each(|b| b.alive = false);
                }
            }
            "token.list" => {
                let who = self.member(t);
                self.call(who, Method::GET, "/v1/tokens?limit=3", None).await;
            }
            "token.create" => {
                let who = self.member(t);
                let name = self.name("k", Owner::Tenant(t, None));
                let mut body = json!({ "name": name });
                if self.rng.gen_bool(0.3) {
                    body["tenant"] = json!(self.tenants[t].name);
                }
                if self.rng.gen_bool(0.3) {
                    body["ttl_seconds"] = json!(3600);
                }
                let r = self.call(who, Method::POST, "/v1/tokens", Some(body)).await;
                if r.status == 201 {
                    if let Some(id) = r.uuid("id") {
                        self.own(id, Owner::Tenant(t, None));
                        self.tenants[t].tokens.push(TokenM { id, caller: who, name, revoked: false });
                    }
                }
            }
            "token.revoke" => {
                let tokens: Vec<(Uuid, usize)> =
                    self.tenants[t].tokens.iter().filter(|k| !k.revoked).map(|k| (k.id, k.caller)).collect();
                let Some(&(id, who)) = tokens.choose(&mut self.rng) else { return };
                let r = self.call(who, Method::DELETE, &format!("/v1/tokens/{id}"), None).await;
                if r.status == 204 {
                    self.tenants[t].tokens.iter_mut().filter(|k| k.id == id).for_each(|k| k.revoked = true);
                }
            }
            "template.list" => {
                let who = self.any_caller(t);
                let pages = self.rng.gen_range(1..3);
                self.paged(who, "/v1/templates", pages).await;
            }
            "template.get" => {
                let who = self.any_caller(t);
                let mut ids: Vec<Uuid> = self.tenants[t].templates.iter().map(|x| x.id).collect();
                ids.push(self.public_template);
                let id = *ids.choose(&mut self.rng).expect("templates");
                self.call(who, Method::GET, &format!("/v1/templates/{id}"), None).await;
            }
            "template.create" => {
                let who = self.any_caller(t);
                let name = self.name("tp", Owner::Tenant(t, None));
                let mut body = json!({
                    "name": name,
                    "vcpus": 1,
                    "memory_mib": *[64, 96, 128].choose(&mut self.rng).expect("size"),
                });
                if self.rng.gen_bool(0.2) {
                    body["tenant_id"] = json!(self.tenants[t].id);
                }
                let headers = self.idem();
                let r = self.call_with(who, Method::POST, "/v1/templates", Some(body), &headers).await;
                if r.status == 201 {
                    self.model_template(t, &r);
                }
            }
            "template.update" => {
                let mut ids: Vec<Uuid> = self.tenants[t].templates.iter().filter(|x| x.alive).map(|x| x.id).collect();
                if ids.is_empty() || self.rng.gen_bool(0.1) {
                    ids = vec![self.public_template];
                }
                let id = *ids.choose(&mut self.rng).expect("template");
                let who = self.any_caller(t);
                let body = json!({ "memory_mib": *[64, 96, 128].choose(&mut self.rng).expect("size") });
                let r = self.call(who, Method::PATCH, &format!("/v1/templates/{id}"), Some(body)).await;
                if r.status == 200 {
                    self.model_template(t, &r);
                }
            }
            "template.delete" => {
                let ids: Vec<Uuid> = self.tenants[t].templates.iter().filter(|x| x.alive).map(|x| x.id).collect();
                let Some(&id) = ids.choose(&mut self.rng) else { return };
                let who = self.any_caller(t);
                let r = self.call(who, Method::DELETE, &format!("/v1/templates/{id}"), None).await;
                if r.status == 204 {
                    self.tenants[t].templates.iter_mut().filter(|x| x.id == id).for_each(|x| x.alive = false);
                }
            }
            "vm.list" => {
                let who = self.any_caller(t);
                let pages = self.rng.gen_range(1..4);
                self.paged(who, "/v1/vms", pages).await;
            }
            "vm.get" => {
                let (who, confined) = self.vm_caller(t);
                if let Some((id, _)) = self.pick_vm(t, confined) {
                    self.call(who, Method::GET, &format!("/v1/vms/{id}"), None).await;
                }
            }
            "vm.create" => {
                let (who, confined) = self.vm_caller(t);
                let c = confined.unwrap_or_else(|| self.rng.gen_range(0..CLUSTERS));
                let name = self.name("vm", Owner::Tenant(t, Some(c)));
                let mut templates: Vec<Uuid> =
                    self.tenants[t].templates.iter().filter(|x| x.alive).map(|x| x.id).collect();
                templates.push(self.public_template);
                let template = *templates.choose(&mut self.rng).expect("template");
                let mut body = json!({ "name": name, "cluster_id": self.clusters[c].id, "template_id": template });
                if self.rng.gen_bool(0.3) {
                    body["power_state"] = json!("stopped");
                }
                let r = self.call(who, Method::POST, "/v1/vms", Some(body)).await;
                if r.status == 202 {
                    if let (Some(op), Some(vm)) = (self.record_op(t, &r, c), r.uuid("target_id")) {
                        self.own(vm, Owner::Tenant(t, Some(c)));
                        self.tenants[t].vms.push(VmM { id: vm, name, cluster: c, alive: true });
                        self.tenants[t].pending.push((op, vm, PendingKind::Create));
                    }
                }
            }
            "vm.power" | "vm.migrate" | "console.ticket" => {
                let (who, confined) = self.vm_caller(t);
                let Some((id, c)) = self.pick_vm(t, confined) else { return };
                let (what, body) = match action {
                    "vm.migrate" => ("migrate", json!({})),
                    "console.ticket" => ("console", json!({})),
                    _ => match self.rng.gen_range(0..6) {
                        0 | 1 => ("start", json!({})),
                        2 => ("stop", json!({ "force": true })),
                        3 => ("stop", json!({ "timeout_seconds": 1 })),
                        4 => ("reboot", json!({})),
                        _ => (*["suspend", "resume"].choose(&mut self.rng).expect("x"), json!({})),
                    },
                };
                let r = self.call(who, Method::POST, &format!("/v1/vms/{id}/{what}"), Some(body)).await;
                if r.status == 202 {
                    self.record_op(t, &r, c);
                }
                if let (201, Some(ticket)) = (r.status, r.json["ticket"].as_str()) {
                    self.tenants[t].tickets.push((ticket.to_string(), id, Instant::now()));
                }
            }
            "vm.delete" => {
                let (who, confined) = self.vm_caller(t);
                let Some((id, c)) = self.pick_vm(t, confined) else { return };
                let r = self.call(who, Method::DELETE, &format!("/v1/vms/{id}"), None).await;
                if r.status == 202 {
                    if let Some(op) = self.record_op(t, &r, c) {
                        self.tenants[t].pending.push((op, id, PendingKind::Delete));
                    }
                }
            }
            "snapshot.list" => {
                let (who, confined) = self.vm_caller(t);
                let Some((id, _)) = self.pick_vm(t, confined) else { return };
                self.paged(who, &format!("/v1/vms/{id}/snapshots"), 2).await;
            }
            "snapshot.create" => {
                let (who, confined) = self.vm_caller(t);
                let Some((vm, c)) = self.pick_vm(t, confined) else { return };
                let name = self.name("s", Owner::Tenant(t, Some(c)));
                let r = self
                    .call(who, Method::POST, &format!("/v1/vms/{vm}/snapshots"), Some(json!({ "name": name })))
                    .await;
                if r.status == 201 {
                    if let Some(id) = r.uuid("id") {
                        self.own(id, Owner::Tenant(t, Some(c)));
                        self.tenants[t].snaps.push(SnapM { id, vm, name, cluster: c, alive: true });
                    }
                }
            }
            "snapshot.revert" | "snapshot.delete" => {
                let (who, confined) = self.vm_caller(t);
                let snaps: Vec<(Uuid, Uuid, usize)> = self.tenants[t]
                    .snaps
                    .iter()
                    .filter(|s| s.alive && confined.is_none_or(|c| c == s.cluster))
                    .map(|s| (s.id, s.vm, s.cluster))
                    .collect();
                let Some(&(id, vm, c)) = snaps.choose(&mut self.rng) else { return };
                if action == "snapshot.revert" {
                    let r = self
                        .call(who, Method::POST, &format!("/v1/vms/{vm}/snapshots/{id}/revert"), Some(json!({})))
                        .await;
                    if r.status == 202 {
                        self.record_op(t, &r, c);
                    }
                } else {
                    let r = self.call(who, Method::DELETE, &format!("/v1/vms/{vm}/snapshots/{id}"), None).await;
                    if r.status == 204 {
                        self.tenants[t].snaps.iter_mut().filter(|s| s.id == id).for_each(|s| s.alive = false);
                    }
                }
            }
            "op.list" => {
                let who = self.any_caller(t);
                let pages = self.rng.gen_range(1..4);
                self.paged(who, "/v1/operations", pages).await;
            }
            "op.get" => {
                let (who, confined) = self.vm_caller(t);
                let ops: Vec<Uuid> = self.tenants[t]
                    .ops
                    .iter()
                    .filter(|(_, c)| confined.is_none_or(|d| d == *c))
                    .map(|(id, _)| *id)
                    .collect();
                let Some(&id) = ops.choose(&mut self.rng) else { return };
                self.call(who, Method::GET, &format!("/v1/operations/{id}"), None).await;
            }
            "audit.list" => {
                let who = self.pick_caller(t, &[Kind::Admin, Kind::Auditor, Kind::Staff, Kind::Viewer]);
                let path = match self.rng.gen_range(0..4) {
                    0 => format!(
                        "/v1/audit-events?action={}",
                        ["user.create", "vm.create", "tenant.switch", "permission.denied"]
                            .choose(&mut self.rng)
                            .expect("x")
                    ),
                    1 => {
                        let ids: Vec<Uuid> = self.tenants[t].users.iter().map(|u| u.id).collect();
                        format!("/v1/audit-events?target_id={}", ids.choose(&mut self.rng).expect("user"))
                    }
                    _ => "/v1/audit-events".to_string(),
                };
                let pages = self.rng.gen_range(1..4);
                // The trail names the tenant's objects (targets, actors): attack
                // material for the other tenants.
                let items = self.paged(who, &path, pages).await;
                for e in items {
                    for key in ["id", "target_id", "actor_id"] {
                        let Some(id) = e[key].as_str().and_then(|s| Uuid::parse_str(s).ok()) else { continue };
                        let ours = matches!(self.registry.get(&id.to_string()), Some(Owner::Tenant(o, _)) if *o == t);
                        if ours && self.tenants[t].harvested.insert(id) {
                            self.tenants[t].audit_ids.push(id);
                        }
                    }
                }
            }
            "quota.list" => {
                let who = self.any_caller(t);
                self.call(who, Method::GET, "/v1/quotas", None).await;
                let (q, _) = *self.tenants[t].quotas.choose(&mut self.rng).expect("quota");
                self.call(who, Method::GET, &format!("/v1/quotas/{q}"), None).await;
            }
            "cluster.list" => {
                let who = self.any_caller(t);
                self.call(who, Method::GET, "/v1/clusters", None).await;
                let c = self.clusters[self.rng.gen_range(0..CLUSTERS)].id;
                self.call(who, Method::GET, &format!("/v1/clusters/{c}"), None).await;
            }
            "authz.check" => {
                let who = self.any_caller(t);
                let p = *ROLE_PERMISSIONS.choose(&mut self.rng).expect("permission");
                let mut body = json!({ "permission": p });
                if self.rng.gen_bool(0.5) {
                    body["cluster_id"] = json!(self.clusters[self.rng.gen_range(0..CLUSTERS)].id);
                }
                self.call(who, Method::POST, "/v1/authz/check", Some(body)).await;
            }
            "switch.own" => {
                let who = self.member(t);
                let target =
                    if self.rng.gen_bool(0.5) { self.tenants[t].name.clone() } else { self.tenants[t].id.to_string() };
                self.call(who, Method::POST, "/v1/auth/switch-tenant", Some(json!({ "tenant": target }))).await;
            }
            "switch.staff" => {
                // Provider staff inside `t` move to `t2`; the new token becomes
                // the staff caller of `t2`.
                let t2 = self.other_tenant(t);
                let staff = self.caller_of(t, Kind::Staff);
                let target = self.tenants[t2].name.clone();
                let r = self
                    .send(
                        Who::As(staff, SYSTEM),
                        Method::POST,
                        "/v1/auth/switch-tenant",
                        Some(&json!({ "tenant": target })),
                        &[],
                    )
                    .await;
                self.fp_cache[t] = None;
                self.fp_cache[t2] = None;
                if r.ok() {
                    let token = r.json["token"].as_str().unwrap_or_default().to_string();
                    let staff2 = self.caller_of(t2, Kind::Staff);
                    self.callers[staff2].token = token;
                } else {
                    self.violation("legit_refused", format!("staff switch into tenant {t2}: {} {}", r.status, r.text));
                }
            }
            "extra.list" => {
                // A newer family's list, paged with cursors, and one of its objects.
                let e = EXTRAS.choose(&mut self.rng).expect("extra kind");
                let who = self.any_caller(t);
                self.paged(who, e.collection, 2).await;
                let confined = self.callers[who].cluster;
                let mine: Vec<Uuid> = self.tenants[t]
                    .extras
                    .iter()
                    .filter(|x| {
                        x.kind == e.kind && (confined.is_none() || x.cluster.is_none() || x.cluster == confined)
                    })
                    .map(|x| x.id)
                    .collect();
                if let Some(id) = mine.choose(&mut self.rng) {
                    self.call(who, Method::GET, &format!("{}/{id}", e.collection), None).await;
                }
            }
            "system.read" => {
                let path = *[
                    "/v1/tenants?limit=2",
                    "/v1/quotas",
                    "/v1/clusters",
                    "/v1/audit-events?limit=5",
                    "/v1/operations?limit=5",
                    "/v1/users",
                ]
                .choose(&mut self.rng)
                .expect("path");
                self.send(Who::Caller(0), Method::GET, path, None, &[]).await;
            }
            other => panic!("unknown action {other}"),
        }
    }

    /// A tenant member (not the switched-in staff: their tokens live at system scope).
    fn member(&mut self, t: usize) -> usize {
        self.pick_caller(
            t,
            &[Kind::Admin, Kind::Operator, Kind::Viewer, Kind::Auditor, Kind::ClusterAdmin, Kind::ClusterOperator],
        )
    }

    fn model_role(&mut self, t: usize, r: &Resp) {
        let Ok(role) = serde_json::from_value::<Role>(r.json.clone()) else { return };
        self.own(role.id, Owner::Tenant(t, None));
        let tm = &mut self.tenants[t];
        match tm.roles.iter_mut().find(|m| m.id == role.id) {
            Some(m) => {
                m.description = role.description;
                m.permissions = role.permissions;
                m.version = role.version;
            }
            None => tm.roles.push(RoleM {
                id: role.id,
                name: role.name,
                description: role.description,
                permissions: role.permissions,
                version: role.version,
                alive: true,
            }),
        }
    }

    fn model_template(&mut self, t: usize, r: &Resp) {
        let Ok(x) = serde_json::from_value::<Template>(r.json.clone()) else { return };
        if x.tenant_id.is_none() {
            self.violation("legit_unexpected", format!("a tenant changed the public template {}", x.id));
            return;
        }
        self.own(x.id, Owner::Tenant(t, None));
        let tm = &mut self.tenants[t];
        match tm.templates.iter_mut().find(|m| m.id == x.id) {
            Some(m) => {
                m.vcpus = x.vcpus;
                m.memory_mib = x.memory_mib;
                m.version = x.version;
            }
            None => tm.templates.push(TemplateM {
                id: x.id,
                name: x.name,
                vcpus: x.vcpus,
                memory_mib: x.memory_mib,
                version: x.version,
                alive: true,
            }),
        }
    }

    // --- attacks -----------------------------------------------------------------

    /// A tenant-scoped attacker (a member or the staff switched in).
    fn attacker(&mut self, staff: bool) -> (usize, usize) {
        let t = self.tenant();
        let mut kinds =
            vec![Kind::Admin, Kind::Operator, Kind::Viewer, Kind::Auditor, Kind::ClusterAdmin, Kind::ClusterOperator];
        if staff {
            kinds.push(Kind::Staff);
        }
        (self.pick_caller(t, &kinds), t)
    }

    /// One foreign id of `victim`, by kind, from what that tenant's own answers showed.
    fn foreign_id(&mut self, victim: usize) -> (&'static str, Uuid, Option<Uuid>) {
        let v = &self.tenants[victim];
        let mut pools: Vec<Pool> = vec![
            ("user", v.users.iter().map(|x| (x.id, None)).collect()),
            ("role", v.roles.iter().map(|x| (x.id, None)).collect()),
            ("binding", v.bindings.iter().map(|x| (x.id, None)).collect()),
            ("token", v.tokens.iter().map(|x| (x.id, None)).collect()),
            ("template", v.templates.iter().map(|x| (x.id, None)).collect()),
            ("vm", v.vms.iter().map(|x| (x.id, None)).collect()),
            ("snapshot", v.snaps.iter().map(|x| (x.id, Some(x.vm))).collect()),
            ("op", v.ops.iter().map(|x| (x.0, None)).collect()),
            ("quota", v.quotas.iter().map(|x| (x.0, None)).collect()),
            ("tenant", vec![(v.id, None)]),
            ("audit_trail", v.audit_ids.iter().map(|x| (*x, None)).collect()),
        ];
        for e in EXTRAS {
            pools.push((e.kind, v.extras.iter().filter(|x| x.kind == e.kind).map(|x| (x.id, None)).collect()));
        }
        pools.retain(|p| !p.1.is_empty());
        let (kind, ids) = pools.swap_remove(self.rng.gen_range(0..pools.len()));
        let (id, parent) = *ids.choose(&mut self.rng).expect("id");
        (kind, id, parent)
    }

    /// A route acting on the newer-family object `{X}` of `kind` (see [`EXTRAS`]).
    fn extra_route(&mut self, kind: &str, own_vm: Option<Uuid>, t: usize) -> Route {
        let e = extra_kind(kind).expect("extra kind");
        let own = OwnRefs { vm: own_vm, user: self.callers[self.caller_of(t, Kind::Viewer)].user_id };
        (e.routes)(&own).choose(&mut self.rng).cloned().expect("route")
    }

    /// A route that acts on an object of `kind` named by `{X}`; `own_vm` is a
    /// VM of the attacker's (for snapshot paths under its own VM).
    fn route_for(
        &mut self,
        kind: &str,
        parent: Option<Uuid>,
        own_vm: Option<Uuid>,
        t: usize,
    ) -> (Method, String, Option<Value>) {
        let pick = |rng: &mut StdRng, n: usize| rng.gen_range(0..n);
        match kind {
            // An id from the audit trail, of whatever kind: any route.
            "audit_trail" => {
                let kind = *["user", "role", "binding", "token", "template", "vm", "op", "quota", "tenant"]
                    .choose(&mut self.rng)
                    .expect("kind");
                self.route_for(kind, parent, own_vm, t)
            }
            "user" => match pick(&mut self.rng, 4) {
                0 => (Method::GET, "/v1/users/{X}".into(), None),
                1 => (Method::PATCH, "/v1/users/{X}".into(), Some(json!({ "email": "owned@example.com" }))),
                2 => (Method::PATCH, "/v1/users/{X}".into(), Some(json!({ "disabled": true }))),
                _ => (Method::DELETE, "/v1/users/{X}".into(), None),
            },
            "role" => match pick(&mut self.rng, 4) {
                0 => (Method::GET, "/v1/roles/{X}".into(), None),
                1 => (Method::PATCH, "/v1/roles/{X}".into(), Some(json!({ "description": "owned" }))),
                2 => (Method::PATCH, "/v1/roles/{X}".into(), Some(json!({ "permissions": ["user:list"] }))),
                _ => (Method::DELETE, "/v1/roles/{X}".into(), None),
            },
            "binding" => match pick(&mut self.rng, 2) {
                0 => (Method::GET, "/v1/role-bindings/{X}".into(), None),
                _ => (Method::DELETE, "/v1/role-bindings/{X}".into(), None),
            },
            "token" => (Method::DELETE, "/v1/tokens/{X}".into(), None),
            "template" => match pick(&mut self.rng, 3) {
                0 => (Method::GET, "/v1/templates/{X}".into(), None),
                1 => (Method::PATCH, "/v1/templates/{X}".into(), Some(json!({ "vcpus": 2 }))),
                _ => (Method::DELETE, "/v1/templates/{X}".into(), None),
            },
            "vm" => match pick(&mut self.rng, 13) {
                0 => (Method::GET, "/v1/vms/{X}".into(), None),
                1 => (Method::DELETE, "/v1/vms/{X}".into(), None),
                2 => (Method::POST, "/v1/vms/{X}/start".into(), Some(json!({}))),
                3 => (Method::POST, "/v1/vms/{X}/stop".into(), Some(json!({ "force": true }))),
                4 => (Method::POST, "/v1/vms/{X}/reboot".into(), Some(json!({}))),
                5 => (Method::POST, "/v1/vms/{X}/suspend".into(), Some(json!({}))),
                6 => (Method::POST, "/v1/vms/{X}/migrate".into(), Some(json!({}))),
                7 => (Method::POST, "/v1/vms/{X}/console".into(), Some(json!({}))),
                8 => (Method::POST, "/v1/vms/{X}/resize".into(), Some(json!({ "vcpus": 2 }))),
                9 => {
                    let n = self.name("tp", Owner::Tenant(t, None));
                    (Method::POST, "/v1/vms/{X}/template".into(), Some(json!({ "name": n })))
                }
                10 => (Method::GET, "/v1/vms/{X}/snapshots".into(), None),
                11 => {
                    let n = self.name("s", Owner::Tenant(t, None));
                    (Method::POST, "/v1/vms/{X}/snapshots".into(), Some(json!({ "name": n })))
                }
                _ => (Method::POST, "/v1/vms/{X}/resume".into(), Some(json!({}))),
            },
            "snapshot" => {
                let vm = match (own_vm, parent) {
                    (Some(own), _) if self.rng.gen_bool(0.6) => own.to_string(),
                    (_, Some(p)) => p.to_string(),
                    _ => Uuid::now_v7().to_string(),
                };
                match pick(&mut self.rng, 3) {
                    0 => (Method::GET, format!("/v1/vms/{vm}/snapshots/{{X}}"), None),
                    1 => (Method::DELETE, format!("/v1/vms/{vm}/snapshots/{{X}}"), None),
                    _ => (Method::POST, format!("/v1/vms/{vm}/snapshots/{{X}}/revert"), Some(json!({}))),
                }
            }
            "op" => (Method::GET, "/v1/operations/{X}".into(), None),
            k if extra_kind(k).is_some() => self.extra_route(k, own_vm, t),
            "quota" => match pick(&mut self.rng, 3) {
                0 => (Method::GET, "/v1/quotas/{X}".into(), None),
                1 => (Method::PATCH, "/v1/quotas/{X}".into(), Some(json!({ "max_vms": 100 }))),
                _ => (Method::DELETE, "/v1/quotas/{X}".into(), None),
            },
            _ => match pick(&mut self.rng, 6) {
                0 => (Method::GET, "/v1/tenants/{X}".into(), None),
                1 => (Method::PATCH, "/v1/tenants/{X}".into(), Some(json!({ "display_name": "owned" }))),
                2 => (Method::POST, "/v1/tenants/{X}/suspend".into(), Some(json!({}))),
                3 => (Method::DELETE, "/v1/tenants/{X}".into(), None),
                4 => (Method::GET, "/v1/tenants/{X}/regions".into(), None),
                _ => (Method::POST, "/v1/tenants/{X}/resume".into(), Some(json!({}))),
            },
        }
    }

    async fn attack(&mut self, action: &str) {
        match action {
            "atk.path" | "atk.random" => {
                let (who, t) = self.attacker(true);
                let victim = self.other_tenant(t);
                let (kind, id, parent) = self.foreign_id(victim);
                let confined = self.callers[who].cluster;
                let own_vm = self.pick_vm(t, confined).map(|v| v.0);
                let (method, path, body) = self.route_for(kind, parent, own_vm, t);
                let random = action == "atk.random";
                self.action = format!("{action}.{kind}");
                let foreign = if random { Uuid::now_v7().to_string() } else { id.to_string() };
                let twin = if random { Twin::None } else { Twin::Uuid };
                self.run_attack(Attack {
                    who: Who::Caller(who),
                    victim,
                    method,
                    path,
                    body,
                    foreign,
                    twin,
                    expect: Expect::Refused,
                    same_tenant: false,
                    headers: Vec::new(),
                })
                .await;
            }
            "atk.body" => {
                let (who, t) = self.attacker(true);
                let victim = self.other_tenant(t);
                let staff = self.callers[who].kind == Kind::Staff;
                let c = self.callers[who].cluster.unwrap_or_else(|| self.rng.gen_range(0..CLUSTERS));
                let cluster = self.clusters[c].id;
                let own_user = self
                    .walk_users(t)
                    .first()
                    .copied()
                    .unwrap_or(self.callers[self.caller_of(t, Kind::Viewer)].user_id);
                let viewer_role = basalt_server::authz::builtin_role_named("tenant-viewer").expect("role").id;
                let confined = self.callers[who].cluster;
                let own_vm = self.pick_vm(t, confined).map(|v| v.0);
                let v = &self.tenants[victim];
                let victim_id = v.id.to_string();
                let victim_vms = v.vms.iter().map(|x| x.id).collect::<Vec<_>>();
                let victim_template = v.templates.iter().map(|x| x.id).collect::<Vec<_>>();
                let victim_roles = v.roles.iter().map(|x| x.id).collect::<Vec<_>>();
                let victim_users = v.users.iter().map(|x| x.id).collect::<Vec<_>>();
                let victim_name = v.name.clone();
                let n = self.name("x", Owner::Tenant(t, None));
                let mut options: Vec<(&'static str, &'static str, Value, String, Twin)> = vec![
                    (
                        "users.tenant_id",
                        "/v1/users",
                        json!({ "username": n, "tenant_id": "{X}" }),
                        victim_id.clone(),
                        Twin::Uuid,
                    ),
                    (
                        "roles.tenant_id",
                        "/v1/roles",
                        json!({ "name": n, "permissions": ["user:list"], "tenant_id": "{X}" }),
                        victim_id.clone(),
                        Twin::Uuid,
                    ),
                    (
                        "templates.tenant_id",
                        "/v1/templates",
                        json!({ "name": n, "vcpus": 1, "memory_mib": 64, "tenant_id": "{X}" }),
                        victim_id.clone(),
                        Twin::Uuid,
                    ),
                    (
                        "vms.tenant_id",
                        "/v1/vms",
                        json!({ "name": n, "cluster_id": cluster, "template_id": self.public_template, "tenant_id": "{X}" }),
                        victim_id.clone(),
                        Twin::Uuid,
                    ),
                    (
                        "bindings.tenant_id",
                        "/v1/role-bindings",
                        json!({ "role_id": viewer_role, "user_id": own_user, "tenant_id": "{X}" }),
                        victim_id.clone(),
                        Twin::Uuid,
                    ),
                ];
                if let Some(x) = victim_template.choose(&mut self.rng) {
                    options.push((
                        "vms.template_id",
                        "/v1/vms",
                        json!({ "name": n, "cluster_id": cluster, "template_id": "{X}" }),
                        x.to_string(),
                        Twin::Uuid,
                    ));
                }
                if let Some(x) = victim_roles.choose(&mut self.rng) {
                    options.push((
                        "bindings.role_id",
                        "/v1/role-bindings",
                        json!({ "role_id": "{X}", "user_id": own_user }),
                        x.to_string(),
                        Twin::Uuid,
                    ));
                }
                if let Some(x) = victim_users.choose(&mut self.rng) {
                    options.push((
                        "bindings.user_id",
                        "/v1/role-bindings",
                        json!({ "role_id": viewer_role, "user_id": "{X}" }),
                        x.to_string(),
                        Twin::Uuid,
                    ));
                }
                if let (Some(_), Some(x)) = (own_vm, victim_vms.choose(&mut self.rng)) {
                    // A field the route does not take: refused before any lookup.
                    options.push((
                        "snapshots.vm_id",
                        "/v1/vms/{OWN}/snapshots",
                        json!({ "name": n, "vm_id": "{X}" }),
                        x.to_string(),
                        Twin::Uuid,
                    ));
                }
                if !staff {
                    // Provider staff may name any tenant for a token; tenant users only their own.
                    options.push((
                        "tokens.tenant",
                        "/v1/tokens",
                        json!({ "name": n, "tenant": "{X}" }),
                        victim_id.clone(),
                        Twin::Uuid,
                    ));
                    options.push((
                        "tokens.tenant_name",
                        "/v1/tokens",
                        json!({ "name": n, "tenant": "{X}" }),
                        victim_name,
                        Twin::Name,
                    ));
                }
                let i = self.rng.gen_range(0..options.len());
                let (label, path, body, foreign, twin) = options.swap_remove(i);
                self.action = format!("atk.body.{label}");
                self.run_attack(Attack {
                    who: Who::Caller(who),
                    victim,
                    method: Method::POST,
                    path: path.replace("{OWN}", &own_vm.map(|v| v.to_string()).unwrap_or_default()),
                    body: Some(body),
                    foreign,
                    twin,
                    expect: Expect::Refused,
                    same_tenant: false,
                    headers: Vec::new(),
                })
                .await;
            }
            "atk.query" => {
                let (who, t) = self.attacker(true);
                let victim = self.other_tenant(t);
                let (kind, id, _) = self.foreign_id(victim);
                let audit_ids = self.tenants[victim].audit_ids.clone();
                let (label, path, foreign, expect) = match self.rng.gen_range(0..4) {
                    0 if !audit_ids.is_empty() => {
                        let a = audit_ids.choose(&mut self.rng).expect("audit id");
                        (
                            "audit.target_id=audit_event",
                            "/v1/audit-events?target_id={X}",
                            a.to_string(),
                            Expect::SameAsTwin,
                        )
                    }
                    0 | 1 => ("audit.target_id", "/v1/audit-events?target_id={X}", id.to_string(), Expect::SameAsTwin),
                    2 => {
                        let path = *["/v1/vms?tenant_id={X}", "/v1/users?tenant_id={X}", "/v1/operations?vm_id={X}"]
                            .choose(&mut self.rng)
                            .expect("x");
                        ("list.unknown_filter", path, id.to_string(), Expect::Refused)
                    }
                    _ => (
                        "audit.action+target_id",
                        "/v1/audit-events?action=vm.create&target_id={X}",
                        id.to_string(),
                        Expect::SameAsTwin,
                    ),
                };
                let _ = kind;
                self.action = format!("atk.query.{label}");
                self.run_attack(Attack {
                    who: Who::Caller(who),
                    victim,
                    method: Method::GET,
                    path: path.to_string(),
                    body: None,
                    foreign,
                    twin: Twin::Uuid,
                    expect,
                    same_tenant: false,
                    headers: Vec::new(),
                })
                .await;
            }
            "atk.cursor" => {
                let (who, t) = self.attacker(true);
                let victim = self.other_tenant(t);
                let Some(cursor) = self.tenants[victim].cursors.choose(&mut self.rng).cloned() else { return };
                let list = *[
                    "/v1/users",
                    "/v1/roles",
                    "/v1/role-bindings",
                    "/v1/templates",
                    "/v1/vms",
                    "/v1/operations",
                    "/v1/audit-events",
                    "/v1/quotas",
                ]
                .choose(&mut self.rng)
                .expect("list");
                self.action = "atk.cursor".into();
                self.run_attack(Attack {
                    who: Who::Caller(who),
                    victim,
                    method: Method::GET,
                    path: format!("{list}?limit=2&cursor={{X}}"),
                    body: None,
                    foreign: cursor,
                    twin: Twin::None,
                    expect: Expect::Scan,
                    same_tenant: false,
                    headers: Vec::new(),
                })
                .await;
            }
            "atk.switch" => {
                let (who, t) = self.attacker(false);
                let victim = self.other_tenant(t);
                let (foreign, twin) = if self.rng.gen_bool(0.5) {
                    (self.tenants[victim].name.clone(), Twin::Name)
                } else {
                    (self.tenants[victim].id.to_string(), Twin::Uuid)
                };
                self.action = "atk.switch".into();
                self.run_attack(Attack {
                    who: Who::Caller(who),
                    victim,
                    method: Method::POST,
                    path: "/v1/auth/switch-tenant".into(),
                    body: Some(json!({ "tenant": "{X}" })),
                    foreign,
                    twin,
                    expect: Expect::Refused,
                    same_tenant: false,
                    headers: Vec::new(),
                })
                .await;
            }
            "atk.login" | "atk.login_burst" => {
                // A login naming another tenant (with a wrong password, as that
                // tenant's admin): the same answer as the same attempts naming a
                // tenant that does not exist (the victim's "ghost"), however many
                // there were: a login throttle must not tell the two apart. The
                // burst makes enough attempts to reach the throttle.
                let (_, t) = self.attacker(false);
                let victim = self.other_tenant(t);
                let v = self.caller_of(victim, Kind::Admin);
                let username = self.callers[v].username.clone();
                let foreign = self.tenants[victim].name.clone();
                let attempts = if action == "atk.login_burst" { 12 } else { 1 };
                self.action = action.into();
                for _ in 0..attempts {
                    self.run_attack(Attack {
                        who: Who::Anonymous(Viewer { tenant: Some(t), cluster: None, staff: false }),
                        victim,
                        method: Method::POST,
                        path: "/v1/auth/login".into(),
                        body: Some(json!({ "username": username, "password": WRONG_PASSWORD, "tenant": "{X}" })),
                        foreign: foreign.clone(),
                        twin: Twin::Ghost,
                        expect: Expect::Refused,
                        same_tenant: false,
                        headers: Vec::new(),
                    })
                    .await;
                }
            }
            "atk.delegate" => {
                // A cluster delegate reaching for its own tenant's other cluster.
                let t = self.tenant();
                let who = self.pick_caller(t, &[Kind::ClusterAdmin, Kind::ClusterOperator]);
                let mine = self.callers[who].cluster.expect("delegate");
                let other = (mine + 1) % CLUSTERS;
                let tm = &self.tenants[t];
                let vms: Vec<Uuid> = tm.vms.iter().filter(|v| v.cluster == other).map(|v| v.id).collect();
                let snaps: Vec<(Uuid, Uuid)> =
                    tm.snaps.iter().filter(|s| s.cluster == other).map(|s| (s.id, s.vm)).collect();
                let ops: Vec<Uuid> = tm.ops.iter().filter(|o| o.1 == other).map(|o| o.0).collect();
                let quota = tm.quotas.iter().find(|q| q.1 == other).map(|q| q.0).expect("quota");
                let extras: Vec<(&'static str, Uuid)> =
                    tm.extras.iter().filter(|x| x.cluster == Some(other)).map(|x| (x.kind, x.id)).collect();
                let other_cluster = self.clusters[other].id;
                let n = self.name("vm", Owner::Tenant(t, Some(other)));
                let (label, method, path, body, foreign) = match self.rng.gen_range(0..7) {
                    5 if !extras.is_empty() => {
                        let (kind, id) = *extras.choose(&mut self.rng).expect("extra");
                        let own_vm = self.pick_vm(t, Some(mine)).map(|v| v.0);
                        let (m, p, b) = self.extra_route(kind, own_vm, t);
                        (kind, m, p, b, id.to_string())
                    }
                    0 | 1 if !vms.is_empty() => {
                        let vm = *vms.choose(&mut self.rng).expect("vm");
                        let (m, p, b) = self.route_for("vm", None, None, t);
                        ("vm", m, p, b, vm.to_string())
                    }
                    2 if !snaps.is_empty() => {
                        let (s, vm) = *snaps.choose(&mut self.rng).expect("snapshot");
                        ("snapshot", Method::GET, format!("/v1/vms/{vm}/snapshots/{{X}}"), None, s.to_string())
                    }
                    3 if !ops.is_empty() => {
                        let op = *ops.choose(&mut self.rng).expect("op");
                        ("op", Method::GET, "/v1/operations/{X}".to_string(), None, op.to_string())
                    }
                    4 => match self.rng.gen_range(0..3) {
                        0 => ("cluster", Method::GET, "/v1/clusters/{X}".to_string(), None, other_cluster.to_string()),
                        1 => ("quota", Method::GET, "/v1/quotas/{X}".to_string(), None, quota.to_string()),
                        _ => (
                            "authz.cluster",
                            Method::POST,
                            "/v1/authz/check".to_string(),
                            Some(json!({ "permission": "vm:create", "cluster_id": "{X}" })),
                            other_cluster.to_string(),
                        ),
                    },
                    _ => (
                        "vm.create",
                        Method::POST,
                        "/v1/vms".to_string(),
                        Some(json!({ "name": n, "cluster_id": "{X}", "template_id": self.public_template })),
                        other_cluster.to_string(),
                    ),
                };
                self.action = format!("atk.delegate.{label}");
                let expect = if label == "authz.cluster" { Expect::SameAsTwin } else { Expect::Refused };
                self.run_attack(Attack {
                    who: Who::Caller(who),
                    victim: t,
                    method,
                    path,
                    body,
                    foreign,
                    twin: Twin::Uuid,
                    expect,
                    same_tenant: true,
                    headers: Vec::new(),
                })
                .await;
            }
            "atk.console" => {
                // The console websocket takes a ticket instead of a token: one of
                // the attacker's own tickets on another tenant's VM, or a forged
                // ticket naming the victim tenant, opens nothing.
                let (who, t) = self.attacker(true);
                let victim = self.other_tenant(t);
                let vms: Vec<Uuid> = self.tenants[victim].vms.iter().map(|v| v.id).collect();
                let Some(&vm) = vms.choose(&mut self.rng) else { return };
                let fresh: Vec<String> = self.tenants[t]
                    .tickets
                    .iter()
                    .filter(|k| k.2.elapsed() < Duration::from_secs(50))
                    .map(|k| k.0.clone())
                    .collect();
                let (label, ticket) = match fresh.choose(&mut self.rng) {
                    Some(k) if self.rng.gen_bool(0.6) => ("own_ticket", k.clone()),
                    _ => {
                        let secret: u128 = self.rng.gen();
                        let forged = format!(
                            "bct_{}_{}_{secret:032x}",
                            self.tenants[victim].id.simple(),
                            Uuid::now_v7().simple()
                        );
                        ("forged_ticket", forged)
                    }
                };
                self.action = format!("atk.console.{label}");
                let upgrade = vec![
                    ("connection", "Upgrade".to_string()),
                    ("upgrade", "websocket".to_string()),
                    ("sec-websocket-version", "13".to_string()),
                    ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==".to_string()),
                ];
                self.run_attack(Attack {
                    who: Who::Caller(who),
                    victim,
                    method: Method::GET,
                    path: format!("/v1/vms/{{X}}/console/ws?ticket={ticket}"),
                    body: None,
                    foreign: vm.to_string(),
                    twin: Twin::Uuid,
                    expect: Expect::Refused,
                    same_tenant: false,
                    headers: upgrade,
                })
                .await;
            }
            other => panic!("unknown attack {other}"),
        }
    }

    async fn run_attack(&mut self, a: Attack) {
        let before = self.fingerprint(a.victim).await;
        let who_label = match a.who {
            Who::Caller(i) | Who::As(i, _) => self.callers[i].label.clone(),
            Who::Anonymous(_) => "anonymous".into(),
        };
        let fill = |x: &str| {
            let path = a.path.replace("{X}", x);
            let body = a
                .body
                .as_ref()
                .map(|b| serde_json::from_str::<Value>(&b.to_string().replace("{X}", x)).expect("attack body"));
            (path, body)
        };
        let (path, body) = fill(&a.foreign);
        // Whether the VM segment of the path is the caller's own (the foreign
        // value sits further on), so a busy answer is about its own VM.
        let vm_in_path_is_own = a.path.starts_with("/v1/vms/") && !a.path.starts_with("/v1/vms/{X}");
        let r = self.send(a.who, a.method.clone(), &path, body.as_ref(), &a.headers).await;
        let what = format!("{who_label}: {} {path} {}", a.method, body.map(|b| b.to_string()).unwrap_or_default());
        if a.expect == Expect::Refused {
            if r.ok() {
                self.violation("attack_succeeded", format!("{what} answered {}: {}", r.status, r.text));
            } else if !(REFUSALS.contains(&r.status) || (vm_in_path_is_own && own_vm_busy(&r))) {
                self.violation(
                    "attack_status",
                    format!("{what} answered {} (the object was found?): {}", r.status, r.text),
                );
            }
        }
        if a.twin != Twin::None {
            let twin = match a.twin {
                Twin::Uuid => Uuid::now_v7().to_string(),
                Twin::Ghost => self.tenants[a.victim].ghost.clone(),
                _ => format!("t{}-zz{:010x}", self.rng.gen_range(0..TENANTS), self.rng.gen::<u64>() & 0xff_ffff_ffff),
            };
            let (path2, body2) = fill(&twin);
            let r2 = self.send(a.who, a.method.clone(), &path2, body2.as_ref(), &a.headers).await;
            let norm = |r: &Resp| {
                let m =
                    r.json["error"]["message"].as_str().unwrap_or("").replace(&a.foreign, "{X}").replace(&twin, "{X}");
                (r.status, r.code().to_string(), m)
            };
            let (one, two) = (norm(&r), norm(&r2));
            // The caller's own VM may stop being busy between the two calls.
            if one != two && !(vm_in_path_is_own && (own_vm_busy(&r) || own_vm_busy(&r2))) {
                self.violation(
                    "oracle",
                    format!("{what}: the foreign value answers {one:?}, a random one {two:?} ({})", r2.text),
                );
            } else if a.expect == Expect::SameAsTwin && r.ok() && r.items().len() != r2.items().len() {
                self.violation(
                    "oracle",
                    format!(
                        "{what}: {} items for the foreign value, {} for a random one",
                        r.items().len(),
                        r2.items().len()
                    ),
                );
            }
        }
        self.fp_cache[a.victim] = None;
        let after = self.fingerprint(a.victim).await;
        let skip: &[&str] = if a.same_tenant { &["audit_events", "idempotency_keys"] } else { &[] };
        let changed: Vec<&String> = before
            .keys()
            .chain(after.keys())
            .filter(|k| !skip.contains(&k.as_str()) && before.get(*k) != after.get(*k))
            .collect();
        if !changed.is_empty() {
            let changed: BTreeSet<&String> = changed.into_iter().collect();
            self.violation("victim_changed", format!("{what}: tenant {}'s rows changed in {changed:?}", a.victim));
        }
    }

    // --- the walk -------------------------------------------------------------------

    /// Walks until `target` calls were made (setup aside), with a checkpoint
    /// every [`CHECKPOINT_EVERY`] calls and one login burst a third of the way.
    async fn run(&mut self, target: u64) {
        let total: u32 = ACTIONS.iter().map(|a| a.1).sum();
        let start = self.calls;
        let mut next_checkpoint = CHECKPOINT_EVERY;
        let mut burst_done = false;
        while self.calls - start < target {
            self.step += 1;
            if self.calls - start >= next_checkpoint {
                next_checkpoint += CHECKPOINT_EVERY;
                self.action = "checkpoint".into();
                let began = Instant::now();
                self.checkpoint().await;
                *self.action_time.entry("checkpoint".into()).or_default() += began.elapsed();
            }
            let mut roll = self.rng.gen_range(0..total);
            let mut action = ACTIONS
                .iter()
                .find(|(_, w)| {
                    if roll < *w {
                        true
                    } else {
                        roll -= w;
                        false
                    }
                })
                .expect("action")
                .0;
            if !burst_done && self.calls - start >= target / 3 {
                burst_done = true;
                action = "atk.login_burst";
            }
            self.action = action.to_string();
            let began = Instant::now();
            if action.starts_with("atk.") {
                self.class = Class::Attack;
                self.attack(action).await;
            } else {
                self.class = Class::Legit;
                let t = self.tenant();
                self.legit(action, t).await;
            }
            *self.actions.entry(self.action.clone()).or_default() += 1;
            *self.action_time.entry(action.to_string()).or_default() += began.elapsed();
        }
    }

    /// Each tenant's objects, as its own admin lists them, against the model.
    async fn checkpoint(&mut self) {
        let class = self.class;
        self.class = Class::Check;
        for t in 0..TENANTS {
            self.drain(t).await;
            let admin = Who::Caller(self.caller_of(t, Kind::Admin));
            let tid = self.tenants[t].id;
            let mut problems = Vec::new();

            if let Some(items) = self.list_all(admin, "/v1/users").await {
                let api: BTreeSet<_> =
                    parse::<User>(items).into_iter().map(|u| (u.id, u.username, u.email, u.disabled)).collect();
                let model: BTreeSet<_> = self.tenants[t]
                    .users
                    .iter()
                    .filter(|u| u.alive)
                    .map(|u| (u.id, u.username.clone(), u.email.clone(), u.disabled))
                    .collect();
                problems.extend(diff(format!("tenant {t} users"), api, model));
            }
            if let Some(items) = self.list_all(admin, "/v1/roles").await {
                let roles = parse::<Role>(items);
                let builtin: BTreeSet<String> =
                    roles.iter().filter(|r| r.tenant_id.is_none()).map(|r| r.name.clone()).collect();
                let expected: BTreeSet<String> = [
                    "tenant-admin",
                    "tenant-operator",
                    "tenant-viewer",
                    "auditor",
                    "cluster-admin",
                    "cluster-operator",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
                problems.extend(diff(format!("tenant {t} built-in roles"), builtin, expected));
                let api: BTreeSet<_> = roles
                    .into_iter()
                    .filter(|r| r.tenant_id == Some(tid))
                    .map(|r| (r.id, r.name, r.description, r.permissions))
                    .collect();
                let model: BTreeSet<_> = self.tenants[t]
                    .roles
                    .iter()
                    .filter(|r| r.alive)
                    .map(|r| (r.id, r.name.clone(), r.description.clone(), r.permissions.clone()))
                    .collect();
                problems.extend(diff(format!("tenant {t} roles"), api, model));
            }
            if let Some(items) = self.list_all(admin, "/v1/role-bindings").await {
                let api: BTreeSet<_> = parse::<RoleBinding>(items)
                    .into_iter()
                    .map(|b| (b.id, b.user_id, b.role_id, b.cluster_id))
                    .collect();
                let model: BTreeSet<_> = self.tenants[t]
                    .bindings
                    .iter()
                    .filter(|b| b.alive)
                    .map(|b| (b.id, b.user, b.role, b.cluster))
                    .collect();
                problems.extend(diff(format!("tenant {t} role bindings"), api, model));
            }
            if let Some(items) = self.list_all(admin, "/v1/templates").await {
                let templates = parse::<Template>(items);
                let public: BTreeSet<Uuid> = templates.iter().filter(|x| x.tenant_id.is_none()).map(|x| x.id).collect();
                problems.extend(diff(format!("tenant {t} public templates"), public, [self.public_template].into()));
                let api: BTreeSet<_> = templates
                    .into_iter()
                    .filter(|x| x.tenant_id.is_some())
                    .map(|x| (x.id, x.name, x.vcpus, x.memory_mib))
                    .collect();
                let model: BTreeSet<_> = self.tenants[t]
                    .templates
                    .iter()
                    .filter(|x| x.alive)
                    .map(|x| (x.id, x.name.clone(), x.vcpus, x.memory_mib))
                    .collect();
                problems.extend(diff(format!("tenant {t} templates"), api, model));
            }
            if let Some(items) = self.list_all(admin, "/v1/vms").await {
                let api: BTreeSet<_> = parse::<Vm>(items).into_iter().map(|v| (v.id, v.name, v.cluster_id)).collect();
                let model: BTreeSet<_> = self.tenants[t]
                    .vms
                    .iter()
                    .filter(|v| v.alive)
                    .map(|v| (v.id, v.name.clone(), self.clusters[v.cluster].id))
                    .collect();
                problems.extend(diff(format!("tenant {t} VMs"), api, model));
            }
            let vms: Vec<Uuid> = self.tenants[t].vms.iter().filter(|v| v.alive).map(|v| v.id).collect();
            for vm in vms {
                if let Some(items) = self.list_all(admin, &format!("/v1/vms/{vm}/snapshots")).await {
                    let api: BTreeSet<_> = parse::<Snapshot>(items).into_iter().map(|s| (s.id, s.name)).collect();
                    let model: BTreeSet<_> = self.tenants[t]
                        .snaps
                        .iter()
                        .filter(|s| s.alive && s.vm == vm)
                        .map(|s| (s.id, s.name.clone()))
                        .collect();
                    problems.extend(diff(format!("tenant {t} snapshots of VM {vm}"), api, model));
                }
            }
            if let Some(items) = self.list_all(admin, "/v1/quotas").await {
                let quotas = parse::<Quota>(items);
                let api: BTreeSet<_> =
                    quotas.iter().map(|q| (q.id, q.cluster_id, q.vcpus, q.memory_mib, q.max_vms, q.vms_used)).collect();
                let model: BTreeSet<_> = self.tenants[t]
                    .quotas
                    .iter()
                    .map(|(id, c)| {
                        let used = self.tenants[t].vms.iter().filter(|v| v.alive && v.cluster == *c).count() as i32;
                        (*id, self.clusters[*c].id, 6, 2048, 3, used)
                    })
                    .collect();
                problems.extend(diff(format!("tenant {t} quotas"), api, model));
            }
            for e in EXTRAS {
                if let Some(items) = self.list_all(admin, e.collection).await {
                    let api: BTreeSet<Uuid> =
                        items.iter().filter_map(|x| x["id"].as_str().and_then(|s| Uuid::parse_str(s).ok())).collect();
                    let model: BTreeSet<Uuid> =
                        self.tenants[t].extras.iter().filter(|x| x.kind == e.kind).map(|x| x.id).collect();
                    problems.extend(diff(format!("tenant {t} {}s", e.kind), api, model));
                }
            }
            let members: Vec<usize> =
                self.tenants[t].callers.iter().copied().filter(|c| self.callers[*c].kind != Kind::Staff).collect();
            for m in members {
                if let Some(items) = self.list_all(Who::Caller(m), "/v1/tokens").await {
                    let api: BTreeSet<_> =
                        parse::<ApiToken>(items).into_iter().map(|k| (k.id, k.name, k.revoked_at.is_some())).collect();
                    let model: BTreeSet<_> = self.tenants[t]
                        .tokens
                        .iter()
                        .filter(|k| k.caller == m)
                        .map(|k| (k.id, k.name.clone(), k.revoked))
                        .collect();
                    let label = self.callers[m].label.clone();
                    problems.extend(diff(format!("{label}'s tokens"), api, model));
                }
            }
            for p in problems {
                self.violation("model", p);
            }
        }
        self.class = class;
    }

    // --- setup --------------------------------------------------------------------------

    async fn setup(app: &TestApp, seed: u64) -> Walk {
        let mut db = app.db.admin().await;
        let fp_sql = fingerprint_sql(&mut db).await;
        let mut w = Walk {
            endpoint: app.endpoint.clone(),
            http: reqwest::Client::new(),
            db,
            fp_sql,
            fp_cache: vec![None; TENANTS],
            rng: StdRng::seed_from_u64(seed),
            seed,
            step: 0,
            action: "setup".into(),
            class: Class::Setup,
            calls: 0,
            calls_by_class: BTreeMap::new(),
            actions: BTreeMap::new(),
            attacks: 0,
            legit: 0,
            leaks: 0,
            violations: Vec::new(),
            violation_kinds: BTreeMap::new(),
            callers: Vec::new(),
            tenants: Vec::new(),
            clusters: Vec::new(),
            public_template: Uuid::nil(),
            registry: HashMap::new(),
            echo: vec![HashSet::new(); TENANTS],
            internal_strings: ["test:///", "provider-admin", "provider-operator", "provider-auditor"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            forced: None,
            timing: [Duration::ZERO; 3],
            fp_queries: 0,
            action_time: BTreeMap::new(),
            attack_outcomes: BTreeMap::new(),
            legit_outcomes: BTreeMap::new(),
        };
        let sys = Who::Caller(0);
        w.callers.push(Caller {
            label: "system/staff".into(),
            tenant: None,
            kind: Kind::Staff,
            cluster: None,
            user_id: Uuid::nil(),
            username: "admin".into(),
            token: app.admin_token.clone(),
        });
        let me = w.get(sys, "/v1/me").await;
        let staff_id = me.json["user"]["id"].as_str().and_then(|s| Uuid::parse_str(s).ok()).expect("staff id");
        w.callers[0].user_id = staff_id;
        w.own(staff_id, Owner::System);
        for r in basalt_server::authz::BUILTIN_ROLES {
            w.own(r.id, Owner::System);
        }
        // The staff's own system bindings: shared, not any tenant's.
        for b in w.get(sys, "/v1/role-bindings").await.items() {
            w.own(b["id"].as_str().expect("binding id"), Owner::System);
        }
        let regions = w.get(sys, "/v1/regions").await;
        for r in regions.items() {
            w.own(r["id"].as_str().expect("region id"), Owner::System);
        }
        for c in 0..CLUSTERS {
            let name = w.name("pc", Owner::Internal);
            let alias = w.name("cl", Owner::Cluster(c));
            w.internal_strings.push(name.clone());
            let body = json!({ "name": name, "alias": alias, "hosts": [format!("test:///default?name=atk{c}")] });
            let r = w.post(sys, "/v1/clusters", body).await;
            let id = r.uuid("id").unwrap_or_else(|| panic!("create cluster: {}", r.text));
            w.own(id, Owner::Cluster(c));
            w.clusters.push(ClusterM { id });
            // A public pool, for the tenants' floating IPs: its id reaches them
            // (a floating IP names its pool), its name never.
            let pool = w.name("pool", Owner::Internal);
            let body = json!({ "cluster_id": id, "name": pool, "cidr": format!("203.0.{}.0/24", 113 + c) });
            let r = w.post(sys, "/v1/ip-pools", body).await;
            w.own(r.uuid("id").unwrap_or_else(|| panic!("create ip pool: {}", r.text)), Owner::Cluster(c));
            for h in w.get(sys, &format!("/v1/clusters/{id}/hosts")).await.json.as_array().cloned().unwrap_or_default()
            {
                w.own(h["id"].as_str().expect("host id"), Owner::Internal);
            }
        }
        let name = w.name("pub", Owner::System);
        let r = w.post(sys, "/v1/templates", json!({ "name": name, "vcpus": 1, "memory_mib": 64 })).await;
        w.public_template = r.uuid("id").unwrap_or_else(|| panic!("public template: {}", r.text));
        w.own(w.public_template, Owner::System);

        for t in 0..TENANTS {
            let name = w.name(&format!("t{t}"), Owner::Tenant(t, None));
            let r = w.post(sys, "/v1/tenants", json!({ "name": name })).await;
            let id = r.uuid("id").unwrap_or_else(|| panic!("create tenant: {}", r.text));
            w.own(id, Owner::Tenant(t, None));
            w.tenants.push(TenantM {
                id,
                name: name.clone(),
                callers: Vec::new(),
                users: Vec::new(),
                roles: Vec::new(),
                bindings: Vec::new(),
                templates: Vec::new(),
                vms: Vec::new(),
                snaps: Vec::new(),
                tokens: Vec::new(),
                extras: Vec::new(),
                ops: Vec::new(),
                quotas: Vec::new(),
                cursors: Vec::new(),
                audit_ids: Vec::new(),
                harvested: HashSet::new(),
                pending: Vec::new(),
                ghost: format!("t{t}-zz{:010x}", w.rng.gen::<u64>() & 0xff_ffff_ffff),
                tickets: Vec::new(),
            });
            for c in 0..CLUSTERS {
                let body = json!({ "tenant_id": id, "cluster_id": w.clusters[c].id, "vcpus": 6, "memory_mib": 2048, "max_vms": 3, "disk_gib": 10 });
                let q = w.post(sys, "/v1/quotas", body).await;
                let qid = q.uuid("id").unwrap_or_else(|| panic!("create quota: {}", q.text));
                w.own(qid, Owner::Tenant(t, Some(c)));
                w.tenants[t].quotas.push((qid, c));
            }
            let switched = w
                .send(Who::As(0, SYSTEM), Method::POST, "/v1/auth/switch-tenant", Some(&json!({ "tenant": name })), &[])
                .await;
            let staff = Caller {
                label: format!("t{t}/staff"),
                tenant: Some(t),
                kind: Kind::Staff,
                cluster: None,
                user_id: staff_id,
                username: "admin".into(),
                token: switched.json["token"].as_str().expect("staff token").to_string(),
            };
            w.callers.push(staff);
            let staff = w.callers.len() - 1;
            w.tenants[t].callers.push(staff);
        }
        // The members: made and logged in all at once (argon2 is slow), checked in order.
        let mut planned = Vec::new();
        for t in 0..TENANTS {
            for (kind, role) in MEMBERS {
                planned.push((t, kind, role, w.name("u", Owner::Tenant(t, None))));
            }
        }
        let creates: Vec<(Who, &str, Value)> = planned
            .iter()
            .map(|(t, _, _, username)| {
                let staff = w.caller_of(*t, Kind::Staff);
                (Who::Caller(staff), "/v1/users", json!({ "username": username, "password": PASSWORD }))
            })
            .collect();
        let users = w.send_all(creates).await;
        let logins: Vec<(Who, &str, Value)> = planned
            .iter()
            .map(|(t, _, _, username)| {
                let viewer = Viewer { tenant: Some(*t), cluster: None, staff: false };
                let body = json!({ "username": username, "password": PASSWORD, "tenant": w.tenants[*t].name });
                (Who::Anonymous(viewer), "/v1/auth/login", body)
            })
            .collect();
        let mut made = Vec::new();
        for ((t, kind, role, username), r) in planned.into_iter().zip(users) {
            let user = serde_json::from_value::<User>(r.json.clone()).unwrap_or_else(|_| panic!("user: {}", r.text));
            w.own(user.id, Owner::Tenant(t, None));
            let cluster = match kind {
                Kind::ClusterAdmin => Some(t % CLUSTERS),
                Kind::ClusterOperator => Some((t + 1) % CLUSTERS),
                _ => None,
            };
            let role_id = basalt_server::authz::builtin_role_named(role).expect("built-in role").id;
            let mut body = json!({ "role_id": role_id, "user_id": user.id });
            if let Some(c) = cluster {
                body["cluster_id"] = json!(w.clusters[c].id);
            }
            let staff = w.caller_of(t, Kind::Staff);
            let b = w.post(Who::Caller(staff), "/v1/role-bindings", body).await;
            let binding = b.uuid("id").unwrap_or_else(|| panic!("binding: {}", b.text));
            w.own(binding, Owner::Tenant(t, None));
            w.tenants[t].users.push(UserM {
                id: user.id,
                username: username.clone(),
                email: None,
                disabled: false,
                version: user.version,
                alive: true,
                walk: false,
            });
            w.tenants[t].bindings.push(BindingM {
                id: binding,
                user: Some(user.id),
                role: role_id,
                cluster: cluster.map(|c| w.clusters[c].id),
                alive: true,
                walk: false,
            });
            made.push((t, kind, role, cluster, user.id, username));
        }
        let tokens = w.send_all(logins).await;
        for ((t, kind, role, cluster, user_id, username), login) in made.into_iter().zip(tokens) {
            let token = login.json["token"].as_str().unwrap_or_else(|| panic!("login: {}", login.text)).to_string();
            w.callers.push(Caller {
                label: format!("t{t}/{role}"),
                tenant: Some(t),
                kind,
                cluster,
                user_id,
                username,
                token,
            });
            let idx = w.callers.len() - 1;
            w.tenants[t].callers.push(idx);
        }
        // Something of each kind in every tenant before the first attack.
        w.class = Class::Legit;
        for t in 0..TENANTS {
            let admin = w.caller_of(t, Kind::Admin);
            w.forced = Some(admin);
            for action in ["user.create", "role.create", "template.create", "binding.create", "token.create"] {
                w.legit(action, t).await;
            }
            w.forced = None;
            for c in 0..CLUSTERS {
                let name = w.name("vm", Owner::Tenant(t, Some(c)));
                let body = json!({ "name": name, "cluster_id": w.clusters[c].id, "template_id": w.public_template });
                let r = w.call(admin, Method::POST, "/v1/vms", Some(body)).await;
                let (Some(op), Some(vm)) = (w.record_op(t, &r, c), r.uuid("target_id")) else {
                    panic!("seed VM: {}", r.text)
                };
                w.own(vm, Owner::Tenant(t, Some(c)));
                w.tenants[t].vms.push(VmM { id: vm, name, cluster: c, alive: true });
                w.tenants[t].pending.push((op, vm, PendingKind::Create));
            }
            w.drain(t).await;
            w.seed_extras(t, admin).await;
        }
        w.class = Class::Setup;
        w
    }

    /// One object of every newer family in tenant `t` (per cluster where they live on one).
    async fn seed_extras(&mut self, t: usize, admin: usize) {
        for e in EXTRAS {
            let clusters: Vec<Option<usize>> =
                if e.on_cluster { (0..CLUSTERS).map(Some).collect() } else { vec![None] };
            for c in clusters {
                let owner = Owner::Tenant(t, c);
                let name = self.name(&e.kind.replace('_', "-"), owner);
                let ci = c.unwrap_or(0);
                let vm = self.tenants[t].vms.iter().find(|v| v.alive && v.cluster == ci).map(|v| v.id);
                let vm = vm.expect("a seeded VM on the cluster");
                let body = (e.create)(&Seed { name: &name, t, c: ci, cluster: self.clusters[ci].id, vm });
                let r = self.call(admin, Method::POST, e.collection, Some(body)).await;
                // Created objects answer themselves, or wrap themselves with their
                // secret (an invitation and its token, a webhook and its key).
                let object = [&r.json, &r.json["invitation"], &r.json["webhook"]]
                    .into_iter()
                    .find(|o| o.get("id").is_some())
                    .unwrap_or(&r.json);
                let id = object["id"].as_str().and_then(|s| Uuid::parse_str(s).ok());
                let Some(id) = id.filter(|_| r.status == 201) else {
                    panic!("seed {}: {} {}", e.kind, r.status, r.text)
                };
                self.own(id, owner);
                let vm = e.on_vm.then_some(vm);
                self.tenants[t].extras.push(ExtraM { kind: e.kind, id, cluster: c, vm });
                if e.kind == "service_account" {
                    // A service account is a user too: the user list shows it.
                    self.tenants[t].users.push(UserM {
                        id,
                        username: object["name"].as_str().unwrap_or_default().to_string(),
                        email: None,
                        disabled: false,
                        version: 1,
                        alive: true,
                        walk: false,
                    });
                }
            }
        }
    }

    fn report(&self, elapsed: Duration) {
        println!("attack walk report");
        println!("  seed                {}", self.seed);
        println!("  steps               {}", self.step);
        println!("  calls               {}", self.calls);
        for (class, n) in &self.calls_by_class {
            println!("    {class:<18}{n}");
        }
        let attack_actions: u64 = self.actions.iter().filter(|(a, _)| a.starts_with("atk.")).map(|(_, n)| n).sum();
        let legit_actions: u64 = self.actions.iter().filter(|(a, _)| !a.starts_with("atk.")).map(|(_, n)| n).sum();
        println!("  attacks             {attack_actions} ({} calls, random twins included)", self.attacks);
        println!("  legitimate          {legit_actions} ({} calls)", self.legit);
        println!("  leaks               {}", self.leaks);
        println!("  violations          {}", self.violations.len());
        for (kind, n) in &self.violation_kinds {
            println!("    {kind:<18}{n}");
        }
        println!("  registry            {} ids and names", self.registry.len());
        println!("  elapsed             {:.1} s", elapsed.as_secs_f64());
        println!(
            "    http {:.1} s, fingerprints {:.1} s ({} queries), waiting for operations {:.1} s",
            self.timing[2].as_secs_f64(),
            self.timing[0].as_secs_f64(),
            self.fp_queries,
            self.timing[1].as_secs_f64()
        );
        println!("  attack answers (status code: calls, twins included):");
        for (o, n) in &self.attack_outcomes {
            println!("    {o:<44}{n}");
        }
        println!("  legitimate answers:");
        for (o, n) in &self.legit_outcomes {
            println!("    {o:<44}{n}");
        }
        println!("  per action:");
        for (action, n) in &self.actions {
            println!("    {action:<44}{n}");
        }
        println!("  time per action family:");
        for (action, d) in &self.action_time {
            println!("    {action:<44}{:.2} s", d.as_secs_f64());
        }
    }
}

/// One query answering, for one tenant, each tenant-scoped table's row count and
/// a digest of its rows (volatile columns masked; the append-only audit trail by
/// count and newest id).
async fn fingerprint_sql(conn: &mut PgConnection) -> String {
    let tables: Vec<(String, Vec<String>)> = sqlx::query_as(
        "SELECT c.table_name::text, array_agg(c.column_name::text ORDER BY c.ordinal_position)
           FROM information_schema.columns c
          WHERE c.table_schema = 'public'
            AND c.table_name IN (SELECT tablename FROM pg_tables WHERE schemaname = 'public')
            AND c.table_name IN (SELECT table_name FROM information_schema.columns
                                  WHERE table_schema = 'public' AND column_name = 'tenant_id')
          GROUP BY c.table_name ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("tenant tables");
    let parts: Vec<String> = tables
        .into_iter()
        .filter(|(t, _)| t != "login_failures")
        .map(|(table, columns)| {
            if table == "audit_events" {
                return format!(
                    "SELECT '{table}'::text, count(*), coalesce(max(id::text), '') FROM {table} WHERE tenant_id = $1"
                );
            }
            let kept: Vec<String> = columns
                .iter()
                .filter(|c| !VOLATILE.contains(&(table.as_str(), c.as_str())))
                .map(|c| format!("x.\"{c}\""))
                .collect();
            let row = format!("ROW({})::text", kept.join(", "));
            format!(
                "SELECT '{table}'::text, count(*), coalesce(md5(string_agg({row}, '|' ORDER BY {row})), '') FROM {table} x WHERE x.tenant_id = $1"
            )
        })
        .collect();
    assert!(parts.len() >= 10, "too few tenant tables: {parts:?}");
    parts.join(" UNION ALL ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolation_attack_walk() {
    let seed = match std::env::var("BASALT_ATTACK_SEED") {
        Ok(s) => s.trim().parse::<u64>().expect("BASALT_ATTACK_SEED must be an unsigned integer"),
        Err(_) => rand::random(),
    };
    let calls = std::env::var("BASALT_ATTACK_CALLS")
        .ok()
        .map(|s| s.trim().parse::<u64>().expect("BASALT_ATTACK_CALLS must be an unsigned integer"))
        .unwrap_or(DEFAULT_CALLS);
    println!("attack walk: seed {seed} (replay: BASALT_ATTACK_SEED={seed}), {calls} calls");
    let started = Instant::now();
    let app = TestApp::spawn_with(|c| c.reconcile_interval_seconds = 3600).await;
    let mut walk = Walk::setup(&app, seed).await;
    println!("setup: {} calls in {:.1} s", walk.calls, started.elapsed().as_secs_f64());
    walk.run(calls).await;
    walk.action = "final checkpoint".into();
    walk.checkpoint().await;
    walk.report(started.elapsed());
    let violations = std::mem::take(&mut walk.violations);
    drop(walk);
    app.stop().await;
    assert!(
        violations.is_empty(),
        "seed {seed}: {} violation(s) of the isolation invariant (replay with BASALT_ATTACK_SEED={seed}):\n{}",
        violations.len(),
        violations.iter().take(25).cloned().collect::<Vec<_>>().join("\n")
    );
}
