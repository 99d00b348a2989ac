//! `/v1/templates`: a base disk image plus default size. Templates made at system
//! scope are public (every tenant reads them); a tenant's own are private.
//!
//! Only provider staff name a base image path: a tenant naming a path on the
//! hosts could clone any file there (another tenant's disk), so a tenant template
//! carries no image of its own.

use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use basalt_client::{CreateTemplate, Page, Template, UpdateTemplate};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::crud;
use super::extract::{check_version, ApiJson, ApiQuery, IdempotencyKey, IfMatch, PageQuery, PathId, Req};
use crate::audit::Event;
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::validate;

const COLUMNS: &str = "id, tenant_id, name, vcpus, memory_mib, disk_gib, image, version, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct TemplateRow {
    id: Uuid,
    tenant_id: Option<Uuid>,
    name: String,
    vcpus: i32,
    memory_mib: i64,
    disk_gib: i32,
    image: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<TemplateRow> for Template {
    fn from(r: TemplateRow) -> Template {
        Template {
            id: r.id,
            tenant_id: r.tenant_id,
            name: r.name,
            vcpus: r.vcpus,
            memory_mib: r.memory_mib,
            disk_gib: r.disk_gib,
            image: r.image,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// vCPU and memory bounds shared by templates and VMs.
pub fn check_size(vcpus: Option<i32>, memory_mib: Option<i64>) -> ApiResult<()> {
    if vcpus.is_some_and(|v| !(1..=256).contains(&v)) {
        return Err(ApiError::bad_field("vcpus", "vcpus must be 1 to 256"));
    }
    if memory_mib.is_some_and(|m| !(64..=1_048_576).contains(&m)) {
        return Err(ApiError::bad_field("memory_mib", "memory_mib must be 64 to 1048576"));
    }
    Ok(())
}

fn check_image(image: &str) -> ApiResult<()> {
    let ok = image.is_empty()
        || (image.starts_with('/')
            && image.len() <= 1024
            && !image.split('/').any(|part| part == "..")
            && !image.bytes().any(|b| b.is_ascii_control()));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_field("image", "image must be an absolute path (no '..') of at most 1024 characters"))
    }
}

/// A template visible in `tx` (the context's own or a public one).
pub async fn fetch(tx: &mut Tx, id: Uuid) -> ApiResult<Template> {
    crud::fetch::<TemplateRow, _>(tx, "templates", COLUMNS, id, false, "template").await
}

/// The context's own template, locked for a change; a public one is read-only inside a tenant.
async fn fetch_own(req: &Req, tx: &mut Tx, id: Uuid) -> ApiResult<Template> {
    let seen = fetch(tx, id).await?;
    if seen.tenant_id != req.principal.context.tenant() {
        return Err(ApiError::Forbidden("public templates belong to the provider and are read-only here".into()));
    }
    crud::fetch::<TemplateRow, _>(tx, "templates", COLUMNS, id, true, "template").await
}

/// List the context's templates and the public ones.
#[utoipa::path(get, operation_id = "templates_list", path = "/v1/templates", tag = "compute", params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<Template>)), security(("bearer" = [])))]
pub async fn list(req: Req, ApiQuery(q): ApiQuery<PageQuery>) -> ApiResult<Json<Page<Template>>> {
    crud::list::<TemplateRow, Template>(&req, &q, "templates", COLUMNS).await
}

/// Create a template: public at system scope, private inside a tenant. Accepts `Idempotency-Key`.
#[utoipa::path(post, operation_id = "templates_create", path = "/v1/templates", tag = "compute", request_body = CreateTemplate,
    responses((status = 201, body = Template), (status = 400), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn create(req: Req, key: IdempotencyKey, ApiJson(body): ApiJson<CreateTemplate>) -> ApiResult<Response> {
    let tenant = req.check_body_tenant(body.tenant_id)?;
    validate::name("name", &body.name)?;
    check_size(Some(body.vcpus), Some(body.memory_mib))?;
    let disk_gib = body.disk_gib.unwrap_or(10);
    if !(1..=65536).contains(&disk_gib) {
        return Err(ApiError::bad_field("disk_gib", "disk_gib must be 1 to 65536"));
    }
    let image = body.image.clone().unwrap_or_default();
    check_image(&image)?;
    if tenant.is_some() && !image.is_empty() {
        return Err(ApiError::Unprocessable {
            code: "image_not_allowed",
            message: "only provider (public) templates name a base image on the hosts".into(),
            details: json!({ "field": "image" }),
        });
    }
    let b = body.clone();
    crud::create(
        req.tx()?,
        &req,
        &key,
        &body,
        move |tx| {
            Box::pin(async move {
                let row: TemplateRow = sqlx::query_as(&format!(
                    "INSERT INTO templates (id, tenant_id, name, vcpus, memory_mib, disk_gib, image)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
                ))
                .bind(Uuid::now_v7())
                .bind(tenant)
                .bind(b.name)
                .bind(b.vcpus)
                .bind(b.memory_mib)
                .bind(disk_gib)
                .bind(image)
                .fetch_one(&mut **tx)
                .await?;
                Ok(Template::from(row))
            })
        },
        |t| Event::new("template.create", "template", Some(t.id)).details(json!({ "after": t })),
    )
    .await
}

/// Read a template.
#[utoipa::path(get, operation_id = "templates_get", path = "/v1/templates/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 200, body = Template), (status = 404)), security(("bearer" = [])))]
pub async fn get(req: Req, PathId(id): PathId) -> ApiResult<Json<Template>> {
    let mut tx = req.tx()?;
    let template = fetch(&mut tx, id).await?;
    tx.commit().await?;
    Ok(Json(template))
}

/// Change a template's default size (VMs made from it keep theirs).
#[utoipa::path(patch, operation_id = "templates_update", path = "/v1/templates/{id}", tag = "compute", params(("id" = Uuid, Path)),
    request_body = UpdateTemplate, responses((status = 200, body = Template), (status = 403), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn update(
    req: Req,
    PathId(id): PathId,
    if_match: IfMatch,
    ApiJson(body): ApiJson<UpdateTemplate>,
) -> ApiResult<Json<Template>> {
    check_size(body.vcpus, body.memory_mib)?;
    let mut tx = req.tx()?;
    let current = fetch_own(&req, &mut tx, id).await?;
    check_version(&if_match, current.version)?;
    let row: TemplateRow = sqlx::query_as(&format!(
        "UPDATE templates SET vcpus = COALESCE($2, vcpus), memory_mib = COALESCE($3, memory_mib),
                version = version + 1, updated_at = now()
          WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(body.vcpus)
    .bind(body.memory_mib)
    .fetch_one(&mut *tx)
    .await?;
    crud::updated(tx, &req, "template.update", "template", id, &current, Template::from(row)).await
}

/// Delete a template. VMs made from it keep their disks (linked clones of the
/// base image, which Basalt never deletes).
#[utoipa::path(delete, operation_id = "templates_delete", path = "/v1/templates/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403), (status = 404)), security(("bearer" = [])))]
pub async fn delete(req: Req, PathId(id): PathId) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    let current = fetch_own(&req, &mut tx, id).await?;
    crud::deleted(tx, &req, "templates", "template.delete", "template", id, &current).await
}
