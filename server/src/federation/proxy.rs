//! Global mode: region-scoped routes (clusters, quotas, templates, VMs, networks, volumes,
//! IP pools, floating IPs, operations) are forwarded to the region that holds them, as the caller.
//!
//! The controller authenticates the caller and checks the route's permission at
//! the usual choke point, then forwards the request signed, with the caller and
//! its grants in `X-Basalt-Principal`; the region applies the same authorization
//! to its own objects (cluster scopes, RLS). Which region:
//!
//! * an object in the path: the region recorded when it was created through the
//!   controller (`region_objects`), else the one that says it holds it when
//!   asked (in the caller's context; recorded then);
//! * a create: the body's `region` (clusters, templates) or its `cluster_id`'s
//!   region (quotas, VMs, placement groups, networks, volumes, security groups,
//!   quota requests, IP pools, floating IPs, maintenance windows), or its
//!   `vm_id`'s region (snapshot schedules); a quota
//!   also entitles its tenant to that region;
//! * a list: every region the caller may see, merged by id (ids are UUIDv7, so
//!   one cursor pages through all of them).
//!
//! A caller only ever reaches regions it can see: tenants see the regions they
//! are entitled to, so another region's objects are 404. A region that does not
//! answer fails fast with 503 `region_unavailable` naming it; lists skip it and
//! name it in the `Basalt-Unavailable-Regions` header.

use axum::body::Bytes;
use axum::extract::MatchedPath;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use uuid::Uuid;

use super::health::{self, RegionTarget};
use super::identity::ForwardedPrincipal;
use super::signing::PRINCIPAL;
use super::Federation;
use crate::api::extract::{encode_cursor, Req, DEFAULT_LIMIT};
use crate::db::{DbScope, Tx};
use crate::error::{ApiError, ApiResult};

/// The collections a region holds; everything under them is forwarded.
const REGION_COLLECTIONS: &[(&str, &str)] = &[
    ("/v1/clusters", "cluster"),
    ("/v1/quotas", "quota"),
    ("/v1/quota-requests", "quota_request"),
    ("/v1/templates", "template"),
    ("/v1/vms", "vm"),
    ("/v1/operations", "operation"),
    ("/v1/placement-groups", "placement_group"),
    ("/v1/networks", "network"),
    ("/v1/volumes", "volume"),
    // Public IP pools and floating IPs (perm-g).
    ("/v1/ip-pools", "ip_pool"),
    ("/v1/floating-ips", "floating_ip"),
    // Snapshot schedules and maintenance windows (perm-e).
    ("/v1/snapshot-schedules", "snapshot_schedule"),
    ("/v1/maintenance-windows", "maintenance_window"),
    // Security groups (perm-f).
    ("/v1/security-groups", "security_group"),
];

/// The collection (and object kind) of a route template, if a region holds it.
pub fn region_collection(path: &str) -> Option<(&'static str, &'static str)> {
    REGION_COLLECTIONS
        .iter()
        .copied()
        .find(|(c, _)| path == *c || path.strip_prefix(c).is_some_and(|r| r.starts_with('/')))
}

/// A region the caller can see.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Visible {
    pub id: Uuid,
    pub name: String,
    pub endpoint: String,
    pub health: String,
}

/// The regions visible in `tx` (RLS: a tenant sees those it is entitled to).
pub async fn visible_regions(tx: &mut Tx) -> ApiResult<Vec<Visible>> {
    Ok(sqlx::query_as("SELECT id, name, endpoint, health FROM regions ORDER BY name").fetch_all(&mut **tx).await?)
}

/// The handler of every region-scoped route at the controller.
pub async fn forward(
    req: Req,
    matched: MatchedPath,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    forward_inner(req, matched.as_str(), method, uri, headers, body).await.unwrap_or_else(IntoResponse::into_response)
}

async fn forward_inner(
    req: Req,
    template: &str,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let fed = req.state.federation.clone().ok_or_else(|| ApiError::internal("forwarding without federation"))?;
    let (collection, kind) = region_collection(template).ok_or(ApiError::NotFound { kind: "route" })?;
    let mut tx = req.tx()?;
    let regions = visible_regions(&mut tx).await?;
    tx.commit().await?;
    let principal = ForwardedPrincipal::new(&req.principal, req.grants.rows()).encode();
    if method == Method::GET && template == collection {
        return list(&fed, &regions, &uri, &headers, &principal).await;
    }
    let region = match path_id(uri.path(), collection)? {
        Some(id) => locate(&req, &fed, &regions, id, &principal, true).await?.0,
        None => by_body(&req, &fed, &regions, collection, &body, &principal).await?,
    };
    if collection == "/v1/quotas" && method == Method::POST {
        entitle_for_quota(&req, &fed, &region, &body).await?;
    }
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or(uri.path()).to_string();
    let (status, resp_headers, resp_body) =
        send(&fed, &region, method.clone(), &path_and_query, &headers, &principal, body.to_vec()).await?;
    let mut resp_body = resp_body;
    if status.is_success() && method == Method::POST {
        record_created(&req, &region, kind, &resp_body).await;
        if template == "/v1/vms/{id}/console" {
            resp_body = absolute_console_url(&region, resp_body);
        }
    }
    Ok(build_response(status, &resp_headers, resp_body))
}

/// The object id right under the collection, if the path has one.
fn path_id(path: &str, collection: &str) -> ApiResult<Option<Uuid>> {
    let rest = path.strip_prefix(collection).unwrap_or("").trim_start_matches('/');
    match rest.split('/').next().filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(raw) => {
            Uuid::try_parse(raw).map(Some).map_err(|_| ApiError::bad_field("id", "the id in the path must be a UUID"))
        }
    }
}

/// Which region holds object `id`, among those the caller can see. `cached`:
/// trust (and fill) the controller's record; off, the regions are asked in the
/// caller's context, which also says whether the caller can see it.
pub async fn locate(
    req: &Req,
    fed: &Federation,
    regions: &[Visible],
    id: Uuid,
    principal: &str,
    cached: bool,
) -> ApiResult<(Visible, String)> {
    if cached {
        let mut tx = req.state.db.begin(DbScope::System, None, false).await?;
        let hit: Option<(Uuid, String)> = sqlx::query_as("SELECT region_id, kind FROM region_objects WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        if let Some((region_id, kind)) = hit {
            let region =
                regions.iter().find(|r| r.id == region_id).cloned().ok_or(ApiError::NotFound { kind: "object" })?;
            return Ok((region, kind));
        }
    }
    let asks = regions.iter().map(|r| ask(fed, r, id, principal));
    let answers = futures_util::future::join_all(asks).await;
    let mut silent = Vec::new();
    for (region, answer) in regions.iter().zip(answers) {
        match answer {
            Asked::Holds(kind) => {
                if cached {
                    remember(req, region.id, &[(id, &kind)]).await;
                }
                return Ok((region.clone(), kind));
            }
            Asked::Absent => {}
            Asked::Silent => silent.push(region.name.clone()),
        }
    }
    if silent.is_empty() {
        Err(ApiError::NotFound { kind: "object" })
    } else {
        Err(ApiError::RegionUnavailable {
            region: silent.join(", "),
            reason: "it does not answer, so whether it holds this object is unknown".into(),
        })
    }
}

enum Asked {
    Holds(String),
    Absent,
    Silent,
}

/// `GET /v1/federation/objects/{id}` at one region, in the caller's context.
async fn ask(fed: &Federation, region: &Visible, id: Uuid, principal: &str) -> Asked {
    if region.health == "unreachable" {
        return Asked::Silent;
    }
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(principal) {
        headers.insert(PRINCIPAL, v);
    }
    let path = format!("/v1/federation/objects/{id}");
    match fed.call(&region.endpoint, &region.name, Method::GET, &path, headers, Vec::new()).await {
        Ok(r) if r.status() == StatusCode::OK => {
            let kind = r.json::<Value>().await.ok().and_then(|v| v["kind"].as_str().map(str::to_string));
            Asked::Holds(kind.unwrap_or_default())
        }
        Ok(r) if r.status() == StatusCode::NOT_FOUND => Asked::Absent,
        _ => Asked::Silent,
    }
}

/// Records that `region` holds these objects (id, kind), in one statement.
async fn remember(req: &Req, region: Uuid, objects: &[(Uuid, &str)]) {
    let ids: Vec<Uuid> = objects.iter().map(|(id, _)| *id).collect();
    let kinds: Vec<&str> = objects.iter().map(|(_, kind)| *kind).collect();
    let result = async {
        let mut tx = req.state.db.begin(DbScope::System, None, true).await?;
        sqlx::query(
            "INSERT INTO region_objects (id, region_id, kind) SELECT o.id, $2, o.kind
               FROM unnest($1::uuid[], $3::text[]) AS o(id, kind) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&ids)
        .bind(region)
        .bind(&kinds)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "recording an object's region failed (it will be looked up again)");
    }
}

/// Can the caller see cluster `id` (a tenant: it holds a quota on it)? Here by
/// RLS; at a controller by asking the regions the caller can see, in its context.
pub async fn cluster_visible(req: &Req, tx: &mut Tx, id: Uuid) -> ApiResult<bool> {
    let Some(fed) = req.state.federation.as_deref().filter(|f| f.mode() == super::Mode::Global) else {
        let (visible,): (bool,) = sqlx::query_as("SELECT EXISTS (SELECT 1 FROM clusters WHERE id = $1)")
            .bind(id)
            .fetch_one(&mut **tx)
            .await?;
        return Ok(visible);
    };
    let regions = visible_regions(tx).await?;
    let principal = ForwardedPrincipal::new(&req.principal, req.grants.rows()).encode();
    match locate(req, fed, &regions, id, &principal, false).await {
        Ok((_, kind)) => Ok(kind == "cluster"),
        Err(ApiError::NotFound { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The region a create goes to, from its body.
async fn by_body(
    req: &Req,
    fed: &Federation,
    regions: &[Visible],
    collection: &str,
    body: &[u8],
    principal: &str,
) -> ApiResult<Visible> {
    let json: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("invalid_body", format!("the body is not valid JSON: {e}")))?;
    match collection {
        "/v1/clusters" | "/v1/templates" => match json.get("region").and_then(Value::as_str) {
            Some(r) => regions.iter().find(|v| v.name == r || v.id.to_string() == r).cloned().ok_or_else(|| {
                ApiError::Unprocessable {
                    code: "invalid_reference",
                    message: format!("no region named {r}"),
                    details: serde_json::json!({ "field": "region" }),
                }
            }),
            None if regions.len() == 1 => Ok(regions[0].clone()),
            None => Err(ApiError::Unprocessable {
                code: "region_required",
                message: "there are several regions: name one in `region`".into(),
                details: serde_json::json!({ "field": "region" }),
            }),
        },
        _ => {
            // A snapshot schedule goes where its VM is; everything else where its cluster is.
            let (field, what) =
                if collection == "/v1/snapshot-schedules" { ("vm_id", "VM") } else { ("cluster_id", "cluster") };
            let holder = json
                .get(field)
                .and_then(Value::as_str)
                .and_then(|s| Uuid::try_parse(s).ok())
                .ok_or_else(|| ApiError::bad_field(field, format!("{field} is required and must be a UUID")))?;
            locate(req, fed, regions, holder, principal, true).await.map(|(region, _)| region).map_err(|e| match e {
                ApiError::NotFound { .. } => ApiError::Unprocessable {
                    code: "invalid_reference",
                    message: format!("no such {what}"),
                    details: serde_json::json!({ "field": field }),
                },
                other => other,
            })
        }
    }
}

/// Capacity in a region entitles to it: before a quota is forwarded, its tenant
/// is entitled to the cluster's region and pushed there (the region must know
/// the tenant before it can hold its quota). Undone if the push fails.
async fn entitle_for_quota(req: &Req, fed: &Federation, region: &Visible, body: &[u8]) -> ApiResult<()> {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let Some(tenant) = json.get("tenant_id").and_then(Value::as_str).and_then(|s| Uuid::try_parse(s).ok()) else {
        return Ok(()); // the region answers the 400
    };
    let mut tx = req.state.db.begin(DbScope::System, None, true).await?;
    let added = sqlx::query(
        "INSERT INTO tenant_regions (tenant_id, region_id) SELECT id, $2 FROM tenants WHERE id = $1 AND state <> 'deleted'
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant)
    .bind(region.id)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    tx.commit().await?;
    if !added {
        return Ok(());
    }
    let target = RegionTarget { id: region.id, name: region.name.clone(), endpoint: region.endpoint.clone() };
    let pushed = health::check_one(&req.state, fed, &target).await;
    if pushed.answer.is_none() {
        let mut tx = req.state.db.begin(DbScope::System, None, true).await?;
        sqlx::query("DELETE FROM tenant_regions WHERE tenant_id = $1 AND region_id = $2")
            .bind(tenant)
            .bind(region.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        return Err(ApiError::RegionUnavailable {
            region: region.name.clone(),
            reason: pushed.error.unwrap_or_else(|| "the tenant could not be pushed to it".into()),
        });
    }
    tracing::info!(tenant = %tenant, region = %region.name, "tenant entitled to a region by its first quota there");
    Ok(())
}

/// Headers a forwarded request keeps.
const FORWARDED_HEADERS: &[&str] = &["content-type", "idempotency-key", "if-match", "accept", "x-request-id"];
/// Headers a forwarded answer keeps.
const ANSWER_HEADERS: &[&str] = &["content-type", "location", "retry-after", "www-authenticate", "etag"];

/// Sends the request to `region` as the caller; a region known to be down, or
/// that does not answer, is a 503 naming it.
async fn send(
    fed: &Federation,
    region: &Visible,
    method: Method,
    path_and_query: &str,
    headers: &HeaderMap,
    principal: &str,
    body: Vec<u8>,
) -> ApiResult<(StatusCode, HeaderMap, Bytes)> {
    let unavailable = |reason: String| ApiError::RegionUnavailable { region: region.name.clone(), reason };
    if region.health == "unreachable" {
        return Err(unavailable("it did not answer its last health check".into()));
    }
    let mut extra = HeaderMap::new();
    for name in FORWARDED_HEADERS {
        if let Some(v) = headers.get(*name) {
            extra.insert(*name, v.clone());
        }
    }
    extra.insert(PRINCIPAL, HeaderValue::from_str(principal).map_err(ApiError::internal)?);
    let resp = fed
        .call(&region.endpoint, &region.name, method, path_and_query, extra, body)
        .await
        .map_err(|e| unavailable(e.0))?;
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut kept = HeaderMap::new();
    for name in ANSWER_HEADERS {
        if let Some(v) = resp.headers().get(*name).and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok()) {
            kept.insert(*name, v);
        }
    }
    let bytes = resp.bytes().await.map_err(|e| unavailable(e.to_string()))?;
    Ok((status, kept, bytes))
}

fn build_response(status: StatusCode, headers: &HeaderMap, body: Bytes) -> Response {
    let mut resp = (status, body).into_response();
    for (name, value) in headers {
        resp.headers_mut().insert(name.clone(), value.clone());
    }
    resp
}

/// Records where a created object lives: the object of a 201, or the
/// operation of a 202 and the object it works on.
async fn record_created(req: &Req, region: &Visible, kind: &str, body: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let uuid = |field: &str| v[field].as_str().and_then(|s| Uuid::try_parse(s).ok());
    match (uuid("id"), uuid("target_id"), v["target_type"].as_str()) {
        (Some(op), Some(target), Some(target_kind)) => {
            remember(req, region.id, &[(op, "operation"), (target, target_kind)]).await
        }
        (Some(id), _, _) => remember(req, region.id, &[(id, kind)]).await,
        _ => {}
    }
}

/// A console ticket's websocket is served by the region itself.
fn absolute_console_url(region: &Visible, body: Bytes) -> Bytes {
    let Ok(mut v) = serde_json::from_slice::<Value>(&body) else {
        return body;
    };
    if let Some(url) = v["url"].as_str() {
        let base = region.endpoint.trim_end_matches('/').replacen("http", "ws", 1);
        v["url"] = Value::String(format!("{base}{url}"));
    }
    serde_json::to_vec(&v).map(Bytes::from).unwrap_or(body)
}

/// A list over every region the caller can see, merged by id.
async fn list(
    fed: &Federation,
    regions: &[Visible],
    uri: &Uri,
    headers: &HeaderMap,
    principal: &str,
) -> ApiResult<Response> {
    let limit = uri
        .query()
        .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("limit=")))
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(DEFAULT_LIMIT as usize);
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or(uri.path()).to_string();
    let calls = regions.iter().map(|r| send(fed, r, Method::GET, &path_and_query, headers, principal, Vec::new()));
    let answers = futures_util::future::join_all(calls).await;
    let mut items: Vec<Value> = Vec::new();
    let mut more = false;
    let mut silent = Vec::new();
    for (region, answer) in regions.iter().zip(answers) {
        match answer {
            Err(_) => silent.push(region.name.clone()),
            Ok((status, h, body)) if !status.is_success() => return Ok(build_response(status, &h, body)),
            Ok((_, _, body)) => {
                let page: Value = serde_json::from_slice(&body).map_err(ApiError::internal)?;
                more |= !page["next_cursor"].is_null();
                if let Value::Array(a) = &page["items"] {
                    items.extend(a.iter().cloned());
                }
            }
        }
    }
    if !regions.is_empty() && silent.len() == regions.len() {
        return Err(ApiError::RegionUnavailable { region: silent.join(", "), reason: "no region answered".into() });
    }
    items.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    more |= items.len() > limit;
    items.truncate(limit);
    let next_cursor = if more {
        items.last().and_then(|i| i["id"].as_str()).and_then(|s| Uuid::try_parse(s).ok()).map(encode_cursor)
    } else {
        None
    };
    let mut resp = axum::Json(serde_json::json!({ "items": items, "next_cursor": next_cursor })).into_response();
    if let Ok(v) = HeaderValue::from_str(&silent.join(", ")) {
        if !silent.is_empty() {
            resp.headers_mut().insert("basalt-unavailable-regions", v);
        }
    }
    Ok(resp)
}
