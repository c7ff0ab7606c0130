//! Monitoring for MANAGER: OEE per line (by shift, day or week), the factory's day, the downtime
//! Pareto, alert rules and alerts, and on-demand daily reports.

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{delete, get, patch, post};
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::access::{route, Route, MANAGER};
use super::error::{ApiResult, Problem};
use super::extract::{tagged, ApiJson, ApiQuery, Identity, IfMatch};
use crate::app::AppState;
use crate::production::alert_rules::{self, NewRule, Rule, RulePatch};
use crate::production::alerts::{self, Alert};
use crate::production::documents::Document;
use crate::production::kpi::{self, FactorySummary, Group, LineKpi, ParetoEntry};
use crate::production::reports;
use crate::production::work_orders::work_date;

pub fn routes() -> Vec<Route> {
    vec![
        route(Method::GET, "/api/kpi/lines/{id}", MANAGER, get(line_kpi)),
        route(Method::GET, "/api/kpi/summary", MANAGER, get(summary)),
        route(
            Method::GET,
            "/api/kpi/downtime-pareto",
            MANAGER,
            get(pareto),
        ),
        route(Method::GET, "/api/alerts", MANAGER, get(list_alerts)),
        route(
            Method::POST,
            "/api/alerts/{id}/acknowledge",
            MANAGER,
            post(acknowledge),
        ),
        route(Method::GET, "/api/alert-rules", MANAGER, get(list_rules)),
        route(Method::POST, "/api/alert-rules", MANAGER, post(create_rule)),
        route(
            Method::PATCH,
            "/api/alert-rules/{id}",
            MANAGER,
            patch(update_rule),
        ),
        route(
            Method::DELETE,
            "/api/alert-rules/{id}",
            MANAGER,
            delete(delete_rule),
        ),
        route(
            Method::POST,
            "/api/lines/{id}/reports",
            MANAGER,
            post(make_report),
        ),
    ]
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    /// `YYYY-MM-DD`, default 29 days before `to`.
    pub from: Option<String>,
    /// `YYYY-MM-DD`, default today.
    pub to: Option<String>,
    /// `shift`, `day` (default) or `week`.
    pub group: Option<Group>,
}

fn range(
    state: &AppState,
    from: &Option<String>,
    to: &Option<String>,
) -> ApiResult<(time::Date, time::Date)> {
    let to = match to {
        Some(t) => work_date(t)?,
        None => state.clock.today(),
    };
    let from = match from {
        Some(f) => work_date(f)?,
        None => to - time::Duration::days(29),
    };
    kpi::check_range(from, to)?;
    Ok((from, to))
}

/// OEE of one line with every factor and its inputs, per shift, day or week, and in total.
#[utoipa::path(get, path = "/api/kpi/lines/{id}", tag = "monitoring", params(("id" = String, Path), RangeQuery),
    security(("bearer" = [])), responses((status = 200, body = LineKpi), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn line_kpi(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<Json<LineKpi>> {
    let (from, to) = range(&state, &q.from, &q.to)?;
    Ok(Json(
        kpi::line_oee(&state, &id, from, to, q.group.unwrap_or(Group::Day)).await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DateQuery {
    /// `YYYY-MM-DD`, default today.
    pub date: Option<String>,
}

/// The factory's day: every line's state and OEE so far, orders at risk, open alerts.
#[utoipa::path(get, path = "/api/kpi/summary", tag = "monitoring", params(DateQuery),
    security(("bearer" = [])), responses((status = 200, body = FactorySummary), (status = 422, body = Problem)))]
pub async fn summary(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DateQuery>,
) -> ApiResult<Json<FactorySummary>> {
    let date = match &q.date {
        Some(d) => work_date(d)?,
        None => state.clock.today(),
    };
    Ok(Json(kpi::factory_summary(&state, date).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ParetoQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    /// One line; all lines when omitted.
    pub line_id: Option<String>,
}

/// Downtime minutes by reason, largest first, with cumulative shares.
#[utoipa::path(get, path = "/api/kpi/downtime-pareto", tag = "monitoring", params(ParetoQuery),
    security(("bearer" = [])), responses((status = 200, body = [ParetoEntry]), (status = 422, body = Problem)))]
pub async fn pareto(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ParetoQuery>,
) -> ApiResult<Json<Vec<ParetoEntry>>> {
    let (from, to) = range(&state, &q.from, &q.to)?;
    Ok(Json(
        kpi::pareto(&state, q.line_id.as_deref(), from, to).await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    /// Only unacknowledged alerts.
    pub open: Option<bool>,
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
}

/// Alerts, newest first.
#[utoipa::path(get, path = "/api/alerts", tag = "monitoring", params(AlertQuery),
    security(("bearer" = [])), responses((status = 200, body = [Alert]), (status = 400, body = Problem)))]
pub async fn list_alerts(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AlertQuery>,
) -> ApiResult<Json<Vec<Alert>>> {
    let limit = super::paging::limit(q.limit)?;
    Ok(Json(
        alerts::list(&state.db, q.open.unwrap_or(false), limit).await?,
    ))
}

/// Acknowledge an alert (idempotent).
#[utoipa::path(post, path = "/api/alerts/{id}/acknowledge", tag = "monitoring", params(("id" = String, Path)),
    security(("bearer" = [])), responses((status = 200, body = Alert), (status = 404, body = Problem)))]
pub async fn acknowledge(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
) -> ApiResult<Json<Alert>> {
    Ok(Json(
        alerts::acknowledge(&state.db, &identity.user_id, &id).await?,
    ))
}

/// Alert rules.
#[utoipa::path(get, path = "/api/alert-rules", tag = "monitoring", security(("bearer" = [])),
    responses((status = 200, body = [Rule])))]
pub async fn list_rules(State(state): State<AppState>) -> ApiResult<Json<Vec<Rule>>> {
    Ok(Json(alert_rules::rules(&state.db).await?))
}

/// Define an alert rule.
#[utoipa::path(post, path = "/api/alert-rules", tag = "monitoring", request_body = NewRule,
    security(("bearer" = [])), responses((status = 201, body = Rule), (status = 422, body = Problem)))]
pub async fn create_rule(
    State(state): State<AppState>,
    identity: Identity,
    ApiJson(body): ApiJson<NewRule>,
) -> ApiResult<Response> {
    let rule = alert_rules::create_rule(&state.db, &identity.user_id, body).await?;
    let mut response = tagged(rule.version, rule);
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

/// Change a rule's threshold or switch it on or off.
#[utoipa::path(patch, path = "/api/alert-rules/{id}", tag = "monitoring", request_body = RulePatch,
    security(("bearer" = [])), params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = Rule), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update_rule(
    State(state): State<AppState>,
    Path(id): Path<String>,
    if_match: IfMatch,
    ApiJson(body): ApiJson<RulePatch>,
) -> ApiResult<Response> {
    let rule = alert_rules::update_rule(&state.db, &id, body, if_match.0).await?;
    Ok(tagged(rule.version, rule))
}

/// Delete a rule (its past alerts stay).
#[utoipa::path(delete, path = "/api/alert-rules/{id}", tag = "monitoring", params(("id" = String, Path)),
    security(("bearer" = [])), responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete_rule(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    alert_rules::delete_rule(&state.db, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportBody {
    /// `YYYY-MM-DD`, default yesterday.
    pub date: Option<String>,
}

/// Generate the daily production report (CSV) of a line now; stored as a document.
#[utoipa::path(post, path = "/api/lines/{id}/reports", tag = "monitoring", request_body = ReportBody,
    params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 201, body = Document), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn make_report(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReportBody>,
) -> ApiResult<(StatusCode, Json<Document>)> {
    let date = match &body.date {
        Some(d) => work_date(d)?,
        None => state
            .clock
            .today()
            .previous_day()
            .unwrap_or(time::Date::MIN),
    };
    let doc = reports::generate(&state, Some(&identity.user_id), &id, date).await?;
    Ok((StatusCode::CREATED, Json(doc)))
}
