//! The OpenAPI document, generated from the handlers' annotations. A test compares it with the
//! route table, so a route without documentation fails the build's tests.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{
    admin_routes, auth_routes, document_routes, error, kpi_routes, line_routes, mail_routes,
    ops_routes, order_routes, recovery_routes, work_order_routes,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "IMS", description = "Production management for electronics factories."),
    paths(
        ops_routes::healthz, ops_routes::readyz, ops_routes::metrics, ops_routes::openapi,
        ops_routes::docs_page, ops_routes::docs_script,
        auth_routes::login, auth_routes::refresh, auth_routes::logout, auth_routes::me,
        auth_routes::jwks, auth_routes::oidc_config,
        admin_routes::list_users, admin_routes::create_user, admin_routes::get_user,
        admin_routes::update_user, admin_routes::revoke_sessions, admin_routes::unlock,
        admin_routes::list_audit,
        recovery_routes::forgot_password, recovery_routes::send_verification,
        recovery_routes::verify_otp, recovery_routes::reset_password,
        recovery_routes::change_password,
        mail_routes::list_failed, mail_routes::retry,
        line_routes::list_lines, line_routes::list_leaders, line_routes::create_line, line_routes::get_line,
        line_routes::update_line, line_routes::set_leaders,
        line_routes::list_products, line_routes::create_product, line_routes::get_product,
        line_routes::update_product,
        line_routes::list_reasons, line_routes::create_reason, line_routes::update_reason,
        order_routes::list_orders, order_routes::create_order, order_routes::get_order,
        order_routes::update_order, order_routes::cancel_order, order_routes::publish,
        work_order_routes::list, work_order_routes::create, work_order_routes::get_one,
        work_order_routes::reschedule, work_order_routes::cancel, work_order_routes::history,
        work_order_routes::tasks, work_order_routes::start, work_order_routes::pause,
        work_order_routes::resume, work_order_routes::output, work_order_routes::downtime,
        work_order_routes::complete,
        kpi_routes::line_kpi, kpi_routes::summary, kpi_routes::pareto,
        kpi_routes::list_alerts, kpi_routes::acknowledge, kpi_routes::list_rules,
        kpi_routes::create_rule, kpi_routes::update_rule, kpi_routes::delete_rule,
        kpi_routes::make_report,
        document_routes::upload, document_routes::list, document_routes::metadata,
        document_routes::content, document_routes::remove,
    ),
    components(schemas(error::Problem)),
    modifiers(&BearerAuth, &ProblemResponses, &ServedMediaTypes),
    tags(
        (name = "auth", description = "Sign-in, tokens and sessions"),
        (name = "admin", description = "Users and audit (ADMIN)"),
        (name = "ops", description = "Health, metrics and documentation"),
        (name = "production", description = "Lines, products, reasons, orders and the schedule (MANAGER)"),
        (name = "shop floor", description = "A line leader's tasks and their execution (LINE_LEADER of the line)"),
        (name = "monitoring", description = "OEE, the factory's day, downtime Pareto, alerts and reports (MANAGER)"),
        (name = "documents", description = "Work instructions, BOMs and reports attached to lines, orders and work orders"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Error answers as served: every `Problem` body is `application/problem+json`, every operation
/// behind a bearer token may answer `401` and `403`, and every operation with a JSON body `400`
/// (malformed) and `415` (not JSON). Added once here rather than on each handler.
struct ProblemResponses;

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        const PROBLEM: &str = "application/problem+json";
        let problem = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        PROBLEM,
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("Problem")))
                            .build(),
                    )
                    .build(),
            )
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                (&mut item.get, false),
                (&mut item.post, true),
                (&mut item.put, true),
                (&mut item.patch, true),
                (&mut item.delete, true),
            ];
            for (op, writes) in operations {
                let Some(op) = op else { continue };
                for response in op.responses.responses.values_mut() {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    let is_problem = response.content.get("application/json").is_some_and(|c| {
                        matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem"))
                    });
                    if is_problem {
                        if let Some(content) = response.content.shift_remove("application/json") {
                            response.content.insert(PROBLEM.to_owned(), content);
                        }
                    }
                }
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let params = op.parameters.as_deref().unwrap_or_default();
                let has_query = params
                    .iter()
                    .any(|p| matches!(p.parameter_in, ParameterIn::Query));
                let has_if_match = params.iter().any(|p| {
                    matches!(p.parameter_in, ParameterIn::Header)
                        && p.name.eq_ignore_ascii_case("if-match")
                });
                let has_json_body = op
                    .request_body
                    .as_ref()
                    .is_some_and(|b| b.content.contains_key("application/json"));
                let responses = &mut op.responses.responses;
                if secured {
                    responses
                        .entry("401".into())
                        .or_insert_with(|| problem("Not signed in, or the token is invalid"));
                    responses
                        .entry("403".into())
                        .or_insert_with(|| problem("The role does not allow this"));
                }
                if has_json_body {
                    responses.entry("400".into()).or_insert_with(|| {
                        problem("The body is not valid JSON of the expected shape, or holds a NUL character")
                    });
                    responses
                        .entry("413".into())
                        .or_insert_with(|| problem("The body is over 64 KiB"));
                    responses
                        .entry("415".into())
                        .or_insert_with(|| problem("The body is not application/json"));
                    responses.entry("422".into()).or_insert_with(|| {
                        problem("A value breaks a rule (the problem's code says which)")
                    });
                }
                if has_query {
                    responses
                        .entry("400".into())
                        .or_insert_with(|| problem("A query parameter is unknown or malformed"));
                }
                if has_if_match {
                    responses
                        .entry("400".into())
                        .or_insert_with(|| problem("If-Match is not a version ETag"));
                    responses.entry("409".into()).or_insert_with(|| {
                        problem("Changed by someone else since that version (stale_version)")
                    });
                    responses
                        .entry("428".into())
                        .or_insert_with(|| problem("This change needs If-Match"));
                }
                if secured || has_json_body {
                    responses
                        .entry("503".into())
                        .or_insert_with(|| problem("The database is unavailable; retry later"));
                }
                if has_json_body || (secured && writes) {
                    responses.entry("507".into()).or_insert_with(|| {
                        problem("The server's storage is full; nothing was saved")
                    });
                }
            }
        }
    }
}

/// Media types as served where the annotations cannot say them: a document is uploaded and
/// downloaded as its own type (one of [`crate::storage::sniff::ALLOWED`]), `/metrics` is
/// OpenMetrics text, and `/auth/refresh` and `/auth/logout` take no body when the cookie or the
/// bearer token says who is asking.
struct ServedMediaTypes;

impl Modify for ServedMediaTypes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        use utoipa::openapi::{Content, Required};
        let binary = || {
            Content::new(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
                    .build(),
            ))
        };
        let documents = || {
            crate::storage::sniff::ALLOWED
                .iter()
                .map(move |t| ((*t).to_owned(), binary()))
        };
        let paths = &mut openapi.paths.paths;
        if let Some(op) = paths
            .get_mut("/api/documents")
            .and_then(|i| i.post.as_mut())
        {
            if let Some(body) = op.request_body.as_mut() {
                body.content = documents().collect();
            }
        }
        if let Some(response) = ok_response(paths, "/api/documents/{id}/content") {
            response.content = documents().collect();
        }
        if let Some(response) = ok_response(paths, "/metrics") {
            let text = Content::new(Some(ObjectBuilder::new().schema_type(Type::String).build()));
            response.content = [("application/openmetrics-text".to_owned(), text)]
                .into_iter()
                .collect();
        }
        // `If-Match` carries a version ETag (`"3"`, `W/"3"` or a bare `3`), never a JSON null; a
        // work order's reschedule requires it (`428` without). `Idempotency-Key` is optional.
        // Both are stated with the exact patterns their extractors take.
        let string_matching = |pattern: &str| {
            Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(pattern))
                    .into(),
            )
        };
        for (path, item) in paths.iter_mut() {
            let operations = [
                (&mut item.post, false),
                (&mut item.put, false),
                (&mut item.patch, path == "/api/work-orders/{id}"),
            ];
            for (op, if_match_required) in operations {
                let params = op.as_mut().and_then(|op| op.parameters.as_mut());
                for param in params.into_iter().flatten() {
                    let (pattern, required) = match param.name.to_ascii_lowercase().as_str() {
                        "if-match" => (super::extract::IF_MATCH_PATTERN, if_match_required),
                        "idempotency-key" => (super::extract::IDEMPOTENCY_KEY_PATTERN, false),
                        _ => continue,
                    };
                    param.schema = string_matching(pattern);
                    param.required = if required {
                        Required::True
                    } else {
                        Required::False
                    };
                }
            }
        }
        for path in ["/auth/refresh", "/auth/logout"] {
            if let Some(body) = paths
                .get_mut(path)
                .and_then(|i| i.post.as_mut())
                .and_then(|op| op.request_body.as_mut())
            {
                body.required = Some(Required::False);
            }
        }
    }
}

/// The inline `200` response of `GET path`.
fn ok_response<'a>(
    paths: &'a mut utoipa::openapi::path::PathsMap<String, utoipa::openapi::PathItem>,
    path: &str,
) -> Option<&'a mut utoipa::openapi::Response> {
    let op = paths.get_mut(path)?.get.as_mut()?;
    match op.responses.responses.get_mut("200")? {
        utoipa::openapi::RefOr::T(response) => Some(response),
        utoipa::openapi::RefOr::Ref(_) => None,
    }
}
