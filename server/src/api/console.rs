//! A VM's serial console over a websocket.
//!
//! `POST /v1/vms/{id}/console` (permission `vm:console`) issues a ticket:
//! `bct_<tenant>_<ticket id>_<secret>`, valid once for 60 seconds, stored as
//! SHA-256(secret). `GET /v1/vms/{id}/console/ws?ticket=...` upgrades to a
//! websocket when the ticket is good: the ticket names its tenant, so the lookup
//! runs in that tenant's context under RLS like everything else, and consuming
//! it is one `UPDATE ... WHERE used_at IS NULL`, so two uses race to one winner.
//! The socket carries the guest's serial output as binary frames and sends what
//! the client writes (text or binary) to the guest.
//!
//! Sessions: `GET /v1/vms/{id}/console-sessions` lists a VM's outstanding
//! tickets and open sessions (who, when; never a secret), and
//! `DELETE /v1/vms/{id}/console-sessions/{session_id}` revokes one (the session
//! id is the ticket's). A revoked ticket no longer redeems. An open websocket may
//! be served by any replica, so revocation is not a message to the process
//! holding it: the socket's loop reads its ticket row every
//! [`REVOCATION_CHECK`] and closes itself once the row says revoked. A socket
//! ends within that interval of a revocation, not at once.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use basalt_client::{ConsoleSession, ConsoleTicket, VmState};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::extract::{PathId, PathIds, Req};
use super::vms;
use crate::app::AppState;
use crate::audit::{self, Event};
use crate::authz::Permission;
use crate::compute::{placement, ConsoleStream};
use crate::db::DbScope;
use crate::error::{ApiError, ApiResult};

const PREFIX: &str = "bct_";
const TICKET_TTL_SECONDS: i64 = 60;
/// How often an open console socket checks whether its session was revoked.
pub const REVOCATION_CHECK: std::time::Duration = std::time::Duration::from_secs(2);

fn format_ticket(tenant: Uuid, id: Uuid, secret: &str) -> String {
    format!("{PREFIX}{}_{}_{secret}", tenant.simple(), id.simple())
}

fn parse_ticket(ticket: &str) -> Option<(Uuid, Uuid, &str)> {
    let mut parts = ticket.strip_prefix(PREFIX)?.splitn(3, '_');
    let tenant = Uuid::try_parse(parts.next()?).ok()?;
    let id = Uuid::try_parse(parts.next()?).ok()?;
    Some((tenant, id, parts.next()?))
}

/// Issue a single-use console ticket for a running VM.
#[utoipa::path(post, operation_id = "vms_console_ticket", path = "/v1/vms/{id}/console", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 201, body = ConsoleTicket), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn ticket(req: Req, PathId(id): PathId) -> ApiResult<Response> {
    let mut tx = req.tx()?;
    let vm = vms::fetch(&req, &mut tx, id, false).await?;
    req.grants.require_on_cluster(Permission::VmConsole, vm.cluster_id)?;
    if !matches!(vm.state(), VmState::Running | VmState::Suspended) {
        return Err(ApiError::Conflict {
            code: "invalid_vm_state",
            message: format!("the VM is {}: a console needs a running VM", vm.state().as_str()),
        });
    }
    let tenant = req.principal.context.tenant().ok_or(ApiError::NotFound { kind: "vm" })?;
    let (secret, digest) = crate::auth::api_token::generate_secret();
    let ticket_id = Uuid::now_v7();
    let (expires_at,): (chrono::DateTime<chrono::Utc>,) = sqlx::query_as(
        "INSERT INTO console_tickets (id, tenant_id, vm_id, user_id, secret_sha256, expires_at)
         VALUES ($1, basalt_tenant(), $2, $3, $4, now() + make_interval(secs => $5)) RETURNING expires_at",
    )
    .bind(ticket_id)
    .bind(vm.id)
    .bind(req.principal.user_id)
    .bind(digest)
    .bind(TICKET_TTL_SECONDS as f64)
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        &req,
        Event::new("vm.console", "vm", Some(vm.id)).details(json!({ "ticket_id": ticket_id })),
    )
    .await?;
    tx.commit().await?;
    let ticket = format_ticket(tenant, ticket_id, &secret);
    let url = format!("/v1/vms/{}/console/ws?ticket={ticket}", vm.id);
    Ok((StatusCode::CREATED, Json(ConsoleTicket { ticket, expires_at, url })).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TicketQuery {
    /// The ticket from `POST /v1/vms/{id}/console`.
    pub ticket: String,
}

/// Consumes the ticket for VM `vm` in its tenant's context; answers the tenant
/// and the ticket's id (the session's).
async fn redeem(state: &AppState, vm: Uuid, ticket: &str) -> ApiResult<(Uuid, Uuid)> {
    let invalid = || ApiError::Unauthenticated("the console ticket is not valid (or was used, or expired)".into());
    let (tenant, id, secret) = parse_ticket(ticket).ok_or_else(invalid)?;
    // Interactive access changes the guest: a suspended tenant answers 423.
    let mut tx = state.db.begin(DbScope::Tenant(tenant), None, true).await.map_err(|e| match ApiError::from(e) {
        ApiError::Unauthenticated(_) => invalid(),
        other => other,
    })?;
    let row: Option<(Vec<u8>, bool)> = sqlx::query_as(
        "UPDATE console_tickets t SET used_at = now()
          WHERE t.id = $1 AND t.vm_id = $2 AND t.used_at IS NULL AND t.expires_at > now() AND t.revoked_at IS NULL
          RETURNING t.secret_sha256,
                    EXISTS (SELECT 1 FROM users u WHERE u.id = t.user_id AND NOT u.disabled)",
    )
    .bind(id)
    .bind(vm)
    .fetch_optional(&mut *tx)
    .await?;
    let (stored, user_active) = row.ok_or_else(invalid)?;
    let digest = Sha256::digest(secret.as_bytes());
    let matches: bool = subtle::ConstantTimeEq::ct_eq(digest.as_slice(), stored.as_slice()).into();
    if !matches || !user_active {
        // Rolled back: a wrong secret does not burn the real holder's ticket.
        return Err(invalid());
    }
    tx.commit().await?;
    Ok((tenant, id))
}

/// The serial console as a websocket, authorized by a console ticket.
#[utoipa::path(get, operation_id = "vms_console_websocket", path = "/v1/vms/{id}/console/ws", tag = "compute", params(("id" = Uuid, Path), TicketQuery),
    responses((status = 101, description = "websocket: binary frames of serial output; text or binary frames are typed into the guest"),
        (status = 401), (status = 422)))]
pub async fn websocket(
    State(state): State<AppState>,
    PathId(vm): PathId,
    query: Result<Query<TicketQuery>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let Query(q) = query.map_err(|_| ApiError::bad_field("ticket", "the console ticket is required as ?ticket="))?;
    let upgrade =
        upgrade.map_err(|_| ApiError::bad_request("websocket_required", "this route is a websocket upgrade"))?;
    let (tenant, session) = redeem(&state, vm, &q.ticket).await?;
    // The ticket is spent; now the host (one pooled connection at a time).
    let opened = async {
        let host = placement::host_of(&state.db, vm).await?;
        Ok::<_, ApiError>(state.compute.call(move |hv| hv.console(&host.uri, vm)).await?)
    }
    .await;
    let console = match opened {
        Ok(console) => console,
        Err(e) => {
            closed(&state, tenant, session).await;
            return Err(e);
        }
    };
    tracing::info!(%vm, %session, "console opened");
    Ok(upgrade.on_upgrade(move |socket| async move {
        bridge(socket, console, SessionWatch { state: state.clone(), tenant, session }).await;
        closed(&state, tenant, session).await;
    }))
}

/// Which session a socket serves, to notice its revocation.
struct SessionWatch {
    state: AppState,
    tenant: Uuid,
    session: Uuid,
}

impl SessionWatch {
    /// Has the session been revoked? A database that cannot be asked keeps
    /// the session (the next check asks again).
    async fn revoked(&self) -> bool {
        let asked = async {
            let mut tx = self.state.db.begin(DbScope::Tenant(self.tenant), None, false).await?;
            let row: Option<(bool,)> =
                sqlx::query_as("SELECT revoked_at IS NOT NULL FROM console_tickets WHERE id = $1")
                    .bind(self.session)
                    .fetch_optional(&mut *tx)
                    .await?;
            tx.commit().await?;
            Ok::<bool, ApiError>(row.is_none_or(|(revoked,)| revoked))
        }
        .await;
        asked.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not check the console session's revocation");
            false
        })
    }
}

/// Records that the session ended.
async fn closed(state: &AppState, tenant: Uuid, session: Uuid) {
    let recorded = async {
        let mut tx = state.db.begin(DbScope::Tenant(tenant), None, false).await?;
        sqlx::query("UPDATE console_tickets SET closed_at = now() WHERE id = $1 AND closed_at IS NULL")
            .bind(session)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<(), ApiError>(())
    }
    .await;
    if let Err(e) = recorded {
        tracing::warn!(error = %e, "could not record the console session's end");
    }
}

/// Copies guest output to the socket and socket input to the guest until
/// either side ends. libvirt's reads block, so they run on a blocking thread.
/// The session is checked for revocation every [`REVOCATION_CHECK`].
async fn bridge(socket: WebSocket, console: Arc<dyn ConsoleStream>, watch: SessionWatch) {
    let (mut to_client, mut from_client) = socket.split();
    let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    let reader = Arc::clone(&console);
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; 4096];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if out_tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut check = tokio::time::interval(REVOCATION_CHECK);
    check.tick().await;
    loop {
        tokio::select! {
            _ = check.tick() => {
                if watch.revoked().await {
                    tracing::info!(session = %watch.session, "console session revoked: closing");
                    let _ = to_client.send(Message::Close(None)).await;
                    break;
                }
            }
            output = out_rx.recv() => match output {
                Some(bytes) => {
                    if to_client.send(Message::Binary(bytes.into())).await.is_err() {
                        break;
                    }
                }
                None => {
                    let _ = to_client.send(Message::Close(None)).await;
                    break;
                }
            },
            input = from_client.next() => match input {
                Some(Ok(Message::Text(text))) => write(&console, text.as_bytes().to_vec()).await,
                Some(Ok(Message::Binary(bytes))) => write(&console, bytes.to_vec()).await,
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    tracing::info!("console closed");
}

async fn write(console: &Arc<dyn ConsoleStream>, data: Vec<u8>) {
    let console = Arc::clone(console);
    let _ = tokio::task::spawn_blocking(move || console.write(&data)).await;
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: Uuid,
    vm_id: Uuid,
    user_id: Uuid,
    used_at: Option<chrono::DateTime<chrono::Utc>>,
    created_at: chrono::DateTime<chrono::Utc>,
    expires_at: chrono::DateTime<chrono::Utc>,
}

/// Tickets not used, revoked or expired, and sessions not closed or revoked.
const LIVE: &str = "revoked_at IS NULL AND closed_at IS NULL AND (used_at IS NOT NULL OR expires_at > now())";

/// List a VM's outstanding console tickets and open sessions: who asked and
/// when (never the secret).
#[utoipa::path(get, operation_id = "vms_console_sessions", path = "/v1/vms/{id}/console-sessions", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<ConsoleSession>), (status = 404)), security(("bearer" = [])))]
pub async fn sessions(req: Req, PathId(id): PathId) -> ApiResult<Json<Vec<ConsoleSession>>> {
    let mut tx = req.tx()?;
    let vm = vms::fetch(&req, &mut tx, id, false).await?;
    req.grants.require_on_cluster(Permission::ConsoleSessionList, vm.cluster_id)?;
    let rows: Vec<SessionRow> = sqlx::query_as(&format!(
        "SELECT id, vm_id, user_id, used_at, created_at, expires_at FROM console_tickets
          WHERE vm_id = $1 AND {LIVE} ORDER BY id"
    ))
    .bind(vm.id)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| ConsoleSession {
                id: r.id,
                vm_id: r.vm_id,
                user_id: r.user_id,
                state: if r.used_at.is_some() { "open" } else { "ticket" }.into(),
                created_at: r.created_at,
                expires_at: r.expires_at,
                opened_at: r.used_at,
            })
            .collect(),
    ))
}

/// Revoke a console ticket (it no longer opens a session) or close the session
/// it opened (its socket ends within a few seconds, on whichever replica holds it).
#[utoipa::path(delete, operation_id = "vms_console_session_revoke", path = "/v1/vms/{id}/console-sessions/{session_id}", tag = "compute",
    params(("id" = Uuid, Path), ("session_id" = Uuid, Path)), responses((status = 204), (status = 404)), security(("bearer" = [])))]
pub async fn revoke(req: Req, PathIds(vm, session): PathIds) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    let vm = vms::fetch(&req, &mut tx, vm, false).await?;
    req.grants.require_on_cluster(Permission::ConsoleSessionRevoke, vm.cluster_id)?;
    let revoked: Option<(Option<chrono::DateTime<chrono::Utc>>,)> = sqlx::query_as(&format!(
        "UPDATE console_tickets SET revoked_at = now(), revoked_by = $3
          WHERE id = $1 AND vm_id = $2 AND {LIVE} RETURNING used_at"
    ))
    .bind(session)
    .bind(vm.id)
    .bind(req.principal.user_id)
    .fetch_optional(&mut *tx)
    .await?;
    let (used_at,) = revoked.ok_or(ApiError::NotFound { kind: "console session" })?;
    let details = json!({ "session_id": session, "was": if used_at.is_some() { "open" } else { "ticket" } });
    audit::record(&mut tx, &req, Event::new("vm.console.revoke", "vm", Some(vm.id)).details(details)).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
