//! Route-level access control. Every route is declared in [`table`] with the roles it allows (or
//! as public); the router is built from that table only, so a route cannot exist without a
//! declaration, and a test walks the same table with every identity. The guard verifies the bearer
//! token, checks the revocation cache, then the roles: no token or a bad one is `401`, a valid one
//! without an allowed role is `403`. Object-level checks happen in handlers after loading the object.

use std::collections::HashSet;
use std::sync::LazyLock;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::MethodRouter;
use axum::Router;
use tracing::Instrument;

use super::error::ApiError;
use super::extract::Identity;
use super::{
    admin_routes, auth_routes, document_routes, kpi_routes, line_routes, mail_routes, ops_routes,
    order_routes, recovery_routes, work_order_routes,
};
use crate::app::AppState;
use crate::auth::roles::Role;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No authentication (the contract's list of unauthenticated routes).
    Public,
    /// A valid access token holding at least one of these roles.
    Roles(&'static [Role]),
}

pub const ANY_ROLE: Access = Access::Roles(&[Role::Admin, Role::Manager, Role::LineLeader]);
pub const ADMIN: Access = Access::Roles(&[Role::Admin]);
pub const MANAGER: Access = Access::Roles(&[Role::Manager]);
pub const LEADER: Access = Access::Roles(&[Role::LineLeader]);
/// Object-level checks in the handler narrow a leader to their own lines.
pub const FLOOR: Access = Access::Roles(&[Role::Manager, Role::LineLeader]);

pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub handler: MethodRouter<AppState>,
}

pub fn route(
    method: Method,
    path: &'static str,
    access: Access,
    handler: MethodRouter<AppState>,
) -> Route {
    Route {
        method,
        path,
        access,
        handler,
    }
}

/// Every route of the API, with its access rule.
pub fn table() -> Vec<Route> {
    let mut routes = ops_routes::routes();
    routes.extend(auth_routes::routes());
    routes.extend(recovery_routes::routes());
    routes.extend(admin_routes::routes());
    routes.extend(mail_routes::routes());
    routes.extend(line_routes::routes());
    routes.extend(order_routes::routes());
    routes.extend(work_order_routes::routes());
    routes.extend(kpi_routes::routes());
    routes.extend(document_routes::routes());
    routes
}

/// The route template `path` names, as the metrics label it: [`MatchedPath`](axum::extract::MatchedPath)
/// holds a copy of it, and labels made of the table's own strings cost no allocation per request.
pub fn template(path: &str) -> Option<&'static str> {
    static TEMPLATES: LazyLock<HashSet<&'static str>> =
        LazyLock::new(|| table().iter().map(|r| r.path).collect());
    TEMPLATES.get(path).copied()
}

/// Builds the router from the table, guarding each route with its access rule.
pub fn router(state: &AppState) -> Router<AppState> {
    table().into_iter().fold(Router::new(), |router, r| {
        let handler = match r.access {
            Access::Public => r.handler,
            Access::Roles(roles) => r.handler.route_layer(middleware::from_fn_with_state(
                Guard {
                    state: state.clone(),
                    roles,
                },
                guard,
            )),
        };
        router.route(r.path, handler)
    })
}

#[derive(Clone)]
struct Guard {
    state: AppState,
    roles: &'static [Role],
}

async fn guard(State(g): State<Guard>, mut req: Request, next: Next) -> Result<Response, ApiError> {
    let identity = match (&g.state.oidc, bearer(req.headers())) {
        (Some(oidc), Some(token)) if crate::auth::oidc::looks_external(token) => {
            external(&g.state, oidc, token).await?
        }
        _ => authenticate(&g.state, req.headers())?,
    };
    if !identity.roles.iter().any(|r| g.roles.contains(r)) {
        return Err(ApiError::forbidden(
            "forbidden",
            "Your role does not allow this action.",
        ));
    }
    req.extensions_mut().insert(identity);
    Ok(next.run(req).await)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Verifies an identity provider's access token and finds (or provisions) its user. A token
/// issued at or before the user's last auth change (revoked sessions, say) is refused. A disabled
/// user is refused like a bad token; the roles come from the token's groups, not the database.
async fn external(
    state: &AppState,
    oidc: &crate::auth::oidc::Oidc,
    token: &str,
) -> Result<Identity, ApiError> {
    let invalid = || {
        ApiError::unauthorized(
            "invalid_token",
            "The access token is missing, invalid or expired.",
        )
    };
    let who = oidc.verify(token).await.map_err(|reason| {
        tracing::debug!(%reason, "identity provider token refused");
        state.metrics.token_rejected("oidc");
        invalid()
    })?;
    let user_id = match crate::auth::oidc::linked_user(&state.db, &who).await? {
        Some(id) => id,
        // The identity's first request creates its user, a transaction; a read runs inline in
        // the edge, where a client going away would drop it halfway: a task of its own.
        None => {
            let (db, who) = (state.db.clone(), who.clone());
            let create = async move { crate::auth::oidc::provision(&db, &who).await };
            state
                .requests
                .spawn(create.instrument(tracing::Span::current()))
                .await
                .map_err(|e| ApiError::from(anyhow::anyhow!("provisioning stopped: {e}")))??
        }
    };
    let user = state
        .users
        .get(&state.db, &user_id)
        .await?
        .ok_or_else(invalid)?;
    if user.disabled {
        state.metrics.token_rejected("disabled");
        return Err(invalid());
    }
    // Both are normalized (sorted, unique), so equal role sets compare equal.
    if user.roles != who.roles {
        crate::auth::oidc::sync_roles(&state.db, &user_id, &who.roles).await?;
        state.users.forget(&user_id);
    }
    if who.issued_at <= user.tokens_valid_after {
        // Issued before an admin revoked the user's sessions (or changed their access).
        state.metrics.token_rejected("revoked");
        return Err(invalid());
    }
    Ok(Identity {
        user_id,
        roles: who.roles,
        session_id: format!("oidc:{}", who.subject),
    })
}

/// Verifies the bearer token in these request headers.
pub fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Identity, ApiError> {
    let invalid = || {
        ApiError::unauthorized(
            "invalid_token",
            "The access token is missing, invalid or expired.",
        )
    };
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthorized(
            "unauthenticated",
            "Sign in to use this route.",
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(invalid)?;
    let claims = state.tokens.verify(token).map_err(|reason| {
        state.metrics.token_rejected(reason.as_str());
        invalid()
    })?;
    if !state.revocations.is_fresh() {
        return Err(ApiError::unavailable());
    }
    if !state.revocations.allows(&claims) {
        state.metrics.token_rejected("revoked");
        return Err(invalid());
    }
    Ok(Identity {
        user_id: claims.sub,
        roles: claims.roles,
        session_id: claims.sid,
    })
}
