//! `/api/admin/*` (role ADMIN): user management and the audit trail. Handlers parse and bound the
//! input, then call [`crate::users::accounts`], which owns the transactions and audit events.

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::routing::{get, patch, post};
use axum::Json;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::access::{route, Route, ADMIN};
use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiJson, ApiQuery, ClientIp, Identity};
use super::paging::{decode_cursor, encode_cursor, limit};
use crate::app::AppState;
use crate::auth::audit::{self, AuditEntry};
use crate::auth::roles::Role;
use crate::users::accounts::{self, Actor, NewAccount, Patch};
use crate::users::{self, AdminUserView, UserView};

pub fn routes() -> Vec<Route> {
    vec![
        route(Method::GET, "/api/admin/users", ADMIN, get(list_users)),
        route(Method::POST, "/api/admin/users", ADMIN, post(create_user)),
        route(Method::GET, "/api/admin/users/{id}", ADMIN, get(get_user)),
        route(
            Method::PATCH,
            "/api/admin/users/{id}",
            ADMIN,
            patch(update_user),
        ),
        route(
            Method::POST,
            "/api/admin/users/{id}/revoke-sessions",
            ADMIN,
            post(revoke_sessions),
        ),
        route(
            Method::POST,
            "/api/admin/users/{id}/unlock",
            ADMIN,
            post(unlock),
        ),
        route(Method::GET, "/api/admin/audit", ADMIN, get(list_audit)),
    ]
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<AdminUserView>,
    pub next_cursor: Option<String>,
}

fn valid_id(id: &str) -> ApiResult<()> {
    uuid::Uuid::parse_str(id)
        .map(|_| ())
        .map_err(|_| ApiError::not_found())
}

/// List users, oldest first.
#[utoipa::path(get, path = "/api/admin/users", tag = "admin", params(PageQuery),
    security(("bearer" = [])),
    responses((status = 200, body = UserPage), (status = 400, body = Problem),
              (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list_users(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<UserPage>> {
    let limit = limit(q.limit)?;
    let after = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let mut rows = users::page(state.db.pool(), after.as_deref(), limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|u| encode_cursor(&u.id))
    } else {
        None
    };
    Ok(Json(UserPage {
        items: rows.iter().map(AdminUserView::from).collect(),
        next_cursor,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub email: String,
    pub name: String,
    pub roles: Vec<Role>,
    /// Optional: without it the user is emailed a code to set one.
    #[schema(format = Password)]
    pub password: Option<String>,
}

/// Create a user. The account starts with its email unverified.
#[utoipa::path(post, path = "/api/admin/users", tag = "admin", request_body = CreateUser,
    security(("bearer" = [])),
    responses((status = 201, body = UserView), (status = 400, body = Problem),
              (status = 409, description = "Email taken", body = Problem),
              (status = 422, description = "Invalid email, name, roles or weak password", body = Problem)))]
pub async fn create_user(
    State(state): State<AppState>,
    identity: Identity,
    ip: ClientIp,
    ApiJson(body): ApiJson<CreateUser>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    if body.email.len() > 320 || body.name.len() > 1000 || body.roles.len() > 64 {
        return Err(ApiError::bad_request(
            "invalid_body",
            "A field is too long.",
        ));
    }
    if body.password.as_ref().is_some_and(|p| p.len() > 1024) {
        return Err(ApiError::unprocessable(
            "weak_password",
            "password must be at most 128 characters",
        ));
    }
    let ip = ip.text();
    let user = accounts::create(
        &state.db,
        &state.hasher,
        Some(&state.notifier),
        NewAccount {
            email: body.email,
            name: body.name,
            roles: body.roles,
            password: body.password.map(SecretString::from),
            email_verified: false,
        },
        Actor {
            id: Some(&identity.user_id),
            ip: Some(&ip),
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(UserView::from(&user))))
}

/// One user.
#[utoipa::path(get, path = "/api/admin/users/{id}", tag = "admin",
    params(("id" = String, Path, description = "User id")), security(("bearer" = [])),
    responses((status = 200, body = AdminUserView), (status = 404, body = Problem)))]
pub async fn get_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<AdminUserView>> {
    valid_id(&id)?;
    let user = users::by_id(state.db.pool(), &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(AdminUserView::from(&user)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub name: Option<String>,
    pub roles: Option<Vec<Role>>,
    pub disabled: Option<bool>,
}

/// Change a user's name, roles or disabled flag. Disabling revokes every session at once.
#[utoipa::path(patch, path = "/api/admin/users/{id}", tag = "admin", request_body = UpdateUser,
    params(("id" = String, Path, description = "User id")), security(("bearer" = [])),
    responses((status = 200, body = AdminUserView), (status = 404, body = Problem),
              (status = 409, description = "Would leave no active ADMIN", body = Problem),
              (status = 422, body = Problem)))]
pub async fn update_user(
    State(state): State<AppState>,
    identity: Identity,
    ip: ClientIp,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateUser>,
) -> ApiResult<Json<AdminUserView>> {
    valid_id(&id)?;
    if body.name.as_ref().is_some_and(|n| n.len() > 1000)
        || body.roles.as_ref().is_some_and(|r| r.len() > 64)
    {
        return Err(ApiError::bad_request(
            "invalid_body",
            "A field is too long.",
        ));
    }
    let ip = ip.text();
    let user = accounts::update(
        &state.db,
        &state.revocations,
        &id,
        Patch {
            name: body.name,
            roles: body.roles,
            disabled: body.disabled,
        },
        Actor {
            id: Some(&identity.user_id),
            ip: Some(&ip),
        },
    )
    .await?;
    state.users.forget(&id);
    Ok(Json(AdminUserView::from(&user)))
}

/// Revoke every session and access token of a user.
#[utoipa::path(post, path = "/api/admin/users/{id}/revoke-sessions", tag = "admin",
    params(("id" = String, Path, description = "User id")), security(("bearer" = [])),
    responses((status = 204, description = "Revoked"), (status = 404, body = Problem)))]
pub async fn revoke_sessions(
    State(state): State<AppState>,
    identity: Identity,
    ip: ClientIp,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    valid_id(&id)?;
    let ip = ip.text();
    accounts::revoke_sessions(
        &state.db,
        &state.revocations,
        &id,
        Actor {
            id: Some(&identity.user_id),
            ip: Some(&ip),
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Clear a login lock on the user's email.
#[utoipa::path(post, path = "/api/admin/users/{id}/unlock", tag = "admin",
    params(("id" = String, Path, description = "User id")), security(("bearer" = [])),
    responses((status = 204, description = "Unlocked"), (status = 404, body = Problem)))]
pub async fn unlock(
    State(state): State<AppState>,
    identity: Identity,
    ip: ClientIp,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    valid_id(&id)?;
    let ip = ip.text();
    accounts::unlock(
        &state.db,
        &state.throttle,
        &id,
        Actor {
            id: Some(&identity.user_id),
            ip: Some(&ip),
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Event type, e.g. `login_failed`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
    /// Events where this user is the actor or the subject.
    pub user_id: Option<String>,
    /// RFC 3339; only events at or after this time.
    pub since: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    pub next_cursor: Option<String>,
}

/// The audit trail, newest first.
#[utoipa::path(get, path = "/api/admin/audit", tag = "admin", params(AuditQuery),
    security(("bearer" = [])),
    responses((status = 200, body = AuditPage), (status = 400, body = Problem)))]
pub async fn list_audit(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    let bad = |what: &'static str| ApiError::bad_request("invalid_query", what);
    let filter = audit::Filter {
        kind: q
            .kind
            .map(|k| {
                if k.len() <= 64 {
                    Ok(k)
                } else {
                    Err(bad("type is too long."))
                }
            })
            .transpose()?,
        user_id: q
            .user_id
            .map(|u| {
                if u.len() <= 64 {
                    Ok(u)
                } else {
                    Err(bad("user_id is too long."))
                }
            })
            .transpose()?,
        since: q
            .since
            .map(|s| {
                crate::clock::parse_rfc3339(&s)
                    .ok_or_else(|| bad("since must be an RFC 3339 time."))
            })
            .transpose()?,
        before_id: q
            .cursor
            .map(|c| {
                decode_cursor(&c)?.parse::<i64>().map_err(|_| {
                    ApiError::bad_request("invalid_cursor", "The cursor is not valid.")
                })
            })
            .transpose()?,
        limit: limit(q.limit)?,
    };
    let (items, more) = audit::list(&state.db, &filter).await?;
    let next_cursor = if more {
        items.last().map(|e| encode_cursor(&e.id.to_string()))
    } else {
        None
    };
    Ok(Json(AuditPage { items, next_cursor }))
}
